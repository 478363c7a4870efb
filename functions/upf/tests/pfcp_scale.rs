//! 100,000 sessions established over N4 (the scale): scapy builds
//! one Session Establishment Request (tests/scapy/pfcp_template.py); this
//! test sends 100,000 copies, each with its own sequence number, CP SEID
//! and UE address, up to 1024 in flight, to the endpoint polled as the
//! runtime polls it. Every one is accepted, every session is in the
//! workers' table, and the memory it takes (table and URR counters) and
//! the rate are told.

use std::net::{Ipv4Addr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

mod common;

use nfv_core::ControlTask;
use nfv_core::published::Published;
use nfv_testkit::tools_or_skip;
use nfv_upf::pfcp::PfcpEndpoint;
use nfv_upf::rules::Sessions;
use nfv_upf::usage::Usage;

const SESSIONS: u32 = 100_000;
const WINDOW: u32 = 1024;

/// Where `pattern` starts in `b`, each time.
fn find_all(b: &[u8], pattern: &[u8]) -> Vec<usize> {
    (0..=b.len() - pattern.len()).filter(|&i| &b[i..i + pattern.len()] == pattern).collect()
}

/// The cause of a PFCP response with a SEID (header 16 octets): the
/// value of its Cause IE (type 19).
fn cause(r: &[u8]) -> Option<u8> {
    let mut at = 16;
    while at + 4 <= r.len() {
        let (t, l) = (u16::from_be_bytes([r[at], r[at + 1]]), u16::from_be_bytes([r[at + 2], r[at + 3]]) as usize);
        if t == 19 {
            return r.get(at + 4).copied();
        }
        at += 4 + l;
    }
    None
}

#[test]
fn a_hundred_thousand_sessions_are_established_over_n4() {
    let tools: &[&[&str]] = &[&["/usr/bin/python3", "-c", "import scapy.contrib.pfcp"]];
    if !tools_or_skip("a_hundred_thousand_sessions_are_established_over_n4", tools) {
        return;
    }
    let (associate, establish) = common::pfcp_templates();
    let seid_at = find_all(&establish, &0x5eed_5eed_5eed_5eedu64.to_be_bytes());
    let ue_at = find_all(&establish, &[10, 45, 0, 9]);
    assert_eq!((seid_at.len(), ue_at.len()), (1, 2), "one CP SEID, the UE address in both PDIs");

    let mut n4 = PfcpEndpoint::bind("127.0.0.1:0".parse().unwrap(), Ipv4Addr::new(10, 10, 0, 1)).unwrap();
    let table = Published::new(Sessions::default());
    let usage = Usage::new(SESSIONS + 20);
    // One worker's counters, as a one-worker UPF would hold.
    let _lane = usage.lane();
    n4.serve_sessions(table.clone(), Vec::new(), (Ipv4Addr::new(10, 10, 0, 1), None), usage.clone());
    let addr = n4.local_addr();
    let stop = Arc::new(AtomicBool::new(false));
    let control = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                assert!(n4.poll().is_empty());
                std::thread::sleep(n4.period());
            }
            n4
        })
    };
    let smf = UdpSocket::bind("127.0.0.1:0").unwrap();
    nfv_core::sockopt::receive_buffer(&smf, 8 << 20);
    smf.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut buf = [0u8; 2048];
    smf.send_to(&associate, addr).unwrap();
    smf.recv(&mut buf).unwrap();
    let start = Instant::now();
    let (mut sent, mut accepted) = (0u32, 0u32);
    let mut req = establish.clone();
    while accepted < SESSIONS {
        while sent < SESSIONS && sent - accepted < WINDOW {
            let i = sent + 1;
            req[12..15].copy_from_slice(&i.to_be_bytes()[1..]);
            req[seid_at[0]..seid_at[0] + 8].copy_from_slice(&(0x1_0000_0000 + i as u64).to_be_bytes());
            let ue = (Ipv4Addr::new(10, 64, 0, 0).to_bits() + i).to_be_bytes();
            for &at in &ue_at {
                req[at..at + 4].copy_from_slice(&ue);
            }
            smf.send_to(&req, addr).unwrap();
            sent += 1;
        }
        let n = smf.recv(&mut buf).expect("a response within 10 s");
        assert_eq!((buf[1], cause(&buf[..n])), (51, Some(1)), "Session Establishment Response, accepted");
        accepted += 1;
    }
    let took = start.elapsed();
    // One at a time now, as a closed-loop SMF would: each waits for a
    // publish of the whole table.
    let one_by_one = Instant::now();
    for i in SESSIONS + 1..=SESSIONS + 20 {
        req[12..15].copy_from_slice(&i.to_be_bytes()[1..]);
        req[seid_at[0]..seid_at[0] + 8].copy_from_slice(&(0x1_0000_0000 + i as u64).to_be_bytes());
        for &at in &ue_at {
            req[at..at + 4].copy_from_slice(&(Ipv4Addr::new(10, 64, 0, 0).to_bits() + i).to_be_bytes());
        }
        smf.send_to(&req, addr).unwrap();
        let n = smf.recv(&mut buf).unwrap();
        assert_eq!(cause(&buf[..n]), Some(1));
    }
    let closed_loop = one_by_one.elapsed() / 20;
    // The last responses go out after the table holding them is published.
    stop.store(true, Ordering::Relaxed);
    let n4 = control.join().unwrap();
    let t = table.load();
    let all = SESSIONS as usize + 20;
    assert_eq!((n4.sessions(), t.len()), (all, all));
    assert!(t.by_ue(Ipv4Addr::new(10, 64, 0, 0).to_bits() + SESSIONS).is_some());
    assert_eq!(usage.in_use(), SESSIONS + 20, "a URR each");
    let mib = |b: usize| b as f64 / (1 << 20) as f64;
    eprintln!(
        "{SESSIONS} sessions over N4 in {:.2} s ({:.0} a second); the workers' table {:.1} MiB ({} bytes a session), \
         URR counters {:.1} MiB a worker; one at a time past 100k: {:.1} ms each",
        took.as_secs_f64(),
        SESSIONS as f64 / took.as_secs_f64(),
        mib(t.bytes()),
        t.bytes() / SESSIONS as usize,
        mib(usage.bytes()),
        closed_loop.as_secs_f64() * 1e3
    );
}
