//! Live UPF: nfv on AF_XDP between a gNB and a data network,
//! `configs/upf.toml` (a static session):
//!
//!   gen [g0 10.10.0.2] gNB (scapy) -- [d0 10.10.0.1] nfv [d1 198.51.100.1] -- [s0 198.51.100.2] server
//!   UE 10.45.0.7: uplink TEID 4660, downlink TEID 43981, QFI 9
//!
//! scapy's gNB sends G-PDUs with a PDU Session Container; the inner UDP
//! packets reach a real server on the data network, whose answers come
//! back to the gNB in the session's tunnel with its TEID and QFI, as
//! scapy reads them.
#![cfg(feature = "af-xdp")]

mod common;

use std::net::UdpSocket;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::testbed::{TestBed, privileged};

const CONFIG: &str = include_str!("../../configs/upf.toml");

/// Whether `test` can run here: root, and scapy's `scapy.contrib.MODULE`
/// (else skipped, said why; a failure under NFV_REQUIRE_PRIV=1).
fn runnable(test: &str, module: &str) -> bool {
    let import = format!("import scapy.contrib.{module}");
    privileged(test) && nfv_testkit::tools_or_skip(test, &[&["/usr/bin/python3", "-c", &import]])
}

/// The line bed re-addressed: the gNB 10.10.0.2 on gen's g0, the data
/// network's server 198.51.100.2 on sink's s0, UEs routed through nfv.
fn upf_bed() -> TestBed {
    let bed = TestBed::up("line", 1);
    bed.exec("gen", &["ip", "addr", "flush", "dev", "g0"]);
    bed.exec("gen", &["ip", "addr", "add", "10.10.0.2/24", "dev", "g0"]);
    bed.exec("sink", &["ip", "addr", "flush", "dev", "s0"]);
    bed.exec("sink", &["ip", "addr", "add", "198.51.100.2/24", "dev", "s0"]);
    bed.exec("sink", &["ip", "route", "add", "10.45.0.0/16", "via", "198.51.100.1"]);
    bed
}

/// A G-PDU as a gNB's socket on UDP 2152 gets it: when, its TEID, the
/// inner packet.
struct Arrival {
    at: Instant,
    teid: u32,
    inner: Vec<u8>,
}

/// A gNB's GTP-U socket at `addr`:2152 in gen: every G-PDU until nothing
/// came for 2 s (after the first) or 20 s passed. `ready` is told once it
/// listens; `announce`, if set, is sent to the UPF first (an Echo Request:
/// the gNB's kernel resolves the UPF's address and the UPF learns the
/// gNB's, as when a gNB starts carrying a UE's uplink).
fn gnb_socket(
    bed: &TestBed,
    addr: &'static str,
    announce: bool,
    ready: std::sync::mpsc::Sender<()>,
) -> std::thread::JoinHandle<Vec<Arrival>> {
    bed.spawn_in_ns("gen", move || {
        let s = UdpSocket::bind((addr, 2152)).unwrap();
        common::testbed::big_receive_buffer(&s);
        if announce {
            // TS 29.281 7.2.1: Echo Request, sequence number present.
            s.send_to(&[0x32, 1, 0, 4, 0, 0, 0, 0, 0, 1, 0, 0], "10.10.0.1:2152").unwrap();
        }
        ready.send(()).unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 2048];
        s.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
        let start = Instant::now();
        let mut last = None::<Instant>;
        while start.elapsed() < Duration::from_secs(20) && last.is_none_or(|l| l.elapsed() < Duration::from_secs(2)) {
            let Ok(n) = s.recv(&mut buf) else { continue };
            // A G-PDU (type 255); its header with the PDU Session
            // Container is 16 octets.
            if n > 16 && buf[1] == 0xff {
                last = Some(Instant::now());
                let teid = u32::from_be_bytes(buf[4..8].try_into().unwrap());
                let hlen = if buf[0] & 0x07 != 0 { 12 + 4 * buf[12] as usize } else { 8 };
                got.push(Arrival { at: Instant::now(), teid, inner: buf[hlen..n].to_vec() });
            }
        }
        got
    })
}

/// Sends `count` UDP datagrams from the data network's server to the UE
/// `ue`:4000, `per_sec` a second, each `size` octets of IP packet carrying
/// its number first.
fn paced_downlink(
    bed: &TestBed,
    ue: &'static str,
    count: u32,
    per_sec: u32,
    size: usize,
) -> std::thread::JoinHandle<()> {
    bed.spawn_in_ns("sink", move || {
        let s = UdpSocket::bind("198.51.100.2:7000").unwrap();
        let mut buf = vec![0x5a; size - 28];
        let start = Instant::now();
        for i in 0..count {
            let due = start + Duration::from_secs_f64(i as f64 / per_sec as f64);
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
            buf[..4].copy_from_slice(&i.to_be_bytes());
            s.send_to(&buf, (ue, 4000)).unwrap();
        }
    })
}

#[test]
fn a_scapy_gnbs_uplink_reaches_the_data_network_and_the_answers_come_back_tunnelled() {
    if !runnable("a_scapy_gnbs_uplink_reaches_the_data_network_and_the_answers_come_back_tunnelled", "gtp") {
        return;
    }
    let bed = upf_bed();
    // The data network's server: answers every datagram.
    let server = bed.pong_server("sink", "198.51.100.2:7000", 5);
    let dut = bed.start_nfv(CONFIG, 2);
    // Let the slow path resolve the gNB and the N6 gateway.
    std::thread::sleep(Duration::from_millis(500));
    let d0 = bed.mac("dut", "d0").iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/scapy/gnb.py");
    let out = Command::new("ip")
        .args(["netns", "exec", &bed.ns("gen"), "/usr/bin/python3"])
        .arg(&script)
        .args(["g0", &d0, "5"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{text}\n{}", String::from_utf8_lossy(&out.stderr));
    let seen = server.join().unwrap();
    let report = dut.stop();
    assert_eq!(seen.len(), 5, "the server got every uplink packet\n{text}\n{}", report.text);
    for (peer, msg) in &seen {
        assert_eq!(peer, "10.45.0.7:4000", "from the UE, untunnelled");
        assert!(msg.starts_with("ping "), "{msg}");
    }
    let mut lines: Vec<&str> = text.lines().collect();
    lines.sort();
    let want: Vec<String> = (0..5).map(|i| format!("43981 9 0 198.51.100.2 10.45.0.7 pong {i}")).collect();
    assert_eq!(lines, want, "downlink: TEID 43981, QFI 9, DL PDU type, the server's answer to the UE\n{}", report.text);
    // After the first packet each way the session runs in nfv's XDP
    // program (`offload = "xdp"`, the default): what the workers did and
    // what XDP forwarded make up the ten.
    let (xdp, installed) = report.xdp();
    let workers: u64 = report
        .text
        .lines()
        .find_map(|l| {
            let n: Vec<u64> = l.strip_prefix("  uplink ")?.split(' ').filter_map(|w| w.parse().ok()).collect();
            Some(n[0] + n[1])
        })
        .unwrap_or_else(|| panic!("no uplink line\n{}", report.text));
    assert_eq!((workers + xdp, installed), (10, 2), "both ways in XDP once forwarded\n{}", report.text);
    assert!(xdp > 0, "{}", report.text);
    // The gNB's kernel, with no GTP-U socket, answers our downlink with
    // port unreachable: dropped as not GTP-U, counted.
}

/// A session limited to 4 Mbit/s downlink (its QER's MBR, a static
/// session's `mbr-dl`) offered 8 Mbit/s for 4 s: what the gNB receives,
/// over 2.5 s after the first second (the bucket's initial burst past), is
/// the MBR within 5 %.
#[test]
fn an_mbr_limited_session_is_held_to_its_rate_within_five_percent() {
    if !privileged("an_mbr_limited_session_is_held_to_its_rate_within_five_percent") {
        return;
    }
    let bed = upf_bed();
    let config = CONFIG.replace("qfi = 9 }", "qfi = 9, mbr-dl = 4000 }");
    assert_ne!(config, CONFIG);
    let dut = bed.start_nfv(&config, 2);
    std::thread::sleep(Duration::from_millis(500));
    let (ready, listening) = std::sync::mpsc::channel();
    let gnb = gnb_socket(&bed, "10.10.0.2", false, ready);
    listening.recv().unwrap();
    // 1000 packets of 1000 octets a second: 8 Mbit/s.
    paced_downlink(&bed, "10.45.0.7", 4000, 1000, 1000).join().unwrap();
    let got = gnb.join().unwrap();
    let report = dut.stop();
    assert!(got.len() > 100, "{} arrived\n{}", got.len(), report.text);
    let t0 = got[0].at;
    let (from, to) = (t0 + Duration::from_secs(1), t0 + Duration::from_millis(3500));
    let bytes: usize = got.iter().filter(|a| a.at >= from && a.at < to).map(|a| a.inner.len()).sum();
    let rate = bytes as f64 * 8.0 / 2.5;
    let ratio = rate / 4_000_000.0;
    eprintln!(
        "MBR 4 Mbit/s: {:.3} Mbit/s over 2.5 s ({ratio:.3} of the MBR), {} packets in all",
        rate / 1e6,
        got.len()
    );
    assert!((0.95..=1.05).contains(&ratio), "{ratio:.3} of the MBR\n{}", report.text);
    assert!(report.text.contains("mbr-exceeded"), "the excess dropped and counted\n{}", report.text);
    // Metered downlink stays in the workers (the token bucket is theirs);
    // only the unmetered uplink may go down to XDP.
    assert!(report.xdp().1 <= 1, "no metered session in XDP\n{}", report.text);
}

/// A handover with traffic flowing: scapy's SMF establishes a session over
/// N4 (downlink into TEID 0xa toward the gNB 10.10.0.2), the data network
/// sends 3000 numbered datagrams at 2000 a second, and halfway the SMF's
/// Update FAR moves the tunnel to TEID 0xb toward the gNB 10.10.0.3. Every
/// datagram arrives exactly once: those before the switch at the first
/// gNB, those after at the second, none lost.
#[test]
fn a_handover_moves_the_downlink_tunnel_with_traffic_flowing_and_loses_nothing() {
    if !runnable("a_handover_moves_the_downlink_tunnel_with_traffic_flowing_and_loses_nothing", "pfcp") {
        return;
    }
    let bed = upf_bed();
    bed.exec("gen", &["ip", "addr", "add", "10.10.0.3/24", "dev", "g0"]);
    let dut = bed.start_nfv(CONFIG, 2);
    std::thread::sleep(Duration::from_millis(500));
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/scapy/handover_smf.py");
    let mut smf = Command::new("ip")
        .args(["netns", "exec", &bed.ns("dut"), "/usr/bin/python3"])
        .arg(&script)
        .args(["127.0.0.1", "8805"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut to_smf = smf.stdin.take().unwrap();
    let mut from_smf = std::io::BufRead::lines(std::io::BufReader::new(smf.stdout.take().unwrap()));
    let mut said = || from_smf.next().expect("the SMF ended").unwrap();
    assert_eq!(said(), "established 1");
    // Each gNB resolves the UPF itself, as two hosts would (both live in
    // gen here: its kernel's cache entry for the UPF, made when one
    // resolved it, would spare the other the ARP request the UPF learns
    // it from).
    let announce = |addr| {
        bed.exec("gen", &["ip", "neigh", "flush", "dev", "g0"]);
        let (ready, listening) = std::sync::mpsc::channel();
        let gnb = gnb_socket(&bed, addr, true, ready);
        listening.recv().unwrap();
        std::thread::sleep(Duration::from_millis(200));
        gnb
    };
    let (a, b) = (announce("10.10.0.2"), announce("10.10.0.3"));
    let sender = paced_downlink(&bed, "10.45.0.9", 3000, 2000, 200);
    std::thread::sleep(Duration::from_millis(700));
    std::io::Write::write_all(&mut to_smf, b"go\n").unwrap();
    assert_eq!(said(), "switched 1");
    sender.join().unwrap();
    let (at_a, at_b) = (a.join().unwrap(), b.join().unwrap());
    std::io::Write::write_all(&mut to_smf, b"go\n").unwrap();
    assert_eq!(said(), "deleted 1");
    assert!(smf.wait().unwrap().success());
    let report = dut.stop();
    let numbers = |got: &[Arrival], teid: u32| -> Vec<u32> {
        assert!(got.iter().all(|g| g.teid == teid), "TEID {teid:#x} only");
        got.iter().map(|g| u32::from_be_bytes(g.inner[28..32].try_into().unwrap())).collect()
    };
    let (na, nb) = (numbers(&at_a, 0xa), numbers(&at_b, 0xb));
    // The downlink ran in XDP before and after the switch: withdrawn with
    // the version that moved the tunnel, offered again into the new one.
    let (xdp, installed) = report.xdp();
    assert!(xdp > 1000 && installed >= 2, "{}", report.text);
    eprintln!("handover: {} datagrams to the first gNB, {} to the second", na.len(), nb.len());
    assert!(!na.is_empty() && !nb.is_empty(), "both gNBs served\n{}", report.text);
    assert!(na.iter().max() < nb.iter().min(), "one switch: the first gNB's before the second's");
    let mut all: Vec<u32> = na.iter().chain(&nb).copied().collect();
    all.sort_unstable();
    all.dedup();
    let missing: Vec<u32> = (0..3000).filter(|i| all.binary_search(i).is_err()).collect();
    assert_eq!(
        (all.len(), na.len() + nb.len()),
        (3000, 3000),
        "every datagram once, none lost; missing {missing:?}\n{}",
        report.text
    );
}
