//! A stage benchmark case, shared by the criterion benches and the
//! callgrind examples: a stage, frames (each one flow), and one batch of 64
//! per round through `nfv_testkit::Rounds` (fresh copies of the frames each
//! round, so what the stage rewrote is restored).
#![allow(dead_code)]

use std::net::IpAddr;

use nfv_core::Stage;
use nfv_core::packet::{PortId, VerdictKind};
use nfv_testkit::Rounds;

/// Distinct frames a case cycles through (each one flow).
pub const FRAMES: usize = 8192;

/// A stage and its frames.
pub struct Case {
    pub stage: Box<dyn Stage>,
    pub rounds: Rounds,
}

/// `stage` with `frames` arriving on `port`, its neighbours `neighbours`.
pub fn case_of(
    stage: Box<dyn Stage>,
    frames: impl IntoIterator<Item = Vec<u8>>,
    port: PortId,
    neighbours: impl IntoIterator<Item = (IpAddr, [u8; 6], PortId)>,
) -> Case {
    Case { stage, rounds: Rounds::new(frames.into_iter().collect(), port, neighbours) }
}

/// One batch of 64 through the stage (or not). Returns the packets sent
/// on (out or next).
pub fn run(c: &mut Case, with_stage: bool) -> usize {
    let stage = with_stage.then_some(&mut *c.stage as &mut dyn Stage);
    c.rounds.round(stage, 64, |v| matches!(v, VerdictKind::Out(_) | VerdictKind::Next))
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
    let frames = &mut c.rounds.frames;
    for i in 0..64 {
        let at = (c.rounds.next + i) % frames.len();
        let p = &mut frames[at];
        let sport = u16::from_be_bytes([p[34], p[35]]).wrapping_add(1).max(1024);
        p[34..36].copy_from_slice(&sport.to_be_bytes());
        if p[23] == 17 {
            p[40..42].copy_from_slice(&[0, 0]);
        }
    }
}
