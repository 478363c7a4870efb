//! The capture corpus (`../shared/data/pcaps/`, real traffic and hundreds
//! of malformed packets) through the UPF: every Ethernet packet as it is,
//! from N3 and from N6; every UDP payload read as GTP-U; every IPv4
//! packet carried in a G-PDU of the static session's tunnel (the inner
//! packets as malformed as the corpus makes them). No panic; every packet
//! leaves or is dropped under a named reason.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use nfv_core::BuildCtx;
use nfv_core::frame::HEADROOM;
use nfv_core::packet::VerdictKind;
use nfv_testkit::{FrameRunner, two_port_config};
use nfv_upf::gtpu;
use pcap_file::DataLink;
use pcap_file::pcap::PcapReader;

const UPF: &str = "{ kind = \"upf\", n3 = \"n3\", n3-address = \"10.10.0.1\", n6 = \"n6\", n6-gateway = \"198.51.100.1\", \
                   sessions = [{ seid = 1, ue = \"10.45.0.7\", uplink-teid = 4660, gnb = \"10.10.0.2\", downlink-teid = 43981, qfi = 5 }] }";

fn corpus() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/pcaps/tcpdump-tests");
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("the pcap corpus (../shared/data)")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "pcap"))
        .collect();
    files.sort();
    files
}

/// `ip` (an IPv4 packet), sent as from the UE, in a G-PDU of TEID 4660
/// from the gNB to us.
fn in_tunnel(ip: &[u8]) -> Vec<u8> {
    let mut ip = ip.to_vec();
    if ip.len() >= 20 {
        ip[12..16].copy_from_slice(&[10, 45, 0, 7]);
    }
    let ip = &ip[..];
    let mut g = [0u8; 8];
    gtpu::write_gpdu(&mut g, 4660, ip.len(), None);
    let udp_len = (8 + 8 + ip.len()) as u16;
    let mut outer = vec![0x45, 0, 0, 0, 0, 0, 0, 0, 64, 17, 0, 0, 10, 10, 0, 2, 10, 10, 0, 1];
    outer[2..4].copy_from_slice(&(20 + udp_len).to_be_bytes());
    let c = nfv_net::checksum::checksum(&outer);
    outer[10..12].copy_from_slice(&c.to_be_bytes());
    let mut f = vec![2, 0, 0, 0, 3, 3, 2, 0, 0, 0, 0, 0x9b, 8, 0];
    f.extend_from_slice(&outer);
    f.extend_from_slice(&[0x08, 0x68, 0x08, 0x68]);
    f.extend_from_slice(&udp_len.to_be_bytes());
    f.extend_from_slice(&[0, 0]);
    f.extend_from_slice(&g);
    f.extend_from_slice(ip);
    f
}

#[test]
fn the_capture_corpus_goes_through_without_a_panic_and_every_drop_is_named() {
    let cfg = two_port_config("upf.toml", ["n3", "n6"], UPF, nfv_upf::register).unwrap();
    let b = &cfg.chains[0].stages[0].builder;
    let reasons = b.drop_reasons();
    let macs = [[2, 0, 0, 0, 3, 3], [2, 0, 0, 0, 6, 6]];
    let ctx = BuildCtx { worker: 0, port_macs: &macs, headers_read_later: false, chain_rank: 0, chain_workers: 1 };
    let mut stage = b.build(&ctx);
    let ip = |a: [u8; 4]| std::net::IpAddr::from(a);
    let mut runner = FrameRunner::new([
        (ip([10, 10, 0, 2]), [2, 0, 0, 0, 0, 0x9b], 0),
        (ip([198, 51, 100, 1]), [2, 0, 0, 0, 0, 0x66], 1),
    ]);
    let (mut passes, mut out, mut udp, mut gtp_read) = (0u64, 0u64, 0u64, 0u64);
    let mut drops = BTreeMap::<String, u64>::new();
    let max = 2048 - HEADROOM;
    for path in corpus() {
        let Ok(mut reader) = PcapReader::new(std::fs::File::open(&path).unwrap()) else { continue };
        if reader.header().datalink != DataLink::ETHERNET {
            continue;
        }
        while let Some(Ok(pkt)) = reader.next_packet() {
            let f = &pkt.data[..pkt.data.len().min(max)];
            let mut frames = vec![(0u16, f.to_vec()), (1, f.to_vec())];
            // IPv4 payloads of Ethernet II frames: inside our tunnel too.
            if f.len() > 34 && f[12..14] == [8, 0] && f.len() - 14 + 50 <= max {
                frames.push((0, in_tunnel(&f[14..])));
                // The UDP payload read as GTP-U.
                let ihl = (f[14] & 0x0f) as usize * 4;
                if f[14 + 9] == 17 && f.len() > 14 + ihl + 8 {
                    udp += 1;
                    gtp_read += gtpu::parse(&f[14 + ihl + 8..]).is_ok() as u64;
                }
            }
            for (port, frame) in frames {
                if frame.len() < 14 {
                    continue;
                }
                passes += 1;
                match runner.run(&mut *stage, port, &frame).0 {
                    VerdictKind::Out(_) => out += 1,
                    VerdictKind::Drop(r) => *drops.entry(reasons[r.0 as usize].to_string()).or_default() += 1,
                    other => panic!("{}: {other:?}", path.display()),
                }
            }
        }
    }
    eprintln!("{passes} passes: {out} forwarded, drops {drops:?}, {gtp_read} of {udp} UDP payloads read as GTP-U");
    assert!(passes > 10_000, "the corpus was read");
    assert!(out > 100, "tunnelled corpus packets to the UE reach N6 or are dropped by name: {out}");
    assert_eq!(passes, out + drops.values().sum::<u64>());
}

/// N4 against the corpus and corruption: every UDP payload of the corpus,
/// then 20,000 corruptions (bytes changed, cut short, lengthened) of
/// scapy's association and session establishment requests, answered one
/// by one: no panic, every answer a PFCP message, and the endpoint still
/// answers a heartbeat and accepts a clean establishment after.
#[test]
fn n4_survives_the_corpus_and_corrupted_requests() {
    use nfv_upf::pfcp::PfcpEndpoint;
    let tools: &[&[&str]] = &[&["/usr/bin/python3", "-c", "import scapy.contrib.pfcp"]];
    if !nfv_testkit::tools_or_skip("n4_survives_the_corpus_and_corrupted_requests", tools) {
        return;
    }
    let (associate, establish) = common::pfcp_templates();
    let mut n4 = PfcpEndpoint::bind("127.0.0.1:0".parse().unwrap(), std::net::Ipv4Addr::new(10, 10, 0, 1)).unwrap();
    let table = nfv_core::published::Published::new(nfv_upf::rules::Sessions::default());
    let usage = nfv_upf::usage::Usage::new(4096);
    n4.serve_sessions(table.clone(), Vec::new(), (std::net::Ipv4Addr::new(10, 10, 0, 1), None), usage);
    let smf: std::net::SocketAddr = "127.0.0.2:8805".parse().unwrap();
    let answered = |r: Option<Vec<u8>>| {
        if let Some(r) = r {
            assert!(r.len() >= 8 && r[0] >> 5 == 1, "a PFCP answer: {r:02x?}");
        }
    };
    let mut payloads = 0;
    for path in corpus() {
        let Ok(mut reader) = PcapReader::new(std::fs::File::open(&path).unwrap()) else { continue };
        if reader.header().datalink != DataLink::ETHERNET {
            continue;
        }
        while let Some(Ok(pkt)) = reader.next_packet() {
            let f = &pkt.data;
            if f.len() > 42 && f[12..14] == [8, 0] && f[23] == 17 {
                let ihl = (f[14] & 0x0f) as usize * 4;
                if let Some(payload) = f.get(14 + ihl + 8..) {
                    payloads += 1;
                    answered(n4.answer(payload, smf));
                }
            }
        }
    }
    answered(n4.answer(&associate, smf));
    let mut rng = fastrand::Rng::with_seed(8805);
    // Each with its own sequence number (else it is a retransmission,
    // answered from memory) before it is corrupted.
    let numbered = |m: &[u8], seq: u32| {
        let mut m = m.to_vec();
        let at = if m[0] & 1 != 0 { 12 } else { 4 };
        m[at..at + 3].copy_from_slice(&seq.to_be_bytes()[1..]);
        m
    };
    for i in 0..20_000 {
        let mut m = numbered(if i % 4 == 0 { &associate } else { &establish }, 100 + i);
        match rng.u8(0..4) {
            0 => m.truncate(rng.usize(0..m.len())),
            1 => m.extend((0..rng.usize(1..16)).map(|_| rng.u8(..))),
            _ => {
                for _ in 0..rng.usize(1..4) {
                    let at = rng.usize(0..m.len());
                    m[at] = rng.u8(..);
                }
            }
        }
        answered(n4.answer(&m, smf));
    }
    // Still serving: a heartbeat (Recovery Time Stamp), a clean session.
    let heartbeat = [0x20, 1, 0, 12, 0, 0, 9, 0, 0, 96, 0, 4, 0xe8, 0x75, 0x8a, 0x00];
    let r = n4.answer(&heartbeat, smf).expect("a heartbeat response");
    assert_eq!((r[1], &r[4..7]), (2, &[0, 0, 9][..]));
    answered(n4.answer(&numbered(&associate, 30_001), smf));
    let mut clean = numbered(&establish, 30_002);
    let ue = clean.windows(4).position(|w| w == [10, 45, 0, 9]).unwrap();
    let ue2 = ue + 1 + clean[ue + 1..].windows(4).position(|w| w == [10, 45, 0, 9]).unwrap();
    for at in [ue, ue2] {
        clean[at..at + 4].copy_from_slice(&[10, 99, 99, 99]);
    }
    let r = n4.answer(&clean, smf).expect("an establishment response");
    assert_eq!(r[1], 51);
    assert!(table.load().by_ue(u32::from_be_bytes([10, 99, 99, 99])).is_some(), "{:?}", n4.counters);
    eprintln!("{payloads} corpus UDP payloads and 20000 corruptions: {:?}", n4.counters);
}
