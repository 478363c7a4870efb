//! Every target over what its fuzzing found (`fuzz/regressions/TARGET/`,
//! each file an input that once broke an invariant, kept after the fix)
//! and over a sample of its seeds: the invariants hold in every test run,
//! without the fuzzer.

use std::path::Path;

#[test]
fn every_finding_and_a_sample_of_the_seeds_keep_their_invariants() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("regressions");
    let mut findings = 0;
    for t in nfv_fuzz::TARGETS {
        if let Ok(entries) = std::fs::read_dir(dir.join(t.name)) {
            for e in entries.flatten() {
                let data = std::fs::read(e.path()).unwrap();
                eprintln!("{}: {}", t.name, e.path().display());
                (t.run)(&data);
                findings += 1;
            }
        }
        let seeds = nfv_fuzz::seeds::of(t.name);
        assert!(!seeds.is_empty(), "{}: no seeds (is ../shared/data there?)", t.name);
        // Spread over the corpus: its first and last seeds and every step.
        let step = (seeds.len() / 200).max(1);
        for s in seeds.iter().step_by(step) {
            (t.run)(s);
        }
    }
    eprintln!("{findings} findings replayed");
}
