//! One progress line on stderr per second while a phase runs.

use std::time::{Duration, Instant};

use tokio::task::JoinHandle;

/// Prints `line()` every second until the returned handle is aborted (or `limit` passes).
pub(crate) fn every_second(
    quiet: bool,
    phase: &'static str,
    limit: Duration,
    mut line: impl FnMut() -> String + Send + 'static,
) -> Option<JoinHandle<()>> {
    if quiet {
        return None;
    }
    Some(tokio::spawn(async move {
        let start = Instant::now();
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.tick().await;
        while start.elapsed() < limit {
            tick.tick().await;
            eprintln!(
                "[{phase} {:>5.1}s] {}",
                start.elapsed().as_secs_f64(),
                line()
            );
        }
    }))
}

/// Stops a progress printer.
pub(crate) fn stop(handle: Option<JoinHandle<()>>) {
    if let Some(handle) = handle {
        handle.abort();
    }
}
