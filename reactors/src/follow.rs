//! Hearing of changes other instances handled: a reactor that keeps a copy of a tenant's
//! state (rules, webhooks) follows the events that change it on core NATS, besides its own
//! consumer's share of them, since a durable consumer hands each event to one instance only.

use futures::StreamExt;
use tokio::sync::watch;
use uuid::Uuid;

/// Calls `changed` with the tenant of every event published on `subject` until `shutdown`.
/// A subscription that cannot be made is logged and ends the task (its supervisor starts it
/// again).
pub async fn follow_tenants(
    client: async_nats::Client,
    subject: &'static str,
    mut shutdown: watch::Receiver<bool>,
    changed: impl Fn(Uuid),
) {
    let mut sub = match client.subscribe(subject).await {
        Ok(sub) => sub,
        Err(e) => {
            tracing::error!(subject, error = %e, "cannot follow the changes published on this subject");
            return;
        }
    };
    loop {
        let msg = tokio::select! {
            m = sub.next() => m,
            _ = shutdown.changed() => return,
        };
        let Some(msg) = msg else { return };
        if let Some(tenant) = tenant_of(&msg.subject) {
            changed(tenant);
        }
    }
}

/// The tenant of an event subject (`aegis.evt.<tenant>.…`).
pub fn tenant_of(subject: &str) -> Option<Uuid> {
    subject
        .split('.')
        .nth(2)
        .and_then(|t| Uuid::parse_str(t).ok())
}

#[cfg(test)]
mod tests {
    use super::tenant_of;
    use uuid::Uuid;

    #[test]
    fn the_tenant_is_the_third_token_of_an_event_subject() {
        let t = Uuid::now_v7();
        assert_eq!(
            tenant_of(&format!("aegis.evt.{t}.integrations.webhook.x")),
            Some(t)
        );
        assert_eq!(
            tenant_of("aegis.evt.not-a-uuid.integrations.webhook.x"),
            None
        );
    }
}
