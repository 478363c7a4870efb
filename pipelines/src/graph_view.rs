//! The chain graph as people read it: `nfv graph FILE` (text, or
//! Graphviz dot for a picture) and the graph section of the end-of-run
//! report, with the packets that moved along each edge.

use std::fmt::Write as _;

use nfv_core::config::Config;
use nfv_core::graph::End;
use nfv_core::telemetry::Telemetry;

/// An edge of the graph: from a chain to a chain (a branch or a `then`),
/// or out of a chain at its end.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Edge {
    from: usize,
    to: Option<usize>,
    how: &'static str,
}

fn edges(cfg: &Config) -> Vec<Edge> {
    let mut v = Vec::new();
    for (c, chain) in cfg.chains.iter().enumerate() {
        let mut targets: Vec<usize> =
            chain.stages.iter().flat_map(|s| s.builder.branches()).map(|(t, _)| t as usize).collect();
        targets.sort_unstable();
        targets.dedup();
        v.extend(targets.into_iter().map(|t| Edge { from: c, to: Some(t), how: "branch" }));
        match chain.then {
            End::Chain(t) => v.push(Edge { from: c, to: Some(t as usize), how: "then" }),
            _ => v.push(Edge { from: c, to: None, how: "end" }),
        }
    }
    v
}

/// What the end of a chain does with the packets left in it.
fn end_text(cfg: &Config, end: End) -> String {
    match end {
        End::Drop => "out of their egress; undecided dropped (unhandled)".into(),
        End::Ingress => "out of their egress; undecided back out of their ingress port".into(),
        End::Port(p) => format!("out of their egress; undecided out of `{}`", cfg.ports[p as usize].name),
        End::Chain(t) => format!("on to `{}`", cfg.chains[t as usize].name),
    }
}

/// Who enters each chain: "workers 0, 1 (rx d0, d1)".
fn entered_by(cfg: &Config, c: usize) -> Option<String> {
    let workers: Vec<usize> = (0..cfg.workers.len()).filter(|&w| cfg.workers[w].chain == c).collect();
    if workers.is_empty() {
        return None;
    }
    let mut ports: Vec<&str> =
        workers.iter().flat_map(|&w| &cfg.workers[w].rx).map(|(p, _)| cfg.ports[*p as usize].name.as_str()).collect();
    ports.sort_unstable();
    ports.dedup();
    let ws: Vec<String> = workers.iter().map(|w| w.to_string()).collect();
    Some(format!("entered by worker(s) {} from {}", ws.join(", "), ports.join(", ")))
}

/// The graph as text: each chain, its stages, where its packets go; with
/// `counts`, the packets along each edge so far.
pub fn text(cfg: &Config, counts: Option<&Telemetry>) -> String {
    let summary = counts.map(Telemetry::edge_summary).unwrap_or_default();
    let moved = |e: &Edge| {
        let from = &cfg.chains[e.from].name;
        let to = e.to.map(|t| &cfg.chains[t].name);
        summary.iter().find(|(f, t, _)| f == from && t.as_ref() == to).map_or(0, |s| s.2)
    };
    let mut out = String::new();
    for (c, chain) in cfg.chains.iter().enumerate() {
        let stages: Vec<String> = chain
            .stages
            .iter()
            .map(|s| if s.defines { s.name.clone() } else { format!("{} (shared)", s.name) })
            .collect();
        let _ =
            write!(out, "chain `{}`: {}", chain.name, if stages.is_empty() { "-".into() } else { stages.join(" -> ") });
        if let Some(e) = entered_by(cfg, c) {
            let _ = write!(out, "   [{e}]");
        }
        out.push('\n');
        for e in edges(cfg).iter().filter(|e| e.from == c) {
            let what = match e.to {
                Some(t) => format!("{} to `{}`", e.how, cfg.chains[t].name),
                None => end_text(cfg, chain.then),
            };
            match counts {
                Some(_) => {
                    let _ = writeln!(out, "    {:>12}  {what}", moved(e));
                }
                None => {
                    let _ = writeln!(out, "    -> {what}");
                }
            }
        }
    }
    out
}

fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// The graph in Graphviz dot: ports as boxes feeding the chains their
/// workers enter, chains with their stages, branches dashed, each
/// chain's end.
pub fn dot(cfg: &Config) -> String {
    let mut out = String::from("digraph nfv {\n  rankdir=LR;\n  node [fontname=\"monospace\"];\n");
    for p in &cfg.ports {
        let _ = writeln!(out, "  {} [shape=box, label={}];", quote(&format!("port:{}", p.name)), quote(&p.name));
    }
    for chain in &cfg.chains {
        let stages: Vec<&str> = chain.stages.iter().map(|s| s.name.as_str()).collect();
        let label = format!("{}\n{}", chain.name, stages.join(" > "));
        let _ =
            writeln!(out, "  {} [shape=ellipse, label={}];", quote(&format!("chain:{}", chain.name)), quote(&label));
    }
    let mut entries: Vec<(String, String)> = Vec::new();
    for w in &cfg.workers {
        for (p, _) in &w.rx {
            entries.push((cfg.ports[*p as usize].name.clone(), cfg.chains[w.chain].name.clone()));
        }
    }
    entries.sort();
    entries.dedup();
    for (p, c) in entries {
        let _ = writeln!(out, "  {} -> {};", quote(&format!("port:{p}")), quote(&format!("chain:{c}")));
    }
    for e in edges(cfg) {
        let from = quote(&format!("chain:{}", cfg.chains[e.from].name));
        match e.to {
            Some(t) => {
                let style = if e.how == "branch" { ", style=dashed" } else { "" };
                let to = quote(&format!("chain:{}", cfg.chains[t].name));
                let _ = writeln!(out, "  {from} -> {to} [label={}{style}];", quote(e.how));
            }
            None => {
                let end = match cfg.chains[e.from].then {
                    End::Ingress => "ingress".to_string(),
                    End::Port(p) => format!("port:{}", cfg.ports[p as usize].name),
                    _ => "drop".to_string(),
                };
                let node = quote(&format!("end:{}:{end}", cfg.chains[e.from].name));
                let _ = writeln!(out, "  {node} [shape=plaintext, label={}];", quote(&format!("egress / {end}")));
                let _ = writeln!(out, "  {from} -> {node};");
            }
        }
    }
    out.push_str("}\n");
    out
}
