//! Offline replay: captures in, chain, capture out.
//!
//! 1. Every capture of tcpdump's test corpus (real traffic plus hundreds
//!    of malformed packets) goes through a chain (a router, and a stateful
//!    ACL) without a panic, and every packet read is either transmitted or
//!    dropped under a named reason.
//! 2. The slow path answers ARP, ping and Neighbor Solicitations for the
//!    addresses the config owns; requests are built and replies decoded
//!    with etherparse, an independent implementation.

use std::path::{Path, PathBuf};

use etherparse::{Icmpv4Type, Icmpv6Type, NetSlice, PacketBuilder, SlicedPacket, TransportSlice};
use nfv_core::config;
use nfv_core::runtime::RunReport;
use pcap_file::pcap::{PcapPacket, PcapWriter};
use pcap_file::pcapng::{Block, PcapNgReader};

const CHAIN: &str = r#"
[[ports]]
name = "eth0"
kind = "generator"  # replaced by the capture in replay
mac = "02:00:00:00:00:aa"
addresses = ["192.0.2.1/24", "2001:db8::1/64"]

[[chains]]
name = "router"
stages = [{ kind = "ttl-decrement" }, { kind = "macswap" }, { kind = "counter" }]
then = "ingress"

[[workers]]
rx = ["eth0"]
chain = "router"
"#;

/// A stateful firewall over the corpus: rules on every field kind, IPv4
/// and IPv6, reflect state, default deny.
const ACL_CHAIN: &str = r#"
[[ports]]
name = "eth0"
kind = "generator"
mac = "02:00:00:00:00:aa"

[[chains]]
name = "fw"
stages = [
    { kind = "acl", default = "deny", non-ip = "deny", rules = [
        { action = "deny", proto = "tcp", dst-port = 23 },
        { action = "permit-reflect", proto = "tcp", tcp-flags = ["syn", "!ack"] },
        { action = "permit", proto = "udp", src-port = "53", dst-port = "1024-65535" },
        { action = "permit-reflect", proto = "udp", dst-port = "0-1023" },
        { action = "permit", proto = "icmp", src-port = 8 },
        { action = "deny", src = "10.0.0.0/8" },
        { action = "permit", dst = "2001:db8::/32" },
        { action = "permit", proto = "icmpv6", ingress = "eth0" },
    ] },
    { kind = "counter" },
]
then = "ingress"

[[workers]]
rx = ["eth0"]
chain = "fw"
"#;

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/pcaps/tcpdump-tests")
}

/// The report of a replay through `chain`, and whether the capture was
/// cut short (replayed up to its unreadable end).
fn try_replay_through(chain: &str, input: &Path, output: &Path) -> Result<(RunReport, bool), String> {
    let cfg = config::load("chain.toml", chain, &nfv_pipelines::registry()).unwrap();
    let cfg = nfv_pipelines::replay_config(cfg, &[(None, input)], None, None, output)?;
    match nfv_pipelines::replay(&cfg) {
        Ok(r) => Ok((r, false)),
        Err(nfv_pipelines::ReplayError::CutShort(r, _)) => Ok((*r, true)),
        Err(nfv_pipelines::ReplayError::Build(e)) => Err(e.to_string()),
    }
}

fn replay(input: &Path, output: &Path) -> RunReport {
    let (r, cut) = try_replay_through(CHAIN, input, output).unwrap();
    assert!(!cut, "the capture was read to its end");
    r
}

/// rx on the replayed port == tx + drops by reason (stages, dispatch) +
/// punts answered by the slow path.
fn assert_accounted(r: &RunReport, what: &str) {
    let ports = r.telemetry.port_summary();
    let replay = ports.iter().find(|p| p.name == "eth0").unwrap();
    let stages = r.telemetry.stage_summary();
    let dropped: u64 = stages.iter().map(|s| s.dropped()).sum();
    let punted: u64 =
        stages.iter().map(|s| s.punt).sum::<u64>() - stages.iter().find(|s| s.name == "dispatch").map_or(0, |s| s.punt);
    let replies = r.slow.arp_replies.get() + r.slow.echo_replies.get() + r.slow.nd_adverts.get();
    assert_eq!(
        replay.rx_packets + replies,
        replay.tx_packets + dropped + punted,
        "{what}: rx {} + replies {replies} != tx {} + dropped {dropped} + punted {punted}\n{stages:#?}",
        replay.rx_packets,
        replay.tx_packets
    );
}

/// Replays every capture of the corpus through `chain`: no panic, every
/// packet accounted. Returns the packets read and the drops by
/// `stage:reason`.
fn replay_corpus(chain: &str) -> (u64, std::collections::BTreeMap<String, u64>) {
    let dir = corpus();
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e} (the corpus lives in ../shared/data)", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "pcap" || e == "pcapng"))
        .collect();
    files.sort();
    assert!(files.len() > 500, "corpus looks incomplete: {} files", files.len());
    let out = std::env::temp_dir().join(format!("nfv-corpus-{}-{}.pcapng", std::process::id(), chain.len()));
    let (mut packets, mut dropped_reasons) = (0u64, std::collections::BTreeMap::new());
    let (mut unreadable, mut cut_short) = (Vec::new(), 0);
    for f in &files {
        let r = std::panic::catch_unwind(|| try_replay_through(chain, f, &out))
            .unwrap_or_else(|_| panic!("panic replaying {}", f.display()));
        // A file whose header the pcap reader rejects is refused with a
        // clear error before anything runs; that is the right answer too.
        // One cut short is replayed up to where it ends (and `nfv replay`
        // exits non-zero).
        let r = match r {
            Ok((r, cut)) => {
                cut_short += cut as usize;
                r
            }
            Err(e) => {
                assert!(e.contains(&*f.display().to_string()), "error names the file: {e}");
                unreadable.push(e);
                continue;
            }
        };
        assert_accounted(&r, &f.display().to_string());
        for p in r.telemetry.port_summary() {
            packets += p.rx_packets;
            for (reason, n) in p.drops {
                *dropped_reasons.entry(format!("port:{reason}")).or_insert(0) += n;
            }
        }
        for s in r.telemetry.stage_summary() {
            for (reason, n) in s.drops {
                *dropped_reasons.entry(format!("{}:{reason}", s.name)).or_insert(0) += n;
            }
        }
    }
    let _ = std::fs::remove_file(&out);
    eprintln!("{} captures, {packets} packets; drops by reason: {dropped_reasons:?}", files.len());
    eprintln!("refused at open ({}): {unreadable:#?}; cut short: {cut_short}", unreadable.len());
    assert!(unreadable.len() * 20 < files.len(), "too many captures refused: {unreadable:#?}");
    assert!(packets > 5_000, "replayed only {packets} packets");
    (packets, dropped_reasons)
}

#[test]
fn the_whole_pcap_corpus_replays_with_every_packet_accounted() {
    let (_, dropped_reasons) = replay_corpus(CHAIN);
    assert!(
        dropped_reasons.contains_key("ttl-decrement:malformed-ip"),
        "the corpus has malformed IP: {dropped_reasons:?}"
    );
}

#[test]
fn the_whole_pcap_corpus_goes_through_a_stateful_acl_with_every_drop_named() {
    let (packets, dropped_reasons) = replay_corpus(ACL_CHAIN);
    for reason in ["malformed-ip", "default-deny", "denied-by-rule", "non-ip-denied"] {
        assert!(dropped_reasons.contains_key(&format!("acl:{reason}")), "no acl:{reason} in {dropped_reasons:?}");
    }
    let dropped: u64 = dropped_reasons.values().sum();
    assert!(dropped < packets, "the rules permit some of the corpus: {dropped} of {packets} dropped");
}

fn write_pcap(path: &Path, frames: &[Vec<u8>]) {
    let mut w = PcapWriter::new(std::fs::File::create(path).unwrap()).unwrap();
    for f in frames {
        w.write_packet(&PcapPacket::new(std::time::Duration::ZERO, f.len() as u32, f)).unwrap();
    }
}

/// The packets of a replay's recording (pcapng), whatever port sent them.
fn read_recording(path: &Path) -> Vec<Vec<u8>> {
    let mut r = PcapNgReader::new(std::fs::File::open(path).unwrap()).unwrap();
    let mut v = Vec::new();
    while let Some(b) = r.next_block() {
        if let Block::EnhancedPacket(p) = b.unwrap() {
            v.push(p.data.into_owned());
        }
    }
    v
}

const PEER_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0x11];
const OUR_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0xaa];

fn arp_request(target: [u8; 4]) -> Vec<u8> {
    let mut f = Vec::new();
    PacketBuilder::ethernet2(PEER_MAC, [0xff; 6])
        .arp(
            etherparse::ArpPacket::new(
                etherparse::ArpHardwareId::ETHERNET,
                etherparse::EtherType::IPV4,
                etherparse::ArpOperation::REQUEST,
                &PEER_MAC,
                &[192, 0, 2, 9],
                &[0; 6],
                &target,
            )
            .unwrap(),
        )
        .write(&mut f)
        .unwrap();
    f
}

#[test]
fn slow_path_answers_arp_ping_and_nd_for_owned_addresses_only() {
    let dir = std::env::temp_dir().join(format!("nfv-slow-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (input, output) = (dir.join("in.pcap"), dir.join("out.pcapng"));
    let mut ping4 = Vec::new();
    PacketBuilder::ethernet2(PEER_MAC, OUR_MAC)
        .ipv4([192, 0, 2, 9], [192, 0, 2, 1], 64)
        .icmpv4_echo_request(0x1234, 7)
        .write(&mut ping4, b"hello nfv")
        .unwrap();
    let ours6: [u8; 16] = "2001:db8::1".parse::<std::net::Ipv6Addr>().unwrap().octets();
    let peer6: [u8; 16] = "2001:db8::9".parse::<std::net::Ipv6Addr>().unwrap().octets();
    let mut ns = Vec::new();
    // RFC 4861 4.3 NS: reserved word, target, source link-layer option.
    let mut ns_body = vec![0u8; 4];
    ns_body.extend_from_slice(&ours6);
    ns_body.extend_from_slice(&[1, 1]);
    ns_body.extend_from_slice(&PEER_MAC);
    let mut sol = [0u8; 16];
    sol[..2].copy_from_slice(&[0xff, 0x02]);
    sol[11..].copy_from_slice(&[1, 0xff, ours6[13], ours6[14], ours6[15]]);
    PacketBuilder::ethernet2(PEER_MAC, [0x33, 0x33, 0xff, ours6[13], ours6[14], ours6[15]])
        .ipv6(peer6, sol, 255)
        .icmpv6_raw(135, 0, [0; 4])
        .write(&mut ns, &ns_body[4..])
        .unwrap();
    let mut ping6 = Vec::new();
    PacketBuilder::ethernet2(PEER_MAC, OUR_MAC)
        .ipv6(peer6, ours6, 64)
        .icmpv6_echo_request(9, 1)
        .write(&mut ping6, b"v6")
        .unwrap();
    let mut ping_other = Vec::new();
    PacketBuilder::ethernet2(PEER_MAC, OUR_MAC)
        .ipv4([192, 0, 2, 9], [192, 0, 2, 77], 64)
        .icmpv4_echo_request(1, 1)
        .write(&mut ping_other, b"transit")
        .unwrap();
    write_pcap(&input, &[arp_request([192, 0, 2, 1]), arp_request([192, 0, 2, 50]), ping4, ns, ping6, ping_other]);
    let report = replay(&input, &output);
    assert_accounted(&report, "slow path");
    let out = read_recording(&output);
    // ARP for a foreign address and transit ping are forwarded by the chain
    // (ttl-decrement + macswap), not answered.
    let mut arp_replies = 0;
    let mut echo4 = 0;
    let mut echo6 = 0;
    let mut na = 0;
    for f in &out {
        let p = SlicedPacket::from_ethernet(f).unwrap();
        match (&p.net, &p.transport) {
            (Some(NetSlice::Arp(a)), _) if a.operation() == etherparse::ArpOperation::REPLY => {
                assert_eq!(a.sender_protocol_addr(), &[192, 0, 2, 1]);
                assert_eq!(a.sender_hw_addr(), &OUR_MAC);
                assert_eq!(a.target_hw_addr(), &PEER_MAC);
                arp_replies += 1;
            }
            (Some(NetSlice::Ipv4(ip)), Some(TransportSlice::Icmpv4(icmp))) => {
                if let Icmpv4Type::EchoReply(e) = icmp.icmp_type() {
                    assert_eq!((e.id, e.seq), (0x1234, 7));
                    assert_eq!(icmp.payload(), b"hello nfv");
                    assert_eq!(ip.header().source(), [192, 0, 2, 1]);
                    let h = ip.header().to_header();
                    assert_eq!(h.header_checksum, h.calc_header_checksum());
                    let full = etherparse::Icmpv4Header::from_slice(icmp.slice()).unwrap().0;
                    assert_eq!(full.checksum, full.icmp_type.calc_checksum(icmp.payload()));
                    echo4 += 1;
                }
            }
            (Some(NetSlice::Ipv6(ip)), Some(TransportSlice::Icmpv6(icmp))) => {
                let (src, dst) = (ip.header().source(), ip.header().destination());
                let hdr = etherparse::Icmpv6Header::from_slice(icmp.slice()).unwrap().0;
                assert_eq!(
                    hdr.checksum,
                    hdr.icmp_type.calc_checksum(src, dst, icmp.payload()).unwrap(),
                    "ICMPv6 checksum"
                );
                match icmp.icmp_type() {
                    Icmpv6Type::EchoReply(e) => {
                        assert_eq!((e.id, e.seq, src), (9, 1, ours6));
                        echo6 += 1;
                    }
                    Icmpv6Type::NeighborAdvertisement(h) => {
                        assert!(h.solicited && h.r#override && !h.router);
                        assert_eq!(&icmp.payload()[..16], &ours6, "NA target");
                        assert_eq!(ip.header().hop_limit(), 255);
                        assert_eq!(&f[..6], &PEER_MAC, "unicast to the solicitor");
                        na += 1;
                    }
                    other => panic!("unexpected ICMPv6 {other:?}"),
                }
            }
            _ => {}
        }
    }
    assert_eq!((arp_replies, echo4, echo6, na), (1, 1, 1, 1), "{} frames out", out.len());
    assert_eq!(out.len(), 6, "4 replies + foreign ARP + transit ping forwarded");
    assert_eq!(report.slow.learned.get(), 2, "requester learned from ARP and from NS");
    let _ = std::fs::remove_dir_all(&dir);
}
