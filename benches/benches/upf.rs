//! `upf` cost per packet, with 1k and 100k static sessions: uplink (a
//! G-PDU with a PDU Session Container: GTP-U read, session by TEID, PDR
//! by precedence, outer headers removed) and downlink (session by UE
//! address, PDR, GTP-U/UDP/IPv4 and a PDU Session Container put on), 64
//! packets per batch from sessions drawn at random; `+urr`: each session
//! counted by a URR (usage counters per packet). Each iteration copies its
//! frames in; `baseline` is that alone.

mod upf_case;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use upf_case::{downlink, drawn, run};

fn upf(c: &mut Criterion) {
    let mut g = c.benchmark_group("upf");
    g.throughput(Throughput::Elements(64));
    g.warm_up_time(std::time::Duration::from_millis(500));
    g.measurement_time(std::time::Duration::from_secs(2));
    let mut base = downlink(1, &[0; 64], false);
    g.bench_function("baseline", |b| b.iter(|| run(&mut base, false)));
    for n in [1_000u32, 100_000] {
        for (urr, suffix) in [(false, ""), (true, "+urr")] {
            let mut up = drawn(n, true, urr);
            assert_eq!(run(&mut up, true), 64, "uplink packets pass");
            let id = BenchmarkId::new(format!("uplink{suffix}"), n);
            g.bench_with_input(id, &n, |b, _| b.iter(|| run(&mut up, true)));
            let mut down = drawn(n, false, urr);
            assert_eq!(run(&mut down, true), 64, "downlink packets pass");
            let id = BenchmarkId::new(format!("downlink{suffix}"), n);
            g.bench_with_input(id, &n, |b, _| b.iter(|| run(&mut down, true)));
        }
    }
    g.finish();
}

criterion_group!(benches, upf);
criterion_main!(benches);
