//! The N4 endpoint: PFCP (TS 29.244) over UDP 8805, on the control side
//! (a control task polled every millisecond), the codec from `rs-pfcp`.
//!
//! Node-level procedures: Heartbeat (7.4.2; answered, and sent to watch
//! each SMF, [`liveness`]), Association Setup (7.4.4.1:
//! an SMF's node remembered; a setup with a new recovery time stamp from a
//! node we knew means it restarted: its sessions go), Update (7.4.4.2) and
//! Release (7.4.4.3: its sessions go). Session procedures, for an
//! associated SMF only (72 otherwise): Establishment (7.5.2), Modification
//! (7.5.4) and Deletion (7.5.6) of PDRs, FARs, QERs and URRs
//! ([`session`]), and Session Reports (7.5.8) of URRs whose volume
//! threshold or measurement period came ([`urr`]), sent again after T1
//! until answered or N1 tries (7.6). A removed URR's or deleted session's
//! last usage goes in the response.
//!
//! Requests waiting in one poll are answered together: the session table
//! is published to the workers once, then the responses go out (a
//! response never precedes the rules it accepts). A TEID or UE address
//! claimed by another session is refused at the request (73), so one
//! request cannot spoil a batch. A message that cannot be decoded is
//! answered when its header allows (Table 8.2.1-1: 66 "Mandatory IE
//! missing", 68 "Invalid length", 64 "Request rejected"), else dropped and
//! counted; a message type we do not serve is counted, never a crash; a
//! request of another PFCP version gets a Version Not Supported Response
//! (7.2.2.1).

mod liveness;
mod reports;
mod serve;
mod session;
mod urr;

pub use liveness::{OnSmfFailure, Watch};

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use nfv_core::published::Published;
use rs_pfcp::error::PfcpError;
use rs_pfcp::ie::cause::CauseValue;
use rs_pfcp::ie::node_id::NodeId;
use rs_pfcp::ie::usage_report_trigger::UsageReportTrigger;
use rs_pfcp::message::association_release_response::AssociationReleaseResponseBuilder;
use rs_pfcp::message::association_setup_response::AssociationSetupResponseBuilder;
use rs_pfcp::message::association_update_response::AssociationUpdateResponseBuilder;
use rs_pfcp::message::heartbeat_response::HeartbeatResponseBuilder;
use rs_pfcp::message::session_deletion_response::SessionDeletionResponseBuilder;
use rs_pfcp::message::session_establishment_request::SessionEstablishmentRequest;
use rs_pfcp::message::session_establishment_response::SessionEstablishmentResponseBuilder;
use rs_pfcp::message::session_modification_request::SessionModificationRequest;
use rs_pfcp::message::session_modification_response::SessionModificationResponseBuilder;
use rs_pfcp::message::{Message, MsgType};
use rustc_hash::FxHashMap;

use crate::rules::{Session, Sessions};
use crate::usage::Usage;
use serve::{RequestKey, is_request};
use session::{N4Session, Outcome, Refusal, TeidPool};

/// The PFCP port (TS 29.244 section 4.2).
pub const PORT: u16 = 8805;

/// T1 and N1 (7.6): how long a request of ours waits for its response
/// before it is sent again, and how many times it is sent at most.
const T1: Duration = Duration::from_secs(3);
const N1: u32 = 3;

/// How often URRs are checked for a report due.
const URR_SCAN: Duration = Duration::from_millis(50);

/// The N4 socket's receive buffer: a thousand requests or so.
const N4_RECEIVE_BUFFER: usize = 4 << 20;

/// What the endpoint has done, for the report and the tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PfcpCounters {
    /// Heartbeats answered.
    pub heartbeats: u64,
    /// Associations set up.
    pub associations: u64,
    /// Associations updated.
    pub association_updates: u64,
    /// Associations released.
    pub releases: u64,
    /// Sessions established.
    pub established: u64,
    /// Sessions modified.
    pub modified: u64,
    /// Sessions deleted (by the SMF, or with their association).
    pub deleted: u64,
    /// Requests refused with a cause (malformed, missing IEs, no
    /// association, conflicting rules, no resources).
    pub rejected: u64,
    /// Requests sent again by their SMF, answered as the first time.
    pub retransmitted_requests: u64,
    /// Datagrams that were not PFCP at all, or a type we do not serve.
    pub ignored: u64,
    /// Session Report Requests sent (first transmissions).
    pub reports_sent: u64,
    /// Of which Downlink Data Reports.
    pub downlink_data_reports: u64,
    /// Session Report Requests sent again after T1.
    pub report_retransmissions: u64,
    /// Session Report Responses received.
    pub reports_answered: u64,
    /// Session Report Requests given up after N1 tries.
    pub reports_unanswered: u64,
    /// Datagrams from peers that are not a configured SMF, dropped unread.
    pub refused_peers: u64,
    /// Heartbeat Requests we sent (first transmissions), sent again after
    /// T1, and answered.
    pub heartbeats_sent: u64,
    /// (See `heartbeats_sent`.)
    pub heartbeat_retransmissions: u64,
    /// (See `heartbeats_sent`.)
    pub heartbeats_answered: u64,
    /// SMFs declared failed (no answer to N1 heartbeats).
    pub smf_failures: u64,
    /// SMFs seen restarted (a new Recovery Time Stamp in a heartbeat).
    pub smf_restarts: u64,
}

/// An SMF associated with us.
#[derive(Clone, Debug)]
struct Association {
    node: NodeId,
    /// The address it set the association up from: its session requests
    /// come from there.
    addr: IpAddr,
    /// Its Recovery Time Stamp (8.2.65), seconds.
    recovery: Option<u32>,
    /// Its heartbeats.
    liveness: liveness::Liveness,
}

/// Associations held at most (SMFs are few; a flood of made-up node ids
/// must not grow the list).
const MAX_ASSOCIATIONS: usize = 64;

/// A request of ours awaiting its response.
#[derive(Debug)]
struct Pending {
    seq: u32,
    bytes: Vec<u8>,
    to: SocketAddr,
    sent: Instant,
    tries: u32,
}

/// The Node ID a message carries.
fn node_of(msg: &dyn Message) -> Option<NodeId> {
    msg.ies(rs_pfcp::ie::IeType::NodeId).next().and_then(|ie| NodeId::unmarshal(&ie.payload).ok())
}

/// An association update's or release's cause: accepted for a known
/// association, else 72 (7.4.4.2, 7.4.4.3: none established).
fn association_cause(known: bool) -> CauseValue {
    if known { CauseValue::RequestAccepted } else { CauseValue::NoEstablishedPfcpAssociation }
}

/// The configured sessions (beside those of N4, in one table).
type Statics = Vec<Arc<Session>>;

/// The endpoint.
pub struct PfcpEndpoint {
    socket: UdpSocket,
    node_id: Ipv4Addr,
    recovery: SystemTime,
    associations: Vec<Association>,
    buf: Vec<u8>,
    /// Where sessions go: the data path's table, with the static ones.
    table: Option<(Arc<Published<Sessions>>, Statics)>,
    usage: Arc<Usage>,
    /// Sessions by our (UP) SEID, with their data path rules.
    sessions: BTreeMap<u64, (N4Session, Arc<Session>)>,
    /// Which session holds each uplink TEID and UE address.
    teid_owner: FxHashMap<u32, u64>,
    /// (UE IPv4 addresses, and IPv6 /64s, which lie above 2^32.)
    ue_owner: FxHashMap<u64, u64>,
    next_seid: u64,
    teids: TeidPool,
    /// Changes not yet published: a session's new rules, or `None` gone.
    changes: Vec<(u64, Option<Arc<Session>>)>,
    /// Tunnels switched away from, End Markers asked for, not yet
    /// published.
    end_markers: Vec<crate::rules::OuterHeader>,
    /// Responses held until the table they speak of is published.
    outbox: Vec<(Vec<u8>, SocketAddr)>,
    /// Our next request's sequence number (24 bits, 7.2.2.2).
    next_seq: u32,
    pending: Vec<Pending>,
    last_scan: Instant,
    /// UEs whose first downlink packet a worker held.
    buffering: Option<Arc<crossbeam::queue::ArrayQueue<u64>>>,
    /// Answers to recent requests, for their retransmissions (6.4: a
    /// request sent again gets the same answer, not a second run).
    answered: FxHashMap<RequestKey, (u64, Vec<u8>)>,
    answered_order: std::collections::VecDeque<(Instant, RequestKey)>,
    /// The only peers served, when any are named.
    smf: Vec<std::net::IpAddr>,
    /// How SMFs are watched (none: heartbeats answered, not sent).
    watch: Option<Watch>,
    /// What to say at the next poll.
    lines: Vec<String>,
    /// Refusals said so far, when last, and the last refused peer.
    refusals_told: (u64, Option<Instant>, Option<SocketAddr>),
    /// Counters.
    pub counters: PfcpCounters,
}

/// Owner value of a static session's TEID or UE address.
const STATIC: u64 = 0;

impl PfcpEndpoint {
    /// Binds `addr` (the N4 address and port); our node id is `node_id`.
    pub fn bind(addr: SocketAddr, node_id: Ipv4Addr) -> std::io::Result<Self> {
        let socket = UdpSocket::bind(addr)?;
        socket.set_nonblocking(true)?;
        // An SMF establishing sessions by the thousand sends bursts.
        nfv_core::sockopt::receive_buffer(&socket, N4_RECEIVE_BUFFER);
        Ok(Self {
            socket,
            node_id,
            recovery: SystemTime::now(),
            associations: Vec::new(),
            buf: vec![0; 65536],
            table: None,
            usage: Usage::new(0),
            sessions: BTreeMap::new(),
            teid_owner: FxHashMap::default(),
            ue_owner: FxHashMap::default(),
            next_seid: 1,
            teids: TeidPool::new(node_id),
            changes: Vec::new(),
            end_markers: Vec::new(),
            outbox: Vec::new(),
            next_seq: 1,
            pending: Vec::new(),
            last_scan: Instant::now(),
            buffering: None,
            answered: FxHashMap::default(),
            answered_order: std::collections::VecDeque::new(),
            smf: Vec::new(),
            watch: None,
            lines: Vec::new(),
            refusals_told: (0, None, None),
            counters: PfcpCounters::default(),
        })
    }

    /// Sessions established over N4 go into `table` beside the `statics`
    /// (configured ones); F-TEIDs we allocate carry our N3 addresses `n3`
    /// (IPv4, and IPv6 when the underlay has it); URRs count in `usage`.
    pub fn serve_sessions(
        &mut self,
        table: Arc<Published<Sessions>>,
        statics: Statics,
        n3: (Ipv4Addr, Option<std::net::Ipv6Addr>),
        usage: Arc<Usage>,
    ) {
        // Our SEIDs above the configured sessions' (one table holds both).
        self.next_seid = self.next_seid.max(statics.iter().map(|s| s.seid + 1).max().unwrap_or(1));
        for s in &statics {
            for p in &s.pdrs {
                if let Some(t) = p.pdi.teid {
                    self.teid_owner.insert(t, STATIC);
                }
                if let Some(u) = p.pdi.ue_ip {
                    self.ue_owner.insert(u as u64, STATIC);
                }
                if let Some(u) = p.pdi.ue_ip6 {
                    self.ue_owner.insert(u, STATIC);
                }
            }
        }
        self.table = Some((table, statics));
        self.teids = TeidPool::new(n3.0);
        self.teids.n3_6 = n3.1;
        self.usage = usage;
    }

    /// Serves only these SMFs (none given: any peer): a datagram from
    /// elsewhere is counted and dropped before it is read.
    pub fn accept_only(&mut self, smf: Vec<std::net::IpAddr>) {
        self.smf = smf;
    }

    /// Where the workers tell of UEs whose first downlink packet they held
    /// (a buffering FAR): each becomes a Downlink Data Report.
    pub fn hear_buffering(&mut self, queue: Arc<crossbeam::queue::ArrayQueue<u64>>) {
        self.buffering = Some(queue);
    }

    /// The bound address (tests bind port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.socket.local_addr().expect("a bound socket")
    }

    /// Sessions held (established over N4).
    pub fn sessions(&self) -> usize {
        self.sessions.len()
    }

    /// Publishes the sessions now held (static and established), once per
    /// poll.
    fn publish(&mut self) {
        let changes = std::mem::take(&mut self.changes);
        let Some((table, statics)) = &self.table else { return };
        let current = table.load();
        let end_markers = std::mem::take(&mut self.end_markers);
        let next = current.changed(changes, current.version + 1).or_else(|e| {
            // Claims are checked per request, so this is a bug: told, and
            // the table rebuilt from what the endpoint holds.
            eprintln!("nfv: upf: N4 changes refused by the table ({e}); rebuilding it");
            let all = statics.iter().cloned().chain(self.sessions.values().map(|(_, s)| s.clone()));
            Sessions::new(all.collect(), current.version + 1)
        });
        match next.map(|n| n.with_end_markers(end_markers)) {
            Ok(next) => {
                // The replaced version (tens of MiB at scale) is freed by
                // the table here once no worker holds it, not on the data
                // path by the last one to let go.
                table.publish(next);
            }
            Err(e) => eprintln!("nfv: upf: N4 sessions not published: {e}"),
        }
    }

    /// Marks the URRs of `s` that watch a volume threshold, before the
    /// rules naming them are published: their PDRs stay in the workers.
    fn watch_volumes(&self, s: &N4Session) {
        for u in &s.urrs {
            self.usage.watch_volume(u.slot, u.watches_volume());
        }
    }

    /// Checks that `rules` claim no TEID or UE address another session
    /// holds, then records its claims in place of what `seid` held.
    fn claim(&mut self, seid: u64, rules: &Session) -> Result<(), Refusal> {
        let keys = |s: &Session| {
            s.pdrs.iter().map(|p| (p.pdi.teid, [p.pdi.ue_ip.map(u64::from), p.pdi.ue_ip6])).collect::<Vec<_>>()
        };
        for (t, ues) in keys(rules) {
            let other = |o: Option<&u64>| o.is_some_and(|&o| o != seid);
            if other(t.and_then(|t| self.teid_owner.get(&t)))
                || ues.iter().flatten().any(|u| other(self.ue_owner.get(u)))
            {
                return Err(CauseValue::RuleCreationModificationFailure);
            }
        }
        self.unclaim(seid);
        for (t, ues) in keys(rules) {
            if let Some(t) = t {
                self.teid_owner.insert(t, seid);
            }
            for u in ues.into_iter().flatten() {
                self.ue_owner.insert(u, seid);
            }
        }
        Ok(())
    }

    fn unclaim(&mut self, seid: u64) {
        if let Some((_, old)) = self.sessions.get(&seid) {
            for p in &old.pdrs {
                if let Some(t) = p.pdi.teid
                    && self.teid_owner.get(&t) == Some(&seid)
                {
                    self.teid_owner.remove(&t);
                }
                for u in [p.pdi.ue_ip.map(u64::from), p.pdi.ue_ip6].into_iter().flatten() {
                    if self.ue_owner.get(&u) == Some(&seid) {
                        self.ue_owner.remove(&u);
                    }
                }
            }
        }
    }

    /// Removes session `seid` and gives its counters back; its rules leave
    /// the data path at the next publish.
    fn drop_session(&mut self, seid: u64) -> Option<N4Session> {
        self.unclaim(seid);
        let (s, _) = self.sessions.remove(&seid)?;
        for u in &s.urrs {
            self.usage.free(u.slot);
        }
        self.changes.push((seid, None));
        Some(s)
    }

    /// Whether `node` is associated, from address `from`.
    fn associated(&self, node: &NodeId, from: IpAddr) -> bool {
        self.associations.iter().any(|a| a.node == *node && a.addr == from)
    }

    /// Our session `seid`, if the request about it comes from the SMF
    /// that holds it (its association's address): another host cannot
    /// modify or delete a session by guessing its SEID.
    fn owned(&self, seid: u64, from: IpAddr) -> bool {
        self.sessions.get(&seid).is_some_and(|(s, _)| self.associated(&s.node, from))
    }

    /// Sessions of `node` gone (its association released, or it
    /// restarted).
    fn drop_sessions_of(&mut self, node: &NodeId) {
        let theirs: Vec<u64> = self.sessions.iter().filter(|(_, (s, _))| s.node == *node).map(|(k, _)| *k).collect();
        for seid in theirs {
            self.drop_session(seid);
            self.counters.deleted += 1;
        }
    }

    /// Session Establishment (7.5.2): the response, accepted or with the
    /// cause that refused it.
    fn establish(&mut self, data: &[u8], seq: u32, from: SocketAddr) -> Vec<u8> {
        let node = IpAddr::V4(self.node_id);
        let (cp_seid, result) = match SessionEstablishmentRequest::unmarshal(data) {
            Err(_) => (0, Err(CauseValue::MandatoryIeMissing)),
            Ok(req) => match rs_pfcp::ie::fseid::Fseid::unmarshal(&req.fseid.payload) {
                Err(_) => (0, Err(CauseValue::MandatoryIeIncorrect)),
                Ok(cp) => {
                    // 4.2.2: our requests go to port 8805 of the address
                    // in the SMF's F-SEID (else the one it sent from).
                    let ip = cp.ipv4_address.map(IpAddr::V4).or(cp.ipv6_address.map(IpAddr::V6));
                    let report_to = SocketAddr::new(ip.unwrap_or(from.ip()), PORT);
                    (cp.seid.0, self.create(&req, cp.seid.0, from, report_to))
                }
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
                establishment_refusal(cp_seid, seq, cause, self.node_id)
            }
        }
    }

    /// The session of an establishment request, checked and held: our
    /// SEID and the Created PDRs to report.
    fn create(
        &mut self,
        req: &SessionEstablishmentRequest,
        cp_seid: u64,
        from: SocketAddr,
        report_to: SocketAddr,
    ) -> Result<(u64, Vec<rs_pfcp::ie::created_pdr::CreatedPdr>), Refusal> {
        let node = NodeId::unmarshal(&req.node_id.payload).map_err(|_| CauseValue::MandatoryIeIncorrect)?;
        // 7.5.2.2: a request from a node without an association.
        if !self.associated(&node, from.ip()) {
            return Err(CauseValue::NoEstablishedPfcpAssociation);
        }
        let mut out = Outcome::default();
        let up_seid = self.next_seid;
        let made = N4Session::establish(req, cp_seid, node, report_to, &mut self.teids, &self.usage, &mut out)
            .and_then(|s| s.rules(up_seid).map(|r| (s, r)))
            .and_then(|(s, r)| self.claim(up_seid, &r).map(|_| (s, r)));
        match made {
            Ok(session) => {
                self.next_seid += 1;
                let rules = Arc::new(session.1);
                self.watch_volumes(&session.0);
                self.changes.push((up_seid, Some(rules.clone())));
                self.sessions.insert(up_seid, (session.0, rules));
                Ok((up_seid, out.created))
            }
            Err(cause) => {
                out.undo(&self.usage);
                Err(cause)
            }
        }
    }

    /// Session Modification (7.5.4) of our session `seid`: the changed
    /// rules replace the old in one published version (no packet sees
    /// half of a change, none is lost to it); removed URRs' and queried
    /// URRs' usage in the response.
    fn modify(&mut self, data: &[u8], seid: u64, seq: u32) -> Vec<u8> {
        let Some((old, _)) = self.sessions.get(&seid) else {
            self.counters.rejected += 1;
            return SessionModificationResponseBuilder::new(0, seq).cause(CauseValue::SessionContextNotFound).marshal();
        };
        let cp = old.cp_seid;
        let mut out = Outcome::default();
        let result = SessionModificationRequest::unmarshal(data)
            .map_err(|_| CauseValue::MandatoryIeMissing)
            .and_then(|req| {
                let new = old.modify(&req, &mut self.teids, &self.usage, &mut out)?;
                let rules = new.rules(seid)?;
                Ok((req, new, rules))
            })
            .and_then(|(req, new, rules)| self.claim(seid, &rules).map(|_| (req, new, rules)));
        match result {
            Ok((req, mut new, rules)) => {
                let mut reports: Vec<_> = out
                    .removed_urrs
                    .iter_mut()
                    .map(|u| u.report_from(&self.usage, UsageReportTrigger::TERMR))
                    .collect();
                for u in &out.removed_urrs {
                    self.usage.free(u.slot);
                }
                // Query URR (7.5.4.10): an immediate report.
                for ie in req.query_urrs.iter().flatten() {
                    if let Ok(id) = session::rule_id(&ie.payload, rs_pfcp::ie::IeType::UrrId)
                        && let Some(u) = new.urrs.iter_mut().find(|u| u.id == id)
                    {
                        reports.push(u.report_from(&self.usage, UsageReportTrigger::IMMER));
                    }
                }
                let rules = Arc::new(rules);
                self.watch_volumes(&new);
                self.changes.push((seid, Some(rules.clone())));
                self.end_markers.append(&mut out.end_markers);
                self.sessions.insert(seid, (new, rules));
                self.counters.modified += 1;
                let created = out.created.iter().map(|c| c.to_ie()).collect();
                let usage = reports.into_iter().map(|r| rs_pfcp::ie::usage_report_smr::UsageReportSmr::new(r).to_ie());
                SessionModificationResponseBuilder::accepted(cp, seq)
                    .created_pdrs(created)
                    .usage_reports(usage.collect())
                    .marshal()
            }
            Err(cause) => {
                out.undo(&self.usage);
                self.counters.rejected += 1;
                SessionModificationResponseBuilder::new(cp, seq).cause(cause).marshal()
            }
        }
    }

    /// Session Deletion (7.5.6) of our session `seid`, with the last
    /// usage of each of its URRs (7.5.7: Usage Report, trigger TERMR).
    fn delete(&mut self, seid: u64, seq: u32) -> Vec<u8> {
        let reports: Vec<_> = match self.sessions.get_mut(&seid) {
            Some((s, _)) => s.urrs.iter_mut().map(|u| u.report_from(&self.usage, UsageReportTrigger::TERMR)).collect(),
            None => {
                self.counters.rejected += 1;
                return SessionDeletionResponseBuilder::new(0, seq).cause(CauseValue::SessionContextNotFound).marshal();
            }
        };
        let s = self.drop_session(seid).expect("present");
        self.counters.deleted += 1;
        let usage = reports.into_iter().map(|r| rs_pfcp::ie::usage_report_sdr::UsageReportSdr::new(r).to_ie());
        SessionDeletionResponseBuilder::accepted(s.cp_seid, seq).usage_reports(usage.collect()).marshal()
    }

    /// Answers `data` from `from`; `None` when there is nothing to send.
    fn handle(&mut self, data: &[u8], from: SocketAddr) -> Option<Vec<u8>> {
        if let Some(reply) = self.other_version(data) {
            return reply;
        }
        let msg = match rs_pfcp::message::parse(data) {
            Ok(m) => m,
            Err(e) => return self.refuse(data, &e),
        };
        let seq = msg.sequence();
        match msg.msg_type() {
            MsgType::HeartbeatRequest => {
                self.counters.heartbeats += 1;
                self.heard_heartbeat(&*msg, from, false);
                Some(HeartbeatResponseBuilder::new(seq).recovery_time_stamp(self.recovery).marshal())
            }
            MsgType::AssociationSetupRequest => {
                let req = rs_pfcp::message::association_setup_request::AssociationSetupRequest::unmarshal(data).ok()?;
                let node = NodeId::unmarshal(&req.node_id.payload).ok()?;
                let recovery =
                    req.recovery_time_stamp.payload.get(..4).map(|b| u32::from_be_bytes(b.try_into().expect("4")));
                let known = self.associations.iter().find(|a| a.node == node).cloned();
                let cause = match known {
                    // Another host naming a node we know: refused, its
                    // sessions untouched (an SMF moving address releases
                    // first).
                    Some(ref a) if a.addr != from.ip() => CauseValue::RequestRejected,
                    None if self.associations.len() >= MAX_ASSOCIATIONS => CauseValue::NoResourcesAvailable,
                    _ => CauseValue::RequestAccepted,
                };
                if cause == CauseValue::RequestAccepted {
                    // 7.4.4.1.2: a known node with a new recovery time
                    // stamp restarted; the sessions it had are gone.
                    if known.is_some_and(|a| a.recovery != recovery) {
                        self.drop_sessions_of(&node);
                    }
                    self.associations.retain(|a| a.node != node);
                    self.associations.push(Association {
                        node,
                        addr: from.ip(),
                        recovery,
                        liveness: liveness::Liveness::new(self.watch),
                    });
                    self.counters.associations += 1;
                } else {
                    self.counters.rejected += 1;
                }
                self.node_response(MsgType::AssociationSetupRequest, seq, cause)
            }
            MsgType::AssociationUpdateRequest => {
                let known = node_of(&*msg).is_some_and(|n| self.associated(&n, from.ip()));
                self.counters.association_updates += known as u64;
                self.node_response(MsgType::AssociationUpdateRequest, seq, association_cause(known))
            }
            MsgType::AssociationReleaseRequest => {
                let node = node_of(&*msg);
                let known = node.as_ref().is_some_and(|n| self.associated(n, from.ip()));
                if let Some(n) = node.filter(|_| known) {
                    self.associations.retain(|a| a.node != n);
                    // 7.4.4.3.2: the association's sessions are deleted.
                    self.drop_sessions_of(&n);
                }
                self.counters.releases += known as u64;
                self.node_response(MsgType::AssociationReleaseRequest, seq, association_cause(known))
            }
            MsgType::SessionEstablishmentRequest => Some(self.establish(data, seq.into(), from)),
            MsgType::SessionModificationRequest => {
                let seid = msg.seid().map_or(0, |s| s.0);
                // Another host's request about a session is as if it
                // did not exist (65): nothing told, nothing changed.
                let seid = if self.owned(seid, from.ip()) { seid } else { 0 };
                Some(self.modify(data, seid, seq.into()))
            }
            MsgType::SessionDeletionRequest => {
                let seid = msg.seid().map_or(0, |s| s.0);
                let seid = if self.owned(seid, from.ip()) { seid } else { 0 };
                Some(self.delete(seid, seq.into()))
            }
            MsgType::HeartbeatResponse => {
                self.heard_heartbeat(&*msg, from, true);
                None
            }
            MsgType::SessionReportResponse => {
                let seq: u32 = seq.into();
                if let Some(i) = self.pending.iter().position(|p| p.seq == seq && p.to.ip() == from.ip()) {
                    self.pending.remove(i);
                    self.counters.reports_answered += 1;
                } else {
                    self.counters.ignored += 1;
                }
                None
            }
            _ => {
                self.counters.ignored += 1;
                None
            }
        }
    }

    /// A message of a PFCP version other than 1: `Some(answer)` (7.2.2.1:
    /// a request gets a Version Not Supported Response with its sequence
    /// number; anything else is dropped), `None` for a version 1 message.
    fn other_version(&mut self, data: &[u8]) -> Option<Option<Vec<u8>>> {
        let (&flags, &kind) = (data.first()?, data.get(1)?);
        if flags >> 5 == 1 {
            return None;
        }
        // A PFCP header at all: its length field covers the datagram.
        let framed = data.get(2..4).is_some_and(|l| u16::from_be_bytes([l[0], l[1]]) as usize + 4 == data.len());
        // Requests: node-level odd types, session-level even ones from 50.
        let request = framed && is_request(kind);
        let at = if flags & 0x01 != 0 { 12 } else { 4 };
        let seq = data.get(at..at + 3).map(|b| u32::from_be_bytes([0, b[0], b[1], b[2]]));
        match seq.filter(|_| request) {
            Some(seq) => {
                self.counters.rejected += 1;
                let r = rs_pfcp::message::version_not_supported_response::VersionNotSupportedResponse::new(seq);
                Some(Some(r.marshal()))
            }
            None => {
                self.counters.ignored += 1;
                Some(None)
            }
        }
    }

    /// The response to an association request of type `request` (setup,
    /// update, release: 7.4.4) with `cause` and our node id (and our
    /// recovery time stamp for a setup).
    fn node_response(
        &self,
        request: MsgType,
        seq: rs_pfcp::types::SequenceNumber,
        cause: CauseValue,
    ) -> Option<Vec<u8>> {
        let node = NodeId::new_ipv4(self.node_id).to_ie();
        Some(match request {
            MsgType::AssociationSetupRequest => AssociationSetupResponseBuilder::new(seq)
                .cause(cause)
                .node_id(IpAddr::V4(self.node_id))
                .recovery_time_stamp(self.recovery)
                .marshal(),
            MsgType::AssociationUpdateRequest => {
                AssociationUpdateResponseBuilder::new(seq).cause(cause).node_id(node).marshal()
            }
            MsgType::AssociationReleaseRequest => {
                AssociationReleaseResponseBuilder::new(seq).cause(cause).node_id(node).marshal()
            }
            _ => return None,
        })
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
            t @ (MsgType::AssociationSetupRequest
            | MsgType::AssociationUpdateRequest
            | MsgType::AssociationReleaseRequest) => self.node_response(t, seq, cause),
            MsgType::SessionEstablishmentRequest => Some(establishment_refusal(0, seq.into(), cause, self.node_id)),
            MsgType::SessionModificationRequest => {
                Some(SessionModificationResponseBuilder::new(0, seq).cause(cause).marshal())
            }
            MsgType::SessionDeletionRequest => Some(SessionDeletionResponseBuilder::new(0, seq).cause(cause).marshal()),
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

/// A Session Establishment Response refusing a request (7.5.3.1): Node
/// ID and Cause only (the UP F-SEID is present on success only; the
/// codec's builder insists on one, so the message is put together here).
fn establishment_refusal(cp_seid: u64, seq: u32, cause: CauseValue, node: Ipv4Addr) -> Vec<u8> {
    let ies = [NodeId::new_ipv4(node).to_ie(), rs_pfcp::ie::Ie::new(rs_pfcp::ie::IeType::Cause, vec![cause as u8])];
    let body: Vec<u8> = ies.iter().flat_map(|ie| ie.marshal()).collect();
    let mut h = rs_pfcp::message::header::Header::new(MsgType::SessionEstablishmentResponse, true, cp_seid, seq);
    h.length = h.len() + body.len() as u16 - 4;
    [h.marshal(), body].concat()
}
