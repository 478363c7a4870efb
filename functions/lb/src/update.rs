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
use nfv_core::filewatch::{FileError, FileWatch, line_column};
use nfv_core::published::Published;
use serde::Deserialize;
use toml::Spanned;

use nfv_core::config::ipv4_endpoint;

use crate::config::BackendParams;
use nfv_core::parse::proto;

use crate::services::{Services, Wanted};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BackendsFile {
    vips: Vec<Spanned<VipBackends>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VipBackends {
    vip: String,
    #[serde(default = "tcp")]
    proto: String,
    backends: Vec<BackendParams>,
}

fn tcp() -> String {
    "tcp".into()
}

/// `current` with the backends `text` (a backends file) lists, its
/// version one more; or every problem, located.
pub fn apply(text: &str, current: &Services) -> Result<Services, Vec<FileError>> {
    let parsed: BackendsFile = toml::from_str(text).map_err(|e| {
        let (line, column) = line_column(text, e.span().map_or(0, |s| s.start));
        vec![FileError {
            line,
            column,
            message: e.message().trim().to_string(),
            help: "[[vips]] vip = \"192.0.2.10:80\" backends = [{ addr = \"10.1.0.2\", weight = 1 }]".into(),
        }]
    })?;
    let mut next = current.clone();
    next.version += 1;
    let mut errors = Vec::new();
    for v in &parsed.vips {
        let (line, column) = line_column(text, v.span().start);
        let v = v.get_ref();
        let mut err = |message: String, help: &str| errors.push(FileError { line, column, message, help: help.into() });
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
            v.backends.iter().map(|b| Wanted { addr: u32::from(b.addr), weight: b.weight, drain: b.drain }).collect();
        if next.vips[vi].size as usize <= wanted.len() * 100 {
            err(format!("{} backends for a table of {}", wanted.len(), next.vips[vi].size), "a bigger table-size");
            continue;
        }
        next.vips[vi].set_backends(&wanted);
    }
    if errors.is_empty() { Ok(next) } else { Err(errors) }
}

/// Watches the backends file; on a change, publishes the services it
/// describes, or reports why not and keeps the running ones.
pub struct BackendsWatch {
    watch: FileWatch,
    live: Arc<Published<Services>>,
    /// Replaced versions, held until no worker uses them (their tables
    /// are then freed here, not on a worker).
    replaced: Vec<Arc<Services>>,
}

impl BackendsWatch {
    /// A watch over `path`; the running services are `live`.
    pub fn new(path: &str, live: Arc<Published<Services>>) -> Self {
        Self { watch: FileWatch::new(path), live, replaced: Vec::new() }
    }
}

impl ControlTask for BackendsWatch {
    fn poll(&mut self) -> Vec<String> {
        self.replaced.retain(|s| Arc::strong_count(s) > 1);
        if !self.watch.changed() {
            return Vec::new();
        }
        let path = self.watch.path().display().to_string();
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
                let line = format!(
                    "{path}: backends version {}: {}",
                    next.version,
                    next.vips
                        .iter()
                        .map(|v| {
                            let active =
                                v.backends.iter().filter(|b| b.state == crate::services::State::Active).count();
                            format!("{}:{} {} active of {}", Ipv4Addr::from(v.addr), v.port, active, v.backends.len())
                        })
                        .collect::<Vec<_>>()
                        .join(", ")
                );
                self.live.publish(next);
                self.replaced.push(old);
                vec![line]
            }
            Err(errors) => {
                let mut lines: Vec<String> = errors
                    .iter()
                    .map(|e| {
                        if e.help.is_empty() {
                            e.located(&path)
                        } else {
                            format!("{} (help: {})", e.located(&path), e.help)
                        }
                    })
                    .collect();
                lines.push(format!("{path}: update refused, still running backends version {}", old.version));
                lines
            }
        }
    }
}
