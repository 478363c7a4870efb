//! Built-in stages: `classify`, which branches the chain graph, and those
//! that prove the machinery and serve as baselines: `macswap`,
//! `ttl-decrement`, `counter`, `drop` and `l2-patch`; and `stall`, a
//! wedged stage on demand for testing liveness probes.

pub mod classify;
pub mod counter;
pub mod drop;
pub mod macswap;
pub mod patch;
pub mod stall;
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
        offer: Some(("swap MAC addresses", "nothing")),
    }));
    r.register(Box::new(ttl::TtlFactory));
    r.register(Box::new(NoParams {
        kind: "counter",
        summary: "count packets and bytes passing this point",
        reasons: &[],
        reads_headers: false,
        make: || Box::new(counter::Counter::default()),
        offer: Some(("count packets and bytes (per-CPU map)", "nothing")),
    }));
    r.register(Box::new(NoParams {
        kind: "drop",
        summary: "drop every packet (counted)",
        reasons: drop::DropAll::NAMES,
        reads_headers: false,
        make: || Box::new(drop::Drop),
        offer: Some(("drop every packet", "nothing")),
    }));
    r.register(Box::new(patch::PatchFactory));
    r.register(Box::new(classify::ClassifyFactory));
    r.register(Box::new(stall::StallFactory));
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
    /// What it could do below the workers, and what it leaves them.
    offer: Option<(&'static str, &'static str)>,
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

    fn offers(&self) -> Vec<nfv_core::plan::Offer> {
        self.offer.map_or_else(Vec::new, |(what, leaves)| {
            nfv_core::plan::Offer::complete(what, nfv_core::plan::Place::Xdp, leaves)
        })
    }
}

#[cfg(test)]
pub(crate) mod testutil {
    //! Runs one stage over frames built by etherparse (an independent
    //! encoder) and returns the frames and verdicts.
    use nfv_core::Stage;
    use nfv_core::packet::VerdictKind;
    use nfv_testkit::FrameRunner;

    /// In the order the frames were given.
    pub fn run(stage: &mut dyn Stage, frames: &[Vec<u8>]) -> Vec<(Vec<u8>, VerdictKind)> {
        let mut out = FrameRunner::new([]).run_batch(stage, 0, frames.iter().map(|f| &f[..]));
        out.sort_by_key(|o| o.fed);
        out.into_iter().map(|o| (o.data, o.verdict)).collect()
    }
}
