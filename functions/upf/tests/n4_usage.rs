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

use common::*;

#[test]
fn scapys_smf_gets_usage_reports_of_the_traffic_and_changes_qers_and_urrs() {
    let Some(mut bed) = N4Bed::start(
        "scapys_smf_gets_usage_reports_of_the_traffic_and_changes_qers_and_urrs",
        "n3-address6 = \"fd00::1\", max-urrs = 64",
        "pfcp_usage.py",
    ) else {
        return;
    };
    assert_eq!(bed.next("establish-unassociated"), "establish-unassociated 72", "no association: 72");
    assert_eq!(
        bed.next("establish"),
        "establish 1 0x80000000 10.10.0.1 fd00::1",
        "accepted, the F-TEID we chose, both families"
    );
    let gpdu = unhex(bed.next("gpdu").strip_prefix("gpdu ").unwrap());
    let (downlink, other_port) = (to_ue([10, 45, 0, 9], 4000, &[0xd; 100]), to_ue([10, 45, 0, 9], 4001, &[0xd; 100]));
    bed.next("wait");
    // 3 x 128 octets down, then 3 x 972 up: the 3000-octet threshold is
    // crossed by the last packet only, so the report is of all six.
    for _ in 0..3 {
        assert_eq!(bed.upf.run(N6, &downlink).0, "out:0");
    }
    for _ in 0..3 {
        assert_eq!(bed.upf.run(N3, &eth(OUR_N3, GNB_MAC, &gpdu)).0, "out:1");
    }
    bed.go();
    // Session Report Request to the SMF's SEID: USAR, URR 1, UR-SEQN 0,
    // VOLTH, total / uplink / downlink octets of the inner packets.
    assert_eq!(bed.next("report"), "report 0x2222 USAR 1 0 VOLTH 3300 2916 384");
    assert_eq!(bed.next("again"), "again 1 1 0 VOLTH 3300 2916 384", "sent again after T1, the same request");
    // URR 1 removed: its last usage (nothing since the report); the gate
    // closed downlink.
    assert_eq!(bed.next("modify"), "modify 1 1 1 TERMR 0 0 0");
    bed.next("wait");
    for _ in 0..2 {
        assert_eq!(bed.upf.run(N6, &downlink).0, "gate-closed");
        assert_eq!(bed.upf.run(N3, &eth(OUR_N3, GNB_MAC, &gpdu)).0, "out:1");
    }
    bed.go();
    // A filtered PDR first in precedence: the general walk drops UDP to
    // port 4000 by its FAR; other ports take the usual PDR (counted).
    assert_eq!(bed.next("filter"), "filter 1");
    bed.next("wait");
    assert_eq!(bed.upf.run(N6, &downlink).0, "far-drop");
    assert_eq!(bed.upf.run(N6, &other_port).0, "out:0");
    bed.go();
    assert_eq!(bed.next("unfilter"), "unfilter 1", "Remove PDR and Remove FAR");
    bed.next("wait");
    assert_eq!(bed.upf.run(N6, &downlink).0, "out:0");
    bed.go();
    assert_eq!(bed.next("delete"), "delete 1 2 0 TERMR 2200 1944 256", "URR 2: what was forwarded since it came");
    let raws = bed.finish();
    // Association, two establishments, the report and its retransmission,
    // three modifications, deletion.
    assert_eq!(raws.len(), 9);
    let raws: Vec<&str> = raws.iter().map(String::as_str).collect();
    let decoded = pfcp_in_tshark(&raws, "usage");
    for field in ["Volume Measurement", "Total Number of Packets: 6", "Usage Report Trigger", "UR-SEQN"] {
        assert!(decoded.contains(field), "tshark lacks {field}:\n{decoded}");
    }
}
