//! The vault context (seed 001): credentials, their sealed versions, rotation and health.

#[macro_use]
extern crate aegis_kernel;

pub mod credentials;
pub mod dynamic;
pub mod leakage;
pub mod reads;
pub mod settings;
pub mod tenant_key;
pub mod versions;

pub use credentials::{Credential, CredentialAggregate, CredentialError};
pub use settings::{RotationStrategy, Rotator, Settings};
