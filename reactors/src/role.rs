//! The reactor role, composed: what `aegis` starts when it runs the reactors.

use aegis_runtime::supervisor::supervise;
use aegis_runtime::Runtime;
use std::sync::Arc;
use tokio::sync::watch;
use tokio::task::JoinSet;

/// The reactor role: every reactor, each under supervision (restarted with backoff, shown in
/// `/readyz` as `role:<name>`), until `shutdown`.
pub fn start(tasks: &mut JoinSet<()>, rt: &Runtime, shutdown: watch::Receiver<bool>) {
    let health = rt.supervision.clone();
    let s = rt.clone();
    supervise(
        tasks,
        health.clone(),
        "audit_checkpoints",
        shutdown.clone(),
        move |stop| {
            crate::audit_checkpoints::run(
                s.executor.clone(),
                s.audit_key.as_ref().clone(),
                std::time::Duration::from_secs(s.config.audit_checkpoint_secs),
                stop,
            )
        },
    );
    let s = rt.clone();
    supervise(
        tasks,
        health.clone(),
        "vault_scheduler",
        shutdown.clone(),
        move |stop| {
            crate::vault_rotation::run(
                s.clone(),
                std::time::Duration::from_secs(s.config.vault_tick_secs.max(1)),
                stop,
            )
        },
    );
    let responder = Arc::new(crate::auto_response::AutoResponder::new(rt.clone()));
    let (r, c) = (responder.clone(), rt.nats.clone());
    supervise(
        tasks,
        health.clone(),
        "auto_response_rules",
        shutdown.clone(),
        move |stop| r.clone().follow_rule_changes(c.clone(), stop),
    );
    let js = rt.executor.store().jetstream().clone();
    supervise(
        tasks,
        health.clone(),
        "auto_response",
        shutdown.clone(),
        move |stop| {
            crate::run(
                js.clone(),
                responder.clone(),
                crate::RetryPolicy::default(),
                stop,
            )
        },
    );
    let js = rt.executor.store().jetstream().clone();
    let fanout = Arc::new(crate::fanout::WebhookFanout::new(rt.clone()));
    let (f, c) = (fanout.clone(), rt.nats.clone());
    supervise(
        tasks,
        health.clone(),
        "webhook_changes",
        shutdown.clone(),
        move |stop| f.clone().follow_webhook_changes(c.clone(), stop),
    );
    supervise(
        tasks,
        health.clone(),
        "webhook_fanout",
        shutdown.clone(),
        move |stop| {
            crate::run(
                js.clone(),
                fanout.clone(),
                crate::RetryPolicy::default(),
                stop,
            )
        },
    );
    let s = rt.clone();
    supervise(
        tasks,
        health.clone(),
        "siem_forwarders",
        shutdown.clone(),
        move |stop| {
            crate::siem::run(
                s.clone(),
                std::time::Duration::from_millis(s.config.siem_tick_ms.max(10)),
                stop,
            )
        },
    );
    let s = rt.clone();
    supervise(
        tasks,
        health.clone(),
        "scheduled_reports",
        shutdown.clone(),
        move |stop| {
            crate::reports::run(
                s.clone(),
                std::time::Duration::from_millis(s.config.reports_tick_ms.max(10)),
                stop,
            )
        },
    );
    let s = rt.clone();
    supervise(
        tasks,
        health.clone(),
        "approval_expiry",
        shutdown.clone(),
        move |stop| {
            crate::approval_expiry::run(
                s.clone(),
                std::time::Duration::from_secs(s.config.ar_tick_secs.max(1)),
                stop,
            )
        },
    );
    let s = rt.clone();
    supervise(
        tasks,
        health.clone(),
        "lease_expiry",
        shutdown.clone(),
        move |stop| {
            crate::lease_expiry::run(
                s.clone(),
                std::time::Duration::from_secs(s.config.ar_tick_secs.max(1)),
                stop,
            )
        },
    );
    let s = rt.clone();
    supervise(
        tasks,
        health.clone(),
        "wrap_expiry",
        shutdown.clone(),
        move |stop| {
            crate::wrap_expiry::run(
                s.clone(),
                std::time::Duration::from_secs(s.config.ar_tick_secs.max(1)),
                stop,
            )
        },
    );
    let s = rt.clone();
    supervise(
        tasks,
        health.clone(),
        "gitops_watch",
        shutdown.clone(),
        move |stop| {
            // Polled at a fraction of the interval, so a watch is never much later than due.
            let tick = (s.config.gitops_poll_ms / 4).clamp(100, 5_000);
            crate::gitops_watch::run(s.clone(), std::time::Duration::from_millis(tick), stop)
        },
    );
    let s = rt.clone();
    supervise(
        tasks,
        health.clone(),
        "request_expiry",
        shutdown.clone(),
        move |stop| {
            crate::request_expiry::run(
                s.clone(),
                std::time::Duration::from_secs(s.config.ar_tick_secs.max(1)),
                stop,
            )
        },
    );
    let s = rt.clone();
    supervise(
        tasks,
        health.clone(),
        "leak_scans",
        shutdown.clone(),
        move |stop| {
            crate::leak_scans::run(
                s.clone(),
                std::time::Duration::from_secs(s.config.ar_tick_secs.max(1)),
                stop,
            )
        },
    );
    tracing::info!(
        "reactor role started: audit checkpoints, vault rotation and expiry, dynamic secret lease expiry, wrap expiry, leak scans, auto-response, webhook fan-out, SIEM forwarders, scheduled reports"
    );
}
