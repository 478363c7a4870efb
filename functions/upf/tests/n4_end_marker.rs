//! End Markers (TS 29.281 7.3.2) on a path switch, against scapy's SMF
//! (tests/scapy/pfcp_end_marker.py): an Update FAR asking for them (SNDEM)
//! makes the stage send one End Marker into the old tunnel (the old gNB,
//! the old TEID) at its next tick, read by scapy; one without SNDEM sends
//! none; the downlink then goes into the new tunnel.

mod common;

use common::*;
use nfv_core::packet::VerdictKind;

#[test]
fn a_switch_asking_for_end_markers_sends_one_into_the_old_tunnel() {
    let Some(mut bed) = N4Bed::start(
        "a_switch_asking_for_end_markers_sends_one_into_the_old_tunnel",
        "max-urrs = 8",
        "pfcp_end_marker.py",
    ) else {
        return;
    };
    assert_eq!(bed.next("established"), "established 1");
    bed.next("wait");
    assert!(bed.upf.runner.tick(&mut *bed.upf.stage).is_empty(), "nothing to send yet");
    bed.go();
    assert_eq!(bed.next("switched"), "switched 1");
    bed.next("wait");
    let sent = bed.upf.runner.tick(&mut *bed.upf.stage);
    assert_eq!(sent.len(), 1, "one End Marker");
    let (v, _, f) = &sent[0];
    assert_eq!((*v, &f[0..6]), (VerdictKind::Out(N3), &GNB_MAC[..]));
    let got = scapy_reads(
        f,
        "p[IP].src, p[IP].dst, p[UDP].sport, p[UDP].dport, p[GTP_U_Header].gtp_type, hex(p[GTP_U_Header].teid), p[GTP_U_Header].length",
    );
    if let Some(got) = got {
        assert_eq!(got, "10.10.0.1 10.10.0.2 2152 2152 254 0x5555 0", "End Marker, the old gNB and TEID");
    }
    assert!(bed.upf.runner.tick(&mut *bed.upf.stage).is_empty(), "once");
    bed.go();
    assert_eq!(bed.next("switched-quietly"), "switched-quietly 1");
    bed.next("wait");
    assert!(bed.upf.runner.tick(&mut *bed.upf.stage).is_empty(), "no SNDEM, no End Marker");
    let (v, out) = bed.upf.run(N6, &to_ue([10, 45, 0, 12], 4000, b"after"));
    assert_eq!((v.as_str(), u32::from_be_bytes(out[46..50].try_into().unwrap())), ("out:0", 0x7777));
    assert!(bed.upf.stage.report().unwrap().contains("end-markers 1"));
    bed.go();
    let raws = bed.finish();
    let raws: Vec<&str> = raws.iter().map(String::as_str).collect();
    pfcp_in_tshark(&raws, "end-marker");
}
