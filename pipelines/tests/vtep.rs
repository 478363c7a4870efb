//! Live VTEP interop: nfv's VXLAN endpoint on AF_XDP against the Linux
//! kernel's vxlan device as the remote VTEP (tests/testbed.sh `line`):
//!
//!   gen [g0 10.10.0.1] -- [d0] nfv VTEP 192.168.0.1 [d1] -- [s0 192.168.0.2]
//!   sink: vx100 (VNI 100, 10.10.0.2) over s0
//!
//! ARP floods through the tunnel, ping and TCP (nc) work both ways, and
//! both sides' forwarding databases show what they learned; the same over
//! an IPv6 underlay (fd00::1 / fd00::2), where both sides checksum UDP, or
//! both send zero checksums (RFC 6935) when configured to.
#![cfg(feature = "af-xdp")]

mod common;

use std::process::Command;

use common::testbed::{TestBed, privileged};

const CONFIG: &str = include_str!("../../configs/vtep-vxlan.toml");

/// The kernel VTEP in `sink`; `v6` puts the underlay on IPv6 (fd00::/64);
/// `zero_csum`: it sends and accepts zero UDP checksums (RFC 6935).
fn kernel_vtep(bed: &TestBed, v6: bool, zero_csum: bool) {
    let (ours, theirs, prefix, inner_mtu) =
        if v6 { ("fd00::1", "fd00::2", "64", "1430") } else { ("192.168.0.1", "192.168.0.2", "24", "1450") };
    bed.exec("gen", &["ip", "link", "set", "g0", "mtu", inner_mtu]);
    bed.exec("gen", &["ip", "addr", "add", "10.10.0.1/24", "dev", "g0"]);
    let addr = format!("{theirs}/{prefix}");
    if v6 {
        bed.exec("sink", &["sysctl", "-qw", "net.ipv6.conf.s0.disable_ipv6=0"]);
        bed.exec("sink", &["ip", "addr", "add", &addr, "dev", "s0", "nodad"]);
    } else {
        bed.exec("sink", &["ip", "addr", "add", &addr, "dev", "s0"]);
    }
    let mut vxlan = vec![
        "ip", "link", "add", "vx100", "type", "vxlan", "id", "100", "local", theirs, "dstport", "4789", "dev", "s0",
    ];
    if zero_csum {
        vxlan.extend(["udp6zerocsumtx", "udp6zerocsumrx"]);
    }
    bed.exec("sink", &vxlan);
    // Head-end replication on the kernel side too: BUM traffic to our VTEP.
    bed.exec("sink", &["bridge", "fdb", "append", "00:00:00:00:00:00", "dev", "vx100", "dst", ours]);
    bed.exec("sink", &["ip", "addr", "add", "10.10.0.2/24", "dev", "vx100"]);
    bed.exec("sink", &["sysctl", "-qw", "net.ipv6.conf.vx100.disable_ipv6=1"]);
    bed.exec("sink", &["ethtool", "-K", "vx100", "tx", "off"]);
    bed.exec("sink", &["ip", "link", "set", "vx100", "up"]);
}

#[test]
fn vxlan_interoperates_with_the_kernel_vtep() {
    if privileged("vxlan_interoperates_with_the_kernel_vtep") {
        interop(false, false);
    }
}

#[test]
fn vxlan_over_ipv6_interoperates_with_the_kernel_vtep() {
    if privileged("vxlan_over_ipv6_interoperates_with_the_kernel_vtep") {
        interop(true, false);
    }
}

/// Zero UDP checksums both ways over IPv6 (RFC 6935), as the kernel does
/// with `udp6zerocsumtx udp6zerocsumrx`.
#[test]
fn vxlan_over_ipv6_with_zero_udp_checksums_interoperates_with_the_kernel_vtep() {
    if privileged("vxlan_over_ipv6_with_zero_udp_checksums_interoperates_with_the_kernel_vtep") {
        interop(true, true);
    }
}

fn interop(v6: bool, zero_csum: bool) {
    let bed = TestBed::up("line", 1);
    kernel_vtep(&bed, v6, zero_csum);
    let (ours, theirs) = if v6 { ("fd00::1", "fd00::2") } else { ("192.168.0.1", "192.168.0.2") };
    let mut config = if v6 {
        CONFIG.replace("192.168.0.1/24", "fd00::1/64").replace("192.168.0.1", ours).replace("192.168.0.2", theirs)
    } else {
        CONFIG.to_string()
    };
    if zero_csum {
        let with = "arp-suppression = true, accept-zero-udp6-checksum = true, zero-udp6-checksum-tx = true";
        config = config.replace("arp-suppression = true", with);
    }
    let dut = bed.start_nfv(&config, 2);
    // Over IPv6, what reaches the kernel VTEP carries a computed UDP
    // checksum, or zero when so configured (RFC 6935).
    let checksums = v6.then(|| {
        bed.spawn_in_ns("sink", move || {
            let cap = common::packet::Capture::open("s0");
            let vxlan6 =
                |f: &[u8]| f.len() > 62 && f[12..14] == [0x86, 0xdd] && f[20] == 17 && f[56..58] == [0x12, 0xb5];
            cap.count(3, std::time::Duration::from_secs(3), |f| vxlan6(f) && (f[60..62] == [0, 0]) == zero_csum)
        })
    });
    std::thread::sleep(std::time::Duration::from_millis(200));
    // ARP is flooded through the tunnel; echo comes back through it.
    bed.exec("gen", &["ping", "-c", "3", "-i", "0.3", "-w", "10", "10.10.0.2"]);
    if let Some(c) = checksums {
        let kind = if zero_csum { "zero" } else { "non-zero" };
        assert_eq!(c.join().unwrap(), 3, "VXLAN packets to the kernel VTEP with a {kind} UDP checksum");
    }
    bed.exec("sink", &["ping", "-c", "2", "-i", "0.3", "-w", "10", "10.10.0.1"]);
    // TCP both ways, 256 KiB each, byte for byte.
    let data: Vec<u8> = (0..256 * 1024u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect();
    let (there, sent) = bed.nc_transfer("sink", "gen", "10.10.0.2", "5000", &data);
    assert!(sent, "nc client in gen failed");
    let (back, sent) = bed.nc_transfer("gen", "sink", "10.10.0.1", "5001", &data);
    assert!(sent, "nc client in sink failed");
    // A host whose MTU ignores the tunnel learns the path MTU from us.
    if !v6 {
        bed.exec("gen", &["ip", "link", "set", "g0", "mtu", "1500"]);
        let out = Command::new("ip")
            .args([
                "netns",
                "exec",
                &bed.ns("gen"),
                "ping",
                "-M",
                "do",
                "-s",
                "1472",
                "-c",
                "1",
                "-W",
                "2",
                "10.10.0.2",
            ])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("From 10.10.0.254") && text.contains("mtu = 1450"), "{text}");
    }
    // ARP suppression: with its cache flushed, gen asks again and we answer.
    bed.exec("gen", &["ip", "neigh", "flush", "dev", "g0"]);
    bed.exec("gen", &["ping", "-c", "1", "-w", "5", "10.10.0.2"]);
    // The kernel learned our host behind our VTEP...
    let g0 = bed.mac("gen", "g0").map(|b| format!("{b:02x}")).join(":");
    let kernel_fdb = bed.exec("sink", &["bridge", "fdb", "show", "dev", "vx100"]);
    let report = dut.stop();
    assert!(kernel_fdb.contains(&format!("{g0} dst {ours}")), "{kernel_fdb}");
    assert!(there == data, "gen -> sink over TCP: {} of {} bytes\n{}", there.len(), data.len(), report.text);
    assert!(back == data, "sink -> gen over TCP: {} of {} bytes\n{}", back.len(), data.len(), report.text);
    // ...and we learned the kernel's vx100 behind its VTEP, and g0 on d0.
    let vx = bed.mac("sink", "vx100").map(|b| format!("{b:02x}")).join(":");
    assert!(report.text.contains(&format!("fdb vni 100 {vx} -> vtep {theirs}")), "{}", report.text);
    assert!(report.text.contains(&format!("fdb vni 100 {g0} -> port d0")), "{}", report.text);
    let (d0, d1) = (report.port("d0"), report.port("d1"));
    assert_eq!(d0.drops + d1.drops, 0, "{}", report.text);
    assert!(report.text.contains("flooded"), "{}", report.text);
    assert!(!report.text.contains("arp-suppressed 0"), "{}", report.text);
    // Over IPv4, known unicast went below the workers (the XDP offload,
    // on by default): the bulk of the TCP transfers never reached them.
    // Over IPv6 it stays with them (the program speaks VXLAN over IPv4).
    let (forwarded, installed) = report.xdp();
    if v6 {
        assert_eq!(forwarded, 0, "{}", report.text);
    } else {
        assert!(forwarded > 200 && installed >= 2, "{}", report.text);
    }
}

/// Geneve live, with scapy as the remote VTEP in the sink namespace: its
/// Geneve packet (with an option) carries an echo request to gen's kernel,
/// whose reply comes back through our Geneve encapsulation with our option.
#[test]
fn geneve_interoperates_with_scapy_as_the_remote_vtep() {
    if !privileged("geneve_interoperates_with_scapy_as_the_remote_vtep") {
        return;
    }
    let bed = TestBed::up("line", 1);
    bed.exec("gen", &["ip", "link", "set", "g0", "mtu", "1450"]);
    bed.exec("gen", &["ip", "addr", "add", "10.10.0.1/24", "dev", "g0"]);
    // The echo reply goes straight to the remote host's MAC.
    bed.exec("gen", &["ip", "neigh", "replace", "10.10.0.2", "lladdr", "02:00:00:00:00:c3", "dev", "g0"]);
    bed.exec("sink", &["ip", "addr", "add", "192.168.0.2/24", "dev", "s0"]);
    let config = CONFIG.replace(
        "protocol = \"vxlan\",",
        "protocol = \"geneve\", geneve-options = [{ class = 0x0102, type = 1, data = \"0a0b0c0d\" }],",
    );
    assert!(config.contains("geneve"), "{config}");
    let dut = bed.start_nfv(&config, 2);
    let g0 = bed.mac("gen", "g0").map(|b| format!("{b:02x}")).join(":");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/scapy/geneve_peer.py");
    let out = Command::new("ip")
        .args(["netns", "exec", &bed.ns("sink"), "/usr/bin/python3", script, "s0", "192.168.0.2", "192.168.0.1", &g0])
        .output()
        .unwrap();
    let report = dut.stop();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}{}\n{}", String::from_utf8_lossy(&out.stderr), report.text);
    assert!(text.contains("vni 100"), "{text}");
    assert!(text.contains("opts 0102:01:0a0b0c0d"), "{text}");
    assert!(text.contains("icmp 0 77 10.10.0.1 10.10.0.2 scapy-geneve"), "echo reply from gen's kernel: {text}");
    assert!(report.text.contains("fdb vni 100 02:00:00:00:00:c3 -> vtep 192.168.0.2"), "{}", report.text);
}
