//! The `lb` data path. By ingress port:
//!
//! - From a client port, to a VIP: the connection table gives the flow's
//!   backend (or the VIP's Maglev table does, for a new flow, and the
//!   table remembers it); the packet goes to the backend by MAC rewrite
//!   (DSR) or in an IP-in-IP tunnel (RFC 2003). An ICMP "fragmentation
//!   needed" (RFC 1191) about a VIP's packet goes to the backend that sent
//!   it: the quoted packet names the flow.
//! - From the backends' port: the backends' answers (DSR and IP-in-IP
//!   answer the client directly, from the VIP) are routed back to the
//!   client side.
//!
//! Per batch: the services snapshot is refreshed (one atomic load), idle
//! connections expire, and flows are hashed and their index lines
//! prefetched ahead of the lookups.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use nfv_core::packet::flags;
use nfv_core::parse::ethertype;
use nfv_core::published::Snapshot;
use nfv_core::{Batch, BuildCtx, PacketMut, Stage, StageCtx};

use crate::config::Lb;
use crate::conntrack::{ConnKey, ConnTable};
use crate::services::{Mode, Services, State, Vip, proto};

nfv_core::drop_reasons! {
    /// Why the load balancer dropped a packet.
    pub enum LbDrop {
        NotIpv4 => "not-ipv4",
        Malformed => "malformed",
        NotAVip => "not-a-vip",
        Fragment => "fragment",
        UnsupportedProtocol => "unsupported-protocol",
        NoBackend => "no-backend",
        NoAdjacency => "no-adjacency",
        NoRouteToClient => "no-route-to-client",
    }
}

/// IP-in-IP (RFC 2003): protocol 4.
const IPIP: u8 = 4;
const ICMP: u8 = 1;

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
    /// Connections given a backend by the Maglev table.
    pub new_connections: u64,
    /// Connections whose backend was removed, given another.
    pub rescheduled: u64,
    /// ICMP "fragmentation needed" sent to the backend of the flow.
    pub icmp_too_big: u64,
    /// Backend answers routed back to clients.
    pub returned: u64,
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

/// One worker's load balancer.
pub struct LbStage {
    lb: Arc<Lb>,
    services: Snapshot<Services>,
    conns: ConnTable,
    macs: Vec<[u8; 6]>,
    client_port: Vec<bool>,
    ticks_per_sec: f64,
    /// Backend MACs per VIP (from the neighbour table), and the table
    /// version and services version they were read from.
    backend_macs: Vec<Vec<Option<[u8; 6]>>>,
    macs_from: (usize, u64),
    /// The client gateway's (MAC, port), read per batch.
    gateway: Option<([u8; 6], u16)>,
    /// Per packet of the batch: its key, flow hash and index hash.
    flows: Vec<Option<(ConnKey, u64, u64)>>,
    vip_stats: Vec<VipStats>,
    backend_stats: Vec<Vec<BackendStats>>,
    /// Counters.
    pub counters: LbCounters,
}

/// The key of a TCP/UDP packet to a VIP, from its headers (the parser
/// checked the lengths); `Err` names why there is none.
#[inline(always)]
fn client_key(d: &[u8], m: &nfv_core::Meta) -> Result<ConnKey, LbDrop> {
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
    let rd32 = |at: usize| u32::from_be_bytes([d[at], d[at + 1], d[at + 2], d[at + 3]]);
    let rd16 = |at: usize| u16::from_be_bytes([d[at], d[at + 1]]);
    Ok(ConnKey {
        client: rd32(l3 + 12),
        vip: rd32(l3 + 16),
        client_port: rd16(l4),
        vip_port: rd16(l4 + 2),
        proto: m.l4_proto,
    })
}

/// The flow an ICMP "fragmentation needed" to a VIP is about: the packet
/// it quotes went VIP -> client (RFC 792: the IP header and 8 bytes).
fn too_big_key(d: &[u8], m: &nfv_core::Meta) -> Option<ConnKey> {
    let l4 = m.l4_off as usize;
    if m.l4_proto != ICMP || m.flags & flags::L4_OK == 0 || d.get(l4..l4 + 2) != Some(&[3, 4]) {
        return None;
    }
    let e = l4 + 8;
    let ihl = (*d.get(e)? & 0x0f) as usize * 4;
    let h = d.get(e..e + ihl + 4)?;
    if h[0] >> 4 != 4 || ihl < 20 {
        return None;
    }
    let rd32 = |at: usize| u32::from_be_bytes([h[at], h[at + 1], h[at + 2], h[at + 3]]);
    let rd16 = |at: usize| u16::from_be_bytes([h[at], h[at + 1]]);
    Some(ConnKey { client: rd32(16), vip: rd32(12), client_port: rd16(ihl + 2), vip_port: rd16(ihl), proto: h[9] })
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
        let mut client_port = vec![false; ctx.port_macs.len()];
        for &p in &lb.clients {
            client_port[p as usize] = true;
        }
        Self {
            services: Snapshot::new(lb.services.clone()),
            conns: ConnTable::new(lb.max_connections, lb.timeouts, seed),
            macs: ctx.port_macs.to_vec(),
            client_port,
            ticks_per_sec: nfv_core::cycles::ticks_per_ns() * 1e9,
            backend_macs: Vec::new(),
            macs_from: (0, u64::MAX),
            gateway: None,
            flows: vec![None; nfv_core::batch::MAX_BATCH],
            vip_stats: Vec::new(),
            backend_stats: Vec::new(),
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
        let nb = ctx.neighbours as *const _ as usize;
        if self.macs_from != (nb, self.services.version) {
            self.macs_from = (nb, self.services.version);
            let port = self.lb.backends_port;
            self.backend_macs = self
                .services
                .vips
                .iter()
                .map(|v| {
                    v.backends
                        .iter()
                        .map(|b| {
                            ctx.neighbours
                                .lookup(&IpAddr::V4(Ipv4Addr::from(b.addr)))
                                .filter(|n| n.port == port)
                                .map(|n| n.mac)
                        })
                        .collect()
                })
                .collect();
            self.gateway = self
                .lb
                .client_gateway
                .and_then(|g| ctx.neighbours.lookup(&IpAddr::V4(Ipv4Addr::from(g))))
                .filter(|n| self.client_port.get(n.port as usize) == Some(&true))
                .map(|n| (n.mac, n.port));
            let vips = &self.services.vips;
            self.vip_stats.resize(vips.len(), VipStats::default());
            self.backend_stats.resize(vips.len(), Vec::new());
            for (s, v) in self.backend_stats.iter_mut().zip(vips) {
                s.resize(v.backends.len(), BackendStats::default());
            }
        }
    }

    /// The backend of connection `key` (to VIP `vi`): remembered, or
    /// picked by the Maglev table and remembered.
    #[inline(always)]
    fn backend_of(
        &mut self,
        vi: usize,
        key: &ConnKey,
        flow_hash: u64,
        index_hash: u64,
        now: u32,
    ) -> Result<u16, LbDrop> {
        let vip = &self.services.vips[vi];
        if let Some(id) = self.conns.find(index_hash, key, now) {
            let b = self.conns.get(id).backend;
            self.conns.touch(id, now);
            if vip.backends.get(b as usize).is_some_and(|b| b.state != State::Removed) {
                return Ok(b);
            }
            // Its backend is gone: the flow moves (the only flows that do).
            let nb = vip.pick(flow_hash as u32).ok_or(LbDrop::NoBackend)?;
            self.conns.set_backend(id, nb);
            self.counters.rescheduled += 1;
            return Ok(nb);
        }
        let b = vip.pick(flow_hash as u32).ok_or(LbDrop::NoBackend)?;
        self.conns.insert(index_hash, *key, b, now);
        self.counters.new_connections += 1;
        self.vip_stats[vi].connections += 1;
        self.backend_stats[vi][b as usize].connections += 1;
        Ok(b)
    }

    /// Sends the packet to backend `b` of VIP `vi` by the VIP's mode.
    #[inline(always)]
    fn forward(&mut self, p: &mut PacketMut<'_>, vi: usize, b: u16) -> Result<(), LbDrop> {
        let vip: &Vip = &self.services.vips[vi];
        let mac = self.backend_macs[vi][b as usize].ok_or(LbDrop::NoAdjacency)?;
        let port = self.lb.backends_port;
        let len = p.len() as u64;
        match vip.mode {
            Mode::Dsr => {
                let d = p.data_mut();
                d[0..6].copy_from_slice(&mac);
                d[6..12].copy_from_slice(&self.macs[port as usize]);
            }
            Mode::Ipip => {
                encapsulate(p, self.lb.tunnel_source, vip.backends[b as usize].addr, mac, self.macs[port as usize])?
            }
        }
        p.send_to(port);
        let s = &mut self.vip_stats[vi];
        s.packets += 1;
        s.bytes += len;
        self.backend_stats[vi][b as usize].packets += 1;
        self.counters.forwarded += 1;
        Ok(())
    }

    /// A packet from a client port that is not a plain TCP/UDP packet:
    /// an ICMP "fragmentation needed" about a VIP's flow goes to its
    /// backend; anything else is dropped with `why`.
    fn client_other(&mut self, p: &mut PacketMut<'_>, why: LbDrop, now: u32) -> Result<(), LbDrop> {
        let m = *p.meta();
        if m.ethertype != ethertype::IPV4 || m.flags & flags::FRAGMENT != 0 {
            return Err(why);
        }
        let Some(key) = too_big_key(p.data(), &m) else { return Err(why) };
        let vi = self.services.find(key.proto, key.vip, key.vip_port).ok_or(LbDrop::NotAVip)?;
        let h = key.hash();
        let b = self.backend_of(vi, &key, h, self.conns.index_hash(h), now)?;
        self.counters.icmp_too_big += 1;
        self.forward(p, vi, b)
    }

    /// A backend's answer: back to the client side.
    fn return_path(&mut self, p: &mut PacketMut<'_>, ctx: &StageCtx<'_>) -> Result<(), LbDrop> {
        let m = *p.meta();
        if m.ethertype != ethertype::IPV4 {
            return Err(LbDrop::NotIpv4);
        }
        if m.flags & flags::L3_OK == 0 {
            return Err(LbDrop::Malformed);
        }
        let l3 = m.l3_off as usize;
        let d = p.data();
        let dst = Ipv4Addr::new(d[l3 + 16], d[l3 + 17], d[l3 + 18], d[l3 + 19]);
        let (mac, port) = match self.gateway {
            Some(g) => g,
            None => ctx
                .neighbours
                .lookup(&IpAddr::V4(dst))
                .filter(|n| self.client_port.get(n.port as usize) == Some(&true))
                .map(|n| (n.mac, n.port))
                .ok_or(LbDrop::NoRouteToClient)?,
        };
        let d = p.data_mut();
        d[0..6].copy_from_slice(&mac);
        d[6..12].copy_from_slice(&self.macs[port as usize]);
        p.send_to(port);
        self.counters.returned += 1;
        Ok(())
    }
}

/// Wraps the packet's IP datagram in an outer IPv4 header from `src` to
/// `dst` (RFC 2003 section 3.1: TOS copied, DF copied, TTL 64, protocol 4)
/// and a new Ethernet header to `mac` from `our_mac`.
fn encapsulate(p: &mut PacketMut<'_>, src: u32, dst: u32, mac: [u8; 6], our_mac: [u8; 6]) -> Result<(), LbDrop> {
    let l3 = p.meta().l3_off as usize;
    if l3 != 14 {
        // VLAN-tagged: the outer header goes after the tags; not done.
        return Err(LbDrop::UnsupportedProtocol);
    }
    let inner = p.len() - 14;
    let (tos, df) = {
        let d = p.data();
        (d[15], d[20] & 0x40)
    };
    let d = p.push_front(20).map_err(|_| LbDrop::Malformed)?;
    d[0..6].copy_from_slice(&mac);
    d[6..12].copy_from_slice(&our_mac);
    d[12..14].copy_from_slice(&ethertype::IPV4.to_be_bytes());
    let h = &mut d[14..34];
    h[0] = 0x45;
    h[1] = tos;
    h[2..4].copy_from_slice(&((inner + 20) as u16).to_be_bytes());
    h[4..6].copy_from_slice(&[0, 0]);
    h[6] = df;
    h[7] = 0;
    h[8] = 64;
    h[9] = IPIP;
    h[10..12].copy_from_slice(&[0, 0]);
    h[12..16].copy_from_slice(&src.to_be_bytes());
    h[16..20].copy_from_slice(&dst.to_be_bytes());
    let c = nfv_core::checksum::checksum(h);
    h[10..12].copy_from_slice(&c.to_be_bytes());
    let m = p.meta_mut();
    (m.l4_off, m.l4_proto) = (34, IPIP);
    Ok(())
}

impl Stage for LbStage {
    fn process(&mut self, batch: &mut Batch, ctx: &mut StageCtx<'_>) {
        let now = (ctx.now_ticks as f64 / self.ticks_per_sec) as u32;
        self.refresh(ctx);
        self.conns.expire(now, SWEEP_PER_BATCH);
        let Some(first) = batch.active().first() else { return };
        if self.client_port.get(first.meta.port as usize) != Some(&true) {
            for mut p in batch.iter_mut() {
                if let Err(r) = self.return_path(&mut p, ctx) {
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
            self.flows[i] = client_key(p.data(), p.meta()).ok().map(|k| {
                let h = k.hash();
                let ih = self.conns.index_hash(h);
                if i < PREFETCH_LAG {
                    self.conns.prefetch(ih);
                }
                (k, h, ih)
            });
        }
        for (i, mut p) in batch.iter_mut().enumerate() {
            if i + PREFETCH_LAG < n
                && let Some((_, _, ih)) = self.flows[i + PREFETCH_LAG]
            {
                self.conns.prefetch(ih);
            }
            let result = match self.flows[i] {
                Some((key, h, ih)) => match self.services.find(key.proto, key.vip, key.vip_port) {
                    Some(vi) => self.backend_of(vi, &key, h, ih, now).and_then(|b| self.forward(&mut p, vi, b)),
                    None => Err(LbDrop::NotAVip),
                },
                None => {
                    let why = client_key(p.data(), p.meta()).err().unwrap_or(LbDrop::Malformed);
                    self.client_other(&mut p, why, now)
                }
            };
            if let Err(r) = result {
                p.drop_with(r);
            }
        }
    }

    fn report(&self) -> Option<String> {
        use std::fmt::Write;
        let t = &self.conns;
        let c = self.counters;
        let mut out = format!(
            "  connections {} in {} ways ({:.1} MiB), created {} expired {} evicted {}\n  forwarded {} new-connections {} rescheduled {} icmp-too-big {} returned {}\n",
            t.len(),
            t.capacity(),
            t.bytes() as f64 / (1 << 20) as f64,
            t.stats.created,
            t.stats.expired,
            t.stats.evicted,
            c.forwarded,
            c.new_connections,
            c.rescheduled,
            c.icmp_too_big,
            c.returned
        );
        for (vi, v) in self.services.vips.iter().enumerate() {
            let s = self.vip_stats.get(vi).copied().unwrap_or_default();
            let _ = writeln!(
                out,
                "  vip {} {}:{} ({:?}): packets {} bytes {} connections {}",
                if v.proto == proto::TCP { "tcp" } else { "udp" },
                Ipv4Addr::from(v.addr),
                v.port,
                v.mode,
                s.packets,
                s.bytes,
                s.connections
            );
            for (bi, b) in v.backends.iter().enumerate() {
                let s = self.backend_stats.get(vi).and_then(|s| s.get(bi)).copied().unwrap_or_default();
                let _ = writeln!(
                    out,
                    "    backend {} weight {} {:?}: packets {} connections {}",
                    Ipv4Addr::from(b.addr),
                    b.weight,
                    b.state,
                    s.packets,
                    s.connections
                );
            }
        }
        Some(out)
    }
}
