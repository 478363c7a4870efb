//! The `upf` stage's TOML parameters, checked (every problem located,
//! with what to write instead): the N3 and N6 ports, our N3 address, the
//! N6 next hop, and static sessions for labs without an SMF.
//!
//! ```toml
//! stages = [{ kind = "upf", n3 = "d0", n3-address = "10.10.0.1", n6 = "d1", n6-gateway = "198.51.100.1",
//!             n3-address6 = "fd00::1",      # optional: GTP-U over IPv6 too
//!             n3-gateway = "10.10.0.254",   # optional: gNBs behind a router
//!             n4 = "10.10.0.1:8805",   # PFCP from an SMF
//!             smf = ["10.10.0.5"],     # optional: PFCP only from these peers
//!             heartbeat-interval = 10, # heartbeats to each SMF (s; 0: none), T1 3 s, N1 3
//!             on-smf-failure = "keep", # or "release": its sessions, once it answers none
//!             max-urrs = 131072,       # URRs at once (32 octets per worker each)
//!             buffer-packets = 1024,   # downlink packets a worker holds for buffering FARs
//!             sessions = [{ seid = 1, ue = "10.45.0.7", uplink-teid = 4660,
//!                           gnb = "10.10.0.2", downlink-teid = 43981, qfi = 9 }] }]
//! ```

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use crossbeam::queue::ArrayQueue;
use nfv_core::config::{Diagnostic, Params};
use nfv_core::published::Published;
use nfv_core::{BuildEnv, PortId};
use serde::Deserialize;

use crate::rules::{Action, Far, Interface, Limit, NO_BUCKET, OuterHeader, Pdi, Pdr, Session, Sessions};
use crate::usage::Usage;

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct UpfParams {
    n3: String,
    n3_address: Ipv4Addr,
    n3_address6: Option<std::net::Ipv6Addr>,
    n6: String,
    n6_gateway: Ipv4Addr,
    n3_gateway: Option<Ipv4Addr>,
    n4: Option<std::net::SocketAddrV4>,
    /// The SMFs PFCP is accepted from (none: any peer that reaches N4).
    #[serde(default)]
    smf: Vec<std::net::IpAddr>,
    /// Seconds between our heartbeats to each SMF (0: none sent).
    #[serde(default = "heartbeat_interval")]
    heartbeat_interval: f64,
    /// T1 for heartbeats, seconds.
    #[serde(default = "heartbeat_timeout")]
    heartbeat_timeout: f64,
    /// N1 for heartbeats.
    #[serde(default = "heartbeat_tries")]
    heartbeat_tries: u32,
    /// What a failed SMF's sessions become.
    #[serde(default)]
    on_smf_failure: OnFailureParam,
    /// URRs the SMF may create at once (each worker keeps 32 octets of
    /// counters per URR).
    max_urrs: Option<u32>,
    /// Downlink packets each worker may hold for buffering FARs.
    buffer_packets: Option<usize>,
    #[serde(default)]
    sessions: Vec<StaticSession>,
}

/// `on-smf-failure`.
#[derive(Clone, Copy, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum OnFailureParam {
    #[default]
    Keep,
    Release,
}

fn heartbeat_interval() -> f64 {
    10.0
}

/// T1 and N1 as TS 29.244 7.6 leaves them to configuration; an SMF is
/// declared failed some 9 s after a heartbeat goes unanswered.
fn heartbeat_timeout() -> f64 {
    3.0
}

fn heartbeat_tries() -> u32 {
    3
}

/// URRs an N4 endpoint holds at once unless told otherwise: one per
/// session at the issue's 100k sessions, with room to spare (4 MiB of
/// counters per worker).
const DEFAULT_MAX_URRS: u32 = 131_072;

/// A lab session (for labs without an SMF, and benches): one uplink and
/// one downlink rule.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct StaticSession {
    /// SEID.
    pub seid: u64,
    /// The UE's address.
    pub ue: Ipv4Addr,
    /// The UE's IPv6 address (its /64 is the session's), for a
    /// dual-stack session.
    #[serde(default)]
    pub ue6: Option<std::net::Ipv6Addr>,
    /// Our TEID for the uplink.
    pub uplink_teid: u32,
    /// The gNB's GTP-U address (IPv4, or IPv6 with `n3-address6`).
    pub gnb: IpAddr,
    /// The gNB's TEID for the downlink.
    pub downlink_teid: u32,
    /// The QFI marked downlink.
    pub qfi: Option<u8>,
    /// Maximum bit rates, kbit/s (a QER's MBR).
    pub mbr_ul: Option<u64>,
    /// Downlink.
    pub mbr_dl: Option<u64>,
}

impl StaticSession {
    /// Its rules: PDR 1 (uplink by TEID, outer header removed) to FAR 1
    /// (forward to N6), PDR 2 (downlink by UE address) to FAR 2 (into the
    /// gNB's tunnel), the MBRs as the PDRs' limits.
    pub fn rules(&self) -> Session {
        let s = self;
        let ue = u32::from(s.ue);
        let pdr = |id, source, teid, far| Pdr {
            id,
            precedence: 100,
            pdi: Pdi {
                source: Some(source),
                teid,
                ue_ip: Some(ue),
                ue_ip6: s.ue6.map(|a| (a.to_bits() >> 64) as u64),
                sdf: Vec::new(),
                qfi: None,
            },
            remove_outer_header: source == Interface::Access,
            far,
            limit: match (source, s.mbr_ul, s.mbr_dl) {
                (Interface::Access, Some(k), _) | (Interface::Core, _, Some(k)) => {
                    Some(Limit { open: true, bytes_per_sec: k * 1000 / 8 })
                }
                _ => None,
            },
            bucket: NO_BUCKET,
            urrs: Vec::new(),
        };
        let far =
            |id, destination, outer| Far { id, action: Action::Forward, destination, outer, qfi: s.qfi, notify: false };
        Session::new(
            s.seid,
            vec![pdr(1, Interface::Access, Some(s.uplink_teid), 1), pdr(2, Interface::Core, None, 2)],
            vec![
                far(1, Interface::Core, None),
                far(2, Interface::Access, Some(OuterHeader { teid: s.downlink_teid, peer: s.gnb })),
            ],
        )
    }
}

/// Everything the workers' instances share.
pub struct Upf {
    /// The N3 (gNB side) port.
    pub n3: PortId,
    /// Our GTP-U address on N3.
    pub n3_address: u32,
    /// Our GTP-U address on N3 over IPv6 (IPv6 underlay), if any.
    pub n3_address6: Option<[u8; 16]>,
    /// The N6 (data network side) port.
    pub n6: PortId,
    /// The next hop of all N6 traffic.
    pub n6_gateway: u32,
    /// The next hop toward every gNB, when they are not on N3's link (a
    /// router on the N3 network); `None`: gNBs are on-link.
    pub n3_gateway: Option<u32>,
    /// The sessions, replaced on a change.
    pub sessions: Arc<Published<Sessions>>,
    /// The N4 (PFCP) address to listen on, if an SMF drives us.
    pub n4: Option<std::net::SocketAddrV4>,
    /// The only peers PFCP is accepted from, when any are given: N4 is a
    /// control interface, and a datagram from elsewhere could delete
    /// every session (TS 33.501 9.9 protects N4 with NDS/IP; this is the
    /// UPF's own filter beside it).
    pub smf: Vec<std::net::IpAddr>,
    /// How each associated SMF is watched (`None`: no heartbeats sent).
    pub smf_watch: Option<crate::pfcp::Watch>,
    /// The configured sessions (PFCP's go beside them).
    pub statics: Vec<Arc<Session>>,
    /// The URRs' counters (none without N4).
    pub usage: Arc<Usage>,
    /// Downlink packets each worker may hold for buffering FARs (1536
    /// octets each, allocated at start).
    pub buffer_packets: usize,
    /// UEs whose first packet a worker held (IPv4 address, or IPv6 /64):
    /// the N4 side reports them to the SMF (Downlink Data Report).
    pub buffering: Arc<ArrayQueue<u64>>,
}

/// Packets a worker holds for buffering FARs unless told otherwise (1.5
/// MiB); an N4-less UPF has no buffering FARs and holds none.
const DEFAULT_BUFFER_PACKETS: usize = 1024;

/// Checks the parameters against the ports and each other into the
/// model; every problem located.
pub(crate) fn resolve(p: UpfParams, params: &Params<'_>, env: &BuildEnv<'_>) -> Result<Upf, Vec<Diagnostic>> {
    let mut errors = Vec::new();
    let known = env.ports.join(", ");
    let mut port = |key: &str, name: &str| {
        let id = env.port_id(name);
        if id.is_none() {
            errors.push(
                params.error(key, format!("no port named `{name}`"), "here").help(format!("known ports: {known}")),
            );
        }
        id
    };
    let (n3, n6) = (port("n3", &p.n3), port("n6", &p.n6));
    if n3.is_some() && n3 == n6 {
        errors.push(
            params.error("n6", "N3 and N6 are one port", "here").help("two ports: gNBs on N3, the data network on N6"),
        );
    }
    let statics: Vec<Arc<Session>> = p.sessions.iter().map(|s| Arc::new(s.rules())).collect();
    let sessions = Sessions::new(statics.clone(), 0)
        .map_err(|e| errors.push(params.error("sessions", e, "here").help("one TEID and one UE address per session")))
        .ok();
    if p.n3_address6.is_none() && p.sessions.iter().any(|s| s.gnb.is_ipv6()) {
        errors.push(
            params
                .error("sessions", "a gNB over IPv6 without our IPv6 address", "here")
                .help("give `n3-address6`, our GTP-U address on N3 over IPv6"),
        );
    }
    if p.sessions.iter().any(|s| s.qfi.is_some_and(|q| q > 63)) {
        errors.push(params.error("sessions", "a QFI above 63", "here").help("QFI has 6 bits: 0 to 63"));
    }
    let valid = |s: f64| s.is_finite() && (0.0..=3600.0).contains(&s);
    if !valid(p.heartbeat_interval)
        || !valid(p.heartbeat_timeout)
        || p.heartbeat_timeout == 0.0
        || p.heartbeat_tries == 0
    {
        errors.push(
            params
                .error("heartbeat-interval", "heartbeat timing out of range", "here")
                .help("heartbeat-interval 0 (none sent) to 3600 s, heartbeat-timeout above 0 to 3600 s, heartbeat-tries 1 or more"),
        );
    }
    if !p.smf.is_empty() && p.n4.is_none() {
        errors.push(
            params
                .error("smf", "SMF addresses without N4", "here")
                .help("give `n4 = \"ADDRESS:8805\"`, where PFCP is served, or leave `smf` out"),
        );
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(Upf {
        n3: n3.expect("checked"),
        n3_address: u32::from(p.n3_address),
        n3_address6: p.n3_address6.map(|a| a.octets()),
        n6: n6.expect("checked"),
        n6_gateway: u32::from(p.n6_gateway),
        n3_gateway: p.n3_gateway.map(u32::from),
        sessions: Published::new(sessions.expect("checked")),
        n4: p.n4,
        smf: p.smf,
        smf_watch: (p.heartbeat_interval > 0.0).then(|| crate::pfcp::Watch {
            interval: std::time::Duration::from_secs_f64(p.heartbeat_interval),
            timeout: std::time::Duration::from_secs_f64(p.heartbeat_timeout),
            tries: p.heartbeat_tries,
            on_failure: match p.on_smf_failure {
                OnFailureParam::Keep => crate::pfcp::OnSmfFailure::Keep,
                OnFailureParam::Release => crate::pfcp::OnSmfFailure::Release,
            },
        }),
        statics,
        usage: Usage::new(if p.n4.is_some() { p.max_urrs.unwrap_or(DEFAULT_MAX_URRS) } else { 0 }),
        buffer_packets: if p.n4.is_some() { p.buffer_packets.unwrap_or(DEFAULT_BUFFER_PACKETS) } else { 0 },
        buffering: Arc::new(ArrayQueue::new(1024)),
    })
}
