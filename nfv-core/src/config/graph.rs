//! Checks of the chain graph a configuration describes: chains reference
//! each other (`then`, `use`, classifiers' branches), and `nfv check`
//! refuses what could never run as written, each at its place: a loop, a
//! chain no packet reaches, a stage only packets from ports it ignores
//! reach, a stage handing packets between workers of different graphs.

use std::ops::Range;

use super::diag::Diagnostic;
use super::schema::Config;
use crate::graph::End;
use crate::packet::PortId;

/// Where the parts of each chain are in the source.
#[derive(Default)]
pub(super) struct ChainSpans {
    /// The chain's `name` value.
    pub name: Range<usize>,
    /// Its `then` value, if written.
    pub then: Option<Range<usize>>,
    /// Each stage entry.
    pub stages: Vec<Range<usize>>,
}

/// Chains at most (a handoff names its chain in one octet).
pub(super) const MAX_CHAINS: usize = 256;
/// Stages per chain at most (a handoff names its position in one octet).
pub(super) const MAX_STAGES: usize = 255;

/// Every problem of the graph, located.
pub(super) fn check(cfg: &Config, spans: &[ChainSpans]) -> Vec<Diagnostic> {
    let mut diags = limits(cfg, spans);
    diags.extend(loops(cfg, spans));
    if !diags.is_empty() {
        return diags;
    }
    let reached = ports_reaching(cfg);
    diags.extend(unreached_chains(cfg, spans, &reached));
    diags.extend(deaf_stages(cfg, spans, &reached));
    diags.extend(mixed_handoffs(cfg, spans));
    diags
}

fn limits(cfg: &Config, spans: &[ChainSpans]) -> Vec<Diagnostic> {
    let mut diags = Vec::new();
    if cfg.chains.len() > MAX_CHAINS {
        diags.push(
            Diagnostic::new(spans[MAX_CHAINS].name.clone(), format!("more than {MAX_CHAINS} chains"), "one too many")
                .help("merge chains: a chain may hold many stages"),
        );
    }
    for (c, s) in cfg.chains.iter().zip(spans) {
        if c.stages.len() > MAX_STAGES {
            diags.push(Diagnostic::new(
                s.stages[MAX_STAGES].clone(),
                format!("chain `{}` has more than {MAX_STAGES} stages", c.name),
                "one too many",
            ));
        }
    }
    diags
}

/// The span of the edge from chain `c` to chain `t`: its `then`, else the
/// first stage branching there.
fn edge_span(cfg: &Config, spans: &[ChainSpans], c: usize, t: usize) -> Range<usize> {
    if cfg.chains[c].then == End::Chain(t as u16)
        && let Some(s) = &spans[c].then
    {
        return s.clone();
    }
    let i = cfg.chains[c].stages.iter().position(|s| s.builder.branches().iter().any(|(b, _)| *b as usize == t));
    i.map(|i| spans[c].stages[i].clone()).unwrap_or_else(|| spans[c].name.clone())
}

/// A loop would run a packet for ever: refused at the edge that closes it.
fn loops(cfg: &Config, spans: &[ChainSpans]) -> Vec<Diagnostic> {
    // 0: unseen, 1: on the path, 2: done.
    let mut state = vec![0u8; cfg.chains.len()];
    let mut diags = Vec::new();
    for start in 0..cfg.chains.len() {
        if state[start] != 0 {
            continue;
        }
        let mut path: Vec<(usize, Vec<usize>)> = vec![(start, cfg.successors(start))];
        state[start] = 1;
        while let Some((c, next)) = path.last_mut() {
            let c = *c;
            match next.pop() {
                Some(t) if state[t] == 1 => {
                    let from = path.iter().position(|(p, _)| *p == t).unwrap_or(0);
                    let mut names: Vec<&str> = path[from..].iter().map(|(p, _)| cfg.chains[*p].name.as_str()).collect();
                    names.push(&cfg.chains[t].name);
                    diags.push(
                        Diagnostic::new(
                            edge_span(cfg, spans, c, t),
                            format!("chains loop: {}", names.join(" -> ")),
                            "this closes the loop",
                        )
                        .help("a packet must leave the graph: end one of these chains elsewhere"),
                    );
                }
                Some(t) if state[t] == 0 => {
                    state[t] = 1;
                    path.push((t, cfg.successors(t)));
                }
                Some(_) => {}
                None => {
                    state[c] = 2;
                    path.pop();
                }
            }
        }
    }
    diags
}

/// For each chain, the ports whose packets may reach it (bit per port),
/// from the workers' receive ports through every edge, narrowed where a
/// branch says which ports its packets come from.
fn ports_reaching(cfg: &Config) -> Vec<Vec<bool>> {
    let n = cfg.ports.len();
    let mut reached = vec![vec![false; n]; cfg.chains.len()];
    for w in &cfg.workers {
        for (p, _) in &w.rx {
            reached[w.chain][*p as usize] = true;
        }
    }
    // The graph has no loops: a pass per chain settles it.
    for _ in 0..cfg.chains.len() {
        for c in 0..cfg.chains.len() {
            let from = reached[c].clone();
            let edges = cfg.chains[c].stages.iter().flat_map(|s| s.builder.branches());
            for (t, only) in edges {
                for (p, r) in from.iter().enumerate() {
                    if *r && only.as_ref().is_none_or(|o| o.contains(&(p as PortId))) {
                        reached[t as usize][p] = true;
                    }
                }
            }
            if let End::Chain(t) = cfg.chains[c].then {
                for (p, r) in from.iter().enumerate() {
                    reached[t as usize][p] |= *r;
                }
            }
        }
    }
    reached
}

fn port_list(cfg: &Config, ports: impl Iterator<Item = usize>) -> String {
    let names: Vec<String> = ports.map(|p| format!("`{}`", cfg.ports[p].name)).collect();
    if names.is_empty() { "none".into() } else { names.join(", ") }
}

fn unreached_chains(cfg: &Config, spans: &[ChainSpans], reached: &[Vec<bool>]) -> Vec<Diagnostic> {
    let entries: Vec<usize> = cfg.workers.iter().map(|w| w.chain).collect();
    let mut seen = vec![false; cfg.chains.len()];
    for e in entries {
        for c in cfg.reachable(e) {
            seen[c] = true;
        }
    }
    (0..cfg.chains.len())
        .filter(|&c| !seen[c] || !reached[c].iter().any(|r| *r))
        .map(|c| {
            let why =
                if seen[c] { "no port's packets can reach it" } else { "no worker enters it and no chain leads to it" };
            Diagnostic::new(
                spans[c].name.clone(),
                format!("chain `{}` never sees a packet: {why}", cfg.chains[c].name),
                "unreachable",
            )
            .help("name it as a worker's chain, in a classifier's branch or in another chain's `then`, or remove it")
        })
        .collect()
}

fn deaf_stages(cfg: &Config, spans: &[ChainSpans], reached: &[Vec<bool>]) -> Vec<Diagnostic> {
    let mut diags = Vec::new();
    for (c, chain) in cfg.chains.iter().enumerate() {
        for (i, s) in chain.stages.iter().enumerate() {
            let Some(wants) = s.builder.ingress_ports() else { continue };
            if wants.iter().any(|p| reached[c][*p as usize]) {
                continue;
            }
            let from = port_list(cfg, (0..cfg.ports.len()).filter(|&p| reached[c][p]));
            diags.push(
                Diagnostic::new(
                    spans[c].stages[i].clone(),
                    format!(
                        "stage `{}` acts on packets from {}, but only packets from {from} reach chain `{}`",
                        s.name,
                        port_list(cfg, wants.iter().map(|p| *p as usize)),
                        chain.name
                    ),
                    "never sees a packet it acts on",
                )
                .help("poll those ports in a worker entering this chain, or branch their packets here"),
            );
        }
    }
    diags
}

/// A stage handing packets to its instance on another worker resumes them
/// in that worker's graph: the workers running it must share one.
fn mixed_handoffs(cfg: &Config, spans: &[ChainSpans]) -> Vec<Diagnostic> {
    let mut diags = Vec::new();
    for (c, s) in cfg.nodes() {
        if !s.builder.hands_off() {
            continue;
        }
        let mut entries: Vec<usize> = cfg
            .workers
            .iter()
            .map(|w| w.chain)
            .filter(|&e| cfg.reachable_stages(e).iter().any(|r| r.node == s.node))
            .collect();
        entries.sort_unstable();
        entries.dedup();
        if entries.len() > 1 {
            let names: Vec<&str> = entries.iter().map(|&e| cfg.chains[e].name.as_str()).collect();
            let i = cfg.chains[c].stages.iter().position(|x| x.node == s.node).unwrap_or(0);
            diags.push(
                Diagnostic::new(
                    spans[c].stages[i].clone(),
                    format!(
                        "stage `{}` hands packets between workers, but workers entering at {} run it",
                        s.name,
                        names.join(" and ")
                    ),
                    "in more than one worker graph",
                )
                .help("let every worker that runs it enter at the same chain (a classifier there can branch)"),
            );
        }
    }
    diags
}
