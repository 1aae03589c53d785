//! SIGINT and SIGTERM during a run: the first stops new starts (active faults are
//! reverted on the same token) and gives in-flight workflows a grace period; the grace
//! over, or a second signal, abandons them. Never the default action, which would skip
//! fault reverts and cleanup.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::load::engine::Control;

/// Start watching SIGINT/SIGTERM: the control the load obeys, whether a signal
/// came, and the watcher task (abort it when done). The listeners are registered
/// here, synchronously, so no signal slips in before the task first runs.
pub fn watch_interrupts(
    grace: Duration,
) -> (Control, Arc<AtomicBool>, tokio::task::JoinHandle<()>) {
    let control = Control::default();
    let interrupted = Arc::new(AtomicBool::new(false));
    let streams = Signals::register();
    let task = tokio::spawn(watch_signals(
        streams,
        control.clone(),
        grace,
        interrupted.clone(),
    ));
    (control, interrupted, task)
}

/// SIGINT and SIGTERM listeners (none when they cannot be installed).
struct Signals(Option<(tokio::signal::unix::Signal, tokio::signal::unix::Signal)>);

impl Signals {
    fn register() -> Signals {
        use tokio::signal::unix::{SignalKind, signal};
        match (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        ) {
            (Ok(int), Ok(term)) => Signals(Some((int, term))),
            _ => Signals(None),
        }
    }
}

/// First SIGINT/SIGTERM: stop new starts (the fault timeline reverts active faults
/// on the same token), give in-flight workflows `grace`. Grace over, or a second
/// signal: abandon them. Later signals are ignored: cleanup and reports finish.
async fn watch_signals(
    signals: Signals,
    control: Control,
    grace: Duration,
    interrupted: Arc<AtomicBool>,
) {
    let Signals(Some((mut int, mut term))) = signals else {
        return;
    };
    tokio::select! {
        _ = int.recv() => {}
        _ = term.recv() => {}
    }
    interrupted.store(true, Ordering::SeqCst);
    control.stop_starts.cancel();
    eprintln!(
        "\ninterrupted: no new starts; waiting up to {} for in-flight workflows (interrupt again to stop now)",
        crate::units::format_duration(grace)
    );
    tokio::select! {
        _ = tokio::time::sleep(grace) => {}
        _ = int.recv() => {}
        _ = term.recv() => {}
    }
    control.abandon.cancel();
}
