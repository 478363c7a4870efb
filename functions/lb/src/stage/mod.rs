//! The `lb` data path. By ingress port:
//!
//! - From a client port, to a VIP: the connection table gives the flow's
//!   backend (or the VIP's Maglev table does, for a new flow, and the
//!   table remembers it); the packet goes to the backend by MAC rewrite
//!   (DSR), in an IP-in-IP tunnel (RFC 2003), or translated (NAT mode:
//!   to the backend, from our source address and a port of ours). An
//!   ICMP "fragmentation needed" (RFC 1191) about a VIP's packet goes to
//!   the backend that sent it (the quoted packet names the flow; in NAT
//!   mode it is translated to what that backend sent, RFC 5508 style).
//! - From the backends' port: answers to our source address (NAT mode)
//!   are translated back to the VIP and the client, by the port; the rest
//!   (DSR and IP-in-IP backends answer the client directly, from the VIP)
//!   are routed back to the client side. With several workers, a NAT
//!   answer is handed to the worker whose block holds its port.
//!
//! Per batch: the services snapshot is refreshed (one atomic load), idle
//! connections expire, and flows are hashed and their index lines
//! prefetched ahead of the lookups.

mod report;

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use nfv_core::adjacency::Derived;
use nfv_core::offload::FlowValue;
use nfv_core::packet::flags;
use nfv_core::published::Snapshot;
use nfv_core::{Batch, BuildCtx, PacketMut, Stage, StageCtx};
use nfv_net::tunnel::{Encap, OuterHeader, OuterSpec, PerPacket};
use nfv_net::wire::{self, EthernetFrame, IcmpPacket, Ipv4Packet, TcpPacket, ethernet, ethertype, icmp, ipv4, tcp};

use crate::config::Lb;
use nfv_core::reject;
use nfv_net::portmap::{PortMap, block_owner};
use nfv_net::rewrite::{self, Side};

use crate::conntrack::{Conn, ConnKey, ConnTable};
use nfv_net::wire::proto;

use crate::services::{Mode, Services, State, Vip};

nfv_core::drop_reasons! {
    /// Why the load balancer dropped a packet.
    pub enum LbDrop {
        NotIpv4 => "not-ipv4",
        Malformed => "malformed",
        NotAVip => "not-a-vip",
        Fragment => "fragment",
        UnsupportedProtocol => "unsupported-protocol",
        NoBackend => "no-backend",
        PortsExhausted => "ports-exhausted",
        NoConnection => "no-connection",
    }
}

/// NAT mode's ports on our source address, per protocol (TCP, UDP), and
/// the connection each port in use belongs to.
struct NatPorts {
    maps: [PortMap; 2],
    conn: [Vec<u32>; 2],
    rank: u16,
    workers: u16,
}

const NO_CONN: u32 = u32::MAX;
/// NAT ports handed out (the low ones stay for services of the host).
const NAT_PORTS: (u16, u16) = (1024, 65535);

fn port_slot(p: u8) -> usize {
    (p == proto::UDP) as usize
}

impl NatPorts {
    fn new(rank: usize, workers: usize) -> Self {
        let map = || PortMap::new(NAT_PORTS.0, NAT_PORTS.1, rank as u16, workers.max(1) as u16);
        Self {
            maps: [map(), map()],
            conn: [vec![NO_CONN; 65536], vec![NO_CONN; 65536]],
            rank: rank as u16,
            workers: workers.max(1) as u16,
        }
    }

    /// Frees the port of a connection that is gone.
    fn release(&mut self, c: &Conn) {
        if c.nat_port != 0 {
            let s = port_slot(c.key().proto);
            self.maps[s].release(c.nat_port);
            self.conn[s][c.nat_port as usize] = NO_CONN;
        }
    }

    /// The worker whose block holds `port`, when it is another.
    fn elsewhere(&self, port: u16) -> Option<usize> {
        if self.workers == 1 || !(NAT_PORTS.0..=NAT_PORTS.1).contains(&port) {
            return None;
        }
        let w = block_owner(port, NAT_PORTS.0, self.workers);
        (w != self.rank).then_some(w as usize)
    }
}

/// IP-in-IP (RFC 2003): protocol 4.
const IPIP: u8 = 4;

/// Packets ahead of the one being handled whose connection bucket is
/// prefetched.
const PREFETCH_LAG: usize = 16;

/// Connection buckets swept for dead entries per batch.
const SWEEP_PER_BATCH: usize = 16;

/// Counters beside the drops.
#[derive(Clone, Copy, Debug, Default)]
pub struct LbCounters {
    /// Packets sent to a backend.
    pub forwarded: u64,
    /// Connections given a backend by the Maglev table: each TCP SYN
    /// (a retransmitted one aside) and each new UDP or mid-stream flow.
    pub new_connections: u64,
    /// Connections whose backend was removed, given another.
    pub rescheduled: u64,
    /// ICMP "fragmentation needed" sent to the backend of the flow.
    pub icmp_too_big: u64,
    /// Backend answers routed back to clients.
    pub returned: u64,
    /// Packets to a VIP without an active backend answered with a TCP
    /// reset or an ICMP port unreachable.
    pub rejected: u64,
}

/// Per VIP: packets, bytes, new connections.
#[derive(Clone, Copy, Debug, Default)]
struct VipStats {
    packets: u64,
    bytes: u64,
    connections: u64,
}

/// Per backend: packets, new connections.
#[derive(Clone, Copy, Debug, Default)]
struct BackendStats {
    packets: u64,
    connections: u64,
}

/// A client packet's flow, from the first pass over a batch.
#[derive(Clone, Copy)]
struct Flow {
    key: ConnKey,
    /// Flow hash and connection-index hash.
    hashes: (u64, u64),
    /// A TCP SYN without ACK: a connection opening.
    syn: bool,
}

/// One worker's load balancer.
pub struct LbStage {
    lb: Arc<Lb>,
    services: Snapshot<Services>,
    conns: ConnTable,
    macs: Vec<[u8; 6]>,
    client_port: Vec<bool>,
    /// The ways to backends and to clients, rebuilt when the neighbour
    /// table or the services change.
    ways: Derived<Ways>,
    /// Per packet of the batch: its flow (first pass).
    flows: Vec<Option<Flow>>,
    /// NAT mode's ports (when a VIP uses NAT mode).
    nat: Option<NatPorts>,
    vip_stats: Vec<VipStats>,
    backend_stats: Vec<Vec<BackendStats>>,
    /// Refusals sent a second at most.
    rejects: nfv_core::cycles::PerSecond,
    /// Counters.
    pub counters: LbCounters,
}

/// A NAT-mode answer just translated back: its connection, the
/// backend's end and ours as it arrived (its key in XDP).
#[derive(Clone, Copy)]
struct Back {
    id: u32,
    backend: (u32, u16),
    ours: (u32, u16),
}

/// The key of a TCP/UDP packet to a VIP, from its headers (the parser
/// checked the lengths); `Err` names why there is none.
#[inline(always)]
fn client_key(d: &[u8], m: &nfv_core::Meta) -> Result<(ConnKey, bool), LbDrop> {
    if m.ethertype != ethertype::IPV4 {
        return Err(LbDrop::NotIpv4);
    }
    if m.flags & flags::L3_OK == 0 {
        return Err(LbDrop::Malformed);
    }
    if m.flags & flags::FRAGMENT != 0 {
        return Err(LbDrop::Fragment);
    }
    if !matches!(m.l4_proto, proto::TCP | proto::UDP) {
        return Err(LbDrop::UnsupportedProtocol);
    }
    if m.flags & flags::L4_OK == 0 {
        return Err(LbDrop::Malformed);
    }
    let (l3, l4) = (m.l3_off as usize, m.l4_off as usize);
    let ip = Ipv4Packet::new_unchecked(&d[l3..]);
    let (client_port, vip_port) = wire::ports(&d[l4..]);
    let key = ConnKey { client: ip.src(), vip: ip.dst(), client_port, vip_port, proto: m.l4_proto };
    // SYN without ACK (RFC 9293 3.1): a connection opening.
    let syn = m.l4_proto == proto::TCP
        && TcpPacket::new_unchecked(&d[l4..]).flags() & (tcp::flags::SYN | tcp::flags::ACK) == tcp::flags::SYN;
    Ok((key, syn))
}

/// Refusals (resets, port unreachables) a worker sends a second at most;
/// past them packets to a VIP without backends are dropped (`no-backend`).
const REJECTS_PER_SEC: u32 = 1000;

/// The flow an ICMP "fragmentation needed" to a VIP is about: the packet
/// it quotes went VIP -> client (RFC 792: the IP header and 8 bytes).
fn too_big_key(d: &[u8], m: &nfv_core::Meta) -> Option<ConnKey> {
    if m.l4_proto != proto::ICMP || m.flags & flags::L4_OK == 0 {
        return None;
    }
    let icmp = IcmpPacket::new_unchecked(&d[m.l4_off as usize..]);
    if (icmp.msg_type(), icmp.msg_code()) != (icmp::v4::DEST_UNREACHABLE, reject::code::FRAGMENTATION_NEEDED) {
        return None;
    }
    // The quoted header: version 4, whole, and the quoted ports after it.
    let quote = icmp.payload();
    if quote.is_empty() {
        return None;
    }
    let ip = Ipv4Packet::new_unchecked(quote);
    let ihl = ip.header_len();
    if ip.version() != 4 || ihl < ipv4::HEADER_LEN || quote.len() < ihl + 4 {
        return None;
    }
    let (vip_port, client_port) = wire::ports(&quote[ihl..]);
    Some(ConnKey { client: ip.dst(), vip: ip.src(), client_port, vip_port, proto: ip.protocol() })
}

impl LbStage {
    /// This worker's instance: its own connection table, allocated now.
    pub fn new(lb: Arc<Lb>, ctx: &BuildCtx<'_>) -> Self {
        let seed = {
            use std::hash::{BuildHasher, Hasher};
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_usize(ctx.worker);
            h.finish()
        };
        let nat = lb.services.load().vips.iter().any(|v| v.mode == Mode::Nat);
        let mut client_port = vec![false; ctx.port_macs.len()];
        for &p in &lb.clients {
            client_port[p as usize] = true;
        }
        Self {
            services: Snapshot::new(lb.services.clone()),
            conns: ConnTable::new(lb.max_connections, lb.timeouts, seed),
            macs: ctx.port_macs.to_vec(),
            client_port,
            ways: Derived::new(Ways::default()),
            flows: vec![None; nfv_core::batch::MAX_BATCH],
            nat: nat.then(|| NatPorts::new(ctx.chain_rank, ctx.chain_workers)),
            vip_stats: Vec::new(),
            backend_stats: Vec::new(),
            rejects: nfv_core::cycles::PerSecond::new(REJECTS_PER_SEC),
            counters: LbCounters::default(),
            lb,
        }
    }

    /// The connection table (tests, reports).
    pub fn connections(&self) -> &ConnTable {
        &self.conns
    }

    /// Per-batch upkeep: the services version, the neighbour entries the
    /// batch needs, counters sized for the VIPs and backends.
    fn refresh(&mut self, ctx: &StageCtx<'_>) {
        self.services.refresh();
        let Self { ways, services, lb, macs, client_port, .. } = self;
        let mut resized = false;
        ways.refresh(ctx.adjacency, services.version, |w, adj| {
            let port = lb.backends_port;
            let (src, our_mac) = (Ipv4Addr::from(lb.source_address), macs[port as usize]);
            w.backends = services
                .vips
                .iter()
                .map(|v| {
                    v.backends
                        .iter()
                        .map(|b| {
                            let mac = adj.lookup(&IpAddr::V4(Ipv4Addr::from(b.addr)), port);
                            // RFC 2003 3.1: TTL 64, protocol 4; TOS and DF
                            // are each packet's.
                            let spec = OuterSpec {
                                eth: (mac.unwrap_or_default(), our_mac),
                                src: IpAddr::V4(src),
                                dst: IpAddr::V4(Ipv4Addr::from(b.addr)),
                                ttl: 64,
                                frag: 0,
                                encap: Encap::Ip { protocol: IPIP },
                            };
                            let ipip = (v.mode == Mode::Ipip).then(|| OuterHeader::new(&spec).expect("IPv4"));
                            Way { mac, ipip }
                        })
                        .collect()
                })
                .collect();
            w.gateway = lb
                .client_gateway
                .and_then(|g| adj.table().lookup(&IpAddr::V4(Ipv4Addr::from(g))))
                .filter(|n| client_port.get(n.port as usize) == Some(&true))
                .map(|n| (n.mac, n.port));
            resized = true;
        });
        if resized {
            // Backends or their addresses changed: flows in XDP come up
            // and are installed again by their next packet.
            self.conns.withdraw_all();
            let vips = &self.services.vips;
            self.vip_stats.resize(vips.len(), VipStats::default());
            self.backend_stats.resize(vips.len(), Vec::new());
            for (s, v) in self.backend_stats.iter_mut().zip(vips) {
                s.resize(v.backends.len(), BackendStats::default());
            }
        }
    }

    /// Counts a connection given backend `b` of VIP `vi`.
    #[inline(always)]
    fn count_connection(&mut self, vi: usize, b: u16) {
        self.counters.new_connections += 1;
        self.vip_stats[vi].connections += 1;
        self.backend_stats[vi][b as usize].connections += 1;
    }

    /// The backend of connection `key` (to VIP `vi`) and its NAT port
    /// (NAT mode, else 0): remembered, or picked by the Maglev table (and
    /// a port allocated) and remembered. A TCP SYN (`syn`) opens a
    /// connection (RFC 9293 3.5): it is scheduled over the current
    /// backends even when its 5-tuple is remembered (a client port reused
    /// within the idle timeout), as Katran skips its connection table for
    /// SYNs, so a drained or removed backend gets no new connection; the
    /// entry takes the new backend.
    #[inline(always)]
    fn backend_of(
        &mut self,
        vi: usize,
        key: &ConnKey,
        (flow_hash, index_hash): (u64, u64),
        syn: bool,
        now: u32,
    ) -> Result<u32, LbDrop> {
        let vip = &self.services.vips[vi];
        if let Some(id) = self.conns.find(index_hash, key, now) {
            let c = *self.conns.get(id);
            let b = c.backend;
            self.conns.touch(id, now);
            if syn {
                let nb = vip.pick(flow_hash as u32).ok_or(LbDrop::NoBackend)?;
                if nb != b {
                    self.conns.set_backend(id, nb);
                }
                // A retransmitted SYN is the same connection opening.
                if !c.opening() {
                    self.conns.set_opening(id, true);
                    self.count_connection(vi, nb);
                }
                return Ok(id);
            }
            if c.opening() {
                self.conns.set_opening(id, false);
            }
            if vip.backends.get(b as usize).is_some_and(|b| b.state != State::Removed) {
                return Ok(id);
            }
            // Its backend is gone: the flow moves (the only flows that do).
            let nb = vip.pick(flow_hash as u32).ok_or(LbDrop::NoBackend)?;
            self.conns.set_backend(id, nb);
            self.counters.rescheduled += 1;
            return Ok(id);
        }
        let b = vip.pick(flow_hash as u32).ok_or(LbDrop::NoBackend)?;
        let port = match (vip.mode, self.nat.as_mut()) {
            (Mode::Nat, Some(n)) => {
                n.maps[port_slot(key.proto)].allocate(key.client_port).ok_or(LbDrop::PortsExhausted)?
            }
            _ => 0,
        };
        let (id, replaced) = self.conns.insert(index_hash, *key, b, port, now, syn);
        if let Some(n) = self.nat.as_mut() {
            if let Some(old) = replaced {
                n.release(&old);
            }
            if port != 0 {
                n.conn[port_slot(key.proto)][port as usize] = id;
            }
        }
        self.count_connection(vi, b);
        Ok(id)
    }

    /// Sends the packet to backend `b` of VIP `vi` by the VIP's mode
    /// (NAT mode: from our port `nat_port`); held while the backend is
    /// unresolved.
    #[inline(always)]
    fn forward(&mut self, p: &mut PacketMut<'_>, vi: usize, id: u32, ctx: &mut StageCtx<'_>) -> Result<(), LbDrop> {
        let (b, nat_port) = {
            let c = self.conns.get(id);
            (c.backend, c.nat_port)
        };
        let port = self.lb.backends_port;
        let len = p.len() as u64;
        match self.ways.get().backends[vi][b as usize].mac {
            Some(mac) => {
                self.rewrite_for_backend(p, vi, (b, nat_port), mac)?;
                p.send_to(port);
                if self.conns.offload().is_some() {
                    self.offer(vi, (b, nat_port, id), mac, port);
                }
            }
            None => self.forward_unresolved(p, vi, (b, nat_port), ctx)?,
        }
        let s = &mut self.vip_stats[vi];
        s.packets += 1;
        s.bytes += len;
        self.backend_stats[vi][b as usize].packets += 1;
        self.counters.forwarded += 1;
        Ok(())
    }

    /// Connection `id`'s packet just left for backend `b` of VIP `vi` (at
    /// `mac`, by `port`): its flow goes to nfv's XDP program as the VIP's
    /// mode forwards it.
    #[cold]
    fn offer(&mut self, vi: usize, (b, nat_port, id): (u16, u16, u32), mac: [u8; 6], port: u16) {
        let (vip, our) = (&self.services.vips[vi], self.macs[port as usize]);
        let to = vip.backends[b as usize].addr;
        let src = self.lb.source_address;
        let value = match vip.mode {
            Mode::Dsr => FlowValue::forward(mac, our, 0),
            Mode::Nat => FlowValue::both((src, nat_port), (to, vip.port), mac, our, 0),
            Mode::Ipip => FlowValue::ipip(src, to, mac, our, 0),
        };
        self.conns.offer(id, || value, port);
    }

    /// Backend `b` of VIP `vi` not resolved yet: the packet is made ready
    /// for it and held until it is ([`nfv_core::adjacency`]).
    #[cold]
    #[inline(never)]
    fn forward_unresolved(
        &mut self,
        p: &mut PacketMut<'_>,
        vi: usize,
        b: (u16, u16),
        ctx: &mut StageCtx<'_>,
    ) -> Result<(), LbDrop> {
        self.rewrite_for_backend(p, vi, b, [0; 6])?;
        let hop = IpAddr::V4(Ipv4Addr::from(self.services.vips[vi].backends[b.0 as usize].addr));
        ctx.adjacency.hold(p, &[self.lb.backends_port], hop);
        Ok(())
    }

    /// Rewrites the packet for backend `b` of VIP `vi` (at `mac`) by the
    /// VIP's mode (NAT mode: from our port `nat_port`).
    #[inline(always)]
    fn rewrite_for_backend(
        &self,
        p: &mut PacketMut<'_>,
        vi: usize,
        (b, nat_port): (u16, u16),
        mac: [u8; 6],
    ) -> Result<(), LbDrop> {
        let vip: &Vip = &self.services.vips[vi];
        let port = self.lb.backends_port;
        match vip.mode {
            Mode::Dsr => EthernetFrame::new_unchecked(p.data_mut()).set_addrs(mac, self.macs[port as usize]),
            Mode::Ipip => {
                let outer = self.ways.get().backends[vi][b as usize].ipip.as_ref().expect("made for IP-in-IP VIPs");
                encapsulate(p, outer)?
            }
            Mode::Nat => {
                let m = *p.meta();
                let (l3, l4) = (m.l3_off as usize, Some(m.l4_off as usize));
                let d = p.data_mut();
                let to = vip.backends[b as usize].addr;
                rewrite::rewrite(d, l3, l4, m.l4_proto, Side::Dst, to, vip.port).ok_or(LbDrop::Malformed)?;
                rewrite::rewrite(d, l3, l4, m.l4_proto, Side::Src, self.lb.source_address, nat_port)
                    .ok_or(LbDrop::Malformed)?;
                EthernetFrame::new_unchecked(d).set_addrs(mac, self.macs[port as usize]);
            }
        }
        Ok(())
    }

    /// A packet from a client port that is not a plain TCP/UDP packet:
    /// an ICMP "fragmentation needed" about a VIP's flow goes to its
    /// backend; anything else is dropped with `why`.
    fn client_other(
        &mut self,
        p: &mut PacketMut<'_>,
        why: LbDrop,
        now: u32,
        ctx: &mut StageCtx<'_>,
    ) -> Result<(), LbDrop> {
        let m = *p.meta();
        if m.ethertype != ethertype::IPV4 || m.flags & flags::FRAGMENT != 0 {
            return Err(why);
        }
        let Some(key) = too_big_key(p.data(), &m) else { return Err(why) };
        let vi = self.services.find(key.proto, key.vip, key.vip_port).ok_or(LbDrop::NotAVip)?;
        let h = key.hash();
        let ih = self.conns.index_hash(h);
        let chosen = if self.services.vips[vi].mode == Mode::Nat {
            // The backend saw the flow from us: the quoted packet (VIP ->
            // client) becomes what the backend sent (backend -> our source
            // address and the connection's port), and the error goes to it.
            let id = self.conns.find(ih, &key, now).ok_or(LbDrop::NoConnection)?;
            let c = *self.conns.get(id);
            let to = self.services.vips[vi].backends.get(c.backend as usize).ok_or(LbDrop::NoBackend)?.addr;
            let l3 = m.l3_off as usize;
            let icmp = m.l4_off as usize;
            let d = p.data_mut();
            let e = rewrite::embedded(d, icmp).ok_or(LbDrop::Malformed)?;
            rewrite::rewrite_icmp_embedded(d, icmp, &e, Side::Src, to, key.vip_port).ok_or(LbDrop::Malformed)?;
            rewrite::rewrite_icmp_embedded(d, icmp, &e, Side::Dst, self.lb.source_address, c.nat_port)
                .ok_or(LbDrop::Malformed)?;
            rewrite::rewrite_outer(d, l3, Side::Dst, to);
            id
        } else {
            self.backend_of(vi, &key, (h, ih), false, now)?
        };
        self.counters.icmp_too_big += 1;
        // NAT mode: the packet is translated already; deliver it as DSR.
        let mode = self.services.vips[vi].mode;
        if mode == Mode::Nat {
            let to = self.services.vips[vi].backends[self.conns.get(chosen).backend as usize].addr;
            ctx.adjacency.send(p, &[self.lb.backends_port], IpAddr::V4(Ipv4Addr::from(to)));
            return Ok(());
        }
        self.forward(p, vi, chosen, ctx)
    }

    /// A NAT-mode answer (to our source address, at `port`): back to the
    /// VIP's client, as from the VIP. `Ok(false)`: handed to the worker
    /// holding the connection.
    fn nat_answer(&mut self, p: &mut PacketMut<'_>, port: u16, now: u32) -> Result<Option<Back>, LbDrop> {
        let m = *p.meta();
        let nat = self.nat.as_ref().ok_or(LbDrop::NoConnection)?;
        if let Some(w) = nat.elsewhere(port) {
            p.hand_off(w);
            return Ok(None);
        }
        let id = nat.conn[port_slot(m.l4_proto)][port as usize];
        if id == NO_CONN || !self.conns.is_live(id, now) {
            return Err(LbDrop::NoConnection);
        }
        let c = *self.conns.get(id);
        let key = c.key();
        let vip = self.services.find(key.proto, key.vip, key.vip_port).map(|vi| &self.services.vips[vi]);
        let (l3, l4) = (m.l3_off as usize, m.l4_off as usize);
        let d = p.data_mut();
        let src = Ipv4Packet::new_unchecked(&d[l3..]).src();
        let (sport, _) = wire::ports(&d[l4..]);
        let from_backend = vip.and_then(|v| v.backends.get(c.backend as usize)).is_some_and(|b| b.addr == src);
        if c.nat_port != port || key.proto != m.l4_proto || !from_backend {
            return Err(LbDrop::NoConnection);
        }
        rewrite::rewrite(d, l3, Some(l4), key.proto, Side::Src, key.vip, key.vip_port).ok_or(LbDrop::Malformed)?;
        rewrite::rewrite(d, l3, Some(l4), key.proto, Side::Dst, key.client, key.client_port)
            .ok_or(LbDrop::Malformed)?;
        self.conns.touch(id, now);
        Ok(Some(Back { id, backend: (src, sport), ours: (self.lb.source_address, port) }))
    }

    /// A packet to a VIP with no active backend (an empty list, all
    /// drained): refused back to the client as kube-proxy refuses for a
    /// Service without endpoints: a TCP reset, an ICMP port unreachable
    /// for UDP; within a budget a second, else dropped.
    #[cold]
    fn reject(&mut self, p: &mut PacketMut<'_>, now_ticks: u64) -> Result<(), LbDrop> {
        if !self.rejects.allow(now_ticks) {
            return Err(LbDrop::NoBackend);
        }
        let port = p.meta().port;
        let mac = self.macs[port as usize];
        let refused = match p.meta().l4_proto {
            proto::TCP => reject::tcp_reset(p, mac),
            _ => {
                let u = reject::Unreachable { code: reject::code::PORT_UNREACHABLE, from: None, mtu: 0, quote: 0 };
                reject::icmp_unreachable(p, u, mac)
            }
        };
        refused.map_err(|_| LbDrop::NoBackend)?;
        self.counters.rejected += 1;
        p.send_to(port);
        Ok(())
    }

    /// A backend's answer: back to the client side (translated first if
    /// it answers a NAT-mode connection).
    fn return_path(&mut self, p: &mut PacketMut<'_>, ctx: &mut StageCtx<'_>, now: u32) -> Result<(), LbDrop> {
        let m = *p.meta();
        if m.ethertype != ethertype::IPV4 {
            return Err(LbDrop::NotIpv4);
        }
        if m.flags & flags::L3_OK == 0 {
            return Err(LbDrop::Malformed);
        }
        let l3 = m.l3_off as usize;
        let d = p.data();
        let to_us = Ipv4Packet::new_unchecked(&d[l3..]).dst() == self.lb.source_address;
        let mut answered = None;
        let plain_l4 = m.flags & (flags::L4_OK | flags::FRAGMENT) == flags::L4_OK;
        if to_us && self.nat.is_some() && plain_l4 && matches!(m.l4_proto, proto::TCP | proto::UDP) {
            let (_, port) = wire::ports(&d[m.l4_off as usize..]);
            let Some(back) = self.nat_answer(p, port, now)? else { return Ok(()) };
            answered = Some(back);
        }
        if let Some((mac, port)) = self.ways.get().gateway {
            EthernetFrame::new_unchecked(p.data_mut()).set_addrs(mac, self.macs[port as usize]);
            p.send_to(port);
            self.counters.returned += 1;
            if let Some(b) = answered {
                self.conns.offer_back(b.id, b.backend, b.ours, (mac, self.macs[port as usize]), port);
            }
            return Ok(());
        }
        // To the client gateway, or the client itself, on a client port
        // (asked for when unknown: after a restart, clients whose caches
        // still hold our MAC never ARP).
        let dst = Ipv4Packet::new_unchecked(&p.data()[l3..]).dst();
        let hop = IpAddr::V4(Ipv4Addr::from(self.lb.client_gateway.unwrap_or(dst)));
        // A client on none of the client ports' subnets is refused by the
        // adjacency when the graph ends (`no-route`).
        ctx.adjacency.send(p, &self.lb.clients, hop);
        self.counters.returned += 1;
        if let (Some(b), nfv_core::packet::EgressKind::Port(q)) = (answered, p.egress().kind()) {
            let dmac: [u8; 6] = p.data()[..6].try_into().expect("an Ethernet header");
            self.conns.offer_back(b.id, b.backend, b.ours, (dmac, self.macs[q as usize]), q);
        }
        Ok(())
    }
}

/// What the LB derives from the neighbour table and its services: the
/// way to each backend per VIP (its MAC; the outer headers of IP-in-IP
/// VIPs), and the client gateway's (MAC, port).
#[derive(Default)]
struct Ways {
    backends: Vec<Vec<Way>>,
    gateway: Option<([u8; 6], u16)>,
}

/// The way to one backend: its MAC once resolved, and for an IP-in-IP
/// VIP the outer headers toward it (its Ethernet destination zero while
/// unresolved: the adjacency writes it when the packet is released).
struct Way {
    mac: Option<[u8; 6]>,
    ipip: Option<OuterHeader>,
}

/// Wraps the packet's IP datagram in the `outer` headers (RFC 2003 3.1:
/// TOS copied, DF copied).
fn encapsulate(p: &mut PacketMut<'_>, outer: &OuterHeader) -> Result<(), LbDrop> {
    let l3 = p.meta().l3_off as usize;
    if l3 != ethernet::HEADER_LEN {
        // VLAN-tagged: the outer header goes after the tags; not done.
        return Err(LbDrop::UnsupportedProtocol);
    }
    let inner = Ipv4Packet::new_unchecked(&p.data()[l3..]);
    let copied = PerPacket { tos: inner.tos(), frag: inner.frag_field() & ipv4::DONT_FRAG, ..PerPacket::default() };
    let d = p.push_front(ipv4::HEADER_LEN).map_err(|_| LbDrop::Malformed)?;
    outer.write(d, copied);
    let m = p.meta_mut();
    (m.l4_off, m.l4_proto) = ((l3 + ipv4::HEADER_LEN) as u16, IPIP);
    Ok(())
}

impl Stage for LbStage {
    fn process(&mut self, batch: &mut Batch, ctx: &mut StageCtx<'_>) {
        let now = ctx.now_secs();
        self.refresh(ctx);
        let nat = &mut self.nat;
        self.conns.expire(now, SWEEP_PER_BATCH, |c| {
            if let Some(n) = nat.as_mut() {
                n.release(c);
            }
        });
        if batch.is_empty() {
            return;
        }
        if self.client_port.get(batch.rx_port() as usize) != Some(&true) {
            for mut p in batch.iter_mut() {
                if let Err(r) = self.return_path(&mut p, ctx, now) {
                    p.drop_with(r);
                }
            }
            return;
        }
        // First pass: keys and hashes; the first buckets start loading,
        // the rest PREFETCH_LAG packets ahead of their lookup.
        let mut n = 0;
        for (i, p) in batch.iter_mut().enumerate() {
            n = i + 1;
            self.flows[i] = client_key(p.data(), p.meta()).ok().map(|(key, syn)| {
                let h = key.hash();
                let ih = self.conns.index_hash(h);
                if i < PREFETCH_LAG {
                    self.conns.prefetch(ih);
                }
                Flow { key, hashes: (h, ih), syn }
            });
        }
        for (i, mut p) in batch.iter_mut().enumerate() {
            if i + PREFETCH_LAG < n
                && let Some(f) = self.flows[i + PREFETCH_LAG]
            {
                self.conns.prefetch(f.hashes.1);
            }
            let result = match self.flows[i] {
                Some(Flow { key, hashes, syn }) => match self.services.find(key.proto, key.vip, key.vip_port) {
                    Some(vi) => match self.backend_of(vi, &key, hashes, syn, now) {
                        Ok(b) => self.forward(&mut p, vi, b, ctx),
                        Err(LbDrop::NoBackend) => self.reject(&mut p, ctx.now_ticks),
                        Err(e) => Err(e),
                    },
                    None => Err(LbDrop::NotAVip),
                },
                None => {
                    let why = client_key(p.data(), p.meta()).err().unwrap_or(LbDrop::Malformed);
                    self.client_other(&mut p, why, now, ctx)
                }
            };
            if let Err(r) = result {
                p.drop_with(r);
            }
        }
    }

    fn tick(&mut self, _batch: &mut Batch, ctx: &mut StageCtx<'_>) {
        // With flows in XDP the workers may see none of their packets:
        // activity comes back as touches, and the sweep runs here too.
        if self.conns.offload().is_some() {
            let now = ctx.now_secs();
            // A change of backends takes the flows back from XDP now, not
            // at the next packet the workers happen to see.
            self.refresh(ctx);
            self.conns.take_touches(now);
            let nat = &mut self.nat;
            self.conns.expire(now, SWEEP_PER_BATCH, |c| {
                if let Some(n) = nat.as_mut() {
                    n.release(c);
                }
            });
        }
    }

    fn take_offload(&mut self, o: nfv_core::offload::Offloader) -> bool {
        self.conns.set_offload(o);
        true
    }

    fn tables(&self) -> &'static [&'static str] {
        &["connections"]
    }

    fn sample(&self, out: &mut [nfv_core::Occupancy]) {
        out[0] = nfv_core::Occupancy { entries: self.conns.len() as u64, capacity: self.conns.capacity() as u64 };
    }

    fn report(&self) -> Option<String> {
        self.render_report()
    }
}
