//! The chain executor: runs stages in order over a batch, one dynamic call
//! per stage per batch, and keeps each stage's counters and cycle cost.

use std::sync::Arc;

use crate::batch::Batch;
use crate::cycles;
use crate::packet::{Verdict, VerdictKind};
use crate::stage::{Stage, StageCtx};
use crate::telemetry::StageCounters;

struct Slot {
    stage: Box<dyn Stage>,
    counters: Arc<StageCounters>,
    scratch: Box<[u64]>,
}

/// A worker's instance of a configured chain.
#[derive(Default)]
pub struct Chain {
    slots: Vec<Slot>,
}

impl Chain {
    /// An empty chain (packets go straight to the worker's `tx`).
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a stage; returns its counters for the reporter.
    pub fn push(
        &mut self,
        name: impl Into<String>,
        reasons: &'static [&'static str],
        stage: Box<dyn Stage>,
    ) -> Arc<StageCounters> {
        let counters = Arc::new(StageCounters::new(name, reasons));
        self.slots.push(Slot { stage, counters: counters.clone(), scratch: vec![0; reasons.len()].into_boxed_slice() });
        counters
    }

    /// Number of stages.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// True for a chain without stages.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// (stage name, report) of every stage that has something to say.
    pub fn reports(&self) -> Vec<(String, String)> {
        self.slots.iter().filter_map(|s| s.stage.report().map(|r| (s.counters.name.clone(), r))).collect()
    }

    /// Counters of every stage, in order.
    pub fn counters(&self) -> Vec<Arc<StageCounters>> {
        self.slots.iter().map(|s| s.counters.clone()).collect()
    }

    /// Runs every stage over the batch. Packets a stage finishes move to
    /// the batch's done list; the rest go on.
    #[inline]
    pub fn run(&mut self, batch: &mut Batch, ctx: &mut StageCtx<'_>) {
        self.run_from(0, batch, ctx);
    }

    /// Runs the stages from chain position `first` on (packets another
    /// worker handed off resume where they left its chain).
    #[inline]
    pub fn run_from(&mut self, first: usize, batch: &mut Batch, ctx: &mut StageCtx<'_>) {
        for (position, slot) in self.slots.iter_mut().enumerate().skip(first) {
            let n_in = batch.len();
            if n_in == 0 {
                break;
            }
            let t0 = cycles::now();
            slot.stage.process(batch, ctx);
            settle(slot, position, batch);
            let t1 = cycles::now();
            let c = &slot.counters;
            c.calls.add(1);
            c.pkts_in.add(n_in as u64);
            c.pkts_next.add(batch.len() as u64);
            c.ticks.add(t1.wrapping_sub(t0));
        }
    }

    /// Lets the stage at `position` add packets of its own to the empty
    /// `batch` ([`Stage::tick`]) and runs them through the stages after
    /// it; true when it added any (the caller then dispatches the batch).
    pub fn tick(&mut self, position: usize, batch: &mut Batch, ctx: &mut StageCtx<'_>) -> bool {
        let Some(slot) = self.slots.get_mut(position) else { return false };
        slot.stage.tick(batch, ctx);
        let Some(first) = batch.active().first() else { return false };
        // What a stage adds on its tick arrives from where its first
        // packet says.
        batch.set_rx_port(first.meta.port);
        settle(slot, position, batch);
        self.run_from(position + 1, batch, ctx);
        true
    }
}

/// Moves the packets the stage at `position` finished to the batch's done
/// list, counted (drops by reason, out, punt); a handoff resumes at this
/// stage on the receiving worker.
#[inline]
fn settle(slot: &mut Slot, position: usize, batch: &mut Batch) {
    if batch.unsettled() == 0 {
        return;
    }
    let c = &slot.counters;
    let done_before = batch.done().len();
    batch.settle(&mut slot.scratch);
    for (counter, n) in c.drops.iter().zip(slot.scratch.iter_mut()) {
        if *n > 0 {
            counter.add(std::mem::take(n));
        }
    }
    let (mut out, mut punt) = (0, 0);
    for d in &mut batch.done_mut()[done_before..] {
        match d.verdict.kind() {
            VerdictKind::Out(_) => out += 1,
            VerdictKind::Punt => punt += 1,
            VerdictKind::Handoff { worker, .. } => {
                // The receiver resumes at this stage.
                d.verdict = Verdict::handoff(worker, position as u8);
                out += 1;
            }
            _ => {}
        }
    }
    c.pkts_out.add(out);
    c.pkts_punt.add(punt);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adjacency::Adjacency;
    use crate::frame::FramePool;
    use crate::neighbour::Neighbours;
    use crate::packet::Meta;

    /// Adds one packet on its tick.
    struct Ticker;

    impl Stage for Ticker {
        fn process(&mut self, _: &mut Batch, _: &mut StageCtx<'_>) {}

        fn tick(&mut self, batch: &mut Batch, ctx: &mut StageCtx<'_>) {
            batch.push(ctx.pool.packet_from(&[0; 60], Meta::default()).expect("a frame"));
        }
    }

    /// Sends everything out port 1.
    struct Out;

    impl Stage for Out {
        fn process(&mut self, batch: &mut Batch, _: &mut StageCtx<'_>) {
            for mut p in batch.iter_mut() {
                p.send_to(1);
            }
        }
    }

    #[test]
    fn what_a_stage_adds_on_its_tick_runs_through_the_stages_after_it() {
        let mut chain = Chain::new();
        let out = chain.push("out", &[], Box::new(Out));
        chain.push("ticker", &[], Box::new(Ticker));
        let last = chain.push("out-again", &[], Box::new(Out));
        let mut pool = FramePool::heap(8);
        let mut batch = Batch::new(pool.arena().clone(), 8);
        let mut adjacency = Adjacency::new(Neighbours::new([]), Default::default());
        let mut ctx = StageCtx { pool: &mut pool, adjacency: &mut adjacency, now_ticks: 0 };
        assert!(!chain.tick(0, &mut batch, &mut ctx), "the first stage adds nothing");
        assert!(chain.tick(1, &mut batch, &mut ctx));
        assert_eq!(batch.done().len(), 1);
        assert_eq!(batch.done()[0].verdict.kind(), VerdictKind::Out(1), "through the stage after it");
        assert_eq!((out.pkts_in.get(), last.pkts_in.get(), last.pkts_out.get()), (0, 1, 1), "not the one before");
        assert!(!chain.tick(5, &mut batch, &mut ctx), "no such stage");
    }
}
