//! Walks the parsed TOML document section by section so that one bad
//! entry does not hide the next: every problem is collected with its span.

use std::collections::HashSet;
use std::net::IpAddr;
use std::ops::Range;

use serde::de::DeserializeOwned;
use toml::Spanned;
use toml::de::{DeTable, DeValue, ValueDeserializer};

use super::chains::{parse_chains, resolve_thens};
use super::diag::{Diagnostic, Report};
use super::graph::ChainSpans;
use super::schema::*;
use crate::graph::INGRESS;
use crate::packet::PortId;
use crate::port::generator::GeneratorConfig;
use crate::slowpath::OwnedAddr;
use crate::stage::{BuildEnv, StageRegistry};

const SECTIONS: &[&str] = &["run", "management", "ports", "chains", "workers", "neighbours"];

pub(super) type Value<'a> = Spanned<DeValue<'a>>;

/// A stage's (or port's) parameter table, with spans for error messages.
pub struct Params<'a> {
    table: Value<'a>,
}

impl<'a> Params<'a> {
    fn from_entries(span: Range<usize>, entries: Vec<(&Spanned<toml::de::DeString<'a>>, &Value<'a>)>) -> Self {
        let mut t = DeTable::new();
        for (k, v) in entries {
            t.insert(k.clone(), v.clone());
        }
        Self { table: Spanned::new(span, DeValue::Table(t)) }
    }

    /// Deserialises the parameters into `T` (use `deny_unknown_fields`);
    /// the error points at the offending key or value.
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T, Diagnostic> {
        T::deserialize(ValueDeserializer::from(self.table.clone())).map_err(|e| de_error(&e, self.table.span()))
    }

    /// Span of `key`'s value, or of the whole table if absent.
    pub fn span_of(&self, key: &str) -> Range<usize> {
        match self.table.get_ref() {
            DeValue::Table(t) => t.iter().find(|(k, _)| k.get_ref() == key).map(|(_, v)| v.span()),
            _ => None,
        }
        .unwrap_or_else(|| self.table.span())
    }

    /// True when the table sets `key`.
    pub fn has(&self, key: &str) -> bool {
        matches!(self.table.get_ref(), DeValue::Table(t) if t.iter().any(|(k, _)| k.get_ref() == key))
    }

    /// A located error about `key`.
    pub fn error(&self, key: &str, message: impl Into<String>, label: impl Into<String>) -> Diagnostic {
        Diagnostic::new(self.span_of(key), message, label)
    }
}

fn de_error(e: &toml::de::Error, fallback: Range<usize>) -> Diagnostic {
    let span = e.span().unwrap_or(fallback);
    let msg = e.message().trim().to_string();
    let label = if msg.starts_with("unknown field") {
        "unknown key".to_string()
    } else if msg.starts_with("missing field") {
        "in this table".to_string()
    } else if let Some((_, expected)) = msg.split_once(", expected ") {
        format!("expected {expected}")
    } else {
        "here".to_string()
    };
    Diagnostic::new(span, msg, label)
}

pub(super) fn parse_value<T: DeserializeOwned>(v: &Value<'_>) -> Result<T, Diagnostic> {
    T::deserialize(ValueDeserializer::from(v.clone())).map_err(|e| de_error(&e, v.span()))
}

/// Suggests the closest of `known` to `got`, if any is close.
fn did_you_mean(got: &str, known: &[&str]) -> Option<String> {
    known
        .iter()
        .map(|k| (strsim::levenshtein(got, k), k))
        .filter(|(d, _)| *d <= 2.max(got.len() / 3))
        .min()
        .map(|(_, k)| format!("did you mean `{k}`?"))
}

pub(super) fn unknown(span: Range<usize>, what: &str, got: &str, known: &[&str]) -> Diagnostic {
    let list = known.join(", ");
    let help = match did_you_mean(got, known) {
        Some(s) => format!("{s} known {what}s: {list}"),
        None => format!("known {what}s: {list}"),
    };
    Diagnostic::new(span, format!("unknown {what} `{got}`"), format!("not a known {what}")).help(help)
}

/// Items of an array-of-tables section; wrong shapes are reported.
pub(super) fn items<'v, 'a>(v: &'v Value<'a>, section: &str, diags: &mut Vec<Diagnostic>) -> Vec<&'v Value<'a>> {
    match v.get_ref() {
        DeValue::Array(a) => a
            .iter()
            .filter(|item| {
                let ok = matches!(item.get_ref(), DeValue::Table(_));
                if !ok {
                    diags.push(
                        Diagnostic::new(
                            item.span(),
                            format!("each `{section}` entry must be a table"),
                            "expected a table",
                        )
                        .help(format!("write it as [[{section}]] with keys below")),
                    );
                }
                ok
            })
            .collect(),
        _ => {
            diags.push(
                Diagnostic::new(
                    v.span(),
                    format!("`{section}` must be an array of tables"),
                    "expected [[...]] entries",
                )
                .help(format!("write each entry as [[{section}]]")),
            );
            Vec::new()
        }
    }
}

pub(super) fn table<'v, 'a>(v: &'v Value<'a>) -> &'v DeTable<'a> {
    match v.get_ref() {
        DeValue::Table(t) => t,
        _ => unreachable!("filtered by items()"),
    }
}

/// Splits a table into (keys in `keep`, the rest).
pub(super) fn split<'a>(v: &Value<'a>, keep: &[&str]) -> (Params<'a>, Params<'a>) {
    let (a, b): (Vec<_>, Vec<_>) = table(v).iter().partition(|(k, _)| keep.contains(&k.get_ref().as_ref()));
    (Params::from_entries(v.span(), a), Params::from_entries(v.span(), b))
}

fn parse_owned(s: &str) -> Result<OwnedAddr, String> {
    let (ip, len) = match s.split_once('/') {
        Some((ip, len)) => (ip, Some(len)),
        None => (s, None),
    };
    let addr: IpAddr = ip.parse().map_err(|_| format!("`{ip}` is not an IP address"))?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let prefix = match len {
        None => max,
        Some(l) => l.parse::<u8>().ok().filter(|l| *l <= max).ok_or(format!("prefix length `{l}` is not 0..={max}"))?,
    };
    Ok(OwnedAddr { addr, prefix })
}

/// Loads and validates a configuration. `file` is the name shown in
/// messages; file names in it are relative to the working directory.
/// Nothing is opened or started here: ports and workers are only
/// described.
pub fn load(file: &str, source: &str, registry: &StageRegistry) -> Result<Config, Report> {
    load_in(file, source, registry, None)
}

/// Reads, loads and validates the configuration file `path`; file names
/// in it are relative to its directory.
pub fn load_file(path: &std::path::Path, registry: &StageRegistry) -> Result<Config, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    load_as_file(&path.display().to_string(), &text, registry).map_err(|r| r.render())
}

/// Loads and validates `source` as the text of file `file` (a reload read
/// it): file names in it are relative to that file's directory.
pub fn load_as_file(file: &str, source: &str, registry: &StageRegistry) -> Result<Config, Report> {
    let dir = std::path::Path::new(file).parent().filter(|d| !d.as_os_str().is_empty());
    load_in(file, source, registry, dir)
}

fn load_in(
    file: &str,
    source: &str,
    registry: &StageRegistry,
    base: Option<&std::path::Path>,
) -> Result<Config, Report> {
    let report =
        |diagnostics: Vec<Diagnostic>| Report { file: file.to_string(), source: source.to_string(), diagnostics };
    let (doc, syntax) = DeTable::parse_recoverable(source);
    if !syntax.is_empty() {
        let diags = syntax
            .iter()
            .map(|e| Diagnostic::new(e.span().unwrap_or(0..0), e.message().trim().to_string(), "invalid TOML here"))
            .collect();
        return Err(report(diags));
    }
    let mut diags = Vec::new();
    let doc = doc.into_inner();
    let get = |name: &str| doc.iter().find(|(k, _)| k.get_ref() == name).map(|(_, v)| v);
    for (k, _) in doc.iter() {
        if !SECTIONS.contains(&k.get_ref().as_ref()) {
            diags.push(unknown(k.span(), "section", k.get_ref(), SECTIONS));
        }
    }

    let run = match get("run") {
        None => RunSection::default(),
        Some(v) => parse_value::<RunSection>(v).unwrap_or_else(|d| {
            diags.push(d);
            RunSection::default()
        }),
    };
    if let Some(v) = get("run") {
        let p = Params { table: v.clone() };
        if !(1..=crate::batch::MAX_BATCH).contains(&run.batch_size) {
            diags.push(p.error("batch-size", "batch-size out of range", "expected 1..=256"));
        }
        if run.duration < 0.0 || !run.duration.is_finite() {
            diags.push(p.error("duration", "duration must be a non-negative number of seconds", "expected >= 0"));
        }
        if run.frames_per_worker < 2 * run.batch_size as u32 + 64 {
            diags.push(p.error(
                "frames-per-worker",
                "too few frames for the batch size",
                format!("expected at least {}", 2 * run.batch_size + 64),
            ));
        }
    }

    let management = get("management").map_or_else(ManagementSpec::default, |v| management(v, &mut diags));

    // Ports first: everything else refers to them by name.
    let mut ports: Vec<PortSpec> = Vec::new();
    let mut port_spans: Vec<Range<usize>> = Vec::new();
    // Ports whose definition had errors: kept so references to them
    // resolve, but not checked again.
    let mut broken: HashSet<usize> = HashSet::new();
    for item in get("ports").map(|v| items(v, "ports", &mut diags)).unwrap_or_default() {
        let (common, rest) = split(item, PORT_COMMON_KEYS);
        let c: PortCommon = match common.parse() {
            Ok(c) => c,
            Err(d) => {
                diags.push(d);
                continue;
            }
        };
        if c.name == INGRESS {
            diags.push(
                Diagnostic::new(common.span_of("name"), format!("`{INGRESS}` cannot name a port"), "reserved name")
                    .help(format!("then = \"{INGRESS}\" means the port a packet came in on; pick another name")),
            );
            continue;
        }
        if let Some(i) = ports.iter().position(|p| p.name == c.name) {
            diags.push(
                Diagnostic::new(
                    common.span_of("name"),
                    format!("port `{}` is defined twice", c.name),
                    "second definition",
                )
                .help(format!("the first is at byte {}; give each port a unique name", port_spans[i].start)),
            );
            continue;
        }
        let kind_name = match table(item).iter().find(|(k, _)| k.get_ref() == "kind").map(|(_, v)| v.get_ref()) {
            Some(DeValue::String(s)) => s.to_string(),
            _ => String::new(),
        };
        let kind = match kind_name.as_str() {
            "generator" => rest.parse::<GeneratorConfig>().and_then(|g| {
                g.validate().map_err(|(key, msg)| rest.error(key, msg.clone(), msg))?;
                Ok(PortKind::Generator(g))
            }),
            "sink" => rest.parse::<SinkConfig>().map(|_| PortKind::Sink),
            "pcap" => rest.parse::<PcapConfig>().and_then(|mut p| {
                let rel = |f: &std::path::Path| base.filter(|_| f.is_relative()).map_or(f.to_path_buf(), |b| b.join(f));
                p.input = p.input.as_deref().map(rel);
                p.output = p.output.as_deref().map(rel);
                match &p.input {
                    _ if p.input.is_none() && p.output.is_none() => {
                        Err(common.error("kind", "a pcap port needs `input`, `output` or both", "no file given"))
                    }
                    Some(i) if !i.is_file() => Err(rest
                        .error("input", format!("capture `{}` does not exist", i.display()), "no such file")
                        .help("relative names are relative to the configuration file's directory")),
                    _ => Ok(PortKind::Pcap(p)),
                }
            }),
            "af-xdp" => rest.parse::<AfXdpConfig>().and_then(|mut a| {
                a.validate().map_err(|(key, msg)| rest.error(key, msg.clone(), msg))?;
                match &a.written {
                    InterfaceRef::Name(n) => a.interface = n.clone(),
                    InterfaceRef::Pod(d) => {
                        let (name, how) = crate::pod::current().resolve(d).map_err(|e| {
                            rest.error("interface", e, "not found in this pod")
                                .help("`nfv check --pod FILE` shows what the pod was handed")
                        })?;
                        (a.interface, a.found) = (name, Some(how));
                    }
                }
                Ok(PortKind::AfXdp(a))
            }),
            other => Err(unknown(common.span_of("kind"), "port kind", other, PORT_KINDS)),
        };
        let mac = match &c.mac {
            Some(m) => crate::config::parse_mac(m).map_err(|e| common.error("mac", e, "bad MAC address")),
            None => Ok(crate::config::default_port_mac(ports.len())),
        };
        let mut addresses = Vec::new();
        for a in &c.addresses {
            match parse_owned(a) {
                Ok(o) => addresses.push(o),
                Err(e) => diags.push(
                    common
                        .error("addresses", e, "bad address")
                        .help("write addresses as \"10.0.0.1/24\" or \"2001:db8::1/64\""),
                ),
            }
        }
        if c.queues == 0 {
            diags.push(common.error("queues", "a port needs at least one queue", "expected >= 1"));
        }
        let profile = match (&c.profile, &kind) {
            (None, _) => None,
            (Some(name), kind) => match crate::hwprofile::Profile::resolve(name, base) {
                Err(e) => {
                    diags.push(
                        common
                            .error("profile", e, "this profile")
                            .help("a shipped profile (hw-profiles/), or a file written by `nfv hw probe IFACE`"),
                    );
                    None
                }
                Ok(p) => {
                    match kind {
                        Ok(PortKind::AfXdp(a)) => {
                            for (key, message, help) in p.check_af_xdp(a, c.queues) {
                                let at = if key == "queues" { &common } else { &rest };
                                diags.push(at.error(key, message, "the device cannot").help(help));
                            }
                        }
                        Ok(_) => diags.push(
                            common
                                .error("profile", "a hardware profile describes an AF_XDP port's device", "here")
                                .help("remove `profile`, or make the port kind = \"af-xdp\""),
                        ),
                        Err(_) => {}
                    }
                    Some(std::sync::Arc::new(p))
                }
            },
        };
        match (kind, mac) {
            (Ok(kind), Ok(mac)) => {
                port_spans.push(item.span());
                ports.push(PortSpec {
                    name: c.name,
                    kind,
                    queues: c.queues.max(1),
                    mac,
                    mac_configured: c.mac.is_some(),
                    addresses,
                    profile,
                });
            }
            (k, m) => {
                diags.extend(k.err());
                diags.extend(m.err());
                // Keep the name resolvable so later references do not
                // report a second, misleading error.
                broken.insert(ports.len());
                port_spans.push(item.span());
                ports.push(PortSpec {
                    name: c.name,
                    kind: PortKind::Sink,
                    queues: c.queues.max(1),
                    mac: [0; 6],
                    mac_configured: false,
                    addresses,
                    profile: None,
                });
            }
        }
    }
    for (i, p) in ports.iter().enumerate() {
        let PortKind::AfXdp(a) = &p.kind else { continue };
        let first = ports[..i].iter().find(|q| matches!(&q.kind, PortKind::AfXdp(b) if b.interface == a.interface));
        if let Some(q) = first {
            diags.push(
                Diagnostic::new(
                    port_spans[i].clone(),
                    format!("interface `{}` is used by ports `{}` and `{}`", a.interface, q.name, p.name),
                    "second port on the same interface",
                )
                .help("one af-xdp port per interface; use `queues` for more than one queue"),
            );
        }
    }
    let port_names: Vec<String> = ports.iter().map(|p| p.name.clone()).collect();
    let port_list = port_names.iter().map(String::as_str).collect::<Vec<_>>();
    let chain_items = get("chains").map(|v| items(v, "chains", &mut diags)).unwrap_or_default();
    // Chain names first: `then`, `use` and classifiers name chains
    // defined anywhere in the file.
    let chain_names: Vec<String> = chain_items
        .iter()
        .map(|item| match table(item).iter().find(|(k, _)| k.get_ref() == "name").map(|(_, v)| v.get_ref()) {
            Some(DeValue::String(s)) => s.to_string(),
            _ => String::new(),
        })
        .collect();
    let env = BuildEnv { ports: &port_names, chains: &chain_names, base, defined: &[] };
    let (mut chains, chain_spans) = parse_chains(&chain_items, registry, &env, &mut diags);
    let chain_list: Vec<&str> = chain_names.iter().map(String::as_str).collect();
    let stage_spans: Vec<_> = chains
        .iter()
        .zip(&chain_spans)
        .flat_map(|(c, s)| c.stages.iter().zip(&s.spans.stages))
        .filter(|(st, _)| st.defines)
        .map(|(st, sp)| (st.builder.clone(), sp.clone()))
        .collect();

    let resolve_port = |s: &Spanned<String>, diags: &mut Vec<Diagnostic>| -> Option<PortId> {
        match port_names.iter().position(|p| p == s.get_ref()) {
            Some(i) => Some(i as PortId),
            None => {
                diags.push(if port_list.is_empty() {
                    Diagnostic::new(s.span(), format!("unknown port `{}`", s.get_ref()), "no such port")
                        .help("define it first with [[ports]] name = \"...\"")
                } else {
                    unknown(s.span(), "port", s.get_ref(), &port_list)
                });
                None
            }
        }
    };

    resolve_thens(&mut chains, &chain_spans, &chain_list, &port_list, &mut diags);

    let mut workers = Vec::new();
    let mut used: HashSet<(PortId, u16)> = HashSet::new();
    let worker_items = get("workers").map(|v| items(v, "workers", &mut diags)).unwrap_or_default();
    if worker_items.is_empty() {
        diags.push(
            Diagnostic::new(0..0, "no [[workers]] defined: nothing would run", "the file starts here")
                .help("add [[workers]] with rx = [\"PORT\"] and chain = \"CHAIN\""),
        );
    }
    for item in worker_items {
        let w: WorkerDef = match parse_value(item) {
            Ok(w) => w,
            Err(d) => {
                diags.push(d);
                continue;
            }
        };
        let mut rx = Vec::new();
        for r in &w.rx {
            let (pname, queue) = match r.get_ref().rsplit_once(':') {
                Some((p, q)) => match q.parse::<u16>() {
                    Ok(q) => (p.to_string(), q),
                    Err(_) => {
                        diags.push(Diagnostic::new(
                            r.span(),
                            format!("bad queue in `{}`", r.get_ref()),
                            "expected PORT or PORT:QUEUE",
                        ));
                        continue;
                    }
                },
                None => (r.get_ref().clone(), 0),
            };
            let Some(pid) = resolve_port(&Spanned::new(r.span(), pname), &mut diags) else { continue };
            let spec = &ports[pid as usize];
            if matches!(spec.kind, PortKind::Sink) && !broken.contains(&(pid as usize)) {
                diags.push(
                    Diagnostic::new(
                        r.span(),
                        format!("port `{}` is a sink and cannot receive", spec.name),
                        "not a source",
                    )
                    .help("list sources (generator, pcap input) in rx and the sink in tx"),
                );
                continue;
            }
            if queue >= spec.queues {
                diags.push(Diagnostic::new(
                    r.span(),
                    format!("port `{}` has {} queue(s); queue {queue} does not exist", spec.name, spec.queues),
                    format!("expected a queue below {}", spec.queues),
                ));
                continue;
            }
            if !used.insert((pid, queue)) {
                diags.push(
                    Diagnostic::new(
                        r.span(),
                        format!("queue {queue} of `{}` is polled by two workers", spec.name),
                        "already taken",
                    )
                    .help("give each queue to exactly one worker"),
                );
                continue;
            }
            if let Some((_, q)) = rx.iter().find(|(p, _)| *p == pid) {
                diags.push(
                    Diagnostic::new(
                        r.span(),
                        format!("this worker already polls queue {q} of `{}`", spec.name),
                        "second queue of the same port",
                    )
                    .help("a worker polls at most one queue per port: give this queue to another worker"),
                );
                continue;
            }
            rx.push((pid, queue));
        }
        if let Some(tx) = &w.tx {
            diags.push(Diagnostic::new(tx.span(), "`tx` moved to the chain", "no longer a worker key").help(format!(
                "write then = \"{}\" in [[chains]] name = \"{}\" (packets no stage decided go there)",
                tx.get_ref(),
                w.chain.get_ref()
            )));
        }
        let chain = match chain_list.iter().position(|c| *c == w.chain.get_ref()) {
            Some(i) => Some(i),
            None => {
                diags.push(if chain_list.is_empty() {
                    Diagnostic::new(w.chain.span(), format!("unknown chain `{}`", w.chain.get_ref()), "no such chain")
                        .help("define it with [[chains]] name = \"...\"")
                } else {
                    unknown(w.chain.span(), "chain", w.chain.get_ref(), &chain_list)
                });
                None
            }
        };
        if let Some(chain) = chain {
            workers.push(WorkerSpec { core: w.core, rx, chain });
        }
    }

    let mut neighbours = Vec::new();
    let mut neighbour_spans = Vec::new();
    for item in get("neighbours").map(|v| items(v, "neighbours", &mut diags)).unwrap_or_default() {
        let n: NeighbourDef = match parse_value(item) {
            Ok(n) => n,
            Err(d) => {
                diags.push(d);
                continue;
            }
        };
        let mac = match n.mac.as_deref().map(crate::config::parse_mac).transpose() {
            Ok(m) => m,
            Err(e) => {
                diags.push(Params { table: item.clone() }.error("mac", e, "bad MAC address"));
                continue;
            }
        };
        if let Some(port) = resolve_port(&n.port, &mut diags) {
            neighbours.push(NeighbourSpec { ip: n.ip, mac, port });
            neighbour_spans.push(item.span());
        }
    }

    if diags.is_empty() {
        let cfg =
            Config { source: (file.to_string(), source.into()), run, management, ports, chains, workers, neighbours };
        let spans: Vec<ChainSpans> = chain_spans.into_iter().map(|s| s.spans).collect();
        diags.extend(super::graph::check(&cfg, &spans));
        diags.extend(unreachable_next_hops(&cfg, &neighbour_spans, &stage_spans));
        if diags.is_empty() {
            return Ok(cfg);
        }
    }
    diags.sort_by_key(|d| d.span.start);
    Err(report(diags))
}

/// Next hops to resolve that no port can ask for (on none of the ports'
/// subnets): `[[neighbours]]` without a MAC, and stages' next hops
/// (`StageBuilder::wanted_neighbours`). Nobody would answer, so the
/// configuration is refused here, by `nfv check` as by `nfv run`.
fn unreachable_next_hops(
    cfg: &Config,
    neighbour_spans: &[Range<usize>],
    stage_spans: &[(std::sync::Arc<dyn crate::stage::StageBuilder>, Range<usize>)],
) -> Vec<Diagnostic> {
    let local = cfg.local_addrs();
    let mut diags = Vec::new();
    for (n, span) in cfg.neighbours.iter().zip(neighbour_spans).filter(|(n, _)| n.mac.is_none()) {
        if local.on_link_port(&n.ip).is_none() {
            let port = &cfg.ports[n.port as usize].name;
            diags.push(
                Diagnostic::new(span.clone(), format!("neighbour {} is not on any port's subnet", n.ip), "unreachable")
                    .help(format!("give port `{port}` an address on its subnet, or give the neighbour a static mac")),
            );
        }
    }
    for (builder, span) in stage_spans {
        for ip in builder.wanted_neighbours().into_iter().filter(|ip| local.on_link_port(ip).is_none()) {
            diags.push(
                Diagnostic::new(
                    span.clone(),
                    format!("next hop {ip} of this stage is not on any port's subnet"),
                    "here",
                )
                .help("give the port that reaches it an address on its subnet (addresses = [\"a.b.c.d/len\"])"),
            );
        }
    }
    diags
}

/// `[management]`: `listen` an address or `"off"`, `socket` a path or
/// `"off"`; a bad value is reported where it is written.
fn management(v: &Value<'_>, diags: &mut Vec<Diagnostic>) -> ManagementSpec {
    let Ok(m) = parse_value::<ManagementSection>(v).map_err(|d| diags.push(d)) else {
        return ManagementSpec::default();
    };
    let p = Params { table: v.clone() };
    let written = |key: &str| p.has(key);
    let listen = match m.listen.as_str() {
        "off" => None,
        a => match a.parse::<std::net::SocketAddr>() {
            Ok(a) => Some(a),
            Err(_) => {
                diags.push(
                    p.error("listen", format!("`{a}` is not an address and port"), "expected ADDRESS:PORT or \"off\"")
                        .help(format!(
                            "listen = \"{DEFAULT_LISTEN}\" (the default), \"0.0.0.0:9464\" to expose it, or \"off\""
                        )),
                );
                None
            }
        },
    };
    let socket = match m.socket.as_str() {
        "off" => None,
        s if s.is_empty() || !s.starts_with('/') => {
            diags.push(
                p.error("socket", format!("`{s}` is not an absolute path"), "expected /PATH or \"off\"")
                    .help(format!("socket = \"{DEFAULT_SOCKET}\" (the default)")),
            );
            None
        }
        s => Some(s.into()),
    };
    ManagementSpec { listen, listen_explicit: written("listen"), socket, socket_explicit: written("socket") }
}
