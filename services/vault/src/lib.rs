//! The vault's application services that reach outside Aegis: rotators (a value generated, or
//! asked of an HTTP endpoint, or set on a PostgreSQL role), the SCRAM verifier PostgreSQL keeps,
//! and the n8n client. They dial only through the runtime's SSRF guard. The context's deciders
//! stay pure in `contexts/vault`; what HTTP, NATS and the rotation reactor share calls these.

pub mod n8n;
pub mod rotators;
pub mod scram;
