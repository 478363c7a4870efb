//! The `nat44` data path. By ingress port:
//!
//! - From an inside port: the source is translated through its session
//!   (found, or opened through the inside endpoint's mapping); a packet to
//!   one of our outside addresses is then translated again as if it came
//!   in (hairpinning, RFC 4787 REQ-9 / RFC 5382 REQ-8: the receiver sees
//!   the sender's outside address and port); then it leaves by the outside
//!   port to the destination's neighbour entry, or the outside gateway's.
//! - From the outside port, to a pool or forward address: the destination
//!   is translated through its session (found, or opened on a mapping the
//!   filtering policy lets in, or a port forward) and the packet goes to
//!   the inside host's neighbour entry.
//!
//! With several workers, a packet whose state another worker holds is
//! handed to it first ([`crate::steer`]).
//!
//! ICMP echo uses its identifier as the port; ICMP errors are matched by
//! the packet they carry and translated with it (RFC 5508), never opening
//! or refreshing a session. Non-first fragments take their first
//! fragment's translation ([`crate::frags`]).

mod report;

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use nfv_core::adjacency::Derived;
use nfv_core::packet::flags;
use nfv_core::published::Snapshot;
use nfv_core::{Batch, BuildCtx, PacketMut, Stage, StageCtx};
use nfv_net::rewrite::{self, Side};
use nfv_net::wire::{self, EthernetFrame, IcmpPacket, Ipv4Packet, TcpPacket, ethertype, icmp, ipv4};

use crate::config::{Forwards, Nat};
use crate::frags::{Fate, FragKey, Fragments};
use crate::sessions::{NatTable, Refusal, TableConfig, Tuple, proto};
use crate::steer::Steering;

nfv_core::drop_reasons! {
    /// Why the NAT dropped a packet.
    pub enum NatDrop {
        NotIpv4 => "not-ipv4",
        Malformed => "malformed",
        BadIpChecksum => "bad-ip-checksum",
        SourceNotInside => "source-not-inside",
        NotOurAddress => "not-our-address",
        UnsupportedProtocol => "unsupported-protocol",
        IcmpNotTranslated => "icmp-type-not-translated",
        NoMapping => "no-mapping",
        Filtered => "filtered",
        TableFull => "table-full",
        PortsExhausted => "ports-exhausted",
        IcmpErrorNoSession => "icmp-error-no-session",
        FragmentWithoutFirst => "fragment-without-first",
        BroadcastOrMulticast => "broadcast-or-multicast",
        DestinationInside => "destination-inside",
    }
}

impl From<Refusal> for NatDrop {
    fn from(r: Refusal) -> Self {
        match r {
            Refusal::TableFull => NatDrop::TableFull,
            Refusal::PortsExhausted => NatDrop::PortsExhausted,
            Refusal::NoMapping => NatDrop::NoMapping,
            Refusal::Filtered => NatDrop::Filtered,
        }
    }
}

/// Seconds a fragment's first fragment's translation is trusted.
const FRAGMENT_LIFETIME: u32 = 5;

/// How many packets ahead of the one being translated its session is
/// prefetched.
const SESSION_LAG: usize = 12;

/// How many packets ahead of the one being translated its index line is
/// prefetched (twice the session's distance: the line must be in before
/// the session prefetch reads it).
const BUCKET_LAG: usize = 24;

/// Sessions expired per batch at most (the rest wait for the next batch).
const EXPIRE_PER_BATCH: usize = 64;

/// Counters beside the drops.
#[derive(Clone, Copy, Debug, Default)]
pub struct NatCounters {
    /// Packets translated inside to outside.
    pub outbound: u64,
    /// Packets translated outside to inside.
    pub inbound: u64,
    /// Packets that came back in through our own outside address.
    pub hairpinned: u64,
    /// ICMP errors translated.
    pub icmp_errors: u64,
    /// Non-first fragments translated.
    pub fragments: u64,
    /// Packets handed to the worker holding their state.
    pub handed_off: u64,
}

/// One worker's NAT.
pub struct NatStage {
    nat: Arc<Nat>,
    /// The port forwards in use (the table and the steering follow them).
    forwards: Snapshot<Forwards>,
    table: NatTable,
    frags: Fragments,
    steer: Steering,
    macs: Vec<[u8; 6]>,
    inside_port: Vec<bool>,
    /// The outside gateway's MAC, looked up when the neighbour table
    /// changes.
    gateway_mac: Derived<Option<[u8; 6]>>,
    /// Per packet of the batch: its session-index hash (from the first
    /// pass, which prefetches the index lines), 0 for none.
    hashes: Vec<u64>,
    /// Per packet of the batch: its tuple and TCP flags (first pass).
    flows: Vec<(Tuple, u8)>,
    /// Counters.
    pub counters: NatCounters,
}

/// The IPv4 header the parser found at `l3` (its length checked).
#[inline(always)]
fn ipv4(d: &[u8], l3: usize) -> Ipv4Packet<&[u8]> {
    Ipv4Packet::new_unchecked(&d[l3..])
}

/// Octets the common packet's flow is read from at once: an option-less
/// IPv4 header and a TCP header through its flags (UDP's 8 fit).
const FLOW_HEAD: usize = ipv4::HEADER_LEN + 14;

/// What a packet's L4 header says for the session lookup.
enum L4 {
    /// TCP, UDP, or an ICMP echo: the tuple, TCP flags.
    Flow(Tuple, u8),
    /// An ICMP error, its ICMP header at this offset.
    IcmpError(usize),
    /// A non-first fragment.
    LaterFragment,
}

impl NatStage {
    /// This worker's instance: its own session table (its share of the
    /// pool's ports), allocated now.
    pub fn new(nat: Arc<Nat>, ctx: &BuildCtx<'_>) -> Self {
        let seed = {
            use std::hash::{BuildHasher, Hasher};
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_usize(ctx.worker);
            h.finish()
        };
        let table = NatTable::new(&TableConfig {
            max_sessions: nat.max_sessions,
            when_full: nat.when_full,
            timeouts: nat.timeouts,
            pool: nat.pool.clone(),
            port_range: nat.port_range,
            worker: ctx.chain_rank as u16,
            workers: ctx.chain_workers.max(1) as u16,
            forwards: nat.forwards.load().list.clone(),
            seed,
        });
        let mut inside_port = vec![false; ctx.port_macs.len()];
        for &p in &nat.inside {
            inside_port[p as usize] = true;
        }
        Self {
            frags: Fragments::new(nat.fragments, FRAGMENT_LIFETIME, seed.rotate_left(17)),
            steer: Steering::new(nat.port_range, &nat.forwards.load().list, ctx.chain_rank, ctx.chain_workers),
            forwards: Snapshot::new(nat.forwards.clone()),
            table,
            macs: ctx.port_macs.to_vec(),
            inside_port,
            gateway_mac: Derived::new(None),
            hashes: vec![0; nfv_core::batch::MAX_BATCH],
            flows: vec![
                (Tuple { proto: 0, addr: 0, port: 0, rem_addr: 0, rem_port: 0 }, 0);
                nfv_core::batch::MAX_BATCH
            ],
            nat,
            counters: NatCounters::default(),
        }
    }

    /// Takes the port forwards just published: those gone are removed
    /// with their sessions, new ones added (a dynamic mapping on their
    /// endpoints ended), the steering rebuilt. Between batches, once per
    /// change.
    #[cold]
    fn take_forwards(&mut self) {
        let old = self.forwards.arc().clone();
        self.forwards.refresh();
        let new = &self.forwards.list;
        for f in old.list.iter().filter(|f| !new.contains(f)) {
            self.table.remove_forward(*f);
        }
        for f in new.iter().filter(|f| !old.list.contains(f)) {
            self.table.add_forward(*f);
        }
        self.steer = Steering::new(self.nat.port_range, new, self.steer.rank as usize, self.steer.workers as usize);
    }

    /// The session table (tests, reports).
    pub fn table(&self) -> &NatTable {
        &self.table
    }

    /// What the packet's L4 header gives, from the side whose local
    /// endpoint is (`local`, at the source when `outbound`).
    #[inline(always)]
    fn l4(d: &[u8], m: &nfv_core::Meta, outbound: bool) -> Result<L4, NatDrop> {
        let l3 = m.l3_off as usize;
        // The usual packet: TCP or UDP right after an option-less IPv4
        // header, read through one fixed-size view.
        if m.flags & (flags::L4_OK | flags::FRAGMENT) == flags::L4_OK
            && m.l4_off == m.l3_off + 20
            && matches!(m.l4_proto, proto::TCP | proto::UDP)
            && let Some(h) = d.get(l3..).and_then(|h| h.first_chunk::<FLOW_HEAD>())
        {
            let ip = Ipv4Packet::new_unchecked(&h[..]);
            let (src, dst) = (ip.src(), ip.dst());
            let (sp, dp) = wire::ports(&h[ipv4::HEADER_LEN..]);
            let tcp =
                if m.l4_proto == proto::TCP { TcpPacket::new_unchecked(&h[ipv4::HEADER_LEN..]).flags() } else { 0 };
            let t = if outbound {
                Tuple { proto: m.l4_proto, addr: src, port: sp, rem_addr: dst, rem_port: dp }
            } else {
                Tuple { proto: m.l4_proto, addr: dst, port: dp, rem_addr: src, rem_port: sp }
            };
            return Ok(L4::Flow(t, tcp));
        }
        let (src, dst) = (ipv4(d, l3).src(), ipv4(d, l3).dst());
        let (local, remote) = if outbound { (src, dst) } else { (dst, src) };
        if !matches!(m.l4_proto, proto::TCP | proto::UDP | proto::ICMP) {
            return Err(NatDrop::UnsupportedProtocol);
        }
        if m.flags & flags::L4_OK == 0 {
            return if m.flags & flags::FRAGMENT != 0 { Ok(L4::LaterFragment) } else { Err(NatDrop::Malformed) };
        }
        let l4 = m.l4_off as usize;
        let flow = |p: u8, lport: u16, rport: u16, tcp: u8| {
            L4::Flow(Tuple { proto: p, addr: local, port: lport, rem_addr: remote, rem_port: rport }, tcp)
        };
        match m.l4_proto {
            proto::TCP | proto::UDP => {
                let (sp, dp) = wire::ports(&d[l4..]);
                let (lp, rp) = if outbound { (sp, dp) } else { (dp, sp) };
                let tcp = if m.l4_proto == proto::TCP { TcpPacket::new_unchecked(&d[l4..]).flags() } else { 0 };
                Ok(flow(m.l4_proto, lp, rp, tcp))
            }
            proto::ICMP => match IcmpPacket::new_unchecked(&d[l4..]) {
                // Echo request or reply: the identifier (RFC 792) is the port.
                i if matches!(i.msg_type(), icmp::v4::ECHO_REQUEST | icmp::v4::ECHO_REPLY) => {
                    Ok(flow(proto::ICMP, i.echo_ident(), 0, 0))
                }
                i if rewrite::is_icmp_error(i.msg_type()) => Ok(L4::IcmpError(l4)),
                _ => Err(NatDrop::IcmpNotTranslated),
            },
            _ => Err(NatDrop::UnsupportedProtocol),
        }
    }

    /// Ethernet addresses for leaving by `port` to `mac`.
    #[inline(always)]
    fn set_l2(&self, p: &mut PacketMut<'_>, port: u16, mac: [u8; 6]) {
        EthernetFrame::new_unchecked(p.data_mut()).set_addrs(mac, self.macs[port as usize]);
        p.send_to(port);
    }

    /// Sends toward `dst` on the outside: to the gateway when there is
    /// one, else to `dst` itself (held while unresolved).
    fn route_outside(&self, p: &mut PacketMut<'_>, dst: u32, ctx: &mut StageCtx<'_>) -> Result<(), NatDrop> {
        let out = self.nat.outside;
        if let Some(mac) = *self.gateway_mac.get() {
            self.set_l2(p, out, mac);
            return Ok(());
        }
        let hop = self.nat.outside_gateway.unwrap_or(dst);
        ctx.adjacency.send(p, &[out], IpAddr::V4(Ipv4Addr::from(hop)));
        Ok(())
    }

    /// Sends to inside host `dst`: where its session last saw it (or its
    /// mapping's other sessions did), else by its address on the inside
    /// (held while unresolved: a port forward's server that has not
    /// spoken since a restart is asked for, not lost).
    fn route_inside(
        &self,
        p: &mut PacketMut<'_>,
        dst: u32,
        host: Option<([u8; 6], u16)>,
        ctx: &mut StageCtx<'_>,
    ) -> Result<(), NatDrop> {
        let hop = IpAddr::V4(Ipv4Addr::from(dst));
        if let Some((mac, port)) = host.filter(|h| h.0 != [0; 6]) {
            if ctx.adjacency.waits_for(&hop) {
                // Behind the packets held for it: nothing overtakes them.
                ctx.adjacency.hold(p, &[port], hop);
            } else {
                self.set_l2(p, port, mac);
            }
            return Ok(());
        }
        // A host off the inside's subnets is refused by the adjacency when
        // the graph ends, unless a later stage (a tunnel) takes it there.
        ctx.adjacency.send(p, &self.nat.inside, hop);
        Ok(())
    }

    fn frag_key(d: &[u8], m: &nfv_core::Meta) -> FragKey {
        let ip = ipv4(d, m.l3_off as usize);
        FragKey { src: ip.src(), dst: ip.dst(), id: ip.ident(), proto: m.l4_proto }
    }

    /// A non-first fragment, either way: its first fragment's translation
    /// (a new destination sends it inside, a new source outside).
    fn later_fragment(
        &mut self,
        p: &mut PacketMut<'_>,
        m: &nfv_core::Meta,
        now: u32,
        ctx: &mut StageCtx<'_>,
    ) -> Result<(), NatDrop> {
        let l3 = m.l3_off as usize;
        let key = Self::frag_key(p.data(), m);
        let (side, addr) = match self.frags.lookup(&key, now).ok_or(NatDrop::FragmentWithoutFirst)? {
            Fate::Translated(side, addr) => (side, addr),
            Fate::HandedTo(w) => {
                self.hand_off(p, w as usize);
                return Ok(());
            }
        };
        rewrite::rewrite(p.data_mut(), l3, None, m.l4_proto, side, addr, 0).ok_or(NatDrop::Malformed)?;
        self.counters.fragments += 1;
        let dst = ipv4(p.data(), l3).dst();
        if side == Side::Dst { self.route_inside(p, dst, None, ctx) } else { self.route_outside(p, dst, ctx) }
    }

    /// Hands the packet to worker `w`, which holds its state.
    #[inline(always)]
    fn hand_off(&mut self, p: &mut PacketMut<'_>, w: usize) {
        self.counters.handed_off += 1;
        p.hand_off(w);
    }

    /// Inside to outside.
    #[inline(always)]
    fn outbound(&mut self, p: &mut PacketMut<'_>, hash: u64, now: u32, ctx: &mut StageCtx<'_>) -> Result<(), NatDrop> {
        let m = *p.meta();
        let l3 = m.l3_off as usize;
        let (src, dst) = (ipv4(p.data(), l3).src(), ipv4(p.data(), l3).dst());
        if !self.nat.translates(src) {
            return Err(NatDrop::SourceNotInside);
        }
        // RFC 1812 5.3.5.1: a limited broadcast is never forwarded; group
        // traffic is not translated here (no RFC 5135 multicast NAT).
        if dst == u32::MAX || dst >> 28 == 0xe {
            return Err(NatDrop::BroadcastOrMulticast);
        }
        if self.nat.is_inside(dst) {
            return Err(NatDrop::DestinationInside);
        }
        if let Some(w) = self.steer.elsewhere(self.steer.inside_owner(src)) {
            self.hand_off(p, w);
            return Ok(());
        }
        match Self::l4(p.data(), &m, true)? {
            L4::LaterFragment => self.later_fragment(p, &m, now, ctx),
            L4::IcmpError(icmp) => {
                // An inside host's error about a packet that came in: the
                // packet it quotes went remote -> inside.
                let e = rewrite::embedded(p.data(), icmp).ok_or(NatDrop::Malformed)?;
                let t = Tuple { proto: e.proto, addr: e.dst.0, port: e.dst.1, rem_addr: e.src.0, rem_port: e.src.1 };
                let s = self.table.find_inside(&t).ok_or(NatDrop::IcmpErrorNoSession)?;
                let s = *self.table.session(s);
                rewrite::rewrite_icmp_error(p.data_mut(), l3, icmp, &e, Side::Src, s.out_addr, s.out_port)
                    .ok_or(NatDrop::Malformed)?;
                self.counters.icmp_errors += 1;
                self.route_outside(p, dst, ctx)
            }
            L4::Flow(t, tcp) => {
                let found =
                    if hash != 0 { self.table.find_inside_hashed(hash, &t) } else { self.table.find_inside(&t) };
                let id = match found {
                    Some(id) => id,
                    None => self.table.open_outbound(&t, now)?,
                };
                self.table.refresh(id, now, tcp, true);
                let d = p.data_mut();
                self.table.set_host(id, EthernetFrame::new_unchecked(&*d).src_addr(), m.port);
                let (out_addr, out_port) = {
                    let s = self.table.session(id);
                    (s.out_addr, s.out_port)
                };
                rewrite::rewrite(d, l3, Some(m.l4_off as usize), t.proto, Side::Src, out_addr, out_port)
                    .ok_or(NatDrop::Malformed)?;
                if m.flags & flags::FRAGMENT != 0 {
                    let id = ipv4(d, l3).ident();
                    let fate = Fate::Translated(Side::Src, out_addr);
                    self.frags.remember(FragKey { src, dst, id, proto: t.proto }, fate, now);
                }
                self.counters.outbound += 1;
                if self.nat.is_outside_address(dst) {
                    // Hairpin: back in, from the sender's outside endpoint.
                    let back =
                        Tuple { proto: t.proto, addr: dst, port: t.rem_port, rem_addr: out_addr, rem_port: out_port };
                    let back =
                        if t.proto == proto::ICMP { Tuple { port: out_port, rem_port: 0, ..back } } else { back };
                    self.counters.hairpinned += 1;
                    if let Some(w) = self.steer.elsewhere(self.steer.outside_owner(t.proto, dst, back.port)) {
                        // The destination's mapping is another worker's:
                        // it takes the packet as if it came in.
                        p.meta_mut().port = self.nat.outside;
                        self.hand_off(p, w);
                        return Ok(());
                    }
                    return self.deliver_inbound(p, &m, back, tcp, 0, now, ctx);
                }
                self.route_outside(p, dst, ctx)
            }
        }
    }

    /// Starts loading the index line of hash `h`.
    #[inline(always)]
    fn prefetch_bucket(&self, h: u64, outbound: bool) {
        if outbound {
            self.table.prefetch_inside(h);
        } else {
            self.table.prefetch_outside(h);
        }
    }

    /// Starts loading packet `i`'s session, if its flow has one in view.
    #[inline(always)]
    fn prefetch_session(&self, i: usize, outbound: bool) {
        let h = self.hashes[i];
        if h != 0 {
            if outbound {
                self.table.prefetch_session_inside(h);
            } else {
                self.table.prefetch_session_outside(h);
            }
        }
    }

    /// The common case going out, straight through: an established
    /// TCP/UDP/echo flow, not a fragment, not hairpinned, with a gateway.
    /// `None`: not that case (nothing done), the general path takes it.
    #[inline(always)]
    fn fast_outbound(
        &mut self,
        p: &mut PacketMut<'_>,
        m: &nfv_core::Meta,
        i: usize,
        hash: u64,
        now: u32,
    ) -> Option<Result<(), NatDrop>> {
        let (t, tcp) = self.flows[i];
        if m.flags & flags::FRAGMENT != 0 || !self.nat.translates(t.addr) || self.nat.is_outside_address(t.rem_addr) {
            return None;
        }
        let gw = (*self.gateway_mac.get())?;
        let id = self.table.find_inside_hashed(hash, &t)?;
        let l3 = m.l3_off as usize;
        let out = self.nat.outside;
        let d = p.data();
        if !ipv4(d, l3).verify_checksum() {
            return Some(Err(NatDrop::BadIpChecksum));
        }
        self.table.refresh(id, now, tcp, true);
        self.table.set_host(id, EthernetFrame::new_unchecked(d).src_addr(), m.port);
        let (out_addr, out_port) = {
            let s = self.table.session(id);
            (s.out_addr, s.out_port)
        };
        let r = self.translate_and_send(p, m, t.proto, Side::Src, (out_addr, out_port), (gw, out));
        if r.is_ok() {
            self.counters.outbound += 1;
            if self.table.offload().is_some() {
                self.table.offer(id, true, gw, self.macs[out as usize], out);
            }
        }
        Some(r)
    }

    /// The fast paths' end: `side` becomes `to`, the frame leaves by
    /// `via.1` to MAC `via.0`.
    #[inline(always)]
    fn translate_and_send(
        &self,
        p: &mut PacketMut<'_>,
        m: &nfv_core::Meta,
        proto_: u8,
        side: Side,
        to: (u32, u16),
        via: ([u8; 6], u16),
    ) -> Result<(), NatDrop> {
        let d = p.data_mut();
        let (l3, l4) = (m.l3_off as usize, m.l4_off as usize);
        if l4 != l3 + ipv4::HEADER_LEN || !rewrite::rewrite_plain(d, l3, proto_, side, to.0, to.1) {
            rewrite::rewrite(d, l3, Some(l4), proto_, side, to.0, to.1).ok_or(NatDrop::Malformed)?;
        }
        EthernetFrame::new_unchecked(d).set_addrs(via.0, self.macs[via.1 as usize]);
        p.send_to(via.1);
        Ok(())
    }

    /// The common case coming in: an established flow to a host whose
    /// session knows where it is, not a fragment.
    #[inline(always)]
    fn fast_inbound(
        &mut self,
        p: &mut PacketMut<'_>,
        m: &nfv_core::Meta,
        i: usize,
        hash: u64,
        now: u32,
    ) -> Option<Result<(), NatDrop>> {
        let (t, tcp) = self.flows[i];
        if m.flags & flags::FRAGMENT != 0 {
            return None;
        }
        let id = self.table.find_outside_hashed(hash, &t)?;
        let (in_addr, in_port, mac, port) = {
            let s = self.table.session(id);
            (s.in_addr, s.in_port, s.host_mac, s.host_port)
        };
        if mac == [0; 6] {
            return None;
        }
        if !ipv4(p.data(), m.l3_off as usize).verify_checksum() {
            return Some(Err(NatDrop::BadIpChecksum));
        }
        self.table.refresh(id, now, tcp, false);
        let r = self.translate_and_send(p, m, t.proto, Side::Dst, (in_addr, in_port), (mac, port));
        if r.is_ok() {
            self.counters.inbound += 1;
            if self.table.offload().is_some() {
                self.table.offer(id, false, mac, self.macs[port as usize], port);
            }
        }
        Some(r)
    }

    /// Hands packet `i` (a TCP/UDP/echo flow) to the worker holding its
    /// mapping, if that is another; true if it did. A first fragment
    /// coming in leaves word of where it went, for the later ones.
    fn steer_flow(&mut self, p: &mut PacketMut<'_>, m: &nfv_core::Meta, i: usize, outbound: bool, now: u32) -> bool {
        let (t, _) = self.flows[i];
        let owner = if outbound {
            if !self.nat.translates(t.addr) {
                return false;
            }
            self.steer.inside_owner(t.addr)
        } else if self.nat.is_outside_address(t.addr) {
            self.steer.outside_owner(t.proto, t.addr, t.port)
        } else {
            return false;
        };
        let Some(w) = self.steer.elsewhere(owner) else { return false };
        if !outbound && m.flags & flags::FRAGMENT != 0 {
            self.frags.remember(Self::frag_key(p.data(), m), Fate::HandedTo(owner), now);
        }
        self.hand_off(p, w);
        true
    }

    /// Outside to inside.
    #[inline(always)]
    fn inbound(&mut self, p: &mut PacketMut<'_>, hash: u64, now: u32, ctx: &mut StageCtx<'_>) -> Result<(), NatDrop> {
        let m = *p.meta();
        let l3 = m.l3_off as usize;
        let dst = ipv4(p.data(), l3).dst();
        if !self.nat.is_outside_address(dst) {
            return Err(NatDrop::NotOurAddress);
        }
        match Self::l4(p.data(), &m, false)? {
            L4::LaterFragment => self.later_fragment(p, &m, now, ctx),
            L4::IcmpError(icmp) => {
                // A remote's error about a packet we sent out: it quotes
                // our outside endpoint as the source.
                let e = rewrite::embedded(p.data(), icmp).ok_or(NatDrop::Malformed)?;
                if let Some(w) = self.steer.elsewhere(self.steer.outside_owner(e.proto, e.src.0, e.src.1)) {
                    self.hand_off(p, w);
                    return Ok(());
                }
                let t = Tuple { proto: e.proto, addr: e.src.0, port: e.src.1, rem_addr: e.dst.0, rem_port: e.dst.1 };
                let s = self.table.find_outside(&t).ok_or(NatDrop::IcmpErrorNoSession)?;
                let s = *self.table.session(s);
                rewrite::rewrite_icmp_error(p.data_mut(), l3, icmp, &e, Side::Dst, s.in_addr, s.in_port)
                    .ok_or(NatDrop::Malformed)?;
                self.counters.icmp_errors += 1;
                self.route_inside(p, s.in_addr, Some((s.host_mac, s.host_port)), ctx)
            }
            L4::Flow(t, tcp) => self.deliver_inbound(p, &m, t, tcp, hash, now, ctx),
        }
    }

    /// Translates the destination of a packet for outside tuple `t` and
    /// sends it inside.
    #[allow(clippy::too_many_arguments)]
    fn deliver_inbound(
        &mut self,
        p: &mut PacketMut<'_>,
        m: &nfv_core::Meta,
        t: Tuple,
        tcp: u8,
        hash: u64,
        now: u32,
        ctx: &mut StageCtx<'_>,
    ) -> Result<(), NatDrop> {
        let l3 = m.l3_off as usize;
        let found = if hash != 0 { self.table.find_outside_hashed(hash, &t) } else { self.table.find_outside(&t) };
        let id = match found {
            Some(id) => id,
            None => self.table.open_inbound(&t, now, self.nat.filtering)?,
        };
        self.table.refresh(id, now, tcp, false);
        let s = *self.table.session(id);
        let key = Self::frag_key(p.data(), m);
        rewrite::rewrite(p.data_mut(), l3, Some(m.l4_off as usize), t.proto, Side::Dst, s.in_addr, s.in_port)
            .ok_or(NatDrop::Malformed)?;
        if m.flags & flags::FRAGMENT != 0 {
            self.frags.remember(key, Fate::Translated(Side::Dst, s.in_addr), now);
        }
        self.counters.inbound += 1;
        self.route_inside(p, s.in_addr, Some((s.host_mac, s.host_port)), ctx)
    }
}

impl Stage for NatStage {
    fn process(&mut self, batch: &mut Batch, ctx: &mut StageCtx<'_>) {
        if self.forwards.stale() {
            self.take_forwards();
        }
        let now = ctx.now_secs();
        self.table.expire(now, EXPIRE_PER_BATCH);
        let (gateway, outside) = (self.nat.outside_gateway, self.nat.outside);
        self.gateway_mac.refresh(ctx.adjacency, 0, |mac, adj| {
            *mac = gateway.and_then(|g| adj.lookup(&IpAddr::V4(Ipv4Addr::from(g)), outside));
        });
        // A batch holds the packets of one rx port: one direction.
        if batch.is_empty() {
            return;
        }
        let outbound = self.inside_port.get(batch.rx_port() as usize) == Some(&true);
        // First pass: each flow's index hash (the first BUCKET_LAG index
        // lines start loading at once; the rest are prefetched that many
        // packets ahead in the translation pass, as are the sessions).
        let mut n = 0;
        for (i, p) in batch.iter_mut().enumerate() {
            let m = p.meta();
            self.hashes[i] = 0;
            n = i + 1;
            if m.ethertype != ethertype::IPV4 || m.flags & flags::L3_OK == 0 {
                continue;
            }
            if let Ok(L4::Flow(t, tcp)) = Self::l4(p.data(), m, outbound) {
                self.flows[i] = (t, tcp);
                let h = if outbound { self.table.inside_hash(&t) } else { self.table.outside_hash(&t) };
                if i < BUCKET_LAG {
                    self.prefetch_bucket(h, outbound);
                }
                self.hashes[i] = h;
            }
        }
        // Sessions are prefetched SESSION_LAG packets ahead of the one
        // being translated: by then their index lines have arrived.
        for i in 0..SESSION_LAG.min(n) {
            self.prefetch_session(i, outbound);
        }
        for (i, mut p) in batch.iter_mut().enumerate() {
            if i + BUCKET_LAG < n && self.hashes[i + BUCKET_LAG] != 0 {
                self.prefetch_bucket(self.hashes[i + BUCKET_LAG], outbound);
            }
            if i + SESSION_LAG < n {
                self.prefetch_session(i + SESSION_LAG, outbound);
            }
            let m = *p.meta();
            let hash = self.hashes[i];
            if hash != 0 && !self.steer.single() && self.steer_flow(&mut p, &m, i, outbound, now) {
                continue;
            }
            if hash != 0 {
                let fast = if outbound {
                    self.fast_outbound(&mut p, &m, i, hash, now)
                } else {
                    self.fast_inbound(&mut p, &m, i, hash, now)
                };
                match fast {
                    Some(Ok(())) => continue,
                    Some(Err(reason)) => {
                        p.drop_with(reason);
                        continue;
                    }
                    None => {}
                }
            }
            let result = if m.ethertype != ethertype::IPV4 {
                Err(NatDrop::NotIpv4)
            } else if m.flags & flags::L3_OK == 0 {
                Err(NatDrop::Malformed)
            } else if !ipv4(p.data(), m.l3_off as usize).verify_checksum() {
                // RFC 1812 section 5.2.2: a router verifies it; rewriting
                // incrementally would carry the error on, disguised.
                Err(NatDrop::BadIpChecksum)
            } else if self.inside_port.get(m.port as usize) == Some(&true) {
                self.outbound(&mut p, hash, now, ctx)
            } else {
                self.inbound(&mut p, hash, now, ctx)
            };
            if let Err(reason) = result {
                p.drop_with(reason);
            }
        }
    }

    fn tick(&mut self, _batch: &mut Batch, ctx: &mut StageCtx<'_>) {
        // With flows in XDP the workers may see none of their packets:
        // activity comes back as touches, and expiry runs here too.
        if self.table.offload().is_some() {
            let now = ctx.now_secs();
            // Forwards ended by a reload end their sessions (and take
            // their flows back from XDP) now, not at the next packet.
            if self.forwards.stale() {
                self.take_forwards();
            }
            self.table.take_touches(now);
            self.table.expire(now, EXPIRE_PER_BATCH);
        }
    }

    fn take_offload(&mut self, o: nfv_core::offload::Offloader) -> bool {
        self.table.set_offload(o);
        true
    }

    fn tables(&self) -> &'static [&'static str] {
        &["sessions"]
    }

    fn sample(&self, out: &mut [nfv_core::Occupancy]) {
        out[0] = nfv_core::Occupancy { entries: self.table.len() as u64, capacity: self.table.capacity() as u64 };
    }

    fn report(&self) -> Option<String> {
        self.render_report()
    }
}
