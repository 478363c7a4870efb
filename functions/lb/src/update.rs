//! Backend changes while traffic flows: a backends file (`backends-file`)
//! lists, per VIP, the backends with their weights and drain flags; when
//! it changes, the configuration reloads ([`nfv_core::reload`]): the file
//! is checked, the Maglev tables rebuilt off the hot path and the new
//! services published; workers take them at their next batch. A file with
//! an error is refused whole (every problem reported at its line and
//! column) and the running services kept.
//!
//! ```toml
//! [[vips]]
//! vip = "192.0.2.10:80"
//! proto = "tcp"                      # default
//! backends = [{ addr = "10.1.0.2", weight = 2 }, { addr = "10.1.0.3", drain = true }]
//! ```
//!
//! A VIP the file does not list keeps its backends; a backend a listed
//! VIP no longer has is removed (its connections move); `drain = true`
//! (or weight 0) keeps its connections and sends it no new flow.

use std::net::Ipv4Addr;

use nfv_core::filewatch::{FileError, entries, entry, line_column};
use serde::Deserialize;
use toml::Spanned;
use toml::de::DeValue;

use nfv_core::config::ipv4_endpoint;

use crate::config::BackendParams;
use nfv_net::wire::proto;

use crate::services::{Services, State, Wanted};

/// A VIP entry without its backends (each backend is read on its own,
/// so that one bad backend does not hide the next).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VipHead {
    vip: String,
    #[serde(default = "tcp")]
    proto: String,
}

/// A problem at byte `offset` of `text`.
fn at(text: &str, offset: usize, message: String, help: &str) -> FileError {
    let (line, column) = line_column(text, offset);
    FileError { line, column, message, help: help.into() }
}

const BACKEND_HELP: &str = "{ addr = \"10.1.0.2\", weight = 1, drain = false }";
const VIP_HELP: &str = "[[vips]] vip = \"192.0.2.10:80\" backends = [{ addr = \"10.1.0.2\", weight = 1 }]";

fn tcp() -> String {
    "tcp".into()
}

/// `current` with the backends `text` (a backends file) lists, its
/// version one more; or every problem, located.
pub fn apply(text: &str, current: &Services) -> Result<Services, Vec<FileError>> {
    let items = entries(text, "vips", VIP_HELP)?;
    let mut errors = Vec::new();
    let mut next = current.clone();
    next.version += 1;
    for item in &items {
        let start = item.span().start;
        let DeValue::Table(t) = item.get_ref() else {
            errors.push(at(text, start, "each `vips` entry must be a table".into(), VIP_HELP));
            continue;
        };
        // The backends read one by one, the rest of the entry as a head.
        let (listed, head): (Vec<_>, Vec<_>) = t.iter().partition(|(k, _)| k.get_ref() == "backends");
        let head: toml::de::DeTable = head.into_iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        let head = entry::<VipHead>(text, &Spanned::new(item.span(), DeValue::Table(head)), VIP_HELP);
        let Some(DeValue::Array(list)) = listed.first().map(|(_, l)| l.get_ref()) else {
            errors.extend(head.err());
            errors.push(at(text, start, "`backends` missing or not an array".into(), VIP_HELP));
            continue;
        };
        // Every backend is read, whatever is wrong with the rest.
        let mut backends = Vec::new();
        for b in list {
            match entry::<BackendParams>(text, b, BACKEND_HELP) {
                Ok(p) => backends.push(p),
                Err(e) => errors.push(e),
            }
        }
        let v = match head {
            Ok(v) if backends.len() == list.len() => v,
            Ok(_) => continue,
            Err(e) => {
                errors.push(e);
                continue;
            }
        };
        let mut err = |message: String, help: &str| errors.push(at(text, start, message, help));
        let pr = match v.proto.as_str() {
            "tcp" => proto::TCP,
            "udp" => proto::UDP,
            other => {
                err(format!("protocol `{other}`"), "proto = \"tcp\" or \"udp\"");
                continue;
            }
        };
        let Some((addr, port)) = ipv4_endpoint(&v.vip) else {
            err(format!("`{}` is not address:port", v.vip), "vip = \"192.0.2.10:80\"");
            continue;
        };
        let Some(vi) = next.find(pr, addr, port) else {
            let known: Vec<String> =
                current.vips.iter().map(|v| format!("{}:{}", Ipv4Addr::from(v.addr), v.port)).collect();
            err(format!("{} {} is not a configured VIP", v.proto, v.vip), &format!("configured: {}", known.join(", ")));
            continue;
        };
        let wanted: Vec<Wanted> =
            backends.iter().map(|b| Wanted { addr: u32::from(b.addr), weight: b.weight, drain: b.drain }).collect();
        if next.vips[vi].size as usize <= wanted.len() * 100 {
            err(format!("{} backends for a table of {}", wanted.len(), next.vips[vi].size), "a bigger table-size");
            continue;
        }
        next.vips[vi].set_backends(&wanted);
    }
    if errors.is_empty() {
        Ok(next)
    } else {
        errors.sort_by_key(|e| (e.line, e.column));
        Err(errors)
    }
}

/// What a version of the services is, one line: per VIP, its backends
/// by state, and a warning for a VIP without an active backend.
pub fn summary(services: &Services) -> String {
    let vips: Vec<String> = services
        .vips
        .iter()
        .map(|v| {
            let count = |s: State| v.backends.iter().filter(|b| b.state == s).count();
            let (active, draining) = (count(State::Active), count(State::Drained));
            let vip =
                format!("{} {}:{}", if v.proto == proto::TCP { "tcp" } else { "udp" }, Ipv4Addr::from(v.addr), v.port);
            match (active, draining) {
                (0, _) => format!(
                    "{vip} no active backend ({draining} draining): new connections refused with {}",
                    if v.proto == proto::TCP { "a TCP reset" } else { "ICMP port unreachable" }
                ),
                (a, 0) => format!("{vip} {a} active"),
                (a, d) => format!("{vip} {a} active, {d} draining"),
            }
        })
        .collect();
    format!("backends version {}: {}", services.version, vips.join("; "))
}
