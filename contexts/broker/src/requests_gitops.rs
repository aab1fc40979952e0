//! GitOps observations of an executed patch request (seed 004, BRD §26): for each Argo CD
//! application mapped to what the request changed, Aegis watches the application until Argo CD
//! shows the change applied (Synced and Healthy, reconciled after the request executed), shows
//! it failed, or the watch times out (applied_unverified: nobody could tell). The watches begin
//! in the same commit that records the request executed, so a crash cannot lose them.

use uuid::Uuid;

/// One application to watch, as it was mapped when the request executed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Watch {
    pub mapping_id: Uuid,
    pub endpoint_id: Uuid,
    pub application_name: String,
    pub application_namespace: String,
    /// When an application not yet seen applied is given up on (ms since the epoch).
    pub timeout_at: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PollingState {
    Queued,
    Active,
    Applied,
    AppliedUnverified,
    Failed,
}

impl PollingState {
    pub fn as_str(self) -> &'static str {
        match self {
            PollingState::Queued => "queued",
            PollingState::Active => "active",
            PollingState::Applied => "applied",
            PollingState::AppliedUnverified => "applied_unverified",
            PollingState::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<PollingState> {
        Some(match s {
            "queued" => PollingState::Queued,
            "active" => PollingState::Active,
            "applied" => PollingState::Applied,
            "applied_unverified" => PollingState::AppliedUnverified,
            "failed" => PollingState::Failed,
            _ => return None,
        })
    }

    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            PollingState::Applied | PollingState::AppliedUnverified | PollingState::Failed
        )
    }
}

/// A watch and what it has seen so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observation {
    pub watch: Watch,
    pub state: PollingState,
    /// `sync/health` as Argo CD last reported it; empty before the first answer.
    pub observed_state: String,
    pub last_polled_at: Option<i64>,
    pub polls_count: u32,
    pub last_error: String,
    /// When the watch began: the request's execution.
    pub queued_at: i64,
    pub terminal_at: Option<i64>,
}

impl Observation {
    pub fn new(watch: Watch, queued_at: i64) -> Observation {
        Observation {
            watch,
            state: PollingState::Queued,
            observed_state: String::new(),
            last_polled_at: None,
            polls_count: 0,
            last_error: String::new(),
            queued_at,
            terminal_at: None,
        }
    }

    /// Records one poll's verdict.
    pub fn polled(&mut self, p: &Polled) {
        self.state = p.state;
        self.polls_count = self.polls_count.saturating_add(1);
        self.last_polled_at = Some(p.at);
        if !p.observed_state.is_empty() {
            self.observed_state = p.observed_state.clone();
        }
        self.last_error = p.error.clone();
        if p.state.is_terminal() {
            self.terminal_at = Some(p.at);
        }
    }
}

/// What one GET of the application found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seen {
    App {
        sync: String,
        health: String,
        /// When Argo CD last compared the application with git (ms), if it says.
        reconciled_at: Option<i64>,
        /// The last sync operation's phase (`Succeeded`, `Failed`, `Error`, ...), if any.
        operation_phase: String,
        operation_finished_at: Option<i64>,
    },
    /// Argo CD answered that it has no such application.
    Missing,
    /// No answer to judge by (unreachable, refused, disabled endpoint): retried until timeout.
    Unreachable(String),
}

/// One poll's verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Polled {
    pub mapping_id: Uuid,
    pub state: PollingState,
    pub observed_state: String,
    pub error: String,
    pub at: i64,
}

/// Judges what a poll at `now` saw. Argo CD reporting Synced and Healthy only counts once it
/// has reconciled after the request executed: before that it describes the old state.
pub fn judge(o: &Observation, seen: &Seen, now: i64) -> Polled {
    let timed_out = now >= o.watch.timeout_at;
    let (state, observed_state, error) = match seen {
        Seen::App {
            sync,
            health,
            reconciled_at,
            operation_phase,
            operation_finished_at,
        } => {
            let observed = format!("{sync}/{health}");
            let fresh = reconciled_at.is_none_or(|r| r >= o.queued_at);
            let failed_sync = matches!(operation_phase.as_str(), "Failed" | "Error")
                && operation_finished_at.is_none_or(|f| f >= o.queued_at);
            if fresh && sync == "Synced" && health == "Healthy" {
                (PollingState::Applied, observed, String::new())
            } else if failed_sync {
                let error = format!("argo cd's sync operation ended {operation_phase}");
                (PollingState::Failed, observed, error)
            } else if fresh && health == "Degraded" {
                let error = "argo cd reports the application degraded".to_string();
                (PollingState::Failed, observed, error)
            } else if timed_out {
                (PollingState::AppliedUnverified, observed, String::new())
            } else {
                (PollingState::Active, observed, String::new())
            }
        }
        Seen::Missing => (
            PollingState::Failed,
            String::new(),
            "argo cd has no such application".to_string(),
        ),
        Seen::Unreachable(e) if timed_out => {
            (PollingState::AppliedUnverified, String::new(), e.clone())
        }
        Seen::Unreachable(e) => (PollingState::Active, String::new(), e.clone()),
    };
    Polled {
        mapping_id: o.watch.mapping_id,
        state,
        observed_state,
        error,
        at: now,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn watching() -> Observation {
        Observation::new(
            Watch {
                mapping_id: Uuid::from_u128(7),
                endpoint_id: Uuid::from_u128(8),
                application_name: "payments".into(),
                application_namespace: "argocd".into(),
                timeout_at: 10_000,
            },
            1_000,
        )
    }

    fn app(sync: &str, health: &str, reconciled_at: Option<i64>) -> Seen {
        Seen::App {
            sync: sync.into(),
            health: health.into(),
            reconciled_at,
            operation_phase: String::new(),
            operation_finished_at: None,
        }
    }

    #[test]
    fn synced_and_healthy_after_execution_is_applied() {
        let p = judge(&watching(), &app("Synced", "Healthy", Some(2_000)), 3_000);
        assert_eq!(p.state, PollingState::Applied);
        assert_eq!(p.observed_state, "Synced/Healthy");
    }

    #[test]
    fn synced_before_the_request_executed_proves_nothing() {
        let p = judge(&watching(), &app("Synced", "Healthy", Some(500)), 3_000);
        assert_eq!(p.state, PollingState::Active);
    }

    #[test]
    fn progressing_stays_active_until_it_times_out() {
        let o = watching();
        assert_eq!(
            judge(&o, &app("OutOfSync", "Progressing", Some(2_000)), 3_000).state,
            PollingState::Active
        );
        assert_eq!(
            judge(&o, &app("OutOfSync", "Progressing", Some(2_000)), 10_000).state,
            PollingState::AppliedUnverified
        );
    }

    #[test]
    fn degraded_missing_or_a_failed_sync_is_failed() {
        let o = watching();
        let degraded = judge(&o, &app("Synced", "Degraded", Some(2_000)), 3_000);
        assert_eq!(degraded.state, PollingState::Failed);
        let missing = judge(&o, &Seen::Missing, 3_000);
        assert_eq!(missing.state, PollingState::Failed);
        assert!(missing.error.contains("no such application"));
        let sync_failed = Seen::App {
            sync: "OutOfSync".into(),
            health: "Healthy".into(),
            reconciled_at: Some(2_000),
            operation_phase: "Failed".into(),
            operation_finished_at: Some(2_500),
        };
        assert_eq!(judge(&o, &sync_failed, 3_000).state, PollingState::Failed);
    }

    #[test]
    fn unreachable_is_retried_then_unverified_with_its_error() {
        let o = watching();
        let down = Seen::Unreachable("argo cd cannot be reached".into());
        let p = judge(&o, &down, 3_000);
        assert_eq!(p.state, PollingState::Active);
        assert_eq!(p.error, "argo cd cannot be reached");
        let p = judge(&o, &down, 10_001);
        assert_eq!(p.state, PollingState::AppliedUnverified);
    }

    #[test]
    fn a_poll_counts_and_a_verdict_ends_the_watch() {
        let mut o = watching();
        o.polled(&judge(&o, &app("OutOfSync", "Progressing", None), 2_000));
        o.polled(&judge(&o, &app("Synced", "Healthy", Some(2_500)), 3_000));
        assert_eq!(o.polls_count, 2);
        assert_eq!(o.state, PollingState::Applied);
        assert_eq!(o.terminal_at, Some(3_000));
        assert_eq!(o.last_polled_at, Some(3_000));
    }
}
