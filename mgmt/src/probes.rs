//! The health probes Kubernetes and load balancers ask: `/livez` (every
//! worker polls), `/readyz` (running, the next hops the chains need
//! resolved or waited for long enough), `/startupz` (workers started).
//! Each answers 200 with `ok` (and notes), or 503 with one line per
//! reason.

/// A probe's answer: `Ok(notes)` or `Err(reasons)`.
pub type Probe = Result<Vec<String>, Vec<String>>;

use nfv_core::cycles;
use nfv_core::status::{Phase, RESOLVE_WAIT};
use nfv_core::telemetry::WorkerCounters;

use crate::State;

/// Why worker `w` counts as wedged as of cycle counter `now`: silent for
/// longer than `bound` seconds while its run has not ended.
pub(crate) fn wedged(w: &WorkerCounters, now: u64, bound: f64) -> Option<String> {
    if w.exited.load(std::sync::atomic::Ordering::Relaxed) || w.polls.get() == 0 {
        // Ended, or not started yet (that is the startup probe's business).
        return None;
    }
    let silent = w.silent_secs(now);
    (silent > bound).then(|| {
        let core = w.core.map(|c| format!(" (core {c})")).unwrap_or_default();
        format!("worker {}{core}: no poll for {silent:.1} s (bound {bound} s)", w.index)
    })
}

/// `/livez`: `Err` lists every wedged worker.
pub fn livez(s: &State) -> Probe {
    let now = cycles::now();
    let bad: Vec<String> = s.telemetry.workers.iter().filter_map(|w| wedged(w, now, s.live_bound)).collect();
    if bad.is_empty() { Ok(Vec::new()) } else { Err(bad) }
}

/// `/startupz`: the workers have started.
pub fn startupz(s: &State) -> Probe {
    match s.status.phase() {
        Phase::Starting => Err(vec!["workers not started yet".into()]),
        _ => Ok(Vec::new()),
    }
}

/// `/readyz`: running, and every next hop the configuration needs is
/// resolved, or the run is older than [`RESOLVE_WAIT`] (the probe then
/// names them, and they are still asked for every second).
pub fn readyz(s: &State) -> Probe {
    match s.status.phase() {
        Phase::Starting => return Err(vec!["workers not started yet".into()]),
        Phase::Stopping => return Err(vec!["stopping".into()]),
        Phase::Running => {}
    }
    let missing = s.status.unresolved();
    if missing.is_empty() {
        return Ok(Vec::new());
    }
    let list: Vec<String> = missing.iter().map(|ip| ip.to_string()).collect();
    if s.status.built.elapsed() >= RESOLVE_WAIT {
        return Ok(vec![format!("next hops still unresolved (asked for every second): {}", list.join(", "))]);
    }
    Err(vec![format!("next hops not resolved yet: {}", list.join(", "))])
}
