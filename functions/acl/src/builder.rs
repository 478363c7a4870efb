//! The `acl` stage kind: its factory (checks a configuration into the
//! model of [`crate::config`]) and its builder (one stage per worker).
//! The model knows nothing of the stage; this module joins them.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use nfv_core::config::{Diagnostic, Params};
use nfv_core::live::{Answer, Apply, Live, fixed, same};
use nfv_core::published::Published;
use nfv_core::{BuildCtx, BuildEnv, Stage, StageBuilder, StageFactory};

use crate::config::*;
use crate::hits::HitBoard;
use crate::stage::{AclDrop, AclStage};
use crate::update::{RuleSource, describe, next_version, same_rules};

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
        Ok(Arc::new(AclBuilder(Arc::new(AclShared {
            live,
            source,
            watch,
            board: HitBoard::default(),
            update: Mutex::new(()),
        }))))
    }
}

/// The running rule set, where it comes from, and every worker's counters.
pub(crate) struct AclShared {
    pub(crate) live: Arc<Published<Acl>>,
    pub(crate) source: RuleSource,
    watch: bool,
    pub(crate) board: HitBoard,
    /// Held from reading the running version to publishing the next: a
    /// reload and an `nfv ctl acl` command do not both build on one.
    update: Mutex<()>,
}

impl AclShared {
    /// Publishes `fresh`'s rules as the next version, counters following
    /// the rules it keeps: the one way the rules change (reloads and
    /// `nfv ctl acl`). A line on what changed; `None` when nothing did.
    pub(crate) fn publish(&self, fresh: &Acl) -> Option<String> {
        let _one = self.update.lock().expect("acl update lock");
        let old = self.live.load();
        let acl = next_version(&old, fresh)?;
        let line = describe(&acl, &old);
        self.live.publish(acl);
        Some(line)
    }
}

struct AclBuilder(Arc<AclShared>);

impl StageBuilder for AclBuilder {
    fn drop_reasons(&self) -> &'static [&'static str] {
        AclDrop::NAMES
    }

    fn build(&self, _ctx: &BuildCtx<'_>) -> Box<dyn Stage> {
        Box::new(AclStage::new(self.0.live.clone(), &self.0.board))
    }

    fn offers(&self) -> Vec<nfv_core::plan::Offer> {
        use nfv_core::plan::{Offer, Place};
        let acl = self.0.live.load();
        if acl.reflect.is_some() {
            Offer::established("deny rules as a prefix and port filter", true, "permit-reflect flows and their state")
        } else {
            Offer::complete(
                "rules as a prefix and port filter",
                Place::Xdp,
                "nothing; a rule update replaces the filter",
            )
        }
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
        let s = &self.0;
        s.source.file.iter().filter(|_| s.watch).map(|f| PathBuf::from(&f.path)).collect()
    }

    fn prepare(&self, next: &dyn StageBuilder, _: nfv_core::live::Written<'_>) -> Result<Option<Apply>, Vec<String>> {
        let (a, b) = (&*self.0, &*same::<AclBuilder>(next)?.0);
        let refused: Vec<String> = [
            fixed("reflect-flow parameters", &a.source.reflect, &b.source.reflect),
            fixed("watch-rules-file", &a.watch, &b.watch),
        ]
        .into_iter()
        .flatten()
        .collect();
        if !refused.is_empty() {
            return Err(refused);
        }
        let fresh = b.live.load();
        if same_rules(&a.live.load(), &fresh) {
            return Ok(None);
        }
        let shared = self.0.clone();
        Ok(Some(Box::new(move || shared.publish(&fresh).unwrap_or_else(|| "rules unchanged".into()))))
    }

    fn version(&self) -> (&'static str, u64) {
        ("rules", self.0.live.load().version)
    }

    fn summary(&self) -> String {
        let acl = self.0.live.load();
        format!("rules version {}: {} rules", acl.version, acl.rules.len())
    }

    fn usage(&self) -> &'static [&'static str] {
        crate::table::USAGE
    }

    fn command(&self, words: &[&str]) -> Result<Answer, String> {
        crate::table::command(&self.0, words)
    }

    fn reclaim(&self) {
        self.0.live.reclaim();
    }
}
