//! The `lb` stage kind: its factory (checks a configuration into the
//! model of [`crate::config`]) and its builder (one stage per worker).
//! The model knows nothing of the stage; this module joins them.

use crate::services::Wanted;
use crate::stage::{LbDrop, LbStage};
use crate::update::summary;
use nfv_core::config::{Diagnostic, Params};
use nfv_core::live::{Apply, Live, fixed, same};
use nfv_core::{BuildCtx, BuildEnv, PortId, Stage, StageBuilder, StageFactory};
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
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

    fn offers(&self) -> Vec<nfv_core::plan::Offer> {
        nfv_core::plan::Offer::established(
            "established connections: DSR rewrite, IP-in-IP or NAT to their backend",
            true,
            "new connections (Maglev scheduling), ICMP, backend changes",
        )
    }

    fn live(&self) -> Option<&dyn Live> {
        Some(self)
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

/// Each VIP's backends (weights, drains, additions, removals) change
/// live, from the configuration or its backends file; the VIPs, ports,
/// addresses and connection-table sizes do not.
impl Live for LbBuilder {
    fn files(&self) -> Vec<PathBuf> {
        self.0.backends_file.iter().map(PathBuf::from).collect()
    }

    fn prepare(&self, next: &dyn StageBuilder, _: nfv_core::live::Written<'_>) -> Result<Option<Apply>, Vec<String>> {
        let (a, b) = (&*self.0, &*same::<LbBuilder>(next)?.0);
        let (old, fresh) = (a.services.load(), b.services.load());
        let vips = |s: &crate::services::Services| -> Vec<String> {
            s.vips
                .iter()
                .map(|v| {
                    format!("{}:{} proto {} {:?} table {}", Ipv4Addr::from(v.addr), v.port, v.proto, v.mode, v.size)
                })
                .collect()
        };
        let refused: Vec<String> = [
            fixed("clients", &a.clients, &b.clients),
            fixed("backends-port", &a.backends_port, &b.backends_port),
            fixed("source-address", &Ipv4Addr::from(a.source_address), &Ipv4Addr::from(b.source_address)),
            fixed("client-gateway", &a.client_gateway.map(Ipv4Addr::from), &b.client_gateway.map(Ipv4Addr::from)),
            fixed("max-connections", &a.max_connections, &b.max_connections),
            fixed("timeouts", &a.timeouts, &b.timeouts),
            fixed("VIPs", &vips(&old), &vips(&fresh)),
        ]
        .into_iter()
        .flatten()
        .collect();
        if !refused.is_empty() {
            return Err(refused);
        }
        // The running VIPs take the new backends: known ones keep their
        // index (and their connections).
        let wanted: Vec<Vec<Wanted>> = fresh.vips.iter().map(|v| v.wanted()).collect();
        if old.vips.iter().zip(&wanted).all(|(v, w)| v.wanted() == *w) {
            return Ok(None);
        }
        let lb = self.0.clone();
        Ok(Some(Box::new(move || match lb.change(|_| Ok(wanted)) {
            Ok(Some(line)) => line,
            Ok(None) | Err(_) => "backends unchanged".into(),
        })))
    }

    fn version(&self) -> (&'static str, u64) {
        ("backends", self.0.services.load().version)
    }

    fn summary(&self) -> String {
        summary(&self.0.services.load())
    }

    fn usage(&self) -> &'static [&'static str] {
        crate::table::USAGE
    }

    fn command(&self, words: &[&str]) -> Result<nfv_core::live::Answer, String> {
        crate::table::command(&self.0, words)
    }

    fn reclaim(&self) {
        self.0.services.reclaim();
    }
}
