//! `l2-patch`: a cross-connect. Whatever arrives on one port of a pair
//! leaves on the other, unchanged, like VPP's `l2patch` or testpmd's `io`
//! forwarding between paired ports. Packets from ports in no pair go on
//! down the chain.

use std::sync::Arc;

use nfv_core::config::{Diagnostic, Params};
use nfv_core::{Batch, BuildCtx, BuildEnv, PortId, Stage, StageBuilder, StageCtx, StageFactory};
use serde::Deserialize;

/// `pairs = [["a", "b"], ...]`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PatchParams {
    pairs: Vec<[String; 2]>,
}

/// Registers `l2-patch`.
pub struct PatchFactory;

impl StageFactory for PatchFactory {
    fn kind(&self) -> &'static str {
        "l2-patch"
    }

    fn summary(&self) -> &'static str {
        "cross-connect port pairs: rx on one, tx on the other, unchanged (VPP l2patch, testpmd io)"
    }

    fn configure(&self, params: &Params<'_>, env: &BuildEnv<'_>) -> Result<Arc<dyn StageBuilder>, Vec<Diagnostic>> {
        let p: PatchParams = params.parse().map_err(|e| vec![e])?;
        let mut peer: Vec<Option<PortId>> = vec![None; env.ports.len()];
        let mut errors = Vec::new();
        for [a, b] in &p.pairs {
            match (env.port_id(a), env.port_id(b)) {
                (Some(x), Some(y)) if x != y && peer[x as usize].is_none() && peer[y as usize].is_none() => {
                    peer[x as usize] = Some(y);
                    peer[y as usize] = Some(x);
                }
                (Some(x), Some(y)) if x == y => {
                    errors.push(params.error("pairs", format!("port `{a}` is patched to itself"), "same port twice"))
                }
                (Some(_), Some(_)) => errors.push(
                    params
                        .error("pairs", "a port appears in two pairs", "port already patched")
                        .help("each port can be in one pair only"),
                ),
                _ => {
                    let missing = if env.port_id(a).is_none() { a } else { b };
                    errors.push(
                        params
                            .error("pairs", format!("no port named `{missing}`"), "unknown port")
                            .help(format!("known ports: {}", env.ports.join(", "))),
                    )
                }
            }
        }
        if p.pairs.is_empty() {
            errors.push(params.error("pairs", "no pairs given", "empty list").help("write pairs = [[\"a\", \"b\"]]"));
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(Arc::new(PatchBuilder { peer: peer.into() }))
    }
}

struct PatchBuilder {
    peer: Arc<[Option<PortId>]>,
}

impl StageBuilder for PatchBuilder {
    fn drop_reasons(&self) -> &'static [&'static str] {
        &[]
    }

    fn ingress_ports(&self) -> Option<Vec<PortId>> {
        Some(self.peer.iter().enumerate().filter(|(_, q)| q.is_some()).map(|(p, _)| p as PortId).collect())
    }

    fn reads_headers(&self) -> bool {
        false
    }

    fn build(&self, _ctx: &BuildCtx<'_>) -> Box<dyn Stage> {
        Box::new(Patch { peer: self.peer.clone() })
    }

    fn offers(&self) -> Vec<nfv_core::plan::Offer> {
        let pairs = self.peer.iter().enumerate().filter_map(|(p, q)| Some((p as PortId, (*q)?))).collect();
        nfv_core::plan::Offer::cross_connect("cross-connect ports (redirect to the peer)", pairs)
    }
}

/// The stage: a lookup of the peer by ingress port.
pub struct Patch {
    peer: Arc<[Option<PortId>]>,
}

impl Stage for Patch {
    fn process(&mut self, batch: &mut Batch, _ctx: &mut StageCtx<'_>) {
        for mut p in batch.iter_mut() {
            if let Some(Some(out)) = self.peer.get(p.meta().port as usize) {
                p.send_to(*out);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nfv_core::packet::VerdictKind;

    #[test]
    fn packets_leave_on_the_peer_port_unchanged() {
        let frame = etherparse::PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
            .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
            .udp(1000, 2000);
        let mut bytes = Vec::new();
        frame.write(&mut bytes, b"payload").unwrap();
        // Port 0 <-> port 2; the test harness receives everything on port 0.
        let mut stage = Patch { peer: vec![Some(2), None, Some(0)].into() };
        let out = crate::testutil::run(&mut stage, &[bytes.clone(), bytes.clone()]);
        assert_eq!(out.len(), 2);
        for (data, verdict) in out {
            assert_eq!(data, bytes);
            assert_eq!(verdict, VerdictKind::Out(2));
        }
        let mut unpaired = Patch { peer: vec![None, Some(2), Some(1)].into() };
        let out = crate::testutil::run(&mut unpaired, &[bytes.clone()]);
        assert_eq!(out[0].1, VerdictKind::Next, "a port in no pair goes on down the chain");
    }
}
