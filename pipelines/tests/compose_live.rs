//! Functions compose, live on the veth bed with real peers: the shipped
//! `vtep -> acl -> nat44` graph between the kernel's vxlan device (the
//! remote VTEP, with a host behind it) and a server outside, and the
//! shipped `upf -> acl -> nat44` graph between scapy's gNB and a server
//! on the data network. What the ACL permits arrives translated and its
//! answers come back; telnet, which it denies, never leaves.
//!
//!   gen [g0 198.51.100.2] -- [d0] nfv VTEP 192.168.0.1 [d1] -- [s0 192.168.0.2]
//!   sink: vx100 (VNI 100, host 10.0.0.1, gateway 10.0.0.254) over s0
#![cfg(feature = "af-xdp")]

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::packet::Capture;
use common::testbed::{TestBed, privileged};

/// TCP to port 23, seen on `ifname`.
fn telnet(f: &[u8]) -> bool {
    f.len() > 37 && f[12..14] == [8, 0] && f[23] == 6 && f[36..38] == [0, 23]
}

#[test]
fn the_overlays_hosts_reach_the_outside_through_the_vtep_the_acl_and_the_nat() {
    if !privileged("the_overlays_hosts_reach_the_outside_through_the_vtep_the_acl_and_the_nat") {
        return;
    }
    let bed = TestBed::up("line", 1);
    bed.exec("gen", &["ip", "addr", "flush", "dev", "g0"]);
    bed.exec("gen", &["ip", "addr", "add", "198.51.100.2/24", "dev", "g0"]);
    bed.exec("sink", &["ip", "addr", "flush", "dev", "s0"]);
    bed.exec("sink", &["ip", "addr", "add", "192.168.0.2/24", "dev", "s0"]);
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
        "192.168.0.2",
        "dstport",
        "4789",
        "dev",
        "s0",
    ];
    bed.exec("sink", &vxlan);
    bed.exec("sink", &["bridge", "fdb", "append", "00:00:00:00:00:00", "dev", "vx100", "dst", "192.168.0.1"]);
    bed.exec("sink", &["ip", "link", "set", "vx100", "mtu", "1450", "up"]);
    bed.exec("sink", &["ip", "addr", "add", "10.0.0.1/24", "dev", "vx100"]);
    bed.exec("sink", &["ethtool", "-K", "vx100", "tx", "off"]);
    // The overlay's gateway: nothing on the bridge domain answers ARP for
    // it, so the host knows its MAC (any: the VTEP floods it to the NAT).
    bed.exec(
        "sink",
        &["ip", "neigh", "add", "10.0.0.254", "lladdr", "02:00:00:00:0a:fe", "dev", "vx100", "nud", "permanent"],
    );
    bed.exec("sink", &["ip", "route", "add", "default", "via", "10.0.0.254"]);
    // Operated over its own socket (nfv ctl runs outside the namespace:
    // the socket is a file).
    let socket = std::env::temp_dir().join(format!("nfv-compose-{}.sock", std::process::id()));
    let config = format!(
        "{}\n[management]\nlisten = \"off\"\nsocket = \"{}\"\n",
        include_str!("../../configs/vtep-acl-nat44.toml"),
        socket.display()
    );
    let dut = bed.start_nfv(&config, 2);
    std::thread::sleep(Duration::from_millis(300));
    // A packet traced from the VTEP on: the headers after each stage show
    // the tunnel gone, the ACL passing it and the NAT's new source.
    let ctl = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_nfv"))
            .arg("ctl")
            .arg("--socket")
            .arg(&socket)
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    ctl(&["trace", "add", "1", "--stage", "vtep"]);
    bed.exec("sink", &["ping", "-c", "1", "-w", "5", "198.51.100.2"]);
    let trace = ctl(&["show", "trace"]);
    let step = |at: &str| {
        trace.lines().find(|l| l.trim_start().starts_with(at) && !l.contains("picked")).unwrap_or("").to_string()
    };
    let picked = trace.lines().find(|l| l.contains("picked")).unwrap_or("");
    assert!(
        picked.contains("192.168.0.2:") && picked.contains("> 192.168.0.1:4789 udp"),
        "the tunnel packet:\n{trace}"
    );
    assert!(step("vtep").contains("10.0.0.1 > 198.51.100.2 proto 1"), "decapsulated:\n{trace}");
    assert!(
        step("fw").contains("egress d0: ") && step("fw").contains("10.0.0.1 > 198.51.100.2"),
        "permitted:\n{trace}"
    );
    assert!(step("nat").contains("198.51.100.10 > 198.51.100.2"), "translated:\n{trace}");
    let watch = bed.spawn_in_ns("gen", || Capture::open("g0").count(usize::MAX, Duration::from_secs(6), telnet));
    bed.exec("sink", &["ping", "-c", "3", "-i", "0.3", "-w", "10", "198.51.100.2"]);
    // TCP out through the tunnel, 128 KiB each way, byte for byte: the
    // server answers 198.51.100.10, the answers find the host's MAC.
    let data: Vec<u8> = (0..128 * 1024u32).map(|i| (i.wrapping_mul(2654435761) >> 11) as u8).collect();
    let (got, sent) = bed.nc_transfer("gen", "sink", "198.51.100.2", "5000", &data);
    assert!(sent && got == data, "TCP from the overlay to the outside: {} of {} octets", got.len(), data.len());
    // Telnet: the SYN is denied after decapsulation, and never leaves.
    let out = Command::new("ip")
        .args(["netns", "exec", &bed.ns("sink"), "timeout", "5", "nc", "-z", "-w", "2", "198.51.100.2", "23"])
        .output()
        .unwrap();
    assert!(!out.status.success(), "telnet got through");
    assert_eq!(watch.join().unwrap(), 0, "a telnet SYN reached the outside");
    let report = dut.stop().text;
    assert!(report.contains("denied-by-rule="), "{report}");
    assert!(report.contains("branch to `from-overlay`") && report.contains("branch to `from-outside`"), "{report}");
}

#[test]
fn a_scapy_gnbs_ue_reaches_the_data_network_through_the_upf_the_acl_and_the_nat() {
    let test = "a_scapy_gnbs_ue_reaches_the_data_network_through_the_upf_the_acl_and_the_nat";
    if !privileged(test)
        || !nfv_testkit::tools_or_skip(test, &[&["/usr/bin/python3", "-c", "import scapy.contrib.gtp"]])
    {
        return;
    }
    let bed = TestBed::up("line", 1);
    bed.exec("gen", &["ip", "addr", "flush", "dev", "g0"]);
    bed.exec("gen", &["ip", "addr", "add", "10.10.0.2/24", "dev", "g0"]);
    bed.exec("sink", &["ip", "addr", "flush", "dev", "s0"]);
    bed.exec("sink", &["ip", "addr", "add", "198.51.100.2/24", "dev", "s0"]);
    // No route to the UE pool: only translated traffic can be answered.
    let server = bed.pong_server("sink", "198.51.100.2:7000", 5);
    let watch = bed.spawn_in_ns("sink", || Capture::open("s0").count(usize::MAX, Duration::from_secs(6), telnet));
    let dut = bed.start_nfv(include_str!("../../configs/upf-acl-nat44.toml"), 2);
    std::thread::sleep(Duration::from_millis(500));
    let d0 = bed.mac("dut", "d0").iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/scapy/gnb.py");
    let out = Command::new("ip")
        .args(["netns", "exec", &bed.ns("gen"), "/usr/bin/python3"])
        .arg(&script)
        .args(["g0", &d0, "5", "telnet"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{text}\n{}", String::from_utf8_lossy(&out.stderr));
    let peers: Vec<String> = server.join().unwrap().into_iter().map(|(peer, _)| peer).collect();
    let report = dut.stop().text;
    assert_eq!(peers, vec!["198.51.100.10:4000"; 5], "the server saw the UE translated\n{report}");
    let mut lines: Vec<&str> = text.lines().collect();
    lines.sort();
    let want: Vec<String> = (0..5).map(|i| format!("43981 9 0 198.51.100.2 10.45.0.7 pong {i}")).collect();
    assert_eq!(lines, want, "the answers, translated back and tunnelled to the gNB\n{report}");
    assert_eq!(watch.join().unwrap(), 0, "the UE's telnet SYN reached the data network");
    assert!(report.contains("denied-by-rule=1"), "{report}");
}
