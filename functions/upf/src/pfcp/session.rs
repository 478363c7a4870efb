//! A PFCP session as the SMF wrote it (TS 29.244 5.2): PDRs naming their
//! FAR, QERs and URRs by id, and those rules; Create, Update and Remove
//! IEs applied to it (7.5.2, 7.5.4); the data path's flattened
//! [`Session`] derived from it after every change.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use rs_pfcp::ie::apply_action::ApplyAction;
use rs_pfcp::ie::cause::CauseValue;
use rs_pfcp::ie::created_pdr::CreatedPdr;
use rs_pfcp::ie::destination_interface::Interface as PfcpInterface;
use rs_pfcp::ie::f_teid::Fteid;
use rs_pfcp::ie::node_id::NodeId;
use rs_pfcp::ie::source_interface::SourceInterfaceValue;
use rs_pfcp::ie::{IeIterator, IeType};

use crate::rules::{Action, Far, Interface, Limit, NO_BUCKET, OuterHeader, Pdi, Pdr, Session};
use crate::usage::Usage;

use super::urr::Urr;

/// Why a request is refused: its cause (TS 29.244 Table 8.2.1-1).
pub type Refusal = CauseValue;

/// A PDR and the ids of the rules it names.
#[derive(Clone, Debug)]
pub struct N4Pdr {
    /// The rule (its limit and URR slots filled at derivation).
    pub pdr: Pdr,
    /// Its QERs' ids (the first one that exists governs).
    pub qers: Vec<u32>,
    /// Its URRs' ids.
    pub urrs: Vec<u32>,
}

/// A QER as the data path uses it: its id, each direction's gate and
/// rate, the QFI it marks (TS 29.244 5.4.5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Qer {
    /// QER ID.
    pub id: u32,
    /// Gate and MBR uplink.
    pub uplink: Limit,
    /// Gate and MBR downlink.
    pub downlink: Limit,
    /// QFI to mark downlink.
    pub qfi: Option<u8>,
}

/// One session on the N4 side.
#[derive(Clone, Debug)]
pub struct N4Session {
    /// The SMF's SEID (in every message we send about it).
    pub cp_seid: u64,
    /// The SMF's node, whose association it belongs to.
    pub node: NodeId,
    /// Where its Session Reports go: port 8805 of the SMF's F-SEID
    /// address (TS 29.244 4.2.2).
    pub smf: SocketAddr,
    /// Rules.
    pub pdrs: Vec<N4Pdr>,
    /// FARs.
    pub fars: Vec<Far>,
    /// QERs.
    pub qers: Vec<Qer>,
    /// URRs, with their measurement state.
    pub urrs: Vec<Urr>,
    /// A Downlink Data Report went since the last modification (one per
    /// buffering episode, however many workers held a first packet).
    pub buffering_reported: bool,
}

/// TEIDs we hand out when the SMF asks CHOOSE (TS 29.244 5.5.3).
#[derive(Debug)]
pub struct TeidPool {
    /// Our N3 address, in the F-TEIDs we report.
    pub n3: Ipv4Addr,
    /// Our N3 address over IPv6, if the underlay has one.
    pub n3_6: Option<Ipv6Addr>,
    next: u32,
}

impl TeidPool {
    /// TEIDs from 0x80000000, above those a configuration would use.
    pub fn new(n3: Ipv4Addr) -> Self {
        Self { n3, n3_6: None, next: 0x8000_0000 }
    }

    fn take(&mut self) -> u32 {
        let t = self.next;
        self.next = self.next.wrapping_add(1).max(0x8000_0000);
        t
    }
}

/// A grouped IE's payload decoded by `f`, or the cause for an IE that
/// does not decode (TS 29.244 7.2.3.3: mandatory IE incorrect).
fn decode<T>(payload: &[u8], f: impl Fn(&[u8]) -> Result<T, rs_pfcp::error::PfcpError>) -> Result<T, Refusal> {
    f(payload).map_err(|_| CauseValue::MandatoryIeIncorrect)
}

/// The rule id inside a grouped Remove PDR/FAR/QER/URR or Query URR IE
/// (7.5.4.6 et seq.: one PDR ID (8.2.36, 2 octets), FAR ID (8.2.74), QER
/// ID (8.2.75) or URR ID (8.2.54, 4 octets) IE). Decoded here: `rs-pfcp`
/// 0.5 reads these groups' payload as the bare id.
pub fn rule_id(group: &[u8], id_type: IeType) -> Result<u32, Refusal> {
    let ie = IeIterator::new(group)
        .filter_map(Result::ok)
        .find(|ie| ie.ie_type == id_type)
        .ok_or(CauseValue::MandatoryIeMissing)?;
    match ie.payload.as_slice() {
        [a, b] if id_type == IeType::PdrId => Ok(u16::from_be_bytes([*a, *b]) as u32),
        [a, b, c, d, ..] if id_type != IeType::PdrId => Ok(u32::from_be_bytes([*a, *b, *c, *d])),
        _ => Err(CauseValue::MandatoryIeIncorrect),
    }
}

/// Whether an Update FAR's Update Forwarding Parameters carry
/// PFCPSMReq-Flags with SNDEM (8.2.58: send End Marker packets toward the
/// old F-TEID). Read here: `rs-pfcp` 0.5 does not decode that IE there.
fn sends_end_marker(update_far: &[u8]) -> bool {
    const UPDATE_FORWARDING_PARAMETERS: u16 = 11;
    const PFCPSMREQ_FLAGS: u16 = 49;
    const SNDEM: u8 = 0x02;
    let child = |group: &[u8], t: u16| IeIterator::new(group).filter_map(Result::ok).find(|ie| ie.raw_type() == t);
    child(update_far, UPDATE_FORWARDING_PARAMETERS)
        .and_then(|ufp| child(&ufp.payload, PFCPSMREQ_FLAGS))
        .is_some_and(|f| f.payload.first().is_some_and(|b| b & SNDEM != 0))
}

/// Payloads of a list of IEs a modification may carry or not.
fn payloads(v: &Option<Vec<rs_pfcp::ie::Ie>>) -> impl Iterator<Item = &[u8]> {
    v.iter().flatten().map(|ie| ie.payload.as_slice())
}

/// The rule of a PDI (8.2.x): source interface, F-TEID (a TEID chosen from
/// `teids` when it asks CHOOSE, reported in `out` for `pdr_id`), UE
/// address, SDF filters, QFI.
fn pdi_of(
    p: &rs_pfcp::ie::pdi::Pdi,
    pdr_id: rs_pfcp::ie::pdr_id::PdrId,
    teids: &mut TeidPool,
    out: &mut Outcome,
) -> Result<Pdi, Refusal> {
    let source = match p.source_interface.value {
        SourceInterfaceValue::Access => Interface::Access,
        SourceInterfaceValue::Core => Interface::Core,
        _ => return Err(CauseValue::RequestRejected),
    };
    let teid = match &p.f_teid {
        Some(f) if f.ch => {
            // 5.5.3: the addresses of the families asked for that we have
            // (IPv4 when asked for neither we have); PDRs giving one
            // CHOOSE ID get one F-TEID.
            let v6 = teids.n3_6.filter(|_| f.v6);
            let v4 = (f.v4 || v6.is_none()).then_some(teids.n3);
            let shared = out.chosen.iter().find(|(id, _)| f.chid && *id == f.choose_id).map(|&(_, t)| t);
            let teid = shared.unwrap_or_else(|| teids.take());
            if f.chid && shared.is_none() {
                out.chosen.push((f.choose_id, teid));
            }
            let mut c = CreatedPdr::new(pdr_id);
            c.f_teid = Some(Fteid::new(v4.is_some(), v6.is_some(), teid, v4, v6, 0));
            out.created.push(c);
            Some(teid)
        }
        Some(f) => Some(f.teid.0),
        None => None,
    };
    let sdf = p
        .sdf_filters
        .iter()
        .map(|f| crate::sdf::parse(&f.flow_description))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| CauseValue::MandatoryIeIncorrect)?;
    Ok(Pdi {
        source: Some(source),
        teid,
        // In one UE IP Address IE or two (one per family).
        ue_ip: p.ue_ip_addresses.iter().find_map(|u| u.ipv4_address).map(u32::from),
        // An IPv6 PDU session: the UE's /64 (TS 23.501 5.8.2.2.3).
        ue_ip6: p.ue_ip_addresses.iter().find_map(|u| u.ipv6_address).map(|a| (a.to_bits() >> 64) as u64),
        sdf,
        qfi: p.qfis.first().map(|q| q.value()),
    })
}

/// A Create PDR (7.5.2.2).
fn create_pdr(payload: &[u8], teids: &mut TeidPool, out: &mut Outcome) -> Result<N4Pdr, Refusal> {
    let p = decode(payload, rs_pfcp::ie::create_pdr::CreatePdr::unmarshal)?;
    let pdi = pdi_of(&p.pdi, p.pdr_id, teids, out)?;
    let far = p.far_id.as_ref().ok_or(CauseValue::MandatoryIeMissing)?.value;
    Ok(N4Pdr {
        pdr: Pdr {
            id: p.pdr_id.value,
            precedence: p.precedence.value,
            pdi,
            remove_outer_header: p.outer_header_removal.is_some(),
            far,
            limit: None,
            bucket: NO_BUCKET,
            urrs: Vec::new(),
        },
        qers: p.qer_ids.iter().map(|q| q.value).collect(),
        urrs: p.urr_ids.iter().map(|u| u.id).collect(),
    })
}

/// A Create QER (7.5.2.5): Gate Status (8.2.7, open when absent), MBR
/// (8.2.8, kbit/s; 0 or absent: none), QFI.
fn create_qer(payload: &[u8]) -> Result<Qer, Refusal> {
    let q = decode(payload, rs_pfcp::ie::create_qer::CreateQer::unmarshal)?;
    let mut qer = Qer {
        id: q.qer_id.value,
        uplink: Limit { open: true, bytes_per_sec: 0 },
        downlink: Limit { open: true, bytes_per_sec: 0 },
        qfi: q.qfi.map(|f| f.value()),
    };
    set_gate_and_rate(&mut qer, q.gate_status.as_ref(), q.mbr.as_ref());
    Ok(qer)
}

/// The gate and MBR of a Create or Update QER, where given.
fn set_gate_and_rate(
    qer: &mut Qer,
    gate: Option<&rs_pfcp::ie::gate_status::GateStatus>,
    mbr: Option<&rs_pfcp::ie::mbr::Mbr>,
) {
    use rs_pfcp::ie::gate_status::GateStatusValue;
    if let Some(g) = gate {
        qer.uplink.open = !matches!(g.uplink_gate, GateStatusValue::Closed);
        qer.downlink.open = !matches!(g.downlink_gate, GateStatusValue::Closed);
    }
    if let Some(m) = mbr {
        qer.uplink.bytes_per_sec = m.uplink * 1000 / 8;
        qer.downlink.bytes_per_sec = m.downlink * 1000 / 8;
    }
}

/// A Create FAR (7.5.2.3).
fn create_far(payload: &[u8]) -> Result<Far, Refusal> {
    let f = decode(payload, rs_pfcp::ie::create_far::CreateFar::unmarshal)?;
    let fp = f.forwarding_parameters.as_ref();
    Ok(Far {
        id: f.far_id.value,
        action: action_of(&f.apply_action),
        destination: fp.map_or(Interface::Core, |p| interface_of(p.destination_interface.interface)),
        outer: fp.and_then(|p| p.outer_header_creation.as_ref()).and_then(outer_of),
        qfi: None,
        notify: f.apply_action.contains(ApplyAction::NOCP),
    })
}

/// Apply Action (8.2.26): forward, buffer, else drop.
fn action_of(a: &ApplyAction) -> Action {
    if a.contains(ApplyAction::FORW) {
        Action::Forward
    } else if a.contains(ApplyAction::BUFF) {
        Action::Buffer
    } else {
        Action::Drop
    }
}

/// Destination Interface (8.2.24): Access toward gNBs, anything else Core.
fn interface_of(i: PfcpInterface) -> Interface {
    if i == PfcpInterface::Access { Interface::Access } else { Interface::Core }
}

/// Outer Header Creation (8.2.56) of a GTP-U/UDP/IPv4 or GTP-U/UDP/IPv6
/// tunnel (IPv4 when both are given).
fn outer_of(o: &rs_pfcp::ie::outer_header_creation::OuterHeaderCreation) -> Option<OuterHeader> {
    let peer = o.ipv4_address.map(IpAddr::V4).or(o.ipv6_address.map(IpAddr::V6))?;
    Some(OuterHeader { teid: o.teid?.0, peer })
}

/// What a change did beyond the rules: the Created PDRs to report, the
/// URRs it removed (their final reports are due), the usage counter
/// slots it took (given back if the change is refused).
#[derive(Debug, Default)]
pub struct Outcome {
    /// Created PDRs with the F-TEIDs we chose.
    pub created: Vec<CreatedPdr>,
    /// URRs removed, with their last measurement state.
    pub removed_urrs: Vec<Urr>,
    /// Counter slots taken by new URRs.
    pub slots_taken: Vec<u32>,
    /// TEIDs chosen in this request, by CHOOSE ID.
    pub chosen: Vec<(u8, u32)>,
    /// Tunnels switched away from with End Markers asked for.
    pub end_markers: Vec<OuterHeader>,
}

impl Outcome {
    /// Gives back the slots a refused change took.
    pub fn undo(&self, usage: &Usage) {
        for &s in &self.slots_taken {
            usage.free(s);
        }
    }
}

impl N4Session {
    /// A new session from an establishment request's rules (7.5.2).
    pub fn establish(
        req: &rs_pfcp::message::session_establishment_request::SessionEstablishmentRequest,
        cp_seid: u64,
        node: NodeId,
        smf: SocketAddr,
        teids: &mut TeidPool,
        usage: &Usage,
        out: &mut Outcome,
    ) -> Result<Self, Refusal> {
        let mut s = Self {
            cp_seid,
            node,
            smf,
            pdrs: Vec::new(),
            fars: Vec::new(),
            qers: Vec::new(),
            urrs: Vec::new(),
            buffering_reported: false,
        };
        for ie in &req.create_fars {
            s.add_far(create_far(&ie.payload)?)?;
        }
        for ie in &req.create_qers {
            s.add_qer(create_qer(&ie.payload)?)?;
        }
        for ie in &req.create_urrs {
            s.add_urr(&ie.payload, usage, out)?;
        }
        for ie in &req.create_pdrs {
            s.add_pdr(create_pdr(&ie.payload, teids, out)?)?;
        }
        Ok(s)
    }

    /// The session with a modification request's changes (7.5.4):
    /// removals first, then creations, then updates, so that a new PDR
    /// may name a QER or URR the same request creates.
    pub fn modify(
        &self,
        req: &rs_pfcp::message::session_modification_request::SessionModificationRequest,
        teids: &mut TeidPool,
        usage: &Usage,
        out: &mut Outcome,
    ) -> Result<Self, Refusal> {
        let mut s = self.clone();
        // A new buffering episode may start when FARs change.
        let fars_change = [&req.create_fars, &req.update_fars, &req.remove_fars].iter().any(|v| v.is_some());
        s.buffering_reported &= !fars_change;
        for p in payloads(&req.remove_pdrs) {
            let id = rule_id(p, IeType::PdrId)?;
            s.pdrs.retain(|x| x.pdr.id as u32 != id);
        }
        for p in payloads(&req.remove_fars) {
            let id = rule_id(p, IeType::FarId)?;
            s.fars.retain(|x| x.id != id);
        }
        for p in payloads(&req.remove_qers) {
            let id = rule_id(p, IeType::QerId)?;
            s.qers.retain(|x| x.id != id);
        }
        for p in payloads(&req.remove_urrs) {
            let id = rule_id(p, IeType::UrrId)?;
            if let Some(i) = s.urrs.iter().position(|u| u.id == id) {
                out.removed_urrs.push(s.urrs.remove(i));
            }
        }
        for p in payloads(&req.create_fars) {
            s.add_far(create_far(p)?)?;
        }
        for p in payloads(&req.create_qers) {
            s.add_qer(create_qer(p)?)?;
        }
        for p in payloads(&req.create_urrs) {
            s.add_urr(p, usage, out)?;
        }
        for p in payloads(&req.create_pdrs) {
            s.add_pdr(create_pdr(p, teids, out)?)?;
        }
        for p in payloads(&req.update_fars) {
            s.update_far(p, out)?;
        }
        for p in payloads(&req.update_qers) {
            let u = decode(p, rs_pfcp::ie::update_qer::UpdateQer::unmarshal)?;
            let qer = s
                .qers
                .iter_mut()
                .find(|q| q.id == u.qer_id.value)
                .ok_or(CauseValue::RuleCreationModificationFailure)?;
            set_gate_and_rate(qer, u.gate_status.as_ref(), u.mbr.as_ref());
        }
        for p in payloads(&req.update_urrs) {
            let u = decode(p, rs_pfcp::ie::update_urr::UpdateUrr::unmarshal)?;
            let urr =
                s.urrs.iter_mut().find(|x| x.id == u.urr_id.id).ok_or(CauseValue::RuleCreationModificationFailure)?;
            urr.update(&u);
        }
        for p in payloads(&req.update_pdrs) {
            s.update_pdr(p, teids, out)?;
        }
        Ok(s)
    }

    fn add_far(&mut self, far: Far) -> Result<(), Refusal> {
        // 7.5.2.2 / 7.5.4.2: a rule id already in the session is an error.
        if self.fars.iter().any(|f| f.id == far.id) {
            return Err(CauseValue::RuleCreationModificationFailure);
        }
        self.fars.push(far);
        Ok(())
    }

    fn add_qer(&mut self, qer: Qer) -> Result<(), Refusal> {
        if self.qers.iter().any(|q| q.id == qer.id) {
            return Err(CauseValue::RuleCreationModificationFailure);
        }
        self.qers.push(qer);
        Ok(())
    }

    fn add_urr(&mut self, payload: &[u8], usage: &Usage, out: &mut Outcome) -> Result<(), Refusal> {
        let c = decode(payload, rs_pfcp::ie::create_urr::CreateUrr::unmarshal)?;
        if self.urrs.iter().any(|u| u.id == c.urr_id.id) {
            return Err(CauseValue::RuleCreationModificationFailure);
        }
        let slot = usage.allocate().ok_or(CauseValue::NoResourcesAvailable)?;
        out.slots_taken.push(slot);
        self.urrs.push(Urr::new(&c, slot, usage.read(slot)));
        Ok(())
    }

    fn add_pdr(&mut self, pdr: N4Pdr) -> Result<(), Refusal> {
        if self.pdrs.iter().any(|p| p.pdr.id == pdr.pdr.id) {
            return Err(CauseValue::RuleCreationModificationFailure);
        }
        self.pdrs.push(pdr);
        Ok(())
    }

    /// Update FAR (7.5.4.3): apply action, destination, outer header
    /// creation (a handover moves the downlink tunnel).
    fn update_far(&mut self, payload: &[u8], out: &mut Outcome) -> Result<(), Refusal> {
        let u = decode(payload, rs_pfcp::ie::update_far::UpdateFar::unmarshal)?;
        // An update of a rule the session lacks fails the request.
        let far =
            self.fars.iter_mut().find(|f| f.id == u.far_id.value).ok_or(CauseValue::RuleCreationModificationFailure)?;
        if let Some(a) = &u.apply_action {
            far.action = action_of(a);
            far.notify = a.contains(ApplyAction::NOCP);
        }
        if let Some(p) = &u.update_forwarding_parameters {
            if let Some(d) = &p.destination_interface {
                far.destination = interface_of(d.interface);
            }
            if let Some(o) = &p.outer_header_creation {
                let old = far.outer;
                far.outer = outer_of(o);
                // 8.2.58 SNDEM: End Markers into the tunnel left.
                if let Some(old) = old.filter(|o| Some(*o) != far.outer && sends_end_marker(payload)) {
                    out.end_markers.push(old);
                }
            }
        }
        Ok(())
    }

    /// Update PDR (7.5.4.2): precedence, PDI, outer header removal, FAR,
    /// QERs and URRs replaced where given.
    fn update_pdr(&mut self, payload: &[u8], teids: &mut TeidPool, out: &mut Outcome) -> Result<(), Refusal> {
        let u = decode(payload, rs_pfcp::ie::update_pdr::UpdatePdr::unmarshal)?;
        let pdr = self
            .pdrs
            .iter_mut()
            .find(|p| p.pdr.id == u.pdr_id.value)
            .ok_or(CauseValue::RuleCreationModificationFailure)?;
        if let Some(p) = &u.precedence {
            pdr.pdr.precedence = p.value;
        }
        if let Some(pdi) = &u.pdi {
            pdr.pdr.pdi = pdi_of(pdi, u.pdr_id, teids, out)?;
        }
        if let Some(o) = &u.outer_header_removal {
            pdr.pdr.remove_outer_header = o.description == 0 || o.description == 1 || o.description == 6;
        }
        if let Some(f) = &u.far_id {
            pdr.pdr.far = f.value;
        }
        if !u.qer_ids.is_empty() {
            pdr.qers = u.qer_ids.iter().map(|q| q.value).collect();
        }
        if !u.urr_ids.is_empty() {
            pdr.urrs = u.urr_ids.iter().map(|q| q.id).collect();
        }
        Ok(())
    }

    /// The data path's rules of this session (our SEID `seid`): each PDR
    /// with its first QER's gate and rate for its direction and its URRs'
    /// counter slots; a downlink PDR's QER names the QFI its FAR marks
    /// (5.4.5). A PDR naming a rule the session lacks is refused.
    pub fn rules(&self, seid: u64) -> Result<Session, Refusal> {
        let mut fars = self.fars.clone();
        let mut pdrs = Vec::with_capacity(self.pdrs.len());
        for p in &self.pdrs {
            let mut pdr = p.pdr.clone();
            if !fars.iter().any(|f| f.id == pdr.far) {
                return Err(CauseValue::RuleCreationModificationFailure);
            }
            let qer = match p.qers.first() {
                Some(id) => {
                    Some(*self.qers.iter().find(|q| q.id == *id).ok_or(CauseValue::RuleCreationModificationFailure)?)
                }
                None => None,
            };
            pdr.limit = qer.map(|q| if pdr.pdi.source == Some(Interface::Access) { q.uplink } else { q.downlink });
            if let (Some(Interface::Core), Some(q)) = (pdr.pdi.source, qer.and_then(|q| q.qfi))
                && let Some(f) = fars.iter_mut().find(|f| f.id == pdr.far)
            {
                f.qfi = Some(q);
            }
            pdr.urrs = p
                .urrs
                .iter()
                .map(|id| self.urrs.iter().find(|u| u.id == *id).map(|u| u.slot))
                .collect::<Option<Vec<_>>>()
                .ok_or(CauseValue::RuleCreationModificationFailure)?;
            pdrs.push(pdr);
        }
        Ok(Session::new(seid, pdrs, fars))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_ids_come_out_of_their_groups() {
        let urr = [0, 81, 0, 4, 0, 0, 0, 1];
        assert_eq!(rule_id(&urr, IeType::UrrId), Ok(1));
        assert_eq!(rule_id(&[0, 56, 0, 2, 0, 7], IeType::PdrId), Ok(7));
        assert_eq!(rule_id(&urr, IeType::FarId), Err(CauseValue::MandatoryIeMissing));
        assert_eq!(rule_id(&[0, 81, 0, 2, 0, 1], IeType::UrrId), Err(CauseValue::MandatoryIeIncorrect));
    }
}
