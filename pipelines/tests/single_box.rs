//! The single-box chain graph live (configs/sfc/single-box.toml on the
//! line bed): at once, through the same two ports, a GTP-U session from
//! scapy's gNB reaches the UPF and its server, the kernel's vxlan device
//! reaches the VTEP and a host on the overlay's segment, and plain TCP
//! from a host goes through the firewall and the NAT44 to the server;
//! each kind reaches its own chain and its own peer.
//!
//!   gen [g0: gNB 10.10.0.2, VTEP 10.10.0.3 (vx100 10.20.0.1), host 10.10.0.4]
//!     -- [d0 10.10.0.1] nfv [d1 198.51.100.1] --
//!   sink [s0: server 198.51.100.2, overlay host 10.20.0.2]
#![cfg(feature = "af-xdp")]

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::testbed::{TestBed, privileged};

#[test]
fn gtpu_vxlan_and_plain_tcp_each_reach_their_own_chain_and_peer_at_once() {
    let test = "gtpu_vxlan_and_plain_tcp_each_reach_their_own_chain_and_peer_at_once";
    if !privileged(test)
        || !nfv_testkit::tools_or_skip(test, &[&["/usr/bin/python3", "-c", "import scapy.contrib.gtp"]])
    {
        return;
    }
    let bed = TestBed::up("line", 1);
    bed.exec("gen", &["ip", "addr", "flush", "dev", "g0"]);
    for a in ["10.10.0.2/24", "10.10.0.3/24", "10.10.0.4/24"] {
        bed.exec("gen", &["ip", "addr", "add", a, "dev", "g0"]);
    }
    bed.exec("gen", &["ip", "route", "add", "198.51.100.0/24", "via", "10.10.0.1", "src", "10.10.0.4"]);
    let vxlan = [
        "ip",
        "link",
        "add",
        "vx100",
        "type",
        "vxlan",
        "id",
        "100",
        "local",
        "10.10.0.3",
        "dstport",
        "4789",
        "dev",
        "g0",
    ];
    bed.exec("gen", &vxlan);
    bed.exec("gen", &["bridge", "fdb", "append", "00:00:00:00:00:00", "dev", "vx100", "dst", "10.10.0.1"]);
    bed.exec("gen", &["ip", "link", "set", "vx100", "mtu", "1450", "up"]);
    bed.exec("gen", &["ip", "addr", "add", "10.20.0.1/24", "dev", "vx100"]);
    bed.exec("gen", &["ethtool", "-K", "vx100", "tx", "off"]);
    bed.exec("sink", &["ip", "addr", "flush", "dev", "s0"]);
    bed.exec("sink", &["ip", "addr", "add", "198.51.100.2/24", "dev", "s0"]);
    bed.exec("sink", &["ip", "addr", "add", "10.20.0.2/24", "dev", "s0"]);
    bed.exec("sink", &["ip", "route", "add", "10.45.0.0/16", "via", "198.51.100.1"]);
    let server = bed.pong_server("sink", "198.51.100.2:7000", 5);
    let dut = bed.start_nfv(include_str!("../../configs/sfc/single-box.toml"), 2);
    std::thread::sleep(Duration::from_millis(500));
    let d0 = bed.mac("dut", "d0").iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":");
    // All three at once: the gNB's session, ping over the overlay, TCP.
    let gnb_ns = bed.ns("gen");
    let gnb = std::thread::spawn(move || {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/scapy/gnb.py");
        Command::new("ip")
            .args(["netns", "exec", &gnb_ns, "/usr/bin/python3"])
            .arg(script)
            .args(["g0", &d0, "5"])
            .output()
            .unwrap()
    });
    let ping_ns = bed.ns("gen");
    let overlay = std::thread::spawn(move || {
        Command::new("ip")
            .args(["netns", "exec", &ping_ns, "ping", "-c", "4", "-i", "0.3", "-w", "10", "10.20.0.2"])
            .output()
            .unwrap()
    });
    let data: Vec<u8> = (0..64 * 1024u32).map(|i| (i.wrapping_mul(2654435761) >> 9) as u8).collect();
    let (got, sent) = bed.nc_transfer("sink", "gen", "198.51.100.2", "5000", &data);
    assert!(sent && got == data, "TCP through the firewall and the NAT: {} of {} octets", got.len(), data.len());
    let overlay = overlay.join().unwrap();
    assert!(overlay.status.success(), "ping over the overlay: {}", String::from_utf8_lossy(&overlay.stdout));
    let gnb = gnb.join().unwrap();
    let text = String::from_utf8_lossy(&gnb.stdout).into_owned();
    assert!(gnb.status.success(), "{text}{}", String::from_utf8_lossy(&gnb.stderr));
    let peers: Vec<String> = server.join().unwrap().into_iter().map(|(peer, _)| peer).collect();
    let report = dut.stop().text;
    assert_eq!(peers, vec!["10.45.0.7:4000"; 5], "the UE, untunnelled, untranslated\n{report}");
    let mut lines: Vec<&str> = text.lines().collect();
    lines.sort();
    let want: Vec<String> = (0..5).map(|i| format!("43981 9 0 198.51.100.2 10.45.0.7 pong {i}")).collect();
    assert_eq!(lines, want, "the answers tunnelled back to the gNB\n{report}");
    assert!(report.contains("uplink 5 downlink 5"), "the UPF carried the session alone\n{report}");
    assert!(report.contains("tcp 10.10.0.4:"), "the NAT carried the host's TCP alone\n{report}");
    assert!(report.contains("fdb vni 100"), "the VTEP learned the overlay's hosts\n{report}");
    for edge in ["branch to `mobile`", "branch to `overlay`", "branch to `edge`"] {
        assert!(report.contains(edge), "{edge}\n{report}");
    }
}
