//! The `vtep` stage's TOML parameters, checked and resolved into the
//! immutable [`Vtep`] description every worker's instance shares.

use std::net::IpAddr;

use nfv_core::config::{Diagnostic, Params, parse_mac};
use nfv_core::published::Published;
use nfv_core::{BuildEnv, PortId};
use rustc_hash::FxHashMap;
use serde::Deserialize;

use crate::wire::{Tunnel, encode_option};

/// IANA port for VXLAN (RFC 7348 section 5).
pub const VXLAN_PORT: u16 = 4789;
/// IANA port for Geneve (RFC 8926 section 3.3).
pub const GENEVE_PORT: u16 = 6081;

#[derive(Deserialize, Clone, Copy, Default, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
enum Protocol {
    #[default]
    Vxlan,
    Geneve,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct VtepParams {
    underlay: String,
    local_ip: IpAddr,
    #[serde(default)]
    protocol: Protocol,
    udp_port: Option<u16>,
    #[serde(default = "src_port_range")]
    src_port_range: [u16; 2],
    #[serde(default = "mtu")]
    mtu: u16,
    gateway: Option<IpAddr>,
    #[serde(default = "ttl")]
    ttl: u8,
    #[serde(default = "fdb_size")]
    fdb_size: usize,
    #[serde(default = "fdb_ageing")]
    fdb_ageing: f64,
    #[serde(default = "yes")]
    learn: bool,
    #[serde(default)]
    allow_inner_vlan: bool,
    #[serde(default)]
    accept_zero_udp6_checksum: bool,
    #[serde(default)]
    zero_udp6_checksum_tx: bool,
    bridge_domains: Vec<BridgeDomainParams>,
    #[serde(default)]
    static_macs: Vec<StaticMacParams>,
    #[serde(default)]
    geneve_options: Vec<OptionParams>,
    #[serde(default)]
    known_geneve_options: Vec<KnownOptionParams>,
    #[serde(default)]
    too_big_reply_from: Vec<IpAddr>,
    #[serde(default)]
    arp_suppression: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct BridgeDomainParams {
    vni: u32,
    ports: Vec<String>,
    #[serde(default)]
    flood: Vec<IpAddr>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct StaticMacParams {
    vni: u32,
    mac: String,
    port: Option<String>,
    remote: Option<IpAddr>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct OptionParams {
    class: u16,
    #[serde(rename = "type")]
    kind: u8,
    #[serde(default)]
    data: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct KnownOptionParams {
    class: u16,
    #[serde(rename = "type")]
    kind: u8,
}

fn src_port_range() -> [u16; 2] {
    // RFC 7348 section 5: "the dynamic/private port range 49152-65535".
    [49152, 65535]
}
fn mtu() -> u16 {
    1500
}
fn ttl() -> u8 {
    64
}
fn fdb_size() -> usize {
    4096
}
fn fdb_ageing() -> f64 {
    300.0
}
fn yes() -> bool {
    true
}

/// A bridge domain: one VNI and its local ports (its flood list is in
/// [`Statics`]).
#[derive(Debug)]
pub struct BridgeDomain {
    /// Virtual network identifier.
    pub vni: u32,
    /// Local ports of the domain.
    pub ports: Vec<PortId>,
}

impl Statics {
    /// `statics version 3: 2 static MACs, flood lists 2, 0`.
    pub fn summary(&self) -> String {
        let flood: Vec<String> = self.flood.iter().map(|f| f.len().to_string()).collect();
        format!(
            "statics version {}: {} static MACs, flood VTEPs per domain [{}]",
            self.version,
            self.macs.len(),
            flood.join(", ")
        )
    }
}

/// What of a VTEP changes while it runs (a reload, `nfv ctl vtep`): the
/// static FDB entries and each bridge domain's flood list.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Statics {
    /// Remote VTEPs that get broadcast, unknown-unicast and multicast,
    /// per bridge domain (in [`Vtep::domains`] order).
    pub flood: Vec<Vec<IpAddr>>,
    /// Static FDB entries: VNI, MAC, where.
    pub macs: Vec<(u32, [u8; 6], StaticDest)>,
    /// Replaced this many times.
    pub version: u64,
}

/// Where a static MAC lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StaticDest {
    /// Behind a local port.
    Local(PortId),
    /// Behind a remote VTEP.
    Remote(IpAddr),
}

/// A checked VTEP description, shared by every worker's instance.
#[derive(Debug)]
pub struct Vtep {
    /// Tunnel protocol.
    pub tunnel: Tunnel,
    /// Port facing the underlay.
    pub underlay: PortId,
    /// Our underlay address (source of encapsulated packets).
    pub local_ip: IpAddr,
    /// UDP destination port we send to and listen on.
    pub udp_port: u16,
    /// Outer UDP source port range (from the inner flow hash).
    pub src_ports: (u16, u16),
    /// Largest outer IP packet the underlay carries.
    pub mtu: u16,
    /// Next hop for every remote VTEP, when they are not on-link.
    pub gateway: Option<IpAddr>,
    /// Outer TTL / hop limit.
    pub ttl: u8,
    /// Learned-entry bound per worker.
    pub fdb_size: usize,
    /// Seconds without traffic before a learned entry goes.
    pub fdb_ageing: f64,
    /// Learn from the data plane.
    pub learn: bool,
    /// Accept 802.1Q-tagged inner frames.
    pub allow_inner_vlan: bool,
    /// Accept a zero UDP checksum over IPv6 (RFC 6935 tunnels).
    pub accept_zero_udp6_checksum: bool,
    /// Send a zero UDP checksum over IPv6 (RFC 6935 section 5, RFC 6936):
    /// saves the whole-frame sum, for peers set to accept it (the Linux
    /// vxlan device's `udp6zerocsumrx`).
    pub zero_udp6_checksum_tx: bool,
    /// Bridge domains.
    pub domains: Vec<BridgeDomain>,
    /// Bridge domain of each local port, by PortId.
    pub port_domain: Vec<Option<usize>>,
    /// Bridge domain of each VNI.
    pub vni_domain: FxHashMap<u32, usize>,
    /// Static FDB entries and flood lists, replaced while running.
    pub statics: std::sync::Arc<Published<Statics>>,
    /// Held from reading the running statics to publishing the next: a
    /// reload and an `nfv ctl vtep` command do not both build on one.
    pub update: std::sync::Mutex<()>,
    /// Geneve options we add, encoded.
    pub geneve_options: Vec<u8>,
    /// Critical Geneve options we understand (class, type).
    pub known_options: Vec<(u16, u8)>,
    /// Port names, for reports.
    pub port_names: Vec<String>,
    /// Source of ICMP "fragmentation needed" answers to inner IPv4 hosts
    /// whose packet would exceed the underlay MTU.
    pub too_big_v4: Option<std::net::Ipv4Addr>,
    /// Source of ICMPv6 "packet too big" answers to inner IPv6 hosts.
    pub too_big_v6: Option<std::net::Ipv6Addr>,
    /// Answer ARP requests for inner addresses we have seen, instead of
    /// flooding them through the overlay.
    pub arp_suppression: bool,
}

impl Vtep {
    /// The bridge domain a flood VTEP `ip` joins for `vni`, or (what is
    /// wrong, what to write).
    pub fn flood_target(&self, vni: u32, ip: IpAddr) -> Result<usize, (String, String)> {
        let d = self.domain(vni)?;
        if ip.is_ipv4() != self.local_ip.is_ipv4() {
            return Err((
                format!("flood VTEP {ip} is not of the local-ip's address family"),
                "an IPv4 VTEP floods to IPv4 VTEPs".into(),
            ));
        }
        Ok(d)
    }

    /// A static FDB entry: `mac` in `vni` behind local `port` or `remote`
    /// VTEP (exactly one), or (what is wrong, what to write).
    pub fn static_mac(
        &self,
        vni: u32,
        mac: &str,
        port: Option<&str>,
        remote: Option<IpAddr>,
    ) -> Result<(u32, [u8; 6], StaticDest), (String, String)> {
        let mac = parse_mac(mac).map_err(|e| (e, "write MACs as 02:00:00:00:00:01".into()))?;
        self.domain(vni)?;
        let dest = match (port, remote) {
            (Some(name), None) => match self.port_names.iter().position(|p| p == name) {
                Some(pid) => StaticDest::Local(pid as PortId),
                None => {
                    return Err((
                        format!("no port named `{name}`"),
                        format!("known ports: {}", self.port_names.join(", ")),
                    ));
                }
            },
            (None, Some(ip)) if ip.is_ipv4() == self.local_ip.is_ipv4() => StaticDest::Remote(ip),
            _ => {
                return Err((
                    format!(
                        "static MAC {} needs exactly one of `port` or `remote` (same family as local-ip)",
                        nfv_core::config::mac_text(&mac)
                    ),
                    "write { vni = 100, mac = \"...\", remote = \"192.0.2.2\" }".into(),
                ));
            }
        };
        Ok((vni, mac, dest))
    }

    fn domain(&self, vni: u32) -> Result<usize, (String, String)> {
        self.vni_domain.get(&vni).copied().ok_or_else(|| {
            let known: Vec<String> = self.domains.iter().map(|d| d.vni.to_string()).collect();
            (format!("VNI {vni} has no bridge domain"), format!("bridge domains: {}", known.join(", ")))
        })
    }

    /// Publishes the statics `f` makes of the running ones: the one way
    /// they change (reloads and `nfv ctl vtep`). A line on what runs then;
    /// `Ok(None)` when nothing changed; `f`'s refusal as it is.
    pub fn change(&self, f: impl FnOnce(&mut Statics) -> Result<(), String>) -> Result<Option<String>, String> {
        let _one = self.update.lock().expect("vtep update lock");
        let old = self.statics.load();
        let mut next = Statics::clone(&old);
        f(&mut next)?;
        next.version = old.version;
        if next == *old {
            return Ok(None);
        }
        next.version += 1;
        let line = next.summary();
        self.statics.publish(next);
        Ok(Some(line))
    }

    /// Bytes added in front of an inner frame: outer Ethernet, IP, UDP and
    /// the tunnel header.
    pub fn overhead(&self) -> usize {
        14 + self.ip_header_len() + 8 + self.tunnel.header_len(self.geneve_options.len())
    }

    /// Outer IP header length.
    pub fn ip_header_len(&self) -> usize {
        if self.local_ip.is_ipv4() { 20 } else { 40 }
    }

    /// The next hop toward `remote`.
    pub fn next_hop(&self, remote: IpAddr) -> IpAddr {
        self.gateway.unwrap_or(remote)
    }
}

pub(crate) fn resolve(p: VtepParams, params: &Params<'_>, env: &BuildEnv<'_>) -> Result<Vtep, Vec<Diagnostic>> {
    let mut errors = Vec::new();
    let mut err = |key: &str, msg: String, label: &str, help: String| {
        errors.push(params.error(key, msg, label).help(help));
    };
    let known_ports = env.ports.join(", ");
    let underlay = env.port_id(&p.underlay);
    if underlay.is_none() {
        err(
            "underlay",
            format!("no port named `{}`", p.underlay),
            "unknown port",
            format!("known ports: {known_ports}"),
        );
    }
    let v4 = p.local_ip.is_ipv4();
    let family = |ip: &IpAddr| ip.is_ipv4() == v4;
    let mut port_domain: Vec<Option<usize>> = vec![None; env.ports.len()];
    let mut vni_domain = FxHashMap::default();
    let mut domains = Vec::new();
    for (i, bd) in p.bridge_domains.iter().enumerate() {
        if bd.vni >= 1 << 24 {
            err(
                "bridge-domains",
                format!("VNI {} does not fit in 24 bits", bd.vni),
                "bad VNI",
                "use 0..16777215".into(),
            );
        }
        if vni_domain.insert(bd.vni, i).is_some() {
            err("bridge-domains", format!("VNI {} appears twice", bd.vni), "duplicate VNI", "one entry per VNI".into());
        }
        let mut ports = Vec::new();
        for name in &bd.ports {
            match env.port_id(name) {
                Some(pid) if Some(pid) == underlay => err(
                    "bridge-domains",
                    format!("port `{name}` is the underlay and cannot be in a bridge domain"),
                    "underlay port",
                    "list the host-facing ports in `ports`".into(),
                ),
                Some(pid) if port_domain[pid as usize].is_some() => err(
                    "bridge-domains",
                    format!("port `{name}` is in two bridge domains"),
                    "port reused",
                    "a local port belongs to one VNI".into(),
                ),
                Some(pid) => {
                    port_domain[pid as usize] = Some(i);
                    ports.push(pid);
                }
                None => err(
                    "bridge-domains",
                    format!("no port named `{name}`"),
                    "unknown port",
                    format!("known ports: {known_ports}"),
                ),
            }
        }
        domains.push(BridgeDomain { vni: bd.vni, ports });
    }
    if p.bridge_domains.is_empty() {
        err("bridge-domains", "no bridge domain".into(), "empty", "add { vni = 100, ports = [\"host0\"] }".into());
    }
    let [lo, hi] = p.src_port_range;
    if lo > hi || lo == 0 {
        err(
            "src-port-range",
            format!("[{lo}, {hi}] is not a port range"),
            "bad range",
            "default [49152, 65535]".into(),
        );
    }
    if let Some(g) = p.gateway.filter(|g| !family(g)) {
        err("gateway", format!("gateway {g} is not of the local-ip's family"), "mixed families", String::new());
    }
    if p.fdb_ageing.is_nan() || p.fdb_ageing <= 0.0 {
        err("fdb-ageing", "fdb-ageing must be positive seconds".into(), "not positive", "default 300".into());
    }
    // A tunnel packet of the whole MTU, with its Ethernet header, must fit
    // a frame (no multi-buffer AF_XDP): a larger MTU would be accepted here
    // and every packet past the frame lost in the kernel's copy.
    let largest = nfv_core::frame::MAX_DATA - 14;
    if p.mtu < 576 {
        err(
            "mtu",
            format!("underlay MTU {} is below 576", p.mtu),
            "too small",
            "the underlay IP MTU, usually 1500".into(),
        );
    } else if p.mtu as usize > largest {
        err(
            "mtu",
            format!(
                "underlay MTU {} does not fit a frame: frames hold {} octets of data",
                p.mtu,
                nfv_core::frame::MAX_DATA
            ),
            "too big",
            format!(
                "at most mtu = {largest} (the frame's {} octets less the Ethernet header); jumbo frames are not supported",
                nfv_core::frame::MAX_DATA
            ),
        );
    }
    let tunnel = match p.protocol {
        Protocol::Vxlan => Tunnel::Vxlan,
        Protocol::Geneve => Tunnel::Geneve,
    };
    let mut geneve_options = Vec::new();
    for o in &p.geneve_options {
        match hex(&o.data) {
            Some(d) if d.len() <= 124 => encode_option(&mut geneve_options, o.class, o.kind, &d),
            _ => err(
                "geneve-options",
                format!("option data `{}` is not hex of at most 124 bytes", o.data),
                "bad option data",
                "write data = \"0a0b0c0d\"".into(),
            ),
        }
    }
    if geneve_options.len() > 252 {
        err("geneve-options", "options exceed 252 bytes".into(), "too long", "RFC 8926: 6-bit length in words".into());
    }
    if tunnel == Tunnel::Vxlan && !geneve_options.is_empty() {
        err("geneve-options", "VXLAN carries no options".into(), "not geneve", "set protocol = \"geneve\"".into());
    }
    let (mut too_big_v4, mut too_big_v6) = (None, None);
    for ip in &p.too_big_reply_from {
        match ip {
            IpAddr::V4(a) if too_big_v4.is_none() => too_big_v4 = Some(*a),
            IpAddr::V6(a) if too_big_v6.is_none() => too_big_v6 = Some(*a),
            _ => err(
                "too-big-reply-from",
                format!("{ip}: at most one address per family"),
                "second address",
                "one IPv4 and one IPv6 source".into(),
            ),
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let mut v = Vtep {
        tunnel,
        underlay: underlay.expect("checked"),
        local_ip: p.local_ip,
        udp_port: p.udp_port.unwrap_or(if tunnel == Tunnel::Vxlan { VXLAN_PORT } else { GENEVE_PORT }),
        src_ports: (lo, hi),
        mtu: p.mtu,
        gateway: p.gateway,
        ttl: p.ttl,
        fdb_size: p.fdb_size,
        fdb_ageing: p.fdb_ageing,
        learn: p.learn,
        allow_inner_vlan: p.allow_inner_vlan,
        accept_zero_udp6_checksum: p.accept_zero_udp6_checksum,
        zero_udp6_checksum_tx: p.zero_udp6_checksum_tx,
        domains,
        port_domain,
        vni_domain,
        statics: Published::new(Statics::default()),
        update: Default::default(),
        geneve_options,
        known_options: p.known_geneve_options.iter().map(|k| (k.class, k.kind)).collect(),
        port_names: env.ports.to_vec(),
        too_big_v4,
        too_big_v6,
        arp_suppression: p.arp_suppression,
    };
    // The live part, checked as `nfv ctl vtep` checks it.
    let mut statics = Statics { flood: vec![Vec::new(); v.domains.len()], ..Statics::default() };
    let mut errors = Vec::new();
    for bd in &p.bridge_domains {
        for &ip in &bd.flood {
            match v.flood_target(bd.vni, ip) {
                Ok(d) => statics.flood[d].push(ip),
                Err((m, h)) => errors.push(params.error("bridge-domains", m, "here").help(h)),
            }
        }
    }
    for s in &p.static_macs {
        match v.static_mac(s.vni, &s.mac, s.port.as_deref(), s.remote) {
            Ok(entry) => statics.macs.push(entry),
            Err((m, h)) => errors.push(params.error("static-macs", m, "here").help(h)),
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    v.statics = Published::new(statics);
    Ok(v)
}

fn hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok()).collect()
}
