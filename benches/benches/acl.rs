//! `acl` stage cost per packet: frames built from a ClassBench trace (the
//! headers ClassBench generated for the rule set), 64 per batch, through
//! the stage alone. Cases: `baseline` (the same loop without the stage),
//! 8 TOML rules, the acl1/ipc1 10k sets as a rules file, and reflect (a
//! `permit-reflect` rule whose flows are established, so every packet
//! passes by its flow-table entry). 1024 distinct frames rotate through
//! the batches, so lookups do not all hit the same cache lines.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};

mod acl_case;
use acl_case::{FRAMES, SMALL, case, data, frames, run};

fn acl(c: &mut Criterion) {
    let mut g = c.benchmark_group("acl");
    g.throughput(Throughput::Elements(64));
    g.warm_up_time(std::time::Duration::from_millis(500));
    g.measurement_time(std::time::Duration::from_secs(2));
    let ipc1 = frames("ipc1_10k");
    let mut base = case("{ kind = \"acl\", default = \"permit\" }", &ipc1);
    g.bench_function("baseline", |b| b.iter(|| run(&mut base, false)));
    let mut c8 = case(SMALL, &ipc1);
    g.bench_function("8-rules", |b| b.iter(|| run(&mut c8, true)));
    for (set, trace) in [("acl1_10k", frames("acl1_10k")), ("ipc1_10k", ipc1.clone())] {
        let stage = format!(
            "{{ kind = \"acl\", default = \"permit\", rules-file = \"{}\", rules-file-action = \"deny\", \
             watch-rules-file = false }}",
            data(set)
        );
        let mut c = case(&stage, &trace);
        g.bench_function(format!("classbench/{set}"), |b| b.iter(|| run(&mut c, true)));
    }
    // Reflect: the first pass opens a flow per frame; then every packet
    // passes by its flow (the classifier is not consulted).
    let mut r = case("{ kind = \"acl\", default = \"deny\", rules = [{ action = \"permit-reflect\" }] }", &ipc1);
    for _ in 0..FRAMES / 64 {
        run(&mut r, true);
    }
    assert_eq!(run(&mut r, true), 64, "established flows pass");
    g.bench_function("reflect-established", |b| b.iter(|| run(&mut r, true)));
    g.finish();
}

criterion_group!(benches, acl);
criterion_main!(benches);
