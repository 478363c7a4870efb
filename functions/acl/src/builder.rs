//! The `acl` stage kind: its factory (checks a configuration into the
//! model of [`crate::config`]) and its builder (one stage per worker).
//! The model knows nothing of the stage; this module joins them.

use crate::stage::{AclDrop, AclStage};
use crate::update::{RuleSource, RulesFileWatch};
use nfv_core::config::{Diagnostic, Params};
use nfv_core::published::Published;
use nfv_core::{BuildCtx, BuildEnv, ControlTask, Stage, StageBuilder, StageFactory};
use std::sync::Arc;

use crate::config::*;

/// Registers `acl`.
pub struct AclFactory;

impl StageFactory for AclFactory {
    fn kind(&self) -> &'static str {
        "acl"
    }

    fn summary(&self) -> &'static str {
        "ACL firewall: first match on addresses, ports, protocol, TCP flags and ingress port; permit, deny, permit-reflect"
    }

    fn configure(&self, params: &Params<'_>, env: &BuildEnv<'_>) -> Result<Arc<dyn StageBuilder>, Vec<Diagnostic>> {
        let p: AclParams = params.parse().map_err(|e| vec![e])?;
        let watch = p.watch_rules_file;
        let (source, acl) = resolve(p, params, env)?;
        let live = Published::new(acl);
        Ok(Arc::new(AclBuilder { live, source: Arc::new(source), watch }))
    }
}

/// The running rule set and what rebuilds it.
struct AclBuilder {
    live: Arc<Published<Acl>>,
    source: Arc<RuleSource>,
    watch: bool,
}

impl StageBuilder for AclBuilder {
    fn drop_reasons(&self) -> &'static [&'static str] {
        AclDrop::NAMES
    }

    fn build(&self, _ctx: &BuildCtx<'_>) -> Box<dyn Stage> {
        Box::new(AclStage::new(self.live.clone()))
    }

    fn control_task(&self) -> Option<Box<dyn ControlTask>> {
        (self.watch && self.source.file.is_some())
            .then(|| Box::new(RulesFileWatch::new(self.source.clone(), self.live.clone())) as Box<dyn ControlTask>)
    }
}
