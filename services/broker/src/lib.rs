//! The secret broker's application services (seed 004): agents' wire keys (`wire`), the
//! data keys they encrypt with (`deks`) and the jobs they claim (`jobs`), over the runtime;
//! the HTTP adapter and, later, the reactors call these.

pub mod deks;
pub mod discovery;
pub mod error;
pub mod jobs;
pub mod wire;

pub use error::BrokerError;
