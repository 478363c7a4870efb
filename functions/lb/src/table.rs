//! `nfv ctl lb ...`: each VIP's backends listed (weight, state, share of
//! the Maglev table), a backend's weight set, drained, added or removed.
//! A change rebuilds the VIP's table off the hot path and publishes it as
//! a reload does ([`crate::config::Lb::change`]): connections keep their
//! backend unless it is removed; a later reload puts back what the
//! configuration and its backends file say.

use std::net::Ipv4Addr;

use nfv_core::live::Answer;
use nfv_net::wire::proto;

use crate::config::Lb;
use crate::services::{Services, State, Wanted};

/// The `nfv ctl lb` commands. VIP: `ADDR:PORT`, or `udp/ADDR:PORT` when
/// TCP and UDP share it.
pub const USAGE: &[&str] = &[
    "lb list",
    "lb weight VIP BACKEND WEIGHT",
    "lb drain VIP BACKEND",
    "lb add VIP BACKEND [WEIGHT]",
    "lb remove VIP BACKEND",
];

/// Runs one command (the words after `lb`).
pub(crate) fn command(lb: &Lb, words: &[&str]) -> Result<Answer, String> {
    let usage = || format!("usage: {}", USAGE.join(" | "));
    let weight = |w: &str| w.parse::<u32>().map_err(|_| format!("`{w}` is not a weight (0, 1, 2, ...)"));
    let (verb, vip, addr, w) = match words {
        ["list"] => return Ok(list(&lb.services.load())),
        ["weight", vip, addr, w] => ("weight", *vip, *addr, Some(weight(w)?)),
        ["add", vip, addr] => ("add", *vip, *addr, None),
        ["add", vip, addr, w] => ("add", *vip, *addr, Some(weight(w)?)),
        [verb @ ("drain" | "remove"), vip, addr] => (*verb, *vip, *addr, None),
        _ => return Err(usage()),
    };
    let backend: Ipv4Addr = addr.parse().map_err(|_| format!("`{addr}` is not an IPv4 address; {}", usage()))?;
    let backend = u32::from(backend);
    let changed = lb.change(|s| {
        let at = find(s, vip)?;
        let mut wanted: Vec<Vec<Wanted>> = s.vips.iter().map(|v| v.wanted()).collect();
        let list = &mut wanted[at];
        let known = list.iter().position(|b| b.addr == backend);
        let missing = || format!("{} has no backend {}", s.vips[at].name(), Ipv4Addr::from(backend));
        match (verb, known) {
            ("add", Some(_)) => return Err(format!("{} already has {}", s.vips[at].name(), Ipv4Addr::from(backend))),
            ("add", None) => {
                if s.vips[at].size as usize <= (list.len() + 1) * 100 {
                    return Err(format!("{} backends for a table of {}", list.len() + 1, s.vips[at].size));
                }
                list.push(Wanted { addr: backend, weight: w.unwrap_or(1), drain: false })
            }
            (_, None) => return Err(missing()),
            ("weight", Some(i)) => list[i] = Wanted { weight: w.expect("parsed"), drain: false, ..list[i] },
            ("drain", Some(i)) => list[i].drain = true,
            (_, Some(i)) => {
                list.remove(i);
            }
        }
        Ok(wanted)
    })?;
    Ok(Answer::line(changed.unwrap_or_else(|| "backends unchanged".into()) + "\n"))
}

/// The VIP `spec` names: `ADDR:PORT`, `tcp/ADDR:PORT` or `udp/ADDR:PORT`.
fn find(s: &Services, spec: &str) -> Result<usize, String> {
    let (protos, endpoint) = match spec.split_once('/') {
        Some(("tcp", e)) => (&[proto::TCP][..], e),
        Some(("udp", e)) => (&[proto::UDP][..], e),
        Some(_) => return Err(format!("`{spec}`: the protocol is tcp or udp")),
        None => (&[proto::TCP, proto::UDP][..], spec),
    };
    let (addr, port) = nfv_core::config::ipv4_endpoint(endpoint)
        .ok_or_else(|| format!("`{spec}` is not a VIP (192.0.2.10:80, udp/192.0.2.10:53)"))?;
    let found: Vec<usize> = protos.iter().filter_map(|&p| s.find(p, addr, port)).collect();
    let known = || s.vips.iter().map(|v| v.name()).collect::<Vec<_>>().join(", ");
    match found[..] {
        [one] => Ok(one),
        [] => Err(format!("no VIP {spec}; configured: {}", known())),
        _ => Err(format!("TCP and UDP both serve {spec}: write tcp/{spec} or udp/{spec}")),
    }
}

/// Every VIP's backends: weight, state, and the share of new flows the
/// Maglev table gives each.
fn list(s: &Services) -> Answer {
    let mut rows = Vec::new();
    for v in &s.vips {
        let mut slots = vec![0usize; v.backends.len()];
        for &b in &v.table {
            if let Some(n) = slots.get_mut(b as usize) {
                *n += 1;
            }
        }
        for (i, b) in v.backends.iter().enumerate().filter(|(_, b)| b.state != State::Removed) {
            let state = if b.state == State::Active { "active" } else { "draining" };
            rows.push(vec![
                v.name(),
                format!("{:?}", v.mode).to_lowercase(),
                Ipv4Addr::from(b.addr).to_string(),
                b.weight.to_string(),
                state.into(),
                format!("{:.1}%", slots[i] as f64 * 100.0 / v.size as f64),
            ]);
        }
    }
    Answer {
        text: format!("backends version {}\n", s.version),
        ..Answer::rows(&["vip", "mode", "backend", "weight", "state", "share"], rows)
    }
}
