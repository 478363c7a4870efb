//! A service path across nfv instances over NSH, live (tests/testbed.sh
//! `sfc`, configs/sfc/): a classifier, a firewall and a NAT44, each its
//! own `nfv` process in its own namespace, their forwarders on one bridge.
//! The client's ping and TCP reach the server and come back through all
//! three; telnet is denied at the firewall; the counters of the hops
//! agree; and while a TCP connection carries data, the path is moved to a
//! second firewall by editing the paths files, the connection losing
//! nothing.
#![cfg(feature = "af-xdp")]

mod common;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::testbed::{TestBed, privileged};

/// configs/sfc copied to a scratch directory (its paths files get edited).
fn lab() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("nfv-sfc-lab-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/sfc");
    for e in std::fs::read_dir(src).unwrap() {
        let p = e.unwrap().path();
        std::fs::copy(&p, dir.join(p.file_name().unwrap())).unwrap();
    }
    let fw = std::fs::read_to_string(dir.join("firewall.toml")).unwrap();
    std::fs::write(dir.join("firewall2.toml"), fw.replace("192.168.100.2/24", "192.168.100.4/24")).unwrap();
    dir
}

/// Packets a stage of a report's table took in.
fn packets(report: &str, stage: &str) -> u64 {
    report
        .lines()
        .find(|l| l.split_whitespace().next() == Some(stage))
        .and_then(|l| l.split_whitespace().nth(1))
        .map_or(0, |n| n.parse().unwrap())
}

#[test]
fn a_service_path_across_three_instances_carries_ping_and_tcp_and_moves_to_another_firewall() {
    if !privileged("a_service_path_across_three_instances_carries_ping_and_tcp_and_moves_to_another_firewall") {
        return;
    }
    let bed = TestBed::up("sfc", 1);
    let dir = lab();
    let fw1 = bed.start_nfv_file("fw1", &dir.join("firewall.toml"), 1);
    let fw2 = bed.start_nfv_file("fw2", &dir.join("firewall2.toml"), 1);
    let nat = bed.start_nfv_file("nat", &dir.join("nat.toml"), 2);
    let cls = bed.start_nfv_file("cls", &dir.join("classifier.toml"), 2);
    std::thread::sleep(Duration::from_millis(300));
    bed.exec("gen", &["ping", "-c", "3", "-i", "0.3", "-w", "10", "198.51.100.2"]);
    // Telnet: denied at the firewall, inside the service path.
    let telnet = std::process::Command::new("ip")
        .args(["netns", "exec", &bed.ns("gen"), "timeout", "5", "nc", "-z", "-w", "2", "198.51.100.2", "23"])
        .output()
        .unwrap();
    assert!(!telnet.status.success(), "telnet got through");
    // A TCP connection through the path: 40 chunks of 8 KiB, 100 ms
    // apart, echoed back; half way, the path moves to the second firewall.
    let server = bed.spawn_in_ns("sink", || {
        let l = std::net::TcpListener::bind("198.51.100.2:5000").unwrap();
        let (mut s, peer) = l.accept().unwrap();
        let mut buf = vec![0u8; 65536];
        let mut total = 0;
        loop {
            match s.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    s.write_all(&buf[..n]).unwrap();
                    total += n;
                }
            }
        }
        (peer.ip().to_string(), total)
    });
    std::thread::sleep(Duration::from_millis(200));
    let (moved_tx, moved_rx) = std::sync::mpsc::channel::<()>();
    let client = bed.spawn_in_ns("gen", move || {
        let mut s = std::net::TcpStream::connect_timeout(&"198.51.100.2:5000".parse().unwrap(), Duration::from_secs(5))
            .unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let chunk: Vec<u8> = (0..8192u32).map(|i| (i * 7 + 3) as u8).collect();
        let mut back = vec![0u8; chunk.len()];
        for i in 0..40 {
            s.write_all(&chunk).unwrap();
            s.read_exact(&mut back).unwrap();
            assert_eq!(back, chunk, "chunk {i} came back changed");
            if i == 20 {
                moved_rx.recv_timeout(Duration::from_secs(10)).expect("the path moved");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        40 * chunk.len()
    });
    std::thread::sleep(Duration::from_millis(1200));
    // Both ends of the path send through the second firewall now.
    for (file, from, to) in [
        (
            "classifier-paths.toml",
            "next-hop = \"192.168.100.2\" },      # the firewall",
            "next-hop = \"192.168.100.4\" },",
        ),
        ("nat-paths.toml", "next-hop = \"192.168.100.2\" },      # the firewall", "next-hop = \"192.168.100.4\" },"),
    ] {
        let p = dir.join(file);
        let text = std::fs::read_to_string(&p).unwrap();
        assert!(text.contains(from), "{file}: {text}");
        std::fs::write(&p, text.replace(from, to)).unwrap();
    }
    // The forwarders' watches poll once a second.
    std::thread::sleep(Duration::from_millis(2500));
    moved_tx.send(()).unwrap();
    let sent = client.join().expect("the connection carried everything, both ways");
    let (peer, echoed) = server.join().unwrap();
    assert_eq!(peer, "198.51.100.10", "the server saw the NAT's address");
    assert_eq!(echoed, sent);
    let (cls, fw1, fw2, nat) = (cls.stop().text, fw1.stop().text, fw2.stop().text, nat.stop().text);
    let all = format!("classifier:\n{cls}\nfirewall 1:\n{fw1}\nfirewall 2:\n{fw2}\nnat:\n{nat}");
    assert!(fw1.contains("denied-by-rule="), "telnet denied at the firewall:\n{all}");
    let (a1, a2) = (packets(&fw1, "acl"), packets(&fw2, "acl"));
    assert!(a1 > 0 && a2 > 0, "both firewalls carried the connection: {a1}, {a2}\n{all}");
    // Every packet put on a path at either end went through one firewall
    // (but for a frame the veths or the bridge lost under load: TCP sent
    // it again, and each hop's counters saw it once more).
    let encapsulated = packets(&cls, "nsh-encap") + packets(&nat, "nsh-encap");
    let lost = encapsulated.abs_diff(a1 + a2);
    assert!(
        a1 + a2 <= encapsulated && lost * 200 <= encapsulated,
        "the hops' counters agree: {a1} + {a2} of {encapsulated}\n{all}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
