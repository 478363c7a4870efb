//! The `acl` stage's TOML parameters, checked (each rule located by
//! file:line:column) and compiled into the classifiers every worker's
//! instance shares.
//!
//! ```toml
//! stages = [{ kind = "acl", default = "deny", rules = [
//!     { action = "permit", src = "10.10.0.0/24", proto = "tcp", dst-port = "80" },
//!     { action = "deny", tcp-flags = ["syn", "!ack"], ingress = "d1" },
//! ], rules-file = "fw.classbench", rules-file-action = "deny" }]
//! ```
//!
//! The rules file is watched (`watch-rules-file`, on by default): when it
//! changes, the new rules replace the running ones without stopping
//! traffic ([`crate::update`]).

use std::net::IpAddr;

use nfv_core::BuildEnv;
use nfv_core::config::{Diagnostic, Params};
use serde::Deserialize;
use toml::Spanned;

use crate::classify::split::{SplitForest, SplitParams};
use crate::rule::{Action, Family, Prefix, Rule, V4_DIMS, V6_DIMS, partition_v4, partition_v6};
use crate::rules_file::RulesFile;
use crate::update::RuleSource;

#[derive(Deserialize, Clone, Copy, PartialEq, Eq, Debug)]
#[serde(rename_all = "kebab-case")]
enum ActionParam {
    Permit,
    Deny,
    PermitReflect,
}

impl From<ActionParam> for Action {
    fn from(a: ActionParam) -> Self {
        match a {
            ActionParam::Permit => Action::Permit,
            ActionParam::Deny => Action::Deny,
            ActionParam::PermitReflect => Action::PermitReflect,
        }
    }
}

/// A number or a name (`proto = "tcp"`, `dst-port = "1024-65535"`).
#[derive(Deserialize, Clone, Debug)]
#[serde(untagged)]
enum NumOrText {
    Num(i64),
    Text(String),
}

/// One rule as written in TOML (inline, or in a `.toml` rules file).
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct RuleParams {
    action: ActionParam,
    src: Option<String>,
    dst: Option<String>,
    src_port: Option<NumOrText>,
    dst_port: Option<NumOrText>,
    proto: Option<NumOrText>,
    #[serde(default)]
    tcp_flags: Vec<String>,
    ingress: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct AclParams {
    #[serde(default = "deny")]
    default: ActionParam,
    #[serde(default = "permit")]
    non_ip: ActionParam,
    #[serde(default)]
    rules: Vec<Spanned<RuleParams>>,
    rules_file: Option<String>,
    #[serde(default = "deny")]
    rules_file_action: ActionParam,
    #[serde(default = "yes")]
    pub(crate) watch_rules_file: bool,
    #[serde(default = "reflect_flows")]
    reflect_flows: usize,
    #[serde(default)]
    reflect_timeouts: TimeoutParams,
}

/// Idle timeouts of reflect flows, in seconds.
#[derive(Deserialize, Clone, Copy)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct TimeoutParams {
    #[serde(default = "tcp_established")]
    tcp: f64,
    #[serde(default = "tcp_transient")]
    tcp_transient: f64,
    #[serde(default = "udp")]
    other: f64,
}

impl Default for TimeoutParams {
    fn default() -> Self {
        Self { tcp: tcp_established(), tcp_transient: tcp_transient(), other: udp() }
    }
}

fn reflect_flows() -> usize {
    65536
}

fn tcp_established() -> f64 {
    7200.0
}

fn tcp_transient() -> f64 {
    120.0
}

fn udp() -> f64 {
    120.0
}

/// Flow state for `permit-reflect` rules.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Reflect {
    /// Flows per worker.
    pub max_flows: usize,
    /// TCP established idle timeout, seconds.
    pub tcp: f64,
    /// TCP opening/closing idle timeout, seconds.
    pub tcp_transient: f64,
    /// UDP, ICMP and other idle timeout, seconds.
    pub other: f64,
}

fn yes() -> bool {
    true
}

fn deny() -> ActionParam {
    ActionParam::Deny
}

fn permit() -> ActionParam {
    ActionParam::Permit
}

/// The rules and their classifiers, shared by every worker's instance.
#[derive(Clone)]
pub struct Acl {
    /// Rules in priority order (TOML rules first, then the file's).
    pub rules: Vec<Rule>,
    /// Where each rule came from, for reports (`rules[3]`, `fw.cb:12`).
    pub origins: Vec<String>,
    /// IPv4 classifier and the rule number of each of its boxes.
    pub v4: (SplitForest<V4_DIMS>, Vec<u32>),
    /// IPv6 classifier and the rule number of each of its boxes.
    pub v6: (SplitForest<V6_DIMS>, Vec<u32>),
    /// Action when no rule matches.
    pub default: Action,
    /// Action for frames that are not IPv4/IPv6 (ARP, LLDP...).
    pub non_ip: Action,
    /// Flow state, when a rule is `permit-reflect`.
    pub reflect: Option<Reflect>,
    /// 0 for the rules the stage started with, then one more per update.
    pub version: u64,
    /// Per rule, its index in version `version - 1` ([`crate::update::carry`]),
    /// so that counters follow rules across an update; empty at version 0.
    pub carry: Vec<u32>,
    /// The rules as nfv's XDP filter holds them ([`crate::xdp`]): one
    /// sending everything up when it cannot hold them.
    pub xdp: std::sync::Arc<nfv_core::offload::Filter>,
}

impl Acl {
    /// Builds the classifiers for `rules` (off the hot path).
    pub fn new(rules: Vec<Rule>, origins: Vec<String>, default: Action, non_ip: Action, reflect: Reflect) -> Self {
        let of = |fam: Family| -> Vec<u32> {
            (0..rules.len() as u32)
                .filter(|&i| matches!(rules[i as usize].family(), Some(f) if f == fam || f == Family::Any))
                .collect()
        };
        let (ids4, ids6) = (of(Family::V4), of(Family::V6));
        let boxes4 = ids4.iter().map(|&i| rules[i as usize].v4_box()).collect();
        let boxes6 = ids6.iter().map(|&i| rules[i as usize].v6_box()).collect();
        let v4 = (SplitForest::build(boxes4, partition_v4, SplitParams::default()), ids4);
        let v6 = (SplitForest::build(boxes6, partition_v6, SplitParams::default()), ids6);
        let reflect = rules.iter().any(|r| r.action == Action::PermitReflect).then_some(reflect);
        let xdp = crate::xdp::filter(&rules, default, non_ip).unwrap_or_else(nfv_core::offload::Filter::up);
        Self { rules, origins, v4, v6, default, non_ip, reflect, version: 0, carry: Vec::new(), xdp: xdp.into() }
    }
}

pub(crate) fn resolve(
    p: AclParams,
    params: &Params<'_>,
    env: &BuildEnv<'_>,
) -> Result<(RuleSource, Acl), Vec<Diagnostic>> {
    let mut errors = Vec::new();
    let mut inline = Vec::new();
    let mut inline_origins = Vec::new();
    for (i, r) in p.rules.iter().enumerate() {
        match rule(r.get_ref(), env) {
            Ok(rule) => {
                inline.push(rule);
                inline_origins.push(format!("rules[{i}]"));
            }
            Err((msg, help)) => errors.push(Diagnostic::new(r.span(), msg, "in this rule").help(help)),
        }
    }
    let t = p.reflect_timeouts;
    if p.reflect_flows == 0 || [t.tcp, t.tcp_transient, t.other].iter().any(|&s| !(s > 0.0 && s < 1e7)) {
        errors.push(
            params
                .error("reflect-flows", "reflect flows and timeouts must be positive", "here")
                .help("reflect-flows = 65536, reflect-timeouts = { tcp = 7200, tcp-transient = 120, other = 120 }"),
        );
    }
    if p.default == ActionParam::PermitReflect || p.non_ip == ActionParam::PermitReflect {
        errors.push(
            params
                .error("default", "`permit-reflect` is for rules", "here")
                .help("the default and non-ip actions are permit or deny"),
        );
    }
    let source = RuleSource {
        inline,
        inline_origins,
        file: p.rules_file.map(|path| RulesFile { path: env.path(&path), action: p.rules_file_action.into() }),
        ports: env.ports.to_vec(),
        default: p.default.into(),
        non_ip: p.non_ip.into(),
        reflect: Reflect { max_flows: p.reflect_flows, tcp: t.tcp, tcp_transient: t.tcp_transient, other: t.other },
    };
    match source.compile(0) {
        Ok(acl) if errors.is_empty() => Ok((source, acl)),
        Ok(_) => Err(errors),
        Err(file_errors) => {
            let path = &source.file.as_ref().expect("only the file can fail").path;
            errors.extend(
                file_errors.iter().map(|e| params.error("rules-file", e.located(path), "in this file").help(&e.help)),
            );
            Err(errors)
        }
    }
}

/// One TOML rule, or what is wrong with it and how to fix it.
pub(crate) fn rule(r: &RuleParams, env: &BuildEnv<'_>) -> Result<Rule, (String, String)> {
    let src = r.src.as_deref().map(prefix).transpose()?;
    let dst = r.dst.as_deref().map(prefix).transpose()?;
    let proto = match &r.proto {
        None => (0, 0),
        Some(p) => (protocol(p)?, 0xff),
    };
    let tcp_flags = flags(&r.tcp_flags)?;
    if tcp_flags.1 != 0 && proto != (6, 0xff) {
        return Err(("`tcp-flags` without `proto = \"tcp\"`".into(), "add proto = \"tcp\" to this rule".into()));
    }
    let ports = |p: &Option<NumOrText>, key: &str| -> Result<(u16, u16), (String, String)> {
        let Some(p) = p else { return Ok((0, u16::MAX)) };
        // ICMP and ICMPv6: source port is the type, destination port the code.
        if !matches!(proto.0, 6 | 17 | 132 | 1 | 58) || proto.1 == 0 {
            return Err((
                format!("`{key}` without a protocol that has ports"),
                "add proto = \"tcp\", \"udp\" or \"sctp\" (or \"icmp\"/\"icmpv6\": type and code)".into(),
            ));
        }
        port_range(p)
            .ok_or_else(|| (format!("`{key}`: not a port or port range"), "a number 0-65535 or \"LO-HI\"".into()))
    };
    let rule = Rule {
        src,
        dst,
        sport: ports(&r.src_port, "src-port")?,
        dport: ports(&r.dst_port, "dst-port")?,
        proto,
        tcp_flags,
        ingress: match &r.ingress {
            None => None,
            Some(name) => Some(env.port_id(name).ok_or_else(|| {
                (format!("no port named `{name}`"), format!("known ports: {}", env.ports.join(", ")))
            })?),
        },
        action: r.action.into(),
    };
    if rule.family().is_none() {
        return Err((
            "`src` and `dst` are of different address families".into(),
            "use two IPv4 or two IPv6 prefixes".into(),
        ));
    }
    Ok(rule)
}

fn prefix(s: &str) -> Result<Prefix, (String, String)> {
    let bad = || (format!("`{s}` is not an address or prefix"), "write 10.0.0.0/8, 192.0.2.1 or 2001:db8::/32".into());
    let (a, len) = match s.split_once('/') {
        Some((a, l)) => (a, Some(l.parse::<u8>().map_err(|_| bad())?)),
        None => (s, None),
    };
    let addr: IpAddr = a.parse().map_err(|_| bad())?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let len = len.unwrap_or(max);
    if len > max {
        return Err((format!("prefix length {len} is past {max}"), format!("use 0-{max}")));
    }
    Ok(Prefix { addr, len })
}

fn protocol(p: &NumOrText) -> Result<u8, (String, String)> {
    let help = || "a number 0-255 or tcp, udp, icmp, icmpv6, sctp, gre, esp".to_string();
    match p {
        NumOrText::Num(n) => u8::try_from(*n).map_err(|_| (format!("protocol {n} is not 0-255"), help())),
        NumOrText::Text(t) => match t.as_str() {
            "tcp" => Ok(6),
            "udp" => Ok(17),
            "icmp" => Ok(1),
            "icmpv6" => Ok(58),
            "sctp" => Ok(132),
            "gre" => Ok(47),
            "esp" => Ok(50),
            _ => t.parse().map_err(|_| (format!("unknown protocol `{t}`"), help())),
        },
    }
}

fn port_range(p: &NumOrText) -> Option<(u16, u16)> {
    match p {
        NumOrText::Num(n) => u16::try_from(*n).ok().map(|v| (v, v)),
        NumOrText::Text(t) => {
            let (lo, hi) = t.split_once('-').unwrap_or((t, t));
            let (lo, hi) = (lo.trim().parse().ok()?, hi.trim().parse().ok()?);
            (lo <= hi).then_some((lo, hi))
        }
    }
}

/// TCP flags that must be set (`syn`) or clear (`!ack`), as value/mask
/// (RFC 9293 section 3.1 bit order).
/// TCP flag names and bits (RFC 9293 3.1, RFC 3168 for ECE and CWR).
pub const TCP_FLAGS: [(&str, u8); 8] = [
    ("fin", 0x01),
    ("syn", 0x02),
    ("rst", 0x04),
    ("psh", 0x08),
    ("ack", 0x10),
    ("urg", 0x20),
    ("ece", 0x40),
    ("cwr", 0x80),
];

fn flags(names: &[String]) -> Result<(u8, u8), (String, String)> {
    let (mut value, mut mask) = (0u8, 0u8);
    for n in names {
        let (clear, name) = n.strip_prefix('!').map_or((false, n.as_str()), |rest| (true, rest));
        let Some(&(_, bit)) = TCP_FLAGS.iter().find(|(f, _)| *f == name) else {
            return Err((
                format!("unknown TCP flag `{name}`"),
                "fin, syn, rst, psh, ack, urg, ece, cwr; `!` before a flag means it must be clear".into(),
            ));
        };
        mask |= bit;
        if !clear {
            value |= bit;
        }
    }
    Ok((value, mask))
}
