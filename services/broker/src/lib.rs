//! The secret broker's application services (seed 004): agents' wire keys (`wire`), the
//! data keys they encrypt with (`deks`), the jobs they claim (`jobs`), the values they hand
//! over once (`wraps`) and what they discover (`discovery`), over the runtime;
//! the HTTP adapter and, later, the reactors call these.

pub mod deks;
pub mod discovery;
pub mod error;
pub mod jobs;
pub mod wire;
pub mod wraps;

pub use error::BrokerError;
