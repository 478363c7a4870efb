//! The `vtep` stage kind: its factory (checks a configuration into the
//! model of [`crate::config`]) and its builder (one stage per worker).
//! The model knows nothing of the stage; this module joins them.

use std::net::IpAddr;
use std::sync::Arc;

use nfv_core::config::{Diagnostic, Params};
use nfv_core::live::{Answer, Apply, Live, Written, same};
use nfv_core::{BuildCtx, BuildEnv, PortId, Stage, StageBuilder, StageFactory};

use crate::config::*;
use crate::stage::{VtepDrop, VtepStage};

/// Registers `vtep`.
pub struct VtepFactory;

impl StageFactory for VtepFactory {
    fn kind(&self) -> &'static str {
        "vtep"
    }

    fn summary(&self) -> &'static str {
        "VXLAN (RFC 7348) / Geneve (RFC 8926) tunnel endpoint: bridge domains, learning FDB, head-end replication"
    }

    fn configure(&self, params: &Params<'_>, env: &BuildEnv<'_>) -> Result<Arc<dyn StageBuilder>, Vec<Diagnostic>> {
        let p: VtepParams = params.parse().map_err(|e| vec![e])?;
        resolve(p, params, env).map(|v| Arc::new(VtepBuilder(Arc::new(v))) as Arc<dyn StageBuilder>)
    }
}

struct VtepBuilder(Arc<Vtep>);

impl StageBuilder for VtepBuilder {
    fn drop_reasons(&self) -> &'static [&'static str] {
        VtepDrop::NAMES
    }

    fn ingress_ports(&self) -> Option<Vec<PortId>> {
        let bridged = self.0.port_domain.iter().enumerate().filter(|(_, d)| d.is_some()).map(|(p, _)| p as PortId);
        Some(bridged.chain([self.0.underlay]).collect())
    }

    fn owned_addresses(&self) -> Vec<IpAddr> {
        vec![self.0.local_ip]
    }

    fn wanted_neighbours(&self) -> Vec<IpAddr> {
        let st = self.0.statics.load();
        let mut v: Vec<IpAddr> = match self.0.gateway {
            Some(g) => vec![g],
            None => st
                .flood
                .iter()
                .flatten()
                .copied()
                .chain(st.macs.iter().filter_map(|(_, _, d)| match d {
                    StaticDest::Remote(ip) => Some(*ip),
                    StaticDest::Local(_) => None,
                }))
                .collect(),
        };
        v.sort();
        v.dedup();
        v
    }

    fn build(&self, ctx: &BuildCtx<'_>) -> Box<dyn Stage> {
        let mut stage = VtepStage::new(self.0.clone(), ctx.port_macs[self.0.underlay as usize]);
        stage.reparse_inner = ctx.headers_read_later || self.0.allow_inner_vlan;
        stage.own_macs = ctx.port_macs.to_vec();
        Box::new(stage)
    }

    fn offers(&self) -> Vec<nfv_core::plan::Offer> {
        let mut offers = nfv_core::plan::Offer::established(
            "known unicast: decapsulation, and encapsulation to the FDB's VTEP",
            false,
            "flooding, learning, ARP suppression, too-big answers",
        );
        // nfv's XDP program speaks VXLAN over IPv4 only.
        if self.0.tunnel != crate::wire::Tunnel::Vxlan || !self.0.local_ip.is_ipv4() {
            offers[0].lowest = nfv_core::plan::Place::Worker;
            offers[0].leaves = "everything: XDP runs VXLAN over IPv4 only".into();
        }
        offers
    }

    fn live(&self) -> Option<&dyn Live> {
        Some(self)
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

/// Static FDB entries and flood lists change live; the tunnel, addresses,
/// bridge domains and their ports do not.
impl Live for VtepBuilder {
    fn prepare(&self, next: &dyn StageBuilder, written: Written<'_>) -> Result<Option<Apply>, Vec<String>> {
        let next: &VtepBuilder = same(next)?;
        // The flood lists change live inside the bridge domains.
        let refused = written.fixed_except(&["static-macs"], |t| {
            for bd in t.get_mut("bridge-domains").and_then(|d| d.as_array_mut()).into_iter().flatten() {
                bd.as_table_mut().map(|b| b.remove("flood"));
            }
        });
        if !refused.is_empty() {
            return Err(refused);
        }
        let fresh = Statics::clone(&next.0.statics.load());
        if (Statics { version: fresh.version, ..Statics::clone(&self.0.statics.load()) }) == fresh {
            return Ok(None);
        }
        let v = self.0.clone();
        Ok(Some(Box::new(move || {
            let line = v.change(|s| {
                (s.flood, s.macs) = (fresh.flood, fresh.macs);
                Ok(())
            });
            line.ok().flatten().unwrap_or_else(|| "statics unchanged".into())
        })))
    }

    fn version(&self) -> (&'static str, u64) {
        ("statics", self.0.statics.load().version)
    }

    fn summary(&self) -> String {
        self.0.statics.load().summary()
    }

    fn usage(&self) -> &'static [&'static str] {
        crate::table::USAGE
    }

    fn command(&self, words: &[&str]) -> Result<Answer, String> {
        crate::table::command(&self.0, words)
    }

    fn reclaim(&self) {
        self.0.statics.reclaim();
    }
}
