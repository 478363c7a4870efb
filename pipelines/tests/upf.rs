//! Live UPF: nfv on AF_XDP between a gNB and a data network,
//! `configs/upf.toml` (a static session):
//!
//!   gen [g0 10.10.0.2] gNB (scapy) -- [d0 10.10.0.1] nfv [d1 198.51.100.1] -- [s0 198.51.100.2] server
//!   UE 10.45.0.7: uplink TEID 4660, downlink TEID 43981, QFI 9
//!
//! scapy's gNB sends G-PDUs with a PDU Session Container; the inner UDP
//! packets reach a real server on the data network, whose answers come
//! back to the gNB in the session's tunnel with its TEID and QFI, as
//! scapy reads them.
#![cfg(feature = "af-xdp")]

mod common;

use std::net::UdpSocket;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::testbed::{TestBed, privileged};

const CONFIG: &str = include_str!("../../configs/upf.toml");

#[test]
fn a_scapy_gnbs_uplink_reaches_the_data_network_and_the_answers_come_back_tunnelled() {
    if !privileged("a_scapy_gnbs_uplink_reaches_the_data_network_and_the_answers_come_back_tunnelled") {
        return;
    }
    let tools: &[&[&str]] = &[&["/usr/bin/python3", "-c", "import scapy.contrib.gtp"]];
    if !nfv_core::testkit::tools_or_skip("upf live", tools) {
        return;
    }
    let bed = TestBed::up("line", 1);
    bed.exec("gen", &["ip", "addr", "flush", "dev", "g0"]);
    bed.exec("gen", &["ip", "addr", "add", "10.10.0.2/24", "dev", "g0"]);
    bed.exec("sink", &["ip", "addr", "flush", "dev", "s0"]);
    bed.exec("sink", &["ip", "addr", "add", "198.51.100.2/24", "dev", "s0"]);
    bed.exec("sink", &["ip", "route", "add", "10.45.0.0/16", "via", "198.51.100.1"]);
    // The data network's server: answers every datagram.
    let server = bed.spawn_in_ns("sink", || {
        let s = UdpSocket::bind("198.51.100.2:7000").unwrap();
        s.set_read_timeout(Some(Duration::from_secs(8))).unwrap();
        let mut buf = [0u8; 256];
        let mut seen = Vec::new();
        while let Ok((n, peer)) = s.recv_from(&mut buf) {
            seen.push((peer, String::from_utf8_lossy(&buf[..n]).into_owned()));
            s.send_to(format!("pong {}", &String::from_utf8_lossy(&buf[..n])[5..]).as_bytes(), peer).unwrap();
            if seen.len() == 5 {
                break;
            }
        }
        seen
    });
    let dut = bed.start_nfv(CONFIG, 2);
    // Let the slow path resolve the gNB and the N6 gateway.
    std::thread::sleep(Duration::from_millis(500));
    let d0 = bed.mac("dut", "d0").iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/scapy/gnb.py");
    let out = Command::new("ip")
        .args(["netns", "exec", &bed.ns("gen"), "/usr/bin/python3"])
        .arg(&script)
        .args(["g0", &d0, "5"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{text}\n{}", String::from_utf8_lossy(&out.stderr));
    let seen = server.join().unwrap();
    let report = dut.stop();
    assert_eq!(seen.len(), 5, "the server got every uplink packet\n{text}\n{}", report.text);
    for (peer, msg) in &seen {
        assert_eq!(peer.to_string(), "10.45.0.7:4000", "from the UE, untunnelled");
        assert!(msg.starts_with("ping "), "{msg}");
    }
    let mut lines: Vec<&str> = text.lines().collect();
    lines.sort();
    let want: Vec<String> = (0..5).map(|i| format!("43981 9 0 198.51.100.2 10.45.0.7 pong {i}")).collect();
    assert_eq!(lines, want, "downlink: TEID 43981, QFI 9, DL PDU type, the server's answer to the UE\n{}", report.text);
    assert!(report.text.contains("uplink 5 downlink 5"), "{}", report.text);
    // The gNB's kernel, with no GTP-U socket, answers our downlink with
    // port unreachable: dropped as not GTP-U, counted.
}
