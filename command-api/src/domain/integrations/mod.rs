//! Integrations (seed 000): outbound webhooks and SIEM connections. Their secrets travel
//! sealed; what goes where is decided here, delivering it is the reactors' work.

pub mod siem;
pub mod webhooks;

pub use siem::{Connection, SiemAggregate, SiemError};
pub use webhooks::{Webhook, WebhookAggregate, WebhookError};
