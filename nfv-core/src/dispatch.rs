//! Where each packet goes once the chain is done with it: the decision
//! ([`route`], [`uniform_target`]: pure functions of its verdict and the
//! worker's `tx`) kept apart from the moves the worker then makes
//! (transmit queue, free, slow path, handoff), so each is tested alone;
//! and the tally of one dispatch, added to the `dispatch` row once.

use crate::config::Tx;
use crate::packet::{PortId, VerdictKind};
use crate::telemetry::StageCounters;
use crate::worker::DispatchDrop;

/// What becomes of one packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Route {
    /// Queued for transmission on this port.
    Port(PortId),
    /// Dropped by a stage (counted there): its frame goes back.
    Free,
    /// Decided by nobody and the worker has no `tx`: dropped, counted
    /// `unhandled`.
    Unhandled,
    /// Held by the adjacency for its next hop: the frame is not the
    /// batch's any more.
    Held,
    /// To the slow path.
    Punt,
    /// To the chain's worker `worker`, resuming at chain position `stage`.
    Handoff {
        /// Rank of the receiving worker.
        worker: u8,
        /// Chain position to resume at.
        stage: u8,
    },
}

/// The route of a packet with verdict `v` that arrived on `port` (its
/// `meta.port`), on a worker whose undecided packets go to `tx`.
#[inline(always)]
pub(crate) fn route(v: VerdictKind, port: PortId, tx: Tx) -> Route {
    match v {
        VerdictKind::Next => match tx {
            Tx::Port(p) => Route::Port(p),
            Tx::InPort => Route::Port(port),
            Tx::Drop => Route::Unhandled,
        },
        VerdictKind::Out(p) => Route::Port(p),
        VerdictKind::Drop(_) => Route::Free,
        VerdictKind::Held => Route::Held,
        VerdictKind::Punt => Route::Punt,
        VerdictKind::Handoff { worker, stage } => Route::Handoff { worker, stage },
    }
}

/// The one port a whole batch goes to, when every packet shares one
/// verdict that names it (the fast path: one copy of the descriptors, no
/// per-packet decision); the batch arrived on `rx`.
#[inline(always)]
pub(crate) fn uniform_target(uniform: Option<VerdictKind>, rx: PortId, tx: Tx) -> Option<PortId> {
    match (uniform, tx) {
        (Some(VerdictKind::Next), Tx::Port(p)) => Some(p),
        (Some(VerdictKind::Next), Tx::InPort) => Some(rx),
        (Some(VerdictKind::Out(p)), _) => Some(p),
        _ => None,
    }
}

/// What one dispatch counted, added to the counters once.
#[derive(Default)]
pub(crate) struct Tally {
    pub(crate) punted: u64,
    pub(crate) no_port: u64,
    pub(crate) punt_full: u64,
    pub(crate) no_slow: u64,
    pub(crate) handoff_full: u64,
    pub(crate) unhandled: u64,
}

impl Tally {
    /// Adds the tally of `n` packets to the `dispatch` row.
    pub(crate) fn record(&self, c: &StageCounters, n: usize) {
        c.calls.add(1);
        c.pkts_in.add(n as u64);
        c.pkts_punt.add(self.punted);
        c.drops[DispatchDrop::NoTxPort as usize].add(self.no_port);
        c.drops[DispatchDrop::PuntQueueFull as usize].add(self.punt_full);
        c.drops[DispatchDrop::NoSlowPath as usize].add(self.no_slow);
        c.drops[DispatchDrop::HandoffFull as usize].add(self.handoff_full);
        c.drops[DispatchDrop::Unhandled as usize].add(self.unhandled);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::DropReason;

    #[test]
    fn a_verdict_and_the_workers_tx_decide_the_route() {
        let next = VerdictKind::Next;
        assert_eq!(route(next, 3, Tx::Port(1)), Route::Port(1));
        assert_eq!(route(next, 3, Tx::InPort), Route::Port(3), "back out of its own port");
        assert_eq!(route(next, 3, Tx::Drop), Route::Unhandled, "decided by nobody");
        assert_eq!(route(VerdictKind::Out(2), 3, Tx::Drop), Route::Port(2), "a stage's port wins over tx");
        assert_eq!(route(VerdictKind::Drop(DropReason(4)), 3, Tx::Port(1)), Route::Free);
        assert_eq!(route(VerdictKind::Held, 3, Tx::Port(1)), Route::Held);
        assert_eq!(route(VerdictKind::Punt, 3, Tx::Port(1)), Route::Punt);
        let h = VerdictKind::Handoff { worker: 1, stage: 2 };
        assert_eq!(route(h, 3, Tx::Port(1)), Route::Handoff { worker: 1, stage: 2 });
    }

    #[test]
    fn only_a_batch_all_bound_for_one_port_takes_the_fast_path() {
        let next = Some(VerdictKind::Next);
        assert_eq!(uniform_target(next, 3, Tx::Port(1)), Some(1));
        assert_eq!(uniform_target(next, 3, Tx::InPort), Some(3));
        assert_eq!(uniform_target(next, 3, Tx::Drop), None, "unhandled packets are counted one by one");
        assert_eq!(uniform_target(Some(VerdictKind::Out(2)), 3, Tx::Drop), Some(2));
        assert_eq!(uniform_target(Some(VerdictKind::Punt), 3, Tx::Port(1)), None);
        assert_eq!(uniform_target(None, 3, Tx::Port(1)), None, "mixed verdicts");
    }
}
