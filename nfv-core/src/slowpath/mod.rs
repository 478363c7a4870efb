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

mod resolve;

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
mod tests;
