//! `lb` cost per packet. Hit path: established TCP flows to a DSR VIP over
//! 16 backends, at 1k and 1M tracked connections, the batch's 64 packets
//! drawn at random among all the connections (at 1M, lookups miss the
//! caches as in a real table); the same at 1k in IP-in-IP and NAT mode. New
//! connection: every packet a new flow (a Maglev table lookup and an
//! insertion; the table full, the least recent connection is evicted).
//! Each iteration first restores the 42 header bytes; `baseline` is that
//! restore alone, to subtract.

mod lb_case;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use lb_case::{case, filled, new_flows, run};

fn lb(c: &mut Criterion) {
    let mut g = c.benchmark_group("lb");
    g.throughput(Throughput::Elements(64));
    g.warm_up_time(std::time::Duration::from_millis(500));
    g.measurement_time(std::time::Duration::from_secs(2));
    let mut base = case(1000, &(0..1000).collect::<Vec<_>>(), "dsr");
    g.bench_function("baseline", |b| b.iter(|| run(&mut base, false)));
    for conns in [1_000usize, 1_000_000] {
        let mut hit = filled(conns, "dsr");
        assert_eq!(run(&mut hit, true), 64, "established flows pass");
        g.bench_with_input(BenchmarkId::new("hit", conns), &conns, |b, _| b.iter(|| run(&mut hit, true)));
    }
    for mode in ["ipip", "nat"] {
        let mut hit = filled(1000, mode);
        assert_eq!(run(&mut hit, true), 64);
        g.bench_function(format!("hit-{mode}/1000"), |b| b.iter(|| run(&mut hit, true)));
    }
    // New flows only, at a full 1M table: lookup, insertion, eviction.
    let mut fresh = filled(1_000_000, "dsr");
    g.bench_function("new-connection", |b| {
        b.iter(|| {
            new_flows(&mut fresh);
            run(&mut fresh, true)
        })
    });
    g.finish();
}

criterion_group!(benches, lb);
criterion_main!(benches);
