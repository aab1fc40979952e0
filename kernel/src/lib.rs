//! The shared kernel of the bounded contexts: the `Aggregate` trait every decider implements,
//! decoding errors, derived ids, the given/when/then harness for decider tests, and the few
//! value types every context shares. Pure: no I/O, no clock, no randomness.

/// A closed set of lower-case words, serialised as themselves.
#[macro_export]
macro_rules! word_enum {
    ($name:ident { $($variant:ident = $text:literal),+ $(,)? }) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
            pub fn parse(s: &str) -> Option<Self> {
                match s { $($text => Some($name::$variant),)+ _ => None }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

pub mod duration;

use aegis_schemas::envelope::v1::Envelope;
use aegis_schemas::NewEvent;

/// An event that does not decode is a defect in the log or the code, never user input.
#[derive(Debug, thiserror::Error)]
#[error("cannot decode {event_type} at version {version}: {reason}")]
pub struct DecodeError {
    pub event_type: String,
    pub version: u64,
    pub reason: String,
}

impl DecodeError {
    pub fn new(env: &Envelope, reason: impl std::fmt::Display) -> Self {
        Self {
            event_type: env.event_type.clone(),
            version: env.aggregate_version,
            reason: reason.to_string(),
        }
    }
}

/// An aggregate: its state, the commands it decides and the events it evolves by.
pub trait Aggregate: 'static {
    const CONTEXT: &'static str;
    const AGGREGATE: &'static str;
    type State: Default + Clone + Send + Sync + 'static;
    type Command: Send + Sync;
    type Event: Send + Sync;
    type Error: std::error::Error + Send + Sync;

    fn decide(
        state: &Self::State,
        command: &Self::Command,
    ) -> Result<Vec<Self::Event>, Self::Error>;
    fn evolve(state: Self::State, event: &Self::Event, envelope: &Envelope) -> Self::State;
    fn encode(event: &Self::Event) -> NewEvent;
    fn decode(envelope: &Envelope) -> Result<Self::Event, DecodeError>;
}

/// An id derived from its parts: the same parts always name the same thing, so a retried
/// reaction finds what its first attempt created instead of creating it twice.
pub fn derived_id(label: &str, parts: &[&[u8]]) -> uuid::Uuid {
    use sha2::Digest;
    let mut h = sha2::Sha256::new_with_prefix(label.as_bytes());
    for p in parts {
        h.update((p.len() as u64).to_be_bytes());
        h.update(p);
    }
    let digest = h.finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_sha1_bytes(bytes).into_uuid()
}

/// An event's credential material as text (a password hash, a keyed digest): from the
/// envelope's `credential`, where it is written, or from the payload field that held it in
/// events written before (`legacy`).
pub fn credential_text(env: &Envelope, legacy: String) -> Result<String, DecodeError> {
    if env.credential.is_empty() {
        return Ok(legacy);
    }
    String::from_utf8(env.credential.clone()).map_err(|e| DecodeError::new(env, e))
}

/// An event's payload as a message of its schema.
pub fn payload<T: aegis_schemas::Message + Default>(env: &Envelope) -> Result<T, DecodeError> {
    T::decode(env.payload.as_slice()).map_err(|e| DecodeError::new(env, e))
}

/// An event's credential material as a message of its schema (a sealed value, sealed
/// secrets): from the envelope's `credential`, else the payload field of older events.
pub fn credential_message<T: aegis_schemas::Message + Default>(
    env: &Envelope,
    legacy: Option<T>,
) -> Result<Option<T>, DecodeError> {
    if env.credential.is_empty() {
        return Ok(legacy);
    }
    T::decode(env.credential.as_slice())
        .map(Some)
        .map_err(|e| DecodeError::new(env, e))
}

/// The time an envelope records, in ms since the epoch, when it records one.
pub fn occurred_at_ms(env: &Envelope) -> Option<i64> {
    env.occurred_at
        .as_ref()
        .map(|t| t.seconds * 1000 + i64::from(t.nanos) / 1_000_000)
}

/// The time an envelope records, as chrono.
pub fn occurred_at(env: &Envelope) -> chrono::DateTime<chrono::Utc> {
    env.occurred_at
        .and_then(|t| chrono::DateTime::from_timestamp(t.seconds, t.nanos.max(0) as u32))
        .unwrap_or_default()
}

/// A value sealed under a secret's key: what events carry instead of the value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    pub nonce: Vec<u8>,
    pub ciphertext: Vec<u8>,
}

pub mod spec {
    //! given / when / then for deciders (used by every context's tests).
    use super::Aggregate;
    use aegis_schemas::envelope::v1::Envelope;

    pub struct Given<A: Aggregate> {
        state: A::State,
    }

    pub fn given<A: Aggregate>(events: Vec<A::Event>) -> Given<A> {
        let state = events
            .iter()
            .enumerate()
            .fold(A::State::default(), |s, (i, e)| {
                let env = Envelope {
                    aggregate_version: i as u64 + 1,
                    ..Default::default()
                };
                A::evolve(s, e, &env)
            });
        Given { state }
    }

    pub struct When<A: Aggregate> {
        result: Result<Vec<A::Event>, A::Error>,
    }

    impl<A: Aggregate> Given<A> {
        pub fn when(self, command: A::Command) -> When<A> {
            When {
                result: A::decide(&self.state, &command),
            }
        }
    }

    impl<A: Aggregate> When<A>
    where
        A::Event: PartialEq + std::fmt::Debug,
        A::Error: PartialEq + std::fmt::Debug,
    {
        #[track_caller]
        pub fn then(self, expected: Vec<A::Event>) {
            assert_eq!(self.result, Ok(expected));
        }

        #[track_caller]
        pub fn then_err(self, expected: A::Error) {
            assert_eq!(self.result, Err(expected));
        }
    }
}
