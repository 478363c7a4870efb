//! The N4 endpoint: PFCP (TS 29.244) over UDP 8805, on the control side
//! (a control task polled every millisecond), the codec from `rs-pfcp`.
//!
//! Node-level procedures: Heartbeat (7.4.2), Association Setup (7.4.4.1:
//! an SMF's node id is remembered, accepted), Association Release
//! (7.4.4.3). Session procedures: Establishment (7.5.2: Create PDR and
//! Create FAR turned into the data path's rules, an F-TEID allocated when
//! the SMF asks CHOOSE and returned in a Created PDR, the session table
//! rebuilt and published to the workers) and Deletion (7.5.6). A message that cannot be decoded is answered when
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
use rs_pfcp::ie::source_interface::SourceInterfaceValue;
use rs_pfcp::message::session_deletion_response::SessionDeletionResponseBuilder;
use rs_pfcp::message::session_establishment_request::SessionEstablishmentRequest;
use rs_pfcp::message::session_establishment_response::SessionEstablishmentResponseBuilder;

use crate::rules::{Action, Far, Interface, OuterHeader, Pdi, Pdr, Session, Sessions};

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
        let mut fars = Vec::new();
        for ie in &req.create_fars {
            let f = CreateFar::unmarshal(&ie.payload).map_err(|_| CauseValue::MandatoryIeIncorrect)?;
            let action = if f.apply_action.contains(ApplyAction::FORW) {
                Action::Forward
            } else if f.apply_action.contains(ApplyAction::BUFF) {
                Action::Buffer
            } else {
                Action::Drop
            };
            let fp = f.forwarding_parameters.as_ref();
            let destination = match fp.map(|p| p.destination_interface.interface) {
                Some(PfcpInterface::Access) => Interface::Access,
                _ => Interface::Core,
            };
            let outer = fp
                .and_then(|p| p.outer_header_creation.as_ref())
                .and_then(|o| Some(OuterHeader { teid: o.teid?.0, peer: u32::from(o.ipv4_address?) }));
            fars.push(Far { id: f.far_id.value, action, destination, outer, qfi: None });
        }
        let mut pdrs = Vec::new();
        let mut created = Vec::new();
        for ie in &req.create_pdrs {
            let p = CreatePdr::unmarshal(&ie.payload).map_err(|_| CauseValue::MandatoryIeIncorrect)?;
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
            pdrs.push(Pdr {
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
            });
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

impl ControlTask for PfcpEndpoint {
    fn poll(&mut self) -> Vec<String> {
        let mut lines = Vec::new();
        loop {
            let (n, from) = match self.socket.recv_from(&mut self.buf) {
                Ok(r) => r,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) => {
                    lines.push(format!("N4 receive: {e}"));
                    break;
                }
            };
            let data = self.buf[..n].to_vec();
            if let Some(reply) = self.handle(&data, from)
                && let Err(e) = self.socket.send_to(&reply, from)
            {
                lines.push(format!("N4 send to {from}: {e}"));
            }
        }
        lines
    }

    fn period(&self) -> Duration {
        Duration::from_millis(1)
    }
}
