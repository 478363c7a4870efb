//! The NAT benchmark cases, shared by the criterion bench and the
//! callgrind example: a `nat44` stage and UDP frames of chosen flows, each
//! round restoring the 42 header bytes the NAT rewrote before the batch.
#![allow(dead_code)]

use etherparse::PacketBuilder;
use nfv_core::{BuildCtx, StageRegistry, config};

#[path = "stage_case.rs"]
mod stage_case;
#[allow(unused_imports)]
pub use stage_case::{Case, FRAMES, new_flows, run};

pub fn frame(flow: u32) -> Vec<u8> {
    let src = 0x0a00_0000 | (flow >> 4 & 0x00ff_ffff);
    let sport = 1024 + (flow & 0xf) as u16 * 4000;
    let mut f = Vec::new();
    PacketBuilder::ethernet2([2, 0, 0, 0, 0, 9], [2, 0, 0, 0, 1, 0])
        .ipv4(src.to_be_bytes(), [198, 51, 100, 2], 64)
        .udp(sport, 53)
        .write(&mut f, &[0; 18])
        .unwrap();
    f
}

pub fn case(max_sessions: usize, flows: &[u32]) -> Case {
    let src = format!(
        "[[ports]]\nname = \"in\"\nkind = \"generator\"\n\n[[ports]]\nname = \"out\"\nkind = \"generator\"\naddresses = [\"198.51.100.2/24\"]\n\n\
         [[chains]]\nname = \"c\"\nstages = [{{ kind = \"nat44\", inside = [\"in\"], outside = \"out\", \
         pool = [\"198.51.100.64/26\"], outside-gateway = \"198.51.100.1\", max-sessions = {max_sessions} }}]\n\n\
         [[workers]]\nrx = [\"in\", \"out\"]\nchain = \"c\"\n"
    );
    let mut r = StageRegistry::new();
    nfv_nat::register(&mut r);
    let cfg = config::load("bench.toml", &src, &r).unwrap_or_else(|e| panic!("{e}"));
    let macs = [[2, 0, 0, 0, 1, 0], [2, 0, 0, 0, 1, 1]];
    let ctx = BuildCtx { worker: 0, port_macs: &macs, headers_read_later: false, chain_rank: 0, chain_workers: 1 };
    let stage = cfg.chains[0].stages[0].builder.build(&ctx);
    let gw: std::net::IpAddr = "198.51.100.1".parse().unwrap();
    stage_case::case_of(stage, flows.iter().map(|&f| frame(f)), 0, [(gw, [2, 0, 0, 0, 0, 0xee], 1)])
}

/// A stage holding `sessions` sessions and frames of flows drawn at
/// random among them.
pub fn filled(sessions: usize) -> Case {
    stage_case::filled(sessions, case, |report| {
        assert!(report.contains(&format!("sessions {sessions} of {sessions}")), "{report}")
    })
}
