//! The loop both controllers run: subscribe to the store, make a pass, then sleep until the
//! pass's deadline or a change the controller cares about, whichever comes first, and stop
//! when told. Subscribing before the pass means no change between the two is missed.

use std::sync::Arc;
use std::time::Duration;

use kiln_store::KvStore;
use tokio_util::sync::CancellationToken;

/// One controller's work, as the loop drives it.
pub(crate) trait Reconciler: Send {
    /// Named in log lines.
    const NAME: &'static str;

    /// Does what is due; returns how long until the next pass unless a change comes first.
    fn pass(&mut self) -> impl Future<Output = Result<Duration, kiln_store::StoreError>> + Send;

    /// How long to wait after a pass that failed.
    fn after_failure(&self) -> Duration;

    /// Whether a change to `key` calls for a pass now.
    fn wakes_on(&mut self, key: &str) -> bool;
}

pub(crate) async fn run<R: Reconciler>(store: Arc<dyn KvStore>, mut reconciler: R, shutdown: CancellationToken) {
    let name = R::NAME;
    while !shutdown.is_cancelled() {
        let mut events = match store.watch("", 0).await {
            Ok(events) => events,
            Err(e) => {
                tracing::warn!(error = %e, "{name} cannot watch the store; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(1)) => continue,
                    _ = shutdown.cancelled() => return,
                }
            }
        };
        let wait = tokio::select! {
            passed = reconciler.pass() => passed.unwrap_or_else(|e| {
                tracing::warn!(error = %e, "{name} pass failed");
                reconciler.after_failure()
            }),
            _ = shutdown.cancelled() => return,
        };
        let deadline = tokio::time::sleep(wait);
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                _ = &mut deadline => break,
                _ = shutdown.cancelled() => return,
                event = events.recv() => match event {
                    Some(Ok(event)) if reconciler.wakes_on(&event.entry.key) => break,
                    Some(Ok(_)) => {}
                    // Fell behind or the store closed the watch: look at everything again.
                    _ => break,
                }
            }
        }
    }
}
