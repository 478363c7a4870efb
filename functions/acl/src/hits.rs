//! Per-rule hit counters (packets and bytes) as the management plane sees
//! them: each worker counts in plain memory on the hot path and copies its
//! counts into its [`RuleHits`] when it samples its tables (every 100 ms),
//! single-writer (no locked instruction); when it takes a new rule-set
//! version it puts new ones where the management plane finds them. `nfv
//! ctl acl list` reads and sums them.

use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use nfv_core::telemetry::Counter;

/// One worker's counters for one rule-set version: one per rule, then
/// one for the packets that took the default action.
#[derive(Debug)]
pub struct RuleHits {
    /// The rule-set version they count for.
    pub version: u64,
    /// Per rule, then the default: packets and bytes.
    pub counts: Box<[[Counter; 2]]>,
}

impl RuleHits {
    /// Zeroed counters for `rules` rules and the default.
    pub fn new(version: u64, rules: usize) -> Self {
        Self { version, counts: (0..=rules).map(|_| Default::default()).collect() }
    }

    /// Takes the worker's counts: per rule, and the default's.
    pub fn copy_from(&self, rules: &[[u64; 2]], default: [u64; 2]) {
        for ([p, b], [vp, vb]) in self.counts.iter().zip(rules.iter().chain([&default])) {
            p.set(*vp);
            b.set(*vb);
        }
    }
}

/// A worker's current counters, as the management plane sees them.
pub type HitsSlot = Arc<ArcSwap<RuleHits>>;

/// Every worker's slot.
#[derive(Debug, Default)]
pub struct HitBoard {
    slots: Mutex<Vec<HitsSlot>>,
}

impl HitBoard {
    /// A slot for a worker's instance, holding `first` (called when the
    /// instance is built, off the hot path).
    pub fn join(&self, first: Arc<RuleHits>) -> HitsSlot {
        let slot = Arc::new(ArcSwap::new(first));
        self.slots.lock().expect("hit board").push(slot.clone());
        slot
    }

    /// The sums over the workers counting for `version` (a worker that
    /// has not taken it yet counts for an older one, and is left out),
    /// per rule then the default; `rules` long plus one.
    pub fn sum(&self, version: u64, rules: usize) -> Vec<[u64; 2]> {
        let mut total = vec![[0u64; 2]; rules + 1];
        for slot in self.slots.lock().expect("hit board").iter() {
            let h = slot.load();
            if h.version != version {
                continue;
            }
            for (t, [p, b]) in total.iter_mut().zip(h.counts.iter()) {
                t[0] += p.get();
                t[1] += b.get();
            }
        }
        total
    }
}
