//! `classify`: each field a rule may match, first match wins, the
//! default, a packet no rule takes going on; frames built by etherparse,
//! tunnel headers written as RFC 7348 and TS 29.281 lay them out.

use etherparse::PacketBuilder;
use nfv_core::packet::VerdictKind;
use nfv_core::{BuildCtx, StageRegistry, config};
use nfv_testkit::FrameRunner;

const HEAD: &str = "[[ports]]\nname = \"a\"\nkind = \"generator\"\n\n[[ports]]\nname = \"b\"\nkind = \"generator\"\n\n";

/// Chains `c1`..`c5` exist; `rules` classify at the entry. Returns, per
/// frame arriving on `port`, the chain it was sent to (`None`: on).
fn classify(rules: &str, port: u16, frames: &[Vec<u8>]) -> Vec<Option<u16>> {
    let mut src = format!(
        "{HEAD}[[chains]]\nname = \"entry\"\nstages = [{{ kind = \"classify\", {rules} }}, {{ kind = \"counter\" }}]\n"
    );
    for c in 1..=5 {
        src += &format!("\n[[chains]]\nname = \"c{c}\"\nstages = []\n");
    }
    src += "\n[[workers]]\nrx = [\"a\", \"b\"]\nchain = \"entry\"\n";
    let mut r = StageRegistry::new();
    nfv_basic::register(&mut r);
    let cfg = config::load("c.toml", &src, &r).unwrap_or_else(|e| panic!("{}", e.render()));
    let ctx = BuildCtx {
        worker: 0,
        port_macs: &[[2, 0, 0, 0, 0, 1]; 2],
        headers_read_later: false,
        chain_rank: 0,
        chain_workers: 1,
    };
    let mut stage = cfg.chains[0].stages[0].builder.build(&ctx);
    let mut out = FrameRunner::new([]).run_batch(&mut *stage, port, frames.iter().map(|f| &f[..]));
    out.sort_by_key(|o| o.fed);
    out.into_iter()
        .map(|o| match o.verdict {
            VerdictKind::Goto(c) => Some(c),
            VerdictKind::Next => None,
            other => panic!("{other:?}"),
        })
        .collect()
}

fn udp4(src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::new();
    PacketBuilder::ethernet2([2, 0, 0, 0, 0, 9], [2, 0, 0, 0, 0, 1])
        .ipv4(src, dst, 64)
        .udp(sport, dport)
        .write(&mut f, payload)
        .unwrap();
    f
}

fn tcp4(dport: u16, tos: u8) -> Vec<u8> {
    let mut f = Vec::new();
    let mut ip = etherparse::Ipv4Header::new(20, 64, etherparse::IpNumber::TCP, [10, 0, 0, 1], [10, 0, 0, 2]).unwrap();
    ip.dscp = etherparse::IpDscp::try_new(tos >> 2).unwrap();
    PacketBuilder::ethernet2([2, 0, 0, 0, 0, 9], [2, 0, 0, 0, 0, 1])
        .ip(etherparse::IpHeaders::Ipv4(ip, Default::default()))
        .tcp(1234, dport, 1, 1000)
        .write(&mut f, &[])
        .unwrap();
    f
}

fn udp6(dst: &str, dport: u16) -> Vec<u8> {
    let mut f = Vec::new();
    let dst: std::net::Ipv6Addr = dst.parse().unwrap();
    PacketBuilder::ethernet2([2, 0, 0, 0, 0, 9], [2, 0, 0, 0, 0, 1])
        .ipv6([0xfd; 16], dst.octets(), 64)
        .udp(5, dport)
        .write(&mut f, &[0; 8])
        .unwrap();
    f
}

fn arp() -> Vec<u8> {
    let mut f = vec![0xff; 6];
    f.extend_from_slice(&[2, 0, 0, 0, 0, 9, 0x08, 0x06]);
    f.extend_from_slice(&[0, 1, 8, 0, 6, 4, 0, 1, 2, 0, 0, 0, 0, 9, 10, 0, 0, 1, 0, 0, 0, 0, 0, 0, 10, 0, 0, 2]);
    f.resize(60, 0);
    f
}

#[test]
fn each_field_selects_and_the_first_match_wins() {
    let rules = r#"rules = [
        { ethertype = "arp", chain = "c1" },
        { proto = "tcp", dst-port = 80, dscp = 46, chain = "c2" },
        { proto = "tcp", dst-port = 80, chain = "c3" },
        { dst = "2001:db8::/32", chain = "c4" },
        { proto = "udp", src-port = 53, chain = "c5" },
        { src = "192.0.2.0/24", chain = "c5" },
    ]"#;
    let frames = [
        arp(),
        tcp4(80, 46 << 2),
        tcp4(80, 0),
        tcp4(81, 46 << 2),
        udp6("2001:db8::7", 9),
        udp6("2001:db9::7", 9),
        udp4([10, 0, 0, 1], [10, 0, 0, 2], 53, 9999, b"answer"),
        udp4([192, 0, 2, 77], [10, 0, 0, 2], 5, 6, b"x"),
        udp4([10, 0, 0, 1], [10, 0, 0, 2], 5, 6, b"x"),
    ];
    let ids = classify(rules, 0, &frames);
    assert_eq!(ids, [Some(1), Some(2), Some(3), None, Some(4), None, Some(5), Some(5), None], "chain ids: entry is 0");
}

#[test]
fn tunnels_by_vni_and_teid_and_ports_by_name_and_a_default() {
    let rules = r#"rules = [
        { vni = 100, chain = "c1" },
        { vxlan = true, chain = "c2" },
        { teid = 4660, chain = "c3" },
        { gtpu = true, chain = "c4" },
        { ingress = ["b"], chain = "c5" },
    ], default = "c1""#;
    // RFC 7348 5: flags 0x08, VNI in octets 4..7.
    let vxlan = |vni: u32| {
        udp4(
            [192, 168, 0, 2],
            [192, 168, 0, 1],
            50000,
            4789,
            &[0x08, 0, 0, 0, (vni >> 16) as u8, (vni >> 8) as u8, vni as u8, 0],
        )
    };
    // TS 29.281 5.1: version 1, PT 1, G-PDU (255), length, TEID.
    let gpdu = |teid: u32| {
        let t = teid.to_be_bytes();
        udp4([10, 10, 0, 2], [10, 10, 0, 1], 2152, 2152, &[0x30, 255, 0, 0, t[0], t[1], t[2], t[3]])
    };
    let echo = udp4([10, 10, 0, 2], [10, 10, 0, 1], 2152, 2152, &[0x32, 1, 0, 4, 0, 0, 0, 0, 0, 7, 0, 0]);
    let frames = [vxlan(100), vxlan(200), gpdu(4660), gpdu(1), echo, tcp4(22, 0)];
    assert_eq!(
        classify(rules, 0, &frames),
        [Some(1), Some(2), Some(3), Some(4), Some(1), Some(1)],
        "an echo is no G-PDU"
    );
    assert_eq!(classify(rules, 1, &[tcp4(22, 0)]), [Some(5)], "from b");
}

#[test]
fn bad_rules_are_refused_in_place() {
    let bad = |rules: &str| {
        let mut r = StageRegistry::new();
        nfv_basic::register(&mut r);
        let src = format!(
            "{HEAD}[[chains]]\nname = \"entry\"\nstages = [{{ kind = \"classify\", {rules} }}]\n\n[[chains]]\nname = \"c1\"\nstages = []\n\n[[workers]]\nrx = [\"a\"]\nchain = \"entry\"\n"
        );
        config::load("c.toml", &src, &r).map(|_| ()).unwrap_err().render()
    };
    assert!(bad(r#"rules = [{ dst-port = 80, chain = "c1" }]"#).contains("ports need a protocol with ports"));
    assert!(bad(r#"rules = [{ vni = 1, teid = 2, chain = "c1" }]"#).contains("cannot match VXLAN and GTP-U at once"));
    assert!(bad(r#"rules = [{ dscp = 64, chain = "c1" }]"#).contains("DSCP 64 is out of range"));
    assert!(bad(r#"rules = [{ ingress = "z", chain = "c1" }]"#).contains("unknown port `z`"));
    assert!(bad(r#"rules = [{ proto = "tcp", chain = "c9" }]"#).contains("unknown chain `c9`"));
    assert!(
        bad(r#"rules = [{ ethertype = "arp", proto = "tcp", chain = "c1" }]"#)
            .contains("IP fields on a non-IP EtherType")
    );
    let e = bad(r#"rules = [{ src = "10.0.0.0/33", chain = "c1" }]"#);
    assert!(e.contains("bad prefix length") && e.contains("c.toml:11:"), "{e}");
}
