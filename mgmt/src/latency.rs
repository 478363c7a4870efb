//! The workers' latency histograms on the management side: collected
//! from each worker's exchange (see `nfv_core::latency`) into totals
//! since start, shown by `nfv ctl show latency` as quantiles and exported
//! as Prometheus histograms.

use std::sync::Mutex;

use nfv_core::cycles;
use nfv_core::latency::{Hist, LatencySet, hist};
use nfv_core::telemetry::Telemetry;
use serde_json::{Value, json};

/// Totals since start, one set per worker.
#[derive(Default)]
pub struct Latencies(Mutex<Vec<LatencySet>>);

/// The quantiles `show latency` prints.
const QUANTILES: [(&str, f64); 4] = [("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("p99.9", 0.999)];

/// Upper bounds of the exported histograms' buckets, in seconds.
pub(crate) const BUCKETS: [f64; 14] =
    [1e-6, 2.5e-6, 5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 1e-2, 1e-1, 1.0];

impl Latencies {
    /// Takes what every worker handed over since the last call.
    pub(crate) fn collect(&self, t: &Telemetry) {
        let mut v = self.0.lock().expect("latencies");
        if v.len() != t.latency.len() {
            *v = t.latency.iter().map(|x| LatencySet::new(x.stage_names.len())).collect();
        }
        for (x, into) in t.latency.iter().zip(v.iter_mut()) {
            x.collect(into);
        }
    }

    /// Runs `f` over (worker, its totals, its stage names).
    pub(crate) fn with<R>(&self, t: &Telemetry, f: impl FnOnce(&[(usize, &LatencySet, &[String])]) -> R) -> R {
        let v = self.0.lock().expect("latencies");
        let rows: Vec<(usize, &LatencySet, &[String])> =
            t.latency.iter().zip(v.iter()).map(|(x, s)| (x.worker, s, &x.stage_names[..])).collect();
        f(&rows)
    }
}

/// Prometheus histogram form of `h` (ticks): (sum in seconds, count,
/// counts per bucket, each bucket's own: the encoder accumulates).
pub(crate) fn buckets(h: &Hist) -> (f64, u64, Vec<(f64, u64)>) {
    let tps = cycles::ticks_per_sec();
    let mut below = 0;
    let mut b: Vec<(f64, u64)> = BUCKETS
        .iter()
        .map(|&s| {
            let upto = if h.is_empty() { 0 } else { h.count_between(0, (s * tps) as u64) };
            let own = upto - below;
            below = upto;
            (s, own)
        })
        .collect();
    b.push((f64::INFINITY, h.len() - below));
    (h.mean() * h.len() as f64 / tps, h.len(), b)
}

/// Quantiles of `h` (ticks) in microseconds and in ticks.
fn quantiles(h: &Hist) -> Value {
    let us = |t: u64| t as f64 / cycles::ticks_per_ns() / 1e3;
    let mut m = serde_json::Map::new();
    m.insert("count".into(), json!(h.len()));
    for (name, q) in QUANTILES {
        m.insert(format!("{name}_us"), json!(us(h.value_at_quantile(q))));
        m.insert(format!("{name}_cycles"), json!(h.value_at_quantile(q)));
    }
    m.insert("max_us".into(), json!(us(h.max())));
    m.insert("max_cycles".into(), json!(h.max()));
    Value::Object(m)
}

fn line(name: &str, q: &Value) -> String {
    let f = |k: &str| q[k].as_f64().unwrap_or(0.0);
    format!(
        "{name:<24} {:>12} {:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>9.2}\n",
        q["count"].as_u64().unwrap_or(0),
        f("p50_us"),
        f("p90_us"),
        f("p99_us"),
        f("p99.9_us"),
        f("max_us")
    )
}

/// `show latency`: per worker, a batch's time from receive to transmit;
/// per stage (summed over workers), its time per call.
pub(crate) fn show(l: &Latencies, t: &Telemetry) -> (String, Value) {
    l.with(t, |rows| {
        let header = format!(
            "{:<24} {:>12} {:>9} {:>9} {:>9} {:>9} {:>9}\n",
            "", "count", "p50 us", "p90 us", "p99 us", "p99.9 us", "max us"
        );
        let mut text = String::from("batch, receive to transmit\n") + &header;
        let mut workers = Vec::new();
        for (w, set, _) in rows {
            let q = quantiles(&set.batch);
            text += &line(&format!("worker {w}"), &q);
            workers.push(json!({ "worker": w, "batch": q }));
        }
        // Stages by name, merged over the workers that run them.
        let mut stages: Vec<(String, Hist)> = Vec::new();
        for (_, set, names) in rows {
            for (name, h) in names.iter().zip(&set.stages) {
                match stages.iter_mut().find(|(n, _)| n == name) {
                    Some((_, m)) => {
                        let _ = m.add(h);
                    }
                    None => {
                        let mut m = hist();
                        let _ = m.add(h);
                        stages.push((name.clone(), m));
                    }
                }
            }
        }
        text += "\nstage, per call (a batch)\n";
        text += &header;
        let mut sj = Vec::new();
        for (name, h) in &stages {
            let q = quantiles(h);
            text += &line(name, &q);
            sj.push(json!({ "stage": name, "call": q }));
        }
        (text, json!({ "workers": workers, "stages": sj }))
    })
}
