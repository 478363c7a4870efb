//! Rule updates while traffic flows: a rules file (TOML) rewritten under
//! a running stage is rebuilt off the hot path and taken between batches;
//! every batch is decided wholly by one rule set and no packet is lost;
//! a bad file is refused with file:line:column and the running rules
//! stay; counters follow the rules an update keeps.

mod common;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use common::{acl, load, reloader, run, udp4};

/// A rules file in its own directory, replaced atomically (written next to
/// it, then renamed over it) as Kubernetes does with a ConfigMap.
struct RulesFile {
    dir: PathBuf,
    path: PathBuf,
}

impl RulesFile {
    fn new(name: &str, text: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("nfv-acl-update-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = Self { path: dir.join("rules.toml"), dir };
        f.replace(text);
        f
    }

    fn replace(&self, text: &str) {
        let tmp = self.dir.join(".rules.toml.new");
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, &self.path).unwrap();
    }

    fn stage(&self) -> String {
        format!("stages = [{{ kind = \"acl\", default = \"permit\", rules-file = \"{}\" }}]\n", self.path.display())
    }
}

impl Drop for RulesFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Set A denies UDP 1000-1999, set B denies UDP 2000-2999.
const A: &str = "rules = [{ action = \"deny\", proto = \"udp\", dst-port = \"1000-1999\" }]\n";
const B: &str = "rules = [\n  { action = \"deny\", proto = \"udp\", dst-port = \"2000-2999\" },\n]\n";

/// The lines of `poll` saying a rule set was published.
fn versions(lines: Vec<String>) -> Vec<String> {
    lines.into_iter().filter(|l| l.contains("rules version")).collect()
}

#[test]
fn rules_swap_between_batches_under_traffic_and_no_packet_is_lost() {
    let file = RulesFile::new("swap", A);
    let (cfg, mut stage) = acl(&file.stage());
    let watch = reloader(&cfg);
    let cfg = Arc::new(cfg);
    let stop = Arc::new(AtomicBool::new(false));
    // A worker: batches of 32, ports 1500 and 2500 alternating.
    let worker = {
        let (cfg, stop) = (cfg.clone(), stop.clone());
        std::thread::spawn(move || {
            let frames: Vec<Vec<u8>> =
                (0..32).map(|i| udp4([10, 0, 0, 1], [10, 0, 0, 2], if i % 2 == 0 { 1500 } else { 2500 })).collect();
            let under_a: Vec<&str> = (0..32).map(|i| if i % 2 == 0 { "denied-by-rule" } else { "pass" }).collect();
            let under_b: Vec<&str> = (0..32).map(|i| if i % 2 == 0 { "pass" } else { "denied-by-rule" }).collect();
            let (mut a, mut b) = (0u64, 0u64);
            while !stop.load(Ordering::Relaxed) {
                let got = run(&cfg, stage.as_mut(), 0, &frames);
                assert_eq!(got.len(), 32, "every packet has a verdict");
                if got == under_a {
                    a += 1;
                } else if got == under_b {
                    b += 1;
                } else {
                    panic!("a batch decided by no single rule set: {got:?}");
                }
            }
            (a, b, stage.report().unwrap())
        })
    };
    let mut lines = Vec::new();
    for i in 0..20 {
        std::thread::sleep(std::time::Duration::from_millis(5));
        file.replace(if i % 2 == 0 { B } else { A });
        lines.extend(versions(watch.poll()));
    }
    std::thread::sleep(std::time::Duration::from_millis(5));
    stop.store(true, Ordering::Relaxed);
    let (a, b, report) = worker.join().unwrap();
    assert_eq!(lines.len(), 20, "one update per change: {lines:#?}");
    assert!(lines[19].contains("rules version 20: 1 rules"), "{lines:#?}");
    assert!(a > 0 && b > 0, "batches under A {a}, under B {b}");
    assert!(report.contains("version 20") && report.contains("rule updates taken"), "{report}");
    assert!(watch.poll().is_empty(), "no change, no update");
}

#[test]
fn a_bad_update_is_refused_with_its_place_and_the_running_rules_stay() {
    let file = RulesFile::new("bad", A);
    let (cfg, mut stage) = acl(&file.stage());
    let watch = reloader(&cfg);
    file.replace(
        "rules = [\n  { action = \"deny\", proto = \"udp\" },\n  { action = \"deny\", tcp-flags = [\"sin\"] },\n  \
         { action = \"deny\", prot = \"udp\" },\n  { action = \"dney\" },\n]\n",
    );
    let lines = watch.poll().join("\n");
    let path = file.path.display().to_string();
    // Every bad rule, each at its place.
    assert!(lines.contains(&format!("{path}:3:3: unknown TCP flag `sin`")), "{lines}");
    assert!(lines.contains(&format!("{path}:4:22: unknown field `prot`")), "{lines}");
    assert!(lines.contains(&format!("{path}:5:14: unknown variant `dney`")), "{lines}");
    assert!(lines.ends_with("reload refused: nothing changed, the running configuration stays"), "{lines}");
    file.replace("rules = [ { action = \"deny\", proto = \"udp\" ");
    let lines = watch.poll().join("\n");
    assert!(lines.contains(&format!("{path}:1:")), "TOML syntax located: {lines}");
    let frames = [udp4([10, 0, 0, 1], [10, 0, 0, 2], 1500), udp4([10, 0, 0, 1], [10, 0, 0, 2], 2500)];
    assert_eq!(run(&cfg, stage.as_mut(), 0, &frames), ["denied-by-rule", "pass"], "still set A");
    file.replace(B);
    assert!(versions(watch.poll())[0].contains("rules version 1"));
    assert_eq!(run(&cfg, stage.as_mut(), 0, &frames), ["pass", "denied-by-rule"], "now set B");
}

#[test]
fn counters_follow_the_rules_an_update_keeps() {
    let deny_1500 = "{ action = \"deny\", proto = \"udp\", dst-port = 1500 }";
    let deny_53 = "{ action = \"deny\", proto = \"udp\", dst-port = 53 }";
    let file = RulesFile::new("carry", &format!("rules = [\n  {deny_53},\n  {deny_1500},\n]\n"));
    let (cfg, mut stage) = acl(&file.stage());
    let watch = reloader(&cfg);
    let to = |port| udp4([10, 0, 0, 1], [10, 0, 0, 2], port);
    run(&cfg, stage.as_mut(), 0, &[to(1500), to(1500), to(1500), to(53)]);
    // The kept rule moves to line 3; port 53's rule goes.
    let permit_9 = "{ action = \"permit\", proto = \"udp\", dst-port = 9 }";
    file.replace(&format!("rules = [\n  {permit_9},\n  {deny_1500},\n]\n"));
    assert!(versions(watch.poll())[0].contains("(1 kept, 1 new, 1 removed)"));
    run(&cfg, stage.as_mut(), 0, &[to(1500), to(9)]);
    let report = stage.report().unwrap();
    let path = file.path.display().to_string();
    assert!(report.contains(&format!("rule {path}:3 Deny: 4 packets")), "{report}");
    assert!(report.contains(&format!("rule {path}:2 Permit: 1 packets")), "{report}");
    assert!(report.contains("1 rule updates taken; rules since removed: 1 packets"), "{report}");
}

#[test]
fn a_toml_rules_file_with_errors_stops_the_start_at_its_line_and_column() {
    let file = RulesFile::new("start", "rules = [\n  { action = \"deny\", src = \"10.0.0.0/33\" },\n]\n");
    let e = load(&file.stage()).unwrap_err();
    let path = file.path.display().to_string();
    assert!(e.contains(&format!("{path}:2:3: prefix length 33 is past 32")), "{e}");
    assert!(e.contains("use 0-32") && e.contains("acl.toml:16:"), "help and the config's own place: {e}");
}
