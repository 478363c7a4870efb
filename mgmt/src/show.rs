//! What `nfv ctl show ...` answers, as JSON for tooling and as the same
//! tables the end-of-run report prints: totals since start, rates over
//! the last sampling interval.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use nfv_core::cycles;
use nfv_core::telemetry::{PortSummary, StageSummary, render_port_table, render_stage_table};
use serde::Serialize;
use serde_json::{Value, json};

use crate::State;

/// Counter totals at one instant.
#[derive(Clone)]
struct Sample {
    at: Instant,
    stages: Vec<StageSummary>,
    ports: Vec<PortSummary>,
}

impl Sample {
    fn take(s: &State) -> Self {
        Self { at: Instant::now(), stages: s.telemetry.stage_summary(), ports: s.telemetry.port_summary() }
    }
}

/// The last samples the sampler thread took, to turn totals into rates.
#[derive(Default)]
pub(crate) struct Samples(Mutex<Vec<Sample>>);

/// Seconds between samples: the interval rates cover.
pub(crate) const SAMPLE_EVERY: Duration = Duration::from_secs(1);

impl Samples {
    /// Takes a sample, keeping the last two.
    pub(crate) fn sample(&self, s: &State) {
        let new = Sample::take(s);
        let mut v = self.0.lock().expect("samples");
        v.push(new);
        if v.len() > 2 {
            v.remove(0);
        }
    }

    /// The newest sample at least half an interval older than `now`.
    fn before(&self, now: Instant) -> Option<Sample> {
        let v = self.0.lock().expect("samples");
        v.iter().rev().find(|x| now.duration_since(x.at) >= SAMPLE_EVERY / 2).cloned()
    }

    /// Totals now, what changed over the last interval (since start if
    /// no sample is old enough), and that interval in seconds.
    fn interval(&self, s: &State) -> (Sample, Sample, f64) {
        let now = Sample::take(s);
        let before = self.before(now.at);
        let dt = before.as_ref().map_or_else(|| s.status.built.elapsed(), |b| now.at - b.at).as_secs_f64().max(1e-9);
        let b = before.as_ref();
        let old = |name: &str| b.and_then(|b| b.stages.iter().find(|x| x.name == name));
        let old_port = |name: &str| b.and_then(|b| b.ports.iter().find(|x| x.name == name));
        let delta = Sample {
            at: now.at,
            stages: now.stages.iter().map(|x| x.since(old(&x.name))).collect(),
            ports: now.ports.iter().map(|x| x.since(old_port(&x.name))).collect(),
        };
        (now, delta, dt)
    }
}

/// One stage's row.
#[derive(Serialize)]
struct StageRow {
    stage: String,
    packets: u64,
    calls: u64,
    cycles: u64,
    routed: u64,
    punted: u64,
    dropped: u64,
    drops: serde_json::Map<String, Value>,
    packets_per_second: f64,
    packets_per_call: f64,
    cycles_per_packet: f64,
}

/// One port's row.
#[derive(Serialize)]
struct PortRow {
    port: String,
    rx_packets: u64,
    rx_bytes: u64,
    tx_packets: u64,
    tx_bytes: u64,
    rx_packets_per_second: f64,
    tx_packets_per_second: f64,
    drops: serde_json::Map<String, Value>,
    modes: Vec<String>,
}

fn drops_map(d: &[(String, u64)]) -> serde_json::Map<String, Value> {
    d.iter().map(|(r, n)| (r.clone(), json!(n))).collect()
}

/// `show runtime`: the per-stage table (the end-of-run report's, rates
/// over the last interval), the graph's edges and the workers.
pub(crate) fn runtime(s: &State, samples: &Samples) -> (String, Value) {
    let (now, interval, dt) = samples.interval(s);
    let per = |n: u64, d: u64| if d == 0 { 0.0 } else { n as f64 / d as f64 };
    let rows: Vec<StageRow> = now
        .stages
        .iter()
        .zip(&interval.stages)
        .map(|(st, i)| StageRow {
            stage: st.name.clone(),
            packets: st.pkts_in,
            calls: st.calls,
            cycles: st.ticks,
            routed: st.out,
            punted: st.punt,
            dropped: st.dropped(),
            drops: drops_map(&st.drops),
            packets_per_second: i.pkts_in as f64 / dt,
            packets_per_call: per(st.pkts_in, st.calls),
            cycles_per_packet: per(st.ticks, st.pkts_in),
        })
        .collect();
    let edges: Vec<Value> = s
        .telemetry
        .edge_summary()
        .into_iter()
        .map(|(from, to, n)| json!({ "from": from, "to": to.unwrap_or_else(|| "end".into()), "packets": n }))
        .collect();
    let tnow = cycles::now();
    let workers: Vec<Value> = s
        .telemetry
        .workers
        .iter()
        .map(|w| {
            json!({
                "worker": w.index,
                "core": w.core,
                "polls": w.polls.get(),
                "last_poll_age_seconds": w.silent_secs(tnow),
                "ended": w.exited.load(std::sync::atomic::Ordering::Relaxed),
            })
        })
        .collect();
    let uptime = s.status.built.elapsed().as_secs_f64();
    let text = format!(
        "up {uptime:.1} s; packets and drops over the last {dt:.2} s (since start: --json)\n{}",
        render_stage_table(&interval.stages, dt, cycles::ticks_per_ns())
    );
    let json = json!({
        "uptime_seconds": uptime,
        "interval_seconds": dt,
        "stages": rows,
        "edges": edges,
        "workers": workers,
    });
    (text, json)
}

/// `show errors`: every non-zero drop counter, stages then ports.
pub(crate) fn errors(s: &State) -> (String, Value) {
    let mut rows = Vec::new();
    for st in s.telemetry.stage_summary() {
        for (r, n) in &st.drops {
            rows.push(json!({ "stage": st.name, "reason": r, "packets": n }));
        }
    }
    for p in s.telemetry.port_summary() {
        for (r, n) in &p.drops {
            rows.push(json!({ "port": p.name, "reason": r, "packets": n }));
        }
    }
    let mut text = format!("{:>12}  {:<24} reason\n", "packets", "stage or port");
    for r in &rows {
        let at = r.get("stage").or_else(|| r.get("port")).and_then(Value::as_str).unwrap_or("");
        let n = r["packets"].as_u64().unwrap_or(0);
        text.push_str(&format!("{n:>12}  {at:<24} {}\n", r["reason"].as_str().unwrap_or("")));
    }
    (text, Value::Array(rows))
}

/// `show ports`: per-port totals, rates over the last interval, modes.
pub(crate) fn ports(s: &State, samples: &Samples) -> (String, Value) {
    let (now, interval, dt) = samples.interval(s);
    let rows: Vec<PortRow> = now
        .ports
        .iter()
        .zip(&interval.ports)
        .map(|(p, i)| PortRow {
            port: p.name.clone(),
            rx_packets: p.rx_packets,
            rx_bytes: p.rx_bytes,
            tx_packets: p.tx_packets,
            tx_bytes: p.tx_bytes,
            rx_packets_per_second: i.rx_packets as f64 / dt,
            tx_packets_per_second: i.tx_packets as f64 / dt,
            drops: drops_map(&p.drops),
            modes: p.modes.clone(),
        })
        .collect();
    let text =
        format!("packets over the last {dt:.2} s (since start: --json)\n{}", render_port_table(&interval.ports, dt));
    (text, serde_json::to_value(rows).expect("rows serialise"))
}

/// `show plan`: where the running configuration's work runs (as `nfv
/// plan` prints it), and what nfv's XDP program did so far.
pub(crate) fn plan(s: &State) -> (String, Value) {
    use std::sync::atomic::Ordering::Relaxed;
    let plan = nfv_core::plan::plan(&s.reloader.running());
    let mut text = plan.render();
    let decisions: Vec<Value> = plan
        .decisions
        .iter()
        .map(|d| json!({ "stage": d.stage, "work": d.what, "place": format!("{:?}", d.place).to_lowercase(), "reason": d.reason }))
        .collect();
    let xdp = s.telemetry.xdp.as_ref().map(|x| {
        let (forwarded, up, flows) = (x.forwarded.load(Relaxed), x.up.load(Relaxed), x.flows.load(Relaxed));
        text += &format!("xdp: forwarded {forwarded} packets, sent up {up}, flows installed {flows}\n");
        json!({ "forwarded": forwarded, "up": up, "flows": flows })
    });
    if xdp.is_none() {
        text += "xdp: not attached (offload off, no AF_XDP port, or the engine unavailable)\n";
    }
    (text, json!({ "decisions": decisions, "xdp": xdp }))
}
