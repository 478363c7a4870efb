//! The `lb` stage kind: its factory (checks a configuration into the
//! model of [`crate::config`]) and its builder (one stage per worker).
//! The model knows nothing of the stage; this module joins them.

use crate::stage::{LbDrop, LbStage};
use crate::update::BackendsWatch;
use nfv_core::config::{Diagnostic, Params};
use nfv_core::{BuildCtx, BuildEnv, ControlTask, PortId, Stage, StageBuilder, StageFactory};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use crate::config::*;

/// Registers `lb`.
pub struct LbFactory;

impl StageFactory for LbFactory {
    fn kind(&self) -> &'static str {
        "lb"
    }

    fn summary(&self) -> &'static str {
        "L4 load balancer: VIPs over weighted backends by Maglev hashing, connection tracking, DSR or IP-in-IP"
    }

    fn configure(&self, params: &Params<'_>, env: &BuildEnv<'_>) -> Result<Arc<dyn StageBuilder>, Vec<Diagnostic>> {
        let p: LbParams = params.parse().map_err(|e| vec![e])?;
        resolve(p, params, env).map(|lb| Arc::new(LbBuilder(Arc::new(lb))) as Arc<dyn StageBuilder>)
    }
}

struct LbBuilder(Arc<Lb>);

impl StageBuilder for LbBuilder {
    fn drop_reasons(&self) -> &'static [&'static str] {
        LbDrop::NAMES
    }

    fn ingress_ports(&self) -> Option<Vec<PortId>> {
        Some(self.0.clients.iter().copied().chain([self.0.backends_port]).collect())
    }

    fn owned_addresses(&self) -> Vec<IpAddr> {
        let s = self.0.services.load();
        let mut a: Vec<u32> = s.vips.iter().map(|v| v.addr).collect();
        a.extend((self.0.source_address != 0).then_some(self.0.source_address));
        a.sort_unstable();
        a.dedup();
        a.into_iter().map(|a| IpAddr::V4(Ipv4Addr::from(a))).collect()
    }

    fn wanted_neighbours(&self) -> Vec<IpAddr> {
        let s = self.0.services.load();
        let mut a: Vec<u32> = s.vips.iter().flat_map(|v| v.backends.iter().map(|b| b.addr)).collect();
        a.extend(self.0.client_gateway);
        a.sort_unstable();
        a.dedup();
        a.into_iter().map(|a| IpAddr::V4(Ipv4Addr::from(a))).collect()
    }

    fn hands_off(&self) -> bool {
        // NAT-mode answers go to the worker owning their port.
        self.0.services.load().vips.iter().any(|v| v.mode == crate::services::Mode::Nat)
    }

    fn build(&self, ctx: &BuildCtx<'_>) -> Box<dyn Stage> {
        Box::new(LbStage::new(self.0.clone(), ctx))
    }

    fn control_task(&self) -> Option<Box<dyn ControlTask>> {
        Some(Box::new(BackendsWatch::new(self.0.backends_file.as_deref(), self.0.services.clone())))
    }
}
