//! Chain overhead, measured on the whole in-memory loop a worker runs:
//! generator rx -> input stage -> chain -> dispatch -> sink tx, one batch
//! of 64 per iteration, reported per packet.
//!
//! Cases: an empty chain (only the always-present input stage), 1 and 5
//! no-op stages (`counter`: a loop over the batch that touches each
//! descriptor, the least any real stage does), and `macswap` (touches
//! each frame). The per-stage cost is the slope between 1 and 5 no-ops.
//!
//! `handoff`: the cost of handing 64-byte packets to another worker
//! (nfv-core's handoff inboxes: copy in, queue, dequeue, buffer back), on
//! one core, so without the cross-core cache transfer a real handoff adds.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use nfv_core::worker::Worker;

mod loop_case;

fn worker(stages: &str) -> Worker {
    loop_case::runtime(&loop_case::config(stages)).into_workers().remove(0)
}

fn chain_overhead(c: &mut Criterion) {
    let noop = r#"{ kind = "counter" }"#;
    let cases = [
        ("empty-chain", String::new()),
        ("1-noop", noop.to_string()),
        ("5-noop", [noop; 5].join(", ")),
        ("macswap", r#"{ kind = "macswap" }"#.to_string()),
        ("ttl+macswap", r#"{ kind = "ttl-decrement" }, { kind = "macswap" }"#.to_string()),
    ];
    let mut g = c.benchmark_group("chain");
    g.throughput(Throughput::Elements(64));
    for (name, stages) in cases {
        let mut w = worker(&stages);
        g.bench_function(name, |b| b.iter(|| assert_eq!(w.poll_once(), 64)));
    }
    let ring = nfv_core::handoff::Handoff::new(2, nfv_core::handoff::INBOX_DEPTH, 64);
    let frame = [0x5au8; 64];
    let meta = nfv_core::Meta::default();
    g.bench_function("handoff", |b| {
        b.iter(|| {
            let mut out = ring.batch().unwrap();
            for _ in 0..64 {
                out.push(meta, nfv_core::Egress::NONE, (0, 2), &frame);
            }
            assert!(ring.send(1, out).is_ok());
            let incoming = ring.receive(1).unwrap();
            let bytes: usize = incoming.iter().map(|(_, _, _, d)| d.len()).sum();
            ring.recycle(incoming);
            bytes
        })
    });
    g.finish();
}

criterion_group!(benches, chain_overhead);
criterion_main!(benches);
