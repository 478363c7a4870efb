//! The `nat44` stage kind: its factory (checks a configuration into the
//! model of [`crate::config`]) and its builder (one stage per worker).
//! The model knows nothing of the stage; this module joins them.

use crate::stage::{NatDrop, NatStage};
use nfv_core::config::{Diagnostic, Params};
use nfv_core::live::{Answer, Apply, Live, Written, same};
use nfv_core::{BuildCtx, BuildEnv, PortId, Stage, StageBuilder, StageFactory};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use crate::config::*;

/// Registers `nat44`.
pub struct NatFactory;

impl StageFactory for NatFactory {
    fn kind(&self) -> &'static str {
        "nat44"
    }

    fn summary(&self) -> &'static str {
        "NAT44: source NAT to a pool (endpoint-independent mapping), port forwards, ICMP errors, hairpinning"
    }

    fn configure(&self, params: &Params<'_>, env: &BuildEnv<'_>) -> Result<Arc<dyn StageBuilder>, Vec<Diagnostic>> {
        let p: NatParams = params.parse().map_err(|e| vec![e])?;
        resolve(p, params, env).map(|n| Arc::new(NatBuilder(Arc::new(n))) as Arc<dyn StageBuilder>)
    }
}

struct NatBuilder(Arc<Nat>);

impl StageBuilder for NatBuilder {
    fn drop_reasons(&self) -> &'static [&'static str] {
        NatDrop::NAMES
    }

    fn ingress_ports(&self) -> Option<Vec<PortId>> {
        Some(self.0.inside.iter().copied().chain([self.0.outside]).collect())
    }

    fn owned_addresses(&self) -> Vec<IpAddr> {
        self.0.outside_addrs.iter().map(|&a| IpAddr::V4(Ipv4Addr::from(a))).collect()
    }

    fn wanted_neighbours(&self) -> Vec<IpAddr> {
        self.0.outside_gateway.map(|g| IpAddr::V4(Ipv4Addr::from(g))).into_iter().collect()
    }

    fn hands_off(&self) -> bool {
        true
    }

    fn build(&self, ctx: &BuildCtx<'_>) -> Box<dyn Stage> {
        Box::new(NatStage::new(self.0.clone(), ctx))
    }

    fn offers(&self) -> Vec<nfv_core::plan::Offer> {
        nfv_core::plan::Offer::established(
            "established sessions: address and port rewrite, incremental checksums",
            true,
            "first packets, ICMP errors, fragments, hairpinning and expiry",
        )
    }

    fn live(&self) -> Option<&dyn Live> {
        Some(self)
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

/// Port forwards (static mappings) change live; the pool, ports, prefixes,
/// timeouts and table sizes do not.
impl Live for NatBuilder {
    fn prepare(&self, next: &dyn StageBuilder, written: Written<'_>) -> Result<Option<Apply>, Vec<String>> {
        let next: &NatBuilder = same(next)?;
        let refused = written.fixed_except(&["forwards"], |_| {});
        if !refused.is_empty() {
            return Err(refused);
        }
        let fresh = next.0.forwards.load().list.clone();
        if fresh == self.0.forwards.load().list {
            return Ok(None);
        }
        // Checked now: a forward on an address nobody answers for.
        if let Some(f) = fresh.iter().find(|f| !self.0.outside_addrs.contains(&f.3)) {
            return Err(vec![format!(
                "forward {}: {} is not an address nfv answers for outside; restart to add it",
                forward_text(f),
                Ipv4Addr::from(f.3)
            )]);
        }
        let nat = self.0.clone();
        Ok(Some(Box::new(move || {
            match nat.change(|list| {
                *list = fresh;
                Ok(())
            }) {
                Ok(Some(line)) => line,
                Ok(None) => "forwards unchanged".into(),
                Err(e) => e,
            }
        })))
    }

    fn version(&self) -> (&'static str, u64) {
        ("forwards", self.0.forwards.load().version)
    }

    fn summary(&self) -> String {
        let f = self.0.forwards.load();
        format!("forwards version {}: {} port forwards", f.version, f.list.len())
    }

    fn usage(&self) -> &'static [&'static str] {
        crate::table::USAGE
    }

    fn command(&self, words: &[&str]) -> Result<Answer, String> {
        crate::table::command(&self.0, words)
    }

    fn reclaim(&self) {
        self.0.forwards.reclaim();
    }
}
