//! The ACL benchmark cases, shared by the criterion bench and the
//! callgrind example: an `acl` stage and frames from a ClassBench trace
//! (the headers ClassBench generated for the rule set), 64 per batch.
#![allow(dead_code)]

use etherparse::PacketBuilder;
use nfv_acl::classbench::{generate_trace, parse_rules, parse_trace};
use nfv_acl::rule::Action;
use nfv_core::packet::VerdictKind;
use nfv_core::{BuildCtx, Stage, StageRegistry, config};
use nfv_testkit::Rounds;

pub const FRAMES: usize = 1024;

pub struct Case {
    stage: Box<dyn Stage>,
    rounds: Rounds,
}

pub fn data(name: &str) -> String {
    format!("{}/../../shared/data/classbench/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// A frame for each of the first [`FRAMES`] lines of `set`'s trace (for
/// acl1_10k, which has none, one generated from its rules: half inside a
/// rule, half random).
pub fn frames(set: &str) -> Vec<Vec<u8>> {
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

pub fn case(stage: &str, frames: &[Vec<u8>]) -> Case {
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
pub fn run(c: &mut Case, with_stage: bool) -> usize {
    let stage = with_stage.then_some(&mut *c.stage as &mut dyn Stage);
    c.rounds.round(stage, 64, |v| v == VerdictKind::Next)
}

/// Eight TOML rules of each kind of field.
pub const SMALL: &str = "{ kind = \"acl\", default = \"permit\", rules = [\
    { action = \"deny\", proto = \"tcp\", dst-port = 23 },\
    { action = \"deny\", src = \"10.0.0.0/8\" },\
    { action = \"permit\", src = \"192.0.2.0/24\", proto = \"udp\", dst-port = \"1024-65535\" },\
    { action = \"deny\", proto = \"tcp\", tcp-flags = [\"syn\", \"!ack\"], dst-port = \"0-1023\" },\
    { action = \"permit\", dst = \"198.51.100.0/24\" },\
    { action = \"deny\", proto = \"icmp\", src-port = 5 },\
    { action = \"deny\", proto = 47 },\
    { action = \"permit\", proto = \"udp\", src-port = 53 },\
] }";
