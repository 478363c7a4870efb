//! The `nat44` stage kind: its factory (checks a configuration into the
//! model of [`crate::config`]) and its builder (one stage per worker).
//! The model knows nothing of the stage; this module joins them.

use crate::stage::{NatDrop, NatStage};
use nfv_core::config::{Diagnostic, Params};
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
}
