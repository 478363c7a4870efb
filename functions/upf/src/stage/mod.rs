//! The `upf` data path. By ingress port:
//!
//! - N3 (from gNBs), GTP-U to our N3 address: a G-PDU's session is found
//!   by its TEID, its PDR by precedence (TS 29.244 5.2.1: the inner
//!   packet's flow, the QFI of its PDU Session Container); the FAR
//!   forwards it to N6 without its outer headers (uplink), or drops it.
//!   An Echo Request is answered (TS 29.281 7.2.2).
//! - N6 (from the data network), to a UE address: the session is found by
//!   the address, the PDR by precedence; the FAR's outer header creation
//!   puts the packet in the gNB's tunnel (GTP-U over UDP/IPv4, a PDU
//!   Session Container with the QFI) and sends it out N3 (downlink).
//!
//! Sessions come as a published snapshot (static ones from the
//! configuration and PFCP's), taken up between batches. `meter` holds
//! the QERs' token buckets, `tunnel` the way toward gNBs (next hops,
//! tunnel headers, End Markers).

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use nfv_core::adjacency::Derived;
use nfv_core::packet::flags;
use nfv_core::published::Snapshot;
use nfv_core::{Batch, BuildCtx, PacketMut, Stage, StageCtx};
use nfv_net::wire::{self, EthernetFrame, Ipv4Packet, Ipv6Packet, UdpPacket, ethertype, ipv4, ipv6, proto, udp};

use crate::config::Upf;
use crate::gtpu::{self, msg};
use rustc_hash::FxHashMap;

use crate::fast::Fast;
use crate::held::Held;
use crate::rules::{Action, Far, Interface, Pdr, Sessions};
use crate::sdf::FlowView;
use crate::usage::Lane;

mod meter;
mod offload;
mod tunnel;

use meter::Meter;

nfv_core::drop_reasons! {
    /// Why the UPF dropped a packet.
    pub enum UpfDrop {
        NotIpv4 => "not-ipv4",
        Malformed => "malformed",
        NotGtpu => "not-gtpu",
        MalformedGtpu => "malformed-gtpu",
        UnsupportedGtpuMessage => "unsupported-gtpu-message",
        EndMarker => "end-marker",
        UnknownTeid => "unknown-teid",
        UnknownUe => "unknown-ue",
        NoPdr => "no-pdr",
        FarDrop => "far-drop",
        FarBuffer => "far-buffer",
        Buffered => "buffered",
        BufferFull => "buffer-full",
        NoAdjacency => "no-adjacency",
        GateClosed => "gate-closed",
        MbrExceeded => "mbr-exceeded",
    }
}

/// Counters beside the drops.
#[derive(Clone, Copy, Debug, Default)]
pub struct UpfCounters {
    /// Uplink packets decapsulated and sent to N6.
    pub uplink: u64,
    /// Downlink packets encapsulated and sent to N3.
    pub downlink: u64,
    /// Echo Requests answered.
    pub echo: u64,
    /// Error Indications sent for unknown TEIDs.
    pub error_indications: u64,
    /// Downlink packets held for a buffering FAR.
    pub held: u64,
    /// Held packets sent on when their FAR came to forward.
    pub held_released: u64,
    /// Held packets dropped: the FAR came to drop, or the session went.
    pub held_discarded: u64,
    /// Held packets dropped after [`HOLD_LIMIT_SECS`].
    pub held_expired: u64,
    /// First-held notices the N4 side's queue had no room for.
    pub notices_lost: u64,
    /// End Markers sent into tunnels the SMF switched away from.
    pub end_markers: u64,
    /// End Markers not sent (the old gNB unresolved, no frame).
    pub end_markers_unsent: u64,
}

/// Error Indications a worker sends per second at most (TS 29.281 7.3.1
/// leaves the pace to the implementation; a flood of stale tunnels must
/// not become a flood back).
const ERROR_INDICATIONS_PER_SEC: u32 = 100;

/// How long a packet may stay held (its session's FAR buffering) before
/// it is dropped (`held_expired`): a UE that does not answer paging.
const HOLD_LIMIT_SECS: f64 = 10.0;

/// What becomes of a held packet, by its session's rules now.
enum Fate {
    Keep,
    Release,
    Discard,
}

/// The metadata of a held packet released toward N6, parsed as on
/// arrival.
fn released_meta(bytes: &[u8], n6: nfv_core::PortId) -> nfv_core::Meta {
    let mut meta = nfv_core::Meta { port: n6, ..Default::default() };
    let _ = nfv_core::parse::classify(bytes, &mut meta);
    meta
}

/// A held downlink frame's fate: its session's downlink FAR forwards
/// (release), buffers (keep), or drops, or the session is gone (discard).
fn held_fate(sessions: &Sessions, frame: &[u8]) -> Fate {
    let Some(flow) = flow_of(frame, 14, true) else { return Fate::Discard };
    let fast = sessions.fast_downlink.get(flow.ue.0).filter(|f| flow.ue6.is_none() && f.session != Fast::GENERAL);
    let action = match fast {
        Some(f) => f.action,
        None => match downlink_rule(sessions, &flow) {
            Ok((_, _, far)) => far.action,
            Err(_) => return Fate::Discard,
        },
    };
    match action {
        Action::Forward => Fate::Release,
        Action::Buffer => Fate::Keep,
        Action::Drop => Fate::Discard,
    }
}

/// The downlink PDR and FAR for `flow` by the general walk, with the
/// session's slot: by UE address (IPv4) or /64 (IPv6).
fn downlink_rule<'a>(sessions: &'a Sessions, flow: &FlowView) -> Result<(u32, &'a Pdr, &'a Far), UpfDrop> {
    let (i, s) = match flow.ue6 {
        Some(prefix) => sessions.numbered_by_ue6(prefix),
        None => sessions.numbered_by_ue(flow.ue.0),
    }
    .ok_or(UpfDrop::UnknownUe)?;
    let pdr = s.detect(Interface::Core, None, None, flow).ok_or(UpfDrop::NoPdr)?;
    Ok((i, pdr, s.far(pdr.far).ok_or(UpfDrop::NoPdr)?))
}

/// One worker's UPF.
pub struct UpfStage {
    upf: Arc<Upf>,
    sessions: Snapshot<Sessions>,
    macs: Vec<[u8; 6]>,
    /// The ways out derived from the neighbour table.
    ways: Derived<Ways>,
    /// QER enforcement.
    meter: Meter,
    /// Downlink packets held for buffering FARs, the sessions version
    /// they were last checked against, and when.
    held: Held,
    held_of: u64,
    held_swept: u64,
    /// Held packets are going through the downlink path.
    releasing: bool,
    /// The sessions version up to which this worker sent End Markers.
    ended_through: u64,
    /// This worker's URR counters.
    usage: Arc<Lane>,
    /// A stage after this one reads headers: packets it decapsulates or
    /// encapsulates are parsed again.
    pub(crate) reparse: bool,
    /// The batch's fast-table keys (kept for its capacity).
    keys: Vec<u32>,
    now_ticks: u64,
    /// A second in counter ticks.
    second: u64,
    /// Error Indications sent a second at most.
    indications: nfv_core::cycles::PerSecond,
    /// Counters.
    pub counters: UpfCounters,
    /// The plain sessions handed to XDP, when the plan places them there.
    offload: Option<Box<offload::Offload>>,
}

use nfv_net::be::{rd16, rd32};

/// The flow of the IP packet at `ip` as SDF filters see it (TS 29.244
/// 5.2.1A: downlink orientation, an uplink packet's ends swapped): IPv4
/// addresses and ports, or an IPv6 packet's UE /64 and ports (TCP and UDP
/// right after the fixed header; 0 otherwise, for later fragments, or
/// when cut short).
fn flow_of(d: &[u8], ip: usize, downlink: bool) -> Option<FlowView> {
    let ports = |p: u8, at: usize, first: bool| match (p, d.get(at..at + 4)) {
        (proto::TCP | proto::UDP, Some(l4)) if first => (rd16(l4, 0), rd16(l4, 2)),
        _ => (0, 0),
    };
    let h = d.get(ip..ip + 20)?;
    let (src, dst, flow) = match h[0] >> 4 {
        4 => {
            let ihl = (h[0] & 0x0f) as usize * 4;
            let (sp, dp) = ports(h[9], ip + ihl, rd16(h, 6) & 0x1fff == 0);
            let f = FlowView { proto: h[9], ..FlowView::default() };
            ((rd32(h, 12), sp), (rd32(h, 16), dp), f)
        }
        6 => {
            let h = d.get(ip..ip + 40)?;
            let (sp, dp) = ports(h[6], ip + 40, true);
            let prefix = |at: usize| u64::from_be_bytes(h[at..at + 8].try_into().expect("8"));
            let ue6 = Some(if downlink { prefix(24) } else { prefix(8) });
            ((0, sp), (0, dp), FlowView { proto: h[6], ue6, ..FlowView::default() })
        }
        _ => return None,
    };
    let (remote, ue) = if downlink { (src, dst) } else { (dst, src) };
    Some(FlowView { remote, ue, ..flow })
}

/// The key a held packet is kept under: the UE's IPv4 address, or its
/// IPv6 /64 (at or above 2^32: no global prefix has 32 leading zeros).
fn held_key(f: &FlowView) -> u64 {
    f.ue6.unwrap_or(f.ue.0 as u64)
}

impl UpfStage {
    /// This worker's instance.
    pub fn new(upf: Arc<Upf>, ctx: &BuildCtx<'_>) -> Self {
        Self {
            sessions: Snapshot::new(upf.sessions.clone()),
            macs: ctx.port_macs.to_vec(),
            ways: Derived::new(Ways::default()),
            meter: Meter::new(),
            usage: upf.usage.lane(),
            reparse: ctx.headers_read_later,
            held: Held::new(upf.buffer_packets),
            held_of: 0,
            held_swept: 0,
            releasing: false,
            ended_through: upf.sessions.load().version,
            keys: Vec::with_capacity(256),
            now_ticks: 0,
            second: nfv_core::cycles::ticks(1.0),
            indications: nfv_core::cycles::PerSecond::new(ERROR_INDICATIONS_PER_SEC),
            counters: UpfCounters::default(),
            offload: None,
            upf,
        }
    }

    /// From N3: GTP-U to our address.
    fn n3_packet(&mut self, p: &mut PacketMut<'_>, ctx: &mut StageCtx<'_>) -> Result<(), UpfDrop> {
        let m = *p.meta();
        let v6 = m.ethertype == ethertype::IPV6 && self.upf.n3_address6.is_some();
        if m.ethertype != ethertype::IPV4 && !v6 {
            return Err(UpfDrop::NotIpv4);
        }
        if m.flags & flags::L3_OK == 0 {
            return Err(UpfDrop::Malformed);
        }
        let (l3, l4) = (m.l3_off as usize, m.l4_off as usize);
        let d = p.data();
        let to_us = if v6 {
            Some(Ipv6Packet::new_unchecked(&d[l3..]).dst_addr()) == self.upf.n3_address6
        } else {
            Ipv4Packet::new_unchecked(&d[l3..]).dst() == self.upf.n3_address
        };
        if !to_us || m.l4_proto != proto::UDP || m.flags & flags::L4_OK == 0 || wire::ports(&d[l4..]).1 != gtpu::PORT {
            return Err(UpfDrop::NotGtpu);
        }
        let g = l4 + udp::HEADER_LEN;
        // RFC 768: the datagram is what the UDP length says (the kernel
        // trims the rest in udp_rcv); GTP-U is read inside it, never from
        // what follows. Found by fuzzing: a G-PDU running past its UDP
        // length was decapsulated from the bytes after it.
        let udp_end = l4 + UdpPacket::new_unchecked(&d[l4..]).len() as usize;
        if udp_end < g || udp_end > d.len() {
            return Err(UpfDrop::Malformed);
        }
        let h = gtpu::parse(&d[g..udp_end]).map_err(|_| UpfDrop::MalformedGtpu)?;
        match h.msg_type {
            msg::G_PDU => self.uplink(p, g, h, ctx),
            msg::ECHO_REQUEST => self.echo(p, l3, l4),
            msg::END_MARKER => Err(UpfDrop::EndMarker),
            _ => Err(UpfDrop::UnsupportedGtpuMessage),
        }
    }

    /// An uplink G-PDU (its GTP-U header at `g`): to N6 without its
    /// outer headers.
    fn uplink(
        &mut self,
        p: &mut PacketMut<'_>,
        g: usize,
        h: gtpu::Header,
        ctx: &mut StageCtx<'_>,
    ) -> Result<(), UpfDrop> {
        let inner = g + h.header_len;
        let inner_v4 = p.data().get(inner).is_some_and(|b| b >> 4 == 4);
        if let Some(f) = self.sessions.fast_uplink.get(h.teid).filter(|f| inner_v4 && f.session != Fast::GENERAL) {
            // The usual session: one PDR, no filter: its UE address and FAR.
            let src = p.data().get(inner + 12..inner + 16).ok_or(UpfDrop::Malformed)?;
            if f.ue != 0 && rd32(src, 0) != f.ue {
                return Err(UpfDrop::NoPdr);
            }
            self.meter.admit(&self.sessions.limits, f.bucket, h.payload_len)?;
            return match f.action {
                Action::Forward => {
                    self.usage.count(f.urr, false, h.payload_len as u64);
                    let session = f.session;
                    self.offer_uplink(h.teid, session);
                    self.decapsulate(p, inner, h.payload_len, ctx)
                }
                Action::Drop => Err(UpfDrop::FarDrop),
                Action::Buffer => Err(UpfDrop::FarBuffer),
            };
        }
        if self.sessions.by_teid(h.teid).is_none() {
            return self.unknown_teid(p, g, h.teid);
        }
        let flow = flow_of(p.data(), inner, false).ok_or(UpfDrop::Malformed)?;
        let (i, s) = self.sessions.numbered_by_teid(h.teid).ok_or(UpfDrop::UnknownTeid)?;
        let qfi = h.session.map(|(_, q)| q);
        let pdr = s.detect(Interface::Access, Some(h.teid), qfi, &flow).ok_or(UpfDrop::NoPdr)?;
        let far = s.far(pdr.far).ok_or(UpfDrop::NoPdr)?;
        self.meter.admit(&self.sessions.limits, self.sessions.bucket(i, pdr), h.payload_len)?;
        match far.action {
            Action::Drop => return Err(UpfDrop::FarDrop),
            Action::Buffer => return Err(UpfDrop::FarBuffer),
            Action::Forward => {}
        }
        for &u in &pdr.urrs {
            self.usage.count(u, false, h.payload_len as u64);
        }
        self.decapsulate(p, inner, h.payload_len, ctx)
    }

    /// Sends the inner packet at `inner` (`len` octets) to N6 (held
    /// while the N6 gateway is unresolved).
    #[inline]
    fn decapsulate(
        &mut self,
        p: &mut PacketMut<'_>,
        inner: usize,
        len: usize,
        ctx: &mut StageCtx<'_>,
    ) -> Result<(), UpfDrop> {
        let n6 = self.upf.n6;
        // The inner packet keeps its place; the last 14 octets before it
        // become its Ethernet header.
        let kind = match p.data().get(inner).map(|v| v >> 4) {
            Some(4) => ethertype::IPV4,
            Some(6) => ethertype::IPV6,
            _ => return Err(UpfDrop::NotIpv4),
        };
        // The T-PDU is what the GTP-U Length leaves (TS 29.281 5.1); an
        // inner packet longer than that is cut short and dropped, as a
        // router drops a truncated datagram (RFC 1812 5.2.2). Found by
        // fuzzing: a G-PDU whose inner total length ran past its T-PDU
        // left for N6 as a malformed packet.
        let t_pdu = p.data().get(inner..inner + len).ok_or(UpfDrop::Malformed)?;
        let ip_len = if kind == ethertype::IPV4 {
            Ipv4Packet::new_checked(t_pdu).map_err(|_| UpfDrop::Malformed)?.total_len() as usize
        } else {
            ipv6::HEADER_LEN + Ipv6Packet::new_checked(t_pdu).map_err(|_| UpfDrop::Malformed)?.payload_len() as usize
        };
        if ip_len > len {
            return Err(UpfDrop::Malformed);
        }
        let len = ip_len;
        p.pull_front(inner - 14).map_err(|_| UpfDrop::Malformed)?;
        p.set_len(14 + len).map_err(|_| UpfDrop::Malformed)?;
        let d = p.data_mut();
        d[6..12].copy_from_slice(&self.macs[n6 as usize]);
        d[12..14].copy_from_slice(&kind.to_be_bytes());
        if self.reparse {
            p.reparse().map_err(|_| UpfDrop::Malformed)?;
        }
        match self.ways.get().n6_gateway {
            Some(mac) => {
                p.data_mut()[0..6].copy_from_slice(&mac);
                p.send_to(n6);
            }
            None => {
                let gw = IpAddr::V4(Ipv4Addr::from(self.upf.n6_gateway));
                ctx.adjacency.hold(p, &[n6], gw);
            }
        }
        self.counters.uplink += 1;
        Ok(())
    }

    /// Answers an Echo Request in place: back to its sender.
    fn echo(&mut self, p: &mut PacketMut<'_>, _l3: usize, l4: usize) -> Result<(), UpfDrop> {
        let g = l4 + udp::HEADER_LEN;
        let len = p.len() - g;
        p.set_len(g + 14).map_err(|_| UpfDrop::Malformed)?;
        let n = gtpu::echo_response(&mut p.data_mut()[g..], len).ok_or(UpfDrop::Malformed)?;
        self.turn_around(p, g, n, None)?;
        self.counters.echo += 1;
        Ok(())
    }

    /// A G-PDU for a TEID we do not know: an Error Indication back to its
    /// sender (TS 29.281 7.3.1), at most [`ERROR_INDICATIONS_PER_SEC`] a
    /// second, else dropped; both counted.
    fn unknown_teid(&mut self, p: &mut PacketMut<'_>, g: usize, teid: u32) -> Result<(), UpfDrop> {
        if !self.indications.allow(self.now_ticks) {
            return Err(UpfDrop::UnknownTeid);
        }
        let v4 = self.upf.n3_address.to_be_bytes();
        let ours: &[u8] = match self.upf.n3_address6 {
            Some(ref a) if p.meta().ethertype == ethertype::IPV6 => a,
            _ => &v4,
        };
        p.set_len(g + gtpu::error_indication_len(ours)).map_err(|_| UpfDrop::Malformed)?;
        let n = gtpu::error_indication(&mut p.data_mut()[g..], teid, ours).ok_or(UpfDrop::Malformed)?;
        // TS 29.281 4.4.2.4: to the GTP-U port, whatever the G-PDU came
        // from (an Echo Response goes back to its request's port, 4.4.2.2).
        self.turn_around(p, g, n, Some(gtpu::PORT))?;
        self.counters.error_indications += 1;
        Ok(())
    }

    /// Sends a GTP-U message of `n` octets (written at `g`, after the
    /// UDP header) back where the packet came from: Ethernet, IP and UDP
    /// turned around (to `to_port` when given, else the source port),
    /// lengths set; over IPv4 the IP checksum and no UDP
    /// checksum (RFC 768 allows none), over IPv6 the UDP checksum (RFC
    /// 8200 8.1 requires it).
    fn turn_around(&mut self, p: &mut PacketMut<'_>, g: usize, n: usize, to_port: Option<u16>) -> Result<(), UpfDrop> {
        let m = *p.meta();
        let (l3, l4) = (m.l3_off as usize, m.l4_off as usize);
        p.set_len(g + n).map_err(|_| UpfDrop::Malformed)?;
        let d = p.data_mut();
        EthernetFrame::new_unchecked(&mut *d).swap_addrs();
        let udp_len = (udp::HEADER_LEN + n) as u16;
        let mut u = UdpPacket::new_unchecked(&mut d[l4..]);
        let (sp, dp) = (u.src_port(), u.dst_port());
        u.set_src_port(dp);
        u.set_dst_port(to_port.unwrap_or(sp));
        u.set_len(udp_len);
        u.set_checksum(0);
        if m.ethertype == ethertype::IPV6 {
            let mut ip = Ipv6Packet::new_unchecked(&mut d[l3..]);
            let (src, dst) = (ip.src_addr(), ip.dst_addr());
            ip.set_src_addr(dst);
            ip.set_dst_addr(src);
            ip.set_payload_len(udp_len);
            ip.set_hop_limit(64);
            let c = nfv_net::checksum::udp_checksum(&d[l3..l3 + ipv6::HEADER_LEN], false, &d[l4..g + n]);
            UdpPacket::new_unchecked(&mut d[l4..]).set_checksum(c);
        } else {
            let mut ip = Ipv4Packet::new_unchecked(&mut d[l3..]);
            let (src, dst) = (ip.src_addr(), ip.dst_addr());
            ip.set_src_addr(dst);
            ip.set_dst_addr(src);
            ip.set_total_len((l4 - l3) as u16 + udp_len);
            ip.set_ttl(64);
            ip.fill_checksum();
        }
        p.send_to(self.upf.n3);
        Ok(())
    }

    /// From N6, to a UE: into its gNB's tunnel.
    #[inline(always)]
    fn n6_packet(&mut self, p: &mut PacketMut<'_>, ctx: &mut StageCtx<'_>) -> Result<(), UpfDrop> {
        let m = *p.meta();
        if m.ethertype == ethertype::IPV6 {
            return self.n6_packet6(p, ctx);
        }
        if m.ethertype != ethertype::IPV4 {
            return Err(UpfDrop::NotIpv4);
        }
        if m.flags & flags::L3_OK == 0 || m.l3_off != 14 {
            return Err(UpfDrop::Malformed);
        }
        let h = p.data().get(14..34).ok_or(UpfDrop::Malformed)?;
        let (dst, len) = (rd32(h, 16), rd16(h, 2) as usize);
        // The IP packet without the Ethernet padding of a short frame (it
        // would travel in the tunnel and count as usage).
        if len < 20 || len > p.len() - 14 {
            return Err(UpfDrop::Malformed);
        }
        if len < p.len() - 14 {
            p.set_len(14 + len).map_err(|_| UpfDrop::Malformed)?;
        }
        // A UE with packets held: this one joins them (order kept); held
        // packets being released go out ahead of the rest.
        if !self.releasing && !self.held.is_empty() && self.held.holds_for(dst as u64) {
            return self.hold(p, dst as u64);
        }
        if let Some(&f) = self.sessions.fast_downlink.get(dst).filter(|f| f.session != Fast::GENERAL) {
            if f.action == Action::Buffer {
                return self.hold(p, dst as u64);
            }
            self.meter.admit(&self.sessions.limits, f.bucket, len)?;
            return match f.action {
                Action::Forward => {
                    self.usage.count(f.urr, true, len as u64);
                    let qfi = (f.qfi != Fast::NO_QFI).then_some(f.qfi);
                    self.offer_downlink(dst, f.session, ctx);
                    self.encapsulate(p, ctx, f.teid, IpAddr::V4(Ipv4Addr::from(f.peer)), qfi)
                }
                _ => Err(UpfDrop::FarDrop),
            };
        }
        let flow = flow_of(p.data(), 14, true).ok_or(UpfDrop::Malformed)?;
        self.downlink_walk(p, ctx, &flow, len)
    }

    /// An IPv6 packet from N6: an IPv6 PDU session's, by the UE's /64.
    #[cold]
    #[inline(never)]
    fn n6_packet6(&mut self, p: &mut PacketMut<'_>, ctx: &mut StageCtx<'_>) -> Result<(), UpfDrop> {
        let m = *p.meta();
        if m.flags & flags::L3_OK == 0 || m.l3_off != 14 {
            return Err(UpfDrop::Malformed);
        }
        let h = p.data().get(14..54).ok_or(UpfDrop::Malformed)?;
        let len = 40 + rd16(h, 4) as usize;
        if len > p.len() - 14 {
            return Err(UpfDrop::Malformed);
        }
        if len < p.len() - 14 {
            p.set_len(14 + len).map_err(|_| UpfDrop::Malformed)?;
        }
        let flow = flow_of(p.data(), 14, true).ok_or(UpfDrop::Malformed)?;
        let key = held_key(&flow);
        if !self.releasing && !self.held.is_empty() && self.held.holds_for(key) {
            return self.hold(p, key);
        }
        self.downlink_walk(p, ctx, &flow, len)
    }

    /// A downlink packet (`len` octets of IP) by the general PDR walk.
    fn downlink_walk(
        &mut self,
        p: &mut PacketMut<'_>,
        ctx: &mut StageCtx<'_>,
        flow: &FlowView,
        len: usize,
    ) -> Result<(), UpfDrop> {
        let (i, pdr, far) = downlink_rule(&self.sessions, flow)?;
        if far.action == Action::Buffer {
            return self.hold(p, held_key(flow));
        }
        self.meter.admit(&self.sessions.limits, self.sessions.bucket(i, pdr), len)?;
        let outer = match far.action {
            Action::Forward => far.outer.ok_or(UpfDrop::NoPdr)?,
            _ => return Err(UpfDrop::FarDrop),
        };
        for &u in &pdr.urrs {
            self.usage.count(u, true, len as u64);
        }
        let qfi = far.qfi;
        self.encapsulate(p, ctx, outer.teid, outer.peer, qfi)
    }

    /// Holds a downlink packet for UE `ue` (its FAR buffers, TS 29.244
    /// 5.2.3.1): a copy kept, the frame let go (as `buffered`); the
    /// session's first held packet is told to the N4 side (a Downlink
    /// Data Report when the FAR asks NOCP).
    #[cold]
    #[inline(never)]
    fn hold(&mut self, p: &mut PacketMut<'_>, ue: u64) -> Result<(), UpfDrop> {
        match self.held.hold(ue, p.data(), self.now_ticks) {
            Ok(first) => {
                if first && self.upf.buffering.push(ue).is_err() {
                    self.counters.notices_lost += 1;
                }
                self.counters.held += 1;
                Err(UpfDrop::Buffered)
            }
            Err(_) => Err(UpfDrop::BufferFull),
        }
    }

    /// Held packets whose session's FAR now forwards go out (into this
    /// batch, through the downlink path, in the order they came), those
    /// whose session is gone or drops them are dropped, and those held
    /// longer than [`HOLD_LIMIT_SECS`] expire: checked when the rules
    /// change and once a second.
    #[inline]
    fn release_held(&mut self, batch: &mut Batch, ctx: &mut StageCtx<'_>) {
        if self.held.is_empty() {
            return;
        }
        self.release_held_now(batch, ctx);
    }

    #[cold]
    #[inline(never)]
    fn release_held_now(&mut self, batch: &mut Batch, ctx: &mut StageCtx<'_>) {
        let now = self.now_ticks;
        let second = now.saturating_sub(self.held_swept) >= self.second;
        if self.held_of == self.sessions.version && !second {
            return;
        }
        let (sessions, n6, limit) = (&self.sessions, self.upf.n6, nfv_core::cycles::ticks(HOLD_LIMIT_SECS));
        let (start, c) = (batch.len(), &mut self.counters);
        let mut all = true;
        let max = batch.capacity();
        let taken = self.held.sweep(max, |e, bytes| match held_fate(sessions, bytes) {
            Fate::Keep if now.saturating_sub(e.at) < limit => true,
            Fate::Keep => {
                c.held_expired += 1;
                false
            }
            Fate::Discard => {
                c.held_discarded += 1;
                false
            }
            Fate::Release => match ctx.pool.packet_from(bytes, released_meta(bytes, n6)) {
                Some(p) => {
                    batch.push(p);
                    c.held_released += 1;
                    false
                }
                None => {
                    all = false;
                    true
                }
            },
        });
        // Done with this version unless frames ran out or more may leave.
        if all && taken < max {
            self.held_of = self.sessions.version;
        }
        self.held_swept = now;
        self.releasing = true;
        for mut p in batch.iter_mut().skip(start) {
            if let Err(reason) = self.n6_packet(&mut p, ctx) {
                p.drop_with(reason);
            }
        }
        self.releasing = false;
    }
}

impl UpfStage {
    /// Takes up what changed since the last batch: the sessions version,
    /// the time, the neighbour table.
    #[inline]
    fn prepare(&mut self, ctx: &mut StageCtx<'_>) {
        self.sessions.refresh();
        if let Some(o) = self.offload.as_deref_mut() {
            o.follow(&self.sessions);
        }
        self.now_ticks = ctx.now_ticks.max(1);
        self.meter.now = self.now_ticks;
        self.meter.renew(self.sessions.bucket_epoch, self.sessions.limits.len());
        let (gateway, n6) = (IpAddr::V4(Ipv4Addr::from(self.upf.n6_gateway)), self.upf.n6);
        let mut moved = false;
        self.ways.refresh(ctx.adjacency, 0, |w, adj| {
            w.n6_gateway = adj.lookup(&gateway, n6);
            w.peers.clear();
            w.peers6.clear();
            moved = true;
        });
        if moved && let Some(o) = self.offload.as_deref_mut() {
            o.withdraw_all();
        }
    }
}

/// What the UPF derives from the neighbour table: the N6 gateway's MAC,
/// and the outer headers toward the gNBs met so far (IPv4 by address,
/// the rare IPv6 ones apart; keyed so a downlink packet hashes four
/// octets).
#[derive(Default)]
struct Ways {
    n6_gateway: Option<[u8; 6]>,
    peers: FxHashMap<u32, tunnel::Peer>,
    peers6: FxHashMap<[u8; 16], tunnel::Peer>,
}

impl Stage for UpfStage {
    fn tick(&mut self, batch: &mut Batch, ctx: &mut StageCtx<'_>) {
        self.prepare(ctx);
        // With sessions in XDP, once it took up this worker's removals:
        // no G-PDU may follow an End Marker into the old tunnel.
        if self.ended_through != self.sessions.version && self.offload.as_ref().is_none_or(|o| o.drained()) {
            self.send_end_markers(batch, ctx);
        }
        // Held packets leave when their FAR forwards, traffic or not.
        self.release_held(batch, ctx);
    }

    fn process(&mut self, batch: &mut Batch, ctx: &mut StageCtx<'_>) {
        self.prepare(ctx);
        if batch.is_empty() {
            return;
        }
        let from_n3 = batch.rx_port() == self.upf.n3;
        // First pass: each packet's fast-table key, its slot prefetched
        // (a million-session table is DRAM; the lookups then overlap).
        // Second: the entries, landed by then, and their URR counters
        // prefetched in turn.
        let fast = if from_n3 { &self.sessions.fast_uplink } else { &self.sessions.fast_downlink };
        self.keys.clear();
        let counting = self.usage.counts_anything();
        for p in batch.iter_mut() {
            let (m, d) = (p.meta(), p.data());
            let l3 = m.l3_off as usize;
            let key = if from_n3 {
                // TEID of an option-less IPv4/UDP/GTP-U packet.
                let l4 = l3 + ipv4::HEADER_LEN;
                (m.l4_off as usize == l4 && m.l4_proto == proto::UDP)
                    .then(|| d.get(l4 + udp::HEADER_LEN..).and_then(gtpu::teid))
                    .flatten()
            } else {
                // The UE: the destination of an IPv4 header that is whole.
                d.get(l3..).filter(|ip| ip.len() >= ipv4::HEADER_LEN).map(|ip| Ipv4Packet::new_unchecked(ip).dst())
            };
            if let Some(k) = key {
                fast.prefetch(k);
                if counting {
                    self.keys.push(k);
                }
            }
        }
        if counting {
            for &k in &self.keys {
                if let Some(f) = fast.get(k) {
                    self.usage.prefetch(f.urr);
                }
            }
        }
        for mut p in batch.iter_mut() {
            let r = if from_n3 { self.n3_packet(&mut p, ctx) } else { self.n6_packet(&mut p, ctx) };
            if let Err(reason) = r {
                p.drop_with(reason);
            }
        }
        self.release_held(batch, ctx);
    }

    fn take_offload(&mut self, o: nfv_core::offload::Offloader) -> bool {
        self.set_offload(o);
        true
    }

    fn tables(&self) -> &'static [&'static str] {
        &["held-packets"]
    }

    fn sample(&self, out: &mut [nfv_core::Occupancy]) {
        out[0] = nfv_core::Occupancy { entries: self.held.len() as u64, capacity: self.upf.buffer_packets as u64 };
    }

    fn report(&self) -> Option<String> {
        let c = self.counters;
        let xdp = self.offload.as_ref().map(|o| o.report_line()).unwrap_or_default();
        Some(format!(
            "  sessions {} (version {}, {:.1} MiB)\n  uplink {} downlink {} echo {} error-indications {}\n  \
             held {} (now {}) released {} discarded {} expired {}\n  end-markers {} (unsent {})\n{xdp}",
            self.sessions.len(),
            self.sessions.version,
            self.sessions.bytes() as f64 / (1 << 20) as f64,
            c.uplink,
            c.downlink,
            c.echo,
            c.error_indications,
            c.held,
            self.held.len(),
            c.held_released,
            c.held_discarded,
            c.held_expired,
            c.end_markers,
            c.end_markers_unsent
        ))
    }
}
