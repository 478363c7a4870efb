//! `stall`: stops its worker for a while, once, after some packets: a
//! wedged stage on demand, to prove that `/livez` and the worker metrics
//! catch one (and to rehearse what a watchdog or Kubernetes does then).
//! Never in a production chain: the worker polls nothing while stalled.

use std::time::Duration;

use nfv_core::{Batch, Stage, StageCtx};

/// `{ kind = "stall", after = 1000, seconds = 3.0 }`.
#[derive(serde::Deserialize, Clone, Copy)]
#[serde(deny_unknown_fields)]
pub struct Stall {
    /// Packets to let through first.
    #[serde(default)]
    pub after: u64,
    /// How long the worker stops.
    pub seconds: f64,
}

/// A worker's instance: packets seen, and whether it has stalled.
pub struct Stalling {
    cfg: Stall,
    seen: u64,
    done: bool,
}

impl Stage for Stalling {
    fn process(&mut self, batch: &mut Batch, _ctx: &mut StageCtx<'_>) {
        self.seen += batch.len() as u64;
        if !self.done && self.seen > self.cfg.after {
            self.done = true;
            std::thread::sleep(Duration::from_secs_f64(self.cfg.seconds));
        }
    }
}

/// Registers `stall`.
pub struct StallFactory;

impl nfv_core::StageFactory for StallFactory {
    fn kind(&self) -> &'static str {
        "stall"
    }

    fn summary(&self) -> &'static str {
        "testing only: stop the worker for `seconds`, once, after `after` packets (a wedged stage for the liveness probe)"
    }

    fn configure(
        &self,
        params: &nfv_core::config::Params<'_>,
        _env: &nfv_core::BuildEnv<'_>,
    ) -> Result<std::sync::Arc<dyn nfv_core::StageBuilder>, Vec<nfv_core::config::Diagnostic>> {
        let p: Stall = params.parse().map_err(|e| vec![e])?;
        if !(p.seconds.is_finite() && (0.0..=3600.0).contains(&p.seconds)) {
            return Err(vec![params.error("seconds", "seconds out of range", "expected 0..=3600")]);
        }
        Ok(std::sync::Arc::new(p))
    }
}

impl nfv_core::StageBuilder for Stall {
    fn drop_reasons(&self) -> &'static [&'static str] {
        &[]
    }

    fn reads_headers(&self) -> bool {
        false
    }

    fn build(&self, _ctx: &nfv_core::BuildCtx<'_>) -> Box<dyn Stage> {
        Box::new(Stalling { cfg: *self, seen: 0, done: false })
    }
}
