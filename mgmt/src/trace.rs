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

/// `capture --stage S --count N --out FILE`: the next N packets entering
/// stage S, as they enter it, written to FILE (pcap, Ethernet); waits up
/// to `wait` for them and writes what came.
pub(crate) fn capture(
    c: &TraceControl,
    t: &Traces,
    args: &[&str],
    stages: &[String],
    wait: std::time::Duration,
) -> Result<(String, Value), String> {
    let usage = "usage: capture --stage STAGE --count N --out FILE.pcap";
    let (mut stage, mut count, mut out) = (None, None, None);
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match (*a, it.next()) {
            ("--stage", Some(s)) => stage = Some(s.to_string()),
            ("--count", Some(n)) => count = n.parse::<u32>().ok().filter(|n| *n > 0),
            ("--out", Some(f)) => out = Some(std::path::PathBuf::from(f)),
            _ => return Err(usage.into()),
        }
    }
    let (Some(stage), Some(count), Some(out)) = (stage, count, out) else { return Err(usage.into()) };
    if !stages.contains(&stage) {
        return Err(format!("no stage `{stage}`; stages: {}", stages.join(", ")));
    }
    let file = std::fs::File::create(&out).map_err(|e| format!("{}: {e}", out.display()))?;
    t.0.lock().expect("traces").clear();
    c.arm_capture(count, stage.clone());
    let start = std::time::Instant::now();
    let captured = || t.0.lock().expect("traces").iter().filter(|r| r.bytes.is_some()).count();
    // The sampler thread collects too: count what reached the buffer.
    while captured() < count as usize && start.elapsed() < wait {
        std::thread::sleep(std::time::Duration::from_millis(20));
        t.collect(c);
    }
    c.clear();
    t.collect(c);
    let mut got: Vec<TraceRecord> = t.0.lock().expect("traces").drain(..).filter(|r| r.bytes.is_some()).collect();
    got.sort_by_key(|r| r.packet);
    let mut w = pcap_file::pcap::PcapWriter::new(std::io::BufWriter::new(file)).map_err(|e| e.to_string())?;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    for r in &got {
        let data = r.bytes.as_deref().unwrap_or_default();
        w.write_packet(&pcap_file::pcap::PcapPacket::new(now, data.len() as u32, data)).map_err(|e| e.to_string())?;
    }
    drop(w);
    let text = format!("{} of {count} packets entering {stage} written to {}\n", got.len(), out.display());
    Ok((text, json!({ "captured": got.len(), "file": out.display().to_string(), "stage": stage })))
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
