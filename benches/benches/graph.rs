//! The chain graph's cost per packet: a classifier splitting each batch
//! of 64 three ways into chains of their own (the packets moved as
//! descriptors to each chain, the chains run in turn), against
//! `baseline`, the same rounds into an empty entry chain: `split-3` by
//! protocol and destination port (a header read per packet),
//! `split-3-proto` by the protocol the descriptor holds (the split
//! itself). Target: under 3 ns/packet. And the single-box
//! graph (configs/sfc/single-box.toml) fed G-PDUs, VXLAN and plain TCP
//! against its chains alone, each fed its own.

mod graph_case;
mod single_box_case;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn graph(c: &mut Criterion) {
    let mut g = c.benchmark_group("graph");
    g.throughput(Throughput::Elements(64));
    g.warm_up_time(std::time::Duration::from_millis(500));
    g.measurement_time(std::time::Duration::from_secs(2));
    use graph_case::Split;
    let mut base = graph_case::case(Split::Baseline);
    assert_eq!(graph_case::run(&mut base), 64);
    g.bench_function("baseline", |b| b.iter(|| graph_case::run(&mut base)));
    for (name, by) in [("split-3", Split::Ports), ("split-3-proto", Split::Proto)] {
        let mut split = graph_case::case(by);
        assert_eq!(graph_case::run(&mut split), 64, "every packet reaches a branch's end");
        g.bench_function(name, |b| b.iter(|| graph_case::run(&mut split)));
    }
    g.finish();
    // The single-box graph fed a third of each kind, against each chain
    // alone fed its own: compare graph-mix with the mean of the three.
    use single_box_case::{Kind, case, run};
    let mut g = c.benchmark_group("single-box");
    g.throughput(Throughput::Elements(64));
    g.warm_up_time(std::time::Duration::from_millis(500));
    g.measurement_time(std::time::Duration::from_secs(2));
    let mut mix = case(None, &[Kind::Gtpu, Kind::Vxlan, Kind::Plain]);
    run(&mut mix);
    g.bench_function("graph-mix", |b| b.iter(|| run(&mut mix)));
    for (name, chain, kind) in [
        ("linear-upf", "mobile", Kind::Gtpu),
        ("linear-vtep", "overlay", Kind::Vxlan),
        ("linear-edge", "edge", Kind::Plain),
    ] {
        let mut c = case(Some(chain), &[kind]);
        run(&mut c);
        g.bench_function(name, |b| b.iter(|| run(&mut c)));
    }
    g.finish();
}

criterion_group!(benches, graph);
criterion_main!(benches);
