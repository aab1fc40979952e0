//! Integrations (seed 000): outbound webhooks, SIEM connections and scheduled reports. Their secrets travel
//! sealed; what goes where is decided here, delivering it is the reactors' work.

#[macro_use]
extern crate aegis_kernel;

pub mod reports;
pub mod sealed;
pub mod siem;
pub mod webhooks;

pub use reports::{Report, ReportAggregate, ReportError};
pub use siem::{Connection, SiemAggregate, SiemError};
pub use webhooks::{Webhook, WebhookAggregate, WebhookError};
