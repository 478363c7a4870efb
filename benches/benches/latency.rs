//! What latency recording costs a worker: one `hdrhistogram` record per
//! batch (a batch's receive-to-transmit time) and one per stage call,
//! with tick values spread like a busy worker's (a few hundred to tens of
//! thousands of ticks); and the worker's side of the hand-over every
//! 100 ms (two queue operations and a swap).

use criterion::{Criterion, criterion_group, criterion_main};
use nfv_core::latency::{Exchange, LatencySet, hist};

fn latency(c: &mut Criterion) {
    let mut g = c.benchmark_group("latency");
    g.warm_up_time(std::time::Duration::from_millis(500));
    g.measurement_time(std::time::Duration::from_secs(2));
    let values: Vec<u64> = (0..1024u64).map(|i| 300 + (i * 7919) % 40_000).collect();
    let mut h = hist();
    let mut i = 0;
    g.bench_function("record-per-batch", |b| {
        b.iter(|| {
            i = (i + 1) & 1023;
            h.saturating_record(std::hint::black_box(values[i]));
        })
    });
    let x = Exchange::new(0, (0..5).map(|s| format!("s{s}")).collect());
    let mut mine = Box::new(LatencySet::new(5));
    let mut total = LatencySet::new(5);
    // The worker's side only; the reader's merge (untimed) brings a
    // spare back before each.
    g.bench_function("hand-over", |b| {
        b.iter_batched(|| x.collect(&mut total), |()| x.hand_over(&mut mine), criterion::BatchSize::SmallInput)
    });
    g.finish();
}

criterion_group!(benches, latency);
criterion_main!(benches);
