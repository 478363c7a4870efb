//! The in-memory generator emits what it claims, checked by etherparse
//! (an independent decoder): sizes, protocols, encapsulations, RFC 4814
//! address/port ranges, and valid checksums at every layer. And the
//! threaded runtime accounts for every generated packet across workers.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use etherparse::{NetSlice, SlicedPacket, TransportSlice};
use nfv_core::config;
use nfv_core::runtime::{Runtime, SlowPathMode};
use pcap_file::pcap::PcapReader;

fn generate(params: &str, out: &Path) -> Vec<Vec<u8>> {
    let src = format!(
        r#"
[[ports]]
name = "gen"
kind = "generator"
count = 96
flows = 32
{params}

[[ports]]
name = "cap"
kind = "pcap"
output = "{}"

[[chains]]
name = "pass"
stages = [{{ kind = "counter" }}]

[[workers]]
rx = ["gen"]
chain = "pass"
tx = "cap"
"#,
        out.display()
    );
    let cfg = config::load("gen.toml", &src, &nfv_pipelines::registry()).unwrap_or_else(|r| panic!("{r}"));
    let report = Runtime::build(&cfg, SlowPathMode::Inline).unwrap().run_inline();
    assert_eq!(report.telemetry.total_tx(), 96);
    let mut r = PcapReader::new(std::fs::File::open(out).unwrap()).unwrap();
    let mut v = Vec::new();
    while let Some(p) = r.next_packet() {
        v.push(p.unwrap().data.into_owned());
    }
    v
}

/// Checks IP and L4 checksums of an (inner) IP packet with etherparse.
fn check_ip(bytes: &[u8], what: &str) -> (u8, u16, u16) {
    let p = SlicedPacket::from_ip(bytes).unwrap_or_else(|e| panic!("{what}: {e:?}"));
    let (src6, dst6, src4, dst4) = match &p.net {
        Some(NetSlice::Ipv4(ip)) => {
            let h = ip.header().to_header();
            assert_eq!(h.header_checksum, h.calc_header_checksum(), "{what}: IPv4 header checksum");
            let (s, d) = (ip.header().source(), ip.header().destination());
            assert_eq!(&s[..2], &[198, 18], "{what}: RFC 2544 benchmark source range");
            assert_eq!(&d[..2], &[198, 19]);
            (None, None, Some(s), Some(d))
        }
        Some(NetSlice::Ipv6(ip)) => {
            let (s, d) = (ip.header().source(), ip.header().destination());
            assert_eq!(&s[..4], &[0x20, 0x01, 0, 2], "{what}: RFC 5180 benchmark range");
            (Some(s), Some(d), None, None)
        }
        _ => panic!("{what}: not IP"),
    };
    match &p.transport {
        Some(TransportSlice::Udp(u)) => {
            let h = u.to_header();
            let c = match (src4, dst4) {
                (Some(s), Some(d)) => h.calc_checksum_ipv4_raw(s, d, u.payload()).unwrap(),
                _ => h.calc_checksum_ipv6_raw(src6.unwrap(), dst6.unwrap(), u.payload()).unwrap(),
            };
            assert_eq!(h.checksum, c, "{what}: UDP checksum");
            (17, h.source_port, h.destination_port)
        }
        Some(TransportSlice::Tcp(t)) => {
            let h = t.to_header();
            let c = match (src4, dst4) {
                (Some(s), Some(d)) => h.calc_checksum_ipv4_raw(s, d, t.payload()).unwrap(),
                _ => h.calc_checksum_ipv6_raw(src6.unwrap(), dst6.unwrap(), t.payload()).unwrap(),
            };
            assert_eq!(h.checksum, c, "{what}: TCP checksum");
            (6, h.source_port, h.destination_port)
        }
        Some(TransportSlice::Icmpv4(i)) => {
            let h = etherparse::Icmpv4Header::from_slice(i.slice()).unwrap().0;
            assert_eq!(h.checksum, h.icmp_type.calc_checksum(i.payload()), "{what}: ICMP checksum");
            (1, 0, 0)
        }
        Some(TransportSlice::Icmpv6(i)) => {
            let h = etherparse::Icmpv6Header::from_slice(i.slice()).unwrap().0;
            assert_eq!(h.checksum, h.icmp_type.calc_checksum(src6.unwrap(), dst6.unwrap(), i.payload()).unwrap());
            (58, 0, 0)
        }
        other => panic!("{what}: transport {other:?}"),
    }
}

#[test]
fn plain_traffic_is_valid_for_every_protocol_and_version() {
    let dir = std::env::temp_dir().join(format!("nfv-gen-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for v in [4, 6] {
        for proto in ["udp", "tcp", "icmp"] {
            for size in ["64", "1518", "\"imix\""] {
                let what = format!("ipv{v} {proto} {size}");
                let frames = generate(
                    &format!("ip-version = {v}\nprotocol = \"{proto}\"\nframe-size = {size}"),
                    &dir.join("o.pcap"),
                );
                let mut flows = std::collections::HashSet::new();
                for f in &frames {
                    let eth = etherparse::Ethernet2Header::from_slice(f).unwrap().0;
                    let (p, sp, dp) = check_ip(&f[14..], &what);
                    if matches!(p, 6 | 17) {
                        assert!(sp >= 1024 && (1..=49151).contains(&dp), "{what}: RFC 4814 port ranges {sp} {dp}");
                    }
                    let addrs = if v == 4 { &f[26..34] } else { &f[22..54] };
                    flows.insert((
                        addrs.to_vec(),
                        sp,
                        dp,
                        if p == 1 || p == 58 { f[14 + if v == 4 { 24 } else { 44 }] } else { 0 },
                    ));
                    assert_eq!(eth.destination, [2, 0, 0, 0, 0, 2]);
                }
                assert_eq!(flows.len(), 32, "{what}: distinct flows");
                let sizes: Vec<usize> = frames.iter().map(|f| f.len() + 4).collect();
                match size {
                    "64" if v == 4 => assert!(sizes.iter().all(|&s| s == 64), "{what}: {sizes:?}"),
                    "1518" => assert!(sizes.iter().all(|&s| s == 1518), "{what}"),
                    "\"imix\"" => {
                        let small = sizes.iter().filter(|&&s| s <= 90).count();
                        let big = sizes.iter().filter(|&&s| s == 1518).count();
                        assert_eq!((small, big), (56, 8), "{what}: 7:4:1 over 96 packets");
                    }
                    _ => {}
                }
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn vxlan_and_gtpu_encapsulated_traffic_decodes() {
    let dir = std::env::temp_dir().join(format!("nfv-gen-encap-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for f in generate("encap = \"vxlan\"\nvni = 4242", &dir.join("v.pcap")) {
        let outer = SlicedPacket::from_ethernet(&f).unwrap();
        let Some(NetSlice::Ipv4(ip)) = &outer.net else { panic!("outer IPv4") };
        let h = ip.header().to_header();
        assert_eq!(h.header_checksum, h.calc_header_checksum());
        assert!(h.dont_fragment);
        let Some(TransportSlice::Udp(u)) = &outer.transport else { panic!("outer UDP") };
        assert_eq!(u.destination_port(), 4789);
        assert!(u.source_port() >= 49152, "RFC 7348 source port range");
        let vx = u.payload();
        assert_eq!(vx[0], 0x08, "I flag");
        assert_eq!(u32::from_be_bytes([0, vx[4], vx[5], vx[6]]), 4242);
        check_ip(&vx[8 + 14..], "vxlan inner");
    }
    for f in generate("encap = \"gtpu\"\nprotocol = \"tcp\"", &dir.join("g.pcap")) {
        let outer = SlicedPacket::from_ethernet(&f).unwrap();
        let Some(TransportSlice::Udp(u)) = &outer.transport else { panic!("outer UDP") };
        assert_eq!(u.destination_port(), 2152);
        let g = u.payload();
        assert_eq!((g[0], g[1]), (0x30, 0xff), "GTPv1 G-PDU");
        assert_eq!(u16::from_be_bytes([g[2], g[3]]) as usize, g.len() - 8, "GTP length");
        check_ip(&g[8..], "gtpu inner");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn two_threaded_workers_account_for_every_packet() {
    let src = r#"
[run]
stats-interval = 0.0

[[ports]]
name = "gen"
kind = "generator"
queues = 2
count = 200000
addresses = ["192.0.2.1/24"]

[[ports]]
name = "sink"
kind = "sink"

[[chains]]
name = "c"
stages = [{ kind = "ttl-decrement" }, { kind = "macswap" }]

[[workers]]
rx = ["gen:0"]
chain = "c"
tx = "sink"

[[workers]]
rx = ["gen:1"]
chain = "c"
tx = "sink"
"#;
    let cfg = config::load("two.toml", src, &nfv_pipelines::registry()).unwrap();
    let r = nfv_pipelines::run(&cfg, Arc::new(AtomicBool::new(false)), None, false).unwrap();
    assert_eq!(r.telemetry.total_rx(), 400_000);
    assert_eq!(r.telemetry.total_tx(), 400_000);
    let per_worker: Vec<u64> = r.telemetry.stages.iter().map(|c| c[0].pkts_in.get()).collect();
    assert_eq!(per_worker, vec![200_000, 200_000]);
}
