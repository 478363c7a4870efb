//! `nat44` cost per packet. Hit path: established UDP flows going out, at
//! 1k, 100k and 1M sessions in the table, the batch's 64 packets drawn at
//! random among all the sessions (so at 1M, lookups miss the caches as
//! they would in a real table). Setup: every packet a new flow (a new
//! mapping and session; with the table full, the oldest is evicted).
//! Each iteration first restores the 42 header bytes the NAT rewrote;
//! `baseline` is that restore alone, to subtract.

mod nat_case;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use nat_case::{FRAMES, case, filled, new_flows, run};

fn nat(c: &mut Criterion) {
    let mut g = c.benchmark_group("nat44");
    g.throughput(Throughput::Elements(64));
    g.warm_up_time(std::time::Duration::from_millis(500));
    g.measurement_time(std::time::Duration::from_secs(2));
    let mut base = case(1000, &(0..1000).collect::<Vec<_>>());
    g.bench_function("baseline", |b| b.iter(|| run(&mut base, false)));
    for sessions in [1_000usize, 100_000, 1_000_000] {
        let mut hit = filled(sessions);
        assert_eq!(run(&mut hit, true), 64, "established flows pass");
        g.bench_with_input(BenchmarkId::new("hit", sessions), &sessions, |b, _| b.iter(|| run(&mut hit, true)));
    }
    // New flows only, at a full 100k table: setup (and eviction).
    let mut fresh = case(100_000, &(0..FRAMES as u32).collect::<Vec<_>>());
    g.bench_function("new-session", |b| {
        b.iter(|| {
            new_flows(&mut fresh);
            run(&mut fresh, true)
        })
    });
    g.finish();
}

criterion_group!(benches, nat);
criterion_main!(benches);
