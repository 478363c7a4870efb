//! The `nat44` stage's TOML parameters, checked (every problem located,
//! with what to write instead) and resolved into the [`Nat`] description
//! every worker's instance shares.
//!
//! ```toml
//! stages = [{ kind = "nat44", inside = ["d0"], outside = "d1",
//!             pool = ["198.51.100.10"], outside-gateway = "198.51.100.2",
//!             forwards = [{ proto = "tcp", outside = "198.51.100.10:8080", inside = "10.0.0.2:80" }] }]
//! ```

use std::net::Ipv4Addr;

use nfv_core::config::{Diagnostic, Params, ipv4_endpoint, ipv4_prefix};
use nfv_core::{BuildEnv, PortId};
use serde::Deserialize;

use std::sync::{Arc, Mutex};

use nfv_core::published::Published;

use crate::sessions::{Filtering, Forward, MAX_FORWARDS, Timeouts, WhenFull, proto};

#[derive(Deserialize, Clone, Copy, Default, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
enum FilteringParam {
    #[default]
    EndpointIndependent,
    AddressDependent,
}

#[derive(Deserialize, Clone, Copy, Default, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
enum WhenFullParam {
    #[default]
    EvictOldest,
    Refuse,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct NatParams {
    inside: Vec<String>,
    outside: String,
    pool: Vec<String>,
    #[serde(default)]
    inside_prefixes: Vec<String>,
    #[serde(default = "port_range")]
    port_range: String,
    #[serde(default)]
    filtering: FilteringParam,
    #[serde(default = "max_sessions")]
    max_sessions: usize,
    #[serde(default)]
    when_full: WhenFullParam,
    #[serde(default)]
    timeouts: TimeoutParams,
    #[serde(default)]
    forwards: Vec<ForwardParams>,
    outside_gateway: Option<Ipv4Addr>,
    #[serde(default = "fragments")]
    fragments: usize,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct TimeoutParams {
    udp: Option<u32>,
    tcp_established: Option<u32>,
    tcp_transitory: Option<u32>,
    icmp: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ForwardParams {
    proto: String,
    outside: String,
    inside: String,
}

fn port_range() -> String {
    "1024-65535".into()
}

fn max_sessions() -> usize {
    1 << 18
}

fn fragments() -> usize {
    4096
}

/// The port forwards running, replaced whole by a reload or `nfv ctl nat
/// forward`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Forwards {
    /// The forwards.
    pub list: Vec<Forward>,
    /// Replaced this many times.
    pub version: u64,
}

/// Everything the workers' instances share.
#[derive(Debug)]
pub struct Nat {
    /// Inside ports.
    pub inside: Vec<PortId>,
    /// The outside port.
    pub outside: PortId,
    /// Pool addresses (host order).
    pub pool: Vec<u32>,
    /// Inside sources translated: (network, mask); empty: all.
    pub inside_prefixes: Vec<(u32, u32)>,
    /// Outside ports handed out.
    pub port_range: (u16, u16),
    /// Filtering of inbound packets on dynamic mappings.
    pub filtering: Filtering,
    /// Sessions per worker.
    pub max_sessions: usize,
    /// Policy when full.
    pub when_full: WhenFull,
    /// Idle timeouts.
    pub timeouts: Timeouts,
    /// Port forwards (static mappings), changed live.
    pub forwards: Arc<Published<Forwards>>,
    /// Held from reading the running forwards to publishing the next: a
    /// reload and an `nfv ctl nat` command do not both build on one.
    pub update: Mutex<()>,
    /// Next hop of every outside destination (a NAT's outside is a
    /// default route); without one, destinations must be neighbours on
    /// the outside link.
    pub outside_gateway: Option<u32>,
    /// Datagrams whose fragments are followed, per worker.
    pub fragments: usize,
    /// Pool and forward addresses at the start, sorted: what we answer
    /// for outside (a forward added later must use one of them).
    pub outside_addrs: Vec<u32>,
}

/// `tcp`, `udp`.
pub fn proto_name(p: u8) -> &'static str {
    if p == proto::TCP { "tcp" } else { "udp" }
}

/// A forward as written: `tcp 198.51.100.10:8080 -> 10.0.0.2:80`.
pub fn forward_text(f: &Forward) -> String {
    let (p, ia, ip, oa, op) = *f;
    format!("{} {}:{op} -> {}:{ip}", proto_name(p), Ipv4Addr::from(oa), Ipv4Addr::from(ia))
}

/// Reads a forward: protocol, outside and inside endpoints; or (what is
/// wrong, what to write).
pub fn forward(proto_: &str, outside: &str, inside: &str) -> Result<Forward, (String, String)> {
    let pr = match proto_ {
        "tcp" => proto::TCP,
        "udp" => proto::UDP,
        _ => return Err((format!("forward protocol `{proto_}`"), "proto = \"tcp\" or \"udp\"".into())),
    };
    match (ipv4_endpoint(outside), ipv4_endpoint(inside)) {
        (Some(o), Some(i)) => Ok((pr, i.0, i.1, o.0, o.1)),
        _ => Err((
            format!("forward `{outside}` -> `{inside}`: not address:port"),
            "{ proto = \"tcp\", outside = \"198.51.100.10:8080\", inside = \"10.0.0.2:80\" }".into(),
        )),
    }
}

/// Checks `list` as a whole: one forward per outside endpoint and per
/// inside endpoint, at most [`MAX_FORWARDS`].
pub fn check_forwards(list: &[Forward]) -> Result<(), (String, String)> {
    if list.len() > MAX_FORWARDS {
        return Err((format!("{} port forwards", list.len()), format!("at most {MAX_FORWARDS}")));
    }
    for (i, f) in list.iter().enumerate() {
        for g in &list[..i] {
            if (f.0, f.3, f.4) == (g.0, g.3, g.4) {
                return Err((
                    format!("{} is forwarded twice", forward_text(f)),
                    "one forward per outside address and port".into(),
                ));
            }
            if (f.0, f.1, f.2) == (g.0, g.1, g.2) {
                return Err((
                    format!("{} and {} forward to one inside endpoint", forward_text(g), forward_text(f)),
                    "one forward per inside address and port".into(),
                ));
            }
        }
    }
    Ok(())
}

impl Nat {
    /// Publishes the forwards `f` makes of the running ones, checked: the
    /// one way they change (reloads and `nfv ctl nat forward`). A line on
    /// what runs then; `Ok(None)` when nothing changed.
    pub fn change(&self, f: impl FnOnce(&mut Vec<Forward>) -> Result<(), String>) -> Result<Option<String>, String> {
        let _one = self.update.lock().expect("nat update lock");
        let old = self.forwards.load();
        let mut list = old.list.clone();
        f(&mut list)?;
        check_forwards(&list).map_err(|(m, h)| format!("{m} ({h})"))?;
        if let Some(new) = list.iter().find(|f| !self.outside_addrs.contains(&f.3)) {
            return Err(format!(
                "{}: {} is not an address nfv answers for outside (pool or a forward's at the start); restart to add it",
                forward_text(new),
                Ipv4Addr::from(new.3)
            ));
        }
        if list == old.list {
            return Ok(None);
        }
        let next = Forwards { list, version: old.version + 1 };
        let line = format!("forwards version {}: {} port forwards", next.version, next.list.len());
        self.forwards.publish(next);
        Ok(Some(line))
    }

    /// True for an address the NAT answers for on the outside (pool or a
    /// forward's). Most destinations fall outside the span at once.
    #[inline]
    pub fn is_outside_address(&self, a: u32) -> bool {
        match (self.outside_addrs.first(), self.outside_addrs.last()) {
            (Some(&lo), Some(&hi)) if a >= lo && a <= hi => self.outside_addrs.binary_search(&a).is_ok(),
            _ => false,
        }
    }

    /// True when `src` is to be translated.
    pub fn translates(&self, src: u32) -> bool {
        self.inside_prefixes.is_empty() || self.inside_prefixes.iter().any(|&(n, m)| src & m == n)
    }

    /// True when `dst` is in an inside prefix (none configured: never):
    /// traffic between inside hosts is not the NAT's to translate.
    #[inline]
    pub fn is_inside(&self, dst: u32) -> bool {
        self.inside_prefixes.iter().any(|&(n, m)| dst & m == n)
    }
}

pub(crate) fn resolve(p: NatParams, params: &Params<'_>, env: &BuildEnv<'_>) -> Result<Nat, Vec<Diagnostic>> {
    let mut errors = Vec::new();
    let mut err = |key: &str, msg: String, help: String| errors.push(params.error(key, msg, "here").help(help));
    let known = env.ports.join(", ");
    let outside = env.port_id(&p.outside);
    if outside.is_none() {
        err("outside", format!("no port named `{}`", p.outside), format!("known ports: {known}"));
    }
    let mut inside = Vec::new();
    for name in &p.inside {
        match env.port_id(name) {
            Some(id) if Some(id) == outside => {
                err("inside", format!("`{name}` is the outside port"), "inside and outside are different ports".into())
            }
            Some(id) => inside.push(id),
            None => err("inside", format!("no port named `{name}`"), format!("known ports: {known}")),
        }
    }
    if p.inside.is_empty() {
        err("inside", "no inside port".into(), "inside = [\"d0\"]".into());
    }
    let mut pool = Vec::new();
    for s in &p.pool {
        match ipv4_prefix(s) {
            // A prefix gives all its addresses (a /32 one).
            Some((_, mask)) if !mask >= 1024 => {
                err("pool", format!("`{s}` is more than 1024 addresses"), "a smaller prefix, or a few".into())
            }
            Some((net, mask)) => pool.extend((0..=!mask).map(|i| net | i)),
            None => err(
                "pool",
                format!("`{s}` is not an IPv4 address or prefix"),
                "pool = [\"198.51.100.10\", \"198.51.100.16/30\"]".into(),
            ),
        }
    }
    if p.pool.is_empty() {
        err("pool", "the pool is empty".into(), "pool = [\"198.51.100.10\"]: the outside addresses to use".into());
    }
    let mut inside_prefixes = Vec::new();
    for s in &p.inside_prefixes {
        match ipv4_prefix(s) {
            Some(pfx) => inside_prefixes.push(pfx),
            None => err(
                "inside-prefixes",
                format!("`{s}` is not an IPv4 prefix"),
                "inside-prefixes = [\"10.0.0.0/8\"]".into(),
            ),
        }
    }
    let range = p
        .port_range
        .split_once('-')
        .and_then(|(a, b)| Some((a.trim().parse::<u16>().ok()?, b.trim().parse::<u16>().ok()?)));
    let port_range = match range {
        Some((lo, hi)) if lo >= 1 && lo <= hi => (lo, hi),
        _ => {
            err("port-range", format!("`{}` is not a port range", p.port_range), "port-range = \"1024-65535\"".into());
            (1024, 65535)
        }
    };
    if !(1..=1 << 26).contains(&p.max_sessions) {
        err(
            "max-sessions",
            format!("{} sessions per worker", p.max_sessions),
            "1 to 67108864 (memory: about 160 bytes each)".into(),
        );
    }
    // RFC minimums: what a NAT MUST NOT go below.
    let d = Timeouts::default();
    let t = Timeouts {
        udp: p.timeouts.udp.unwrap_or(d.udp),
        tcp_established: p.timeouts.tcp_established.unwrap_or(d.tcp_established),
        tcp_transitory: p.timeouts.tcp_transitory.unwrap_or(d.tcp_transitory),
        icmp: p.timeouts.icmp.unwrap_or(d.icmp),
    };
    for (name, value, min, rfc) in [
        ("udp", t.udp, 120, "RFC 4787 REQ-5: at least 2 minutes (300 recommended)"),
        ("tcp-established", t.tcp_established, 7440, "RFC 5382 REQ-5: at least 2 hours 4 minutes"),
        ("tcp-transitory", t.tcp_transitory, 240, "RFC 5382 REQ-5: 4 minutes"),
        ("icmp", t.icmp, 60, "RFC 5508 REQ-1: at least 60 seconds"),
    ] {
        if value < min {
            err(
                "timeouts",
                format!("{name} timeout {value} s is below the RFC minimum"),
                format!("{rfc}: {name} = {min} or more"),
            );
        }
    }
    if let Some(g) = p.outside_gateway.filter(|g| pool.contains(&u32::from(*g))) {
        err(
            "outside-gateway",
            format!("the gateway {g} is a pool address"),
            "the pool holds our own addresses; the gateway is the next router".into(),
        );
    }
    let mut forwards = Vec::new();
    for f in &p.forwards {
        match forward(&f.proto, &f.outside, &f.inside) {
            Ok(f) => forwards.push(f),
            Err((m, h)) => err("forwards", m, h),
        }
    }
    if let Err((m, h)) = check_forwards(&forwards) {
        err("forwards", m, h);
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let mut outside_addrs: Vec<u32> = pool.iter().copied().chain(forwards.iter().map(|f| f.3)).collect();
    outside_addrs.sort_unstable();
    outside_addrs.dedup();
    Ok(Nat {
        outside_addrs,
        inside,
        outside: outside.expect("checked"),
        pool,
        inside_prefixes,
        port_range,
        filtering: match p.filtering {
            FilteringParam::EndpointIndependent => Filtering::EndpointIndependent,
            FilteringParam::AddressDependent => Filtering::AddressDependent,
        },
        max_sessions: p.max_sessions,
        when_full: match p.when_full {
            WhenFullParam::EvictOldest => WhenFull::EvictOldest,
            WhenFullParam::Refuse => WhenFull::Refuse,
        },
        timeouts: t,
        forwards: Published::new(Forwards { list: forwards, version: 0 }),
        update: Mutex::new(()),
        outside_gateway: p.outside_gateway.map(u32::from),
        fragments: p.fragments.max(1),
    })
}
