//! NSH (RFC 8300) against independent implementations, offline: scapy's
//! NSH layer builds what arrives (MD types 1 and 2, and bad headers) and
//! decodes what our forwarder and classifier send; tshark reads our NSH
//! without a warning. One instance: a forwarder whose path (SPI 10) runs
//! through a local firewall (an NSH-unaware ACL, proxied) to the next
//! forwarder; a classifier putting plain traffic on that path.

use std::path::{Path, PathBuf};
use std::process::Command;

const CONFIG: &str = r#"
[[ports]]
name = "d0"                 # clients
kind = "af-xdp"
interface = "d0"
addresses = ["10.0.0.254/24"]

[[ports]]
name = "d1"                 # the service path's link
kind = "af-xdp"
interface = "d1"
addresses = ["192.168.100.1/24"]

[[chains]]
name = "entry"
stages = [{ kind = "classify", rules = [{ ethertype = "nsh", chain = "sff" }, { ingress = "d0", chain = "classifier" }] }]

[[chains]]
name = "classifier"
stages = [{ kind = "nsh-encap", spi = 10, si = 255, tenant = 7 }, { use = "sff" }]

[[chains]]
name = "sff"
stages = [{ kind = "sff", name = "sff", ports = ["d1"], paths = [
    { spi = 10, si = 255, chain = "fw" },
    { spi = 10, si = 254, next-hop = "192.168.100.3" },
] }]

[[chains]]
name = "fw"
stages = [
    { kind = "acl", default = "permit", rules = [{ action = "deny", proto = "tcp", dst-port = 23 }] },
    { kind = "nsh-return", sff = "sff" },
]

[[workers]]
rx = ["d0", "d1"]
chain = "entry"

[[neighbours]]
ip = "192.168.100.3"
mac = "02:00:00:00:0e:03"
port = "d1"
"#;

fn runnable(test: &str) -> bool {
    nfv_testkit::tools_or_skip(
        test,
        &[&["/usr/bin/python3", "-c", "import scapy.contrib.nsh"], &["tshark", "--version"]],
    )
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/scapy/nsh.py")
}

/// Scratch directory with scapy's captures and the configuration.
fn setup(name: &str, config: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("nfv-nsh-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mac = nfv_core::config::default_port_mac(1).iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":");
    let out = Command::new("/usr/bin/python3").arg(script()).arg("build").arg(&dir).arg(mac).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    std::fs::write(dir.join("sfc.toml"), config).unwrap();
    dir
}

/// Replays `capture` arriving on `port`; the report, scapy's reading of
/// what was sent (see tests/scapy/nsh.py) and tshark's (`spi si ttl
/// mdtype tlv-classes tlv-types tlv-lengths tlv-values inner-dst
/// inner-dport`: scapy's NSHTLV takes a TLV's Length for 4-octet words,
/// RFC 8300 2.5.1 and tshark for octets, so MD type 2 is read by tshark).
fn replay(dir: &Path, port: &str, capture: &str) -> (String, Vec<String>, Vec<String>) {
    let rec = dir.join(format!("{capture}.out.pcapng"));
    let run = Command::new(env!("CARGO_BIN_EXE_nfv"))
        .arg("replay")
        .arg(dir.join("sfc.toml"))
        .arg("--in")
        .arg(format!("{port}={}", dir.join(capture).display()))
        .arg("--out")
        .arg(&rec)
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&run.stdout).into_owned();
    assert!(run.status.success(), "{report}{}", String::from_utf8_lossy(&run.stderr));
    let decoded = Command::new("/usr/bin/python3").arg(script()).arg("decode").arg(&rec).output().unwrap();
    assert!(decoded.status.success(), "{}", String::from_utf8_lossy(&decoded.stderr));
    // tshark: every packet dissected, no expert warning or error.
    let t = Command::new("tshark").arg("-r").arg(&rec).args(["-z", "expert,warn", "-q"]).output().unwrap();
    let experts = String::from_utf8_lossy(&t.stdout);
    assert!(!experts.contains("Warning") && !experts.contains("Error"), "tshark: {experts}");
    let fields = [
        "nsh.spi",
        "nsh.si",
        "nsh.ttl",
        "nsh.mdtype",
        "nsh.metadataclass",
        "nsh.metadatatype",
        "nsh.metadatalen",
        "nsh.metadata",
        "ip.dst",
        "tcp.dstport",
    ];
    let mut t = Command::new("tshark");
    t.arg("-r").arg(&rec).args(["-T", "fields", "-E", "separator= ", "-E", "aggregator=,"]);
    for f in fields {
        t.args(["-e", f]);
    }
    let t = t.output().unwrap();
    let lines = |b: &[u8]| String::from_utf8_lossy(b).lines().map(str::to_string).collect::<Vec<_>>();
    let scapy =
        lines(&decoded.stdout).into_iter().map(|l| l.split_once(' ').map_or(l.clone(), |x| x.1.to_string())).collect();
    (report, scapy, lines(&t.stdout))
}

#[test]
fn md1_through_a_proxied_firewall_to_the_next_forwarder() {
    if !runnable("md1_through_a_proxied_firewall_to_the_next_forwarder") {
        return;
    }
    let dir = setup("md1", CONFIG);
    let (report, sent, tshark) = replay(&dir, "d1", "nsh_md1.pcap");
    // SI 255 -> the firewall (proxied) -> SI 254, TTL 63 -> 62, the
    // context as it came; telnet denied inside.
    assert_eq!(sent, ["10 254 62 1 3 00000007 00000000 00000000 00000000 203.0.113.5 80"], "{report}");
    assert_eq!(tshark, ["10 254 0x003e 1     203.0.113.5 80"], "{report}");
    assert!(report.contains("denied-by-rule=1"), "{report}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn md2_tlvs_go_through_untouched() {
    if !runnable("md2_tlvs_go_through_untouched") {
        return;
    }
    let dir = setup("md2", CONFIG);
    let (report, _, tshark) = replay(&dir, "d1", "nsh_md2.pcap");
    assert_eq!(tshark, ["10 254 0x003e 2 65526 1 0x04 00000007 203.0.113.5 80"], "{report}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_nsh_is_dropped_under_its_reason() {
    if !runnable("bad_nsh_is_dropped_under_its_reason") {
        return;
    }
    let dir = setup("bad", CONFIG);
    let (report, sent, tshark) = replay(&dir, "d1", "nsh_bad.pcap");
    assert!(sent.is_empty() && tshark.is_empty(), "{sent:?}\n{report}");
    for reason in ["si-zero=1", "nsh-ttl-expired=1", "malformed-nsh=1", "no-path=1"] {
        assert!(report.contains(reason), "no {reason}:\n{report}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_classifier_puts_plain_traffic_on_the_path_with_its_context() {
    if !runnable("the_classifier_puts_plain_traffic_on_the_path_with_its_context") {
        return;
    }
    let dir = setup("classify", CONFIG);
    let (report, sent, _) = replay(&dir, "d0", "plain.pcap");
    // Tenant 7 in the first word, the ingress port (d0: 0) in the second.
    assert_eq!(sent, ["10 254 62 1 3 00000007 00000000 00000000 00000000 203.0.113.5 80"], "{report}");
    let dir2 = setup("classify2", &CONFIG.replace("tenant = 7 }", "tenant = 7, md-type = 2 }"));
    let (report, _, tshark) = replay(&dir2, "d0", "plain.pcap");
    // MD type 2: the tenant TLV, then the ingress port's (2 octets, padded).
    assert_eq!(tshark, ["10 254 0x003e 2 65526,65526 1,2 0x04,0x02 00000007,0000 203.0.113.5 80"], "{report}");
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&dir2);
}

#[test]
fn vxlan_gpe_carries_nsh_between_forwarders_not_on_one_link() {
    if !runnable("vxlan_gpe_carries_nsh_between_forwarders_not_on_one_link") {
        return;
    }
    let gpe = CONFIG
        .replace(
            "ports = [\"d1\"], paths = [",
            "ports = [\"d1\"], transport = \"vxlan-gpe\", local-ip = \"192.168.100.1\", paths = [",
        )
        .replace("tenant = 7 }", "tenant = 7, transport = \"vxlan-gpe\", local-ip = \"192.168.100.1\" }")
        .replace("{ ethertype = \"nsh\", chain = \"sff\" }", "{ proto = \"udp\", dst-port = 4790, chain = \"sff\" }");
    let dir = setup("gpe", &gpe);
    // From scapy's VXLAN-GPE: through the firewall, to the next forwarder.
    let (report, sent, _) = replay(&dir, "d1", "gpe_md1.pcap");
    let want = "10 254 62 1 3 00000007 00000000 00000000 00000000 203.0.113.5 80 via 192.168.100.1>192.168.100.3:4790";
    assert_eq!(sent, [want], "{report}");
    assert!(report.contains("denied-by-rule=1"), "{report}");
    // Our classifier over VXLAN-GPE.
    let (report, sent, _) = replay(&dir, "d0", "plain.pcap");
    assert_eq!(sent, [want], "{report}");
    let _ = std::fs::remove_dir_all(&dir);
}
