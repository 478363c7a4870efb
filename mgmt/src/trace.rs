//! `nfv ctl trace add N [--stage S]`, `trace clear` and `show trace`: arms
//! the workers' tracing (`nfv_core::trace`) and keeps the records they
//! queue, grouped by packet for the console.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::Ordering;

use nfv_core::trace::{TraceControl, TraceRecord};
use serde_json::{Value, json};

/// Records kept for `show trace`, at most.
const KEEP: usize = 10_000;

/// The records taken from the workers' queue, oldest first.
#[derive(Default)]
pub struct Traces(Mutex<VecDeque<TraceRecord>>);

impl Traces {
    /// Takes what the workers queued.
    pub(crate) fn collect(&self, c: &TraceControl) {
        let mut v = self.0.lock().expect("traces");
        while let Some(r) = c.records.pop() {
            if v.len() == KEEP {
                v.pop_front();
            }
            v.push_back(r);
        }
    }
}

/// `trace add N [--stage S]`: `stages` are the configured stage names.
pub(crate) fn add(c: &TraceControl, t: &Traces, args: &[&str], stages: &[String]) -> Result<(String, Value), String> {
    let usage = "usage: trace add N [--stage STAGE]";
    let n: u32 = args.first().and_then(|n| n.parse().ok()).filter(|n| *n > 0).ok_or(usage)?;
    let stage = match &args[1..] {
        [] => None,
        ["--stage", s] if stages.iter().any(|x| x == s) => Some(s.to_string()),
        ["--stage", s] => return Err(format!("no stage `{s}`; stages: {}", stages.join(", "))),
        _ => return Err(usage.into()),
    };
    t.0.lock().expect("traces").clear();
    let at = stage.as_deref().map_or("received".to_string(), |s| format!("entering {s}"));
    c.arm(n, stage);
    Ok((format!("tracing the next {n} packets {at}\n"), json!({ "armed": n })))
}

/// `trace clear`.
pub(crate) fn clear(c: &TraceControl, t: &Traces) -> (String, Value) {
    c.clear();
    t.0.lock().expect("traces").clear();
    ("trace cleared\n".into(), json!({ "armed": 0 }))
}

/// `show trace`: each traced packet's steps, in order.
pub(crate) fn show(c: &TraceControl, t: &Traces) -> (String, Value) {
    t.collect(c);
    let v = t.0.lock().expect("traces");
    let mut packets: Vec<(u32, usize, Vec<&TraceRecord>)> = Vec::new();
    for r in v.iter() {
        match packets.iter_mut().find(|p| p.0 == r.packet) {
            Some(p) => p.2.push(r),
            None => packets.push((r.packet, r.worker, vec![r])),
        }
    }
    packets.sort_by_key(|p| p.0);
    let mut text = String::new();
    let mut json_packets = Vec::new();
    for (n, worker, steps) in &packets {
        text += &format!("packet {n} (worker {worker})\n");
        for s in steps {
            text += &format!("  {:<22} {}\n", s.at, s.what);
        }
        json_packets.push(json!({
            "packet": n,
            "worker": worker,
            "steps": steps.iter().map(|s| json!({ "at": s.at, "what": s.what })).collect::<Vec<_>>(),
        }));
    }
    let lost = c.lost.load(Ordering::Relaxed);
    let left = c.remaining();
    if packets.is_empty() {
        text += "no packets traced (trace add N)\n";
    }
    if left > 0 {
        text += &format!("still armed for {left} packets\n");
    }
    if lost > 0 {
        text += &format!("{lost} records lost (queue full)\n");
    }
    (text, json!({ "packets": json_packets, "armed": left, "lost": lost }))
}
