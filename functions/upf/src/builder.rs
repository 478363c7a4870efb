//! The `upf` stage kind: its factory (checks a configuration into the
//! model of [`crate::config`]) and its builder (one stage per worker).
//! The model knows nothing of the stage; this module joins them.

use crate::pfcp::PfcpEndpoint;
use crate::rules::Sessions;
use crate::stage::{UpfDrop, UpfStage};
use nfv_core::config::{Diagnostic, Params};
use nfv_core::live::{Apply, Live, Written, same};
use nfv_core::{BuildCtx, BuildEnv, ControlTask, PortId, Stage, StageBuilder, StageFactory};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use crate::config::*;

/// Registers `upf`.
pub struct UpfFactory;

impl StageFactory for UpfFactory {
    fn kind(&self) -> &'static str {
        "upf"
    }

    fn summary(&self) -> &'static str {
        "5G UPF: GTP-U uplink decap and downlink encap by PDR/FAR rules (static sessions)"
    }

    fn configure(&self, params: &Params<'_>, env: &BuildEnv<'_>) -> Result<Arc<dyn StageBuilder>, Vec<Diagnostic>> {
        let p: UpfParams = params.parse().map_err(|e| vec![e])?;
        resolve(p, params, env).map(|u| Arc::new(UpfBuilder(Arc::new(u))) as Arc<dyn StageBuilder>)
    }
}

pub(crate) struct UpfBuilder(pub(crate) Arc<Upf>);

impl StageBuilder for UpfBuilder {
    fn drop_reasons(&self) -> &'static [&'static str] {
        UpfDrop::NAMES
    }

    fn ingress_ports(&self) -> Option<Vec<PortId>> {
        Some(vec![self.0.n3, self.0.n6])
    }

    fn owned_addresses(&self) -> Vec<IpAddr> {
        let v6 = self.0.n3_address6.map(IpAddr::from);
        [IpAddr::V4(Ipv4Addr::from(self.0.n3_address))].into_iter().chain(v6).collect()
    }

    fn wanted_neighbours(&self) -> Vec<IpAddr> {
        let s = self.0.sessions.load();
        let peers = s.iter().flat_map(|s| s.fars.iter().filter_map(|f| f.outer.map(|o| o.peer)));
        // Behind an N3 gateway, IPv4 gNBs are reached through it: it is the
        // next hop to keep resolved, not the (off-link) gNBs.
        let mut a: Vec<IpAddr> = peers.filter(|p| p.is_ipv6() || self.0.n3_gateway.is_none()).collect();
        a.push(Ipv4Addr::from(self.0.n6_gateway).into());
        a.extend(self.0.n3_gateway.map(|g| IpAddr::from(Ipv4Addr::from(g))));
        a.sort_unstable();
        a.dedup();
        a
    }

    fn shared_tables(&self) -> Vec<(&'static str, nfv_core::Occupancy)> {
        let sessions = self.0.sessions.load().len() as u64;
        vec![
            ("sessions", nfv_core::Occupancy { entries: sessions, capacity: 0 }),
            (
                "urrs",
                nfv_core::Occupancy { entries: self.0.usage.in_use() as u64, capacity: self.0.usage.capacity() as u64 },
            ),
        ]
    }

    fn build(&self, ctx: &BuildCtx<'_>) -> Box<dyn Stage> {
        Box::new(UpfStage::new(self.0.clone(), ctx))
    }

    fn offers(&self) -> Vec<nfv_core::plan::Offer> {
        nfv_core::plan::Offer::established(
            "sessions with a plain PDR and FAR: GTP-U decapsulation uplink, encapsulation downlink (IPv4), URR \
             usage counted for the reports",
            true,
            "sessions with QER metering, buffering or a URR volume threshold, IPv6, echo and error indications",
        )
    }

    fn live(&self) -> Option<&dyn Live> {
        Some(self)
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    fn control_task(&self) -> Option<Box<dyn ControlTask>> {
        let n4 = self.0.n4?;
        // Our node id: the N4 address, or the N3 one when listening on any.
        let node = if n4.ip().is_unspecified() { Ipv4Addr::from(self.0.n3_address) } else { *n4.ip() };
        match PfcpEndpoint::bind(std::net::SocketAddr::V4(n4), node) {
            Ok(mut e) => {
                e.serve_sessions(
                    self.0.sessions.clone(),
                    self.0.statics.clone(),
                    (Ipv4Addr::from(self.0.n3_address), self.0.n3_address6.map(std::net::Ipv6Addr::from)),
                    self.0.usage.clone(),
                );
                e.hear_buffering(self.0.buffering.clone());
                e.accept_only(self.0.smf.clone());
                e.watch_smfs(self.0.smf_watch);
                Some(Box::new(e))
            }
            Err(e) => {
                eprintln!("nfv: upf: cannot listen for PFCP on {n4}: {e}");
                None
            }
        }
    }
}

/// Static sessions change live in a UPF without N4 (a lab's); with N4
/// the PFCP endpoint owns the session table and its claims, and they do
/// not. Nothing else does.
impl Live for UpfBuilder {
    fn prepare(&self, next: &dyn StageBuilder, written: Written<'_>) -> Result<Option<Apply>, Vec<String>> {
        let next: &UpfBuilder = same(next)?;
        let refused = written.fixed_except(&["sessions"], |_| {});
        if !refused.is_empty() {
            return Err(refused);
        }
        if !written.changed("sessions") {
            return Ok(None);
        }
        if self.0.n4.is_some() {
            return Err(vec![
                "sessions: static sessions change live only without `n4` (the PFCP endpoint owns the session \
                 table; restart to apply)"
                    .into(),
            ]);
        }
        let (table, statics) = (self.0.sessions.clone(), next.0.statics.clone());
        Ok(Some(Box::new(move || {
            let version = table.load().version + 1;
            match Sessions::new(statics, version) {
                Ok(s) => {
                    let line = format!("sessions version {version}: {} static sessions", s.len());
                    table.publish(s);
                    line
                }
                // Checked when the file was loaded: not reached.
                Err(e) => format!("sessions not published: {e}"),
            }
        })))
    }

    fn version(&self) -> (&'static str, u64) {
        ("sessions", self.0.sessions.load().version)
    }

    fn summary(&self) -> String {
        let s = self.0.sessions.load();
        format!("sessions version {}: {} sessions", s.version, s.len())
    }

    fn reclaim(&self) {
        self.0.sessions.reclaim();
    }
}
