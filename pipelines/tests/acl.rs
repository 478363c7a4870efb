//! Live stateful firewall: nfv on AF_XDP between gen (inside, 10.0.0.1)
//! and sink (outside, 10.0.0.2) with `configs/acl-reflect.toml`: the
//! kernels' own TCP (nc), UDP and ICMP (ping) opened from the inside get
//! their answers; the same opened from the outside get nothing.
#![cfg(feature = "af-xdp")]

mod common;

use std::net::UdpSocket;
use std::process::Command;
use std::time::Duration;

use common::testbed::{TestBed, privileged};

const CONFIG: &str = include_str!("../../configs/acl-reflect.toml");

/// Sends one datagram from `from` to `to_addr`:`port` where a socket in
/// `to` echoes it; true when the echo came back.
fn udp_round_trip(bed: &TestBed, from: &str, to: &str, to_addr: [u8; 4], port: u16) -> bool {
    let echo = bed.spawn_in_ns(to, move || {
        let s = UdpSocket::bind(("0.0.0.0", port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
        let mut buf = [0u8; 64];
        if let Ok((n, peer)) = s.recv_from(&mut buf) {
            s.send_to(&buf[..n], peer).unwrap();
        }
    });
    std::thread::sleep(Duration::from_millis(200));
    let got = bed.in_ns(from, move || {
        let s = UdpSocket::bind(("0.0.0.0", 0)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        s.send_to(b"knock", (std::net::Ipv4Addr::from(to_addr), port)).unwrap();
        let mut buf = [0u8; 64];
        matches!(s.recv_from(&mut buf), Ok((5, _)))
    });
    echo.join().unwrap();
    got
}

fn ping(bed: &TestBed, from: &str, to: &str) -> bool {
    Command::new("ip")
        .args(["netns", "exec", &bed.ns(from), "ping", "-c", "2", "-i", "0.3", "-W", "1", to])
        .output()
        .unwrap()
        .status
        .success()
}

#[test]
fn replies_to_inside_flows_pass_and_the_outside_cannot_start_any() {
    if !privileged("replies_to_inside_flows_pass_and_the_outside_cannot_start_any") {
        return;
    }
    let bed = TestBed::up("line", 1);
    let dut = bed.start_nfv(CONFIG, 2);
    assert!(ping(&bed, "gen", "10.0.0.2"), "ping from the inside");
    assert!(!ping(&bed, "sink", "10.0.0.1"), "ping from the outside must fail");
    let data: Vec<u8> = (0..64 * 1024u32).map(|i| (i.wrapping_mul(2654435761) >> 11) as u8).collect();
    let (got, sent) = bed.nc_transfer("sink", "gen", "10.0.0.2", "6000", &data);
    assert!(sent && got == data, "TCP from the inside: {} of {} bytes", got.len(), data.len());
    let (got, sent) = bed.nc_transfer("gen", "sink", "10.0.0.1", "6001", &data);
    assert!(!sent && got.is_empty(), "TCP from the outside must not connect ({} bytes)", got.len());
    // The deny rule comes first: telnet from the inside is refused too.
    let (_, sent) = bed.nc_transfer("sink", "gen", "10.0.0.2", "23", b"x");
    assert!(!sent, "TCP to port 23 is denied by the first rule");
    assert!(udp_round_trip(&bed, "gen", "sink", [10, 0, 0, 2], 7000), "UDP from the inside gets its answer");
    assert!(!udp_round_trip(&bed, "sink", "gen", [10, 0, 0, 1], 7001), "UDP from the outside gets nothing");
    let report = dut.stop();
    let text = &report.text;
    assert!(text.contains("default-deny"), "{text}");
    assert!(text.contains("denied-by-rule"), "{text}");
    // ping, TCP, UDP (and the outside's failed attempts created nothing).
    let created: u64 = text
        .split("created ")
        .nth(1)
        .and_then(|t| t.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no flow counters in\n{text}"));
    assert!(created >= 3, "{text}");
}
