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
