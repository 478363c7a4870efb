//! Where a run is, for the management plane's probes: starting (ports
//! opening, workers not yet polling), running, stopping; and the next hops
//! the configuration needs, which readiness waits for.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, Instant};

use crate::neighbour::Neighbours;

/// The phase of a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Built, workers not yet started.
    Starting = 0,
    /// Workers polling.
    Running = 1,
    /// Told to stop, or every source exhausted: workers draining.
    Stopping = 2,
}

/// Shared between the runtime, which moves it on, and the management
/// plane, which reads it.
pub struct RunStatus {
    /// When the runtime was built.
    pub built: Instant,
    phase: AtomicU8,
    /// Next hops the configuration asks to keep resolved (neighbours
    /// without a MAC, stages' gateways and next forwarders).
    pub wanted: Vec<IpAddr>,
    /// The neighbour table they are resolved into.
    pub neighbours: Arc<Neighbours>,
}

/// How long readiness waits for wanted next hops before it stops waiting
/// (they are still asked for every second; the probe lists them).
pub const RESOLVE_WAIT: Duration = Duration::from_secs(3);

impl RunStatus {
    /// A run being built that wants `wanted` resolved in `neighbours`.
    pub fn new(wanted: Vec<IpAddr>, neighbours: Arc<Neighbours>) -> Self {
        Self { built: Instant::now(), phase: AtomicU8::new(Phase::Starting as u8), wanted, neighbours }
    }

    /// The current phase.
    pub fn phase(&self) -> Phase {
        match self.phase.load(Ordering::Acquire) {
            0 => Phase::Starting,
            1 => Phase::Running,
            _ => Phase::Stopping,
        }
    }

    pub(crate) fn set_phase(&self, p: Phase) {
        self.phase.store(p as u8, Ordering::Release);
    }

    /// Wanted next hops not in the neighbour table yet.
    pub fn unresolved(&self) -> Vec<IpAddr> {
        let table = self.neighbours.snapshot();
        self.wanted.iter().copied().filter(|ip| table.lookup(ip).is_none()).collect()
    }
}
