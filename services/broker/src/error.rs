//! Why a broker operation did not complete; the HTTP adapter maps each to seed 004's answer.

use aegis_broker::deks::DekError;
use aegis_broker::discovered::DiscoveryError;
use aegis_broker::gitops::GitOpsError;
use aegis_broker::jobs::JobError;
use aegis_broker::requests::RequestError;
use aegis_broker::rules::RulesError;
use aegis_broker::tenancy::TenancyError;
use aegis_broker::wraps::{Refusal, WrapError};
use aegis_runtime::command::CommandError;
use aegis_runtime::keys::KeyError;
use aegis_runtime::read_models::Lagging;

#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    /// The agent has no wire key and the operation needs one, or the key is unusable.
    #[error("the agent's wire key cannot be used: {0}")]
    WireKey(String),
    /// The tenant's key hierarchy could not wrap or unwrap (erased tenant, store down).
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error(transparent)]
    Dek(#[from] CommandError<DekError>),
    #[error(transparent)]
    Job(#[from] CommandError<JobError>),
    #[error(transparent)]
    Discovery(#[from] CommandError<DiscoveryError>),
    #[error(transparent)]
    Wrap(#[from] CommandError<WrapError>),
    #[error(transparent)]
    Request(#[from] CommandError<RequestError>),
    #[error(transparent)]
    Rules(#[from] CommandError<RulesError>),
    #[error(transparent)]
    Tenancy(#[from] CommandError<TenancyError>),
    #[error(transparent)]
    GitOps(#[from] CommandError<GitOpsError>),
    /// A URL the SSRF guard refuses, or one that is no http(s) URL.
    #[error("{0}")]
    Egress(String),
    /// What an integration's server answered, or that it could not be asked; with the status
    /// to answer (502, or 409 when the integration is turned off).
    #[error("{0}")]
    Upstream(String, u16),
    /// The workflow names a role the approver does not hold.
    #[error("this request's workflow needs approvers holding the role `{0}`")]
    NotAnApprover(String),
    /// A request's wraps are its requester's alone.
    #[error("only the original requester may retrieve")]
    NotRequester,
    /// A retrieval the wrap's history refused (recorded as `wrap.denied.v1`), or a posting for a
    /// request the agent holds no approved work on.
    /// `position`: where the refusal was recorded, when it was.
    #[error("{}", refusal_text(*reason))]
    WrapRefused {
        reason: Refusal,
        position: Option<u64>,
    },
    /// An envelope that does not open, or a value a wrap cannot hold.
    #[error("{0}")]
    BadEnvelope(String),
    /// The jobs read model is behind the log (claims wait for it).
    #[error(transparent)]
    Lagging(#[from] Lagging),
    #[error(transparent)]
    Db(#[from] sqlx::Error),
    /// A claim lost every race it tried, look after look: jobs wait, but others took each
    /// one it reached first. Worth retrying at once.
    #[error("every job this claim reached was taken by another agent first; claim again")]
    Busy,
}

fn refusal_text(r: Refusal) -> &'static str {
    match r {
        Refusal::Consumed => "wrap already consumed",
        Refusal::Expired => "wrap expired",
        Refusal::NotApproved => {
            "the request is not approved for this agent: it holds no claimed job carrying it"
        }
    }
}
