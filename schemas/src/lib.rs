//! aegis-schemas: the protobuf wire types of the event log, generated from `proto/`.
//!
//! Only these types are ever serialized into the log. Domain types live in the crates that own
//! their context and convert with `From`/`TryFrom` at the edge; nothing here holds logic
//! beyond the backward-compatibility check of the schemas themselves.

pub mod compat;

pub mod audit {
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/aegis.audit.v1.rs"));
    }
}

pub mod events;

pub mod broker {
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/aegis.broker.v1.rs"));
    }
}

pub mod auto_response {
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/aegis.auto_response.v1.rs"));
    }
}

pub mod envelope {
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/aegis.envelope.v1.rs"));
    }
}

pub mod identity {
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/aegis.identity.v1.rs"));
    }
}

pub mod integrations {
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/aegis.integrations.v1.rs"));
    }
}

pub mod incidents {
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/aegis.incidents.v1.rs"));
    }
}

pub mod vault {
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/aegis.vault.v1.rs"));
    }
}

/// The compiled descriptor set of every `.proto` in this crate.
pub const DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/aegis_descriptor.bin"));

pub use prost::Message;

/// An event a decider produced, already encoded as its schema message.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    pub event_type: &'static str,
    pub payload: Vec<u8>,
    /// Credential material kept out of the payload (the envelope's `credential`): empty for
    /// most events.
    pub credential: Vec<u8>,
}

impl NewEvent {
    /// An event whose payload is all there is.
    pub fn new(event_type: &'static str, payload: Vec<u8>) -> Self {
        Self {
            event_type,
            payload,
            credential: Vec::new(),
        }
    }
}
