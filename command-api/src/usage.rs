//! Group commit of usage records (metering, seed 003's controls).

use aegis_identity::usage::{Record, UsageAggregate};
use aegis_runtime::command::CommandContext;
use aegis_runtime::group_commit::{GroupCommit, GroupError};
use aegis_runtime::Runtime;
use aegis_streams::AggregateRef;

/// Group commit of usage records: the successes of one tenant's operation in one period that
/// finish together are appended as one commit, instead of each racing the others for the
/// subject's next sequence (16 concurrent metered reads would otherwise retry one another for
/// hundreds of milliseconds). Each caller still returns only once its own record is in the log.
pub struct UsageBatches(GroupCommit<Record>);

impl Default for UsageBatches {
    fn default() -> Self {
        Self(GroupCommit::new(aegis_runtime::runtime::MOST_PER_COMMIT))
    }
}

impl UsageBatches {
    pub async fn record(
        &self,
        rt: &Runtime,
        agg: AggregateRef,
        record: Record,
        ctx: &CommandContext,
    ) -> Result<(), String> {
        // One commit carries one actor: only one principal's records go together.
        let key = format!(
            "{}\0{}:{}",
            agg.subject(),
            ctx.meta.actor_kind,
            ctx.meta.actor_subject
        );
        self.0
            .record(key, record, |records| {
                let (executor, agg, ctx) = (rt.executor.clone(), agg.clone(), ctx.clone());
                async move {
                    executor
                        .execute::<UsageAggregate>(&agg, &records, &ctx, false)
                        .await
                        .map(|outcome| outcome.position)
                        .map_err(GroupError::new)
                }
            })
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}
