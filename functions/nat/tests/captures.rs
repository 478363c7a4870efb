//! Every Ethernet packet of the capture corpus (`../shared/data/pcaps/`,
//! real traffic and hundreds of malformed packets) through the NAT, once
//! from the inside and once from the outside, with every source address
//! translated and every capture's destinations given a session first:
//! no panic, and every packet either leaves translated, with its IPv4
//! checksum right, or is dropped under a named reason.

use std::path::{Path, PathBuf};

use nfv_core::BuildCtx;
use nfv_core::frame::MAX_DATA;
use nfv_core::packet::{Meta, VerdictKind};
use nfv_testkit::FrameRunner;
use pcap_file::DataLink;
use pcap_file::pcap::PcapReader;

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/pcaps/tcpdump-tests")
}

#[test]
fn the_capture_corpus_goes_through_both_ways_without_a_panic_and_every_drop_is_named() {
    let stage = "{ kind = \"nat44\", inside = [\"in\"], outside = \"out\", pool = [\"198.51.100.10\"], \
                 outside-gateway = \"198.51.100.1\", max-sessions = 65536 }";
    let cfg = nfv_testkit::two_port_config("c.toml", ["in", "out"], stage, nfv_nat::register).unwrap();
    let reasons = cfg.chains[0].stages[0].builder.drop_reasons();
    let macs = [[2, 0, 0, 0, 1, 0], [2, 0, 0, 0, 1, 1]];
    let ctx = BuildCtx { worker: 0, port_macs: &macs, headers_read_later: false, chain_rank: 0, chain_workers: 1 };
    let mut stage = cfg.chains[0].stages[0].builder.build(&ctx);
    let gw: std::net::IpAddr = "198.51.100.1".parse().unwrap();
    let mut runner = FrameRunner::new([(gw, [2, 0, 0, 0, 0, 0xee], 1)]);
    let mut files: Vec<PathBuf> = std::fs::read_dir(corpus())
        .expect("the pcap corpus (../shared/data)")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "pcap"))
        .collect();
    files.sort();
    let (mut packets, mut out, mut drops) = (0u64, 0u64, std::collections::BTreeMap::<String, u64>::new());
    for path in &files {
        let Ok(mut reader) = PcapReader::new(std::fs::File::open(path).unwrap()) else { continue };
        if reader.header().datalink != DataLink::ETHERNET {
            continue;
        }
        while let Some(Ok(pkt)) = reader.next_packet() {
            let f = &pkt.data[..pkt.data.len().min(MAX_DATA)];
            for port in [0u16, 1] {
                if nfv_core::parse::classify(f, &mut Meta::default()).is_err() {
                    continue;
                }
                runner.now_ticks = packets;
                let (verdict, meta, data) = runner.run(&mut *stage, port, f);
                match verdict {
                    VerdictKind::Out(_) => {
                        out += 1;
                        let l3 = meta.l3_off as usize;
                        let ihl = (data[l3] & 0x0f) as usize * 4;
                        assert_eq!(
                            nfv_net::checksum::checksum(&data[l3..l3 + ihl]),
                            0,
                            "{}: translated IPv4 header checksum",
                            path.display()
                        );
                    }
                    VerdictKind::Drop(r) => *drops.entry(reasons[r.0 as usize].to_string()).or_default() += 1,
                    other => panic!("{}: verdict {other:?}", path.display()),
                }
                packets += 1;
            }
        }
    }
    eprintln!("{packets} packets, {out} translated; drops: {drops:?}");
    assert!(packets > 5_000 && out > 500, "{packets} packets, {out} out");
    for reason in ["not-ipv4", "not-our-address", "malformed", "unsupported-protocol", "bad-ip-checksum"] {
        assert!(drops.contains_key(reason), "no {reason} in {drops:?}");
    }
}
