//! Shared by the stage tests: a config around one `acl` stage, and one
//! batch of etherparse-built frames through it with verdicts by name.

#![allow(dead_code)] // each test binary uses a subset

use etherparse::PacketBuilder;
use nfv_core::config::{self, Config};
use nfv_core::packet::VerdictKind;
use nfv_core::{BuildCtx, Stage, StageRegistry};
use nfv_testkit::FrameRunner;

pub const HEAD: &str = "[[ports]]\nname = \"in0\"\nkind = \"generator\"\n\n[[ports]]\nname = \"in1\"\nkind = \"generator\"\n\n\
                    [[ports]]\nname = \"out\"\nkind = \"sink\"\n\n[[chains]]\nname = \"c\"\nthen = \"out\"\n";
pub const TAIL: &str = "\n[[workers]]\nrx = [\"in0\", \"in1\"]\nchain = \"c\"\n";

pub fn load(stage: &str) -> Result<Config, String> {
    let mut r = StageRegistry::new();
    nfv_acl::register(&mut r);
    config::load("acl.toml", &format!("{HEAD}{stage}{TAIL}"), &r).map_err(|e| e.render())
}

/// The reloader a run would have over `cfg` (from [`load`]): a change to
/// its rules file reloads it.
pub fn reloader(cfg: &Config) -> std::sync::Arc<nfv_core::reload::Reloader> {
    nfv_testkit::reloader(cfg, nfv_acl::register)
}

pub fn acl(stage: &str) -> (Config, Box<dyn Stage>) {
    let cfg = load(stage).unwrap_or_else(|e| panic!("{e}"));
    let macs = [[2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2], [2, 0, 0, 0, 0, 3]];
    let s = cfg.chains[0].stages[0].builder.build(&BuildCtx {
        worker: 0,
        port_macs: &macs,
        headers_read_later: false,
        chain_rank: 0,
        chain_workers: 1,
    });
    (cfg, s)
}

/// Verdicts for frames arriving on `port`, with drop reasons by name.
pub fn run(cfg: &Config, s: &mut dyn Stage, port: u16, frames: &[Vec<u8>]) -> Vec<String> {
    let out = FrameRunner::new([]).run_batch(s, port, frames.iter().map(|f| &f[..]));
    let reasons = cfg.chains[0].stages[0].builder.drop_reasons();
    let mut by_fed = vec![String::new(); frames.len()];
    for o in out {
        by_fed[o.fed.expect("the ACL adds no packet")] = match o.verdict {
            VerdictKind::Drop(r) => reasons[r.0 as usize].to_string(),
            VerdictKind::Next => "pass".to_string(),
            other => format!("{other:?}"),
        };
    }
    // In the order the frames were given (settling puts drops first).
    by_fed
}

pub fn tcp(src: [u8; 4], dst: [u8; 4], dport: u16, syn: bool, ack: bool) -> Vec<u8> {
    let mut f = Vec::new();
    let mut b =
        PacketBuilder::ethernet2([2, 0, 0, 0, 0, 9], [2, 0, 0, 0, 0, 1]).ipv4(src, dst, 64).tcp(40000, dport, 1, 1000);
    if syn {
        b = b.syn();
    }
    if ack {
        b = b.ack(1);
    }
    b.write(&mut f, &[]).unwrap();
    f
}

pub fn udp4(src: [u8; 4], dst: [u8; 4], dport: u16) -> Vec<u8> {
    let mut f = Vec::new();
    PacketBuilder::ethernet2([2, 0, 0, 0, 0, 9], [2, 0, 0, 0, 0, 1])
        .ipv4(src, dst, 64)
        .udp(40000, dport)
        .write(&mut f, b"payload")
        .unwrap();
    f
}
