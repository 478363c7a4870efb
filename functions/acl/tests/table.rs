//! `nfv ctl acl`: the running rules listed with the hits every worker
//! counted, rules added and deleted under a running stage (taken at its
//! next batch, counters following the rules kept), bad commands refused
//! with what to write, and a reload putting back what the configuration
//! says.

mod common;

use common::{acl, reloader, run, tcp, udp4};
use nfv_core::live::Answer;

const STAGE: &str = "stages = [{ kind = \"acl\", default = \"permit\", rules = [\n  \
                     { action = \"deny\", proto = \"udp\", dst-port = \"1000-1999\" },\n] }]\n";

fn ctl(cfg: &nfv_core::config::Config, words: &str) -> Result<Answer, String> {
    let live = cfg.chains[0].stages[0].builder.live().expect("acl changes live");
    live.command(&words.split_whitespace().collect::<Vec<_>>())
}

/// What the worker publishes every 100 ms, now.
fn sampled(stage: &dyn nfv_core::Stage) {
    stage.sample(&mut [nfv_core::Occupancy::default()]);
}

fn rows(a: &Answer) -> Vec<String> {
    a.table.as_ref().expect("a listing").1.iter().map(|r| r.join(" ")).collect()
}

#[test]
fn rules_are_listed_with_hits_added_and_deleted_under_a_running_stage() {
    let (cfg, mut stage) = acl(STAGE);
    let (a, b) = (udp4([10, 0, 0, 1], [10, 0, 0, 2], 1500), udp4([10, 0, 0, 1], [10, 0, 0, 2], 2500));
    assert_eq!(
        run(&cfg, stage.as_mut(), 0, &[a.clone(), a.clone(), b.clone()]),
        ["denied-by-rule", "denied-by-rule", "pass"]
    );
    sampled(stage.as_ref());
    let listed = ctl(&cfg, "list").unwrap();
    assert_eq!(listed.text, "rules version 0: 1 rules\n");
    let len = |f: &Vec<u8>| f.len() as u64;
    assert_eq!(
        rows(&listed),
        [
            format!("1 deny proto=udp dst-port=1000-1999 rules[0] 2 {}", 2 * len(&a)),
            format!("- permit default - 1 {}", len(&b)),
        ]
    );

    // Before rule 1: UDP 1500 from 10/8 now passes; at the end: SYN
    // without ACK to port 22 is denied.
    let added = ctl(&cfg, "add --at 1 action=permit src=10.0.0.0/8 proto=udp dst-port=1500").unwrap();
    assert!(
        added.text.starts_with(
            "rule 1 added: src=10.0.0.0/8 proto=udp dst-port=1500\nrules version 1: 2 rules (1 kept, 1 new, 0 removed)"
        ),
        "{}",
        added.text
    );
    ctl(&cfg, "add action=deny proto=tcp dst-port=22 tcp-flags=syn,!ack").unwrap();
    let syn = tcp([10, 0, 0, 1], [10, 0, 0, 2], 22, true, false);
    let synack = tcp([10, 0, 0, 1], [10, 0, 0, 2], 22, true, true);
    let got = run(&cfg, stage.as_mut(), 0, &[a.clone(), udp4([10, 0, 0, 1], [10, 0, 0, 2], 1501), syn.clone(), synack]);
    assert_eq!(got, ["pass", "denied-by-rule", "denied-by-rule", "pass"], "taken at the next batch");
    sampled(stage.as_ref());
    let listed = rows(&ctl(&cfg, "list").unwrap());
    assert_eq!(listed[0], format!("1 permit src=10.0.0.0/8 proto=udp dst-port=1500 nfv ctl 1 {}", len(&a)));
    assert!(
        listed[1].starts_with("2 deny proto=udp dst-port=1000-1999 rules[0] 3 "),
        "the kept rule keeps its hits: {listed:?}"
    );
    assert_eq!(listed[2], format!("3 deny proto=tcp dst-port=22 tcp-flags=syn,!ack nfv ctl 1 {}", syn.len()));

    let deleted = ctl(&cfg, "delete 2").unwrap();
    assert!(
        deleted.text.starts_with(
            "rule 2 deleted: proto=udp dst-port=1000-1999\nrules version 3: 2 rules (2 kept, 0 new, 1 removed)"
        ),
        "{}",
        deleted.text
    );
    assert_eq!(run(&cfg, stage.as_mut(), 0, &[udp4([10, 0, 0, 1], [10, 0, 0, 2], 1501)]), ["pass"]);
    // Versions 1 and 2 came between two batches: taken as one update.
    let report = stage.report().unwrap();
    assert!(report.contains("2 rule updates taken; rules since removed: 3 packets"), "{report}");
}

#[test]
fn bad_commands_are_refused_with_what_to_write_and_change_nothing() {
    let (cfg, _stage) = acl(STAGE);
    let refused = |w: &str| ctl(&cfg, w).unwrap_err();
    assert!(
        refused("add action=deny prot=udp").starts_with("unknown field `prot`, expected one of"),
        "{}",
        refused("add action=deny prot=udp")
    );
    assert!(refused("add action=deny src=10.0.0.0/33").contains("prefix length 33 is past 32"));
    assert!(refused("add action=deny tcp-flags=syn").contains("`tcp-flags` without `proto = \"tcp\"`"));
    assert!(
        refused("add action=deny ingress=nowhere").ends_with("no port named `nowhere` (known ports: in0, in1, out)")
    );
    assert!(refused("add deny").starts_with("`deny` is not key=value; usage: acl add"));
    assert_eq!(refused("add --at 3 action=deny"), "--at 3: there are 1 rules");
    assert_eq!(refused("delete 2"), "no rule 2: there are 1 rules");
    assert_eq!(refused("delete x"), "`x` is not a rule number (1, 2, ...)");
    assert!(refused("flush").starts_with("usage: acl list | acl add"));
    assert_eq!(ctl(&cfg, "list").unwrap().text, "rules version 0: 1 rules\n", "nothing changed");
}

#[test]
fn a_reload_puts_back_the_rules_the_configuration_says() {
    let (cfg, mut stage) = acl(STAGE);
    let r = reloader(&cfg);
    ctl(&cfg, "delete 1").unwrap();
    let a = udp4([10, 0, 0, 1], [10, 0, 0, 2], 1500);
    assert_eq!(run(&cfg, stage.as_mut(), 0, std::slice::from_ref(&a)), ["pass"]);
    let lines = r.reload(None).unwrap_err();
    assert!(lines[0].contains("cannot read `acl.toml`"), "the test's configuration has no file: {lines:?}");
    let file = std::env::temp_dir().join(format!("nfv-acl-table-{}.toml", std::process::id()));
    std::fs::write(&file, r.running().source.1.as_bytes()).unwrap();
    let lines = r.reload(Some(&file)).unwrap();
    assert!(lines[1].contains("rules version 2: 1 rules (0 kept, 1 new, 0 removed)"), "{lines:?}");
    assert_eq!(run(&cfg, stage.as_mut(), 0, &[a]), ["denied-by-rule"]);
    let _ = std::fs::remove_file(&file);
}
