//! The slow path: ARP, IPv6 Neighbor Discovery and ping for the addresses
//! the configuration owns, and next-hop resolution into the neighbour table.
//!
//! Workers punt those frames (see [`crate::input`]) through bounded
//! lock-free queues to one control thread, which parses and builds replies
//! with `smoltcp`'s wire types (ARP, Neighbor Discovery, echo) and its ICMP
//! errors with the builder the stages use ([`nfv_net::icmp_error`]), and
//! hands them back for transmission.
//! smoltcp's `Interface` is not used because it caps an interface at eight
//! addresses and keeps its neighbour cache private, while a NAT pool or a
//! VIP set owns many addresses and the workers need the learned adjacencies.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crossbeam::queue::ArrayQueue;
use nfv_net::icmp_error::{self, IcmpError};
use smoltcp::phy::ChecksumCapabilities;
use smoltcp::wire::{
    ArpOperation, ArpPacket, ArpRepr, EthernetAddress, EthernetFrame, EthernetProtocol, EthernetRepr, Icmpv4Packet,
    Icmpv4Repr, Icmpv6Packet, Icmpv6Repr, IpProtocol, Ipv4Packet, Ipv4Repr, Ipv6Packet, Ipv6Repr, NdiscNeighborFlags,
    NdiscRepr, RawHardwareAddress,
};

use crate::cycles::PerSecond;
use crate::frame::MAX_DATA;
use crate::neighbour::Neighbours;
use crate::packet::PortId;
use crate::telemetry::Counter;

/// An owned address with its on-link prefix length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OwnedAddr {
    /// The address we answer for.
    pub addr: IpAddr,
    /// Prefix length of the attached subnet (32/128 for a lone address).
    pub prefix: u8,
}

impl OwnedAddr {
    /// True if `ip` is on this address's subnet.
    pub fn on_link(&self, ip: &IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(a), IpAddr::V4(b)) => {
                let m = u32::MAX.checked_shl(32 - self.prefix as u32).unwrap_or(0);
                u32::from(a) & m == u32::from(*b) & m
            }
            (IpAddr::V6(a), IpAddr::V6(b)) => {
                let m = u128::MAX.checked_shl(128 - self.prefix as u32).unwrap_or(0);
                u128::from(a) & m == u128::from(*b) & m
            }
            _ => false,
        }
    }
}

/// What each port owns: its MAC and addresses. Indexed by [`PortId`].
#[derive(Clone, Debug, Default)]
pub struct LocalAddrs {
    /// Per port: (MAC, owned addresses).
    pub ports: Vec<([u8; 6], Vec<OwnedAddr>)>,
}

impl LocalAddrs {
    /// True if `ip` is owned on `port`.
    #[inline]
    pub fn owns(&self, port: PortId, ip: IpAddr) -> bool {
        self.ports.get(port as usize).is_some_and(|(_, a)| a.iter().any(|o| o.addr == ip))
    }

    /// The MAC of `port` (zero for a port it does not know).
    #[inline]
    pub fn mac(&self, port: PortId) -> [u8; 6] {
        self.ports.get(port as usize).map_or([0; 6], |p| p.0)
    }

    /// True if `ip` is on one of `port`'s subnets.
    #[inline]
    pub fn on_link(&self, port: PortId, ip: &IpAddr) -> bool {
        self.ports.get(port as usize).is_some_and(|(_, a)| a.iter().any(|o| o.on_link(ip)))
    }

    /// The first port with `ip` on one of its subnets.
    pub fn on_link_port(&self, ip: &IpAddr) -> Option<PortId> {
        (0..self.ports.len() as PortId).find(|&p| self.on_link(p, ip))
    }

    /// True if `port` owns any address (it is an L3 endpoint).
    #[inline]
    pub fn has_any(&self, port: PortId) -> bool {
        self.ports.get(port as usize).is_some_and(|(_, a)| !a.is_empty())
    }
}

/// A frame travelling between a worker and the control thread.
pub struct SlowFrame {
    /// Ingress port (punt) or egress port (inject).
    pub port: PortId,
    /// Frame bytes.
    pub data: Vec<u8>,
}

/// The queues between one worker and the control thread. Buffers are
/// preallocated and recycled, so punting allocates nothing on the worker.
pub struct SlowPathLink {
    /// Worker -> control: punted frames.
    pub punted: ArrayQueue<SlowFrame>,
    /// Control -> worker: empty buffers for the next punts.
    pub free: ArrayQueue<Vec<u8>>,
    /// Control -> worker: frames to transmit.
    pub inject: ArrayQueue<SlowFrame>,
}

impl SlowPathLink {
    /// Queues of `depth` entries with `depth` buffers ready.
    pub fn new(depth: usize) -> Arc<Self> {
        let free = ArrayQueue::new(depth);
        for _ in 0..depth {
            let _ = free.push(Vec::with_capacity(MAX_DATA));
        }
        Arc::new(Self { punted: ArrayQueue::new(depth), free, inject: ArrayQueue::new(depth) })
    }
}

/// Counters of the control thread.
#[derive(Default, Debug)]
pub struct SlowPathCounters {
    /// ARP replies sent.
    pub arp_replies: Counter,
    /// ICMP/ICMPv6 echo replies sent.
    pub echo_replies: Counter,
    /// Neighbor Advertisements sent.
    pub nd_adverts: Counter,
    /// ARP requests / Neighbor Solicitations sent to resolve next hops.
    pub resolutions_sent: Counter,
    /// Adjacencies learned or changed.
    pub learned: Counter,
    /// Punted frames that needed no answer or could not be parsed.
    pub ignored: Counter,
    /// ICMP time exceeded sent for packets whose TTL ran out here.
    pub time_exceeded: Counter,
    /// ICMP errors not sent: over the rate limit (RFC 1812 4.3.2.8).
    pub rate_limited: Counter,
    /// Learned neighbours removed after answering no probe (they are
    /// resolved again when traffic or a configured next hop needs them).
    pub neighbours_lost: Counter,
}

/// Neighbour unreachability detection, after RFC 4861 7.3 (and what
/// Linux's ARP does for IPv4): a learned adjacency not confirmed (by an
/// ARP or ND message from it) for `STALE_AFTER` is probed once a second
/// (with the request that first resolved it: broadcast ARP, a
/// solicited-node NS);
/// after `PROBES` probes unanswered it is removed, so that packets for it
/// wait and ask again instead of going to a MAC that is gone.
const STALE_AFTER: Duration = Duration::from_secs(5);
const PROBES: u8 = 3;

/// ICMP errors sent per second at most (RFC 1812 section 4.3.2.8: a
/// router SHOULD limit them; a flood of expiring packets must not become a
/// flood of errors).
const ICMP_ERRORS_PER_SEC: u32 = 200;

/// The responder and resolver, independent of threads so replay and tests
/// can drive it directly.
pub struct SlowPath {
    local: LocalAddrs,
    neighbours: Arc<Neighbours>,
    /// Next hops to keep resolved: ip -> port it is on-link for.
    wanted: HashMap<IpAddr, PortId>,
    /// Next hops workers asked for at run time (a packet waits for
    /// each): ip -> (port, when last asked, a request is due).
    asked: HashMap<IpAddr, (PortId, Instant, bool)>,
    /// Counters.
    pub counters: Arc<SlowPathCounters>,
    /// ICMP errors sent a second at most.
    error_budget: PerSecond,
    /// Learned neighbours: when last confirmed, probes sent since.
    confirmed: HashMap<IpAddr, (Instant, u8)>,
}

const BROADCAST: EthernetAddress = EthernetAddress([0xff; 6]);

impl SlowPath {
    /// A slow path answering for `local`, writing adjacencies to `neighbours`.
    pub fn new(local: LocalAddrs, neighbours: Arc<Neighbours>) -> Self {
        Self {
            local,
            neighbours,
            wanted: HashMap::new(),
            asked: HashMap::new(),
            counters: Arc::default(),
            error_budget: PerSecond::new(ICMP_ERRORS_PER_SEC),
            confirmed: HashMap::new(),
        }
    }

    /// Asks for `ip` to be resolved and kept resolved (a dynamic
    /// `[[neighbours]]` entry). Returns false if no port is on-link for it.
    pub fn want(&mut self, ip: IpAddr) -> bool {
        match self.on_link_port(&ip) {
            Some(p) => {
                self.wanted.insert(ip, p);
                true
            }
            None => false,
        }
    }

    fn on_link_port(&self, ip: &IpAddr) -> Option<PortId> {
        self.local.on_link_port(ip)
    }

    fn source_for(&self, port: PortId, ip: &IpAddr) -> Option<IpAddr> {
        let (_, addrs) = self.local.ports.get(port as usize)?;
        addrs.iter().find(|a| a.on_link(ip)).map(|a| a.addr)
    }

    /// Takes up the next hops workers asked for at run time
    /// ([`crate::neighbour::NeighbourTable::request`], a packet waiting
    /// for each): one request each now, at most one a second however many
    /// workers ask; true when some are due. Not kept resolved: a worker
    /// asks again while packets wait.
    pub fn adopt_requests(&mut self) -> bool {
        let now = Instant::now();
        self.asked.retain(|_, (_, at, _)| now.duration_since(*at) < Duration::from_secs(10));
        let mut any = false;
        for ip in self.neighbours.take_requests() {
            if self.wanted.contains_key(&ip) {
                continue;
            }
            let Some(port) = self.on_link_port(&ip) else { continue };
            match self.asked.get_mut(&ip) {
                // Workers ask again each second: half of that apart, so a
                // worker's own repeat is never taken for another's.
                Some((_, at, _)) if now.duration_since(*at) < Duration::from_millis(500) => {}
                _ => {
                    self.asked.insert(ip, (port, now, true));
                    any = true;
                }
            }
        }
        any
    }

    /// Requests (ARP / NS) for next hops asked for whose request is due,
    /// and with `wanted`, for the next hops to keep resolved that are not
    /// in the table (once a second).
    pub fn resolution_requests(&mut self, wanted: bool) -> Vec<SlowFrame> {
        let snap = self.neighbours.snapshot();
        let due = self.asked.iter_mut().filter_map(|(ip, (port, _, due))| std::mem::take(due).then_some((*ip, *port)));
        let mut hops: Vec<(IpAddr, PortId)> = due.collect();
        if wanted {
            hops.extend(self.wanted.iter().map(|(ip, port)| (*ip, *port)));
            hops.retain(|(ip, _)| snap.lookup(ip).is_none());
            hops.extend(self.probe_stale(&snap));
        } else {
            hops.retain(|(ip, _)| snap.lookup(ip).is_none());
        }
        let mut out = Vec::new();
        for (ip, port) in hops {
            let Some(src) = self.source_for(port, &ip) else { continue };
            let mac = EthernetAddress(self.local.mac(port));
            let frame = match (src, ip) {
                (IpAddr::V4(s), IpAddr::V4(t)) => arp_frame(ArpOperation::Request, mac, s, BROADCAST, t, BROADCAST),
                (IpAddr::V6(s), IpAddr::V6(t)) => neighbor_solicit(mac, s, t),
                _ => continue,
            };
            self.counters.resolutions_sent.add(1);
            out.push(SlowFrame { port, data: frame });
        }
        out
    }

    /// Handles one punted frame; returns the frames to send.
    pub fn handle(&mut self, port: PortId, frame: &[u8]) -> Vec<SlowFrame> {
        let reply = EthernetFrame::new_checked(frame).ok().and_then(|eth| {
            let our_mac = EthernetAddress(self.local.ports.get(port as usize)?.0);
            match eth.ethertype() {
                EthernetProtocol::Arp => self.on_arp(port, our_mac, eth.payload()),
                EthernetProtocol::Ipv4 => self.on_ipv4(port, our_mac, eth.src_addr(), eth.payload()),
                EthernetProtocol::Ipv6 => self.on_ipv6(port, our_mac, eth.src_addr(), eth.payload()),
                _ => None,
            }
        });
        match reply {
            Some(data) => vec![SlowFrame { port, data }],
            None => {
                self.counters.ignored.add(1);
                Vec::new()
            }
        }
    }

    fn learn(&mut self, ip: IpAddr, mac: EthernetAddress, port: PortId) {
        if !mac.is_unicast() {
            return;
        }
        if self.neighbours.learn(ip, mac.0, port) {
            self.counters.learned.add(1);
        }
        self.confirmed.insert(ip, (Instant::now(), 0));
    }

    /// Probes for learned neighbours gone quiet, and the removal of those
    /// that answered none (see [`STALE_AFTER`]): the probes' frames.
    fn probe_stale(&mut self, snap: &crate::neighbour::NeighbourTable) -> Vec<(IpAddr, PortId)> {
        let now = Instant::now();
        let mut probe = Vec::new();
        for (ip, n) in snap.entries() {
            if n.origin != crate::neighbour::Origin::Learned {
                continue;
            }
            let (at, probes) = self.confirmed.entry(ip).or_insert((now, 0));
            if now.duration_since(*at) < STALE_AFTER {
                continue;
            }
            if *probes < PROBES {
                *probes += 1;
                probe.push((ip, n.port));
            } else {
                self.confirmed.remove(&ip);
                if self.neighbours.remove(ip) {
                    self.counters.neighbours_lost.add(1);
                }
            }
        }
        self.confirmed.retain(|ip, _| snap.lookup(ip).is_some());
        probe
    }

    /// RFC 826: learn the sender, answer requests for our addresses.
    fn on_arp(&mut self, port: PortId, our_mac: EthernetAddress, payload: &[u8]) -> Option<Vec<u8>> {
        let pkt = ArpPacket::new_checked(payload).ok()?;
        let ArpRepr::EthernetIpv4 {
            operation, source_hardware_addr, source_protocol_addr, target_protocol_addr, ..
        } = ArpRepr::parse(&pkt).ok()?
        else {
            return None;
        };
        let sender = IpAddr::V4(source_protocol_addr);
        let for_us = self.local.owns(port, IpAddr::V4(target_protocol_addr));
        // Asked for, kept resolved, or known already (a gratuitous ARP
        // after a failover moves it).
        let known = self.asked.contains_key(&sender) || self.neighbours.snapshot().lookup(&sender).is_some();
        if for_us || self.wanted.contains_key(&sender) || known {
            self.learn(sender, source_hardware_addr, port);
        }
        if operation != ArpOperation::Request || !for_us {
            return None;
        }
        self.counters.arp_replies.add(1);
        Some(arp_frame(
            ArpOperation::Reply,
            our_mac,
            target_protocol_addr,
            source_hardware_addr,
            source_protocol_addr,
            source_hardware_addr,
        ))
    }

    /// RFC 792 echo: reply to requests for our addresses.
    fn on_ipv4(
        &mut self,
        port: PortId,
        our_mac: EthernetAddress,
        peer: EthernetAddress,
        payload: &[u8],
    ) -> Option<Vec<u8>> {
        let caps = ChecksumCapabilities::default();
        let ip = Ipv4Packet::new_checked(payload).ok()?;
        let ip_repr = Ipv4Repr::parse(&ip, &caps).ok()?;
        if ip_repr.hop_limit <= 1 && !self.local.owns(port, IpAddr::V4(ip_repr.dst_addr)) {
            return self.time_exceeded(port, our_mac, peer, ip, ip_repr);
        }
        if ip_repr.next_header != IpProtocol::Icmp || !self.local.owns(port, IpAddr::V4(ip_repr.dst_addr)) {
            return None;
        }
        let icmp = Icmpv4Packet::new_checked(ip.payload()).ok()?;
        let Icmpv4Repr::EchoRequest { ident, seq_no, data } = Icmpv4Repr::parse(&icmp, &caps).ok()? else {
            return None;
        };
        let reply = Icmpv4Repr::EchoReply { ident, seq_no, data };
        let out_ip = Ipv4Repr {
            src_addr: ip_repr.dst_addr,
            dst_addr: ip_repr.src_addr,
            next_header: IpProtocol::Icmp,
            payload_len: reply.buffer_len(),
            hop_limit: 64,
        };
        let mut buf = vec![0u8; 14 + out_ip.buffer_len() + reply.buffer_len()];
        emit_eth(&mut buf, our_mac, peer, EthernetProtocol::Ipv4);
        let mut ipp = Ipv4Packet::new_unchecked(&mut buf[14..]);
        out_ip.emit(&mut ipp, &caps);
        reply.emit(&mut Icmpv4Packet::new_unchecked(ipp.payload_mut()), &caps);
        self.counters.echo_replies.add(1);
        Some(buf)
    }

    /// RFC 792 time exceeded (code 0, TTL expired in transit) to the sender
    /// of `ip`, from our address on the port it came in by, quoting its
    /// header and first 8 data bytes. Not for ICMP errors themselves (RFC
    /// 1812 4.3.2.7), and within the rate limit.
    fn time_exceeded(
        &mut self,
        port: PortId,
        our_mac: EthernetAddress,
        peer: EthernetAddress,
        ip: Ipv4Packet<&[u8]>,
        ip_repr: Ipv4Repr,
    ) -> Option<Vec<u8>> {
        let data = ip.payload();
        if ip_repr.next_header == IpProtocol::Icmp && data.first().is_some_and(|&t| !matches!(t, 0 | 8 | 13 | 14)) {
            return None;
        }
        // RFC 1812 4.3.2.7: nor about multicast or broadcast, nor to a
        // source that is not one host.
        let (src_ip, dst_ip) = (ip_repr.src_addr, ip_repr.dst_addr);
        if dst_ip.is_multicast() || dst_ip.is_broadcast() || !is_unicast(src_ip) {
            return None;
        }
        let IpAddr::V4(src) = self.source_for(port, &IpAddr::V4(ip_repr.src_addr))? else { return None };
        if !self.error_budget.allow(crate::cycles::now()) {
            self.counters.rate_limited.add(1);
            return None;
        }
        // Type 11 code 0, quoting the offending datagram's header as
        // received and 8 data bytes, written by the builder every ICMP
        // error of the data plane shares.
        let header_len = ip.header_len() as usize;
        let raw = ip.into_inner();
        let q = (header_len + 8).min(raw.len());
        let e = IcmpError {
            msg_type: nfv_net::wire::icmp::v4::TIME_EXCEEDED,
            code: 0,
            rest: 0,
            from: src.octets(),
            to: ip_repr.src_addr.octets(),
        };
        let mut buf = vec![0u8; 14 + icmp_error::V4_OVERHEAD + q];
        buf[14..14 + q].copy_from_slice(&raw[..q]);
        let n = icmp_error::write_v4(&mut buf[14..], &e, q);
        buf.truncate(14 + n);
        emit_eth(&mut buf, our_mac, peer, EthernetProtocol::Ipv4);
        self.counters.time_exceeded.add(1);
        Some(buf)
    }

    /// RFC 4861 (NS -> NA, learning) and RFC 4443 echo.
    fn on_ipv6(
        &mut self,
        port: PortId,
        our_mac: EthernetAddress,
        peer: EthernetAddress,
        payload: &[u8],
    ) -> Option<Vec<u8>> {
        let caps = ChecksumCapabilities::default();
        let ip = Ipv6Packet::new_checked(payload).ok()?;
        let ip_repr = Ipv6Repr::parse(&ip).ok()?;
        if ip_repr.next_header != IpProtocol::Icmpv6 {
            return None;
        }
        let icmp = Icmpv6Packet::new_checked(ip.payload()).ok()?;
        let repr = Icmpv6Repr::parse(&ip_repr.src_addr, &ip_repr.dst_addr, &icmp, &caps).ok()?;
        let (reply, dst_ip, dst_mac) = match repr {
            Icmpv6Repr::Ndisc(NdiscRepr::NeighborSolicit { target_addr, lladdr }) => {
                // RFC 4861 7.1.1: hop limit must be 255.
                if ip_repr.hop_limit != 255 || !self.local.owns(port, IpAddr::V6(target_addr)) {
                    return None;
                }
                let src_unspecified = ip_repr.src_addr.is_unspecified();
                if let (Some(ll), false) = (lladdr, src_unspecified) {
                    self.learn(IpAddr::V6(ip_repr.src_addr), EthernetAddress::from_bytes(ll.as_bytes()), port);
                }
                // 7.2.4: solicited advert to the source, or all-nodes for DAD.
                let (dst_ip, flags) = if src_unspecified {
                    (Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1), NdiscNeighborFlags::OVERRIDE)
                } else {
                    (ip_repr.src_addr, NdiscNeighborFlags::SOLICITED | NdiscNeighborFlags::OVERRIDE)
                };
                let dst_mac = if src_unspecified { multicast_mac(&dst_ip) } else { peer };
                self.counters.nd_adverts.add(1);
                let na =
                    NdiscRepr::NeighborAdvert { flags, target_addr, lladdr: Some(RawHardwareAddress::from(our_mac)) };
                (Icmpv6Repr::Ndisc(na), dst_ip, dst_mac)
            }
            Icmpv6Repr::Ndisc(NdiscRepr::NeighborAdvert { target_addr, lladdr, .. }) => {
                if let Some(ll) = lladdr {
                    let ip = IpAddr::V6(target_addr);
                    if self.wanted.contains_key(&ip)
                        || self.asked.contains_key(&ip)
                        || self.neighbours.snapshot().lookup(&ip).is_some()
                    {
                        self.learn(ip, EthernetAddress::from_bytes(ll.as_bytes()), port);
                    }
                }
                return None;
            }
            Icmpv6Repr::EchoRequest { ident, seq_no, data } => {
                if !self.local.owns(port, IpAddr::V6(ip_repr.dst_addr)) {
                    return None;
                }
                self.counters.echo_replies.add(1);
                (Icmpv6Repr::EchoReply { ident, seq_no, data }, ip_repr.src_addr, peer)
            }
            _ => return None,
        };
        let src_ip = match repr {
            Icmpv6Repr::Ndisc(NdiscRepr::NeighborSolicit { target_addr, .. }) => target_addr,
            _ => ip_repr.dst_addr,
        };
        Some(icmpv6_frame(our_mac, dst_mac, src_ip, dst_ip, &reply))
    }
}

/// One host's address: not 0.0.0.0, broadcast, multicast or loopback.
fn is_unicast(a: Ipv4Addr) -> bool {
    !(a.is_unspecified() || a.is_broadcast() || a.is_multicast() || a.is_loopback())
}

fn emit_eth(buf: &mut [u8], src: EthernetAddress, dst: EthernetAddress, ethertype: EthernetProtocol) {
    EthernetRepr { src_addr: src, dst_addr: dst, ethertype }.emit(&mut EthernetFrame::new_unchecked(buf));
}

fn arp_frame(
    operation: ArpOperation,
    src_mac: EthernetAddress,
    src_ip: Ipv4Addr,
    dst_mac: EthernetAddress,
    target_ip: Ipv4Addr,
    eth_dst: EthernetAddress,
) -> Vec<u8> {
    let repr = ArpRepr::EthernetIpv4 {
        operation,
        source_hardware_addr: src_mac,
        source_protocol_addr: src_ip,
        target_hardware_addr: if operation == ArpOperation::Request { EthernetAddress([0; 6]) } else { dst_mac },
        target_protocol_addr: target_ip,
    };
    // Padded to the 60-byte Ethernet minimum.
    let mut buf = vec![0u8; (14 + repr.buffer_len()).max(60)];
    emit_eth(&mut buf, src_mac, eth_dst, EthernetProtocol::Arp);
    repr.emit(&mut ArpPacket::new_unchecked(&mut buf[14..14 + repr.buffer_len()]));
    buf
}

/// RFC 2464 section 7: 33:33 + low 32 bits of the IPv6 multicast address.
fn multicast_mac(ip: &Ipv6Addr) -> EthernetAddress {
    let o = ip.octets();
    EthernetAddress([0x33, 0x33, o[12], o[13], o[14], o[15]])
}

/// RFC 4291 2.7.1: solicited-node multicast address of `target`.
fn solicited_node(target: &Ipv6Addr) -> Ipv6Addr {
    let o = target.octets();
    Ipv6Addr::new(0xff02, 0, 0, 0, 0, 1, 0xff00 | o[13] as u16, u16::from_be_bytes([o[14], o[15]]))
}

fn neighbor_solicit(mac: EthernetAddress, src: Ipv6Addr, target: Ipv6Addr) -> Vec<u8> {
    let dst = solicited_node(&target);
    let ns = Icmpv6Repr::Ndisc(NdiscRepr::NeighborSolicit { target_addr: target, lladdr: Some(mac.into()) });
    icmpv6_frame(mac, multicast_mac(&dst), src, dst, &ns)
}

fn icmpv6_frame(
    src_mac: EthernetAddress,
    dst_mac: EthernetAddress,
    src: Ipv6Addr,
    dst: Ipv6Addr,
    icmp: &Icmpv6Repr<'_>,
) -> Vec<u8> {
    let is_nd = matches!(icmp, Icmpv6Repr::Ndisc(_));
    let ip = Ipv6Repr {
        src_addr: src,
        dst_addr: dst,
        next_header: IpProtocol::Icmpv6,
        payload_len: icmp.buffer_len(),
        hop_limit: if is_nd { 255 } else { 64 },
    };
    let mut buf = vec![0u8; 14 + ip.buffer_len() + icmp.buffer_len()];
    emit_eth(&mut buf, src_mac, dst_mac, EthernetProtocol::Ipv6);
    let mut ipp = Ipv6Packet::new_unchecked(&mut buf[14..]);
    ip.emit(&mut ipp);
    icmp.emit(&src, &dst, &mut Icmpv6Packet::new_unchecked(ipp.payload_mut()), &ChecksumCapabilities::default());
    buf
}

/// Runs the slow path on its own thread until `stop`: drains punted frames
/// from every worker link, answers through the same link, and re-sends
/// resolution requests once a second through the first link.
pub fn spawn(mut sp: SlowPath, links: Vec<Arc<SlowPathLink>>, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<()> {
    std::thread::Builder::new()
        .name("nfv-control".into())
        .spawn(move || {
            let mut last_resolve = Instant::now() - Duration::from_secs(10);
            while !stop.load(Ordering::Relaxed) {
                let mut busy = false;
                for link in &links {
                    while let Some(f) = link.punted.pop() {
                        busy = true;
                        for reply in sp.handle(f.port, &f.data) {
                            let _ = link.inject.push(reply);
                        }
                        let mut buf = f.data;
                        buf.clear();
                        let _ = link.free.push(buf);
                    }
                }
                let asked = sp.adopt_requests();
                let periodic = last_resolve.elapsed() >= Duration::from_secs(1);
                if asked || periodic {
                    if periodic {
                        last_resolve = Instant::now();
                    }
                    if let Some(link) = links.first() {
                        for req in sp.resolution_requests(periodic) {
                            let _ = link.inject.push(req);
                        }
                    }
                }
                if !busy {
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
        })
        .expect("spawn control thread")
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::{Icmpv4Type, NetSlice, PacketBuilder, SlicedPacket, TransportSlice};

    const PEER: [u8; 6] = [2, 0, 0, 0, 0, 1];
    const OURS: [u8; 6] = [2, 0, 0, 0, 0, 0xfe];

    fn slow_path() -> SlowPath {
        let local = LocalAddrs {
            ports: vec![(OURS, vec![OwnedAddr { addr: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 254)), prefix: 24 }])],
        };
        SlowPath::new(local, Neighbours::new([]))
    }

    #[test]
    fn a_next_hop_a_stage_asks_for_is_resolved_and_one_off_link_ignored() {
        let mut sp = slow_path();
        assert!(!sp.adopt_requests(), "nothing asked");
        let snapshot = sp.neighbours.snapshot();
        for ip in ["10.0.0.9", "10.0.0.9", "192.0.2.1"] {
            snapshot.request(ip.parse().unwrap());
        }
        assert!(sp.adopt_requests(), "10.0.0.9 is on d0's subnet");
        let arps = sp.resolution_requests(true);
        assert_eq!(arps.len(), 1, "once, and not the off-link one");
        assert_eq!(&arps[0].data[38..42], &[10, 0, 0, 9], "ARP target");
        assert!(sp.resolution_requests(true).is_empty(), "asked for once, not kept resolved");
        snapshot.request("10.0.0.9".parse().unwrap());
        assert!(!sp.adopt_requests(), "asked within half a second (another worker): not again");
        sp.asked.get_mut(&"10.0.0.9".parse().unwrap()).unwrap().1 -= Duration::from_millis(500);
        snapshot.request("10.0.0.9".parse().unwrap());
        assert!(sp.adopt_requests(), "later, again");
        assert_eq!(sp.resolution_requests(true).len(), 1);
        // The answer is learned (it is addressed to us anyway), and so is a
        // request from the host itself.
        // The reply as etherparse writes it.
        let arp = etherparse::ArpPacket::new(
            etherparse::ArpHardwareId::ETHERNET,
            etherparse::EtherType::IPV4,
            etherparse::ArpOperation::REPLY,
            &PEER,
            &[10, 0, 0, 9],
            &OURS,
            &[10, 0, 0, 254],
        )
        .unwrap();
        let mut reply = Vec::new();
        PacketBuilder::ethernet2(PEER, OURS).arp(arp).write(&mut reply).unwrap();
        assert!(sp.handle(0, &reply).is_empty());
        assert_eq!(sp.neighbours.snapshot().lookup(&"10.0.0.9".parse().unwrap()).map(|n| n.mac), Some(PEER));
    }

    /// A learned next hop that stops answering is probed, then removed
    /// (packets for it wait and ask again), and learned anew, at its new
    /// MAC, when it answers again.
    #[test]
    fn a_neighbour_that_goes_quiet_is_probed_removed_and_resolved_again() {
        let mut sp = slow_path();
        let hop: IpAddr = "10.0.0.9".parse().unwrap();
        assert!(sp.want(hop));
        let reply = |mac: [u8; 6]| {
            let arp = etherparse::ArpPacket::new(
                etherparse::ArpHardwareId::ETHERNET,
                etherparse::EtherType::IPV4,
                etherparse::ArpOperation::REPLY,
                &mac,
                &[10, 0, 0, 9],
                &OURS,
                &[10, 0, 0, 254],
            )
            .unwrap();
            let mut f = Vec::new();
            PacketBuilder::ethernet2(mac, OURS).arp(arp).write(&mut f).unwrap();
            f
        };
        sp.handle(0, &reply(PEER));
        assert_eq!(sp.neighbours.snapshot().lookup(&hop).map(|n| n.mac), Some(PEER));
        assert!(sp.resolution_requests(true).is_empty(), "resolved and fresh: nothing to ask");
        // Quiet for longer than STALE_AFTER: a probe a round, PROBES of them.
        let age = |sp: &mut SlowPath| sp.confirmed.get_mut(&hop).unwrap().0 -= STALE_AFTER;
        for n in 1..=PROBES {
            age(&mut sp);
            let probes = sp.resolution_requests(true);
            assert_eq!(probes.len(), 1, "probe {n}");
            assert_eq!(&probes[0].data[38..42], &[10, 0, 0, 9], "an ARP request for it");
        }
        age(&mut sp);
        sp.resolution_requests(true);
        assert!(sp.neighbours.snapshot().lookup(&hop).is_none(), "removed after {PROBES} probes");
        assert_eq!(sp.counters.neighbours_lost.get(), 1);
        // Still wanted: asked for again, and learned where it is now.
        assert_eq!(sp.resolution_requests(true).len(), 1, "resolved again");
        let moved = [2, 0, 0, 0, 0, 0x77];
        sp.handle(0, &reply(moved));
        assert_eq!(sp.neighbours.snapshot().lookup(&hop).map(|n| n.mac), Some(moved));
        // An answer to a probe keeps it.
        age(&mut sp);
        assert_eq!(sp.resolution_requests(true).len(), 1, "probed");
        sp.handle(0, &reply(moved));
        assert!(sp.resolution_requests(true).is_empty(), "confirmed: no probe, kept");
        assert!(sp.neighbours.snapshot().lookup(&hop).is_some());
    }

    /// The same for an IPv6 next hop: one Neighbor Solicitation to its
    /// solicited-node group (RFC 4861 7.2.2), and its advertisement learned.
    #[test]
    fn an_ipv6_next_hop_asked_for_is_solicited_and_its_advertisement_learned() {
        let ours6: Ipv6Addr = "fd00::1".parse().unwrap();
        let local = LocalAddrs { ports: vec![(OURS, vec![OwnedAddr { addr: IpAddr::V6(ours6), prefix: 64 }])] };
        let mut sp = SlowPath::new(local, Neighbours::new([]));
        let hop: Ipv6Addr = "fd00::2:3".parse().unwrap();
        sp.neighbours.snapshot().request(IpAddr::V6(hop));
        assert!(sp.adopt_requests());
        let ns = sp.resolution_requests(false);
        assert_eq!(ns.len(), 1);
        let p = SlicedPacket::from_ethernet(&ns[0].data).unwrap();
        let Some(NetSlice::Ipv6(ip)) = &p.net else { panic!() };
        assert_eq!(ip.header().destination_addr(), "ff02::1:ff02:3".parse::<Ipv6Addr>().unwrap());
        assert_eq!(&ns[0].data[0..6], &[0x33, 0x33, 0xff, 0x02, 0x00, 0x03]);
        // The advertisement as etherparse writes it (RFC 4861 4.4): the
        // target, then its link-layer address option (type 2, 8 octets).
        let mut na = Vec::new();
        let mut body = hop.octets().to_vec();
        body.extend_from_slice(&[2, 1]);
        body.extend_from_slice(&PEER);
        let solicited =
            etherparse::icmpv6::NeighborAdvertisementHeader { router: false, solicited: true, r#override: true };
        PacketBuilder::ethernet2(PEER, OURS)
            .ipv6(hop.octets(), ours6.octets(), 255)
            .icmpv6(etherparse::Icmpv6Type::NeighborAdvertisement(solicited))
            .write(&mut na, &body)
            .unwrap();
        assert!(sp.handle(0, &na).is_empty());
        assert_eq!(sp.neighbours.snapshot().lookup(&IpAddr::V6(hop)).map(|n| n.mac), Some(PEER));
    }

    fn udp(ttl: u8) -> Vec<u8> {
        let mut f = Vec::new();
        PacketBuilder::ethernet2(PEER, OURS)
            .ipv4([10, 0, 0, 1], [198, 51, 100, 2], ttl)
            .udp(40000, 33434)
            .write(&mut f, &[7; 20])
            .unwrap();
        f
    }

    /// What traceroute needs from a hop: an RFC 792 time exceeded from the
    /// hop's address, quoting the probe's header and its UDP ports.
    #[test]
    fn an_expired_packet_gets_a_time_exceeded_quoting_it() {
        let mut sp = slow_path();
        let probe = udp(1);
        let out = sp.handle(0, &probe);
        assert_eq!(out.len(), 1);
        let f = &out[0].data;
        assert_eq!(&f[0..6], &PEER);
        let p = SlicedPacket::from_ethernet(f).unwrap();
        let Some(NetSlice::Ipv4(ip)) = &p.net else { panic!() };
        let h = ip.header().to_header();
        assert_eq!((h.source, h.destination), ([10, 0, 0, 254], [10, 0, 0, 1]));
        assert_eq!(h.header_checksum, h.calc_header_checksum());
        let Some(TransportSlice::Icmpv4(icmp)) = &p.transport else { panic!() };
        assert!(matches!(icmp.icmp_type(), Icmpv4Type::TimeExceeded(_)), "{:?}", icmp.icmp_type());
        assert_eq!(icmp.checksum(), icmp.header().icmp_type.calc_checksum(icmp.payload()));
        assert_eq!(icmp.payload(), &probe[14..14 + 28], "the probe's header as received and 8 bytes");
        assert_eq!(sp.counters.time_exceeded.get(), 1);
    }

    #[test]
    fn no_error_about_an_error_for_our_own_address_or_past_the_rate_limit() {
        let mut sp = slow_path();
        let mut err = Vec::new();
        PacketBuilder::ethernet2(PEER, OURS)
            .ipv4([10, 0, 0, 1], [198, 51, 100, 2], 1)
            .icmpv4(Icmpv4Type::DestinationUnreachable(etherparse::icmpv4::DestUnreachableHeader::Port))
            .write(&mut err, &[0; 28])
            .unwrap();
        assert!(sp.handle(0, &err).is_empty(), "RFC 1812 4.3.2.7: no error about an error");
        let mut igmp = Vec::new();
        PacketBuilder::ethernet2(PEER, [1, 0, 0x5e, 0, 0, 0x16])
            .ipv4([10, 0, 0, 1], [224, 0, 0, 22], 1)
            .write(&mut igmp, etherparse::IpNumber(2), &[0x22, 0, 0, 0, 0, 0, 0, 0])
            .unwrap();
        assert!(sp.handle(0, &igmp).is_empty(), "nor about multicast");
        let mut to_us = udp(1);
        to_us[14 + 16..14 + 20].copy_from_slice(&[10, 0, 0, 254]);
        to_us[14 + 10..14 + 12].copy_from_slice(&[0, 0]);
        let c = nfv_net::checksum::checksum(&to_us[14..34]);
        to_us[14 + 10..14 + 12].copy_from_slice(&c.to_be_bytes());
        assert_eq!(sp.counters.time_exceeded.get(), 0);
        let _ = sp.handle(0, &to_us);
        assert_eq!(sp.counters.time_exceeded.get(), 0, "addressed to us: delivered, not expired");
        let sent = (0..ICMP_ERRORS_PER_SEC + 50).filter(|_| !sp.handle(0, &udp(1)).is_empty()).count();
        assert_eq!(sent as u32, ICMP_ERRORS_PER_SEC, "at most the budget within a second");
        assert_eq!(sp.counters.rate_limited.get(), 50);
    }
}
