//! Latency histograms (`hdrhistogram`) a worker records without a lock or
//! an allocation, and hands to the management plane by swapping buffers.
//!
//! A worker records into its own set: the cycle-counter ticks a batch
//! spends from receive to transmit, and the ticks of each stage call.
//! Every [`HAND_EVERY`] it takes an empty set from [`Exchange::empty`]
//! (if the reader has returned one), swaps it with its full one and puts
//! that on [`Exchange::full`]; the reader merges what it gets, resets it
//! and returns it. Two bounded lock-free queues, sets allocated once at
//! start: nothing on the hot path but `record`.

use std::sync::Arc;
use std::time::Duration;

use crossbeam::queue::ArrayQueue;

/// Ticks, 1 to about 2^36 (tens of seconds at a few GHz), three
/// significant digits.
pub type Hist = hdrhistogram::Histogram<u64>;

/// A histogram with the bounds every one here uses (so any two merge).
pub fn hist() -> Hist {
    Hist::new_with_bounds(1, 1 << 36, 3).expect("valid histogram bounds")
}

/// One worker's histograms.
pub struct LatencySet {
    /// Ticks from a batch's receive to its transmit.
    pub batch: Hist,
    /// Ticks per call, by stage instance, in the graph's node order.
    pub stages: Vec<Hist>,
}

impl LatencySet {
    /// Empty, for `stages` stage instances.
    pub fn new(stages: usize) -> Self {
        Self { batch: hist(), stages: (0..stages).map(|_| hist()).collect() }
    }

    /// Adds `other`'s counts.
    pub fn merge(&mut self, other: &LatencySet) {
        let _ = self.batch.add(&other.batch);
        for (a, b) in self.stages.iter_mut().zip(&other.stages) {
            let _ = a.add(b);
        }
    }

    /// Empties every histogram (keeping its storage).
    pub fn reset(&mut self) {
        self.batch.reset();
        self.stages.iter_mut().for_each(Hist::reset);
    }
}

/// How often a worker hands its histograms over.
pub const HAND_EVERY: Duration = Duration::from_millis(100);

/// The two queues between a worker and the reader.
pub struct Exchange {
    /// Sets the worker filled.
    pub full: ArrayQueue<Box<LatencySet>>,
    /// Sets the reader emptied.
    pub empty: ArrayQueue<Box<LatencySet>>,
    /// Stage names, by node, for the reader.
    pub stage_names: Vec<String>,
    /// The worker's index.
    pub worker: usize,
}

impl Exchange {
    /// The queues for a worker with these stages, primed with one spare
    /// set (the worker holds the other).
    pub fn new(worker: usize, stage_names: Vec<String>) -> Arc<Self> {
        let e = Self { full: ArrayQueue::new(2), empty: ArrayQueue::new(2), stage_names, worker };
        let _ = e.empty.push(Box::new(LatencySet::new(e.stage_names.len())));
        Arc::new(e)
    }

    /// The worker's side: gives `mine` over if an empty set is back.
    #[inline]
    pub fn hand_over(&self, mine: &mut Box<LatencySet>) {
        if let Some(mut spare) = self.empty.pop() {
            std::mem::swap(mine, &mut spare);
            // Cannot be full: only one set is ever away from the worker
            // and the spare queue.
            let _ = self.full.push(spare);
        }
    }

    /// The reader's side: merges what the worker handed over into
    /// `into`, and gives the emptied sets back.
    pub fn collect(&self, into: &mut LatencySet) {
        while let Some(mut s) = self.full.pop() {
            into.merge(&s);
            s.reset();
            let _ = self.empty.push(s);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_a_worker_records_reaches_the_reader_and_the_buffers_come_back() {
        let x = Exchange::new(0, vec!["a".into(), "b".into()]);
        let mut mine = Box::new(LatencySet::new(2));
        let mut total = LatencySet::new(2);
        for round in 0..5u64 {
            mine.batch.record(100 + round).unwrap();
            mine.stages[1].record(7).unwrap();
            x.hand_over(&mut mine);
            assert!(mine.batch.is_empty(), "the worker goes on with an empty set");
            x.collect(&mut total);
        }
        assert_eq!((total.batch.len(), total.stages[1].len(), total.stages[0].len()), (5, 5, 0));
        assert_eq!(total.batch.max(), 104);
        // Without the reader, the worker keeps recording into its own set.
        mine.batch.record(1).unwrap();
        x.hand_over(&mut mine);
        mine.batch.record(2).unwrap();
        x.hand_over(&mut mine);
        assert_eq!(mine.batch.len(), 1, "no spare came back: kept");
        x.collect(&mut total);
        assert_eq!(total.batch.len(), 6);
    }
}
