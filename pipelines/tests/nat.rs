//! Live NAT44: nfv on AF_XDP between an inside network and an outside one
//! (tests/testbed.sh `line`, re-addressed), `configs/nat44.toml`:
//!
//!   gen [10.0.0.1] --+-- [d0 10.0.0.254] nfv [d1 198.51.100.1] -- [s0 198.51.100.2] sink
//!   gen2 [10.0.0.3] -/   (a bridge in gen joins both hosts to the inside link)
//!   pool 198.51.100.10; forward 198.51.100.10:8080 -> 10.0.0.1:8000
//!
//! The kernels' own ping, TCP (std sockets and nc), UDP, curl and
//! traceroute from the inside reach the outside, which sees only the pool
//! address; a second inside host shares the pool; the outside reaches the
//! inside server through the forward; the second host reaches it too
//! through the outside address (hairpinning). The established flows go
//! below the workers into nfv's XDP program (`[run] offload`, on by
//! default), which forwards the bulk of them.
#![cfg(feature = "af-xdp")]

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::testbed::{TestBed, privileged, two_workers};

const CONFIG: &str = include_str!("../../configs/nat44.toml");

fn addressed_bed(queues: u32) -> TestBed {
    let bed = TestBed::up("line", queues);
    bed.add_host("10.0.0.3/24", "10.0.0.254");
    bed.exec("gen", &["ip", "route", "add", "default", "via", "10.0.0.254"]);
    bed.exec("sink", &["ip", "addr", "flush", "dev", "s0"]);
    bed.exec("sink", &["ip", "addr", "add", "198.51.100.2/24", "dev", "s0"]);
    bed
}

/// A TCP server in `ns` that takes one connection: (its peer, what it
/// sent), and answers with `reply`.
fn tcp_server(
    bed: &TestBed,
    ns: &str,
    addr: &str,
    reply: &'static [u8],
) -> std::thread::JoinHandle<(SocketAddr, Vec<u8>)> {
    let addr: SocketAddr = addr.parse().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let h = bed.spawn_in_ns(ns, move || {
        let l = TcpListener::bind(addr).unwrap();
        tx.send(()).unwrap();
        // A connection that never comes fails the test, not hangs it.
        l.set_nonblocking(true).unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let (mut s, peer) = loop {
            match l.accept() {
                Ok(c) => break c,
                Err(_) if std::time::Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
                Err(e) => panic!("no connection to {addr} within 10 s: {e}"),
            }
        };
        s.set_nonblocking(false).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 65536];
        loop {
            match s.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    got.extend_from_slice(&buf[..n]);
                    if got.ends_with(b"\r\n\r\n") || got.ends_with(b"END") {
                        break;
                    }
                }
            }
        }
        let _ = s.write_all(reply);
        (peer, got)
    });
    rx.recv_timeout(Duration::from_secs(5)).expect("server listening");
    h
}

fn tcp_client(bed: &TestBed, ns: &str, to: &str, data: Vec<u8>) -> Vec<u8> {
    let to: SocketAddr = to.parse().unwrap();
    bed.in_ns(ns, move || {
        let mut s = TcpStream::connect_timeout(&to, Duration::from_secs(3)).expect("connect through the NAT");
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.write_all(&data).unwrap();
        let mut back = Vec::new();
        let _ = s.read_to_end(&mut back);
        back
    })
}

fn run(bed: &TestBed, ns: &str, cmd: &[&str]) -> (bool, String) {
    let out = Command::new("ip").args(["netns", "exec", &bed.ns(ns)]).args(cmd).stdin(Stdio::null()).output().unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr))
}

#[test]
fn inside_hosts_reach_the_outside_through_the_pool_and_the_outside_reaches_the_forward() {
    if !privileged("inside_hosts_reach_the_outside_through_the_pool_and_the_outside_reaches_the_forward") {
        return;
    }
    let bed = addressed_bed(1);
    // A management socket of its own: tests run side by side.
    let socket = std::env::temp_dir().join(format!("nfv-nat-test-{}.sock", std::process::id()));
    let config = format!("{CONFIG}\n[management]\nlisten = \"off\"\nsocket = \"{}\"\n", socket.display());
    let dut = bed.start_nfv(&config, 2);

    // ping (ICMP echo, translated by identifier).
    let (ok, out) = run(&bed, "gen", &["ping", "-c", "3", "-i", "0.3", "-W", "2", "198.51.100.2"]);
    assert!(ok, "ping through the NAT: {out}");

    // TCP: 256 KiB each way's worth from the inside; the server sees the pool.
    let data: Vec<u8> = (0..256 * 1024u32).map(|i| (i.wrapping_mul(2654435761) >> 7) as u8).chain(*b"END").collect();
    let server = tcp_server(&bed, "sink", "198.51.100.2:6000", b"thanks");
    let back = tcp_client(&bed, "gen", "198.51.100.2:6000", data.clone());
    let (peer, got) = server.join().unwrap();
    assert_eq!(peer.ip().to_string(), "198.51.100.10", "the outside sees the pool address");
    assert!(got == data, "TCP bytes: {} of {}", got.len(), data.len());
    assert_eq!(back, b"thanks");

    // UDP request/response.
    let echo = bed.spawn_in_ns("sink", || {
        let s = UdpSocket::bind("198.51.100.2:7000").unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut buf = [0u8; 64];
        let (n, peer) = s.recv_from(&mut buf).unwrap();
        s.send_to(&buf[..n], peer).unwrap();
        peer
    });
    std::thread::sleep(Duration::from_millis(200));
    let answer = bed.in_ns("gen", || {
        let s = UdpSocket::bind("0.0.0.0:5353").unwrap();
        s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
        s.send_to(b"question", "198.51.100.2:7000").unwrap();
        let mut buf = [0u8; 64];
        s.recv_from(&mut buf).map(|(n, _)| buf[..n].to_vec()).unwrap_or_default()
    });
    let peer = echo.join().unwrap();
    assert_eq!(answer, b"question", "the UDP answer came back");
    assert_eq!(peer.to_string(), "198.51.100.10:5353", "port preserved");

    // curl over HTTP.
    let web = tcp_server(&bed, "sink", "198.51.100.2:8081", b"HTTP/1.0 200 OK\r\nContent-Length: 5\r\n\r\nhello");
    let (ok, out) = run(&bed, "gen", &["curl", "-s", "-m", "5", "http://198.51.100.2:8081/"]);
    let _ = web.join();
    assert!(ok && out == "hello", "curl: {out}");

    // traceroute (UDP probes): the destination's "port unreachable"
    // comes back translated to the inside host.
    let (_, out) = run(&bed, "gen", &["traceroute", "-n", "-q", "1", "-w", "2", "-m", "4", "198.51.100.2"]);
    assert!(out.lines().skip(1).any(|l| l.contains("198.51.100.2 ")), "traceroute reaches the destination:\n{out}");
    assert!(out.lines().nth(1).is_some_and(|l| l.contains("10.0.0.254")), "the first hop is nfv:\n{out}");

    // A second inside host shares the pool.
    let server = tcp_server(&bed, "sink", "198.51.100.2:6001", b"ok");
    let (ok, out) = run(&bed, "gen2", &["sh", "-c", "printf 'from three END' | nc -N -w 3 198.51.100.2 6001"]);
    let (peer, got) = server.join().unwrap();
    assert!(ok, "nc from gen2: {out}");
    assert_eq!((peer.ip().to_string(), got.as_slice()), ("198.51.100.10".to_string(), &b"from three END"[..]));

    // The outside reaches the inside server through the forward.
    let server = tcp_server(&bed, "gen", "10.0.0.1:8000", b"served");
    let back = tcp_client(&bed, "sink", "198.51.100.10:8080", b"to the forward END".to_vec());
    let (peer, got) = server.join().unwrap();
    assert_eq!(peer.ip().to_string(), "198.51.100.2", "the server sees the real client");
    assert_eq!((got.as_slice(), back.as_slice()), (&b"to the forward END"[..], &b"served"[..]));

    // Hairpinning: the second host reaches the forward on the first by
    // the outside address, and the server sees the pool address.
    let server = tcp_server(&bed, "gen", "10.0.0.1:8000", b"hairpin ok");
    let (ok, out) = run(&bed, "gen2", &["sh", "-c", "printf 'via the pool END' | nc -N -w 3 198.51.100.10 8080"]);
    let (peer, got) = server.join().unwrap();
    assert!(ok && out.contains("hairpin ok"), "hairpin client: {out}");
    assert_eq!((peer.ip().to_string(), got.as_slice()), ("198.51.100.10".to_string(), &b"via the pool END"[..]));

    // The running plan, and what the XDP program did, as an operator asks
    // (the program's counters are read once a second: asked until they
    // show the traffic, 3 s at most).
    let show = || {
        let shown = Command::new(env!("CARGO_BIN_EXE_nfv"))
            .args(["ctl", "--socket"])
            .arg(&socket)
            .args(["--json", "show", "plan"])
            .output()
            .expect("nfv ctl runs");
        serde_json::from_slice::<serde_json::Value>(&shown.stdout).expect("JSON")
    };
    let asked = std::time::Instant::now();
    let mut plan = show();
    while plan["xdp"]["forwarded"].as_u64().unwrap_or(0) <= 100 && asked.elapsed() < Duration::from_secs(3) {
        std::thread::sleep(Duration::from_millis(200));
        plan = show();
    }
    let nat = plan["decisions"].as_array().unwrap().iter().find(|d| d["stage"] == "nat/nat44").cloned();
    assert_eq!(nat.map(|d| d["place"].clone()), Some("xdp".into()), "{plan}");
    assert!(plan["xdp"]["forwarded"].as_u64().unwrap() > 100, "{plan}");
    let report = dut.stop();
    for c in ["hairpinned", "icmp-errors"] {
        assert!(counter(&report.text, c) > 0, "{c} 0 in\n{}", report.text);
    }
    // With the XDP offload (the default): the established flows went
    // below the workers; the bulk of the TCP transfer never reached them.
    let (forwarded, installed) = report.xdp();
    assert!(forwarded > 100 && installed > 0, "{}", report.text);
}

/// The sum over workers of NAT report counter `name`.
fn counter(text: &str, name: &str) -> u64 {
    let found: Vec<u64> = text
        .split(&format!(" {name} "))
        .skip(1)
        .map(|t| t.split_whitespace().next().and_then(|n| n.parse().ok()).expect("a number"))
        .collect();
    assert!(!found.is_empty(), "no {name} in\n{text}");
    found.iter().sum()
}

/// Two workers, each polling one queue of each port: the kernels spread
/// flows over the queues by their own hash, so a flow's return traffic
/// often reaches the worker without its session; it is handed to the
/// worker that has it, and every flow works as with one worker.
#[test]
fn two_workers_hand_return_traffic_to_the_worker_holding_the_session() {
    if !privileged("two_workers_hand_return_traffic_to_the_worker_holding_the_session") {
        return;
    }
    let bed = addressed_bed(2);
    let dut = bed.start_nfv(&two_workers(CONFIG, "nat"), 4);
    let (ok, out) = run(&bed, "gen", &["ping", "-c", "3", "-i", "0.3", "-W", "2", "198.51.100.2"]);
    if !ok {
        panic!("ping through the NAT: {out}\n{}", dut.stop().text);
    }

    // UDP: 64 inside sockets (64 flows, spread over both queues each way),
    // each asks once; every answer comes back to its socket.
    const FLOWS: usize = 64;
    let echo = bed.spawn_in_ns("sink", || {
        let s = UdpSocket::bind("198.51.100.2:7000").unwrap();
        s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
        let mut peers = std::collections::HashSet::new();
        let mut buf = [0u8; 64];
        while let Ok((n, peer)) = s.recv_from(&mut buf) {
            s.send_to(&buf[..n], peer).unwrap();
            peers.insert(peer);
        }
        peers
    });
    std::thread::sleep(Duration::from_millis(200));
    let answered = bed.in_ns("gen", || {
        let socks: Vec<UdpSocket> = (0..FLOWS).map(|_| UdpSocket::bind("0.0.0.0:0").unwrap()).collect();
        for (i, s) in socks.iter().enumerate() {
            s.send_to(format!("question {i}").as_bytes(), "198.51.100.2:7000").unwrap();
        }
        socks
            .iter()
            .enumerate()
            .filter(|(i, s)| {
                s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
                let mut buf = [0u8; 64];
                s.recv(&mut buf).is_ok_and(|n| buf[..n] == *format!("question {i}").as_bytes())
            })
            .count()
    });
    let peers = echo.join().unwrap();
    if answered != FLOWS {
        panic!("{answered} of {FLOWS} UDP answers came back; {} asked\n{}", peers.len(), dut.stop().text);
    }
    assert_eq!(peers.len(), FLOWS, "one mapping per flow");
    assert!(peers.iter().all(|p| p.ip().to_string() == "198.51.100.10"), "{peers:?}");

    // TCP connections, each from a new port, from both inside hosts; and
    // from the outside to the forward; and hairpinned.
    for i in 0..8 {
        let server = tcp_server(&bed, "sink", "198.51.100.2:6000", b"thanks");
        let back = tcp_client(&bed, "gen", "198.51.100.2:6000", format!("connection {i} END").into_bytes());
        let (peer, got) = server.join().unwrap();
        assert_eq!((peer.ip().to_string(), back.as_slice()), ("198.51.100.10".to_string(), &b"thanks"[..]));
        assert_eq!(got, format!("connection {i} END").into_bytes());

        let server = tcp_server(&bed, "gen", "10.0.0.1:8000", b"served");
        let back = tcp_client(&bed, "sink", "198.51.100.10:8080", b"to the forward END".to_vec());
        let (peer, _) = server.join().unwrap();
        assert_eq!((peer.ip().to_string(), back.as_slice()), ("198.51.100.2".to_string(), &b"served"[..]));

        let server = tcp_server(&bed, "gen", "10.0.0.1:8000", b"hairpin ok");
        let (ok, out) = run(&bed, "gen2", &["sh", "-c", "printf 'via the pool END' | nc -N -w 3 198.51.100.10 8080"]);
        let (peer, _) = server.join().unwrap();
        assert!(ok && out.contains("hairpin ok"), "hairpin {i}: {out}");
        assert_eq!(peer.ip().to_string(), "198.51.100.10");
    }

    let report = dut.stop();
    let text = &report.text;
    assert!(counter(text, "handed-off") > 0, "no packet needed a handoff: the test proves nothing\n{text}");
    assert!(text.contains("handoff-rx"), "{text}");
    assert!(!text.contains("handoff-full"), "{text}");
}

/// A restart with the hosts' ARP caches untouched: nfv's neighbour table
/// starts empty and nobody ARPs for nfv. A server behind a port forward
/// that only receives is reached by curl at once (nfv asks for it, the
/// SYN held meanwhile), and a STUN-style exchange sees the endpoint-
/// independent filtering the configuration asks for: a second outside
/// address reaches the inside host's mapping right after its first packet
/// out (the session knows its MAC).
#[test]
fn after_a_restart_a_receive_only_server_and_a_mapping_are_reached() {
    if !privileged("after_a_restart_a_receive_only_server_and_a_mapping_are_reached") {
        return;
    }
    let bed = addressed_bed(1);
    bed.exec("sink", &["ip", "addr", "add", "198.51.100.3/24", "dev", "s0"]);
    let dut = bed.start_nfv(CONFIG, 2);
    // Everyone learns everyone's MAC, then nfv goes away and comes back.
    let (ok, out) = run(&bed, "gen", &["ping", "-c", "2", "-i", "0.3", "-W", "2", "198.51.100.2"]);
    assert!(ok, "ping through the NAT: {out}");
    dut.stop();
    let dut = bed.start_nfv(CONFIG, 2);

    let server = tcp_server(&bed, "gen", "10.0.0.1:8000", b"HTTP/1.0 200 OK\r\nContent-Length: 6\r\n\r\nserved");
    let (ok, out) = run(&bed, "sink", &["curl", "-s", "-m", "5", "http://198.51.100.10:8080/"]);
    let (peer, _) = server.join().unwrap();
    assert!(ok && out == "served", "curl to the forward after the restart: {out}");
    assert_eq!(peer.ip().to_string(), "198.51.100.2");

    // STUN's filtering test: the client asks 198.51.100.2:3478; the
    // answer comes from another address and port to the same mapping.
    let other = bed.spawn_in_ns("sink", || {
        let s = UdpSocket::bind("198.51.100.2:3478").unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut buf = [0u8; 64];
        let (_, mapped) = s.recv_from(&mut buf).unwrap();
        let alt = UdpSocket::bind("198.51.100.3:3479").unwrap();
        alt.send_to(b"from another address", mapped).unwrap();
        mapped
    });
    std::thread::sleep(Duration::from_millis(200));
    let got = bed.in_ns("gen", || {
        let s = UdpSocket::bind("0.0.0.0:5000").unwrap();
        s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
        s.send_to(b"binding request", "198.51.100.2:3478").unwrap();
        let mut buf = [0u8; 64];
        s.recv_from(&mut buf).map(|(n, from)| (buf[..n].to_vec(), from.to_string())).ok()
    });
    let mapped = other.join().unwrap();
    assert_eq!(mapped.to_string(), "198.51.100.10:5000");
    let text = dut.stop().text;
    assert_eq!(
        got,
        Some((b"from another address".to_vec(), "198.51.100.3:3479".to_string())),
        "endpoint-independent filtering after the restart\n{text}"
    );
    assert!(!text.contains("no-route="), "{text}");
    let adjacency = text.lines().find(|l| l.starts_with("adjacency")).expect("the adjacency row");
    let held: u64 = adjacency.split_whitespace().nth(1).unwrap().parse().unwrap();
    assert!(held >= 1 && !adjacency.contains("unresolved"), "the SYN waited for the server: {adjacency}");
}
