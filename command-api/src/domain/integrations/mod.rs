//! Integrations (seed 000): outbound webhooks. Their secrets travel sealed; what a webhook
//! receives and where is decided here, delivering it is the fan-out reactor's work.

pub mod webhooks;

pub use webhooks::{Webhook, WebhookAggregate, WebhookError};
