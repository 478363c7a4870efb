//! The UPF watching its SMF (TS 29.244 6.2.2 heartbeats, T1/N1 of 7.6):
//! an SMF on a real UDP socket associates and establishes a session with
//! scapy's messages (tests/scapy/pfcp_template.py), then stays silent,
//! comes back, or restarts; the data path's session table follows.

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

mod common;

use nfv_core::ControlTask;
use nfv_core::published::Published;
use nfv_upf::pfcp::{OnSmfFailure, PfcpEndpoint, Watch};
use nfv_upf::rules::Sessions;
use rs_pfcp::ie::{Ie, IeType};
use rs_pfcp::message::MsgType;
use rs_pfcp::message::heartbeat_response::HeartbeatResponseBuilder;

/// The UE of the template's session.
const UE: u32 = u32::from_be_bytes([10, 45, 0, 9]);
/// The Recovery Time Stamp the template's association carries.
const SMF_RECOVERY: u32 = 3_900_000_000;

/// scapy's Association Setup and Session Establishment Requests.
fn templates(test: &str) -> Option<(Vec<u8>, Vec<u8>)> {
    let tools: &[&[&str]] = &[&["/usr/bin/python3", "-c", "import scapy.contrib.pfcp"]];
    if !nfv_testkit::tools_or_skip(test, tools) {
        return None;
    }
    Some(common::pfcp_templates())
}

struct Bed {
    n4: PfcpEndpoint,
    table: std::sync::Arc<Published<Sessions>>,
    /// The SMF's socket, where our heartbeats arrive.
    smf: UdpSocket,
    from: SocketAddr,
    lines: Vec<String>,
    /// Every Heartbeat Request the SMF got, as sent.
    heard: Vec<Vec<u8>>,
}

impl Bed {
    /// An endpoint watching with `on_failure`, the SMF at `smf_ip`
    /// associated and holding one session.
    fn new(test: &str, smf_ip: &str, on_failure: OnSmfFailure) -> Option<Self> {
        let (associate, establish) = templates(test)?;
        let mut n4 = PfcpEndpoint::bind("127.0.0.1:0".parse().unwrap(), Ipv4Addr::new(10, 10, 0, 1)).unwrap();
        let table = Published::new(Sessions::default());
        let usage = nfv_upf::usage::Usage::new(16);
        n4.serve_sessions(table.clone(), Vec::new(), (Ipv4Addr::new(10, 10, 0, 1), None), usage);
        let ms = Duration::from_millis;
        n4.watch_smfs(Some(Watch { interval: ms(100), timeout: ms(100), tries: 2, on_failure }));
        let from: SocketAddr = format!("{smf_ip}:8805").parse().unwrap();
        let smf = UdpSocket::bind(from).expect("the SMF's socket");
        smf.set_read_timeout(Some(ms(20))).unwrap();
        assert_eq!(n4.answer(&associate, from).expect("an association")[1], 6);
        assert_eq!(n4.answer(&establish, from).expect("an establishment")[1], 51);
        assert_eq!(n4.sessions(), 1);
        Some(Self { n4, table, smf, from, lines: Vec::new(), heard: Vec::new() })
    }

    /// Polls for `d`, or until `done`; the Heartbeat Requests the SMF got
    /// (sequence number, the Recovery Time Stamp they carry).
    fn run(&mut self, d: Duration, done: impl Fn(&Self) -> bool) -> Vec<(u32, Ie)> {
        let end = Instant::now() + d;
        let mut got = Vec::new();
        let mut buf = [0u8; 2048];
        while Instant::now() < end && !done(self) {
            self.lines.extend(self.n4.poll());
            while let Ok((n, _)) = self.smf.recv_from(&mut buf) {
                let m = rs_pfcp::message::parse(&buf[..n]).expect("a PFCP message");
                assert_eq!(m.msg_type(), MsgType::HeartbeatRequest);
                let ts = m.ies(IeType::RecoveryTimeStamp).next().expect("Recovery Time Stamp (7.4.2.1)").clone();
                got.push((u32::from(m.sequence()), ts));
                self.heard.push(buf[..n].to_vec());
            }
        }
        got
    }

    fn in_data_path(&self) -> bool {
        self.table.load().by_ue(UE).is_some()
    }
}

fn response(seq: u32, recovery: u32) -> Vec<u8> {
    let ts = Ie::new(IeType::RecoveryTimeStamp, recovery.to_be_bytes().to_vec());
    HeartbeatResponseBuilder::new(seq).recovery_time_stamp_ie(ts).marshal()
}

#[test]
fn a_silent_smf_is_declared_failed_after_n1_heartbeats_and_release_deletes_its_sessions() {
    let name = "a_silent_smf_is_declared_failed_after_n1_heartbeats_and_release_deletes_its_sessions";
    let Some(mut b) = Bed::new(name, "127.0.0.21", OnSmfFailure::Release) else { return };
    assert!(b.in_data_path());
    let got = b.run(Duration::from_secs(3), |b| b.n4.sessions() == 0);
    assert_eq!(b.n4.sessions(), 0, "{:?} {:?}", b.n4.counters, b.lines);
    assert!(!b.in_data_path(), "the data path's table lost it too");
    assert_eq!(got.len(), 2, "N1 = 2: the request and one retransmission: {got:?}");
    assert_eq!(got[0].0, got[1].0, "a retransmission keeps its sequence number (7.6)");
    let c = b.n4.counters;
    assert_eq!((c.heartbeats_sent, c.heartbeat_retransmissions, c.smf_failures), (1, 1, 1));
    // Wireshark's PFCP dissector, not our codec, reads what we sent.
    if nfv_testkit::tools_or_skip(name, &[&["tshark", "--version"]]) {
        let hexes: Vec<String> = b.heard.iter().map(|h| common::hex(h)).collect();
        let decoded = common::pfcp_in_tshark(&hexes.iter().map(String::as_str).collect::<Vec<_>>(), "heartbeat");
        assert_eq!(decoded.matches("Heartbeat Request (1)").count(), 2, "{decoded}");
        assert_eq!(decoded.matches("IE Type: Recovery Time Stamp (96)").count(), 2, "7.4.2.1: mandatory: {decoded}");
    }
    assert!(
        b.lines.iter().any(|l| l.contains("answered no heartbeat") && l.contains("1 session(s) released")),
        "{:?}",
        b.lines
    );
}

#[test]
fn with_keep_a_failed_smfs_sessions_stay_and_it_is_watched_again_when_heard() {
    let name = "with_keep_a_failed_smfs_sessions_stay_and_it_is_watched_again_when_heard";
    let Some(mut b) = Bed::new(name, "127.0.0.22", OnSmfFailure::Keep) else { return };
    b.run(Duration::from_secs(3), |b| b.n4.counters.smf_failures > 0);
    assert_eq!(b.n4.counters.smf_failures, 1);
    assert_eq!(b.n4.sessions(), 1, "kept");
    assert!(b.in_data_path(), "still forwarding");
    assert!(b.lines.iter().any(|l| l.contains("kept until it comes back")), "{:?}", b.lines);
    // Failed: no more heartbeats.
    assert!(b.run(Duration::from_millis(400), |_| false).is_empty(), "a failed SMF is not pinged");
    // It sends a heartbeat of its own (the same Recovery Time Stamp): back.
    let ts = Ie::new(IeType::RecoveryTimeStamp, SMF_RECOVERY.to_be_bytes().to_vec());
    let hb = rs_pfcp::message::heartbeat_request::HeartbeatRequestBuilder::new(77).recovery_time_stamp_ie(ts).marshal();
    assert_eq!(b.n4.answer(&hb, b.from).expect("answered")[1], 2);
    let got = b.run(Duration::from_secs(1), |b| b.n4.counters.heartbeats_sent > 1);
    assert!(!got.is_empty(), "watched again");
    assert!(b.lines.iter().any(|l| l.contains("is back")), "{:?}", b.lines);
    // Answered with the same stamp: alive, nothing deleted.
    assert!(b.n4.answer(&response(got[0].0, SMF_RECOVERY), b.from).is_none());
    assert!(b.n4.counters.heartbeats_answered >= 1);
    assert_eq!((b.n4.sessions(), b.n4.counters.smf_restarts), (1, 0));
}

#[test]
fn a_new_recovery_time_stamp_in_a_heartbeat_response_means_a_restart_and_its_sessions_go() {
    let name = "a_new_recovery_time_stamp_in_a_heartbeat_response_means_a_restart_and_its_sessions_go";
    let Some(mut b) = Bed::new(name, "127.0.0.23", OnSmfFailure::Keep) else { return };
    let got = b.run(Duration::from_secs(1), |b| b.n4.counters.heartbeats_sent > 0);
    let (seq, ours) = got.first().cloned().expect("a heartbeat");
    assert_eq!(ours.payload.len(), 4, "our Recovery Time Stamp, NTP seconds");
    assert!(b.n4.answer(&response(seq, SMF_RECOVERY + 60), b.from).is_none());
    assert_eq!((b.n4.sessions(), b.n4.counters.smf_restarts), (0, 1));
    assert!(!b.in_data_path());
    b.lines.extend(b.n4.poll());
    assert!(b.lines.iter().any(|l| l.contains("restarted") && l.contains("1 session(s) deleted")), "{:?}", b.lines);
}
