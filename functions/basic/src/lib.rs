//! Built-in stages that prove the machinery and serve as baselines:
//! `macswap`, `ttl-decrement`, `counter`, `drop` and `l2-patch`.

pub mod counter;
pub mod drop;
pub mod macswap;
pub mod patch;
pub mod ttl;

use std::sync::Arc;

use nfv_core::config::{Diagnostic, Params};
use nfv_core::{BuildCtx, BuildEnv, Stage, StageBuilder, StageFactory, StageRegistry};
use serde::Deserialize;

/// Registers every stage of this crate.
pub fn register(r: &mut StageRegistry) {
    r.register(Box::new(NoParams {
        kind: "macswap",
        summary: "swap source and destination MAC (testpmd macswap)",
        reasons: &[],
        reads_headers: true,
        make: || Box::new(macswap::MacSwap),
    }));
    r.register(Box::new(ttl::TtlFactory));
    r.register(Box::new(NoParams {
        kind: "counter",
        summary: "count packets and bytes passing this point",
        reasons: &[],
        reads_headers: false,
        make: || Box::new(counter::Counter::default()),
    }));
    r.register(Box::new(NoParams {
        kind: "drop",
        summary: "drop every packet (counted)",
        reasons: drop::DropAll::NAMES,
        reads_headers: false,
        make: || Box::new(drop::Drop),
    }));
    r.register(Box::new(patch::PatchFactory));
}

/// The parameters of a stage that takes none: any key is an error.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Empty {}

/// Factory and builder for stages without parameters or shared state.
#[derive(Clone, Copy)]
struct NoParams {
    kind: &'static str,
    summary: &'static str,
    reasons: &'static [&'static str],
    /// See [`StageBuilder::reads_headers`].
    reads_headers: bool,
    make: fn() -> Box<dyn Stage>,
}

impl StageFactory for NoParams {
    fn kind(&self) -> &'static str {
        self.kind
    }
    fn summary(&self) -> &'static str {
        self.summary
    }
    fn configure(&self, params: &Params<'_>, _env: &BuildEnv<'_>) -> Result<Arc<dyn StageBuilder>, Vec<Diagnostic>> {
        params.parse::<Empty>().map_err(|d| vec![d.help(format!("`{}` takes no parameters", self.kind))])?;
        Ok(Arc::new(*self))
    }
}

impl StageBuilder for NoParams {
    fn drop_reasons(&self) -> &'static [&'static str] {
        self.reasons
    }
    fn reads_headers(&self) -> bool {
        self.reads_headers
    }
    fn build(&self, _ctx: &BuildCtx<'_>) -> Box<dyn Stage> {
        (self.make)()
    }
}

#[cfg(test)]
pub(crate) mod testutil {
    //! Runs one stage over frames built by etherparse (an independent
    //! encoder) and returns the frames and verdicts.
    use nfv_core::adjacency::Adjacency;
    use nfv_core::frame::{Arena, FramePool, HEADROOM};
    use nfv_core::neighbour::Neighbours;
    use nfv_core::packet::VerdictKind;
    use nfv_core::{Batch, PktDesc, Stage, StageCtx};

    pub fn run(stage: &mut dyn Stage, frames: &[Vec<u8>]) -> Vec<(Vec<u8>, VerdictKind)> {
        let mut pool = FramePool::new(Arena::heap(64));
        let mut batch = Batch::new(pool.arena().clone(), 64);
        for f in frames {
            let id = pool.alloc().unwrap();
            pool.frame_mut(id)[HEADROOM..HEADROOM + f.len()].copy_from_slice(f);
            let mut d = PktDesc::new(id, f.len() as u16, 0);
            nfv_core::parse::classify(f, &mut d.meta).unwrap();
            batch.push(d);
        }
        let mut adjacency = Adjacency::new(Neighbours::new([]), Default::default());
        let mut ctx = StageCtx { pool: &mut pool, adjacency: &mut adjacency, now_ticks: 0 };
        stage.process(&mut batch, &mut ctx);
        let mut out = Vec::new();
        let mut scratch = [0u64; 8];
        batch.settle(&mut scratch);
        batch.drain(|d| out.push((d.frame, d.data_range(), d.verdict.kind())));
        out.sort_by_key(|o| o.0);
        out.into_iter().map(|(id, r, v)| (pool.frame(id)[r].to_vec(), v)).collect()
    }
}
