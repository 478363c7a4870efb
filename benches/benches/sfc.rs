//! The service function forwarder's cost per packet: NSH packets by
//! (SPI, SI) among 64 paths to a resolved next forwarder (TTL decremented,
//! outer Ethernet addresses written), 64 per batch; `baseline` is copying
//! the frames in alone. Target: under 10 ns/packet.

mod sff_case;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn sff(c: &mut Criterion) {
    let mut g = c.benchmark_group("sff");
    g.throughput(Throughput::Elements(64));
    g.warm_up_time(std::time::Duration::from_millis(500));
    g.measurement_time(std::time::Duration::from_secs(2));
    let mut base = sff_case::case();
    g.bench_function("baseline", |b| b.iter(|| sff_case::run(&mut base, false)));
    let mut fwd = sff_case::case();
    assert_eq!(sff_case::run(&mut fwd, true), 64, "every packet forwarded");
    g.bench_function("forward", |b| b.iter(|| sff_case::run(&mut fwd, true)));
    g.finish();
}

criterion_group!(benches, sff);
criterion_main!(benches);
