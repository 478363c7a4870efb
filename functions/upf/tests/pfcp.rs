//! The N4 endpoint against scapy's PFCP layer playing the SMF over a real
//! UDP socket (tests/scapy/pfcp_smf.py): heartbeat, association setup and
//! release, a request missing its mandatory node id, a release without an
//! association, garbage, another PFCP version, sessions (established,
//! established again by a retransmission, modified by another host and
//! by the SMF, deleted twice, two PDRs sharing a CHOOSE ID); the answers
//! decoded by scapy, then by tshark's PFCP dissector without a warning.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

mod common;

use nfv_core::published::Published;
use nfv_testkit::tools_or_skip;
use nfv_upf::pfcp::PfcpEndpoint;
use nfv_upf::rules::{Interface, Sessions};
use nfv_upf::sdf::FlowView;

/// A downlink packet to the session's UE.
fn flow() -> FlowView {
    FlowView { proto: 17, remote: (0xc633_6409, 53), ue: (0x0a2d_0009, 4000), ue6: None }
}

#[test]
fn scapys_smf_associates_and_every_answer_decodes_cleanly() {
    let tools: &[&[&str]] = &[&["/usr/bin/python3", "-c", "import scapy.contrib.pfcp"], &["tshark", "--version"]];
    if !tools_or_skip("scapys_smf_associates_and_every_answer_decodes_cleanly", tools) {
        return;
    }
    let mut n4 = PfcpEndpoint::bind("127.0.0.1:0".parse().unwrap(), Ipv4Addr::new(10, 10, 0, 1)).unwrap();
    let table = Published::new(Sessions::default());
    n4.serve_sessions(table.clone(), Vec::new(), (Ipv4Addr::new(10, 10, 0, 1), None), nfv_upf::usage::Usage::new(16));
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let addr: SocketAddr = n4.local_addr();
    let stop = Arc::new(AtomicBool::new(false));
    let poller = {
        let (stop, table, seen) = (stop.clone(), table.clone(), seen.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                // One request at a time, so every version is seen.
                n4.poll_once().unwrap();
                // What the workers would see: the table after each change.
                let t = table.load();
                let mut seen = seen.lock().unwrap();
                if seen.last().is_none_or(|(v, _, _)| *v != t.version) {
                    let dl = t.by_ue(0x0a2d_0009).map(|s| {
                        let pdr = s.detect(Interface::Core, None, None, &flow()).unwrap();
                        let far = s.far(pdr.far).unwrap();
                        // The QER: 16000 kbit/s down, QFI 9 marked.
                        assert_eq!(pdr.limit.map(|l| (l.open, l.bytes_per_sec)), Some((true, 2_000_000)));
                        assert_eq!(far.qfi, Some(9));
                        (far.outer.unwrap().teid, far.outer.unwrap().peer)
                    });
                    let ul = t.by_teid(0x8000_0000).map(|s| s.seid);
                    seen.push((t.version, dl, ul));
                }
                drop(seen);
                std::thread::sleep(std::time::Duration::from_micros(200));
            }
            n4.counters
        })
    };
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/scapy/pfcp_smf.py");
    let out =
        Command::new("/usr/bin/python3").arg(&script).args(["127.0.0.1", &addr.port().to_string()]).output().unwrap();
    stop.store(true, Ordering::Relaxed);
    let counters = poller.join().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}\n{}", String::from_utf8_lossy(&out.stderr));
    let line = |name: &str| {
        text.lines().find(|l| l.split(' ').next() == Some(name)).unwrap_or_else(|| panic!("{name}: {text}"))
    };
    // name, message type, sequence, S flag, cause, node id.
    assert_eq!(line("heartbeat"), "heartbeat 2 1 0 none none -", "Heartbeat Response");
    assert_eq!(line("setup"), "setup 6 2 0 1 10.10.0.1 -", "Association Setup Response, accepted, our node id");
    assert_eq!(line("setup-no-node-id"), "setup-no-node-id 6 3 0 66 10.10.0.1 -", "66: mandatory IE missing");
    assert_eq!(line("release"), "release 10 4 0 1 10.10.0.1 -", "Association Release Response, accepted");
    assert_eq!(line("release-again"), "release-again 10 5 0 72 10.10.0.1 -", "72: no established association");
    assert_eq!(line("garbage"), "garbage -", "not PFCP: no answer");
    assert_eq!(line("version-2"), "version-2 11 11 0 none none -", "Version Not Supported Response, its sequence");
    // Session Establishment Response (51) to the SMF's SEID, accepted, our
    // F-SEID, the F-TEID we chose for the uplink PDR.
    assert_eq!(
        line("establish"),
        "establish 51 7 1 1 10.10.0.1 fseid=1@10.10.0.1 created-pdr=1 fteid=0x80000000@10.10.0.1",
        "{text}"
    );
    assert_eq!(
        line("establish-again"),
        "establish-again 51 7 1 1 10.10.0.1 fseid=1@10.10.0.1 created-pdr=1 fteid=0x80000000@10.10.0.1",
        "a retransmitted request: the same answer (6.4), no second session"
    );
    assert_eq!(line("modify-foreign"), "modify-foreign 53 9 1 65 none -", "another host: no such session");
    assert_eq!(line("modify"), "modify 53 9 1 1 none -", "Session Modification Response, accepted");
    assert_eq!(line("modify-bad-far"), "modify-bad-far 53 10 1 73 none -", "73: rule modification failure");
    assert_eq!(line("delete"), "delete 55 12 1 1 none -", "Session Deletion Response, accepted");
    assert_eq!(line("delete-again"), "delete-again 55 13 1 65 none -", "65: session context not found");
    assert_eq!(
        line("choose-id"),
        "choose-id 51 14 1 1 10.10.0.1 fseid=2@10.10.0.1 created-pdr=1 fteid=0x80000001@10.10.0.1 created-pdr=3 \
         fteid=0x80000001@10.10.0.1",
        "one CHOOSE ID, one F-TEID (5.5.3)"
    );
    assert_eq!((counters.heartbeats, counters.associations, counters.releases), (1, 2, 1));
    assert_eq!(
        line("establish-reused-seq"),
        "establish-reused-seq 51 7 1 1 10.10.0.1 fseid=3@10.10.0.1 created-pdr=1 fteid=0x80000002@10.10.0.1",
        "a sequence number seen before, another request: a new session"
    );
    assert_eq!((counters.established, counters.modified, counters.deleted), (3, 1, 1));
    assert_eq!((counters.rejected, counters.ignored, counters.retransmitted_requests), (5, 1, 1));
    // The workers' table: empty, the session (downlink into TEID 0x5555
    // toward 10.10.0.2, uplink by the chosen TEID), after the handover
    // (TEID 0x6666 toward 10.10.0.3, in one version), empty, another UE's
    // session.
    let seen = seen.lock().unwrap().clone();
    assert_eq!(
        seen,
        vec![
            (0, None, None),
            (1, Some((0x5555, [10, 10, 0, 2].into())), Some(1)),
            (2, Some((0x6666, [10, 10, 0, 3].into())), Some(1)),
            (3, None, None),
            (4, None, None),
            (5, None, None)
        ],
        "table versions"
    );
    // The dual-stack session: found by its IPv6 /64 too.
    let t = table.load();
    let (_, dual) = t.numbered_by_ue6(0x2001_0db8_0011_0000).expect("the session by its IPv6 /64");
    assert_eq!(dual.pdrs.iter().filter(|p| p.pdi.ue_ip == Some(0x0a2d_000b)).count(), 3);
    // tshark's dissector on every answer.
    let raws: Vec<&str> = text.lines().filter_map(|l| l.strip_prefix("raw ")).collect();
    common::pfcp_in_tshark(&raws, "pfcp");
}

/// With `smf` set, N4 serves only those peers: a heartbeat from anyone
/// else is dropped unread and counted, the SMF's is answered.
#[test]
fn pfcp_from_a_peer_that_is_not_a_configured_smf_is_refused_and_counted() {
    let mut n4 = PfcpEndpoint::bind("127.0.0.1:0".parse().unwrap(), Ipv4Addr::new(10, 10, 0, 1)).unwrap();
    n4.accept_only(vec!["127.0.0.2".parse().unwrap()]);
    let heartbeat = [0x20, 1, 0, 12, 0, 0, 7, 0, 0, 96, 0, 4, 0xe8, 0x75, 0x8a, 0x00];
    assert_eq!(n4.answer(&heartbeat, "127.0.0.9:8805".parse().unwrap()), None);
    assert_eq!((n4.counters.refused_peers, n4.counters.heartbeats), (1, 0));
    let lines = nfv_core::stage::ControlTask::poll(&mut n4);
    assert!(lines.iter().any(|l| l.contains("refused 1 datagram(s)") && l.contains("127.0.0.9")), "{lines:?}");
    assert!(nfv_core::stage::ControlTask::poll(&mut n4).is_empty(), "said once");
    let r = n4.answer(&heartbeat, "127.0.0.2:8805".parse().unwrap()).expect("the SMF is answered");
    assert_eq!(r[1], 2, "a Heartbeat Response");
    assert_eq!((n4.counters.refused_peers, n4.counters.heartbeats), (1, 1));
}

#[test]
fn smf_addresses_without_n4_are_refused_where_they_are_written() {
    let stage = "{ kind = \"upf\", n3 = \"n3\", n3-address = \"10.10.0.1\", n6 = \"n6\", n6-gateway = \"198.51.100.1\", \
                 smf = [\"10.0.0.5\"] }";
    let e = nfv_testkit::two_port_config("upf.toml", ["n3", "n6"], stage, nfv_upf::register).unwrap_err();
    assert!(e.contains("SMF addresses without N4") && e.contains("give `n4"), "{e}");
}
