//! A stage benchmark case, shared by the criterion benches and the
//! callgrind examples: a stage, frames (each one flow), and one batch of 64
//! per round, each round first restoring the header bytes the stage
//! rewrote.
#![allow(dead_code)]

use std::net::IpAddr;

use nfv_core::frame::{Arena, FramePool, HEADROOM};
use nfv_core::neighbour::Neighbours;
use nfv_core::packet::{PortId, VerdictKind};
use nfv_core::{Batch, PktDesc, Stage, StageCtx};

/// Header bytes restored before each batch (Ethernet, IPv4, UDP/TCP ports).
pub const HEADER: usize = 42;

/// Distinct frames a case cycles through (each one flow).
pub const FRAMES: usize = 8192;

/// A stage and its frames.
pub struct Case {
    pub stage: Box<dyn Stage>,
    pool: FramePool,
    batch: Batch,
    descs: Vec<PktDesc>,
    pub pristine: Vec<Vec<u8>>,
    pub next: usize,
    nb: nfv_core::adjacency::Adjacency,
}

/// `stage` with `frames` arriving on `port`, its neighbours `neighbours`;
/// each round restores the first [`HEADER`] octets.
pub fn case_of(
    stage: Box<dyn Stage>,
    frames: impl IntoIterator<Item = Vec<u8>>,
    port: PortId,
    neighbours: impl IntoIterator<Item = (IpAddr, [u8; 6], PortId)>,
) -> Case {
    case_restoring(stage, frames, port, neighbours, HEADER)
}

/// [`case_of`], restoring the first `restore` octets of each frame
/// (stages that rewrite deeper: a tunnel header removed).
pub fn case_restoring(
    stage: Box<dyn Stage>,
    frames: impl IntoIterator<Item = Vec<u8>>,
    port: PortId,
    neighbours: impl IntoIterator<Item = (IpAddr, [u8; 6], PortId)>,
    restore: usize,
) -> Case {
    let frames: Vec<Vec<u8>> = frames.into_iter().collect();
    let nb = nfv_core::adjacency::Adjacency::new(Neighbours::new(neighbours), Default::default());
    let mut pool = FramePool::new(Arena::heap(frames.len() as u32 + 64));
    let batch = Batch::new(pool.arena().clone(), 64);
    let mut pristine = Vec::new();
    let descs = frames
        .iter()
        .map(|f| {
            pristine.push(f[..restore.min(f.len())].to_vec());
            let id = pool.alloc().unwrap();
            pool.frame_mut(id)[HEADROOM..HEADROOM + f.len()].copy_from_slice(f);
            let mut d = PktDesc::new(id, f.len() as u16, port);
            nfv_core::parse::classify(f, &mut d.meta).unwrap();
            d
        })
        .collect();
    Case { stage, pool, batch, descs, pristine, next: 0, nb }
}

/// One batch of 64: headers restored, then through the stage (or not).
/// Returns the packets sent on (out or next).
pub fn run(c: &mut Case, with_stage: bool) -> usize {
    let n = c.descs.len();
    for i in 0..64 {
        let at = (c.next + i) % n;
        let d = c.descs[at];
        let head = &c.pristine[at];
        c.pool.frame_mut(d.frame)[HEADROOM..HEADROOM + head.len()].copy_from_slice(head);
        c.batch.push(d);
    }
    c.next = (c.next + 64) % n;
    if with_stage {
        let mut ctx = StageCtx { pool: &mut c.pool, adjacency: &mut c.nb, now_ticks: 1 };
        c.stage.process(&mut c.batch, &mut ctx);
    }
    let mut scratch = [0u64; 32];
    c.batch.settle(&mut scratch);
    let mut out = 0;
    c.batch.drain(|d| out += matches!(d.verdict.kind(), VerdictKind::Out(_) | VerdictKind::Next) as usize);
    out
}

/// A stage that has seen flows `0..n` (fed through in chunks of
/// [`FRAMES`]; `make(max, flows)` builds a case whose stage holds `max`
/// flows), with frames of [`FRAMES`] flows drawn at random among them
/// (seed 3): established flows, every lookup a hit. `check` reads the
/// stage's report once it is full.
pub fn filled(n: usize, make: impl Fn(usize, &[u32]) -> Case, check: impl FnOnce(&str)) -> Case {
    let all: Vec<u32> = (0..n as u32).collect();
    let mut c = make(n, &all[..FRAMES.min(n)]);
    for chunk in all.chunks(FRAMES) {
        // The same stage: moved over, fed, moved back.
        let mut load = make(1, chunk);
        std::mem::swap(&mut load.stage, &mut c.stage);
        for _ in 0..chunk.len().div_ceil(64) {
            run(&mut load, true);
        }
        std::mem::swap(&mut load.stage, &mut c.stage);
    }
    check(&c.stage.report().unwrap_or_default());
    let mut rng = fastrand::Rng::with_seed(3);
    let picks: Vec<u32> = (0..FRAMES).map(|_| rng.u32(0..n as u32)).collect();
    let mut hit = make(1, &picks);
    std::mem::swap(&mut hit.stage, &mut c.stage);
    hit
}

/// Gives the next batch's 64 frames new source ports: new flows every
/// round (a UDP checksum is zeroed, so no checksum goes stale).
pub fn new_flows(c: &mut Case) {
    for i in 0..64 {
        let at = (c.next + i) % c.pristine.len();
        let p = &mut c.pristine[at];
        let sport = u16::from_be_bytes([p[34], p[35]]).wrapping_add(1).max(1024);
        p[34..36].copy_from_slice(&sport.to_be_bytes());
        if p[23] == 17 {
            p[40..42].copy_from_slice(&[0, 0]);
        }
    }
}
