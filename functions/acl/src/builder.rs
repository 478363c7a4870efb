//! The `acl` stage kind: its factory (checks a configuration into the
//! model of [`crate::config`]) and its builder (one stage per worker).
//! The model knows nothing of the stage; this module joins them.

use crate::stage::{AclDrop, AclStage};
use crate::update::{RuleSource, describe, next_version};
use nfv_core::config::{Diagnostic, Params};
use nfv_core::live::{Apply, Live, fixed, same};
use nfv_core::published::Published;
use nfv_core::{BuildCtx, BuildEnv, Stage, StageBuilder, StageFactory};
use std::path::PathBuf;
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

/// The running rule set and where it comes from.
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

    fn live(&self) -> Option<&dyn Live> {
        Some(self)
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

/// Rules (inline and from the file) and the actions for unmatched and
/// non-IP frames change live; reflect-flow parameters size each worker's
/// flow table, and do not.
impl Live for AclBuilder {
    fn files(&self) -> Vec<PathBuf> {
        self.source.file.iter().filter(|_| self.watch).map(|f| PathBuf::from(&f.path)).collect()
    }

    fn prepare(&self, next: &dyn StageBuilder) -> Result<Option<Apply>, Vec<String>> {
        let next: &AclBuilder = same(next)?;
        let refused: Vec<String> = [
            fixed("reflect-flow parameters", &self.source.reflect, &next.source.reflect),
            fixed("watch-rules-file", &self.watch, &next.watch),
        ]
        .into_iter()
        .flatten()
        .collect();
        if !refused.is_empty() {
            return Err(refused);
        }
        let old = self.live.load();
        let Some(acl) = next_version(&old, &next.live.load()) else { return Ok(None) };
        let live = self.live.clone();
        Ok(Some(Box::new(move || {
            let line = describe(&acl, &old);
            live.publish(acl);
            line
        })))
    }

    fn summary(&self) -> String {
        let acl = self.live.load();
        format!("rules version {}: {} rules", acl.version, acl.rules.len())
    }

    fn reclaim(&self) {
        self.live.reclaim();
    }
}
