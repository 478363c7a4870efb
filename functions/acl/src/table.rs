//! `nfv ctl acl ...`: the running rules listed with their hits (summed
//! over the workers), a rule added or deleted. A change compiles the new
//! rule set off the hot path and publishes it as a reload does
//! ([`crate::builder`]): counters follow the rules it keeps, and a later
//! reload puts back what the configuration and its rules file say.

use std::fmt::Write;

use nfv_core::BuildEnv;
use nfv_core::live::Answer;
use serde::Deserialize;

use crate::builder::AclShared;
use crate::config::{Acl, RuleParams, TCP_FLAGS, rule};
use crate::rule::{Action, Prefix, Rule};

/// The `nfv ctl acl` commands.
pub const USAGE: &[&str] = &[
    "acl list",
    "acl add [--at N] action=permit|deny|permit-reflect [src=PREFIX] [dst=PREFIX] [proto=P] [src-port=P[-P]] \
     [dst-port=P[-P]] [tcp-flags=syn,!ack] [ingress=PORT]",
    "acl delete N",
];

/// Runs one command (the words after `acl`).
pub(crate) fn command(s: &AclShared, words: &[&str]) -> Result<Answer, String> {
    match words {
        ["list"] => Ok(list(s)),
        ["add", rest @ ..] => add(s, rest),
        ["delete", n] => delete(s, n),
        _ => Err(format!("usage: {}", USAGE.join(" | "))),
    }
}

/// Every rule in order (the number `delete` and `--at` take), where it
/// came from, and its packets and bytes; then the default action's.
fn list(s: &AclShared) -> Answer {
    let acl = s.live.load();
    let hits = s.board.sum(acl.version, acl.rules.len());
    let mut rows: Vec<Vec<String>> = acl
        .rules
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let [p, b] = hits[i];
            let text = describe(r, &s.source.ports);
            vec![
                (i + 1).to_string(),
                action(r.action).into(),
                text,
                acl.origins[i].clone(),
                p.to_string(),
                b.to_string(),
            ]
        })
        .collect();
    let [p, b] = hits[acl.rules.len()];
    rows.push(vec!["-".into(), action(acl.default).into(), "default".into(), "-".into(), p.to_string(), b.to_string()]);
    Answer {
        text: format!("rules version {}: {} rules\n", acl.version, acl.rules.len()),
        ..Answer::rows(&["rule", "action", "match", "from", "packets", "bytes"], rows)
    }
}

fn action(a: Action) -> &'static str {
    match a {
        Action::Permit => "permit",
        Action::Deny => "deny",
        Action::PermitReflect => "permit-reflect",
    }
}

/// A rule's match as `acl add` takes it (`proto=tcp dst-port=80`), `any`
/// when it matches everything.
pub fn describe(r: &Rule, ports: &[String]) -> String {
    let mut out = String::new();
    let prefix = |p: &Prefix| format!("{}/{}", p.addr, p.len);
    if let Some(p) = &r.src {
        let _ = write!(out, " src={}", prefix(p));
    }
    if let Some(p) = &r.dst {
        let _ = write!(out, " dst={}", prefix(p));
    }
    if r.proto.1 != 0 {
        let name = match r.proto.0 {
            6 => "tcp".to_string(),
            17 => "udp".into(),
            1 => "icmp".into(),
            58 => "icmpv6".into(),
            132 => "sctp".into(),
            n => n.to_string(),
        };
        let _ = write!(out, " proto={name}");
    }
    for (key, (lo, hi)) in [("src-port", r.sport), ("dst-port", r.dport)] {
        match (lo, hi) {
            (0, u16::MAX) => {}
            (lo, hi) if lo == hi => {
                let _ = write!(out, " {key}={lo}");
            }
            (lo, hi) => {
                let _ = write!(out, " {key}={lo}-{hi}");
            }
        }
    }
    let (value, mask) = r.tcp_flags;
    if mask != 0 {
        let flags: Vec<String> = TCP_FLAGS
            .iter()
            .filter(|(_, bit)| mask & bit != 0)
            .map(|(name, bit)| format!("{}{name}", if value & bit != 0 { "" } else { "!" }))
            .collect();
        let _ = write!(out, " tcp-flags={}", flags.join(","));
    }
    if let Some(p) = r.ingress {
        let _ = write!(out, " ingress={}", ports.get(p as usize).map_or("?", String::as_str));
    }
    if out.is_empty() { "any".into() } else { out[1..].to_string() }
}

/// `add [--at N] key=value...`: the rule checked as a configuration's
/// rule is, inserted before rule N (default: after the last).
fn add(s: &AclShared, words: &[&str]) -> Result<Answer, String> {
    let (at, words) = match words {
        ["--at", n, rest @ ..] => (Some(number(n)?), rest),
        _ => (None, words),
    };
    // The words as an inline TOML table, read like a rules file's entry.
    let mut fields = Vec::new();
    for w in words {
        let Some((k, v)) = w.split_once('=').filter(|(_, v)| !v.contains(['"', '\\'])) else {
            return Err(format!("`{w}` is not key=value; usage: {}", USAGE[1]));
        };
        let value = if k == "tcp-flags" {
            let list: Vec<String> = v.split(',').map(|f| format!("\"{f}\"")).collect();
            format!("[{}]", list.join(", "))
        } else {
            format!("\"{v}\"")
        };
        fields.push(format!("{k} = {value}"));
    }
    #[derive(Deserialize)]
    struct One {
        rule: RuleParams,
    }
    let one: One = toml::from_str(&format!("rule = {{ {} }}", fields.join(", ")))
        .map_err(|e| format!("{}; usage: {}", e.message().trim(), USAGE[1]))?;
    let env = BuildEnv { ports: &s.source.ports, chains: &[], base: None, defined: &[] };
    let new = rule(&one.rule, &env).map_err(|(message, help)| format!("{message} ({help})"))?;
    let acl = s.live.load();
    let at = match at {
        Some(n) if n > acl.rules.len() + 1 => return Err(format!("--at {n}: there are {} rules", acl.rules.len())),
        Some(n) => n - 1,
        None => acl.rules.len(),
    };
    let (mut rules, mut origins) = (acl.rules.clone(), acl.origins.clone());
    rules.insert(at, new);
    origins.insert(at, "nfv ctl".into());
    let line = republish(s, &acl, rules, origins);
    Ok(Answer::line(format!("rule {} added: {}\n{line}\n", at + 1, describe(&new, &s.source.ports))))
}

/// `delete N`: rule N (as `list` numbers them) removed.
fn delete(s: &AclShared, n: &str) -> Result<Answer, String> {
    let n = number(n)?;
    let acl = s.live.load();
    if n > acl.rules.len() {
        return Err(format!("no rule {n}: there are {} rules", acl.rules.len()));
    }
    let (mut rules, mut origins) = (acl.rules.clone(), acl.origins.clone());
    let gone = rules.remove(n - 1);
    origins.remove(n - 1);
    let line = republish(s, &acl, rules, origins);
    Ok(Answer::line(format!("rule {n} deleted: {}\n{line}\n", describe(&gone, &s.source.ports))))
}

fn number(n: &str) -> Result<usize, String> {
    n.parse().ok().filter(|&n| n >= 1).ok_or_else(|| format!("`{n}` is not a rule number (1, 2, ...)"))
}

/// Compiles `rules` with the running actions and publishes them.
fn republish(s: &AclShared, acl: &Acl, rules: Vec<Rule>, origins: Vec<String>) -> String {
    let fresh = Acl::new(rules, origins, acl.default, acl.non_ip, s.source.reflect);
    s.publish(&fresh).unwrap_or_else(|| "rules unchanged".into())
}
