//! `counter`: a named tap point. The chain already counts packets per
//! stage; this stage adds the byte count a user expects from a counter and
//! costs one add per packet, which makes it the "no-op stage" of the
//! chain-overhead benchmark.

use nfv_core::{Batch, Stage, StageCtx};

/// The counter stage.
#[derive(Default)]
pub struct Counter {
    /// Bytes seen so far by this worker's instance.
    pub bytes: u64,
}

impl Stage for Counter {
    fn process(&mut self, batch: &mut Batch, _ctx: &mut StageCtx<'_>) {
        // Descriptors only: a counter never needs the frame bytes.
        self.bytes += batch.active().iter().map(|d| d.len as u64).sum::<u64>();
    }
}
