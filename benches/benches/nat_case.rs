//! The NAT benchmark cases, shared by the criterion bench and the
//! callgrind example: a `nat44` stage and UDP frames of chosen flows, each
//! round restoring the 42 header bytes the NAT rewrote before the batch.
#![allow(dead_code)]

use etherparse::PacketBuilder;
use nfv_core::frame::{Arena, FramePool, HEADROOM};
use nfv_core::neighbour::{NeighbourTable, Neighbours};
use nfv_core::packet::VerdictKind;
use nfv_core::{Batch, BuildCtx, PktDesc, Stage, StageCtx, StageRegistry, config};

/// Distinct frames cycled through (each one flow).
pub const FRAMES: usize = 8192;
const HEADER: usize = 42;

pub struct Case {
    pub stage: Box<dyn Stage>,
    pool: FramePool,
    batch: Batch,
    descs: Vec<PktDesc>,
    pub pristine: Vec<[u8; HEADER]>,
    pub next: usize,
    nb: std::sync::Arc<NeighbourTable>,
}

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
        "[[ports]]\nname = \"in\"\nkind = \"generator\"\n\n[[ports]]\nname = \"out\"\nkind = \"generator\"\n\n\
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
    let nb = Neighbours::new([(gw, [2, 0, 0, 0, 0, 0xee], 1)]).snapshot();
    let mut pool = FramePool::new(Arena::heap(flows.len() as u32 + 64));
    let batch = Batch::new(pool.arena().clone(), 64);
    let mut pristine = Vec::new();
    let descs = flows
        .iter()
        .map(|&flow| {
            let f = frame(flow);
            pristine.push(f[..HEADER].try_into().unwrap());
            let id = pool.alloc().unwrap();
            pool.frame_mut(id)[HEADROOM..HEADROOM + f.len()].copy_from_slice(&f);
            let mut d = PktDesc::new(id, f.len() as u16, 0);
            nfv_core::parse::classify(&f, &mut d.meta).unwrap();
            d
        })
        .collect();
    Case { stage, pool, batch, descs, pristine, next: 0, nb }
}

/// One batch of 64: headers restored, then through the stage (or not).
pub fn run(c: &mut Case, with_stage: bool) -> usize {
    let n = c.descs.len();
    for i in 0..64 {
        let at = (c.next + i) % n;
        let d = c.descs[at];
        c.pool.frame_mut(d.frame)[HEADROOM..HEADROOM + HEADER].copy_from_slice(&c.pristine[at]);
        c.batch.push(d);
    }
    c.next = (c.next + 64) % n;
    if with_stage {
        let mut ctx = StageCtx { pool: &mut c.pool, neighbours: &c.nb, now_ticks: 1 };
        c.stage.process(&mut c.batch, &mut ctx);
    }
    let mut scratch = [0u64; 32];
    c.batch.settle(&mut scratch);
    let mut out = 0;
    c.batch.drain(|d| out += matches!(d.verdict.kind(), VerdictKind::Out(_) | VerdictKind::Next) as usize);
    out
}

/// A stage holding `sessions` sessions and frames of flows drawn at random
/// among them (seed 3).
pub fn filled(sessions: usize) -> Case {
    let all: Vec<u32> = (0..sessions as u32).collect();
    let mut c = case(sessions, &all[..FRAMES.min(sessions)]);
    for chunk in all.chunks(FRAMES) {
        let mut load = case(1, chunk);
        // Same stage: move it over, feed it, move it back.
        std::mem::swap(&mut load.stage, &mut c.stage);
        for _ in 0..chunk.len().div_ceil(64) {
            run(&mut load, true);
        }
        std::mem::swap(&mut load.stage, &mut c.stage);
    }
    let report = c.stage.report().unwrap();
    assert!(report.contains(&format!("sessions {sessions} of {sessions}")), "{report}");
    let mut rng = fastrand::Rng::with_seed(3);
    let picks: Vec<u32> = (0..FRAMES).map(|_| rng.u32(0..sessions as u32)).collect();
    let mut hit = case(1, &picks);
    std::mem::swap(&mut hit.stage, &mut c.stage);
    hit
}
