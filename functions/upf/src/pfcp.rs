//! The N4 endpoint: PFCP (TS 29.244) over UDP 8805, on the control side
//! (a control task polled every millisecond), the codec from `rs-pfcp`.
//!
//! Node-level procedures: Heartbeat (7.4.2), Association Setup (7.4.4.1:
//! an SMF's node id is remembered, accepted), Association Release
//! (7.4.4.3). Session procedures: Establishment (7.5.2: Create PDR and
//! Create FAR turned into the data path's rules, an F-TEID allocated when
//! the SMF asks CHOOSE and returned in a Created PDR, the session table
//! rebuilt and published to the workers), Modification (7.5.4: Remove,
//! Create and Update of PDRs and FARs, published as one new version) and
//! Deletion (7.5.6). A message that cannot be decoded is answered when
//! its header allows (the cause Table 8.2.1-1 names: 66 "Mandatory IE
//! missing", 68 "Invalid length", 64 "Request rejected"), else dropped and
//! counted; a message type we do not serve is counted, never a crash.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use nfv_core::published::Published;
use rs_pfcp::ie::apply_action::ApplyAction;
use rs_pfcp::ie::create_far::CreateFar;
use rs_pfcp::ie::create_pdr::CreatePdr;
use rs_pfcp::ie::created_pdr::CreatedPdr;
use rs_pfcp::ie::destination_interface::Interface as PfcpInterface;
use rs_pfcp::ie::f_teid::Fteid;
use rs_pfcp::ie::fseid::Fseid;
use rs_pfcp::ie::remove_far::RemoveFar;
use rs_pfcp::ie::remove_pdr::RemovePdr;
use rs_pfcp::ie::source_interface::SourceInterfaceValue;
use rs_pfcp::ie::update_far::UpdateFar;
use rs_pfcp::message::session_deletion_response::SessionDeletionResponseBuilder;
use rs_pfcp::message::session_establishment_request::SessionEstablishmentRequest;
use rs_pfcp::message::session_establishment_response::SessionEstablishmentResponseBuilder;
use rs_pfcp::message::session_modification_request::SessionModificationRequest;
use rs_pfcp::message::session_modification_response::SessionModificationResponseBuilder;

use crate::rules::{Action, Far, Interface, Limit, NO_BUCKET, OuterHeader, Pdi, Pdr, Session, Sessions};

use nfv_core::ControlTask;
use rs_pfcp::error::PfcpError;
use rs_pfcp::ie::cause::CauseValue;
use rs_pfcp::ie::node_id::NodeId;
use rs_pfcp::message::association_release_response::AssociationReleaseResponseBuilder;
use rs_pfcp::message::association_setup_response::AssociationSetupResponseBuilder;
use rs_pfcp::message::heartbeat_response::HeartbeatResponseBuilder;
use rs_pfcp::message::{Message, MsgType};

/// The PFCP port (TS 29.244 section 4.2).
pub const PORT: u16 = 8805;

/// What the endpoint has done, for the report and the tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PfcpCounters {
    /// Heartbeats answered.
    pub heartbeats: u64,
    /// Associations set up.
    pub associations: u64,
    /// Associations released.
    pub releases: u64,
    /// Sessions established.
    pub established: u64,
    /// Sessions modified.
    pub modified: u64,
    /// Sessions deleted.
    pub deleted: u64,
    /// Requests refused with a cause (malformed, missing IEs).
    pub rejected: u64,
    /// Datagrams that were not PFCP at all, or a type we do not serve.
    pub ignored: u64,
}

/// The endpoint.
pub struct PfcpEndpoint {
    socket: UdpSocket,
    node_id: Ipv4Addr,
    recovery: SystemTime,
    /// SMFs associated with us (their addresses).
    peers: Vec<SocketAddr>,
    buf: Vec<u8>,
    /// Where sessions go: the data path's table, with the static ones.
    table: Option<(Arc<Published<Sessions>>, Vec<Session>)>,
    /// Sessions by our (UP) SEID: (the SMF's SEID, the rules).
    sessions: BTreeMap<u64, (u64, Session)>,
    next_seid: u64,
    /// Our N3 address, put in F-TEIDs we allocate.
    n3: Ipv4Addr,
    next_teid: u32,
    /// Counters.
    pub counters: PfcpCounters,
}

/// Why a session request is refused: the cause (TS 29.244 Table 8.2.1-1).
type Refusal = CauseValue;

impl PfcpEndpoint {
    /// Binds `addr` (the N4 address and port); our node id is `node_id`.
    pub fn bind(addr: SocketAddr, node_id: Ipv4Addr) -> std::io::Result<Self> {
        let socket = UdpSocket::bind(addr)?;
        socket.set_nonblocking(true)?;
        Ok(Self {
            socket,
            node_id,
            recovery: SystemTime::now(),
            peers: Vec::new(),
            buf: vec![0; 65536],
            table: None,
            sessions: BTreeMap::new(),
            next_seid: 1,
            n3: node_id,
            next_teid: 0x8000_0000,
            counters: PfcpCounters::default(),
        })
    }

    /// Sessions established over N4 go into `table` beside the `statics`
    /// (configured ones); F-TEIDs we allocate carry `n3`. TEIDs we choose
    /// start at 0x80000000, above those a configuration would use.
    pub fn serve_sessions(&mut self, table: Arc<Published<Sessions>>, statics: Vec<Session>, n3: Ipv4Addr) {
        self.table = Some((table, statics));
        self.n3 = n3;
    }

    /// Publishes the sessions now held (static and established); `false`
    /// (nothing published) when they conflict.
    fn publish(&self) -> Result<(), String> {
        let Some((table, statics)) = &self.table else { return Err("no session table".into()) };
        let mut all = statics.clone();
        all.extend(self.sessions.values().map(|(_, s)| s.clone()));
        let next = Sessions::new(all, table.load().version + 1)?;
        table.publish(next);
        Ok(())
    }

    /// Session Establishment (7.5.2): the response, accepted or with the
    /// cause that refused it.
    fn establish(&mut self, data: &[u8], seq: u32) -> Vec<u8> {
        let node = IpAddr::V4(self.node_id);
        let (cp_seid, result) = match SessionEstablishmentRequest::unmarshal(data) {
            Err(_) => (0, Err(CauseValue::MandatoryIeMissing)),
            Ok(req) => match Fseid::unmarshal(&req.fseid.payload) {
                Err(_) => (0, Err(CauseValue::MandatoryIeIncorrect)),
                Ok(cp) => (cp.seid.0, self.create(&req, cp.seid.0)),
            },
        };
        match result {
            Ok((up_seid, created)) => {
                self.counters.established += 1;
                let mut r =
                    SessionEstablishmentResponseBuilder::accepted(cp_seid, seq).node_id(node).fseid(up_seid, node);
                for c in created {
                    r = r.created_pdr(c.to_ie());
                }
                r.marshal().unwrap_or_default()
            }
            Err(cause) => {
                self.counters.rejected += 1;
                SessionEstablishmentResponseBuilder::new(cp_seid, seq, cause)
                    .node_id(node)
                    .marshal()
                    .unwrap_or_default()
            }
        }
    }

    /// The rules of an establishment request, checked, held and
    /// published: our SEID and the Created PDRs to report.
    fn create(&mut self, req: &SessionEstablishmentRequest, cp_seid: u64) -> Result<(u64, Vec<CreatedPdr>), Refusal> {
        let mut fars = req.create_fars.iter().map(|ie| far_of(&ie.payload)).collect::<Result<Vec<_>, _>>()?;
        let qers = req.create_qers.iter().map(|ie| qer_of(&ie.payload)).collect::<Result<Vec<_>, _>>()?;
        let mut created = Vec::new();
        let mut pdrs = Vec::new();
        for ie in &req.create_pdrs {
            let (pdr, qer) = self.pdr_of(&ie.payload, &mut created, &qers)?;
            // A downlink PDR's QER names the QFI its FAR marks (5.4.5).
            if let (Some(Interface::Core), Some(q)) = (pdr.pdi.source, qer.and_then(|q| q.qfi))
                && let Some(f) = fars.iter_mut().find(|f| f.id == pdr.far)
            {
                f.qfi = Some(q);
            }
            pdrs.push(pdr);
        }
        let up_seid = self.next_seid;
        self.next_seid += 1;
        self.sessions.insert(up_seid, (cp_seid, Session::new(up_seid, pdrs, fars)));
        if self.publish().is_err() {
            self.sessions.remove(&up_seid);
            return Err(CauseValue::RuleCreationModificationFailure);
        }
        Ok((up_seid, created))
    }

    /// A Create PDR's rule (its first QER's gate and rate for its
    /// direction, among `qers`) and that QER; a TEID chosen when it asks
    /// CHOOSE, reported in `created`.
    fn pdr_of(
        &mut self,
        payload: &[u8],
        created: &mut Vec<CreatedPdr>,
        qers: &[Qer],
    ) -> Result<(Pdr, Option<Qer>), Refusal> {
        let p = CreatePdr::unmarshal(payload).map_err(|_| CauseValue::MandatoryIeIncorrect)?;
        let source = match p.pdi.source_interface.value {
            SourceInterfaceValue::Access => Interface::Access,
            SourceInterfaceValue::Core => Interface::Core,
            _ => return Err(CauseValue::RequestRejected),
        };
        let teid = match &p.pdi.f_teid {
            Some(f) if f.ch => {
                let teid = self.next_teid;
                self.next_teid = self.next_teid.wrapping_add(1).max(0x8000_0000);
                let mut c = CreatedPdr::new(p.pdr_id);
                c.f_teid = Some(Fteid::new(true, false, teid, Some(self.n3), None, 0));
                created.push(c);
                Some(teid)
            }
            Some(f) => Some(f.teid.0),
            None => None,
        };
        let sdf = p
            .pdi
            .sdf_filters
            .iter()
            .map(|f| crate::sdf::parse(&f.flow_description))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| CauseValue::MandatoryIeIncorrect)?;
        let far = p.far_id.as_ref().ok_or(CauseValue::MandatoryIeMissing)?.value;
        let qer = match p.qer_ids.first() {
            Some(id) => {
                Some(*qers.iter().find(|q| q.id == id.value).ok_or(CauseValue::RuleCreationModificationFailure)?)
            }
            None => None,
        };
        let limit = qer.map(|q| if source == Interface::Access { q.uplink } else { q.downlink });
        let pdr = Pdr {
            id: p.pdr_id.value,
            precedence: p.precedence.value,
            pdi: Pdi {
                source: Some(source),
                teid,
                ue_ip: p.pdi.ue_ip_addresses.first().and_then(|u| u.ipv4_address).map(u32::from),
                sdf,
                qfi: p.pdi.qfis.first().map(|q| q.value()),
            },
            remove_outer_header: p.outer_header_removal.is_some(),
            far,
            limit,
            bucket: NO_BUCKET,
        };
        Ok((pdr, qer))
    }

    /// Session Modification (7.5.4) of our session `seid`: Remove PDR and
    /// FAR, Create PDR and FAR, Update FAR (apply action, destination,
    /// outer header creation: a handover moves the downlink tunnel). The
    /// new rules replace the old in one published version: no packet sees
    /// half of a change, none is lost to it.
    fn modify(&mut self, data: &[u8], seid: u64, seq: u32) -> Vec<u8> {
        let Some((cp, old)) = self.sessions.get(&seid).cloned() else {
            self.counters.rejected += 1;
            return SessionModificationResponseBuilder::new(0, seq).cause(CauseValue::SessionContextNotFound).marshal();
        };
        let result = SessionModificationRequest::unmarshal(data)
            .map_err(|_| CauseValue::MandatoryIeMissing)
            .and_then(|req| self.changed(old.clone(), &req));
        match result {
            Ok((new, created)) => {
                self.sessions.insert(seid, (cp, new));
                if self.publish().is_err() {
                    self.sessions.insert(seid, (cp, old));
                    self.counters.rejected += 1;
                    return SessionModificationResponseBuilder::new(cp, seq)
                        .cause(CauseValue::RuleCreationModificationFailure)
                        .marshal();
                }
                self.counters.modified += 1;
                let ies = created.iter().map(|c| c.to_ie()).collect();
                SessionModificationResponseBuilder::accepted(cp, seq).created_pdrs(ies).marshal()
            }
            Err(cause) => {
                self.counters.rejected += 1;
                SessionModificationResponseBuilder::new(cp, seq).cause(cause).marshal()
            }
        }
    }

    /// `s` with a modification request's changes, and the Created PDRs.
    fn changed(&mut self, s: Session, req: &SessionModificationRequest) -> Result<(Session, Vec<CreatedPdr>), Refusal> {
        let (mut pdrs, mut fars) = (s.pdrs, s.fars);
        let all = |v: &Option<Vec<rs_pfcp::ie::Ie>>| v.clone().unwrap_or_default();
        for ie in all(&req.remove_pdrs) {
            let r = RemovePdr::unmarshal(&ie.payload).map_err(|_| CauseValue::MandatoryIeIncorrect)?;
            pdrs.retain(|p| p.id != r.pdr_id.value);
        }
        for ie in all(&req.remove_fars) {
            let r = RemoveFar::unmarshal(&ie.payload).map_err(|_| CauseValue::MandatoryIeIncorrect)?;
            fars.retain(|f| f.id != r.far_id.value);
        }
        for ie in all(&req.create_fars) {
            fars.push(far_of(&ie.payload)?);
        }
        let mut created = Vec::new();
        for ie in all(&req.create_pdrs) {
            // QERs of a modification are not read yet: its new PDRs have
            // none (a PDR naming one is refused).
            pdrs.push(self.pdr_of(&ie.payload, &mut created, &[])?.0);
        }
        for ie in all(&req.update_fars) {
            let u = UpdateFar::unmarshal(&ie.payload).map_err(|_| CauseValue::MandatoryIeIncorrect)?;
            // 7.5.4.3: an update of a rule the session lacks fails it.
            let far =
                fars.iter_mut().find(|f| f.id == u.far_id.value).ok_or(CauseValue::RuleCreationModificationFailure)?;
            if let Some(a) = &u.apply_action {
                far.action = action_of(a);
            }
            if let Some(p) = &u.update_forwarding_parameters {
                if let Some(d) = &p.destination_interface {
                    far.destination = interface_of(d.interface);
                }
                if let Some(o) = &p.outer_header_creation {
                    far.outer = outer_of(o);
                }
            }
        }
        Ok((Session::new(s.seid, pdrs, fars), created))
    }

    /// Session Deletion (7.5.6) of our session `seid`.
    fn delete(&mut self, seid: u64, seq: u32) -> Vec<u8> {
        match self.sessions.remove(&seid) {
            Some((cp, _)) => {
                let _ = self.publish();
                self.counters.deleted += 1;
                SessionDeletionResponseBuilder::accepted(cp, seq).marshal()
            }
            None => {
                self.counters.rejected += 1;
                SessionDeletionResponseBuilder::new(0, seq).cause(CauseValue::SessionContextNotFound).marshal()
            }
        }
    }

    /// The bound address (tests bind port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.socket.local_addr().expect("a bound socket")
    }

    /// Answers `data` from `from`; `None` when there is nothing to send.
    pub fn handle(&mut self, data: &[u8], from: SocketAddr) -> Option<Vec<u8>> {
        let msg = match rs_pfcp::message::parse(data) {
            Ok(m) => m,
            Err(e) => return self.refuse(data, &e),
        };
        let seq = msg.sequence();
        match msg.msg_type() {
            MsgType::HeartbeatRequest => {
                self.counters.heartbeats += 1;
                Some(HeartbeatResponseBuilder::new(seq).recovery_time_stamp(self.recovery).marshal())
            }
            MsgType::AssociationSetupRequest => {
                if !self.peers.contains(&from) {
                    self.peers.push(from);
                }
                self.counters.associations += 1;
                Some(
                    AssociationSetupResponseBuilder::new(seq)
                        .cause_accepted()
                        .node_id(IpAddr::V4(self.node_id))
                        .recovery_time_stamp(self.recovery)
                        .marshal(),
                )
            }
            MsgType::AssociationReleaseRequest => {
                let known = self.peers.contains(&from);
                self.peers.retain(|p| *p != from);
                self.counters.releases += known as u64;
                // 7.4.4.3: release of an association that does not exist.
                let cause = if known { CauseValue::RequestAccepted } else { CauseValue::NoEstablishedPfcpAssociation };
                Some(
                    AssociationReleaseResponseBuilder::new(seq)
                        .cause(cause)
                        .node_id(NodeId::new_ipv4(self.node_id).to_ie())
                        .marshal(),
                )
            }
            MsgType::SessionEstablishmentRequest => Some(self.establish(data, seq.into())),
            MsgType::SessionModificationRequest => Some(self.modify(data, msg.seid().map_or(0, |s| s.0), seq.into())),
            MsgType::SessionDeletionRequest => Some(self.delete(msg.seid().map_or(0, |s| s.0), seq.into())),
            _ => {
                self.counters.ignored += 1;
                None
            }
        }
    }

    /// A request that did not decode: answered with the cause TS 29.244
    /// section 7.2.3 names when its header says which response to send.
    fn refuse(&mut self, data: &[u8], e: &PfcpError) -> Option<Vec<u8>> {
        let Ok(header) = rs_pfcp::message::header::Header::unmarshal(data) else {
            self.counters.ignored += 1;
            return None;
        };
        let cause = match e {
            PfcpError::MissingMandatoryIe { .. } => CauseValue::MandatoryIeMissing,
            PfcpError::InvalidLength { .. } => CauseValue::InvalidLength,
            _ => CauseValue::RequestRejected,
        };
        let seq = header.sequence_number;
        let reply = match header.message_type {
            MsgType::AssociationSetupRequest => Some(
                AssociationSetupResponseBuilder::new(seq)
                    .cause(cause)
                    .node_id(IpAddr::V4(self.node_id))
                    .recovery_time_stamp(self.recovery)
                    .marshal(),
            ),
            MsgType::AssociationReleaseRequest => Some(
                AssociationReleaseResponseBuilder::new(seq)
                    .cause(cause)
                    .node_id(NodeId::new_ipv4(self.node_id).to_ie())
                    .marshal(),
            ),
            _ => None,
        };
        if reply.is_some() {
            self.counters.rejected += 1
        } else {
            self.counters.ignored += 1
        }
        reply
    }
}

/// A QER as the data path uses it: its id, each direction's gate and
/// rate, the QFI it marks.
#[derive(Clone, Copy, Debug)]
struct Qer {
    id: u32,
    uplink: Limit,
    downlink: Limit,
    qfi: Option<u8>,
}

/// A Create QER (TS 29.244 7.5.2.5): Gate Status (8.2.7, open when
/// absent), MBR (8.2.8, kbit/s; 0 or absent: none), QFI.
fn qer_of(payload: &[u8]) -> Result<Qer, Refusal> {
    use rs_pfcp::ie::gate_status::GateStatusValue;
    let q = rs_pfcp::ie::create_qer::CreateQer::unmarshal(payload).map_err(|_| CauseValue::MandatoryIeIncorrect)?;
    let open = |g: Option<GateStatusValue>| !matches!(g, Some(GateStatusValue::Closed));
    let rate = |kbps: Option<u64>| kbps.unwrap_or(0) * 1000 / 8;
    Ok(Qer {
        id: q.qer_id.value,
        uplink: Limit {
            open: open(q.gate_status.as_ref().map(|g| g.uplink_gate)),
            bytes_per_sec: rate(q.mbr.as_ref().map(|m| m.uplink)),
        },
        downlink: Limit {
            open: open(q.gate_status.as_ref().map(|g| g.downlink_gate)),
            bytes_per_sec: rate(q.mbr.as_ref().map(|m| m.downlink)),
        },
        qfi: q.qfi.map(|f| f.value()),
    })
}

/// A Create FAR's rule.
fn far_of(payload: &[u8]) -> Result<Far, Refusal> {
    let f = CreateFar::unmarshal(payload).map_err(|_| CauseValue::MandatoryIeIncorrect)?;
    let fp = f.forwarding_parameters.as_ref();
    Ok(Far {
        id: f.far_id.value,
        action: action_of(&f.apply_action),
        destination: fp.map_or(Interface::Core, |p| interface_of(p.destination_interface.interface)),
        outer: fp.and_then(|p| p.outer_header_creation.as_ref()).and_then(outer_of),
        qfi: None,
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

/// Outer Header Creation (8.2.56) of a GTP-U/UDP/IPv4 tunnel.
fn outer_of(o: &rs_pfcp::ie::outer_header_creation::OuterHeaderCreation) -> Option<OuterHeader> {
    Some(OuterHeader { teid: o.teid?.0, peer: u32::from(o.ipv4_address?) })
}

impl PfcpEndpoint {
    /// Answers the next waiting datagram, if any; `Err` tells of a socket
    /// problem. (The control task calls it until nothing waits.)
    pub fn poll_once(&mut self) -> Result<bool, String> {
        let (n, from) = match self.socket.recv_from(&mut self.buf) {
            Ok(r) => r,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Ok(false),
            Err(e) => return Err(format!("N4 receive: {e}")),
        };
        let data = self.buf[..n].to_vec();
        if let Some(reply) = self.handle(&data, from) {
            self.socket.send_to(&reply, from).map_err(|e| format!("N4 send to {from}: {e}"))?;
        }
        Ok(true)
    }
}

impl ControlTask for PfcpEndpoint {
    fn poll(&mut self) -> Vec<String> {
        let mut lines = Vec::new();
        loop {
            match self.poll_once() {
                Ok(true) => {}
                Ok(false) => break,
                Err(e) => {
                    lines.push(e);
                    break;
                }
            }
        }
        lines
    }

    fn period(&self) -> Duration {
        Duration::from_millis(1)
    }
}
