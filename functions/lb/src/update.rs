//! Backend changes while traffic flows: a backends file (`backends-file`)
//! lists, per VIP, the backends with their weights and drain flags; when
//! it changes, a control task checks it, rebuilds the Maglev tables off
//! the hot path and publishes the new services; workers take them at
//! their next batch. A file with an error is refused whole (every problem
//! reported at its line and column) and the running services kept.
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
use std::sync::Arc;

use nfv_core::ControlTask;
use nfv_core::filewatch::{FileError, FileWatch, entries, entry, line_column};
use nfv_core::published::Published;
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

/// Tells what the running backends are when the run starts, then watches
/// the backends file (when there is one); on a change, publishes the
/// services it describes, or reports why not and keeps the running ones.
pub struct BackendsWatch {
    watch: Option<FileWatch>,
    live: Arc<Published<Services>>,
    announced: bool,
}

impl BackendsWatch {
    /// A watch over `path` (none: the configuration's backends only); the
    /// running services are `live`.
    pub fn new(path: Option<&str>, live: Arc<Published<Services>>) -> Self {
        Self { watch: path.map(FileWatch::new), live, announced: false }
    }
}

impl ControlTask for BackendsWatch {
    fn poll(&mut self) -> Vec<String> {
        // Replaced versions no worker holds any more are freed here.
        self.live.reclaim();
        let mut lines = Vec::new();
        if !std::mem::replace(&mut self.announced, true) {
            let from = self.watch.as_ref().map_or("the configuration".into(), |w| w.path().display().to_string());
            lines.push(format!("{from}: {}", summary(&self.live.load())));
        }
        let Some(watch) = self.watch.as_mut() else { return lines };
        if !watch.changed() {
            return lines;
        }
        let path = watch.path().display().to_string();
        let old = self.live.load();
        let result = std::fs::read_to_string(&path)
            .map_err(|e| {
                vec![FileError {
                    line: 0,
                    column: 0,
                    message: format!("cannot read `{path}`: {e}"),
                    help: String::new(),
                }]
            })
            .and_then(|text| apply(&text, &old));
        match result {
            Ok(next) => {
                lines.push(format!("{path}: {}", summary(&next)));
                self.live.publish(next);
                lines
            }
            Err(errors) => {
                lines.extend(errors.iter().map(|e| {
                    if e.help.is_empty() {
                        e.located(&path)
                    } else {
                        format!("{} (help: {})", e.located(&path), e.help)
                    }
                }));
                lines.push(format!("{path}: update refused, still running backends version {}", old.version));
                lines
            }
        }
    }
}
