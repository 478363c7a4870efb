//! In-memory traffic generator: a port that "receives" synthetic traffic.
//!
//! Frames are built once per size as templates; each packet copies its
//! template and patches the flow's addresses and ports, with checksums
//! finished from precomputed partial sums (RFC 1071 addition is
//! associative), so a packet costs a copy and a few stores.
//!
//! Addresses and ports follow RFC 4814 section 4: pseudo-random, uniformly
//! spread, unicast; source ports in 1024-65535, destination ports in
//! 1-49151. Sizes are on-wire Ethernet frame sizes including the 4-byte FCS
//! (RFC 2544 section 9), so "64" means 60 bytes in the buffer.

use serde::Deserialize;
use std::net::IpAddr;

use crate::batch::Batch;
use crate::frame::{FramePool, HEADROOM, MAX_DATA};
use crate::packet::{PktDesc, flags};
use crate::port::{Port, PortInfo};
use nfv_net::checksum;
use nfv_net::wire::{
    self, EthernetRepr, IcmpPacket, Ipv4Packet, Ipv4Repr, Ipv6Packet, Ipv6Repr, TcpPacket, UdpPacket, UdpRepr,
    ethernet, ethertype, icmp, ipv4, ipv6, proto, tcp, udp,
};

/// Frame size selection.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum FrameSize {
    /// Every frame this size (64..=1518, including FCS).
    Fixed(u16),
    /// A named mix: only `"imix"` (7 x 64, 4 x 570, 1 x 1518: simple IMIX).
    Mix(String),
}

/// Transport of the generated (inner) packets.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// UDP datagrams.
    Udp,
    /// TCP segments (ACK set, established-looking).
    Tcp,
    /// ICMP / ICMPv6 echo requests; the flow id is the echo identifier.
    Icmp,
}

/// Optional encapsulation around the generated packets.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Encap {
    /// Plain packets.
    None,
    /// VXLAN (RFC 7348) over IPv4/UDP 4789 with an inner Ethernet frame.
    Vxlan,
    /// GTP-U G-PDU (TS 29.281) over IPv4/UDP 2152, TEID per flow.
    Gtpu,
}

/// `[[ports]] kind = "generator"` parameters.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct GeneratorConfig {
    /// Number of distinct flows (5-tuples).
    pub flows: u32,
    /// Frame size or `"imix"`.
    pub frame_size: FrameSize,
    /// 4 or 6.
    pub ip_version: u8,
    /// Inner transport.
    pub protocol: Transport,
    /// Encapsulation.
    pub encap: Encap,
    /// Packets to generate per queue; 0 means no limit.
    pub count: u64,
    /// Seed for the address/port generator (same seed, same traffic).
    pub seed: u64,
    /// VXLAN VNI used when `encap = "vxlan"`.
    pub vni: u32,
    /// Destination MAC written in generated frames.
    pub dst_mac: String,
    /// One destination for every flow, `a.b.c.d:port` (IPv4 only; a
    /// load balancer's VIP): flows then differ by source address and
    /// port. Empty: RFC 2544 destinations, one per flow.
    pub dst: String,
}

impl Default for GeneratorConfig {
    fn default() -> Self {
        Self {
            flows: 1024,
            frame_size: FrameSize::Fixed(64),
            ip_version: 4,
            protocol: Transport::Udp,
            encap: Encap::None,
            count: 0,
            seed: 4814,
            vni: 100,
            dst_mac: "02:00:00:00:00:02".into(),
            dst: String::new(),
        }
    }
}

impl GeneratorConfig {
    /// Checks value ranges; returns (field, message) on the first problem.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        if self.flows == 0 || self.flows > 1 << 24 {
            return Err(("flows", "expected 1..=16777216 flows".into()));
        }
        match &self.frame_size {
            FrameSize::Fixed(s) if !(64..=1518).contains(s) => {
                return Err(("frame-size", format!("{s} is outside 64..=1518 (bytes with FCS)")));
            }
            FrameSize::Mix(m) if m != "imix" => {
                return Err(("frame-size", format!("`{m}` is not a size; expected 64..=1518 or \"imix\"")));
            }
            _ => {}
        }
        if !matches!(self.ip_version, 4 | 6) {
            return Err(("ip-version", "expected 4 or 6".into()));
        }
        if self.vni >= 1 << 24 {
            return Err(("vni", "a VNI has 24 bits: expected 0..=16777215".into()));
        }
        crate::config::parse_mac(&self.dst_mac).map_err(|e| ("dst-mac", e))?;
        if !self.dst.is_empty() && (self.ip_version != 4 || self.fixed_dst().is_none()) {
            return Err(("dst", format!("`{}`: expected an IPv4 a.b.c.d:port (with ip-version = 4)", self.dst)));
        }
        Ok(())
    }

    /// The fixed destination, if one is set and valid.
    fn fixed_dst(&self) -> Option<([u8; 4], u16)> {
        let a: std::net::SocketAddrV4 = self.dst.parse().ok()?;
        Some((a.ip().octets(), a.port()))
    }

    fn sizes(&self) -> Vec<u16> {
        match &self.frame_size {
            FrameSize::Fixed(s) => vec![*s],
            // Interleaved so the mix holds over any window of 12 packets.
            FrameSize::Mix(_) => vec![64, 570, 64, 64, 570, 64, 1518, 64, 570, 64, 570, 64],
        }
    }
}

/// One flow's patch values.
#[derive(Clone, Copy)]
struct Flow {
    src: [u8; 16],
    dst: [u8; 16],
    sport: u16,
    dport: u16,
    addr_sum: u32,
    port_sum: u32,
    hash: u32,
}

/// A prebuilt frame and where to patch it.
struct Template {
    bytes: Vec<u8>,
    ip_off: usize,
    l4_off: usize,
    addr_len: usize,
    /// Partial sum of the IPv4 header with zero addresses/checksum.
    ip_partial: u32,
    /// Partial sum over L4 header+payload (ports, checksum zeroed) plus
    /// the pseudo-header's length and protocol.
    l4_partial: u32,
    outer_sport_off: Option<usize>,
    teid_off: Option<usize>,
}

/// The generator port (one instance per queue).
pub struct Generator {
    info: PortInfo,
    templates: Vec<Template>,
    flows: Vec<Flow>,
    transport: Transport,
    next_flow: usize,
    next_size: usize,
    remaining: Option<u64>,
}

impl Generator {
    /// Builds templates and flows for `queue` of `queues` (flows are
    /// partitioned across queues the way RSS would spread them).
    pub fn new(info: PortInfo, cfg: &GeneratorConfig, queue: u16, queues: u16) -> Self {
        let dst_mac = crate::config::parse_mac(&cfg.dst_mac).unwrap_or([2, 0, 0, 0, 0, 2]);
        let templates = cfg.sizes().into_iter().map(|s| build_template(cfg, s, info.mac, dst_mac)).collect();
        let mut rng = fastrand::Rng::with_seed(cfg.seed);
        let mut flows = Vec::with_capacity(cfg.flows as usize / queues.max(1) as usize + 1);
        for i in 0..cfg.flows {
            let f = random_flow(&mut rng, cfg);
            if i % queues.max(1) as u32 == queue as u32 {
                flows.push(f);
            }
        }
        if flows.is_empty() {
            flows.push(random_flow(&mut rng, cfg));
        }
        Self {
            info,
            templates,
            flows,
            transport: cfg.protocol,
            next_flow: 0,
            next_size: 0,
            remaining: (cfg.count > 0).then_some(cfg.count),
        }
    }

    #[inline(always)]
    fn fill(&mut self, frame: &mut [u8]) -> usize {
        let t = &self.templates[self.next_size];
        let f = &self.flows[self.next_flow];
        self.next_size = if self.next_size + 1 == self.templates.len() { 0 } else { self.next_size + 1 };
        self.next_flow = if self.next_flow + 1 == self.flows.len() { 0 } else { self.next_flow + 1 };
        let len = t.bytes.len();
        let out = &mut frame[HEADROOM..HEADROOM + len];
        out.copy_from_slice(&t.bytes);
        let (ip, l4, v4) = (t.ip_off, t.l4_off, t.addr_len == 4);
        if v4 {
            let mut h = Ipv4Packet::new_unchecked(&mut out[ip..l4]);
            h.set_src_addr(f.src[..4].try_into().expect("4"));
            h.set_dst_addr(f.dst[..4].try_into().expect("4"));
            h.set_checksum(!checksum::fold(t.ip_partial + f.addr_sum));
        } else {
            let mut h = Ipv6Packet::new_unchecked(&mut out[ip..l4]);
            h.set_src_addr(f.src);
            h.set_dst_addr(f.dst);
        }
        let l4 = &mut out[l4..];
        let c = |sum: u32| !checksum::fold(t.l4_partial + sum);
        match self.transport {
            Transport::Udp => {
                wire::set_ports(l4, f.sport, f.dport);
                // RFC 768: a computed zero is sent as all ones.
                let c = c(f.port_sum + f.addr_sum);
                UdpPacket::new_unchecked(l4).set_checksum(if c == 0 { 0xffff } else { c });
            }
            Transport::Tcp => {
                wire::set_ports(l4, f.sport, f.dport);
                TcpPacket::new_unchecked(l4).set_checksum(c(f.port_sum + f.addr_sum));
            }
            Transport::Icmp => {
                // The echo identifier varies; ICMPv4 has no pseudo-header,
                // ICMPv6 has (RFC 4443 2.3).
                let mut i = IcmpPacket::new_unchecked(l4);
                i.set_echo_ident(f.sport);
                i.set_checksum(c(f.sport as u32 + if v4 { 0 } else { f.addr_sum }));
            }
        }
        if let Some(o) = t.outer_sport_off {
            // RFC 7348 section 5: outer source port from the inner flow hash.
            let sport = 49152 | (f.hash as u16 & 0x3fff);
            out[o..o + 2].copy_from_slice(&sport.to_be_bytes());
        }
        if let Some(o) = t.teid_off {
            out[o..o + 4].copy_from_slice(&(f.hash | 1).to_be_bytes());
        }
        len
    }
}

impl Port for Generator {
    fn info(&self) -> &PortInfo {
        &self.info
    }

    fn rx_burst(&mut self, pool: &mut FramePool, batch: &mut Batch) -> usize {
        batch.assert_pool(pool);
        let mut want = batch.room();
        if let Some(r) = self.remaining {
            want = want.min(r as usize);
        }
        let mut n = 0;
        let mut bytes = 0u64;
        while n < want {
            let Some(id) = pool.alloc() else { break };
            let flow_hash = self.flows[self.next_flow].hash;
            let len = self.fill(pool.frame_mut(id));
            let mut d = PktDesc::new(id, len as u16, self.info.id);
            d.meta.hash = flow_hash;
            d.meta.flags |= flags::HASH_OK;
            batch.push_desc(d);
            bytes += len as u64;
            n += 1;
        }
        if let Some(r) = self.remaining.as_mut() {
            *r -= n as u64;
        }
        self.info.counters.rx(n as u64, bytes);
        n
    }

    fn tx_burst(&mut self, pool: &mut FramePool, pkts: &mut Vec<PktDesc>) {
        // A generator has no wire: what is sent to it is counted and freed.
        let bytes = pkts.iter().map(|d| d.len as u64).sum();
        self.info.counters.tx(pkts.len() as u64, bytes);
        for d in pkts.drain(..) {
            pool.free(d.frame);
        }
    }

    fn exhausted(&self) -> bool {
        self.remaining == Some(0)
    }
}

fn random_flow(rng: &mut fastrand::Rng, cfg: &GeneratorConfig) -> Flow {
    let mut src = [0u8; 16];
    let mut dst = [0u8; 16];
    let al = if cfg.ip_version == 4 { 4 } else { 16 };
    if al == 4 {
        // RFC 2544 appendix C / RFC 6890: 198.18.0.0/15 is for benchmarks;
        // sources in 198.18/16, destinations in 198.19/16, host part not 0/255.
        let s = rng.u16(1..=0xfffe).max(1);
        let d = rng.u16(1..=0xfffe).max(1);
        src[..4].copy_from_slice(&[198, 18, (s >> 8) as u8, s as u8]);
        dst[..4].copy_from_slice(&[198, 19, (d >> 8) as u8, d as u8]);
    } else {
        // RFC 5180 section 5: 2001:2::/48 is for IPv6 benchmarks.
        src[..6].copy_from_slice(&[0x20, 0x01, 0, 2, 0, 0]);
        dst[..6].copy_from_slice(&[0x20, 0x01, 0, 2, 0, 1]);
        rng.fill(&mut src[8..]);
        rng.fill(&mut dst[8..]);
    }
    let sport = rng.u16(1024..=65535);
    let mut dport = rng.u16(1..=49151);
    if let Some((a, p)) = cfg.fixed_dst() {
        dst[..4].copy_from_slice(&a);
        dport = p;
    }
    let addr_sum = checksum::sum(&src[..al], checksum::sum(&dst[..al], 0));
    let port_sum = sport as u32 + dport as u32;
    let mut meta = crate::packet::Meta {
        ethertype: if al == 4 { ethertype::IPV4 } else { ethertype::IPV6 },
        ..Default::default()
    };
    // Hash the same way the input stage would, from a throwaway header.
    let mut hdr = vec![0u8; ethernet::HEADER_LEN + ipv6::HEADER_LEN + udp::HEADER_LEN];
    let l3 = ethernet::HEADER_LEN;
    let l4 = if al == 4 {
        let mut ip = Ipv4Packet::new_unchecked(&mut hdr[l3..]);
        ip.set_src_addr(src[..4].try_into().expect("4"));
        ip.set_dst_addr(dst[..4].try_into().expect("4"));
        l3 + ipv4::HEADER_LEN
    } else {
        let mut ip = Ipv6Packet::new_unchecked(&mut hdr[l3..]);
        ip.set_src_addr(src);
        ip.set_dst_addr(dst);
        l3 + ipv6::HEADER_LEN
    };
    wire::set_ports(&mut hdr[l4..], sport, dport);
    meta.l3_off = l3 as u16;
    meta.l4_off = l4 as u16;
    meta.l4_proto = proto::UDP;
    meta.flags = flags::L3_OK | flags::L4_OK;
    let hash = crate::parse::flow_hash(&hdr, &meta);
    Flow { src, dst, sport, dport, addr_sum, port_sum, hash }
}

/// Builds the frame for one size with zero addresses/ports/checksums.
fn build_template(cfg: &GeneratorConfig, size: u16, src_mac: [u8; 6], dst_mac: [u8; 6]) -> Template {
    let v4 = cfg.ip_version == 4;
    let ip_hdr = if v4 { 20 } else { 40 };
    let l4_hdr = match cfg.protocol {
        Transport::Tcp => 20,
        _ => 8,
    };
    let outer = match cfg.encap {
        Encap::None => 0,
        Encap::Vxlan => 14 + 20 + 8 + 8,
        Encap::Gtpu => 14 + 20 + 8 + 8,
    };
    // The size applies to the inner frame; GTP-U carries no inner Ethernet.
    let inner_eth = if cfg.encap == Encap::Gtpu { 0 } else { 14 };
    let min_inner = inner_eth + ip_hdr + l4_hdr;
    let inner_len = (size as usize - 4 - (14 - inner_eth)).max(min_inner);
    let total = (outer + inner_len).min(MAX_DATA);
    let mut b = vec![0u8; total];
    let mut off = 0;
    let put_eth = |b: &mut [u8], ethertype: u16| EthernetRepr { dst: dst_mac, src: src_mac, ethertype }.emit(b);
    let (mut outer_sport_off, mut teid_off) = (None, None);
    if cfg.encap != Encap::None {
        put_eth(&mut b, ethertype::IPV4);
        let ip = ethernet::HEADER_LEN;
        let udp = ip + ipv4::HEADER_LEN;
        let outer_ip = Ipv4Repr {
            src: [192, 0, 2, 1], // RFC 5737 TEST-NET-1
            dst: [192, 0, 2, 2],
            protocol: proto::UDP,
            payload_len: total - udp,
            ttl: 64,
            tos: 0,
            ident: 0,
            frag_field: ipv4::DONT_FRAG,
        };
        outer_ip.emit(&mut b[ip..]);
        UdpRepr { src_port: 0, dst_port: 0, payload_len: total - udp - udp::HEADER_LEN }.emit(&mut b[udp..]);
        let hdr = udp + udp::HEADER_LEN;
        match cfg.encap {
            Encap::Vxlan => {
                b[udp..udp + 2].copy_from_slice(&49152u16.to_be_bytes());
                b[udp + 2..udp + 4].copy_from_slice(&4789u16.to_be_bytes());
                b[hdr] = 0x08; // I flag (RFC 7348 section 5)
                b[hdr + 4..hdr + 7].copy_from_slice(&cfg.vni.to_be_bytes()[1..]);
                outer_sport_off = Some(udp);
            }
            _ => {
                b[udp..udp + 2].copy_from_slice(&2152u16.to_be_bytes());
                b[udp + 2..udp + 4].copy_from_slice(&2152u16.to_be_bytes());
                // TS 29.281 5.1: version 1, PT=1, no optional fields; G-PDU.
                b[hdr] = 0x30;
                b[hdr + 1] = 0xff;
                b[hdr + 2..hdr + 4].copy_from_slice(&((total - hdr - 8) as u16).to_be_bytes());
                teid_off = Some(hdr + 4);
            }
        }
        off = hdr + 8;
    }
    let et = if v4 { ethertype::IPV4 } else { ethertype::IPV6 };
    if inner_eth > 0 {
        put_eth(&mut b[off..], et);
        off += ethernet::HEADER_LEN;
    }
    let ip_off = off;
    let l4_off = ip_off + ip_hdr;
    let ip_len = total - ip_off;
    let l4_len = total - l4_off;
    let l4_proto = match (cfg.protocol, v4) {
        (Transport::Udp, _) => proto::UDP,
        (Transport::Tcp, _) => proto::TCP,
        (Transport::Icmp, true) => proto::ICMP,
        (Transport::Icmp, false) => proto::ICMPV6,
    };
    // Addresses and checksums are each packet's: zero in the template.
    if v4 {
        let ip = Ipv4Repr {
            src: [0; 4],
            dst: [0; 4],
            protocol: l4_proto,
            payload_len: ip_len - ipv4::HEADER_LEN,
            ttl: 64,
            tos: 0,
            ident: 0,
            frag_field: 0,
        };
        ip.emit(&mut b[ip_off..]);
        Ipv4Packet::new_unchecked(&mut b[ip_off..]).set_checksum(0);
    } else {
        let ip = Ipv6Repr {
            src: [0; 16],
            dst: [0; 16],
            next_header: l4_proto,
            payload_len: l4_len,
            hop_limit: 64,
            traffic_class: 0,
            flow_label: 0,
        };
        ip.emit(&mut b[ip_off..]);
    }
    let l4 = &mut b[l4_off..];
    match cfg.protocol {
        Transport::Udp => UdpPacket::new_unchecked(l4).set_len(l4_len as u16),
        Transport::Tcp => {
            let mut t = TcpPacket::new_unchecked(l4);
            t.set_header_len(tcp::HEADER_LEN);
            t.set_flags(tcp::flags::ACK);
            t.set_window(65535);
        }
        // An echo request.
        Transport::Icmp => {
            IcmpPacket::new_unchecked(l4).set_msg_type(if v4 { icmp::v4::ECHO_REQUEST } else { icmp::v6::ECHO_REQUEST })
        }
    }
    for (i, byte) in b[l4_off + l4_hdr..].iter_mut().enumerate() {
        *byte = i as u8;
    }
    let ip_partial = if v4 { checksum::sum(&b[ip_off..l4_off], 0) } else { 0 };
    let pseudo = match (cfg.protocol, v4) {
        (Transport::Icmp, true) => 0,
        _ => l4_len as u32 + l4_proto as u32,
    };
    let l4_partial = checksum::sum(&b[l4_off..], pseudo);
    Template {
        bytes: b,
        ip_off,
        l4_off,
        addr_len: if v4 { 4 } else { 16 },
        ip_partial,
        l4_partial,
        outer_sport_off,
        teid_off,
    }
}

/// The addresses a generator's flows use, for tests and the slow path.
pub fn flow_addresses(cfg: &GeneratorConfig) -> Vec<(IpAddr, IpAddr)> {
    let mut rng = fastrand::Rng::with_seed(cfg.seed);
    (0..cfg.flows)
        .map(|_| {
            let f = random_flow(&mut rng, cfg);
            if cfg.ip_version == 4 {
                let s: [u8; 4] = f.src[..4].try_into().unwrap();
                let d: [u8; 4] = f.dst[..4].try_into().unwrap();
                (IpAddr::from(s), IpAddr::from(d))
            } else {
                (IpAddr::from(f.src), IpAddr::from(f.dst))
            }
        })
        .collect()
}
