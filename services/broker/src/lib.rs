//! The secret broker's application services (seed 004): agents' wire keys (`wire`) and the
//! data keys they encrypt with (`deks`), over the runtime; the HTTP adapter and, later, the
//! reactors call these.

pub mod deks;
pub mod error;
pub mod wire;

pub use error::BrokerError;
