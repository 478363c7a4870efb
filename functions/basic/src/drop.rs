//! `drop`: drops every packet under one named reason, the black hole at
//! the end of a test chain.

use nfv_core::{Batch, Stage, StageCtx};

nfv_core::drop_reasons! {
    /// Drop reasons of the drop stage.
    pub enum DropAll { ByConfig => "dropped-by-config" }
}

/// The drop stage.
pub struct Drop;

impl Stage for Drop {
    fn process(&mut self, batch: &mut Batch, _ctx: &mut StageCtx<'_>) {
        for mut p in batch.iter_mut() {
            p.drop_with(DropAll::ByConfig);
        }
    }
}
