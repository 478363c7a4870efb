//! Placement: what of a configuration runs where. Each stage offers the
//! work it could hand below the AF_XDP workers ([`Offer`]: established
//! flows of a NAT or a load balancer, plain UPF sessions, known VTEP
//! unicast, ACL rules as a filter), and the planner decides per stage and
//! per offer, with a reason, from the ports' hardware profiles
//! ([`crate::hwprofile`]):
//!
//! - XDP (the driver's hook, or generic XDP on a device without one) when
//!   every stage before it in the chain is wholly placed below too: a
//!   packet forwarded in XDP never meets the stages the workers run, so
//!   nothing may be placed below a stage whose decision it needs;
//! - the NIC for what a device does in its own silicon (ntuple drop rules
//!   for an ACL's denies);
//! - the workers otherwise, and always for first packets and everything
//!   the offers leave out.
//!
//! Ports polled by several workers get symmetric RSS where a stateful
//! stage needs both directions of a flow on one worker and the device can
//! hash symmetrically; otherwise the stage's own handoff does it.

use crate::config::{Config, PortKind};
use crate::graph::End;
use crate::hwprofile::{Profile, SymmetricRss};
use crate::offload::PortProgram;

/// Where work runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Place {
    /// The NIC's own silicon.
    Nic,
    /// An XDP program in the driver (or generic XDP).
    Xdp,
    /// The AF_XDP workers.
    Worker,
}

/// Work a stage could hand below the workers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Offer {
    /// What (`established sessions`).
    pub what: String,
    /// The lowest place it can run.
    pub lowest: Place,
    /// True when, placed below, it decides every packet the stage would
    /// send on (nothing of its traffic still needs the workers' copy):
    /// only then may a later stage be placed below too.
    pub complete: bool,
    /// The stage keeps per-flow state (both directions on one worker
    /// matter when it runs in the workers).
    pub stateful: bool,
    /// What stays with the workers, said once.
    pub leaves: String,
    /// A cross-connect's pairs (ingress, egress): where the program sends
    /// what arrives on each port.
    pub cross_connect: Vec<(crate::packet::PortId, crate::packet::PortId)>,
}

impl Offer {
    /// Work that decides every packet it forwards, below the workers.
    pub fn complete(what: &str, lowest: Place, leaves: &str) -> Vec<Offer> {
        vec![Offer {
            what: what.into(),
            lowest,
            complete: true,
            stateful: false,
            leaves: leaves.into(),
            cross_connect: Vec::new(),
        }]
    }

    /// The established flows of a stateful stage: forwarded below, first
    /// packets and the rest (`leaves`) in the workers.
    pub fn established(what: &str, stateful: bool, leaves: &str) -> Vec<Offer> {
        vec![Offer {
            what: what.into(),
            lowest: Place::Xdp,
            complete: false,
            stateful,
            leaves: leaves.into(),
            cross_connect: Vec::new(),
        }]
    }

    /// A cross-connect of `pairs` (ingress, egress), complete below.
    pub fn cross_connect(what: &str, pairs: Vec<(crate::packet::PortId, crate::packet::PortId)>) -> Vec<Offer> {
        let mut v = Self::complete(what, Place::Xdp, "nothing");
        v[0].cross_connect = pairs;
        v
    }
}

/// One decision of the plan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    /// `chain/stage`.
    pub stage: String,
    /// The offer (`all of it` for a stage that offers nothing).
    pub what: String,
    /// Where it runs.
    pub place: Place,
    /// Why.
    pub reason: String,
}

/// What the planner decided.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Per port: its profile and what its device is asked to do.
    pub ports: Vec<(String, String)>,
    /// Per stage and offer.
    pub decisions: Vec<Decision>,
    /// Per port ([`crate::packet::PortId`]): what nfv's XDP program does
    /// there (`None`: not a device), and why that.
    pub programs: Vec<Option<(PortProgram, String)>>,
    /// Stage instances ([`crate::config::StageSpec::node`]) whose
    /// established flows the workers install in the XDP program.
    pub offloaded: Vec<usize>,
}

fn place_name(p: Place) -> &'static str {
    match p {
        Place::Nic => "nic",
        Place::Xdp => "xdp",
        Place::Worker => "worker",
    }
}

/// The profile a port's device is planned with: its own, or, for a port
/// without one, generic XDP (what any device does).
fn profile_of(cfg: &Config, port: usize) -> Option<Profile> {
    let p = &cfg.ports[port];
    match (&p.kind, &p.profile) {
        (PortKind::AfXdp(_), Some(h)) => Some((**h).clone()),
        (PortKind::AfXdp(_), None) => Profile::resolve("xdp-generic", None).ok(),
        _ => None,
    }
}

/// Another way into a chain: below only if every way is.
fn join(entry: &mut Option<Result<(), String>>, way: Result<(), String>) {
    *entry = Some(match (entry.take(), way) {
        (Some(Err(e)), _) | (_, Err(e)) => Err(e),
        _ => Ok(()),
    });
}

/// Plans `cfg`.
pub fn plan(cfg: &Config) -> Plan {
    let mut plan = Plan::default();
    let profiles: Vec<Option<Profile>> = (0..cfg.ports.len()).map(|p| profile_of(cfg, p)).collect();
    // Ports: their devices, and symmetric hashing where it helps.
    for (i, p) in cfg.ports.iter().enumerate() {
        let Some(prof) = &profiles[i] else {
            plan.ports.push((p.name.clone(), "not a device (no XDP hook): everything in the workers".into()));
            continue;
        };
        let mode = if prof.af_xdp.native_xdp { "native XDP" } else { "generic XDP" };
        let declared = if p.profile.is_some() { "" } else { " (no profile: what any device does)" };
        let pollers = cfg.workers.iter().filter(|w| w.rx.iter().any(|(pid, _)| *pid as usize == i)).count();
        let stateful = cfg
            .workers
            .iter()
            .filter(|w| w.rx.iter().any(|(pid, _)| *pid as usize == i))
            .any(|w| cfg.reachable_stages(w.chain).iter().any(|s| s.builder.offers().iter().any(|o| o.stateful)));
        let rss = match (pollers > 1 && stateful, prof.limits.symmetric_rss) {
            (false, _) => String::new(),
            (true, SymmetricRss::None) => {
                "; RSS not symmetric: the stages' handoff keeps both directions of a flow on one worker".into()
            }
            (true, SymmetricRss::Always) => {
                "; RSS symmetric already: both directions of a flow reach one worker".into()
            }
            (true, s) => format!(
                "; symmetric RSS asked (ethtool -X {} input_xfrm {}): both directions of a flow reach one worker",
                p.name,
                if s == SymmetricRss::Xor { "symmetric-xor" } else { "symmetric-or-xor" }
            ),
        };
        let steer = match &p.kind {
            PortKind::AfXdp(a) => match (a.steer, prof.steering.gtpu_teid, prof.steering.vxlan_vni) {
                (Some(crate::config::SteerOn::GtpuTeid), t, _) => format!(
                    "; steers on the GTP-U TEID ({}): each session's uplink on one queue",
                    match t {
                        Some(crate::hwprofile::TeidSteering::DdpPackage) => "RSS with the Comms DDP package",
                        Some(crate::hwprofile::TeidSteering::FlexParser) => "the flex parser",
                        _ => "built in",
                    }
                ),
                (Some(crate::config::SteerOn::VxlanVni), _, v) => format!(
                    "; steers on the VXLAN VNI ({}): each bridge domain on one queue",
                    if v == Some(crate::hwprofile::VniSteering::Ntuple) { "ntuple rules" } else { "tc flower rules" }
                ),
                (None, ..) => String::new(),
            },
            _ => String::new(),
        };
        plan.ports.push((p.name.clone(), format!("profile `{}`{declared}, {mode}{rss}{steer}", prof.identity.name)));
    }
    // Stages, chain by chain, sources before the chains they send to: a
    // chain may go below only where every way into it is below.
    let n = cfg.chains.len();
    let mut entry: Vec<Option<Result<(), String>>> = vec![None; n];
    for (c, chain) in cfg.chains.iter().enumerate() {
        let fed: Vec<usize> =
            cfg.workers.iter().filter(|w| w.chain == c).flat_map(|w| w.rx.iter().map(|(p, _)| *p as usize)).collect();
        if cfg.run.offload == crate::config::OffloadMode::Off {
            entry[c] = Some(Err("`[run] offload = \"off\"`".into()));
        } else if !fed.is_empty() {
            entry[c] = Some(if fed.iter().all(|&p| profiles[p].is_some()) {
                Ok(())
            } else {
                Err(format!("chain `{}` is fed by a port without an XDP hook", chain.name))
            });
        }
    }
    let devices: Vec<&Profile> = profiles.iter().flatten().collect();
    let successors: Vec<Vec<crate::packet::ChainId>> =
        (0..n).map(|c| cfg.successors(c).into_iter().map(|t| t as crate::packet::ChainId).collect()).collect();
    for c in crate::graph::topological(&successors).into_iter().map(usize::from) {
        let chain = &cfg.chains[c];
        let mut below_ok = entry[c].clone().unwrap_or_else(|| Err(format!("no port feeds chain `{}`", chain.name)));
        for s in &chain.stages {
            let at = format!("{}/{}", chain.name, s.name);
            let offers = s.builder.offers();
            if offers.is_empty() {
                plan.decisions.push(Decision {
                    stage: at.clone(),
                    what: "all of it".into(),
                    place: Place::Worker,
                    reason: format!("`{}` offers nothing below the workers", s.kind),
                });
                if below_ok.is_ok() {
                    below_ok = Err(format!("stage `{at}` before it runs in the workers"));
                }
            } else {
                let mut all_complete = true;
                for o in &offers {
                    let (place, reason) = match &below_ok {
                        Err(why) => (Place::Worker, why.clone()),
                        Ok(()) if o.lowest == Place::Worker => {
                            (Place::Worker, format!("the workers keep {}", o.leaves))
                        }
                        Ok(()) if o.lowest == Place::Nic && devices.iter().all(|d| d.steering.ntuple) => {
                            (Place::Nic, "every device has ntuple rules".to_string())
                        }
                        Ok(()) => {
                            let generic = devices.iter().any(|d| !d.af_xdp.native_xdp);
                            let how =
                                if generic { "generic XDP (a device without a driver hook)" } else { "native XDP" };
                            (Place::Xdp, format!("{how}; the workers keep {}", o.leaves))
                        }
                    };
                    all_complete &= o.complete && place != Place::Worker;
                    plan.decisions.push(Decision { stage: at.clone(), what: o.what.clone(), place, reason });
                }
                if below_ok.is_ok() && !all_complete {
                    below_ok = Err(format!("stage `{at}` before it still needs the workers for some of its packets"));
                }
            }
            // The chains this stage sends to are entered from here.
            for (t, _) in s.builder.branches() {
                join(
                    &mut entry[t as usize],
                    below_ok.clone().map_err(|_| format!("it is entered from `{at}`, which needs the workers")),
                );
            }
        }
        if let End::Chain(t) = chain.then {
            let from =
                below_ok.map_err(|_| format!("it is entered from chain `{}`, which needs the workers", chain.name));
            join(&mut entry[t as usize], from);
        }
    }
    for (i, p) in cfg.ports.iter().enumerate() {
        let program = profiles[i].as_ref().map(|_| {
            let chains: Vec<usize> = cfg
                .workers
                .iter()
                .filter(|w| w.rx.iter().any(|(pid, _)| *pid as usize == i))
                .map(|w| w.chain)
                .collect();
            let plugin = matches!(&p.kind, crate::config::PortKind::AfXdp(a) if a.xsk_map_socket.is_some());
            match chains.first() {
                _ if plugin => (
                    PortProgram::NOTHING,
                    "the AF_XDP device plugin's program (its XSK map by `xsk-map-socket`): every packet goes up"
                        .to_string(),
                ),
                None => (PortProgram::NOTHING, format!("no worker polls `{}`", p.name)),
                Some(&c) if chains.iter().any(|&o| o != c) => {
                    (PortProgram::NOTHING, "its workers run different chains".to_string())
                }
                Some(&c) => {
                    let (mut prog, why) = program_for(cfg, c, &plan.decisions, &mut plan.offloaded);
                    if prog.patch {
                        // This port's peer in the chain's cross-connect.
                        prog.patch_to = cfg.chains[c]
                            .stages
                            .iter()
                            .flat_map(|s| s.builder.offers())
                            .flat_map(|o| o.cross_connect)
                            .find(|&(from, _)| from as usize == i)
                            .map(|(_, to)| to);
                        prog.patch = prog.patch_to.is_some();
                    }
                    (prog, why)
                }
            }
        });
        plan.programs.push(program);
    }
    plan.offloaded.sort_unstable();
    plan.offloaded.dedup();
    plan
}

/// What nfv's XDP program does for packets entering chain `c`: the
/// stages the plan placed in XDP, in chain order, as far as the program
/// runs them (its order: an ACL's filter, TTL, then one way out: the
/// established flows, or a MAC swap back out of the ingress port).
/// Without a way out only the filter runs below (a packet going up must
/// go up as it came), and a stage the program does not run yet ends the
/// part done below before it.
fn program_for(cfg: &Config, c: usize, decisions: &[Decision], offloaded: &mut Vec<usize>) -> (PortProgram, String) {
    let chain = &cfg.chains[c];
    let mut prog = PortProgram::NOTHING;
    let mut flows_from = Vec::new();
    let mut stopped = None;
    let last = chain.stages.len().saturating_sub(1);
    for (i, s) in chain.stages.iter().enumerate() {
        let at = format!("{}/{}", chain.name, s.name);
        if !decisions.iter().any(|d| d.stage == at && d.place == Place::Xdp) {
            stopped = Some(format!("`{at}` runs in the workers"));
            break;
        }
        let complete = s.builder.offers().iter().all(|o| o.complete);
        match s.kind.as_str() {
            "acl" if complete && prog == PortProgram::NOTHING => {
                prog.acl = true;
                flows_from.push(s.node);
            }
            "acl" if !complete => {
                stopped = Some(format!("`{at}` keeps permit-reflect flows in the workers"));
                break;
            }
            "ttl-decrement" if !prog.flows && !prog.macswap => prog.ttl = true,
            "macswap" if !prog.flows => prog.macswap = true,
            "l2-patch" if !prog.flows && !prog.macswap && !prog.vtep => {
                prog.patch = true;
                stopped = None;
                break;
            }
            "nat44" | "lb" | "vtep" | "upf" if i < last || matches!(chain.then, End::Chain(_)) => {
                stopped = Some(format!("what comes after `{at}` must see its packets"));
                break;
            }
            "vtep" | "upf"
                if prog == PortProgram::NOTHING || prog == (PortProgram { acl: true, ..PortProgram::NOTHING }) =>
            {
                if s.kind == "vtep" {
                    prog.vtep = true;
                } else {
                    prog.upf = true;
                }
                flows_from.push(s.node);
            }
            "nat44" | "lb" if !prog.macswap => {
                prog.flows = true;
                flows_from.push(s.node);
            }
            k => {
                stopped = Some(format!("nfv's XDP program does not run `{k}` here yet"));
                break;
            }
        }
        if prog.flows || prog.vtep || prog.upf {
            // A flow's packets leave by the flow's way: nothing after it
            // meets them.
            stopped = None;
            break;
        }
    }
    prog.back = prog.macswap && !prog.flows && stopped.is_none() && chain.then == End::Ingress;
    if !prog.flows && !prog.back && !prog.vtep && !prog.upf && !prog.patch {
        let why = stopped.unwrap_or_else(|| format!("chain `{}` ends where the program cannot send", chain.name));
        if prog.acl {
            // A filter needs no way out: what it permits goes up as it
            // came, and the workers' ACL decides it again.
            offloaded.extend(flows_from);
            return (PortProgram { acl: true, ..PortProgram::NOTHING }, format!("permitted packets go up: {why}"));
        }
        return (PortProgram::NOTHING, format!("every packet goes up: {why}"));
    }
    offloaded.extend(flows_from);
    let why = match stopped {
        Some(w) => format!("then up: {w}"),
        None => "the rest goes up".into(),
    };
    (prog, why)
}

impl Plan {
    /// The plan as `nfv plan` prints it.
    pub fn render(&self) -> String {
        let mut out = String::from("ports\n");
        for (name, what) in &self.ports {
            out += &format!("  {name:<10} {what}\n");
        }
        out += "stages\n";
        for d in &self.decisions {
            out += &format!("  {:<22} {:<7} {}: {}\n", d.stage, place_name(d.place), d.what, d.reason);
        }
        if self.programs.iter().any(Option::is_some) {
            out += "xdp program\n";
            for ((name, _), p) in self.ports.iter().zip(&self.programs) {
                if let Some((prog, why)) = p {
                    out += &format!("  {name:<10} {}; {why}\n", prog.describe());
                }
            }
        }
        out
    }
}
