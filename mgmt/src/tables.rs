//! Table commands of `nfv ctl`: `KIND [--stage NAME] WORDS...` runs a
//! stage's own commands (`acl add ...`, `lb weight ...`; see each kind's
//! [`nfv_core::live::Live::usage`]), `neighbour ...` the neighbour
//! table's. Each change is published the way a reload publishes it; a
//! later reload puts back what the configuration and its files say.

use std::net::IpAddr;

use nfv_core::config::{mac_text, parse_mac};
use nfv_core::live::Answer;
use nfv_core::neighbour::Origin;
use serde_json::{Map, Value};

use crate::State;

/// The neighbour commands.
const NEIGHBOUR_USAGE: &[&str] = &["neighbour list", "neighbour add IP MAC PORT", "neighbour delete IP"];

/// Usage lines of every table command the running configuration has.
pub(crate) fn usage(s: &State) -> Vec<String> {
    let cfg = s.reloader.running();
    let mut u: Vec<String> = NEIGHBOUR_USAGE.iter().map(|u| u.to_string()).collect();
    let mut kinds: Vec<(&str, &'static [&'static str])> =
        cfg.nodes().iter().filter_map(|(_, st)| Some((st.kind.as_str(), st.builder.live()?.usage()))).collect();
    kinds.sort();
    kinds.dedup();
    u.extend(kinds.iter().flat_map(|(_, lines)| lines.iter().map(|l| format!("{l} [--stage NAME]"))));
    u
}

/// Answers a table command, or `None` when `words` is not one.
pub(crate) fn answer(s: &State, words: &[&str]) -> Option<Result<(String, Value), String>> {
    let (&kind, rest) = words.split_first()?;
    if kind == "neighbour" {
        return Some(neighbour(s, rest).map(|a| logged(s, words, render("neighbours", a))));
    }
    let cfg = s.reloader.running();
    let stages: Vec<(String, &nfv_core::config::StageSpec)> = cfg
        .nodes()
        .into_iter()
        .filter(|(_, st)| st.kind == kind && st.builder.live().is_some_and(|l| !l.usage().is_empty()))
        .map(|(c, st)| (format!("{}/{}", cfg.chains[c].name, st.name), st))
        .collect();
    if stages.is_empty() {
        return None;
    }
    // `--stage NAME` (the stage's name, or chain/name) wherever it is.
    let mut rest: Vec<&str> = rest.to_vec();
    let wanted = rest.iter().position(|w| *w == "--stage").map(|i| {
        rest.remove(i);
        (i < rest.len()).then(|| rest.remove(i))
    });
    let names = || stages.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>().join(", ");
    let chosen = match wanted {
        Some(None) => return Some(Err(format!("--stage needs a name: {}", names()))),
        Some(Some(name)) => {
            let found: Vec<_> = stages.iter().filter(|(full, st)| *full == name || st.name == name).collect();
            match found[..] {
                [one] => one,
                [] => return Some(Err(format!("no `{kind}` stage `{name}`: {}", names()))),
                _ => return Some(Err(format!("`{name}` names several `{kind}` stages; use chain/name: {}", names()))),
            }
        }
        None if stages.len() == 1 => &stages[0],
        None => {
            return Some(Err(format!("{} `{kind}` stages: pick one with --stage NAME ({})", stages.len(), names())));
        }
    };
    let live = chosen.1.builder.live().expect("filtered");
    Some(live.command(&rest).map(|a| logged(s, words, render(&chosen.0, a))))
}

/// A change (anything but a listing) goes to the run's log as well: who
/// changed what is in the journal beside the reloads.
fn logged(s: &State, words: &[&str], answer: (String, Value)) -> (String, Value) {
    if !words.contains(&"list") {
        let what = answer.0.lines().collect::<Vec<_>>().join("; ");
        s.reloader.tell(&[format!("nfv ctl {}: {what}", words.join(" "))]);
    }
    answer
}

/// Text (the answer's lines, then its rows aligned under their columns)
/// and JSON (`{stage, text, rows: [{column: value}]}`).
fn render(stage: &str, a: Answer) -> (String, Value) {
    let mut text = a.text.clone();
    let mut rows_json = Vec::new();
    if let Some((columns, rows)) = &a.table {
        let mut width: Vec<usize> = columns.iter().map(|c| c.len()).collect();
        for r in rows {
            for (w, v) in width.iter_mut().zip(r) {
                *w = (*w).max(v.len());
            }
        }
        let line = |cells: Vec<&str>| {
            let padded: Vec<String> = cells.iter().zip(&width).map(|(c, w)| format!("{c:<w$}")).collect();
            padded.join("  ").trim_end().to_string() + "\n"
        };
        text += &line(columns.to_vec());
        for r in rows {
            text += &line(r.iter().map(String::as_str).collect());
            let obj: Map<String, Value> =
                columns.iter().zip(r).map(|(c, v)| (c.to_string(), Value::String(v.clone()))).collect();
            rows_json.push(Value::Object(obj));
        }
    }
    (text, serde_json::json!({ "stage": stage, "text": a.text, "rows": rows_json }))
}

/// `neighbour list | add IP MAC PORT | delete IP`: the adjacencies every
/// worker uses (static ones added and removed here; learned ones may be
/// deleted, and are learned again when next asked for).
fn neighbour(s: &State, words: &[&str]) -> Result<Answer, String> {
    let table = &s.status.neighbours;
    let ports = s.reloader.running().port_names();
    let usage = || format!("usage: {}", NEIGHBOUR_USAGE.join(" | "));
    let ip = |w: &str| w.parse::<IpAddr>().map_err(|_| format!("`{w}` is not an IP address; {}", usage()));
    match words {
        ["list"] => {
            let rows = table
                .snapshot()
                .entries()
                .into_iter()
                .map(|(ip, n)| {
                    let mac = mac_text(&n.mac);
                    let origin = if n.origin == Origin::Static { "static" } else { "learned" };
                    vec![ip.to_string(), mac, ports.get(n.port as usize).cloned().unwrap_or_default(), origin.into()]
                })
                .collect();
            Ok(Answer::rows(&["address", "mac", "port", "origin"], rows))
        }
        ["add", addr, mac, port] => {
            let addr = ip(addr)?;
            let mac = parse_mac(mac)?;
            let Some(p) = ports.iter().position(|n| n == port) else {
                return Err(format!("no port named `{port}`; known ports: {}", ports.join(", ")));
            };
            table.set_static(addr, mac, p as nfv_core::PortId);
            Ok(Answer::line(format!("neighbour {addr} is {} on {port} (static)\n", mac_text(&mac))))
        }
        ["delete", addr] => {
            let addr = ip(addr)?;
            if table.remove(addr) {
                Ok(Answer::line(format!("neighbour {addr} deleted\n")))
            } else {
                Err(format!("no neighbour {addr}"))
            }
        }
        _ => Err(usage()),
    }
}
