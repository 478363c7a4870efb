//! The classifier against the ClassBench sets of `../shared/data/classbench`:
//! for every trace line, the first match equals a linear scan's, and equals
//! DPDK's `dpdk-test-acl` (rte_acl), an independent implementation. acl1_10k
//! has no trace: one is generated from its rules (a random header inside
//! each rule, and random headers).

use std::path::{Path, PathBuf};
use std::process::Command;

use nfv_acl::classbench::{TraceEntry, format_trace, generate_trace, parse_rules, parse_trace};
use nfv_acl::classify::NO_MATCH;
use nfv_acl::classify::linear::Linear;
use nfv_acl::classify::split::{SplitForest, SplitParams};
use nfv_acl::rule::{Action, Rule, partition_v4, v4_key};

fn data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/classbench")
}

const WITH_TRACE: [&str; 6] = ["acl1_1k", "fw1_1k", "ipc1_1k", "fw1_10k", "ipc1_10k", "acl2_10k"];

fn load(set: &str) -> (Vec<Rule>, Vec<TraceEntry>, PathBuf) {
    let rules_path = data().join(set);
    let rules = parse_rules(&std::fs::read_to_string(&rules_path).unwrap(), Action::Permit).unwrap();
    let trace_path = data().join(format!("{set}_trace"));
    let trace = if trace_path.exists() {
        parse_trace(&std::fs::read_to_string(&trace_path).unwrap()).unwrap()
    } else {
        generate_trace(&rules, 7)
    };
    (rules, trace, rules_path)
}

/// Our answer per trace line: the 0-based rule number, [`NO_MATCH`] for
/// none (as `dpdk-test-acl` prints them).
fn ours(rules: &[Rule], trace: &[TraceEntry]) -> Vec<u32> {
    let forest = SplitForest::build(rules.iter().map(|r| r.v4_box()).collect(), partition_v4, SplitParams::default());
    trace
        .iter()
        .map(|t| forest.classify(&v4_key(t.src, t.dst, t.sport, t.dport, t.proto, 0, 0)).unwrap_or(NO_MATCH))
        .collect()
}

#[test]
fn first_match_equals_the_linear_scan_on_every_set() {
    for set in WITH_TRACE.iter().chain(&["acl1_10k"]) {
        let (rules, trace, _) = load(set);
        let linear = Linear::new(rules.iter().map(|r| r.v4_box()).collect());
        let want: Vec<u32> = trace
            .iter()
            .map(|t| linear.classify(&v4_key(t.src, t.dst, t.sport, t.dport, t.proto, 0, 0)).unwrap_or(NO_MATCH))
            .collect();
        let got = ours(&rules, &trace);
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            assert_eq!(g, w, "{set}: trace line {}", i + 1);
        }
        let differ =
            trace.iter().zip(&want).filter(|(t, w)| t.generated_from != NO_MATCH && t.generated_from != **w).count();
        eprintln!(
            "{set}: {} lines equal; {differ} first matches are not the rule the line was generated from",
            got.len()
        );
    }
}

/// `dpdk-test-acl` or why not (then a skip, or a failure in CI).
fn dpdk_test_acl(test: &str) -> Option<&'static str> {
    const BIN: &str = "dpdk-test-acl";
    if Command::new(BIN).arg("--version").output().is_ok() {
        return Some(BIN);
    }
    if std::env::var("NFV_REQUIRE_PRIV").as_deref() == Ok("1") {
        panic!("{test}: dpdk-test-acl missing (Debian dpdk-dev): run cargo xtask setup");
    }
    eprintln!("SKIPPED {test}: dpdk-test-acl not installed (cargo xtask setup)");
    None
}

/// rte_acl's first match for every line: `--verbose=3` prints
/// `ipv4_5tuple: N, category: 0, result: RULE` per line, RULE 0-based,
/// 4294967295 for no match.
fn rte_acl(bin: &str, rules: &Path, trace: &Path, lines: usize) -> Vec<u32> {
    let out = Command::new(bin)
        .args(["--no-pci", "--no-huge", "-m", "256", "-l", "0", "--log-level=error", "--"])
        .arg(format!("--rulesf={}", rules.display()))
        .arg(format!("--tracef={}", trace.display()))
        .arg(format!("--tracenum={}", lines + 1))
        .args(["--iter=1", "--verbose=3"])
        .output()
        .expect("dpdk-test-acl");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "dpdk-test-acl failed: {text}{}", String::from_utf8_lossy(&out.stderr));
    text.lines()
        .filter(|l| l.starts_with("ipv4_5tuple:"))
        .map(|l| l.rsplit("result: ").next().unwrap().trim().parse().unwrap())
        .collect()
}

#[test]
fn first_match_equals_dpdk_rte_acl_on_every_set() {
    let Some(bin) = dpdk_test_acl("first_match_equals_dpdk_rte_acl_on_every_set") else { return };
    let dir = std::env::temp_dir().join(format!("nfv-acl-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for set in WITH_TRACE.iter().chain(&["acl1_10k"]) {
        let (rules, trace, rules_path) = load(set);
        let trace_path = dir.join(format!("{set}_trace"));
        std::fs::write(&trace_path, format_trace(&trace)).unwrap();
        let theirs = rte_acl(bin, &rules_path, &trace_path, trace.len());
        assert_eq!(theirs.len(), trace.len(), "{set}: rte_acl answered every line");
        let got = ours(&rules, &trace);
        for (i, (g, t)) in got.iter().zip(&theirs).enumerate() {
            assert_eq!(g, t, "{set}: trace line {} (ours vs rte_acl)", i + 1);
        }
        eprintln!("{set}: {} lines, rte_acl and ours agree", got.len());
    }
    let _ = std::fs::remove_dir_all(&dir);
}
