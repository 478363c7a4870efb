//! What a run measures: each case is a network function (or plain
//! forwarding) with the traffic that exercises it, nfv's chain for it
//! (with the XDP engine, nfv's default, and on AF_XDP alone) and the
//! baselines that do the same job on the same bed: DPDK testpmd's AF_XDP
//! PMD, the Linux kernel's IPv4 forwarding, nftables masquerade, filter
//! and DNAT, an ECMP route, the kernel's VXLAN device.
//!
//! Addresses: the generator is 10.0.0.1 (a VTEP's hosts 10.10.0.0/24, a
//! gNB 10.10.0.2), the far side 198.51.100.2 (s0's MAC as every next
//! hop); the DUT's own addresses are the shipped configurations'.

use std::fmt::Write as _;

use nfv_hw::blast::Gtpu;

use crate::bed::mac_text;
use crate::traffic::{Mix, RFC2544_SIZES};

/// What frames a search uses.
#[derive(Clone, Debug, PartialEq)]
pub enum Frames {
    /// One size, with FCS.
    Size(usize),
    /// A mix.
    Mix(Mix),
}

impl Frames {
    /// Its name in reports: the size, or the mix's name.
    pub fn name(&self) -> String {
        match self {
            Self::Size(s) => s.to_string(),
            Self::Mix(m) => m.name.to_string(),
        }
    }

    /// The mean frame size with FCS (line-rate arithmetic).
    pub fn mean(&self) -> f64 {
        match self {
            Self::Size(s) => *s as f64,
            Self::Mix(m) => m.mean(),
        }
    }

    /// Frame lengths without FCS, in sending order.
    pub fn lengths(&self) -> Vec<u16> {
        match self {
            Self::Size(s) => vec![(*s - 4) as u16],
            Self::Mix(m) => m.sequence().iter().map(|&s| (s - 4) as u16).collect(),
        }
    }
}

/// The generator's traffic for a case.
#[derive(Clone, Debug)]
pub struct Traffic {
    /// Ethernet destination: the DUT's d0, or another station's.
    pub dst_mac: DstMac,
    /// IPv4 source.
    pub src: [u8; 4],
    /// IPv4 destination and UDP port.
    pub dst: ([u8; 4], u16),
    /// Whether each flow has its own destination port too.
    pub vary_dport: bool,
    /// Uplink G-PDUs from a gNB.
    pub gtpu: Option<Gtpu>,
}

impl Traffic {
    /// What the generator sends, for a report on an external DUT (whose
    /// owner configures it to carry exactly this).
    pub fn describe(&self) -> String {
        let ip = |a: [u8; 4]| std::net::Ipv4Addr::from(a);
        let ports = if self.vary_dport { "source and destination ports" } else { "source ports" };
        let mac = match self.dst_mac {
            DstMac::D0 => "the DUT's MAC".to_string(),
            DstMac::Station(m) => format!("the station {}", mac_text(&m)),
        };
        let udp = format!("UDP/IPv4 {} to {}:{} to {mac}", ip(self.src), ip(self.dst.0), self.dst.1);
        match &self.gtpu {
            None => format!("{udp}, RFC 4814 pseudo-random {ports}"),
            Some(g) => format!(
                "G-PDUs (TEID {}) in {udp}, carrying UDP/IPv4 {} to {}:{}, RFC 4814 pseudo-random {ports}",
                g.teid,
                ip(g.ue),
                ip(g.data_network.0),
                g.data_network.1
            ),
        }
    }
}

/// Whose MAC the generator sends to.
#[derive(Clone, Copy, Debug)]
pub enum DstMac {
    /// The DUT's d0.
    D0,
    /// A station behind the DUT (a VTEP's remote host).
    Station([u8; 6]),
}

/// A device under test.
#[derive(Clone, Debug)]
pub struct Dut {
    /// Its name in reports (`nfv`, `kernel-nft-masquerade`).
    pub name: String,
    /// How it runs.
    pub kind: DutKind,
}

/// How a DUT runs.
#[derive(Clone, Debug)]
pub enum DutKind {
    /// No DUT: the receiver counts at d0, so the rate is the generator's
    /// own ceiling on this bed (what an inline DUT's cost is measured
    /// against).
    GeneratorAlone,
    /// `nfv run` on this configuration.
    Nfv(String),
    /// dpdk-testpmd, io forwarding between two AF_XDP PMD ports.
    Testpmd,
    /// The kernel, set up by these commands (in the DUT's namespace).
    Kernel(Vec<Vec<String>>),
    /// A device nfv bench does not run (`nfv bench --tx --rx`).
    External,
}

/// A case.
#[derive(Clone, Debug)]
pub struct Case {
    /// Its name (`fwd`, `nat`).
    pub name: &'static str,
    /// What it is, for the report.
    pub about: &'static str,
    /// The traffic.
    pub traffic: Traffic,
    /// Where the receiver finds stamps (the DUT may add or remove a tunnel).
    pub rx_offsets: Vec<u32>,
    /// Frames searched in a quick run and in a full one.
    pub frames_quick: Vec<Frames>,
    /// Frames of a full run.
    pub frames_full: Vec<Frames>,
    /// The generator alone first, nfv (with the XDP engine, then AF_XDP
    /// alone), then the baselines.
    pub duts: Vec<Dut>,
    /// The DUT nfv's figures are divided by (the like-for-like baseline).
    pub reference: &'static str,
}

/// The bed's neighbours, as the cases' configurations need them.
#[derive(Clone, Debug)]
pub struct Peers {
    /// The receiver's MAC (every next hop's).
    pub s0: [u8; 6],
}

/// The load balancer's backends (all at s0's MAC).
const BACKENDS: [&str; 3] = ["10.1.0.11", "10.1.0.12", "10.1.0.13"];
/// The VTEP's remote host.
const FAR_HOST: [u8; 6] = [2, 0, 0, 0, 0x0f, 1];
/// ACL rules the ACL case installs.
pub const ACL_RULES: usize = 1000;

fn sizes_all() -> Vec<Frames> {
    let mut v: Vec<Frames> = RFC2544_SIZES.iter().map(|&s| Frames::Size(s)).collect();
    v.push(Frames::Mix(Mix::imix_csit()));
    v
}

fn small_and_imix() -> Vec<Frames> {
    vec![Frames::Size(64), Frames::Mix(Mix::imix_csit())]
}

fn cmds(lines: &[&str]) -> Vec<Vec<String>> {
    lines.iter().map(|l| l.split_whitespace().map(str::to_string).collect()).collect()
}

/// Kernel setups start from this: addresses on both sides, forwarding on,
/// the far side's neighbour permanent, reverse-path filtering off.
fn kernel_forwarding(s0: &str, far: &str, extra: &[&str]) -> Vec<Vec<String>> {
    let mut c = cmds(&[
        "ethtool -K d0 gro on",
        "ip addr add 10.0.0.254/24 dev d0",
        "sysctl -qw net.ipv4.ip_forward=1 net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.d0.rp_filter=0 net.ipv4.conf.d1.rp_filter=0",
    ]);
    c.extend(cmds(&[far]));
    for l in extra {
        c.extend(cmds(&[&l.replace("S0", s0)]));
    }
    c
}

/// The commands that undo any kernel setup above (errors ignored).
pub fn kernel_teardown() -> Vec<Vec<String>> {
    cmds(&[
        "ip link del br0",
        "ip link del vx100",
        "nft flush ruleset",
        "conntrack -F",
        "sysctl -qw net.ipv4.ip_forward=0",
        "ip addr flush dev d0",
        "ip addr flush dev d1",
        "ip route flush table main",
        "ip neigh flush all",
        "ethtool -K d0 gro off",
    ])
}

fn run_section(offload: bool) -> String {
    format!("[run]\nstats-interval = 0\noffload = \"{}\"\n", if offload { "xdp" } else { "off" })
}

fn ports(d0_addr: Option<&str>, d1_addr: Option<&str>) -> String {
    let mut s = String::new();
    for (n, a) in [("d0", d0_addr), ("d1", d1_addr)] {
        let _ = write!(s, "\n[[ports]]\nname = \"{n}\"\nkind = \"af-xdp\"\ninterface = \"{n}\"\n");
        if let Some(a) = a {
            let _ = writeln!(s, "addresses = [\"{a}\"]");
        }
    }
    s
}

fn neighbour(ip: &str, port: &str, mac: &[u8; 6]) -> String {
    format!("\n[[neighbours]]\nip = \"{ip}\"\nport = \"{port}\"\nmac = \"{}\"\n", mac_text(mac))
}

fn chain(stages: &str) -> String {
    format!(
        "\n[[chains]]\nname = \"c\"\nstages = [\n{stages}\n]\n\n[[workers]]\ncore = 1\nrx = [\"d0\", \"d1\"]\nchain = \"c\"\n"
    )
}

/// The name of [`DutKind::GeneratorAlone`]'s rows.
pub const GENERATOR_ALONE: &str = "generator-alone";

/// The generator alone, then nfv on the case's chain, with the XDP engine
/// and without.
fn nfv(config: impl Fn(bool) -> String) -> Vec<Dut> {
    vec![
        Dut { name: GENERATOR_ALONE.into(), kind: DutKind::GeneratorAlone },
        Dut { name: "nfv".into(), kind: DutKind::Nfv(config(true)) },
        Dut { name: "nfv-afxdp".into(), kind: DutKind::Nfv(config(false)) },
    ]
}

/// The ACL case's rules in ClassBench's format (`@src/len dst/len
/// sport_lo : sport_hi dport_lo : dport_hi proto/mask flags/mask`):
/// pseudo-random TCP and UDP rules, none of which the generator's traffic
/// (10.0.0.1 to 198.51.100.2) matches, so every packet is looked up
/// against all of them and passes (the default permits).
pub fn acl_rules(n: usize, seed: u64) -> String {
    let mut x = seed | 1;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut out = String::new();
    for _ in 0..n {
        // Sources in 172.16.0.0/12, destinations in 203.0.113.0/24's
        // neighbourhood (192.0.0.0/3 less the traffic's 198.51.100.0/24).
        let len_s = [16, 20, 24, 28, 32][(next() % 5) as usize];
        let len_d = [24, 28, 32][(next() % 3) as usize];
        let src = 0xac10_0000u32 | (next() as u32 & 0x000f_ffff);
        let mut dst = 0xc000_0000u32 | (next() as u32 & 0x1fff_ffff);
        if dst >> 8 == 0x00c6_3364 {
            dst ^= 0x0100_0000;
        }
        let mask = |l: u32| if l == 0 { 0 } else { u32::MAX << (32 - l) };
        let ip = |a: u32| std::net::Ipv4Addr::from(a).to_string();
        let (sp_lo, sp_hi) = if next() % 2 == 0 {
            (0, 65535)
        } else {
            let p = (next() % 64512 + 1024) as u16;
            (p, p)
        };
        let dp_lo = (next() % 60000) as u16;
        let dp_hi = dp_lo.saturating_add((next() % 1024) as u16);
        let proto = if next() % 2 == 0 { 6 } else { 17 };
        let _ = writeln!(
            out,
            "@{}/{len_s}\t{}/{len_d}\t{sp_lo} : {sp_hi}\t{dp_lo} : {dp_hi}\t0x{proto:02X}/0xFF\t0x0000/0x0000\t",
            ip(src & mask(len_s)),
            ip(dst & mask(len_d)),
        );
    }
    out
}

/// The same rules as one nftables interval set of concatenations (the
/// fastest form nftables has for a rule set: one lookup, not a rule
/// walk) dropped in the forward hook.
pub fn acl_nft(rules: &str) -> String {
    let mut elems = Vec::new();
    for l in rules.lines().filter(|l| !l.trim().is_empty()) {
        let f: Vec<&str> = l.trim_start_matches('@').split('\t').collect();
        let range = |r: &str| {
            let (a, b) = r.split_once(':').unwrap_or((r, r));
            let (a, b) = (a.trim(), b.trim());
            if a == b { a.to_string() } else { format!("{a}-{b}") }
        };
        let proto = u8::from_str_radix(f[4].split('/').next().unwrap_or("0").trim_start_matches("0x"), 16).unwrap_or(0);
        elems.push(format!("{} . {} . {proto} . {} . {}", f[0], f[1], range(f[2]), range(f[3])));
    }
    format!(
        "table ip acl {{\n  set rules {{\n    type ipv4_addr . ipv4_addr . inet_proto . inet_service . inet_service\n    flags interval\n    elements = {{ {} }}\n  }}\n  chain forward_filter {{\n    type filter hook forward priority 0; policy accept;\n    ip saddr . ip daddr . meta l4proto . th sport . th dport @rules drop\n  }}\n}}\n",
        elems.join(",\n      ")
    )
}

/// Every case, for a bed whose receiver is at `peers.s0`; `work` is where
/// the ACL case's rule files go.
pub fn all(peers: &Peers, work: &std::path::Path) -> Vec<Case> {
    let s0 = mac_text(&peers.s0);
    let far = format!("ip neigh replace 198.51.100.2 lladdr {s0} dev d1 nud permanent");
    let d1_far = |extra: &[&str]| {
        let mut e = vec!["ip addr add 198.51.100.1/24 dev d1"];
        e.extend_from_slice(extra);
        kernel_forwarding(&s0, &far, &e)
    };
    let plain =
        Traffic { dst_mac: DstMac::D0, src: [10, 0, 0, 1], dst: ([198, 51, 100, 2], 9), vary_dport: true, gtpu: None };
    let acl_file = work.join("acl-rules");
    let nft_file = work.join("acl.nft");
    let rules = acl_rules(ACL_RULES, 2544);
    let _ = std::fs::write(&acl_file, &rules);
    let _ = std::fs::write(&nft_file, acl_nft(&rules));
    let patch = "    { kind = \"l2-patch\", pairs = [[\"d0\", \"d1\"]] },";
    let mut fwd = nfv(|o| format!("{}{}{}", run_section(o), ports(None, None), chain(patch)));
    fwd.push(Dut { name: "testpmd-afxdp".into(), kind: DutKind::Testpmd });
    fwd.push(Dut { name: "kernel-forwarding".into(), kind: DutKind::Kernel(d1_far(&[])) });

    let nat_stages = "    { kind = \"ttl-decrement\" },\n    { kind = \"nat44\", inside = [\"d0\"], outside = \"d1\", pool = [\"198.51.100.10\"],\n      inside-prefixes = [\"10.0.0.0/24\"], outside-gateway = \"198.51.100.2\" },";
    let mut nat = nfv(|o| {
        format!(
            "{}{}{}{}",
            run_section(o),
            ports(Some("10.0.0.254/24"), Some("198.51.100.1/24")),
            neighbour("198.51.100.2", "d1", &peers.s0),
            chain(nat_stages)
        )
    });
    nat.push(Dut {
        name: "kernel-nft-masquerade".into(),
        kind: DutKind::Kernel(d1_far(&[
            "nft add table ip nat",
            "nft add chain ip nat post { type nat hook postrouting priority 100 ; }",
            "nft add rule ip nat post oifname d1 masquerade",
        ])),
    });

    let acl_stages = format!(
        "    {{ kind = \"acl\", default = \"permit\", rules-file = \"{}\", rules-file-action = \"deny\", watch-rules-file = false }},\n{patch}",
        acl_file.display()
    );
    let mut acl = nfv(|o| format!("{}{}{}", run_section(o), ports(None, None), chain(&acl_stages)));
    let nft = nft_file.display().to_string();
    acl.push(Dut { name: "kernel-nft-filter".into(), kind: DutKind::Kernel(d1_far(&[&format!("nft -f {nft}")])) });

    let mut backend_neighbours = String::new();
    let mut backend_cmds = vec!["ip addr add 10.1.0.1/24 dev d1".to_string()];
    for b in BACKENDS {
        backend_neighbours += &neighbour(b, "d1", &peers.s0);
        backend_cmds.push(format!("ip neigh replace {b} lladdr S0 dev d1 nud permanent"));
    }
    let lb_stages = format!(
        "    {{ kind = \"lb\", clients = [\"d0\"], backends-port = \"d1\", source-address = \"10.1.0.1\",\n      vips = [{{ vip = \"192.0.2.10:53\", proto = \"udp\", mode = \"dsr\",\n               backends = [{}] }}] }},",
        BACKENDS.iter().map(|b| format!("{{ addr = \"{b}\" }}")).collect::<Vec<_>>().join(", ")
    );
    let mut lb = nfv(|o| {
        format!(
            "{}{}{}{}",
            run_section(o),
            ports(Some("10.0.0.254/24"), Some("10.1.0.1/24")),
            backend_neighbours,
            chain(&lb_stages)
        )
    });
    let with_backends = |extra: &[String]| {
        let mut e: Vec<&str> = backend_cmds.iter().map(String::as_str).collect();
        e.extend(extra.iter().map(String::as_str));
        kernel_forwarding(&s0, &far.replace("198.51.100.2", "10.1.0.11"), &e)
    };
    lb.push(Dut {
        name: "kernel-nft-dnat".into(),
        kind: DutKind::Kernel(with_backends(&[
            "nft add table ip lb".into(),
            "nft add chain ip lb pre { type nat hook prerouting priority dstnat ; }".into(),
            format!(
                "nft add rule ip lb pre ip daddr 192.0.2.10 udp dport 53 dnat to numgen random mod 3 map {{ 0 : {}, 1 : {}, 2 : {} }}",
                BACKENDS[0], BACKENDS[1], BACKENDS[2]
            ),
        ])),
    });
    lb.push(Dut {
        name: "kernel-ecmp-route".into(),
        kind: DutKind::Kernel(with_backends(&[
            "sysctl -qw net.ipv4.fib_multipath_hash_policy=1".into(),
            format!(
                "ip route add 192.0.2.10/32 nexthop via {} dev d1 nexthop via {} dev d1 nexthop via {} dev d1",
                BACKENDS[0], BACKENDS[1], BACKENDS[2]
            ),
        ])),
    });

    let vtep_stages = format!(
        "    {{ kind = \"vtep\", underlay = \"d1\", local-ip = \"192.168.0.1\", protocol = \"vxlan\", mtu = 1600,\n      bridge-domains = [{{ vni = 100, ports = [\"d0\"], flood = [\"192.168.0.2\"] }}],\n      static-macs = [{{ vni = 100, mac = \"{}\", remote = \"192.168.0.2\" }}] }},",
        mac_text(&FAR_HOST)
    );
    let mut vtep = nfv(|o| {
        format!(
            "{}{}{}{}",
            run_section(o),
            ports(None, Some("192.168.0.1/24")),
            neighbour("192.168.0.2", "d1", &peers.s0),
            chain(&vtep_stages)
        )
    });
    vtep.push(Dut {
        name: "kernel-vxlan".into(),
        kind: DutKind::Kernel(cmds(&[
            "ethtool -K d0 gro on",
            "ip addr add 192.168.0.1/24 dev d1",
            &format!("ip neigh replace 192.168.0.2 lladdr {s0} dev d1 nud permanent"),
            "ip link add vx100 type vxlan id 100 local 192.168.0.1 dstport 4789 dev d1",
            "ip link add br0 type bridge",
            "ip link set vx100 master br0",
            "ip link set d0 master br0",
            &format!("bridge fdb append {} dev vx100 dst 192.168.0.2", mac_text(&FAR_HOST)),
            "ip link set vx100 up",
            "ip link set br0 up",
        ])),
    });

    let upf_stages = "    { kind = \"upf\", n3 = \"d0\", n3-address = \"10.10.0.1\", n6 = \"d1\", n6-gateway = \"198.51.100.2\",\n      sessions = [{ seid = 1, ue = \"10.45.0.7\", uplink-teid = 4660, gnb = \"10.10.0.2\", downlink-teid = 43981, qfi = 9 }] },";
    let upf = nfv(|o| {
        format!(
            "{}{}{}{}",
            run_section(o),
            ports(Some("10.10.0.1/24"), Some("198.51.100.1/24")),
            neighbour("198.51.100.2", "d1", &peers.s0),
            chain(upf_stages)
        )
    });

    vec![
        Case {
            name: "fwd",
            about: "plain forwarding d0 to d1: nfv's l2-patch cross-connect (testpmd io's job), the kernel's IPv4 forwarding (a route lookup, TTL and the neighbour's MAC: more work)",
            traffic: plain.clone(),
            rx_offsets: vec![42],
            frames_quick: vec![Frames::Size(64)],
            frames_full: sizes_all(),
            duts: fwd,
            reference: "testpmd-afxdp",
        },
        Case {
            name: "nat",
            about: "NAT44 of UDP flows from 10.0.0.1 to 198.51.100.2 (nfv nat44 behind ttl-decrement; nftables masquerade with conntrack)",
            traffic: plain.clone(),
            rx_offsets: vec![42],
            frames_quick: vec![Frames::Size(64)],
            frames_full: small_and_imix(),
            duts: nat,
            reference: "kernel-nft-masquerade",
        },
        Case {
            name: "acl",
            about: "a 1000-rule stateless filter (ClassBench format, every rule missed, the default permits): nfv acl then l2-patch; nftables one concatenated interval set in the forward hook",
            traffic: plain.clone(),
            rx_offsets: vec![42],
            frames_quick: vec![Frames::Size(64)],
            frames_full: small_and_imix(),
            duts: acl,
            reference: "kernel-nft-filter",
        },
        Case {
            name: "lb",
            about: "a UDP VIP 192.0.2.10:53 over three backends: nfv lb in direct server return; nftables DNAT as kube-proxy does it (a random backend per new flow, conntrack after); an ECMP route with L4 hashing (DSR's kernel twin)",
            traffic: Traffic { dst: ([192, 0, 2, 10], 53), vary_dport: false, ..plain.clone() },
            rx_offsets: vec![42],
            frames_quick: vec![Frames::Size(64)],
            frames_full: small_and_imix(),
            duts: lb,
            reference: "kernel-nft-dnat",
        },
        Case {
            name: "vtep",
            about: "a VXLAN VTEP (VNI 100) encapsulating toward the remote VTEP 192.168.0.2: nfv vtep; the kernel's bridge and vxlan device",
            traffic: Traffic {
                dst_mac: DstMac::Station(FAR_HOST),
                src: [10, 10, 0, 1],
                dst: ([10, 10, 0, 2], 9),
                vary_dport: true,
                gtpu: None,
            },
            rx_offsets: vec![42 + 50],
            frames_quick: vec![Frames::Size(64)],
            frames_full: small_and_imix(),
            duts: vtep,
            reference: "kernel-vxlan",
        },
        Case {
            name: "upf",
            about: "a UPF's uplink: G-PDUs (TEID 4660) from a gNB decapsulated to N6; this kernel has no GTP-U device, so nfv on AF_XDP alone is the reference",
            traffic: Traffic {
                dst_mac: DstMac::D0,
                src: [10, 10, 0, 2],
                dst: ([10, 10, 0, 1], 2152),
                vary_dport: true,
                gtpu: Some(Gtpu { teid: 4660, ue: [10, 45, 0, 7], data_network: ([198, 51, 100, 2], 9) }),
            },
            rx_offsets: vec![42],
            frames_quick: vec![Frames::Size(128)],
            frames_full: vec![Frames::Size(128), Frames::Size(512), Frames::Size(1518)],
            duts: upf,
            reference: "nfv-afxdp",
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acl_rules_miss_the_traffic_and_render_for_nftables() {
        let rules = acl_rules(200, 7);
        assert_eq!(rules.lines().count(), 200);
        for l in rules.lines() {
            let f: Vec<&str> = l.trim_start_matches('@').split('\t').collect();
            let (dst, len) = f[1].split_once('/').unwrap();
            let dst: std::net::Ipv4Addr = dst.parse().unwrap();
            let len: u32 = len.parse().unwrap();
            let m = u32::MAX << (32 - len);
            assert_ne!(u32::from(dst) & m, u32::from(std::net::Ipv4Addr::new(198, 51, 100, 2)) & m, "{l}");
        }
        let nft = acl_nft(&rules);
        assert_eq!(nft.matches(" . ").count(), 200 * 4 + 8, "four joins per element, the type's and the rule's");
    }
}
