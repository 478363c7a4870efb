//! IP-in-IP as a real decoder reads it: frames the `lb` stage
//! encapsulated, written to a capture, decoded by tshark's dissectors
//! with checksum validation on (the kernel here has no ipip device).

use std::process::Command;

use etherparse::PacketBuilder;
use nfv_core::BuildCtx;
use nfv_core::packet::VerdictKind;
use nfv_testkit::{FrameRunner, tools_or_skip, two_port_config};
use pcap_file::DataLink;
use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};

const LB: &str = "{ kind = \"lb\", clients = [\"c\"], backends-port = \"b\", source-address = \"10.1.0.1\", \
                  vips = [{ vip = \"192.0.2.10:53\", proto = \"udp\", mode = \"ipip\", backends = [{ addr = \"10.1.0.4\" }] }] }";

#[test]
fn tshark_reads_our_ip_in_ip_as_the_clients_datagram_inside_ours() {
    if !tools_or_skip("tshark_reads_our_ip_in_ip_as_the_clients_datagram_inside_ours", &[&["tshark", "--version"]]) {
        return;
    }
    let cfg = two_port_config("lb.toml", ["c", "b"], LB, nfv_lb::register).unwrap_or_else(|e| panic!("{e}"));
    let macs = [[2, 0, 0, 0, 1, 0], [2, 0, 0, 0, 1, 1]];
    let ctx = BuildCtx { worker: 0, port_macs: &macs, headers_read_later: false, chain_rank: 0, chain_workers: 1 };
    let mut stage = cfg.chains[0].stages[0].builder.build(&ctx);
    let mut runner = FrameRunner::new([(std::net::IpAddr::from([10, 1, 0, 4]), [2, 0, 0, 0, 0xb, 4], 1)]);
    let pcap = std::env::temp_dir().join(format!("nfv-ipip-{}.pcap", std::process::id()));
    let mut w = PcapWriter::with_header(
        std::fs::File::create(&pcap).unwrap(),
        PcapHeader { datalink: DataLink::ETHERNET, ..Default::default() },
    )
    .unwrap();
    for size in [5usize, 1000] {
        let mut f = Vec::new();
        PacketBuilder::ethernet2([2, 0, 0, 0, 0, 0xc], [2, 0, 0, 0, 1, 0])
            .ipv4([203, 0, 113, 7], [192, 0, 2, 10], 64)
            .udp(5353, 53)
            .write(&mut f, &vec![0x61; size])
            .unwrap();
        let (v, _, out) = runner.run(&mut *stage, 0, &f);
        assert_eq!(v, VerdictKind::Out(1));
        w.write_packet(&PcapPacket::new(std::time::Duration::ZERO, out.len() as u32, &out)).unwrap();
    }
    drop(w);
    let out = Command::new("tshark")
        .args(["-r", pcap.to_str().unwrap(), "-o", "ip.check_checksum:TRUE", "-o", "udp.check_checksum:TRUE"])
        .args(["-T", "fields", "-e", "ip.proto", "-e", "ip.src", "-e", "ip.dst", "-e", "ip.checksum.status"])
        .args(["-e", "udp.dstport", "-e", "udp.checksum.status", "-e", "udp.length"])
        .output()
        .expect("tshark");
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    for (line, size) in lines.iter().zip([5, 1000]) {
        let f: Vec<&str> = line.split('\t').collect();
        assert_eq!(f[0], "4,17", "outer IP-in-IP, inner UDP: {line}");
        assert_eq!(f[1], "10.1.0.1,203.0.113.7", "{line}");
        assert_eq!(f[2], "10.1.0.4,192.0.2.10", "{line}");
        assert_eq!(f[3], "1,1", "both IP checksums verified good (status 1; 0 is bad): {line}");
        assert_eq!((f[4], f[5], f[6]), ("53", "1", (8 + size).to_string().as_str()), "{line}");
    }
    let _ = std::fs::remove_file(pcap);
}
