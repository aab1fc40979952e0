//! An access request's kind and the states it goes through (seed 004's names).

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The requester wants to see the keys' values (an agent fetches them after approval).
    Read,
    /// The requester sets the keys to the values it sent (sealed at submission).
    Patch,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Read => "read",
            Kind::Patch => "patch",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Pending,
    Approved,
    Rejected,
    Cancelled,
    Expired,
    Executed,
    Failed,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Approved => "approved",
            Status::Rejected => "rejected",
            Status::Cancelled => "cancelled",
            Status::Expired => "expired",
            Status::Executed => "executed",
            Status::Failed => "failed",
        }
    }
}
