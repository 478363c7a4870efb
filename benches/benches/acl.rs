//! `acl` stage cost per packet: frames built from a ClassBench trace (the
//! headers ClassBench generated for the rule set), 64 per batch, through
//! the stage alone. Cases: `baseline` (the same loop without the stage),
//! 8 TOML rules, the acl1/ipc1 10k sets as a rules file, and reflect (a
//! `permit-reflect` rule whose flows are established, so every packet
//! passes by its flow-table entry). 1024 distinct frames rotate through
//! the batches, so lookups do not all hit the same cache lines.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use etherparse::PacketBuilder;
use nfv_acl::classbench::{generate_trace, parse_rules, parse_trace};
use nfv_acl::rule::Action;
use nfv_core::packet::VerdictKind;
use nfv_core::{BuildCtx, Stage, StageRegistry, config};
use nfv_testkit::Rounds;

const FRAMES: usize = 1024;

struct Case {
    stage: Box<dyn Stage>,
    rounds: Rounds,
}

fn data(name: &str) -> String {
    format!("{}/../../shared/data/classbench/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// A frame for each of the first [`FRAMES`] lines of `set`'s trace (for
/// acl1_10k, which has none, one generated from its rules: half inside a
/// rule, half random).
fn frames(set: &str) -> Vec<Vec<u8>> {
    let read = |name: &str| std::fs::read_to_string(data(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
    let lines = match std::fs::metadata(data(&format!("{set}_trace"))) {
        Ok(_) => parse_trace(&read(&format!("{set}_trace"))).unwrap(),
        Err(_) => generate_trace(&parse_rules(&read(set), Action::Deny).unwrap(), 7),
    };
    lines
        .iter()
        .cycle()
        .take(FRAMES)
        .map(|t| {
            let b = PacketBuilder::ethernet2([2, 0, 0, 0, 0, 9], [2, 0, 0, 0, 0, 1]).ipv4(
                t.src.to_be_bytes(),
                t.dst.to_be_bytes(),
                64,
            );
            let mut f = Vec::new();
            match t.proto {
                6 => b.tcp(t.sport, t.dport, 1, 1000).write(&mut f, &[0; 18]).unwrap(),
                17 => b.udp(t.sport, t.dport).write(&mut f, &[0; 18]).unwrap(),
                p => b.write(&mut f, etherparse::IpNumber(p), &[0; 26]).unwrap(),
            }
            f
        })
        .collect()
}

fn case(stage: &str, frames: &[Vec<u8>]) -> Case {
    let src = format!(
        "[[ports]]\nname = \"in\"\nkind = \"generator\"\n\n[[chains]]\nname = \"c\"\nstages = [{stage}]\n\n\
         [[workers]]\nrx = [\"in\"]\nchain = \"c\"\n"
    );
    let mut r = StageRegistry::new();
    nfv_acl::register(&mut r);
    let cfg = config::load("bench.toml", &src, &r).unwrap_or_else(|e| panic!("{e}"));
    let ctx = BuildCtx {
        worker: 0,
        port_macs: &[[2, 0, 0, 0, 0, 1]],
        headers_read_later: false,
        chain_rank: 0,
        chain_workers: 1,
    };
    let stage = cfg.chains[0].stages[0].builder.build(&ctx);
    Case { stage, rounds: Rounds::new(frames.to_vec(), 0, []) }
}

/// One batch of 64 through the stage (or not); returns the packets that
/// passed.
fn run(c: &mut Case, with_stage: bool) -> usize {
    let stage = with_stage.then_some(&mut *c.stage as &mut dyn Stage);
    c.rounds.round(stage, 64, |v| v == VerdictKind::Next)
}

fn acl(c: &mut Criterion) {
    let mut g = c.benchmark_group("acl");
    g.throughput(Throughput::Elements(64));
    g.warm_up_time(std::time::Duration::from_millis(500));
    g.measurement_time(std::time::Duration::from_secs(2));
    let ipc1 = frames("ipc1_10k");
    let mut base = case("{ kind = \"acl\", default = \"permit\" }", &ipc1);
    g.bench_function("baseline", |b| b.iter(|| run(&mut base, false)));
    let small = "{ kind = \"acl\", default = \"permit\", rules = [\
        { action = \"deny\", proto = \"tcp\", dst-port = 23 },\
        { action = \"deny\", src = \"10.0.0.0/8\" },\
        { action = \"permit\", src = \"192.0.2.0/24\", proto = \"udp\", dst-port = \"1024-65535\" },\
        { action = \"deny\", proto = \"tcp\", tcp-flags = [\"syn\", \"!ack\"], dst-port = \"0-1023\" },\
        { action = \"permit\", dst = \"198.51.100.0/24\" },\
        { action = \"deny\", proto = \"icmp\", src-port = 5 },\
        { action = \"deny\", proto = 47 },\
        { action = \"permit\", proto = \"udp\", src-port = 53 },\
    ] }";
    let mut c8 = case(small, &ipc1);
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
