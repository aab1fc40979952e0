//! Group commit of usage records (metering, seed 003's controls).

use aegis_identity::usage::{Record, UsageAggregate};
use aegis_runtime::command::CommandContext;
use aegis_runtime::Runtime;
use aegis_streams::AggregateRef;

/// Where a waiting caller hears whether its record is in the log.
type Answer = tokio::sync::oneshot::Sender<Result<(), String>>;

/// Group commit of usage records: the successes of one tenant's operation in one period that
/// finish together are appended as one commit by whichever of them gets there first, instead
/// of each racing the others for the subject's next sequence (16 concurrent metered reads
/// would otherwise retry one another for hundreds of milliseconds). Each caller still returns
/// only once its own record is in the log.
#[derive(Default)]
pub struct UsageBatches {
    subjects: std::sync::Mutex<std::collections::HashMap<String, std::sync::Arc<Batch>>>,
}

#[derive(Default)]
struct Batch {
    /// Held by the caller appending; the others queue behind it.
    appending: tokio::sync::Mutex<()>,
    waiting: std::sync::Mutex<Vec<(Record, Answer)>>,
}

/// How many subjects' batches an instance keeps; past it, idle ones are forgotten.
const BATCHES: usize = 10_000;

impl UsageBatches {
    pub async fn record(
        &self,
        rt: &Runtime,
        agg: AggregateRef,
        record: Record,
        ctx: &CommandContext,
    ) -> Result<(), String> {
        let batch = {
            let mut subjects = self.subjects.lock().map_err(|e| e.to_string())?;
            if subjects.len() >= BATCHES {
                subjects.retain(|_, b| std::sync::Arc::strong_count(b) > 1);
            }
            // One commit carries one actor: only one principal's records go together.
            let key = format!(
                "{}\0{}:{}",
                agg.subject(),
                ctx.meta.actor_kind,
                ctx.meta.actor_subject
            );
            subjects.entry(key).or_default().clone()
        };
        let (tx, rx) = tokio::sync::oneshot::channel();
        batch
            .waiting
            .lock()
            .map_err(|e| e.to_string())?
            .push((record, tx));
        {
            let _turn = batch.appending.lock().await;
            let taken = std::mem::take(&mut *batch.waiting.lock().map_err(|e| e.to_string())?);
            // Empty when the caller before took this record into its commit.
            if !taken.is_empty() {
                let (records, senders): (Vec<Record>, Vec<_>) = taken.into_iter().unzip();
                let done = rt
                    .executor
                    .execute::<UsageAggregate>(&agg, &records, ctx, false)
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string());
                for sender in senders {
                    let _ = sender.send(done.clone());
                }
            }
        }
        rx.await.map_err(|e| e.to_string())?
    }
}
