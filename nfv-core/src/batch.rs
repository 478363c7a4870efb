//! A batch: the unit every port and stage works on.
//!
//! Packets still in the chain are kept contiguous and in arrival order in
//! `active`, so a stage is a plain loop over a slice. When a stage finishes
//! packets (drop, out, punt) the chain moves them to `done` in one stable
//! pass, so later stages never look at them and per-flow order is kept.

use std::sync::Arc;

use crate::frame::{Arena, FRAME_SIZE, FramePool};
use crate::packet::{
    ChainId, Egress, Finished, FrameTag, Marks, NewPacket, PacketMut, PktDesc, PortId, Verdict, VerdictKind,
};

/// Largest batch the runtime accepts.
pub const MAX_BATCH: usize = 256;
/// Default batch size (DPDK and VPP use 32-256).
pub const DEFAULT_BATCH: usize = 64;

/// Packets of one burst, bound to the arena their frames live in.
pub struct Batch {
    arena: Arc<Arena>,
    active: Vec<PktDesc>,
    done: Vec<PktDesc>,
    marks: Marks,
    /// Some packet may have an egress (a stage gave one, or it came with
    /// one): dispatch compares them; else all are undecided.
    egressed: bool,
    capacity: usize,
    rx_port: PortId,
    /// In a graph, the packets this batch's chain sent to each chain it
    /// may send to, by [`ChainId`] (`None` for the others), in order,
    /// waiting for that chain's turn.
    outboxes: Box<[Option<Vec<PktDesc>>]>,
}

// SAFETY: the batch exclusively owns the frames its descriptors name; the
// Cell is only touched by the thread holding `&mut Batch`.
unsafe impl Send for Batch {}

impl Batch {
    /// An empty batch of at most `capacity` received packets. Storage is
    /// reserved once (twice the capacity, for stages that replicate).
    pub fn new(arena: Arc<Arena>, capacity: usize) -> Self {
        let capacity = capacity.clamp(1, MAX_BATCH);
        Self {
            arena,
            active: Vec::with_capacity(2 * MAX_BATCH),
            done: Vec::with_capacity(2 * MAX_BATCH),
            marks: Marks::default(),
            egressed: false,
            capacity,
            rx_port: 0,
            outboxes: Box::new([]),
        }
    }

    /// Gives the batch a way to each chain of `targets` among `chains`
    /// (the graph's chains this batch's chain may send packets to).
    pub(crate) fn set_targets(&mut self, chains: usize, targets: &[ChainId]) {
        self.outboxes =
            (0..chains).map(|c| targets.contains(&(c as ChainId)).then(|| Vec::with_capacity(2 * MAX_BATCH))).collect();
    }

    /// The packets waiting for chain `t` (`None` if this chain has no way
    /// to it).
    #[inline(always)]
    pub(crate) fn outbox(&mut self, t: ChainId) -> Option<&mut Vec<PktDesc>> {
        self.outboxes.get_mut(t as usize).and_then(Option::as_mut)
    }

    /// Sends every packet still in the chain on to chain `t` (where the
    /// chain ends, `then = "CHAIN"`): a swap of lists when nothing else
    /// waits for `t`.
    ///
    /// # Panics
    /// If the batch has no way to `t` (the graph gives one to the chain it
    /// ends in).
    #[inline]
    pub(crate) fn send_rest(&mut self, t: ChainId) {
        let o = self.outboxes.get_mut(t as usize).and_then(Option::as_mut).expect("a way to the chain it ends in");
        if o.is_empty() {
            std::mem::swap(o, &mut self.active);
        } else {
            o.append(&mut self.active);
        }
    }

    /// Sends packets to other chains of the graph in one pass, without
    /// moving their frames: `to` reads each packet still undecided
    /// about (not finished; its bytes only if it asks for them) and names
    /// the chain it goes to, or `None` to keep it in this one. A classifier's whole job, so it costs a
    /// descriptor move per packet and nothing more (no verdict written
    /// and read back). Each chain gets its packets in batch order. A
    /// chain this one has no way to (outside a graph, or a chain the
    /// stage did not declare as a branch) gets nothing: the packet
    /// finishes as [`PacketMut::goto`] would have it.
    #[inline]
    pub fn split(&mut self, mut to: impl FnMut(&PacketMut<'_>) -> Option<ChainId>) {
        let Self { arena, active, outboxes, marks, .. } = self;
        let n = active.len();
        let mut kept = 0;
        for i in 0..n {
            let d = &mut active[i];
            let stays = if d.verdict.is_next() {
                // SAFETY: the batch owns the frame (one-owner invariant);
                // the borrow ends with `to`'s call, before the descriptor
                // moves, and `to` only gets it shared.
                let frame = unsafe { &mut *(arena.frame_ptr(d.frame) as *mut [u8; FRAME_SIZE]) };
                match to(&PacketMut { desc: d, frame, marks }) {
                    None => true,
                    Some(c) => match outboxes.get_mut(c as usize) {
                        Some(Some(o)) => {
                            o.push(d.dup());
                            false
                        }
                        _ => {
                            d.verdict = Verdict::goto(c);
                            marks.finished.set(marks.finished.get() + 1);
                            true
                        }
                    },
                }
            } else {
                true
            };
            if stays {
                if kept != i {
                    active[kept] = active[i].dup();
                }
                kept += 1;
            }
        }
        active.truncate(kept);
    }

    /// The configured burst size.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Packets still in the chain.
    #[inline(always)]
    pub fn len(&self) -> usize {
        self.active.len()
    }

    /// True when no packet is left in the chain.
    #[inline(always)]
    pub fn is_empty(&self) -> bool {
        self.active.is_empty()
    }

    /// How many more packets a port may push in this burst.
    #[inline(always)]
    pub fn room(&self) -> usize {
        self.capacity.saturating_sub(self.active.len())
    }

    /// The port every packet of the batch arrived on. A batch holds one
    /// port's burst (or one handoff group, or one stage's tick), so stages
    /// choose per-port behaviour once per batch; packets a stage adds
    /// keep their own `meta.port`.
    #[inline(always)]
    pub fn rx_port(&self) -> PortId {
        self.rx_port
    }

    /// Says which port the packets about to be added arrived on: the
    /// worker before each burst, a test runner before it feeds packets.
    #[inline(always)]
    pub fn set_rx_port(&mut self, port: PortId) {
        self.rx_port = port;
    }

    /// Adds a packet made from the pool of this batch's arena (a replica,
    /// a released packet, a test frame). It enters as `Next`.
    ///
    /// # Panics
    /// If the packet's frame belongs to another arena: its frame index
    /// would name some other packet's frame here.
    #[inline]
    pub fn push(&mut self, p: NewPacket) {
        assert_eq!(p.arena(), self.arena.id(), "a packet pushed into a batch of another pool's arena");
        let d = p.into_desc();
        self.egressed |= d.egress.is_decided();
        self.active.push(d);
    }

    /// Checks that `pool` hands out frames of this batch's arena: a port
    /// receiving from one into the other would name foreign frames.
    #[inline(always)]
    pub(crate) fn assert_pool(&self, pool: &FramePool) {
        assert_eq!(pool.arena().id(), self.arena.id(), "a port received from a pool into a batch of another arena");
    }

    /// Adds a descriptor whose frame the caller (a port, the worker) gives
    /// up to the batch.
    #[inline(always)]
    pub(crate) fn push_desc(&mut self, desc: PktDesc) {
        debug_assert!(desc.verdict.is_next(), "packets enter a batch as Next; finish them through PacketMut");
        self.egressed |= desc.egress.is_decided();
        self.active.push(desc);
    }

    /// Adds many packets at once (an rx ring's worth); cheaper than
    /// `push_desc` in a loop when the iterator knows its length.
    #[cfg_attr(not(feature = "af-xdp"), allow(dead_code))] // the AF_XDP rings' bulk moves
    #[inline(always)]
    pub(crate) fn extend(&mut self, descs: impl IntoIterator<Item = PktDesc>) {
        self.active.extend(descs);
    }

    /// The egress every packet of the batch shares, if they all share
    /// one and none left early (no drop, punt, branch or handoff): lets
    /// dispatch hand the whole batch on with one copy.
    #[inline]
    pub fn uniform_egress(&self) -> Option<Egress> {
        if !self.done.is_empty() || self.marks.finished.get() != 0 {
            return None;
        }
        if !self.egressed {
            return (!self.active.is_empty()).then_some(Egress::NONE);
        }
        let first = self.active.first()?.egress;
        self.active.iter().all(|d| d.egress == first).then_some(first)
    }

    /// Moves every packet, finished ones first, to the end of `out`.
    #[inline]
    pub(crate) fn move_all_to(&mut self, out: &mut Vec<PktDesc>) {
        out.append(&mut self.done);
        out.append(&mut self.active);
        self.marks.finished.set(0);
        self.egressed = false;
    }

    /// The list of packets still in the chain, to swap with a chain's
    /// inbox or move to the next chain in one go (they may come with
    /// egresses).
    #[inline(always)]
    pub(crate) fn active_mut(&mut self) -> &mut Vec<PktDesc> {
        self.egressed = true;
        &mut self.active
    }

    /// Descriptors of the packets still in the chain.
    pub fn active(&self) -> &[PktDesc] {
        &self.active
    }

    /// Descriptors of the packets that left the chain early, with verdicts.
    pub fn done(&self) -> &[PktDesc] {
        &self.done
    }

    /// The same, writable (the chain completes handoff verdicts).
    pub(crate) fn done_mut(&mut self) -> &mut [PktDesc] {
        &mut self.done
    }

    /// Iterates the packets still in the chain, in order.
    #[inline(always)]
    pub fn iter_mut(&mut self) -> impl Iterator<Item = PacketMut<'_>> {
        let arena = &self.arena;
        let marks = &self.marks;
        self.active.iter_mut().map(move |desc| {
            // SAFETY: each descriptor names a distinct frame owned by this
            // batch (one-owner invariant), so the mutable frame borrows do
            // not alias; they live no longer than `&mut self`.
            let frame = unsafe { &mut *(arena.frame_ptr(desc.frame) as *mut [u8; FRAME_SIZE]) };
            PacketMut { desc, frame, marks }
        })
    }

    /// The bytes of active packet `i` (for ports, tests and tracing).
    pub fn data(&self, i: usize) -> &[u8] {
        let d = &self.active[i];
        // SAFETY: the batch owns the frame; shared borrow tied to &self.
        let frame = unsafe { &*(self.arena.frame_ptr(d.frame) as *const [u8; FRAME_SIZE]) };
        &frame[d.data_range()]
    }

    /// The bytes of a descriptor this batch holds (tracing).
    pub(crate) fn bytes_of(&self, d: &PktDesc) -> &[u8] {
        // SAFETY: the batch owns the frame; shared borrow tied to &self.
        let frame = unsafe { &*(self.arena.frame_ptr(d.frame) as *const [u8; FRAME_SIZE]) };
        &frame[d.data_range()]
    }

    /// The packets waiting for each chain, for tracing: (chain, list).
    pub(crate) fn outboxes(&self) -> impl Iterator<Item = (ChainId, &[PktDesc])> {
        self.outboxes.iter().enumerate().filter_map(|(c, o)| Some((c as ChainId, o.as_deref()?)))
    }

    /// Number of packets finished by the current stage and not yet settled.
    #[inline(always)]
    pub fn unsettled(&self) -> u32 {
        self.marks.finished.get()
    }

    /// How many packets got an egress since the last call (the stage
    /// that decided is credited with them).
    #[inline(always)]
    pub(crate) fn take_routed(&mut self) -> u32 {
        let n = self.marks.routed.replace(0);
        self.egressed |= n > 0;
        n
    }

    /// Moves packets finished by the last stage from `active` to `done`,
    /// keeping order, and adds their drop reasons to `drops`; in a graph,
    /// a packet sent to another chain ([`PacketMut::goto`]) goes, `Next`
    /// again, to the end of that chain's outbox instead. Costs nothing
    /// when the stage finished no packet.
    #[inline]
    pub fn settle(&mut self, drops: &mut [u64]) -> u32 {
        let n = self.marks.finished.replace(0);
        if n == 0 {
            return 0;
        }
        let (done, outboxes) = (&mut self.done, &mut self.outboxes);
        let mut finish = |d: &PktDesc| {
            // Sent to a chain this one has a way to: `Next` again there.
            if let Some(c) = d.verdict.goto_target()
                && let Some(Some(o)) = outboxes.get_mut(c as usize)
            {
                o.push(PktDesc { verdict: Verdict::next(), ..d.dup() });
                return;
            }
            if let VerdictKind::Drop(r) = d.outcome()
                && let Some(c) = drops.get_mut(r.0 as usize)
            {
                *c += 1;
            }
            done.push(d.dup());
        };
        if n as usize == self.active.len() {
            // The stage finished every packet (a classifier at the entry):
            // nothing stays, no compaction.
            self.active.iter().for_each(&mut finish);
            self.active.clear();
        } else {
            self.active.retain(|d| {
                if d.verdict.is_next() {
                    return true;
                }
                finish(d);
                false
            });
        }
        n
    }

    /// Takes both lists for dispatch after the chain; the batch is empty
    /// afterwards. `f` gets every descriptor, the finished ones first.
    pub(crate) fn drain(&mut self, mut f: impl FnMut(PktDesc)) {
        self.drain_with_arena(|_, d| f(d));
    }

    /// [`Batch::drain`], with the batch's arena lent to `f`.
    #[inline(always)]
    fn drain_with_arena(&mut self, mut f: impl FnMut(&Arena, PktDesc)) {
        let Self { arena, done, active, .. } = self;
        for d in done.drain(..).chain(active.drain(..)) {
            f(arena, d);
        }
        self.marks.finished.set(0);
        self.marks.routed.set(0);
        self.egressed = false;
    }

    /// Empties the batch where no worker dispatches it (test runners,
    /// benchmarks): `f` gets each packet's outcome, metadata and bytes,
    /// finished packets first. A packet waiting for its next hop is given
    /// to `adjacency` to hold, as the worker would; every other frame goes
    /// back to `pool`.
    ///
    /// # Panics
    /// If `pool` is not the pool of this batch's arena.
    pub fn finish_into(
        &mut self,
        pool: &mut FramePool,
        adjacency: &mut crate::adjacency::Adjacency,
        mut f: impl FnMut(Finished<'_>),
    ) {
        assert_eq!(pool.arena().id(), self.arena.id(), "a batch finished into another arena's pool");
        self.drain_with_arena(|arena, d| {
            let (frame_id, range) = (d.frame, d.data_range());
            // SAFETY: the batch owned the frame until now; shared borrows
            // for the calls, before the frame goes back to the pool or on
            // to the adjacency (which leaves it in place).
            let frame = || unsafe { &*(arena.frame_ptr(frame_id) as *const [u8; FRAME_SIZE]) };
            let mut outcome = d.outcome();
            let meta = d.meta;
            if outcome == VerdictKind::Held {
                match adjacency.take(d, arena.id()) {
                    Ok(()) => {
                        f(Finished { tag: FrameTag(frame_id), verdict: outcome, meta: &meta, data: &frame()[range] });
                        return;
                    }
                    Err(_) => outcome = VerdictKind::Refused(crate::adjacency::AdjacencyDrop::HoldFull),
                }
            } else if let VerdictKind::Refused(r) = outcome {
                adjacency.count_refused(r);
            }
            f(Finished { tag: FrameTag(frame_id), verdict: outcome, meta: &meta, data: &frame()[range] });
            pool.free(frame_id);
        });
    }

    /// The arena the batch's frames live in.
    pub fn arena(&self) -> &Arc<Arena> {
        &self.arena
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::{DropReason, Meta};

    fn batch_of(n: u16) -> (FramePool, Batch) {
        let mut pool = FramePool::heap(64);
        let mut b = Batch::new(pool.arena().clone(), 64);
        for i in 0..n {
            let mut data = [0u8; 60];
            data[0] = i as u8;
            b.push(pool.packet_from(&data, Meta::default()).unwrap());
        }
        (pool, b)
    }

    #[test]
    fn settle_keeps_order_and_counts_reasons() {
        let (_pool, mut b) = batch_of(6);
        for (i, mut p) in b.iter_mut().enumerate() {
            match i {
                1 | 4 => p.drop_with(DropReason(1)),
                3 => p.punt(),
                _ => {}
            }
        }
        let mut drops = [0u64; 2];
        assert_eq!(b.settle(&mut drops), 3);
        assert_eq!(drops, [0, 2]);
        let first_bytes: Vec<u8> = (0..b.len()).map(|i| b.data(i)[0]).collect();
        assert_eq!(first_bytes, vec![0, 2, 5]);
        assert_eq!(b.done().len(), 3);
        assert_eq!(b.settle(&mut drops), 0, "nothing new to settle");
    }

    #[test]
    fn split_moves_descriptors_in_order_and_leaves_the_rest_in_place() {
        let (_pool, mut b) = batch_of(8);
        // A way to chains 1 and 2 of four; chain 3 was not declared.
        b.set_targets(4, &[1, 2]);
        b.iter_mut().nth(5).unwrap().drop_with(DropReason(0));
        b.split(|p| match p.data()[0] {
            0 | 3 => Some(1),
            2 | 5 | 6 => Some(2),
            7 => Some(3),
            _ => None,
        });
        assert_eq!((b.outbox(1).unwrap().len(), b.outbox(2).unwrap().len()), (2, 2), "5 was dropped before");
        assert!(b.outbox(3).is_none() && b.outbox(9).is_none());
        let stayed: Vec<(u8, VerdictKind)> = (0..b.len()).map(|i| (b.data(i)[0], b.active()[i].outcome())).collect();
        assert_eq!(
            stayed,
            [
                (1, VerdictKind::Next),
                (4, VerdictKind::Next),
                (5, VerdictKind::Drop(DropReason(0))),
                (7, VerdictKind::Goto(3))
            ],
            "undecided, finished and undeclared stay, in order"
        );
        assert_eq!(b.settle(&mut [0]), 2, "the drop and the goto nobody has a way to");
        assert_eq!(
            b.done().iter().map(|d| d.outcome()).collect::<Vec<_>>(),
            [VerdictKind::Drop(DropReason(0)), VerdictKind::Goto(3)]
        );
        let moved: Vec<u64> = b.outbox(2).unwrap().iter().map(|d| d.frame as u64).collect();
        assert!(moved.windows(2).all(|w| w[0] < w[1]), "in batch order");
    }

    #[test]
    fn headroom_push_and_pull() {
        let (_pool, mut b) = batch_of(1);
        let mut p = b.iter_mut().next().unwrap();
        let before = p.data()[0];
        let data = p.push_front(50).unwrap();
        assert_eq!(data.len(), 110);
        assert_eq!(data[50], before);
        p.pull_front(50).unwrap();
        assert_eq!(p.data()[0], before);
        assert!(p.push_front(4096).is_err());
        assert!(p.pull_front(61).is_err());
    }
}
