//! `nfv ctl vtep`: static FDB entries and flood lists changed under a
//! running stage, taken at its next batch; bad commands refused with what
//! to write.

mod common;

use common::*;
use nfv_core::live::Answer;
use nfv_core::packet::VerdictKind;

fn ctl(cfg: &nfv_core::config::Config, words: &str) -> Result<Answer, String> {
    let live = cfg.chains[0].stages[0].builder.live().expect("vtep changes live");
    live.command(&words.split_whitespace().collect::<Vec<_>>())
}

/// Where the copies of a frame from host0 went: (port, tunnel destination
/// for the underlay).
fn sent(s: &mut dyn nfv_core::Stage, frame: &[u8]) -> Vec<(u16, Option<[u8; 4]>)> {
    let mut v: Vec<_> = run(s, 1, &[frame.to_vec()], false)
        .into_iter()
        .filter_map(|(b, v)| match v {
            VerdictKind::Out(0) => Some((0, Some([b[30], b[31], b[32], b[33]]))),
            VerdictKind::Out(p) => Some((p, None)),
            _ => None,
        })
        .collect();
    v.sort();
    v
}

#[test]
fn flood_lists_and_static_macs_change_under_a_running_stage() {
    let (cfg, mut s) = vtep("", false);
    let unknown = inner(HOST_B, HOST_A);
    assert_eq!(sent(s.as_mut(), &unknown), [(0, Some([192, 0, 2, 2])), (2, None)], "flooded to host1 and 192.0.2.2");
    let flood = ctl(&cfg, "flood list").unwrap();
    assert_eq!(flood.table.unwrap().1, [vec!["100".to_string(), "192.0.2.2 192.0.2.3".into()]]);

    let gone = ctl(&cfg, "flood delete 100 192.0.2.2").unwrap();
    assert_eq!(gone.text, "statics version 1: 0 static MACs, flood VTEPs per domain [1]\n");
    assert_eq!(sent(s.as_mut(), &unknown), [(2, None)], "no longer flooded to 192.0.2.2");
    ctl(&cfg, "flood add 100 192.0.2.2").unwrap();
    assert_eq!(sent(s.as_mut(), &unknown), [(0, Some([192, 0, 2, 2])), (2, None)]);

    // HOST_B pinned behind 192.0.2.2, then behind host1.
    ctl(&cfg, "fdb add 100 02:00:00:00:00:b2 192.0.2.2").unwrap();
    assert_eq!(sent(s.as_mut(), &unknown), [(0, Some([192, 0, 2, 2]))], "unicast to the pinned VTEP");
    ctl(&cfg, "fdb add 100 02:00:00:00:00:b2 host1").unwrap();
    assert_eq!(sent(s.as_mut(), &unknown), [(2, None)]);
    let rows = ctl(&cfg, "fdb list").unwrap().table.unwrap().1;
    assert_eq!(rows, [vec!["100".to_string(), "02:00:00:00:00:b2".into(), "port host1".into()]], "replaced, not added");
    let deleted = ctl(&cfg, "fdb delete 100 02:00:00:00:00:b2").unwrap();
    assert!(deleted.text.starts_with("statics version 5: 0 static MACs"), "{}", deleted.text);
    assert_eq!(sent(s.as_mut(), &unknown).len(), 2, "flooded again");

    let refused = |w: &str| ctl(&cfg, w).unwrap_err();
    assert_eq!(refused("flood add 200 192.0.2.9"), "VNI 200 has no bridge domain (bridge domains: 100)");
    assert!(
        refused("flood add 100 2001:db8::9")
            .starts_with("flood VTEP 2001:db8::9 is not of the local-ip's address family")
    );
    assert_eq!(refused("flood add 100 192.0.2.2"), "VNI 100 already floods to 192.0.2.2");
    assert_eq!(refused("flood delete 100 192.0.2.9"), "VNI 100 does not flood to 192.0.2.9");
    assert!(refused("fdb add 100 02:00:00:00:00 host1").contains("is not a MAC address"));
    assert_eq!(
        refused("fdb add 100 02:00:00:00:00:01 nowhere"),
        "no port named `nowhere` (known ports: up, host0, host1)"
    );
    assert_eq!(refused("fdb delete 100 02:00:00:00:00:01"), "no static MAC 02:00:00:00:00:01 in VNI 100");
    assert!(refused("fdb flush").starts_with("usage: vtep fdb list"));
    assert!(ctl(&cfg, "fdb list").unwrap().text.starts_with("statics version 5:"), "refusals publish nothing");
}

#[test]
fn a_reload_changes_flood_lists_and_static_macs_and_refuses_the_rest_by_key() {
    let (cfg, mut s) = vtep("", false);
    let r = nfv_testkit::reloader(&cfg, nfv_vtep::register);
    let text = r.running().source.1.to_string();
    let file = std::env::temp_dir().join(format!("nfv-vtep-reload-{}.toml", std::process::id()));
    let one_remote = text.replace(
        "flood = [\"192.0.2.2\", \"192.0.2.3\"] }]",
        "flood = [\"192.0.2.3\"] }], static-macs = [{ vni = 100, mac = \"02:00:00:00:00:b2\", port = \"host1\" }]",
    );
    std::fs::write(&file, &one_remote).unwrap();
    let lines = r.reload(Some(&file)).unwrap();
    assert_eq!(lines[1], "stage `c/vtep`: statics version 1: 1 static MACs, flood VTEPs per domain [1]", "{lines:?}");
    assert_eq!(sent(s.as_mut(), &inner(HOST_B, HOST_A)), [(2, None)]);
    std::fs::write(
        &file,
        one_remote.replace("local-ip = \"192.0.2.1\"", "local-ip = \"192.0.2.1\", mtu = 1400, ttl = 9"),
    )
    .unwrap();
    let lines = r.reload(Some(&file)).unwrap_err();
    assert_eq!(lines[..2], ["stage `c/vtep`: mtu: (unset) -> 1400", "stage `c/vtep`: ttl: (unset) -> 9"]);
    let _ = std::fs::remove_file(&file);
}
