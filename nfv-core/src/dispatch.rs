//! Where each packet goes once the graph is done with it: the decision
//! ([`route`], [`uniform_target`]: pure functions of its outcome and the
//! end of the chain it finished in) kept apart from the moves the worker
//! then makes (transmit queue, free, adjacency, slow path, handoff), so
//! each is tested alone; and the tally of one dispatch, added to the
//! `dispatch` row once.

use crate::adjacency::AdjacencyDrop;
use crate::graph::End;
use crate::packet::{Egress, EgressKind, PortId, VerdictKind};
use crate::telemetry::StageCounters;
use crate::worker::DispatchDrop;

/// What becomes of one packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Route {
    /// Queued for transmission on this port.
    Port(PortId),
    /// Dropped by a stage (counted there): its frame goes back.
    Free,
    /// Decided by nobody and its chain ends nowhere: dropped, counted
    /// `unhandled`.
    Unhandled,
    /// Waits for its next hop: the adjacency holds it.
    Hold,
    /// Refused by the adjacency for this reason: dropped, counted there.
    Refused(AdjacencyDrop),
    /// To the slow path.
    Punt,
    /// To the worker of rank `worker`, resuming at position `stage` of
    /// chain `chain`.
    Handoff {
        /// Rank of the receiving worker.
        worker: u8,
        /// Chain to resume in.
        chain: u8,
        /// Chain position to resume at.
        stage: u8,
    },
}

/// The route of a packet with outcome `v` that arrived on `port` (its
/// `meta.port`) and finished in a chain ending in `end`.
#[inline(always)]
pub(crate) fn route(v: VerdictKind, port: PortId, end: End) -> Route {
    match v {
        VerdictKind::Next => match end {
            End::Port(p) => Route::Port(p),
            End::Ingress => Route::Port(port),
            End::Drop | End::Chain(_) => Route::Unhandled,
        },
        VerdictKind::Out(p) => Route::Port(p),
        VerdictKind::Drop(_) => Route::Free,
        VerdictKind::Held => Route::Hold,
        VerdictKind::Refused(r) => Route::Refused(r),
        VerdictKind::Punt => Route::Punt,
        VerdictKind::Handoff { worker, chain, stage } => Route::Handoff { worker, chain, stage },
        // Settled into its chain's inbox before dispatch ever sees it.
        VerdictKind::Goto(_) => Route::Unhandled,
    }
}

/// The one port a whole batch goes to, when every packet shares one
/// egress that names it, or none and the chain's end names one (the
/// fast path: one copy of the descriptors, no per-packet decision); the
/// batch arrived on `rx`.
#[inline(always)]
pub(crate) fn uniform_target(uniform: Option<Egress>, rx: PortId, end: End) -> Option<PortId> {
    match (uniform.map(Egress::kind), end) {
        (Some(EgressKind::None), End::Port(p)) => Some(p),
        (Some(EgressKind::None), End::Ingress) => Some(rx),
        (Some(EgressKind::Port(p)), _) => Some(p),
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
    fn an_outcome_and_the_end_of_its_chain_decide_the_route() {
        let next = VerdictKind::Next;
        assert_eq!(route(next, 3, End::Port(1)), Route::Port(1));
        assert_eq!(route(next, 3, End::Ingress), Route::Port(3), "back out of its own port");
        assert_eq!(route(next, 3, End::Drop), Route::Unhandled, "decided by nobody");
        assert_eq!(route(VerdictKind::Out(2), 3, End::Drop), Route::Port(2), "a stage's egress wins over the end");
        assert_eq!(route(VerdictKind::Out(2), 3, End::Ingress), Route::Port(2));
        assert_eq!(route(VerdictKind::Drop(DropReason(4)), 3, End::Port(1)), Route::Free);
        assert_eq!(route(VerdictKind::Held, 3, End::Port(1)), Route::Hold);
        let no_route = AdjacencyDrop::NoRoute;
        assert_eq!(route(VerdictKind::Refused(no_route), 3, End::Port(1)), Route::Refused(no_route));
        assert_eq!(route(VerdictKind::Punt, 3, End::Port(1)), Route::Punt);
        let h = VerdictKind::Handoff { worker: 1, chain: 4, stage: 2 };
        assert_eq!(route(h, 3, End::Port(1)), Route::Handoff { worker: 1, chain: 4, stage: 2 });
    }

    #[test]
    fn only_a_batch_all_bound_for_one_port_takes_the_fast_path() {
        let none = Some(Egress::NONE);
        assert_eq!(uniform_target(none, 3, End::Port(1)), Some(1));
        assert_eq!(uniform_target(none, 3, End::Ingress), Some(3));
        assert_eq!(uniform_target(none, 3, End::Drop), None, "unhandled packets are counted one by one");
        assert_eq!(uniform_target(Some(Egress::port(2)), 3, End::Drop), Some(2));
        assert_eq!(uniform_target(Some(Egress::via(2, 0)), 3, End::Port(1)), None, "held one by one");
        assert_eq!(uniform_target(None, 3, End::Port(1)), None, "mixed egresses or early finishes");
    }
}
