//! A worker's adjacencies: the published neighbour table as stages read
//! it, and the packets held while a next hop resolves.
//!
//! A stage that sends to a next hop (a NAT's inside host, a backend, a
//! gNB, a remote VTEP) asks [`Adjacency::send`]: a resolved next hop gets
//! the packet's Ethernet addresses written and its egress set to the
//! port; an unresolved one gets the slow path asked to resolve it (ARP or
//! Neighbor Solicitation, once a second per next hop and worker at most)
//! and the packet's egress set to wait for it. Like any egress this is a
//! decision the rest of the graph may change (a NAT's inside host may be
//! behind the UPF's tunnel after it); when the graph ends, the worker
//! gives the packets still waiting to the adjacency, which holds them.
//! When the slow path learns the address and publishes a new table, the
//! worker releases the held packets in the order they came, ahead of
//! anything it receives next (as the kernel's `arp_queue` does, where
//! VPP's glean node drops them). A next hop still unresolved after
//! [`HOLD_TIME_MS`] has its packets dropped, counted as `unresolved`; a
//! next hop on none of the port's subnets (nobody to ask) or known on
//! another port is `no-route`, and past [`MAX_HELD`] packets or
//! [`MAX_PENDING`] next hops waiting a packet is `hold-full`: refused
//! packets are dropped when the graph ends, counted here.
//!
//! After a restart nothing has to ARP for us first: a host whose cache
//! still holds our MAC is asked, answers, and is reached.

use std::net::IpAddr;
use std::sync::Arc;

use crate::frame::FramePool;
use crate::neighbour::{NeighbourTable, Neighbours};
use crate::packet::{Egress, EgressKind, Finished, FrameTag, PacketMut, PktDesc, PortId};
use crate::slowpath::LocalAddrs;
use crate::telemetry::StageCounters;

/// Name of the pseudo-stage counting held packets in tables (shown when
/// it held any): `packets` is how many were held, `out` how many left
/// once resolved, drops those given up on.
pub const ADJACENCY_STAGE: &str = "adjacency";

crate::drop_reasons! {
    /// Why a packet for a next hop was dropped.
    pub enum AdjacencyDrop {
        Unresolved => "unresolved",
        NoRoute => "no-route",
        HoldFull => "hold-full",
    }
}

impl AdjacencyDrop {
    /// The reason of index `i` (an [`Egress`] keeps it in one octet).
    pub(crate) const fn from_index(i: u8) -> Self {
        match i {
            0 => Self::Unresolved,
            1 => Self::NoRoute,
            _ => Self::HoldFull,
        }
    }
}

/// How long a packet waits for its next hop (the kernel gives up after
/// three probes a second apart).
pub const HOLD_TIME_MS: u64 = 3000;
/// Packets a worker holds at most, over all next hops.
pub const MAX_HELD: usize = 256;
/// Packets held for one next hop at most (the kernel's `unres_qlen` is of
/// this order).
pub const MAX_HELD_PER_HOP: u16 = 64;
/// Next hops a worker waits for at once at most.
pub const MAX_PENDING: usize = 64;

/// A next hop some held packets wait for.
#[derive(Clone, Copy, Debug)]
struct Pending {
    hop: IpAddr,
    port: PortId,
    /// When the first packet was held (cycle-counter ticks).
    since: u64,
    /// When the slow path was last asked.
    asked: u64,
    held: u16,
}

/// A held packet: its descriptor as it will leave, and what it waits for.
#[derive(Debug)]
struct Held {
    desc: PktDesc,
    /// The arena of the frame, checked against the pool that later
    /// writes, sends or frees it.
    arena: u32,
    hop: IpAddr,
    port: PortId,
}

/// One worker's view of the neighbour table and its held packets.
pub struct Adjacency {
    source: Arc<Neighbours>,
    table: Arc<NeighbourTable>,
    generation: u64,
    ports: Arc<LocalAddrs>,
    pending: Vec<Pending>,
    held: Vec<Held>,
    now: u64,
    ticks_per_ms: u64,
    counters: Arc<StageCounters>,
}

impl Adjacency {
    /// A view of `source` for a worker whose ports have these MACs and
    /// addresses (their subnets are where next hops can be asked for).
    pub fn new(source: Arc<Neighbours>, ports: Arc<LocalAddrs>) -> Self {
        Self {
            table: source.snapshot(),
            generation: source.generation(),
            source,
            ports,
            pending: Vec::with_capacity(MAX_PENDING),
            held: Vec::with_capacity(MAX_HELD),
            now: crate::cycles::now(),
            ticks_per_ms: ((crate::cycles::ticks_per_ns() * 1e6) as u64).max(1),
            counters: Arc::new(StageCounters::new(ADJACENCY_STAGE, AdjacencyDrop::NAMES)),
        }
    }

    /// Counters: held (`pkts_in`), released (`pkts_out`), dropped.
    pub fn counters(&self) -> &Arc<StageCounters> {
        &self.counters
    }

    /// The table as published when the current batch started.
    #[inline]
    pub fn table(&self) -> &NeighbourTable {
        &self.table
    }

    /// Grows with every published change of the table: a stage caching
    /// what it derived from adjacencies (header templates, a gateway's
    /// MAC) derives again when it sees a new version.
    #[inline]
    pub fn version(&self) -> u64 {
        self.table.version()
    }

    /// The MAC of next hop `hop` when it is resolved on `port`.
    #[inline]
    pub fn lookup(&self, hop: &IpAddr, port: PortId) -> Option<[u8; 6]> {
        self.table.lookup(hop).filter(|n| n.port == port).map(|n| n.mac)
    }

    /// (MAC, port) of `hop` resolved on one of `ports`.
    #[inline]
    fn resolved(table: &NeighbourTable, hop: &IpAddr, ports: &[PortId]) -> Option<([u8; 6], PortId)> {
        table.lookup(hop).filter(|n| ports.contains(&n.port)).map(|n| (n.mac, n.port))
    }

    /// Sends `p` (an Ethernet frame) to next hop `hop` out of the one of
    /// `ports` it is on (most stages name one; a NAT with several inside
    /// ports names them all): its Ethernet destination and source written
    /// now when `hop` is resolved, else once it is (the packet held when
    /// the graph ends, behind any held for the same next hop), else
    /// refused (dropped when the graph ends, counted here).
    #[inline]
    pub fn send(&mut self, p: &mut PacketMut<'_>, ports: &[PortId], hop: IpAddr) {
        if p.len() < 12 {
            return p.route(Egress::refused(AdjacencyDrop::NoRoute as u8));
        }
        match Self::resolved(&self.table, &hop, ports) {
            Some((mac, port)) => {
                let src = self.ports.mac(port);
                let d = p.data_mut();
                d[0..6].copy_from_slice(&mac);
                d[6..12].copy_from_slice(&src);
                p.send_to(port);
            }
            None => self.hold(p, ports, hop),
        }
    }

    /// True when packets wait for `hop`: a stage that knows the next hop's
    /// MAC by other means (a session saw the host) sends behind them
    /// ([`Adjacency::hold`]) rather than overtake them. Costs one branch
    /// with nothing waiting.
    #[inline]
    pub fn waits_for(&self, hop: &IpAddr) -> bool {
        !self.pending.is_empty() && self.pending.iter().any(|w| w.hop == *hop)
    }

    /// Sets `p`'s egress to wait for `hop` on the one of `ports` whose
    /// subnet holds it, complete but for its Ethernet addresses (see
    /// [`Adjacency::send`]); asks the slow path for `hop` if nobody has.
    #[cold]
    pub fn hold(&mut self, p: &mut PacketMut<'_>, ports: &[PortId], hop: IpAddr) {
        let e = self.wait_for(ports, hop).unwrap_or_else(|r| Egress::refused(r as u8));
        p.route(e);
    }

    fn wait_for(&mut self, ports: &[PortId], hop: IpAddr) -> Result<Egress, AdjacencyDrop> {
        let port = *ports.iter().find(|&&q| self.ports.on_link(q, &hop)).ok_or(AdjacencyDrop::NoRoute)?;
        // Known on another port: nobody will answer for it on this one.
        if self.table.lookup(&hop).is_some_and(|n| n.port != port) {
            return Err(AdjacencyDrop::NoRoute);
        }
        let i = match self.pending.iter().position(|w| w.hop == hop && w.port == port) {
            Some(i) => i,
            None if self.pending.len() < MAX_PENDING => {
                self.table.request(hop);
                self.pending.push(Pending { hop, port, since: self.now, asked: self.now, held: 0 });
                self.pending.len() - 1
            }
            None => return Err(AdjacencyDrop::HoldFull),
        };
        Ok(Egress::via(port, i as u8))
    }

    /// Holds a packet whose egress waits for a next hop, at the end of the
    /// graph; a packet past the limits comes back (the caller frees it),
    /// counted as `hold-full`.
    pub(crate) fn take(&mut self, desc: PktDesc, arena: u32) -> Result<(), PktDesc> {
        let EgressKind::Via { port, slot } = desc.egress.kind() else { return Err(desc) };
        let w = &mut self.pending[slot as usize];
        if self.held.len() >= MAX_HELD || w.held >= MAX_HELD_PER_HOP {
            self.counters.drops[AdjacencyDrop::HoldFull as usize].add(1);
            return Err(desc);
        }
        w.held += 1;
        let hop = w.hop;
        self.held.push(Held { desc, arena, hop, port });
        self.counters.pkts_in.add(1);
        Ok(())
    }

    /// Counts a packet whose egress the adjacency refused, dropped at the
    /// end of the graph.
    #[inline]
    pub(crate) fn count_refused(&self, reason: AdjacencyDrop) {
        self.counters.drops[reason as usize].add(1);
    }

    /// True when packets are held.
    #[inline]
    pub fn holds(&self) -> bool {
        !self.held.is_empty()
    }

    /// Takes up a newly published table (between batches); true when
    /// held packets may now leave ([`Adjacency::release`]).
    #[inline]
    pub fn refresh(&mut self) -> bool {
        let g = self.source.generation();
        if g == self.generation {
            return false;
        }
        self.generation = g;
        self.table = self.source.snapshot();
        self.holds()
    }

    /// Queues the held packets whose next hop resolved on `tx[port]`, in
    /// the order they were held, their Ethernet addresses written.
    pub(crate) fn release(&mut self, pool: &mut FramePool, tx: &mut [Vec<PktDesc>]) -> usize {
        let (table, ports) = (&self.table, &self.ports);
        let mut released = 0;
        self.held.retain(|h| {
            let Some((mac, port)) = Self::resolved(table, &h.hop, &[h.port]) else { return true };
            assert_eq!(h.arena, pool.arena().id(), "held packets released into another arena's pool");
            let d = &mut pool.frame_mut(h.desc.frame)[h.desc.data_range()];
            d[0..6].copy_from_slice(&mac);
            d[6..12].copy_from_slice(&ports.mac(port));
            match tx.get_mut(port as usize) {
                Some(q) => {
                    q.push(PktDesc { egress: Egress::port(port), ..h.desc });
                    released += 1;
                }
                None => pool.free(h.desc.frame),
            }
            false
        });
        self.pending.retain(|w| Self::resolved(table, &w.hop, &[w.port]).is_none());
        self.counters.pkts_out.add(released as u64);
        released
    }

    /// [`Adjacency::release`] where no worker transmits (test runners):
    /// `f` gets each released packet (verdict `Out` to its port, bytes with
    /// their Ethernet addresses written), then its frame goes back to
    /// `pool`.
    pub fn release_into(&mut self, pool: &mut FramePool, mut f: impl FnMut(Finished<'_>)) -> usize {
        let mut tx: Vec<Vec<PktDesc>> = (0..self.ports.ports.len()).map(|_| Vec::new()).collect();
        let n = self.release(pool, &mut tx);
        for d in tx.into_iter().flatten() {
            let data = &pool.frame(d.frame)[d.data_range()];
            f(Finished { tag: FrameTag(d.frame), verdict: d.outcome(), meta: &d.meta, data });
            pool.free(d.frame);
        }
        n
    }

    /// The worker's clock (about once a millisecond, its tick): drops
    /// packets whose next hop stayed unresolved for [`HOLD_TIME_MS`], and
    /// asks again for the others once a second. Costs nothing with
    /// nothing held; what it holds is stamped with this time.
    pub fn expire(&mut self, pool: &mut FramePool, now: u64) {
        self.now = now;
        let (hold, again) = (HOLD_TIME_MS * self.ticks_per_ms, 1000 * self.ticks_per_ms);
        let Self { pending, held, table, counters, .. } = self;
        pending.retain_mut(|w| {
            if now.wrapping_sub(w.since) >= hold {
                drop_held(held, pool, counters, |h| (h.hop, h.port) == (w.hop, w.port));
                return false;
            }
            if now.wrapping_sub(w.asked) >= again {
                w.asked = now;
                table.request(w.hop);
            }
            true
        });
    }

    /// Drops every held packet (the worker is stopping).
    pub fn drop_all(&mut self, pool: &mut FramePool) {
        self.pending.clear();
        drop_held(&mut self.held, pool, &self.counters, |_| true);
    }
}

/// What a stage derives from the neighbour table (next-hop MACs, header
/// templates built around them), kept until the table changes: the one
/// place a stage keys such state on the table's version. `also` is any
/// other version the state depends on (the LB's services), 0 for none.
#[derive(Debug)]
pub struct Derived<T> {
    of: (u64, u64),
    value: T,
}

impl<T> Derived<T> {
    /// State to be derived at its first use.
    pub const fn new(value: T) -> Self {
        Self { of: (u64::MAX, u64::MAX), value }
    }

    /// The state, first rebuilt by `rebuild` when the table (or `also`)
    /// changed since it last was. Once a batch: the check is two compares.
    #[inline]
    pub fn refresh(&mut self, adj: &Adjacency, also: u64, rebuild: impl FnOnce(&mut T, &Adjacency)) -> &mut T {
        let of = (adj.version(), also);
        if of != self.of {
            self.of = of;
            rebuild(&mut self.value, adj);
        }
        &mut self.value
    }

    /// The state as last derived.
    #[inline(always)]
    pub fn get(&self) -> &T {
        &self.value
    }

    /// The same, writable (state a stage adds to between rebuilds).
    #[inline(always)]
    pub fn get_mut(&mut self) -> &mut T {
        &mut self.value
    }
}

/// Drops the held packets `which` picks, counted as `unresolved`.
fn drop_held(held: &mut Vec<Held>, pool: &mut FramePool, counters: &StageCounters, which: impl Fn(&Held) -> bool) {
    let before = held.len();
    held.retain(|h| {
        let drop = which(h);
        if drop {
            assert_eq!(h.arena, pool.arena().id(), "held packets dropped into another arena's pool");
            pool.free(h.desc.frame);
        }
        !drop
    });
    counters.drops[AdjacencyDrop::Unresolved as usize].add((before - held.len()) as u64);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::Batch;
    use crate::packet::{Meta, VerdictKind};
    use crate::slowpath::OwnedAddr;

    const HOP: [u8; 4] = [10, 0, 0, 9];
    const MAC: [u8; 6] = [2, 0, 0, 0, 0, 9];
    const OURS: [u8; 6] = [2, 0, 0, 0, 0, 0xfe];

    fn setup() -> (Arc<Neighbours>, Adjacency, FramePool) {
        let n = Neighbours::new([]);
        let on = |a: [u8; 4], prefix| OwnedAddr { addr: IpAddr::from(a), prefix };
        let ports =
            vec![([0; 6], vec![]), (OURS, vec![on([10, 0, 0, 254], 16)]), ([0; 6], vec![on([10, 2, 0, 1], 24)])];
        let mut a = Adjacency::new(n.clone(), Arc::new(LocalAddrs { ports }));
        let mut pool = FramePool::heap(512);
        a.expire(&mut pool, 0);
        (n, a, pool)
    }

    /// Sends `count` frames (their first data byte after the Ethernet
    /// header numbered) to HOP out of port 1 and ends the batch as the
    /// worker would (waiting packets held); returns their outcomes.
    fn send(a: &mut Adjacency, pool: &mut FramePool, count: u8) -> Vec<VerdictKind> {
        let mut b = Batch::new(pool.arena().clone(), 64);
        for i in 0..count {
            let mut data = [0u8; 60];
            data[14] = i;
            b.push(pool.packet_from(&data, Meta::default()).unwrap());
        }
        for mut p in b.iter_mut() {
            a.send(&mut p, &[1], IpAddr::from(HOP));
        }
        let mut out = Vec::new();
        b.finish_into(pool, a, |p| out.push(p.verdict));
        out
    }

    const HOLD_FULL: VerdictKind = VerdictKind::Refused(AdjacencyDrop::HoldFull);
    const NO_ROUTE: VerdictKind = VerdictKind::Refused(AdjacencyDrop::NoRoute);

    #[test]
    fn a_resolved_next_hop_gets_its_addresses_written() {
        let (n, mut a, mut pool) = setup();
        n.learn(IpAddr::from(HOP), MAC, 1);
        a.refresh();
        assert_eq!(send(&mut a, &mut pool, 1), vec![VerdictKind::Out(1)]);
        assert!(!a.holds());
    }

    #[test]
    fn held_packets_leave_in_order_once_resolved_and_the_slow_path_is_asked_once() {
        let (n, mut a, mut pool) = setup();
        assert_eq!(send(&mut a, &mut pool, 3), vec![VerdictKind::Held; 3]);
        assert_eq!(n.take_requests(), vec![IpAddr::from(HOP)], "asked once for three packets");
        assert!(!a.refresh(), "nothing new published");
        n.learn(IpAddr::from(HOP), MAC, 1);
        assert!(a.refresh());
        let mut order = Vec::new();
        assert_eq!(
            a.release_into(&mut pool, |p| {
                assert_eq!((&p.data[0..6], &p.data[6..12]), (&MAC[..], &OURS[..]));
                assert_eq!(p.verdict, VerdictKind::Out(1));
                order.push(p.data[14]);
            }),
            3
        );
        assert_eq!(order, [0, 1, 2]);
        assert_eq!((a.counters.pkts_in.get(), a.counters.pkts_out.get()), (3, 3));
        assert!(!a.holds() && a.pending.is_empty());
    }

    #[test]
    fn a_decision_to_wait_is_only_a_decision_until_the_graph_ends() {
        let (n, mut a, mut pool) = setup();
        let mut b = Batch::new(pool.arena().clone(), 64);
        b.push(pool.packet_from(&[0; 60], Meta::default()).unwrap());
        for mut p in b.iter_mut() {
            a.send(&mut p, &[1], IpAddr::from(HOP));
            assert_eq!(p.verdict().kind(p.egress()), VerdictKind::Held);
            // A later stage (a tunnel) decides otherwise.
            p.send_to(2);
        }
        let mut out = Vec::new();
        b.finish_into(&mut pool, &mut a, |p| out.push(p.verdict));
        assert_eq!(out, [VerdictKind::Out(2)]);
        assert!(!a.holds(), "nothing held");
        assert_eq!(n.take_requests().len(), 1, "the next hop was asked for all the same");
    }

    #[test]
    fn an_unresolved_next_hop_is_asked_again_each_second_then_given_up() {
        let (n, mut a, mut pool) = setup();
        let free = pool.available();
        let ms = a.ticks_per_ms;
        send(&mut a, &mut pool, 2);
        assert_eq!(n.take_requests().len(), 1);
        a.expire(&mut pool, 500 * ms);
        assert!(n.take_requests().is_empty(), "not within the second");
        a.expire(&mut pool, 1000 * ms);
        assert_eq!(n.take_requests().len(), 1, "again after a second");
        a.expire(&mut pool, HOLD_TIME_MS * ms);
        assert!(!a.holds());
        assert_eq!(a.counters.drops[AdjacencyDrop::Unresolved as usize].get(), 2);
        assert_eq!(pool.available(), free, "every frame back");
    }

    #[test]
    fn past_the_limits_a_packet_is_refused() {
        let (_n, mut a, mut pool) = setup();
        let got = send(&mut a, &mut pool, MAX_HELD_PER_HOP as u8 + 2);
        assert_eq!(got.iter().filter(|r| **r == HOLD_FULL).count(), 2);
        let mut b = Batch::new(pool.arena().clone(), 64);
        for _ in 0..MAX_PENDING as u8 + 1 {
            b.push(pool.packet_from(&[0; 60], Meta::default()).unwrap());
        }
        for (hop, mut p) in b.iter_mut().enumerate() {
            a.send(&mut p, &[1], IpAddr::from([10, 0, 1, hop as u8]));
            let refused = p.verdict().kind(p.egress()) == HOLD_FULL;
            assert_eq!(refused, hop >= MAX_PENDING - 1, "next hop {hop}");
        }
        b.finish_into(&mut pool, &mut a, |_| {});
        assert_eq!(a.counters.drops[AdjacencyDrop::HoldFull as usize].get(), 4);
        a.drop_all(&mut pool);
        assert!(!a.holds());
    }

    #[test]
    fn a_next_hop_off_every_subnet_or_on_another_port_is_refused_and_among_ports_its_subnets_is_used() {
        let (n, mut a, mut pool) = setup();
        let mut b = Batch::new(pool.arena().clone(), 64);
        for _ in 0..4 {
            b.push(pool.packet_from(&[0; 60], Meta::default()).unwrap());
        }
        n.learn(IpAddr::from([10, 0, 0, 8]), MAC, 2);
        a.refresh();
        let off_link = IpAddr::from([192, 0, 2, 1]);
        let hops = [(vec![1], off_link), (vec![1, 2], off_link), (vec![1], IpAddr::from([10, 0, 0, 8]))];
        let mut it = b.iter_mut();
        for (ports, hop) in hops {
            let mut p = it.next().unwrap();
            a.send(&mut p, &ports, hop);
            assert_eq!(p.verdict().kind(p.egress()), NO_ROUTE, "{hop}: nobody to ask, or known on another port");
        }
        let mut p = it.next().unwrap();
        a.send(&mut p, &[1, 2], IpAddr::from([10, 2, 0, 7]));
        assert!(a.waits_for(&IpAddr::from([10, 2, 0, 7])) && !a.waits_for(&IpAddr::from(HOP)));
        drop(it);
        b.finish_into(&mut pool, &mut a, |_| {});
        assert_eq!(a.counters.drops[AdjacencyDrop::NoRoute as usize].get(), 3);
        n.learn(IpAddr::from([10, 2, 0, 7]), MAC, 2);
        a.refresh();
        let mut tx = vec![Vec::new(), Vec::new(), Vec::new()];
        assert_eq!(a.release(&mut pool, &mut tx), 1);
        assert_eq!(tx[2][0].outcome(), VerdictKind::Out(2), "out of the port whose subnet holds it");
    }
}
