//! The `vtep` stage kind: its factory (checks a configuration into the
//! model of [`crate::config`]) and its builder (one stage per worker).
//! The model knows nothing of the stage; this module joins them.

use crate::stage::{VtepDrop, VtepStage};
use nfv_core::config::{Diagnostic, Params};
use nfv_core::{BuildCtx, BuildEnv, PortId, Stage, StageBuilder, StageFactory};
use std::net::IpAddr;
use std::sync::Arc;

use crate::config::*;

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
        let mut v: Vec<IpAddr> = match self.0.gateway {
            Some(g) => vec![g],
            None => self
                .0
                .domains
                .iter()
                .flat_map(|d| d.flood.iter().copied())
                .chain(self.0.static_macs.iter().filter_map(|(_, _, d)| match d {
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
}
