//! `classify`: sends each packet to the chain of the first rule it
//! matches (RFC 7665's classifier; VPP's classify tables and next-node
//! dispatch). Rules match on the ingress port, EtherType, IP protocol,
//! DSCP, UDP/TCP ports, source and destination prefixes, and tunnels: a
//! VXLAN VNI (RFC 7348, UDP 4789), a GTP-U TEID (TS 29.281, UDP 2152).
//! A packet matching no rule goes to `default`, or on through this chain
//! without one.
//!
//! The common fields pack into one 64-bit key per packet compared to
//! each rule under a mask; only fields some rule uses are read, so a
//! classifier by ingress port touches no packet byte.

use std::net::IpAddr;
use std::sync::Arc;

use nfv_core::config::{Diagnostic, Params};
use nfv_core::packet::flags;
use nfv_core::{Batch, BuildCtx, BuildEnv, ChainId, PacketMut, PortId, Stage, StageBuilder, StageCtx, StageFactory};
use nfv_net::wire::{Ipv4Packet, Ipv6Packet, UdpPacket, ethertype, proto};
use serde::Deserialize;
use toml::Spanned;

/// The VXLAN and GTP-U user-plane ports (RFC 7348 5, TS 29.281 4.4.2.3).
const VXLAN_PORT: u16 = 4789;
const GTPU_PORT: u16 = 2152;

/// One rule as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RuleParams {
    chain: String,
    #[serde(default)]
    ingress: Option<OneOrMany>,
    #[serde(default)]
    ethertype: Option<String>,
    #[serde(default)]
    proto: Option<String>,
    #[serde(default)]
    dscp: Option<u8>,
    #[serde(default)]
    src_port: Option<u16>,
    #[serde(default)]
    dst_port: Option<u16>,
    #[serde(default)]
    src: Option<String>,
    #[serde(default)]
    dst: Option<String>,
    #[serde(default)]
    vni: Option<u32>,
    #[serde(default)]
    teid: Option<u32>,
    #[serde(default)]
    vxlan: bool,
    #[serde(default)]
    gtpu: bool,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ClassifyParams {
    rules: Vec<Spanned<RuleParams>>,
    #[serde(default)]
    default: Option<String>,
}

/// Key layout: ingress port, EtherType, IP protocol, DSCP, L4 port.
const PORT_SHIFT: u32 = 0;
const ETHERTYPE_SHIFT: u32 = 16;
const PROTO_SHIFT: u32 = 32;
const DSCP_SHIFT: u32 = 40;
const L4_SHIFT: u32 = 48;

/// Which header fields the key holds because a rule reads them (the
/// others a rule reads are checked for that rule alone).
#[derive(Clone, Copy, Default)]
struct Needs {
    dscp: bool,
    dst_port: bool,
}

/// A compiled rule.
#[derive(Clone, Debug, PartialEq)]
struct Rule {
    /// Ingress ports it matches, `None` for any (more than one port can
    /// not share a masked compare).
    ports: Option<Vec<PortId>>,
    mask: u64,
    value: u64,
    src_port: Option<u16>,
    src: Option<(IpAddr, u8)>,
    dst: Option<(IpAddr, u8)>,
    /// VXLAN VNI (`Some(None)`: any VXLAN).
    vni: Option<Option<u32>>,
    /// GTP-U G-PDU TEID (`Some(None)`: any G-PDU).
    teid: Option<Option<u32>>,
    chain: ChainId,
}

/// Registers `classify`.
pub struct ClassifyFactory;

impl StageFactory for ClassifyFactory {
    fn kind(&self) -> &'static str {
        "classify"
    }

    fn summary(&self) -> &'static str {
        "send each packet to the chain of the first rule it matches (ports, EtherType, protocol, DSCP, prefixes, VNI, TEID)"
    }

    fn configure(&self, params: &Params<'_>, env: &BuildEnv<'_>) -> Result<Arc<dyn StageBuilder>, Vec<Diagnostic>> {
        let p: ClassifyParams = params.parse().map_err(|e| vec![e])?;
        let chain = |name: &str, span: std::ops::Range<usize>| {
            env.chain_id(name).ok_or_else(|| {
                Diagnostic::new(span, format!("unknown chain `{name}`"), "no such chain")
                    .help(format!("known chains: {}", env.chains.join(", ")))
            })
        };
        let mut errors = Vec::new();
        let mut rules = Vec::new();
        for r in &p.rules {
            match compile(r.get_ref(), env).and_then(|mut rule| {
                rule.chain = chain(&r.get_ref().chain, r.span())?;
                Ok(rule)
            }) {
                Ok(rule) => rules.push(rule),
                Err(d) => errors.push(Diagnostic { span: r.span(), ..d }),
            }
        }
        if p.rules.is_empty() {
            errors.push(
                params
                    .error("rules", "no rules", "empty list")
                    .help("rules = [{ proto = \"udp\", dst-port = 2152, chain = \"upf\" }]"),
            );
        }
        let default = match &p.default {
            Some(d) => match chain(d, params.span_of("default")) {
                Ok(c) => Some(c),
                Err(e) => {
                    errors.push(e);
                    None
                }
            },
            None => None,
        };
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(Arc::new(ClassifyBuilder { rules: rules.into(), default, ports: env.ports.len() }))
    }
}

fn bad(msg: impl Into<String>, help: impl Into<String>) -> Diagnostic {
    Diagnostic::new(0..0, msg, "in this rule").help(help)
}

fn prefix(s: &str) -> Result<(IpAddr, u8), Diagnostic> {
    let (a, l) = s.split_once('/').unwrap_or((s, ""));
    let addr: IpAddr = a
        .parse()
        .map_err(|_| bad(format!("`{s}` is not an address or prefix"), "write 10.0.0.0/8 or 2001:db8::/32"))?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let len = if l.is_empty() {
        max
    } else {
        l.parse::<u8>()
            .ok()
            .filter(|l| *l <= max)
            .ok_or_else(|| bad(format!("bad prefix length in `{s}`"), format!("0..={max}")))?
    };
    Ok((addr, len))
}

fn compile(r: &RuleParams, env: &BuildEnv<'_>) -> Result<Rule, Diagnostic> {
    let (mut mask, mut value) = (0u64, 0u64);
    let mut set = |shift: u32, bits: u64, v: u64| {
        mask |= bits << shift;
        value |= (v & bits) << shift;
    };
    let ports = match &r.ingress {
        None => None,
        Some(o) => {
            let names = match o {
                OneOrMany::One(n) => vec![n.clone()],
                OneOrMany::Many(v) => v.clone(),
            };
            let mut ids = Vec::new();
            for n in &names {
                ids.push(env.port_id(n).ok_or_else(|| {
                    bad(format!("unknown port `{n}`"), format!("known ports: {}", env.ports.join(", ")))
                })?);
            }
            Some(ids)
        }
    };
    if let Some([p]) = ports.as_deref() {
        set(PORT_SHIFT, 0xffff, *p as u64);
    }
    let et =
        match r.ethertype.as_deref() {
            None => None,
            Some("ipv4") => Some(ethertype::IPV4),
            Some("ipv6") => Some(ethertype::IPV6),
            Some("arp") => Some(ethertype::ARP),
            Some("nsh") => Some(0x894f),
            Some(s) => Some(s.strip_prefix("0x").and_then(|h| u16::from_str_radix(h, 16).ok()).ok_or_else(|| {
                bad(format!("unknown EtherType `{s}`"), "ipv4, ipv6, arp, nsh or a number like 0x88cc")
            })?),
        };
    let proto = match r.proto.as_deref() {
        None => None,
        Some("tcp") => Some(proto::TCP),
        Some("udp") => Some(proto::UDP),
        Some("icmp") => Some(proto::ICMP),
        Some("icmpv6") => Some(proto::ICMPV6),
        Some(s) => Some(
            s.parse::<u8>()
                .map_err(|_| bad(format!("unknown protocol `{s}`"), "tcp, udp, icmp, icmpv6 or a number"))?,
        ),
    };
    let tunnel = (r.vxlan || r.vni.is_some(), r.gtpu || r.teid.is_some());
    if tunnel.0 && tunnel.1 {
        return Err(bad("a rule cannot match VXLAN and GTP-U at once", "write two rules"));
    }
    let proto = match (proto, tunnel.0 || tunnel.1) {
        (Some(p), true) if p != proto::UDP => return Err(bad("tunnels are UDP", "drop `proto` or make it \"udp\"")),
        (_, true) => Some(proto::UDP),
        (p, false) => p,
    };
    let dst_port = match (r.dst_port, tunnel) {
        (Some(_), (true, _) | (_, true)) => return Err(bad("a tunnel rule names its own port", "drop `dst-port`")),
        (_, (true, _)) => Some(VXLAN_PORT),
        (_, (_, true)) => Some(GTPU_PORT),
        (d, _) => d,
    };
    if (dst_port.is_some() || r.src_port.is_some()) && !matches!(proto, Some(proto::TCP | proto::UDP)) {
        return Err(bad("ports need a protocol with ports", "add proto = \"tcp\" or \"udp\""));
    }
    if let Some(d) = r.dscp {
        if d > 63 {
            return Err(bad(format!("DSCP {d} is out of range"), "0..=63 (RFC 2474)"));
        }
        set(DSCP_SHIFT, 0xff, d as u64);
    }
    let ip = proto.is_some() || r.dscp.is_some() || r.src.is_some() || r.dst.is_some();
    match (et, ip) {
        (Some(e), true) if e != ethertype::IPV4 && e != ethertype::IPV6 => {
            return Err(bad("IP fields on a non-IP EtherType", "drop `ethertype` or make it ipv4/ipv6"));
        }
        (Some(e), _) => set(ETHERTYPE_SHIFT, 0xffff, e as u64),
        (None, _) => {}
    }
    if let Some(p) = proto {
        set(PROTO_SHIFT, 0xff, p as u64);
    }
    if let Some(d) = dst_port {
        set(L4_SHIFT, 0xffff, d as u64);
    }
    let src = r.src.as_deref().map(prefix).transpose()?;
    let dst = r.dst.as_deref().map(prefix).transpose()?;
    if let (Some((a, _)), Some((b, _))) = (src, dst)
        && a.is_ipv4() != b.is_ipv4()
    {
        return Err(bad("`src` and `dst` are of different IP versions", "match one version per rule"));
    }
    let family = src.or(dst).map(|(a, _)| if a.is_ipv4() { ethertype::IPV4 } else { ethertype::IPV6 });
    if let Some(f) = family {
        if et.is_some_and(|e| e != f) {
            return Err(bad("the prefixes and `ethertype` disagree", "drop `ethertype`"));
        }
        set(ETHERTYPE_SHIFT, 0xffff, f as u64);
    }
    Ok(Rule {
        ports: ports.filter(|p| p.len() > 1),
        mask,
        value,
        src_port: r.src_port,
        src,
        dst,
        vni: tunnel.0.then_some(r.vni),
        teid: tunnel.1.then_some(r.teid),
        chain: 0,
    })
}

struct ClassifyBuilder {
    rules: Arc<[Rule]>,
    default: Option<ChainId>,
    /// Ports in the configuration.
    ports: usize,
}

impl ClassifyBuilder {
    fn needs(&self) -> Needs {
        let bit = |shift: u32| self.rules.iter().any(|r| r.mask >> shift & 0xff != 0);
        Needs { dscp: bit(DSCP_SHIFT), dst_port: bit(L4_SHIFT) }
    }
}

impl StageBuilder for ClassifyBuilder {
    fn drop_reasons(&self) -> &'static [&'static str] {
        &[]
    }

    fn reads_headers(&self) -> bool {
        // By ingress port alone it needs no parse.
        self.rules.iter().any(|r| {
            r.mask & !(0xffff << PORT_SHIFT) != 0 || r.src_port.is_some() || r.src.is_some() || r.dst.is_some()
        })
    }

    fn offers(&self) -> Vec<nfv_core::plan::Offer> {
        nfv_core::plan::Offer::complete(
            "send each packet to its chain by its header fields",
            nfv_core::plan::Place::Xdp,
            "nothing",
        )
    }

    fn branches(&self) -> Vec<(ChainId, Option<Vec<PortId>>)> {
        let mut v: Vec<(ChainId, Option<Vec<PortId>>)> = Vec::new();
        let mut add = |c: ChainId, ports: Option<Vec<PortId>>| match v.iter_mut().find(|(t, _)| *t == c) {
            // Reached from several rules: from the union of their ports.
            Some((_, have)) => match (have.as_mut(), ports) {
                (Some(h), Some(p)) => {
                    h.extend(p);
                    h.sort_unstable();
                    h.dedup();
                }
                (_, _) => *have = None,
            },
            None => v.push((c, ports)),
        };
        // Ports a rule takes every packet of (it matches on nothing else):
        // rules after it and the default never see them.
        let mut taken: Vec<PortId> = Vec::new();
        for r in self.rules.iter() {
            let single = (r.mask & 0xffff << PORT_SHIFT != 0).then(|| vec![(r.value >> PORT_SHIFT & 0xffff) as PortId]);
            let ports = r.ports.clone().or(single);
            let rest = |ps: &[PortId]| ps.iter().copied().filter(|p| !taken.contains(p)).collect::<Vec<_>>();
            let left = match &ports {
                Some(ps) => Some(rest(ps)),
                None if taken.is_empty() => None,
                None => Some(rest(&(0..self.ports as PortId).collect::<Vec<_>>())),
            };
            add(r.chain, left);
            let only_ports =
                r.mask & !(0xffff << PORT_SHIFT) == 0 && r.src_port.is_none() && r.src.is_none() && r.dst.is_none();
            if only_ports {
                taken.extend(ports.into_iter().flatten());
            }
        }
        if let Some(d) = self.default {
            let left = (!taken.is_empty()).then(|| (0..self.ports as PortId).filter(|p| !taken.contains(p)).collect());
            add(d, left);
        }
        v
    }

    fn build(&self, _ctx: &BuildCtx<'_>) -> Box<dyn Stage> {
        let fast = self
            .rules
            .iter()
            .enumerate()
            .map(|(i, r)| Fast {
                rule: i as u16,
                mask: r.mask,
                value: r.value,
                chain: r.chain,
                simple: r.ports.is_none()
                    && r.src_port.is_none()
                    && r.src.is_none()
                    && r.dst.is_none()
                    && r.vni.is_none()
                    && r.teid.is_none(),
            })
            .chain(std::iter::once(Fast {
                rule: 0,
                mask: 0,
                value: 0,
                chain: self.default.unwrap_or(NO_CHAIN),
                simple: true,
            }))
            .collect();
        Box::new(Classify { rules: self.rules.clone(), fast, needs: self.needs() })
    }
}

/// What the per-packet loop compares: a rule's masked key, its chain, and
/// whether the masked compare says it all.
#[derive(Clone, Copy)]
struct Fast {
    mask: u64,
    value: u64,
    chain: ChainId,
    /// Its rule, for the fields the key does not hold.
    rule: u16,
    simple: bool,
}

/// No default: an unmatched packet goes on through the chain.
const NO_CHAIN: ChainId = ChainId::MAX;

/// A worker's classifier.
pub struct Classify {
    rules: Arc<[Rule]>,
    /// The rules' fast forms, then the default's (matching every key).
    fast: Box<[Fast]>,
    needs: Needs,
}

impl Classify {
    /// The key of a packet: its descriptor's fields, and the header
    /// fields some rule reads (`DSCP`, `DST_PORT`: [`Needs`], constant
    /// per instance so the per-packet code has no test for them).
    #[inline(always)]
    fn key<const DSCP: bool, const DST_PORT: bool>(p: &PacketMut<'_>) -> u64 {
        let m = p.meta();
        let mut k = (m.port as u64) << PORT_SHIFT | (m.ethertype as u64) << ETHERTYPE_SHIFT;
        if m.flags & flags::L3_OK == 0 {
            return k;
        }
        k |= (m.l4_proto as u64) << PROTO_SHIFT;
        let l3 = m.l3_off as usize;
        if DSCP {
            // RFC 2474: the six high bits of the TOS / Traffic Class octet.
            let d = p.data();
            let dscp = match m.ethertype {
                ethertype::IPV4 => Ipv4Packet::new_unchecked(&d[l3..]).tos() >> 2,
                _ => Ipv6Packet::new_unchecked(&d[l3..]).traffic_class() >> 2,
            };
            k |= (dscp as u64) << DSCP_SHIFT;
        }
        if DST_PORT && m.flags & flags::L4_OK != 0 && matches!(m.l4_proto, proto::TCP | proto::UDP) {
            k |= (UdpPacket::new_unchecked(&p.data()[m.l4_off as usize..]).dst_port() as u64) << L4_SHIFT;
        }
        k
    }

    /// The fields a key does not hold, for the rule that asks.
    #[cold]
    fn extra(&self, r: &Rule, d: &[u8], m: &nfv_core::Meta) -> bool {
        if r.ports.as_ref().is_some_and(|ps| !ps.contains(&m.port)) {
            return false;
        }
        let l4 = m.l4_off as usize;
        let l4_ok = m.flags & flags::L4_OK != 0;
        if let Some(sp) = r.src_port
            && !(l4_ok && d.get(l4..l4 + 2) == Some(&sp.to_be_bytes()[..]))
        {
            return false;
        }
        if r.src.is_some() || r.dst.is_some() {
            let l3 = &d[m.l3_off as usize..];
            let (s, t): (IpAddr, IpAddr) = match m.ethertype {
                ethertype::IPV4 => {
                    let ip = Ipv4Packet::new_unchecked(l3);
                    (ip.src_addr().into(), ip.dst_addr().into())
                }
                _ => {
                    let ip = Ipv6Packet::new_unchecked(l3);
                    (ip.src_addr().into(), ip.dst_addr().into())
                }
            };
            if r.src.is_some_and(|p| !within(s, p)) || r.dst.is_some_and(|p| !within(t, p)) {
                return false;
            }
        }
        // The tunnel header follows the 8-octet UDP header.
        let tunnel = d.get(l4 + 8..l4 + 16).filter(|_| l4_ok);
        if let Some(vni) = r.vni {
            // RFC 7348 5: flags with I set, VNI in octets 4..7.
            let Some(h) = tunnel else { return false };
            if h[0] & 0x08 == 0 || vni.is_some_and(|v| u32::from_be_bytes([0, h[4], h[5], h[6]]) != v) {
                return false;
            }
        }
        if let Some(teid) = r.teid {
            // TS 29.281 5.1: version 1, PT 1, message type 255 (G-PDU).
            let Some(h) = tunnel else { return false };
            if h[0] >> 4 != 0x3
                || h[1] != 255
                || teid.is_some_and(|t| u32::from_be_bytes([h[4], h[5], h[6], h[7]]) != t)
            {
                return false;
            }
        }
        true
    }
}

fn within(a: IpAddr, (net, len): (IpAddr, u8)) -> bool {
    match (a, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let mask = u32::MAX.checked_shl(32 - len as u32).unwrap_or(0);
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let mask = u128::MAX.checked_shl(128 - len as u32).unwrap_or(0);
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

impl Stage for Classify {
    fn process(&mut self, batch: &mut Batch, _ctx: &mut StageCtx<'_>) {
        match (self.needs.dscp, self.needs.dst_port) {
            (false, false) => self.split::<false, false>(batch),
            (false, true) => self.split::<false, true>(batch),
            (true, false) => self.split::<true, false>(batch),
            (true, true) => self.split::<true, true>(batch),
        }
    }
}

impl Classify {
    #[inline(always)]
    fn split<const DSCP: bool, const DST_PORT: bool>(&self, batch: &mut Batch) {
        batch.split(|p| {
            let k = Self::key::<DSCP, DST_PORT>(p);
            let matches = |f: &&Fast| {
                k & f.mask == f.value && (f.simple || self.extra(&self.rules[f.rule as usize], p.data(), p.meta()))
            };
            // The last entry (the default) matches every key.
            let chain = self.fast.iter().find(matches).map_or(NO_CHAIN, |f| f.chain);
            (chain != NO_CHAIN).then_some(chain)
        });
    }
}
