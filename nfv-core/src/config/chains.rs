//! `[[chains]]`: each chain's name, stages (definitions, and `use` of a
//! stage defined in another chain) and `then`, resolved once every chain
//! and port name is known.

use std::ops::Range;

use super::diag::Diagnostic;
use super::graph::ChainSpans;
use super::load::{Value, items, parse_value, split, table, unknown};
use super::schema::{ChainSpec, StageSpec};
use crate::graph::{End, INGRESS};
use crate::packet::PortId;
use crate::stage::{BuildEnv, StageRegistry};

/// A chain's spans, and its `then` as written until every name is known.
pub(super) struct ParsedSpans {
    pub(super) spans: ChainSpans,
    then_value: Option<(String, Range<usize>)>,
}

/// A stage entry: a definition, or `use = "NAME"` of one defined elsewhere.
enum Entry {
    Def(StageSpec),
    Use(String),
}

/// Parses `[[chains]]`: each chain's name, stages and `then` (resolved by
/// the caller, once ports are known). Stages defined in one chain may be
/// used by name in others: one instance, one state.
pub(super) fn parse_chains(
    chain_items: &[&Value<'_>],
    registry: &StageRegistry,
    env: &BuildEnv<'_>,
    diags: &mut Vec<Diagnostic>,
) -> (Vec<ChainSpec>, Vec<ParsedSpans>) {
    let mut chains: Vec<ChainSpec> = Vec::new();
    let mut spans: Vec<ParsedSpans> = Vec::new();
    let mut entries: Vec<Vec<(Entry, Range<usize>)>> = Vec::new();
    let mut nodes = 0;
    let mut defined: Vec<(String, std::sync::Arc<dyn crate::stage::StageBuilder>)> = Vec::new();
    for item in chain_items {
        let mut name = None;
        let mut then = None;
        let mut list = Vec::new();
        for (k, v) in table(item).iter() {
            match k.get_ref().as_ref() {
                "name" => match parse_value::<String>(v) {
                    Ok(n) => name = Some((n, v.span())),
                    Err(d) => diags.push(d),
                },
                "then" => match parse_value::<String>(v) {
                    Ok(t) => then = Some((t, v.span())),
                    Err(d) => diags.push(d),
                },
                "stages" => {
                    for s in items(v, "stages", diags) {
                        let env = BuildEnv { defined: &defined, ..*env };
                        match stage_entry(s, registry, &env, nodes) {
                            Ok(e) => {
                                if let Entry::Def(d) = &e {
                                    nodes += 1;
                                    defined.push((d.name.clone(), d.builder.clone()));
                                }
                                list.push((e, s.span()));
                            }
                            Err(mut d) => diags.append(&mut d),
                        }
                    }
                }
                other => diags.push(unknown(k.span(), "chain key", other, &["name", "stages", "then"])),
            }
        }
        let Some((name, span)) = name else {
            diags.push(
                Diagnostic::new(item.span(), "missing field `name`", "this chain has no name")
                    .help("add name = \"...\""),
            );
            continue;
        };
        if name == INGRESS {
            diags.push(
                Diagnostic::new(span, format!("`{INGRESS}` cannot name a chain"), "reserved name")
                    .help(format!("then = \"{INGRESS}\" means the port a packet came in on; pick another name")),
            );
            continue;
        }
        if chains.iter().any(|c| c.name == name) {
            diags.push(Diagnostic::new(span, format!("chain `{name}` is defined twice"), "second definition"));
            continue;
        }
        let stage_spans = list.iter().map(|(_, s)| s.clone()).collect();
        spans.push(ParsedSpans {
            spans: ChainSpans { name: span, then: then.as_ref().map(|t| t.1.clone()), stages: stage_spans },
            then_value: then,
        });
        chains.push(ChainSpec { name, stages: Vec::new(), then: End::Drop });
        entries.push(list);
    }
    // Every definition is known now: resolve the uses.
    let defs: Vec<(usize, StageSpec)> = entries
        .iter()
        .enumerate()
        .flat_map(|(c, l)| {
            l.iter().filter_map(move |(e, _)| if let Entry::Def(s) = e { Some((c, s.clone())) } else { None })
        })
        .collect();
    for (c, list) in entries.into_iter().enumerate() {
        for (e, span) in list {
            let spec = match e {
                Entry::Def(s) => s,
                Entry::Use(name) => match resolve_use(&name, &span, &defs, &chains) {
                    Ok(s) => s,
                    Err(d) => {
                        diags.push(d);
                        continue;
                    }
                },
            };
            if chains[c].stages.iter().any(|s| s.node == spec.node) {
                diags.push(
                    Diagnostic::new(
                        span,
                        format!("stage `{}` is listed twice in chain `{}`", spec.name, chains[c].name),
                        "second time",
                    )
                    .help("a packet meets a stage once per chain; define a second stage for a second pass"),
                );
                continue;
            }
            chains[c].stages.push(spec);
        }
    }
    (chains, spans)
}

/// The stage `use = "NAME"` names: defined once, somewhere.
fn resolve_use(
    name: &str,
    span: &Range<usize>,
    defs: &[(usize, StageSpec)],
    chains: &[ChainSpec],
) -> Result<StageSpec, Diagnostic> {
    let found: Vec<&(usize, StageSpec)> = defs.iter().filter(|(_, s)| s.name == name).collect();
    match found[..] {
        [(_, s)] => Ok(StageSpec { defines: false, ..s.clone() }),
        [] => {
            let known: Vec<&str> = defs.iter().map(|(_, s)| s.name.as_str()).collect();
            Err(unknown(span.clone(), "stage", name, &known)
                .also("`use` names a stage defined in some chain (its `name`, or its kind when unnamed)"))
        }
        _ => {
            let wheres: Vec<String> = found.iter().map(|(c, _)| format!("`{}`", chains[*c].name)).collect();
            Err(Diagnostic::new(
                span.clone(),
                format!("stage `{name}` is defined in {}", wheres.join(" and ")),
                "ambiguous",
            )
            .help("give the one you mean a unique name = \"...\""))
        }
    }
}

/// One entry of a chain's `stages`: `{ use = "NAME" }`, or a definition
/// that becomes stage instance `node`.
fn stage_entry(
    item: &Value<'_>,
    registry: &StageRegistry,
    env: &BuildEnv<'_>,
    node: usize,
) -> Result<Entry, Vec<Diagnostic>> {
    let t = table(item);
    if let Some((_, v)) = t.iter().find(|(k, _)| k.get_ref() == "use") {
        let name: String = parse_value(v).map_err(|d| vec![d])?;
        if let Some((k, _)) = t.iter().find(|(k, _)| k.get_ref() != "use") {
            return Err(vec![
                Diagnostic::new(k.span(), "a `use` entry takes no other key", "here")
                    .help("configure the stage where it is defined; `use` only names it"),
            ]);
        }
        return Ok(Entry::Use(name));
    }
    stage_spec(item, registry, env, node).map(Entry::Def)
}

fn stage_spec(
    item: &Value<'_>,
    registry: &StageRegistry,
    env: &BuildEnv<'_>,
    node: usize,
) -> Result<StageSpec, Vec<Diagnostic>> {
    let (head, params) = split(item, &["kind", "name"]);
    let kind_span = head.span_of("kind");
    let kind: String = match table(item).iter().find(|(k, _)| k.get_ref() == "kind") {
        None => {
            return Err(vec![
                Diagnostic::new(item.span(), "stage without `kind`", "this stage")
                    .help(format!("add kind = \"...\"; known kinds: {}", registry.kinds().join(", "))),
            ]);
        }
        Some((_, v)) => parse_value(v).map_err(|d| vec![d])?,
    };
    let name: Option<String> = match table(item).iter().find(|(k, _)| k.get_ref() == "name") {
        Some((_, v)) => Some(parse_value(v).map_err(|d| vec![d])?),
        None => None,
    };
    let Some(factory) = registry.get(&kind) else {
        return Err(vec![unknown(kind_span, "stage kind", &kind, &registry.kinds())]);
    };
    let builder = factory.configure(&params, env)?;
    let params = params.parse().unwrap_or_else(|_| toml::Value::Table(Default::default()));
    Ok(StageSpec { name: name.unwrap_or_else(|| kind.clone()), kind, builder, params, node, defines: true })
}

/// Resolves each chain's `then`: "ingress", a chain or a port.
pub(super) fn resolve_thens(
    chains: &mut [ChainSpec],
    chain_spans: &[ParsedSpans],
    chain_list: &[&str],
    port_list: &[&str],
    diags: &mut Vec<Diagnostic>,
) {
    for (chain, spans) in chains.iter_mut().zip(chain_spans) {
        let Some((then, span)) = &spans.then_value else { continue };
        let (is_chain, is_port) = (chain_list.iter().position(|c| c == then), port_list.iter().position(|p| p == then));
        chain.then = match (then.as_str(), is_chain, is_port) {
            (INGRESS, _, _) => End::Ingress,
            (_, Some(_), Some(_)) => {
                diags.push(
                    Diagnostic::new(span.clone(), format!("`{then}` names both a chain and a port"), "ambiguous")
                        .help("rename the chain or the port"),
                );
                continue;
            }
            (_, Some(c), None) => End::Chain(c as u16),
            (_, None, Some(p)) => End::Port(p as PortId),
            (_, None, None) => {
                let mut known: Vec<&str> = vec![INGRESS];
                known.extend(chain_list.iter().chain(port_list));
                diags.push(
                    unknown(span.clone(), "chain or port", then, &known)
                        .also(format!("`then` names a chain to go on in, a port to send out of, or \"{INGRESS}\"")),
                );
                continue;
            }
        };
    }
}
