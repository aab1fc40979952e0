//! Why a vault operation did not complete. The HTTP adapter maps each to seed 001's answer;
//! a reactor logs it.

use aegis_incidents::IncidentId;
use aegis_runtime::command::CommandError;
use aegis_runtime::keys::KeyError;
use aegis_vault::reads::AlreadyRecorded;
use aegis_vault::CredentialError;

#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    /// The tenant has no credential of that name.
    #[error("Credential not found: {0}")]
    Missing(String),
    /// The credential's decider refused, or the log could not be reached.
    #[error("{error}")]
    Credential {
        name: String,
        error: CommandError<CredentialError>,
    },
    /// A value could not be sealed or opened (its key destroyed, the tenant erased, tampered).
    #[error("the value of `{name}` cannot be used: {error}")]
    Key { name: String, error: KeyError },
    #[error("version {0} does not exist")]
    NoSuchVersion(u64),
    #[error("version {0} is already the current version")]
    AlreadyCurrent(u64),
    #[error("the credential `{0}` has no value yet")]
    NoValue(String),
    /// The value was not served (the inner refusal), and the refused read was recorded at
    /// `position`.
    #[error("{refusal}")]
    RefusedRead {
        refusal: Box<VaultError>,
        position: u64,
    },
    /// A value read could not be recorded, so the value was not read.
    #[error("the read could not be recorded: {0}")]
    Recording(CommandError<AlreadyRecorded>),
    /// The rotator failed: the old version stays active, the failure is recorded and an
    /// incident opened (when the log could be reached).
    #[error("rotation of `{name}` failed; version {previous} stays active: {error}")]
    RotationFailed {
        name: String,
        previous: u64,
        error: String,
        incident: Option<IncidentId>,
        /// Where the failure was recorded, when it could be.
        position: Option<u64>,
    },
}

impl VaultError {
    pub(crate) fn credential(
        name: &str,
    ) -> impl FnOnce(CommandError<CredentialError>) -> Self + '_ {
        move |error| Self::Credential {
            name: name.to_string(),
            error,
        }
    }

    pub(crate) fn key(name: &str) -> impl FnOnce(KeyError) -> Self + '_ {
        move |error| Self::Key {
            name: name.to_string(),
            error,
        }
    }
}
