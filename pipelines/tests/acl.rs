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

/// Sends `n` datagrams from gen to the sink's `port`.
fn udp_burst(bed: &TestBed, port: u16, n: usize) {
    bed.in_ns("gen", move || {
        let s = UdpSocket::bind(("0.0.0.0", 0)).unwrap();
        for _ in 0..n {
            s.send_to(b"flood", ("10.0.0.2", port)).unwrap();
        }
    });
}

/// An ACL without reflect rules in front of a cross-connect: the whole
/// chain runs in nfv's XDP program, the rules as its filter, the
/// cross-connect as a redirect. Denied packets are dropped below the
/// worker, whose ACL never sees them; a new rules file reaches the filter
/// as it reaches the worker.
#[test]
fn a_stateless_acl_drops_in_xdp_and_its_filter_follows_the_rules_file() {
    if !privileged("a_stateless_acl_drops_in_xdp_and_its_filter_follows_the_rules_file") {
        return;
    }
    let bed = TestBed::up("line", 1);
    let dir = std::env::temp_dir().join(format!("nfv-acl-xdp-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let rules = dir.join("fw.toml");
    let deny = |port: u16| format!("rules = [{{ action = \"deny\", proto = \"udp\", dst-port = {port} }}]\n");
    std::fs::write(&rules, deny(7000)).unwrap();
    let config = format!(
        "[run]\nstats-interval = 0\n\n\
         [[ports]]\nname = \"d0\"\nkind = \"af-xdp\"\ninterface = \"d0\"\n\n\
         [[ports]]\nname = \"d1\"\nkind = \"af-xdp\"\ninterface = \"d1\"\n\n\
         [[chains]]\nname = \"fw\"\nstages = [{{ kind = \"acl\", default = \"permit\", rules-file = \"{}\" }}, \
         {{ kind = \"l2-patch\", pairs = [[\"d0\", \"d1\"]] }}]\n\n\
         [[workers]]\nrx = [\"d0\", \"d1\"]\nchain = \"fw\"\n",
        rules.display()
    );
    let dut = bed.start_nfv(&config, 2);
    assert!(dut.notes.iter().any(|n| n.contains("xdp d0: acl filter, cross-connect")), "{:?}", dut.notes);
    assert!(ping(&bed, "gen", "10.0.0.2"), "permitted: up to the worker and across");
    assert!(udp_round_trip(&bed, "gen", "sink", [10, 0, 0, 2], 7001), "UDP to 7001 is permitted");
    assert!(!udp_round_trip(&bed, "gen", "sink", [10, 0, 0, 2], 7000), "UDP to 7000 is denied");
    udp_burst(&bed, 7000, 200);
    // The rules change: the filter follows (the file watch, then the
    // worker's next tick hands the new rule set to the engine).
    std::fs::write(&rules, deny(7001)).unwrap();
    std::thread::sleep(Duration::from_millis(2500));
    assert!(udp_round_trip(&bed, "gen", "sink", [10, 0, 0, 2], 7000), "7000 permitted after the update");
    assert!(!udp_round_trip(&bed, "gen", "sink", [10, 0, 0, 2], 7001), "7001 denied after the update");
    let report = dut.stop();
    let text = &report.text;
    let (decided, _) = report.xdp();
    assert!(decided >= 202, "the denied datagrams were dropped in XDP: {text}");
    // The worker's ACL saw none of them: nothing dropped there.
    let acl_row: Vec<&str> = text
        .lines()
        .skip_while(|l| !l.starts_with("stage "))
        .find(|l| l.starts_with("acl "))
        .unwrap_or_else(|| panic!("no acl row in\n{text}"))
        .split_whitespace()
        .collect();
    assert_eq!(acl_row[6], "0", "the worker's ACL dropped nothing:\n{text}");
    let _ = std::fs::remove_dir_all(&dir);
}
