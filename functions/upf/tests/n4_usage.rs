//! Usage reporting, QER and URR changes over N4 with traffic through the
//! stage: scapy's PFCP layer plays the SMF (tests/scapy/pfcp_usage.py)
//! against the endpoint the `upf` stage's configuration starts, while this
//! test runs scapy's G-PDUs and downlink packets through the stage. The
//! URR's volume threshold brings a Session Report Request, sent again
//! after T1 while unanswered; a removed URR's and a deleted session's last
//! usage come in the responses; a closed gate drops; a PDR with an SDF
//! filter created over N4 is found by the general PDR walk with packets
//! through the stage, then removed (Remove PDR and FAR). Every message the
//! UPF sent decodes in scapy and in tshark without a warning.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use common::*;
use nfv_core::testkit::tools_or_skip;

#[test]
fn scapys_smf_gets_usage_reports_of_the_traffic_and_changes_qers_and_urrs() {
    let tools: &[&[&str]] = &[&["/usr/bin/python3", "-c", "import scapy.contrib.pfcp"], &["tshark", "--version"]];
    if !tools_or_skip("scapys_smf_gets_usage_reports_of_the_traffic_and_changes_qers_and_urrs", tools) {
        return;
    }
    // A free port for N4 (the endpoint is the configuration's).
    let port = std::net::UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let params = format!(
        "{{ kind = \"upf\", n3 = \"n3\", n3-address = \"10.10.0.1\", n6 = \"n6\", n6-gateway = \"198.51.100.1\", \
         n3-address6 = \"fd00::1\", n4 = \"127.0.0.1:{port}\", max-urrs = 64 }}"
    );
    let cfg = Upf::config(&params);
    let mut n4 = cfg.chains[0].stages[0].builder.control_task().expect("an N4 endpoint");
    let mut u = Upf::of(&cfg);
    let stop = Arc::new(AtomicBool::new(false));
    let control = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                for line in n4.poll() {
                    eprintln!("n4: {line}");
                }
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
        })
    };
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/scapy/pfcp_usage.py");
    let mut smf = Command::new("/usr/bin/python3")
        .arg(&script)
        .args(["127.0.0.1", &port.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut to_smf = smf.stdin.take().unwrap();
    let mut from_smf = BufReader::new(smf.stdout.take().unwrap()).lines();
    let mut said = Vec::new();
    let mut next = |want: &str| -> String {
        loop {
            let l = from_smf.next().unwrap_or_else(|| panic!("the SMF ended before `{want}`: {said:?}")).unwrap();
            said.push(l.clone());
            if l.split(' ').next() == Some(want) {
                return l;
            }
        }
    };
    assert_eq!(next("establish-unassociated"), "establish-unassociated 72", "no association: 72");
    assert_eq!(
        next("establish"),
        "establish 1 0x80000000 10.10.0.1 fd00::1",
        "accepted, the F-TEID we chose, both families"
    );
    let gpdu = unhex(next("gpdu").strip_prefix("gpdu ").unwrap());
    let (downlink, other_port) = (to_ue([10, 45, 0, 9], 4000, &[0xd; 100]), to_ue([10, 45, 0, 9], 4001, &[0xd; 100]));
    next("wait");
    // 3 x 128 octets down, then 3 x 972 up: the 3000-octet threshold is
    // crossed by the last packet only, so the report is of all six.
    for _ in 0..3 {
        assert_eq!(u.run(N6, &downlink).0, "out:0");
    }
    for _ in 0..3 {
        assert_eq!(u.run(N3, &eth(OUR_N3, GNB_MAC, &gpdu)).0, "out:1");
    }
    writeln!(to_smf, "go").unwrap();
    // Session Report Request to the SMF's SEID: USAR, URR 1, UR-SEQN 0,
    // VOLTH, total / uplink / downlink octets of the inner packets.
    assert_eq!(next("report"), "report 0x2222 USAR 1 0 VOLTH 3300 2916 384");
    assert_eq!(next("again"), "again 1 1 0 VOLTH 3300 2916 384", "sent again after T1, the same request");
    // URR 1 removed: its last usage (nothing since the report); the gate
    // closed downlink.
    assert_eq!(next("modify"), "modify 1 1 1 TERMR 0 0 0");
    next("wait");
    for _ in 0..2 {
        assert_eq!(u.run(N6, &downlink).0, "gate-closed");
        assert_eq!(u.run(N3, &eth(OUR_N3, GNB_MAC, &gpdu)).0, "out:1");
    }
    writeln!(to_smf, "go").unwrap();
    // A filtered PDR first in precedence: the general walk drops UDP to
    // port 4000 by its FAR; other ports take the usual PDR (counted).
    assert_eq!(next("filter"), "filter 1");
    next("wait");
    assert_eq!(u.run(N6, &downlink).0, "far-drop");
    assert_eq!(u.run(N6, &other_port).0, "out:0");
    writeln!(to_smf, "go").unwrap();
    assert_eq!(next("unfilter"), "unfilter 1", "Remove PDR and Remove FAR");
    next("wait");
    assert_eq!(u.run(N6, &downlink).0, "out:0");
    writeln!(to_smf, "go").unwrap();
    assert_eq!(next("delete"), "delete 1 2 0 TERMR 2200 1944 256", "URR 2: what was forwarded since it came");
    let mut raws = Vec::new();
    for l in from_smf.by_ref() {
        raws.push(l.unwrap().strip_prefix("raw ").expect("raw lines").to_string());
    }
    assert!(smf.wait().unwrap().success());
    stop.store(true, Ordering::Relaxed);
    control.join().unwrap();
    // Association, two establishments, the report, three modifications,
    // deletion.
    assert_eq!(raws.len(), 8);
    let raws: Vec<&str> = raws.iter().map(String::as_str).collect();
    let decoded = pfcp_in_tshark(&raws, "usage");
    for field in ["Volume Measurement", "Total Number of Packets: 6", "Usage Report Trigger", "UR-SEQN"] {
        assert!(decoded.contains(field), "tshark lacks {field}:\n{decoded}");
    }
}
