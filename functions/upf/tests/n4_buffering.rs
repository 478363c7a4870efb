//! A UE in idle mode (TS 23.502 4.2.3.3, network triggered service
//! request), against scapy's SMF (tests/scapy/pfcp_paging.py): the
//! session's downlink FAR buffers and asks to be notified (BUFF, NOCP);
//! downlink packets are held and the SMF gets one Downlink Data Report
//! naming the downlink PDR; once its modification makes the FAR forward
//! into the gNB's tunnel, the held packets come out in the order they
//! came, before the packet that found them; every message the UPF sent
//! decodes in tshark without a warning.

mod common;

use common::*;

#[test]
fn an_idle_ues_downlink_is_held_reported_and_released_in_order() {
    let Some(mut bed) = N4Bed::start(
        "an_idle_ues_downlink_is_held_reported_and_released_in_order",
        "buffer-packets = 16",
        "pfcp_paging.py",
    ) else {
        return;
    };
    assert_eq!(bed.next("established"), "established 1");
    bed.next("wait");
    let numbered = |i: u8| to_ue([10, 45, 0, 9], 4000, &[i; 40]);
    for i in 0..3 {
        assert_eq!(bed.upf.run(N6, &numbered(i)).0, "buffered", "held, the frame let go");
    }
    bed.go();
    // One report for the session's first held packet, not one per packet.
    assert_eq!(bed.next("report"), "report 0x4444 DLDR 2", "Downlink Data Report, the downlink PDR");
    assert_eq!(bed.next("forwarding"), "forwarding 1");
    bed.next("wait");
    let (first, released) = bed.upf.runner.run_all(&mut *bed.upf.stage, N6, &numbered(3));
    assert_eq!(
        bed.upf.reasons[match first.0 {
            nfv_core::packet::VerdictKind::Drop(r) => r.0 as usize,
            other => panic!("{other:?}"),
        }],
        "buffered",
        "it joins the held ones, behind them"
    );
    let out: Vec<(u32, u8)> = released
        .iter()
        .map(|(v, _, f)| {
            assert_eq!(*v, nfv_core::packet::VerdictKind::Out(N3), "out to the gNB");
            // Outer IPv4/UDP, GTP-U with a TEID at 46, inner from 50.
            (u32::from_be_bytes(f[46..50].try_into().unwrap()), f[f.len() - 1])
        })
        .collect();
    assert_eq!(out, vec![(0x7777, 0), (0x7777, 1), (0x7777, 2), (0x7777, 3)], "in the order they came");
    assert_eq!(bed.upf.run(N6, &numbered(4)).0, "out:0", "nothing held: straight through");
    let report = bed.upf.stage.report().unwrap_or_default();
    assert!(report.contains("held 4 (now 0) released 4 discarded 0 expired 0"), "{report}");
    bed.go();
    assert_eq!(bed.next("deleted"), "deleted 1");
    let raws = bed.finish();
    let raws: Vec<&str> = raws.iter().map(String::as_str).collect();
    let decoded = pfcp_in_tshark(&raws, "paging");
    for field in ["Downlink Data Report", "DLDR"] {
        assert!(decoded.contains(field), "tshark lacks {field}:\n{decoded}");
    }
}
