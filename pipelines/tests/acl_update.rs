//! A rules file replaced while `nfv` runs (in-memory generator, acl,
//! sink): the runtime's stage-task thread notices the change, the new rules
//! are taken by the worker mid-run, and every generated packet is still
//! accounted for (sent, or dropped under a named reason).

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use nfv_core::config;

#[test]
fn a_rules_file_replaced_mid_run_is_taken_without_losing_a_packet() {
    let dir = std::env::temp_dir().join(format!("nfv-acl-live-update-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let rules = dir.join("fw.toml");
    // RFC 4814 destination ports are spread over 1024-65535: each set
    // denies about half of them.
    std::fs::write(&rules, "rules = [{ action = \"deny\", proto = \"udp\", dst-port = \"1024-32767\" }]\n").unwrap();
    let src = format!(
        r#"
[[ports]]
name = "gen"
kind = "generator"
flows = 4096

[[ports]]
name = "sink"
kind = "sink"

[[chains]]
name = "fw"
stages = [{{ kind = "acl", default = "permit", rules-file = "{}" }}]
then = "sink"

[[workers]]
rx = ["gen"]
chain = "fw"
"#,
        rules.display()
    );
    let cfg = config::load("fw.toml", &src, &nfv_pipelines::registry()).unwrap();
    let replacer = {
        let (dir, rules) = (dir.clone(), rules.clone());
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(1200));
            let tmp = dir.join("fw.toml.new");
            std::fs::write(&tmp, "rules = [{ action = \"deny\", proto = \"udp\", dst-port = \"32768-65535\" }]\n")
                .unwrap();
            std::fs::rename(&tmp, &rules).unwrap();
        })
    };
    let r = nfv_pipelines::run(&cfg, Arc::new(AtomicBool::new(false)), Some(Some(Duration::from_millis(3500))), false)
        .unwrap();
    replacer.join().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let report = r.stage_reports.join("\n");
    assert!(report.contains("version 1;") && report.contains("1 rule updates taken"), "{report}");
    let removed: u64 = report
        .split("rules since removed: ")
        .nth(1)
        .and_then(|t| t.split(' ').next()?.parse().ok())
        .unwrap_or_else(|| panic!("{report}"));
    assert!(removed > 0, "the first rules denied packets before the update: {report}");
    assert!(report.contains(&format!("rule {}:1 Deny: ", rules.display())), "the new rule denied some: {report}");
    let (rx, tx) = (r.telemetry.total_rx(), r.telemetry.total_tx());
    let stages = r.telemetry.stage_summary();
    let dropped: u64 = stages.iter().map(|s| s.dropped()).sum();
    let ports = r.telemetry.port_summary();
    let port_drops: u64 = ports.iter().flat_map(|p| p.drops.iter().map(|(_, n)| *n)).sum();
    assert!(rx > 10_000, "{rx}");
    assert_eq!(rx, tx + dropped + port_drops, "every packet accounted: {stages:#?}");
}
