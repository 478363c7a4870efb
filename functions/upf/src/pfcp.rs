//! The N4 endpoint: PFCP (TS 29.244) over UDP 8805, on the control side
//! (a control task polled every millisecond), the codec from `rs-pfcp`.
//!
//! Node-level procedures so far: Heartbeat (7.4.2), Association Setup
//! (7.4.4.1: an SMF's node id is remembered, accepted), Association
//! Release (7.4.4.3). A message that cannot be decoded is answered when
//! its header allows (the cause Table 8.2.1-1 names: 66 "Mandatory IE
//! missing", 68 "Invalid length", 64 "Request rejected"), else dropped and
//! counted; a message type we do not serve is counted, never a crash.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::time::{Duration, SystemTime};

use nfv_core::ControlTask;
use rs_pfcp::error::PfcpError;
use rs_pfcp::ie::cause::CauseValue;
use rs_pfcp::ie::node_id::NodeId;
use rs_pfcp::message::MsgType;
use rs_pfcp::message::association_release_response::AssociationReleaseResponseBuilder;
use rs_pfcp::message::association_setup_response::AssociationSetupResponseBuilder;
use rs_pfcp::message::heartbeat_response::HeartbeatResponseBuilder;

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
    /// Counters.
    pub counters: PfcpCounters,
}

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
            counters: PfcpCounters::default(),
        })
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
