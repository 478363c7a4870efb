//! Live L4 load balancing: nfv on AF_XDP between clients and three
//! backend namespaces, `configs/lb.toml` (direct server return):
//!
//!   gen [10.0.0.1] -- [d0 10.0.0.254] nfv [d1 10.1.0.1] -- sink (bridge)
//!                                                         +- b1 [10.1.0.11]
//!                                                         +- b2 [10.1.0.12]
//!                                                         +- b3 [10.1.0.13] (weight 2)
//!   VIP 192.0.2.10:80 on every backend's loopback
//!
//! Real kernel TCP clients and servers: connections spread by weight;
//! a backend drained through the backends file keeps its open connection
//! and gets no new one; a removed backend's connection moves (and breaks:
//! the new backend knows nothing of it) while the others' carry on. In
//! NAT mode (192.0.2.10:8080) backends without the VIP serve clients they
//! see as nfv's address.
#![cfg(feature = "af-xdp")]

mod common;

use std::collections::HashMap;
use std::io::BufReader;
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::lb_bed::{Conn, connect, connect_to, lb_bed};
use common::testbed::{TestBed, privileged, two_workers};

const CONFIG: &str = include_str!("../../configs/lb.toml");

fn backends_file(path: &std::path::Path, backends: &[(&str, &str)]) {
    let list: Vec<String> = backends.iter().map(|(addr, extra)| format!("{{ addr = \"{addr}\"{extra} }}")).collect();
    std::fs::write(path, format!("[[vips]]\nvip = \"192.0.2.10:80\"\nbackends = [{}]\n", list.join(", "))).unwrap();
    // Watched files are polled once a second.
    std::thread::sleep(Duration::from_millis(1500));
}

#[test]
fn nat_mode_serves_clients_from_backends_that_see_only_nfv() {
    if !privileged("nat_mode_serves_clients_from_backends_that_see_only_nfv") {
        return;
    }
    let stop = Arc::new(AtomicBool::new(false));
    let bed = lb_bed(&stop, 1);
    let dut = bed.start_nfv(CONFIG, 2);
    nat_mode_connections(&bed);
    stop.store(true, Ordering::Relaxed);
    let report = dut.stop();
    assert!(report.text.contains("vip tcp 192.0.2.10:8080 (Nat)"), "{}", report.text);
    // With the XDP offload (the default): each open connection's second
    // exchange went below the workers both ways (its key to the backend,
    // the backend's answers back to the client).
    let (forwarded, installed) = report.xdp();
    assert!(forwarded >= 60 && installed >= 120, "{}", report.text);
}

/// Two workers, one queue of each port each: a NAT-mode answer reaching
/// the worker without its connection is handed to the one whose block
/// holds its port.
#[test]
fn nat_mode_answers_find_their_connection_on_two_workers() {
    if !privileged("nat_mode_answers_find_their_connection_on_two_workers") {
        return;
    }
    let stop = Arc::new(AtomicBool::new(false));
    let bed = lb_bed(&stop, 2);
    let dut = bed.start_nfv(&two_workers(CONFIG, "lb"), 4);
    nat_mode_connections(&bed);
    stop.store(true, Ordering::Relaxed);
    let text = dut.stop().text;
    let handed: u64 = text
        .lines()
        .filter(|l| l.starts_with("handoff-rx"))
        .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        .sum();
    assert!(handed > 0, "no answer needed a handoff: the test proves nothing\n{text}");
    assert!(!text.contains("handoff-full"), "{text}");
}

/// 60 connections to the NAT-mode VIP, two exchanges each: every backend
/// serves some, and sees nfv's address as the client.
fn nat_mode_connections(bed: &TestBed) {
    let mut count: HashMap<String, usize> = HashMap::new();
    for i in 0..60 {
        let mut c = connect_to(bed, 8080);
        let answer = c.ask().unwrap_or_else(|| panic!("connection {i}: no answer"));
        let (name, peer) = answer.split_once(' ').expect("name and peer");
        assert_eq!(peer, "10.1.0.1", "the backend sees nfv's address");
        *count.entry(name.to_string()).or_default() += 1;
        // A second exchange on the same connection: the same backend.
        assert_eq!(c.ask().as_deref(), Some(answer.as_str()));
    }
    eprintln!("60 NAT-mode connections: {count:?}");
    assert_eq!(count.len(), 3, "every backend served some: {count:?}");
}

#[test]
fn connections_spread_by_weight_and_survive_drains_and_removals_of_other_backends() {
    if !privileged("connections_spread_by_weight_and_survive_drains_and_removals_of_other_backends") {
        return;
    }
    let stop = Arc::new(AtomicBool::new(false));
    let bed = lb_bed(&stop, 1);
    let file = std::env::temp_dir().join(format!("nfv-lb-backends-{}.toml", std::process::id()));
    backends_file(&file, &[("10.1.0.11", ""), ("10.1.0.12", ""), ("10.1.0.13", ", weight = 2")]);
    let config = CONFIG.replace(
        "source-address = \"10.1.0.1\",",
        &format!("source-address = \"10.1.0.1\", backends-file = \"{}\",", file.display()),
    );
    let dut = bed.start_nfv(&config, 2);

    // 200 connections, each asking once.
    let mut count: HashMap<String, usize> = HashMap::new();
    for _ in 0..200 {
        let mut c = connect(&bed);
        *count.entry(c.ask().expect("an answer")).or_default() += 1;
    }
    eprintln!("200 connections: {count:?}");
    let share = |b: &str| count.get(b).copied().unwrap_or(0) as f64 / 200.0;
    assert!((share("b3") - 0.5).abs() < 0.13, "weight 2 of 4: {count:?}");
    assert!((share("b1") - 0.25).abs() < 0.11 && (share("b2") - 0.25).abs() < 0.11, "{count:?}");

    // One open connection on each backend.
    let mut open: HashMap<String, Conn> = HashMap::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while open.len() < 3 && Instant::now() < deadline {
        let mut c = connect(&bed);
        let b = c.ask().expect("an answer");
        open.entry(b).or_insert(c);
    }
    assert_eq!(open.len(), 3, "a connection on every backend");

    // Drain b1: its open connection carries on, no new one lands there.
    backends_file(&file, &[("10.1.0.11", ", drain = true"), ("10.1.0.12", ""), ("10.1.0.13", ", weight = 2")]);
    for (b, c) in open.iter_mut() {
        assert_eq!(c.ask().as_deref(), Some(b.as_str()), "{b}'s open connection after the drain");
    }
    for _ in 0..60 {
        assert_ne!(connect(&bed).ask().as_deref(), Some("b1"), "a drained backend takes no new connection");
    }

    // Remove b2: its connection moves to another backend, which knows
    // nothing of it (reset); b1's (drained) and b3's carry on.
    backends_file(&file, &[("10.1.0.11", ", drain = true"), ("10.1.0.13", ", weight = 2")]);
    assert_eq!(open.get_mut("b1").unwrap().ask().as_deref(), Some("b1"));
    assert_eq!(open.get_mut("b3").unwrap().ask().as_deref(), Some("b3"));
    assert_eq!(open.get_mut("b2").unwrap().ask(), None, "b2's connection moved away from b2");
    for _ in 0..30 {
        assert_eq!(connect(&bed).ask().as_deref(), Some("b3"), "only b3 takes new connections");
    }

    stop.store(true, Ordering::Relaxed);
    let report = dut.stop();
    let text = &report.text;
    eprintln!("{text}");
    assert!(text.contains("rescheduled") && text.contains("backend 10.1.0.12 weight 1 Removed"), "{text}");
    // With the XDP offload (the default): open DSR connections went
    // below the workers, and came back up to move off a removed backend.
    let (forwarded, installed) = report.xdp();
    assert!(forwarded > 0 && installed > 0, "{text}");
    let _ = std::fs::remove_file(&file);
}

/// A connection to the VIP from client port `sport` (reused at once: the
/// socket closes with a reset, leaving no TIME_WAIT behind), or the error
/// connecting gave.
fn connect_from(bed: &TestBed, sport: u16) -> std::io::Result<Conn> {
    use std::os::fd::FromRawFd;
    bed.in_ns("gen", move || {
        // SAFETY: a fresh socket configured and connected with checked
        // calls, then owned by the TcpStream.
        unsafe {
            let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
            assert!(fd >= 0);
            let s = TcpStream::from_raw_fd(fd);
            let set = |opt: i32, v: *const libc::c_void, len: usize| {
                assert_eq!(libc::setsockopt(fd, libc::SOL_SOCKET, opt, v, len as u32), 0, "setsockopt {opt}");
            };
            let one: i32 = 1;
            set(libc::SO_REUSEADDR, &one as *const _ as _, 4);
            let linger = libc::linger { l_onoff: 1, l_linger: 0 };
            set(libc::SO_LINGER, &linger as *const _ as _, std::mem::size_of::<libc::linger>());
            let timeout = libc::timeval { tv_sec: 3, tv_usec: 0 };
            set(libc::SO_SNDTIMEO, &timeout as *const _ as _, std::mem::size_of::<libc::timeval>());
            let addr = |ip: [u8; 4], port: u16| libc::sockaddr_in {
                sin_family: libc::AF_INET as u16,
                sin_port: port.to_be(),
                sin_addr: libc::in_addr { s_addr: u32::from_ne_bytes(ip) },
                sin_zero: [0; 8],
            };
            let len = std::mem::size_of::<libc::sockaddr_in>() as u32;
            let local = addr([0; 4], sport);
            if libc::bind(fd, &local as *const _ as *const libc::sockaddr, len) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            let vip = addr([192, 0, 2, 10], 80);
            if libc::connect(fd, &vip as *const _ as *const libc::sockaddr, len) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
            Ok(Conn(BufReader::new(s)))
        }
    })
}

/// What the client measured: with a backend drained, new
/// connections from client ports used seconds before (their entries still
/// in nfv's table) must not reach it, while its established connection
/// carries on; undrained, it takes new connections again; with no backend
/// at all, clients are refused at once with a reset.
#[test]
fn a_drained_backend_gets_no_connection_from_reused_client_ports_and_no_backends_refuse() {
    if !privileged("a_drained_backend_gets_no_connection_from_reused_client_ports_and_no_backends_refuse") {
        return;
    }
    let stop = Arc::new(AtomicBool::new(false));
    let bed = lb_bed(&stop, 1);
    let file = std::env::temp_dir().join(format!("nfv-lb-reuse-{}.toml", std::process::id()));
    let all = [("10.1.0.11", ""), ("10.1.0.12", ""), ("10.1.0.13", "")];
    backends_file(&file, &all);
    let config = CONFIG.replace(
        "source-address = \"10.1.0.1\",",
        &format!("source-address = \"10.1.0.1\", backends-file = \"{}\",", file.display()),
    );
    let dut = bed.start_nfv(&config, 2);
    let ports: Vec<u16> = (30000..30060).collect();
    let first: Vec<String> =
        ports.iter().map(|&p| connect_from(&bed, p).expect("connect").ask().expect("an answer")).collect();
    assert!(first.iter().any(|b| b == "b1"), "b1 served some of {first:?}");
    let mut established = loop {
        let mut c = connect(&bed);
        if c.ask().as_deref() == Some("b1") {
            break c;
        }
    };

    backends_file(&file, &[("10.1.0.11", ", drain = true"), all[1], all[2]]);
    let again: Vec<String> =
        ports.iter().map(|&p| connect_from(&bed, p).expect("connect").ask().expect("an answer")).collect();
    let to_b1 = first.iter().zip(&again).filter(|(_, b)| *b == "b1").count();
    assert_eq!(to_b1, 0, "reused ports reached the drained backend: {again:?}");
    assert_eq!(established.ask().as_deref(), Some("b1"), "the drained backend's connection carries on");

    backends_file(&file, &all);
    let back: Vec<String> =
        ports.iter().map(|&p| connect_from(&bed, p).expect("connect").ask().expect("an answer")).collect();
    assert_eq!(back, first, "undrained: the same ports go where Maglev first sent them");

    std::fs::write(&file, "[[vips]]\nvip = \"192.0.2.10:80\"\nbackends = []\n").unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let started = Instant::now();
    let refused = connect_from(&bed, 31000).err().map(|e| e.kind());
    assert_eq!(refused, Some(std::io::ErrorKind::ConnectionRefused), "a reset, as kube-proxy refuses");
    assert!(started.elapsed() < Duration::from_secs(1), "at once, not after a timeout");

    stop.store(true, Ordering::Relaxed);
    let text = dut.stop().text;
    assert!(text.contains("rejected 1"), "{text}");
    assert!(text.contains("vip tcp 192.0.2.10:80 (Dsr): packets"), "{text}");
    let _ = std::fs::remove_file(&file);
}

/// A restart with the clients' ARP caches untouched: the backends'
/// direct answers, routed back through nfv, reach a client that never
/// ARPs for nfv again (nfv asks for it, the answer held meanwhile).
#[test]
fn after_a_restart_direct_server_return_answers_reach_the_client() {
    if !privileged("after_a_restart_direct_server_return_answers_reach_the_client") {
        return;
    }
    let stop = Arc::new(AtomicBool::new(false));
    let bed = lb_bed(&stop, 1);
    let dut = bed.start_nfv(CONFIG, 2);
    assert!(connect(&bed).ask().is_some(), "before the restart");
    dut.stop();
    let dut = bed.start_nfv(CONFIG, 2);
    let answers: Vec<Option<String>> = (0..5).map(|_| connect(&bed).ask()).collect();
    stop.store(true, Ordering::Relaxed);
    let text = dut.stop().text;
    assert!(answers.iter().all(Option::is_some), "{answers:?}\n{text}");
    assert!(!text.contains("no-route="), "{text}");
    let adjacency = text.lines().find(|l| l.starts_with("adjacency")).expect("the adjacency row");
    assert!(!adjacency.contains("unresolved"), "{adjacency}");
}
