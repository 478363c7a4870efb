//! UEs in idle mode (TS 23.502 4.2.3.3, network triggered service
//! request), against scapy's SMF (tests/scapy/pfcp_paging.py, listening
//! on 127.0.0.3:8805 where our Session Reports go): two sessions whose
//! downlink FARs buffer and ask to be notified (BUFF, NOCP); their
//! downlink packets are held and the SMF gets one Downlink Data Report per
//! session naming the downlink PDR; once its modifications make the FARs
//! forward into the gNB's tunnels, the held packets come out, each UE's in
//! the order they came and ahead of the packets that found them, on the
//! worker's tick and with the next batch (81 held, at most 64 released at
//! a time); every message the UPF sent
//! decodes in tshark without a warning.

mod common;

use common::*;
use nfv_core::packet::VerdictKind;

#[test]
fn idle_ues_downlink_is_held_reported_and_released_in_order() {
    let Some(mut bed) = N4Bed::start(
        "idle_ues_downlink_is_held_reported_and_released_in_order",
        "buffer-packets = 128",
        "pfcp_paging.py",
    ) else {
        return;
    };
    assert_eq!(bed.next("established"), "established 1 1");
    bed.next("wait");
    // 40 numbered packets for each UE, interleaved.
    let numbered = |ue: u8, i: u8| to_ue([10, 45, 0, ue], 4000, &[i; 40]);
    for i in 0..40 {
        for ue in [9, 10] {
            assert_eq!(bed.upf.run(N6, &numbered(ue, i)).0, "buffered", "held, the frame let go");
        }
    }
    bed.go();
    // One report per session for its first held packet, not per packet.
    let mut reports = vec![bed.next("report"), bed.next("report")];
    reports.sort();
    assert_eq!(reports, ["report 0x4444 DLDR 2", "report 0x4445 DLDR 2"], "Downlink Data Reports, the downlink PDR");
    assert_eq!(bed.next("forwarding"), "forwarding 1 1");
    bed.next("wait");
    // What leaves, per tunnel (0x7777 for UE .9, 0x7778 for .10), by number.
    let mut out: [Vec<u8>; 2] = Default::default();
    let mut take = |got: Vec<(VerdictKind, nfv_core::packet::Meta, Vec<u8>)>| {
        for (v, _, f) in got {
            assert_eq!(v, VerdictKind::Out(N3), "out to the gNB");
            let teid = u32::from_be_bytes(f[46..50].try_into().unwrap());
            out[(teid - 0x7777) as usize].push(f[f.len() - 1]);
        }
    };
    // The worker's tick, traffic or not: the first 64 held leave (32 of
    // each UE).
    let released = bed.upf.runner.tick(&mut *bed.upf.stage);
    assert_eq!(released.len(), 64);
    take(released);
    // A packet for UE .10 joins its last 8, behind them; all 17 left of
    // both leave with it.
    let (first, released) = bed.upf.runner.run_all(&mut *bed.upf.stage, N6, &numbered(10, 40));
    assert_eq!(bed.upf.reasons[drop_reason(&first.0)], "buffered");
    assert_eq!(released.len(), 17);
    take(released);
    // Nothing held: straight through.
    let (first, released) = bed.upf.runner.run_all(&mut *bed.upf.stage, N6, &numbered(9, 40));
    assert!(released.is_empty());
    take(vec![first]);
    let in_order: Vec<u8> = (0..=40).collect();
    assert_eq!(out, [in_order.clone(), in_order], "each UE's packets in the order they came, none lost");
    assert_eq!(bed.upf.run(N6, &numbered(10, 41)).0, "out:0", "nothing held: straight through");
    let report = bed.upf.stage.report().unwrap_or_default();
    assert!(report.contains("held 81 (now 0) released 81 discarded 0 expired 0"), "{report}");
    bed.go();
    assert_eq!(bed.next("deleted"), "deleted 1 1");
    let raws = bed.finish();
    let raws: Vec<&str> = raws.iter().map(String::as_str).collect();
    let decoded = pfcp_in_tshark(&raws, "paging");
    for field in ["Downlink Data Report", "DLDR"] {
        assert!(decoded.contains(field), "tshark lacks {field}:\n{decoded}");
    }
}

fn drop_reason(v: &VerdictKind) -> usize {
    match v {
        VerdictKind::Drop(r) => r.0 as usize,
        other => panic!("{other:?}"),
    }
}
