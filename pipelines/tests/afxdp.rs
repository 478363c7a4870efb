//! Live tests: `nfv` on AF_XDP in a network namespace, real kernels and
//! real sockets around it (tests/testbed.sh). They need root; without it
//! they skip with the reason, and with NFV_REQUIRE_PRIV=1 a skip fails.
#![cfg(feature = "af-xdp")]

mod common;

use std::net::{SocketAddr, UdpSocket};
use std::sync::mpsc;
use std::time::Duration;

use common::testbed::{TestBed, count_udp, privileged, send_udp};

const SINK_PORT: u16 = 9000;

/// Two AF_XDP ports cross-connected: gen and sink share a subnet and reach
/// each other only through nfv.
fn patch_config(workers: &[(usize, &[&str])]) -> String {
    let mut cfg = String::from(
        "[run]\nstats-interval = 0\n# The AF_XDP path: the cross-connect would run in nfv's XDP program.\noffload = \"off\"\n\n\
         [[ports]]\nname = \"d0\"\nkind = \"af-xdp\"\ninterface = \"d0\"\nqueues = QUEUES\n\n\
         [[ports]]\nname = \"d1\"\nkind = \"af-xdp\"\ninterface = \"d1\"\nqueues = QUEUES\n\n\
         [[chains]]\nname = \"xc\"\nstages = [{ kind = \"l2-patch\", pairs = [[\"d0\", \"d1\"]] }]\n",
    );
    cfg = cfg.replace("QUEUES", &workers.len().to_string());
    for (core, rx) in workers {
        let rx: Vec<String> = rx.iter().map(|r| format!("\"{r}\"")).collect();
        cfg += &format!("\n[[workers]]\ncore = {core}\nrx = [{}]\nchain = \"xc\"\n", rx.join(", "));
    }
    cfg
}

/// Binds the sink's UDP socket, then counts datagrams until `want` came or
/// the line went quiet.
fn sink_counter(bed: &TestBed, want: usize) -> std::thread::JoinHandle<usize> {
    let (ready_tx, ready_rx) = mpsc::channel();
    let h = bed.spawn_in_ns("sink", move || {
        let sock = UdpSocket::bind(("0.0.0.0", SINK_PORT)).expect("bind sink");
        common::testbed::big_receive_buffer(&sock);
        ready_tx.send(()).unwrap();
        count_udp(&sock, want, Duration::from_secs(2))
    });
    ready_rx.recv().expect("sink ready");
    h
}

#[test]
fn cross_connect_carries_ping_and_every_udp_datagram() {
    if !privileged("cross_connect_carries_ping_and_every_udp_datagram") {
        return;
    }
    let bed = TestBed::up("line", 1);
    let dut = bed.start_nfv(&patch_config(&[(0, &["d0", "d1"])]), 2);
    assert!(dut.notes.iter().any(|n| n.contains("d0 queue 0: copy, driver mode")), "{:?}", dut.notes);
    // ARP and ICMP from the real kernel stacks, through nfv both ways.
    bed.exec("gen", &["ping", "-c", "3", "-i", "0.2", "-W", "2", "10.0.0.2"]);
    const N: usize = 3000;
    let sink = sink_counter(&bed, N);
    let dst: SocketAddr = ([10, 0, 0, 2], SINK_PORT).into();
    bed.in_ns("gen", move || send_udp(dst, N, 4, 18));
    let got = sink.join().unwrap();
    let report = dut.stop();
    assert_eq!(got, N, "sink received {got} of {N}\n{}", report.text);
    let (d0, d1) = (report.port("d0"), report.port("d1"));
    // Every frame in on one side went out on the other; none lost inside.
    assert_eq!(d0.rx, d1.tx, "{}", report.text);
    assert_eq!(d1.rx, d0.tx, "{}", report.text);
    assert_eq!(d0.drops + d1.drops, 0, "{}", report.text);
    // 3000 datagrams + 3 echo requests + ARP; replies the other way.
    assert!(d0.rx >= N as u64 + 4 && d1.rx >= 4, "{}", report.text);
}

/// The same cross-connect with nfv's XDP program (the default): every
/// frame crosses below the worker, which sees none.
#[test]
fn cross_connect_in_xdp_carries_ping_and_every_udp_datagram() {
    if !privileged("cross_connect_in_xdp_carries_ping_and_every_udp_datagram") {
        return;
    }
    let bed = TestBed::up("line", 1);
    let dut = bed.start_nfv(&patch_config(&[(0, &["d0", "d1"])]).replace("offload = \"off\"", ""), 2);
    assert!(dut.notes.iter().any(|n| n.contains("xdp d0: cross-connect")), "{:?}", dut.notes);
    bed.exec("gen", &["ping", "-c", "3", "-i", "0.2", "-W", "2", "10.0.0.2"]);
    const N: usize = 3000;
    let sink = sink_counter(&bed, N);
    let dst: SocketAddr = ([10, 0, 0, 2], SINK_PORT).into();
    bed.in_ns("gen", move || send_udp(dst, N, 4, 18));
    let got = sink.join().unwrap();
    let report = dut.stop();
    assert_eq!(got, N, "sink received {got} of {N}\n{}", report.text);
    let (forwarded, _) = report.xdp();
    assert!(forwarded >= N as u64 + 8, "{}", report.text);
    assert_eq!(report.port("d0").rx + report.port("d1").rx, 0, "the worker saw nothing: {}", report.text);
}

#[test]
fn macswap_returns_every_frame_to_the_sender() {
    if !privileged("macswap_returns_every_frame_to_the_sender") {
        return;
    }
    let bed = TestBed::up("loop", 1);
    let dut_mac = bed.mac("dut", "d0");
    let gen_mac = bed.mac("gen", "g0");
    let mac = dut_mac.map(|b| format!("{b:02x}")).join(":");
    bed.exec("gen", &["ip", "neigh", "replace", "10.0.0.2", "lladdr", &mac, "dev", "g0", "nud", "permanent"]);
    // Generic (skb) mode here; the other tests get driver mode from `auto`.
    let cfg = "[run]\nstats-interval = 0\n\n[[ports]]\nname = \"d0\"\nkind = \"af-xdp\"\ninterface = \"d0\"\nmode = \"skb\"\n\n\
               [[chains]]\nname = \"l2fwd\"\nstages = [{ kind = \"macswap\" }]\nthen = \"ingress\"\n\n\
               [[workers]]\nrx = [\"d0\"]\nchain = \"l2fwd\"\n";
    let dut = bed.start_nfv(cfg, 1);
    assert!(dut.notes.iter().any(|n| n.contains("d0 queue 0: copy, skb mode")), "{:?}", dut.notes);
    const N: usize = 2000;
    let (ready_tx, ready_rx) = mpsc::channel();
    // A packet socket on g0 sees what comes back: the kernel drops it after
    // (10.0.0.2 is not local), but only after the capture.
    let capture = bed.spawn_in_ns("gen", move || {
        let cap = common::packet::Capture::open("g0");
        ready_tx.send(()).unwrap();
        cap.count(N, Duration::from_secs(2), |f| {
            f.len() >= 42 && f[0..6] == gen_mac && f[6..12] == dut_mac && f[36..38] == SINK_PORT.to_be_bytes()
        })
    });
    ready_rx.recv().unwrap();
    let dst: SocketAddr = ([10, 0, 0, 2], SINK_PORT).into();
    bed.in_ns("gen", move || send_udp(dst, N, 1, 18));
    let back = capture.join().unwrap();
    let report = dut.stop();
    assert_eq!(back, N, "{back} of {N} came back swapped\n{}", report.text);
    let d0 = report.port("d0");
    assert_eq!(d0.rx, d0.tx, "{}", report.text);
    assert_eq!(d0.drops, 0, "{}", report.text);
}

#[test]
fn two_queues_two_workers_share_the_flows() {
    if !privileged("two_queues_two_workers_share_the_flows") {
        return;
    }
    let bed = TestBed::up("line", 2);
    let dut = bed.start_nfv(&patch_config(&[(0, &["d0:0", "d1:0"]), (1, &["d0:1", "d1:1"])]), 4);
    bed.exec("gen", &["ping", "-c", "2", "-i", "0.2", "-W", "2", "10.0.0.2"]);
    const N: usize = 4000;
    let sink = sink_counter(&bed, N);
    let dst: SocketAddr = ([10, 0, 0, 2], SINK_PORT).into();
    // 64 source ports: the sender's veth picks a queue per flow hash.
    bed.in_ns("gen", move || send_udp(dst, N, 64, 18));
    let got = sink.join().unwrap();
    let stats = bed.exec("dut", &["ethtool", "-S", "d0"]);
    let report = dut.stop();
    assert_eq!(got, N, "sink received {got} of {N}\n{}", report.text);
    let per_queue: Vec<u64> = (0..2)
        .map(|q| {
            let key = format!("rx_queue_{q}_xdp_redirect:");
            let line = stats.lines().find(|l| l.trim_start().starts_with(&key)).expect(&key);
            line.split(':').nth(1).unwrap().trim().parse().unwrap()
        })
        .collect();
    // Both queues, hence both workers, carried a fair share.
    for (q, n) in per_queue.iter().enumerate() {
        assert!(*n > N as u64 / 8, "queue {q} redirected only {n} of {N}: {per_queue:?}\n{}", report.text);
    }
    assert_eq!(per_queue.iter().sum::<u64>(), report.port("d0").rx, "{}", report.text);
    assert_eq!(report.port("d0").rx, report.port("d1").tx, "{}", report.text);
}

#[test]
fn restart_after_kill_9_cleans_up_and_forwards() {
    if !privileged("restart_after_kill_9_cleans_up_and_forwards") {
        return;
    }
    let bed = TestBed::up("line", 1);
    // nfv's XDP engine (the default) and libxdp's program each leave
    // their program behind when killed.
    for (offload, program) in [("xdp", "nfv_xdp"), ("off", "xsk_def_prog")] {
        let cfg = patch_config(&[(0, &["d0", "d1"])]).replace("offload = \"off\"", &format!("offload = \"{offload}\""));
        let xdp_attached = || bed.exec("dut", &["ip", "link", "show", "d0"]).contains("prog/xdp");
        let first = bed.start_nfv(&cfg, 2);
        assert!(xdp_attached());
        first.kill_9();
        assert!(xdp_attached(), "a killed nfv leaves its XDP program: the case this test is about");
        let second = bed.start_nfv(&cfg, 2);
        let cleaned = format!("detached {program} left by an earlier run");
        assert!(second.notes.iter().any(|n| n.contains(&cleaned)), "{cleaned}: {:?}", second.notes);
        bed.exec("gen", &["ping", "-c", "2", "-i", "0.2", "-W", "2", "10.0.0.2"]);
        let report = second.stop();
        // The ping crossed: in the worker, or in nfv's program.
        let crossed = if offload == "xdp" { report.xdp().0 } else { report.port("d0").rx };
        assert!(crossed >= 2, "{}", report.text);
        assert!(!xdp_attached(), "a clean exit detaches the program (offload {offload})\n{}", report.text);
    }
}

#[test]
fn auto_mode_falls_back_to_skb_mode_without_native_xdp() {
    if !privileged("auto_mode_falls_back_to_skb_mode_without_native_xdp") {
        return;
    }
    let bed = TestBed::up("loop", 1);
    // The vxlan device has no native XDP: driver mode is refused after the
    // socket is bound, which is the case the fallback must survive.
    bed.exec("dut", &["ip", "link", "add", "vx0", "type", "vxlan", "id", "42", "dstport", "4789"]);
    bed.exec("dut", &["ip", "link", "set", "vx0", "up"]);
    let cfg = "[run]\nstats-interval = 0\n\n[[ports]]\nname = \"vx\"\nkind = \"af-xdp\"\ninterface = \"vx0\"\n\n\
               [[chains]]\nname = \"c\"\nstages = [{ kind = \"macswap\" }]\nthen = \"ingress\"\n\n[[workers]]\nrx = [\"vx\"]\nchain = \"c\"\n";
    // libxdp's program: its attach in driver mode fails after the bind.
    let dut = bed.start_nfv(&cfg.replace("[run]\n", "[run]\noffload = \"off\"\n"), 1);
    let note = dut.notes.iter().find(|n| n.starts_with("nfv: af-xdp vx0")).unwrap();
    assert!(note.contains("vx0 queue 0: copy, skb mode"), "{note}");
    assert!(note.contains("copy, driver mode refused"), "{note}");
    let report = dut.stop();
    assert!(report.text.contains("[af-xdp copy, skb mode]"), "{}", report.text);
    // nfv's XDP engine: bound without a program, it attaches its own in
    // generic mode, and the port says so.
    let dut = bed.start_nfv(cfg, 1);
    let note = dut.notes.iter().find(|n| n.starts_with("nfv: af-xdp vx0")).unwrap();
    assert!(note.contains("vx0 queue 0: copy, skb mode"), "{note}");
    assert!(note.contains("nfv XDP program in generic (skb) mode, doing macswap, back"), "{note}");
    let report = dut.stop();
    assert!(report.text.contains("[af-xdp copy, skb mode]"), "{}", report.text);
}
