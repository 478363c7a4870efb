//! Our ACL classifier on a ClassBench rule set and trace: build time,
//! memory, lookups per second on one core (the trace classified in batches
//! of 64, repeated until `--seconds` pass), and a checksum of the results
//! so two runs can be compared. `benches/acl-vs-rte-acl.sh` runs it beside
//! `dpdk-test-acl` on the same files.
//!
//! usage: acl_classbench RULES TRACE [SECONDS] [--verify] [--profile]
//! (a TRACE that does not exist is generated from the rules and written)
//! (`--verify`: check every trace line against the linear scan first)
//! (`--profile`: per tree, how many keys walk it, steps and chunks)
//! (tuning: ACL_LEAF, ACL_COPIES, ACL_CUT override `SplitParams`)

use std::time::Instant;

use nfv_acl::classbench::{format_trace, generate_trace, parse_rules, parse_trace};
use nfv_acl::classify::linear::Linear;
use nfv_acl::classify::split::{SplitForest, SplitParams};
use nfv_acl::classify::{Key, NO_MATCH};
use nfv_acl::rule::{Action, V4_DIMS, v4_key};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 3 {
        eprintln!("usage: acl_classbench RULES TRACE [SECONDS] [--verify]");
        std::process::exit(2);
    }
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{p}: {e}"));
    let rules = parse_rules(&read(&args[1]), Action::Permit).unwrap_or_else(|e| panic!("{}:{}", args[1], e[0]));
    let trace = if std::path::Path::new(&args[2]).exists() {
        parse_trace(&read(&args[2])).unwrap_or_else(|e| panic!("{}:{e}", args[2]))
    } else {
        // A set without a trace (acl1_10k): generate one, and write it for
        // dpdk-test-acl to read the same headers.
        let t = generate_trace(&rules, 7);
        std::fs::write(&args[2], format_trace(&t)).unwrap_or_else(|e| panic!("{}: {e}", args[2]));
        println!("generated {} trace lines into {}", t.len(), args[2]);
        t
    };
    let seconds: f64 = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(2.0);
    let boxes: Vec<_> = rules.iter().map(|r| r.v4_box()).collect();
    let keys: Vec<Key<V4_DIMS>> = trace.iter().map(|t| v4_key(t.src, t.dst, t.sport, t.dport, t.proto, 0, 0)).collect();
    let env = |k: &str, d: usize| std::env::var(k).ok().and_then(|v| v.parse().ok()).unwrap_or(d);
    let dp = SplitParams::default();
    let params = SplitParams {
        leaf_size: env("ACL_LEAF", dp.leaf_size),
        copies_per_rule: env("ACL_COPIES", dp.copies_per_rule),
        cut_bits: env("ACL_CUT", dp.cut_bits as usize) as u32,
        max_depth: dp.max_depth,
    };
    let forest = SplitForest::build(boxes.clone(), nfv_acl::rule::partition_v4, params);
    let s = forest.stats();
    if args.iter().any(|a| a == "--verify") {
        let linear = Linear::new(boxes);
        for (i, k) in keys.iter().enumerate() {
            assert_eq!(forest.classify(k), linear.classify(k), "trace line {}", i + 1);
        }
        println!("verified: {} trace lines equal the linear scan", keys.len());
    }
    if args.iter().any(|a| a == "--profile") {
        for line in forest.profile(&keys) {
            println!("{line}");
        }
    }
    let mut out = vec![NO_MATCH; keys.len()];
    let (rate, best_pass) = measure(&keys, &mut out, seconds, |k, o| forest.classify_batch(k, o));
    // The same without SIMD whatever the CPU: what the AVX2 path adds.
    let mut check = vec![NO_MATCH; keys.len()];
    let (portable, _) = measure(&keys, &mut check, seconds / 2.0, |k, o| forest.classify_batch_portable(k, o));
    assert_eq!(out, check, "the portable path must find the same rules");
    let sum: u64 = out.iter().map(|&r| if r == NO_MATCH { 0 } else { r as u64 + 1 }).sum();
    println!(
        "ours: {:.0} lookups/s (best pass {:.0}; portable {:.0}), build {:.1} ms, memory {:.2} MiB ({} rules, {} trees, {} nodes, {} leaf entries = {:.1}x, depth {}), result sum {sum}",
        rate,
        best_pass,
        portable,
        s.build_time.as_secs_f64() * 1e3,
        s.bytes as f64 / (1 << 20) as f64,
        s.rules,
        s.trees,
        s.nodes,
        s.leaf_entries,
        s.leaf_entries as f64 / s.rules as f64,
        s.depth
    );
}

/// Classifies the whole trace in batches of 64 again and again for
/// `seconds`: (mean lookups/s, the fastest pass's lookups/s). The fastest
/// pass is the figure least disturbed by neighbours on a shared machine
/// (for comparing our own changes); the mean is what is set beside
/// rte_acl's own mean.
fn measure(
    keys: &[Key<V4_DIMS>],
    out: &mut [u32],
    seconds: f64,
    classify: impl Fn(&[Key<V4_DIMS>], &mut [u32]),
) -> (f64, f64) {
    let start = Instant::now();
    let (mut lookups, mut best_pass) = (0u64, f64::MAX);
    while lookups == 0 || start.elapsed().as_secs_f64() < seconds {
        let pass = Instant::now();
        for (k, o) in keys.chunks(64).zip(out.chunks_mut(64)) {
            classify(std::hint::black_box(k), o);
        }
        best_pass = best_pass.min(pass.elapsed().as_secs_f64());
        lookups += keys.len() as u64;
    }
    (lookups as f64 / start.elapsed().as_secs_f64(), keys.len() as f64 / best_pass)
}
