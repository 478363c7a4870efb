//! Functions compose: the shipped `upf -> acl -> nat44` and
//! `vtep -> acl -> nat44` graphs, replayed offline with `nfv replay`, a
//! capture on each port. scapy builds what arrives (G-PDUs from a gNB,
//! VXLAN from a remote VTEP, answers from a server) and tshark reads what
//! each port sent: the ACL sees the decapsulated packets (telnet never
//! leaves), the NAT translates what it permits, and the answers go back
//! translated into the tunnel.

use std::path::{Path, PathBuf};
use std::process::Command;

fn runnable(test: &str) -> bool {
    nfv_testkit::tools_or_skip(
        test,
        &[&["/usr/bin/python3", "-c", "import scapy.contrib.gtp, scapy.layers.vxlan"], &["tshark", "--version"]],
    )
}

/// A scratch directory with scapy's captures in it (the ports' default
/// MACs: the replayed configurations name none).
fn captures(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("nfv-compose-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/scapy/compose_pcaps.py");
    let macs = [nfv_core::config::default_port_mac(0), nfv_core::config::default_port_mac(1)]
        .map(|m| m.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":"));
    let out = Command::new("/usr/bin/python3").arg(&script).arg(&dir).args(&macs).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    dir
}

/// The shipped configuration `name` with static next hops (nobody answers
/// ARP offline), written next to the captures.
fn config(dir: &Path, name: &str, neighbours: &[(&str, &str, &str)]) -> PathBuf {
    let mut text =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs").join(name)).unwrap();
    for (ip, mac, port) in neighbours {
        text += &format!("\n[[neighbours]]\nip = \"{ip}\"\nmac = \"{mac}\"\nport = \"{port}\"\n");
    }
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// Replays `inputs` (port, capture) through `cfg`; returns the report and
/// what each port sent, as tshark decodes it: one line per packet, its
/// port then `fields` (several values of a field joined by commas).
fn replay(cfg: &Path, inputs: &[(&str, &str)], fields: &[&str]) -> (String, Vec<String>) {
    let dir = cfg.parent().unwrap();
    let out = dir.join("recording.pcapng");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_nfv"));
    cmd.arg("replay").arg(cfg).arg("--out").arg(&out);
    for (port, file) in inputs {
        cmd.arg("--in").arg(format!("{port}={}", dir.join(file).display()));
    }
    let run = cmd.output().unwrap();
    let report = String::from_utf8_lossy(&run.stdout).into_owned();
    assert!(run.status.success(), "{report}{}", String::from_utf8_lossy(&run.stderr));
    let mut tshark = Command::new("tshark");
    tshark.arg("-r").arg(&out).args(["-T", "fields", "-E", "separator=;", "-e", "frame.interface_name"]);
    for f in fields {
        tshark.args(["-e", f]);
    }
    let decoded = tshark.output().unwrap();
    assert!(decoded.status.success(), "{}", String::from_utf8_lossy(&decoded.stderr));
    let lines = String::from_utf8_lossy(&decoded.stdout).lines().map(str::to_string).collect();
    (report, lines)
}

#[test]
fn upf_then_acl_then_nat44_filters_and_translates_the_ues_traffic_both_ways() {
    if !runnable("upf_then_acl_then_nat44_filters_and_translates_the_ues_traffic_both_ways") {
        return;
    }
    let dir = captures("upf");
    let neighbours = [("10.10.0.2", "02:00:00:00:0b:02", "d0"), ("198.51.100.2", "02:00:00:00:0c:02", "d1")];
    let cfg = config(&dir, "upf-acl-nat44.toml", &neighbours);
    let fields = ["ip.src", "ip.dst", "tcp.dstport", "udp.dstport", "gtp.teid"];
    let (report, sent) = replay(&cfg, &[("d0", "gtpu_up.pcap"), ("d1", "gtpu_down.pcap")], &fields);
    assert_eq!(
        sent,
        [
            // The UE's web and DNS traffic, decapsulated and translated.
            "d1;198.51.100.10;203.0.113.5;80;;",
            "d1;198.51.100.10;203.0.113.5;;53;",
            // The server's answer, translated back and tunnelled to the gNB.
            "d0;10.10.0.1,203.0.113.5;10.10.0.2,10.45.0.7;40000;2152;0x0000abcd",
        ],
        "{report}"
    );
    assert!(report.contains("denied-by-rule=1"), "the UE's telnet, filtered after decapsulation:\n{report}");
    assert!(report.contains("no-mapping=1"), "telnet from outside finds no mapping:\n{report}");
    assert!(report.contains("uplink 3 downlink 1"), "{report}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn vtep_then_acl_then_nat44_filters_and_translates_the_overlays_traffic_both_ways() {
    if !runnable("vtep_then_acl_then_nat44_filters_and_translates_the_overlays_traffic_both_ways") {
        return;
    }
    let dir = captures("vtep");
    let neighbours = [("192.168.0.2", "02:00:00:00:0d:02", "d1"), ("198.51.100.2", "02:00:00:00:0c:02", "d0")];
    let cfg = config(&dir, "vtep-acl-nat44.toml", &neighbours);
    let fields = ["eth.dst", "ip.src", "ip.dst", "tcp.dstport", "vxlan.vni"];
    let (report, sent) = replay(&cfg, &[("d1", "vxlan_up.pcap"), ("d0", "vxlan_down.pcap")], &fields);
    assert_eq!(
        sent,
        [
            // The host's web traffic, decapsulated, translated, to the router.
            "d0;02:00:00:00:0c:02;198.51.100.10;203.0.113.5;80;",
            // The answer, translated back to the host's MAC and address,
            // into the tunnel to the remote VTEP.
            "d1;02:00:00:00:0d:02,02:00:00:00:0a:01;192.168.0.1,203.0.113.5;192.168.0.2,10.0.0.1;40000;100",
        ],
        "{report}"
    );
    assert!(report.contains("denied-by-rule=1"), "the host's telnet, filtered after decapsulation:\n{report}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// `upf -> acl -> nat44` as a new user writes it: one linear chain.
const LINEAR: &str = r#"
[[ports]]
name = "d0"
kind = "af-xdp"
interface = "d0"
addresses = ["10.10.0.1/24"]

[[ports]]
name = "d1"
kind = "af-xdp"
interface = "d1"
addresses = ["198.51.100.1/24"]

[[chains]]
name = "mobile"
stages = [
    { kind = "upf", n3 = "d0", n3-address = "10.10.0.1", n6 = "d1", n6-gateway = "198.51.100.2",
      sessions = [{ seid = 1, ue = "10.45.0.7", uplink-teid = 4660, gnb = "10.10.0.2", downlink-teid = 43981 }] },
    { kind = "acl", default = "permit", rules = [{ action = "deny", proto = "tcp", dst-port = 23 }] },
    { kind = "nat44", inside = ["d0"], outside = "d1", pool = ["198.51.100.10"], inside-prefixes = ["10.45.0.0/16"],
      outside-gateway = "198.51.100.2" },
]

[[workers]]
rx = ["d0", "d1"]
chain = "mobile"

[[neighbours]]
ip = "198.51.100.2"
mac = "02:00:00:00:0c:02"
port = "d1"
"#;

#[test]
fn a_linear_upf_acl_nat44_chain_filters_and_translates_the_uplink() {
    if !runnable("a_linear_upf_acl_nat44_chain_filters_and_translates_the_uplink") {
        return;
    }
    // What the ACL permits leaves translated; telnet never leaves. (The
    // answers need the NAT before the UPF: the shipped graph.)
    let dir = captures("linear");
    let cfg = dir.join("linear.toml");
    std::fs::write(&cfg, LINEAR).unwrap();
    let (report, sent) = replay(&cfg, &[("d0", "gtpu_up.pcap")], &["ip.src", "ip.dst", "tcp.dstport", "udp.dstport"]);
    assert_eq!(sent, ["d1;198.51.100.10;203.0.113.5;80;", "d1;198.51.100.10;203.0.113.5;;53"], "{report}");
    assert!(report.contains("denied-by-rule=1"), "{report}");
    let _ = std::fs::remove_dir_all(&dir);
}
