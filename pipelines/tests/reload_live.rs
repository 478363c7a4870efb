//! Reloads under steady traffic on the load-balancing bed (see
//! `common/lb_bed.rs`): nfv runs `acl -> ttl-decrement -> lb` between
//! clients and three backends, while gen pings the VIP, streams UDP to a
//! UDP VIP and keeps TCP connections open to the TCP VIP, asking over
//! each every 50 ms. `nfv ctl reload` alternates two files 100 times:
//! two ACL rule sets and two backend weightings, both permitting all of
//! that traffic. Nothing is lost, every connection carries on with its
//! backend, the reload counter says 100; a file that changes the worker
//! count is refused with the difference named, and changes nothing.
#![cfg(feature = "af-xdp")]

mod common;

use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::lb_bed::{BACKENDS, connect, lb_bed};
use common::testbed::{big_receive_buffer, privileged};

/// The UDP VIP's port.
const UDP_PORT: u16 = 5353;

/// Rule set A and backends A, or B: the same traffic permitted by other
/// rules in another order; other weights for the same backends.
fn config(socket: &Path, b: bool, extra_worker: bool) -> String {
    let rules = if b {
        r#"{ action = "deny", proto = "udp", dst-port = 9 },
       { action = "permit", proto = "udp", dst-port = 5353 },
       { action = "permit", proto = "tcp", src = "10.0.0.0/24", dst-port = 80 },
       { action = "permit", proto = "tcp", src-port = 80 },
       { action = "deny", proto = "tcp", dst-port = 8080 },"#
    } else {
        r#"{ action = "deny", proto = "tcp", dst-port = 23 },
       { action = "permit", proto = "tcp", dst-port = 80 },
       { action = "permit", proto = "tcp", src-port = 80 },
       { action = "permit", proto = "udp", src = "10.0.0.1", dst-port = 5353 },"#
    };
    let w = if b { [2, 1, 1] } else { [1, 1, 2] };
    let backends: Vec<String> =
        BACKENDS.iter().zip(w).map(|((_, a), w)| format!("{{ addr = \"{a}\", weight = {w} }}")).collect();
    let backends = backends.join(", ");
    let workers = if extra_worker {
        "[[workers]]\nrx = [\"d0\"]\nchain = \"lb\"\n\n[[workers]]\nrx = [\"d1\"]\nchain = \"lb\"\n"
    } else {
        "[[workers]]\nrx = [\"d0\", \"d1\"]\nchain = \"lb\"\n"
    };
    format!(
        r#"[run]
stats-interval = 0

[management]
listen = "127.0.0.1:9464"
socket = "{socket}"

[[ports]]
name = "d0"
kind = "af-xdp"
interface = "d0"
addresses = ["10.0.0.254/24"]

[[ports]]
name = "d1"
kind = "af-xdp"
interface = "d1"
addresses = ["10.1.0.1/24"]

[[chains]]
name = "lb"
stages = [
    {{ kind = "acl", default = "deny", rules = [
       {rules}
       {{ action = "permit", proto = "icmp" }},
    ] }},
    {{ kind = "ttl-decrement" }},
    {{ kind = "lb", clients = ["d0"], backends-port = "d1", source-address = "10.1.0.1",
      vips = [{{ vip = "192.0.2.10:80", proto = "tcp", mode = "dsr", backends = [{backends}] }},
              {{ vip = "192.0.2.10:{UDP_PORT}", proto = "udp", mode = "dsr", backends = [{backends}] }}] }},
]

{workers}"#,
        socket = socket.display()
    )
}

fn ctl(socket: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_nfv")).arg("ctl").arg("--socket").arg(socket).args(args).output().unwrap()
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let f = dir.join(name);
    std::fs::write(&f, text).unwrap();
    f
}

#[test]
fn a_hundred_reloads_under_traffic_lose_nothing_and_keep_every_connection() {
    if !privileged("a_hundred_reloads_under_traffic_lose_nothing_and_keep_every_connection") {
        return;
    }
    let stop = Arc::new(AtomicBool::new(false));
    let bed = lb_bed(&stop, 1);
    let dir = std::env::temp_dir().join(format!("nfv-reload-live-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let socket = dir.join("nfv.sock");
    let a = write(&dir, "a.toml", &config(&socket, false, false));
    let b = write(&dir, "b.toml", &config(&socket, true, false));
    let two = write(&dir, "two-workers.toml", &config(&socket, false, true));

    // Each backend counts the UDP datagrams it gets.
    let received = Arc::new(AtomicUsize::new(0));
    let mut counters = Vec::new();
    for (name, _) in BACKENDS {
        let (received, stop) = (received.clone(), stop.clone());
        let (tx, rx) = std::sync::mpsc::channel();
        counters.push(bed.spawn_in_ns(name, move || {
            let sock = UdpSocket::bind(("0.0.0.0", UDP_PORT)).unwrap();
            big_receive_buffer(&sock);
            sock.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
            tx.send(()).unwrap();
            let mut buf = [0u8; 2048];
            loop {
                match sock.recv(&mut buf) {
                    Ok(_) => {
                        received.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(_) if stop.load(Ordering::Relaxed) => break,
                    Err(_) => {}
                }
            }
        }));
        rx.recv_timeout(Duration::from_secs(5)).expect("UDP counter bound");
    }

    let dut = bed.start_nfv_file("dut", &a, 2);
    let mut conns: Vec<_> = (0..6).map(|_| connect(&bed)).collect();
    let backends: Vec<String> = conns.iter_mut().map(|c| c.ask().expect("an answer before the reloads")).collect();

    // Steady traffic: ping, a UDP stream (one datagram a millisecond
    // from 8 source ports), the connections asked every 50 ms.
    let traffic = Arc::new(AtomicBool::new(false));
    let ping = {
        let ns = bed.ns("gen");
        std::thread::spawn(move || {
            Command::new("ip")
                .args(["netns", "exec", &ns, "ping", "-q", "-c", "60", "-i", "0.1", "192.0.2.10"])
                .output()
                .unwrap()
        })
    };
    let udp = {
        let traffic = traffic.clone();
        bed.spawn_in_ns("gen", move || {
            let socks: Vec<UdpSocket> = (0..8).map(|_| UdpSocket::bind("0.0.0.0:0").unwrap()).collect();
            let mut sent = 0usize;
            while !traffic.load(Ordering::Relaxed) {
                socks[sent % 8].send_to(b"reload-live", ("192.0.2.10", UDP_PORT)).unwrap();
                sent += 1;
                std::thread::sleep(Duration::from_millis(1));
            }
            sent
        })
    };
    let asker = {
        let traffic = traffic.clone();
        std::thread::spawn(move || {
            let mut asked = 0;
            while !traffic.load(Ordering::Relaxed) {
                for (c, want) in conns.iter_mut().zip(&backends) {
                    assert_eq!(c.ask().as_ref(), Some(want), "a connection lost its backend mid-reloads");
                    asked += 1;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            (conns, backends, asked)
        })
    };

    std::thread::sleep(Duration::from_millis(500));
    let t0 = Instant::now();
    for i in 0..100 {
        let file = if i % 2 == 0 { &b } else { &a };
        let out = ctl(&socket, &["reload", file.to_str().unwrap()]);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "reload {i}: {text}{}", String::from_utf8_lossy(&out.stderr));
        assert!(text.contains(&format!("rules version {}:", i + 1)), "reload {i} published rule set {}: {text}", i + 1);
        assert!(text.contains(&format!("backends version {}:", i + 1)), "reload {i}: {text}");
        std::thread::sleep(Duration::from_millis(20));
    }
    let reloading = t0.elapsed();
    std::thread::sleep(Duration::from_millis(500));
    traffic.store(true, Ordering::Relaxed);
    let sent = udp.join().unwrap();
    let (mut conns, backends, asked) = asker.join().unwrap();
    let ping = ping.join().unwrap();

    // The worker count cannot change live: refused, named, nothing
    // changed (the next reload of B still publishes version 101).
    let out = ctl(&socket, &["reload", two.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("workers: 1 -> 2 (restart to apply)"), "{err}");
    assert!(err.contains("reload refused: nothing changed"), "{err}");
    let metrics = bed.exec("dut", &["curl", "-s", "http://127.0.0.1:9464/metrics"]);
    let series =
        |s: &str| metrics.lines().find(|l| l.starts_with(s)).unwrap_or_else(|| panic!("{s}\n{metrics}")).to_string();
    assert_eq!(
        series("nfv_config_reloads_total{result=\"applied\"}"),
        "nfv_config_reloads_total{result=\"applied\"} 100"
    );
    assert_eq!(
        series("nfv_config_reloads_total{result=\"refused\"}"),
        "nfv_config_reloads_total{result=\"refused\"} 1"
    );
    assert_eq!(
        series("nfv_ruleset_version{stage=\"acl\",set=\"rules\"}"),
        "nfv_ruleset_version{stage=\"acl\",set=\"rules\"} 100"
    );
    assert_eq!(
        series("nfv_ruleset_version{stage=\"lb\",set=\"backends\"}"),
        "nfv_ruleset_version{stage=\"lb\",set=\"backends\"} 100"
    );
    let entries = series("nfv_table_entries{worker=\"0\",stage=\"lb\",table=\"connections\"}");
    let entries: u64 = entries.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(entries >= 6 + 8, "6 TCP connections and 8 UDP flows tracked: {entries}");
    assert!(metrics.contains("nfv_table_capacity{worker=\"0\",stage=\"lb\",table=\"connections\"} "), "{metrics}");
    for (c, want) in conns.iter_mut().zip(&backends) {
        assert_eq!(c.ask().as_ref(), Some(want), "every connection survives");
    }

    // The tables over the socket: hits on the rules, the backends, and a
    // backend drained by hand keeping its connections.
    let out = ctl(&socket, &["acl", "list", "--json"]);
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let udp_rule = rows["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["match"].as_str().unwrap().ends_with("proto=udp dst-port=5353"))
        .unwrap();
    assert!(udp_rule["packets"].as_str().unwrap().parse::<u64>().unwrap() > 0, "{rows}");
    let out = ctl(&socket, &["lb", "drain", "192.0.2.10:80", "10.1.0.13"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("1 draining"), "{}", String::from_utf8_lossy(&out.stderr));
    let listed = String::from_utf8_lossy(&ctl(&socket, &["lb", "list"]).stdout).to_string();
    let b3 = listed.lines().find(|l| l.starts_with("tcp") && l.contains("10.1.0.13")).unwrap_or_default();
    assert!(b3.contains("draining") && b3.ends_with(" 0.0%"), "{listed}");
    for (c, want) in conns.iter_mut().zip(&backends) {
        assert_eq!(c.ask().as_ref(), Some(want), "a drained backend keeps its connections");
    }
    let neighbours = String::from_utf8_lossy(&ctl(&socket, &["neighbour", "list"]).stdout).to_string();
    assert!(neighbours.contains("10.1.0.13") && neighbours.contains("learned"), "{neighbours}");
    let again = ctl(&socket, &["reload", b.to_str().unwrap()]);
    let again = String::from_utf8_lossy(&again.stdout);
    assert!(again.contains("rules version 101:"), "the refusal changed nothing: {again}");
    assert!(again.contains("backends version 102:"), "the reload puts back the file's backends: {again}");

    // Every datagram counted (they stop arriving within the counters'
    // 200 ms read timeout).
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::Relaxed);
    for c in counters {
        c.join().unwrap();
    }
    let got = received.load(Ordering::Relaxed);
    let ping_out = String::from_utf8_lossy(&ping.stdout);
    eprintln!(
        "100 reloads in {:.2} s under traffic: UDP {got}/{sent}, {asked} TCP exchanges on {} connections, ping: {}",
        reloading.as_secs_f64(),
        conns.len(),
        ping_out.lines().find(|l| l.contains("transmitted")).unwrap_or("?")
    );
    assert!(ping_out.contains("60 packets transmitted, 60 received"), "{ping_out}");
    assert_eq!(got, sent, "every UDP datagram both rule sets permit reached a backend");
    dut.stop();
    let _ = std::fs::remove_dir_all(&dir);
}
