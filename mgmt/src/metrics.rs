//! `/metrics`: the counters the workers write, read and summed at scrape
//! time, in the Prometheus exposition format (OpenMetrics text, through
//! `prometheus-client`).
//!
//! One naming scheme: `nfv_<subsystem>_<what>[_<unit>]`, counters ending
//! in `_total`, times in seconds. Labels are bounded by the configuration
//! (workers, ports, queues, stages, chains, drop reasons), never by
//! traffic: no per-flow or per-session label.

use std::fmt;

use std::sync::atomic::Ordering::Relaxed;

use nfv_core::cycles;
use nfv_core::telemetry::Telemetry;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

use crate::State;

/// Labels of one series.
type Labels = Vec<(&'static str, String)>;

/// A series' value: counts stay integers in the exposition.
#[derive(Clone, Copy)]
enum Num {
    Int(u64),
    Float(f64),
}

impl From<u64> for Num {
    fn from(v: u64) -> Self {
        Num::Int(v)
    }
}

impl From<usize> for Num {
    fn from(v: usize) -> Self {
        Num::Int(v as u64)
    }
}

impl From<f64> for Num {
    fn from(v: f64) -> Self {
        Num::Float(v)
    }
}

/// Reads a [`State`] on each scrape.
#[derive(Debug)]
struct NfvCollector(State);

/// Writes one metric family: `name` (without `_total`), its help, its
/// type, and its series.
fn family(
    enc: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    kind: MetricType,
    series: impl IntoIterator<Item = (Labels, impl Into<Num>)>,
) -> fmt::Result {
    let mut m = enc.encode_descriptor(name, help, None, kind)?;
    for (labels, v) in series {
        let mut e = m.encode_family(&labels)?;
        match (kind, v.into()) {
            (MetricType::Counter, Num::Int(v)) => e.encode_counter::<NoLabelSet, _, u64>(&v, None)?,
            (MetricType::Counter, Num::Float(v)) => e.encode_counter::<NoLabelSet, _, u64>(&v, None)?,
            (_, Num::Int(v)) => e.encode_gauge(&(v as i64))?,
            (_, Num::Float(v)) => e.encode_gauge(&v)?,
        }
    }
    Ok(())
}

impl Collector for NfvCollector {
    fn encode(&self, mut enc: DescriptorEncoder<'_>) -> fmt::Result {
        let t = &self.0.telemetry;
        let mut info = enc.encode_descriptor("nfv_build", "The running nfv's version.", None, MetricType::Info)?;
        info.encode_info(&vec![("version", env!("CARGO_PKG_VERSION").to_string())])?;
        ports(&mut enc, t)?;
        stages(&mut enc, t)?;
        edges(&mut enc, t)?;
        workers(&mut enc, &self.0)?;
        latency(&mut enc, &self.0)?;
        let s = &self.0.slow;
        let events = [
            ("arp-reply", s.arp_replies.get()),
            ("echo-reply", s.echo_replies.get()),
            ("nd-advert", s.nd_adverts.get()),
            ("resolution-sent", s.resolutions_sent.get()),
            ("learned", s.learned.get()),
            ("ignored", s.ignored.get()),
            ("time-exceeded", s.time_exceeded.get()),
            ("rate-limited", s.rate_limited.get()),
            ("neighbour-lost", s.neighbours_lost.get()),
        ];
        family(
            &mut enc,
            "nfv_slowpath_events",
            "What the slow path answered, learned, sent or refused, by event.",
            MetricType::Counter,
            events.iter().map(|(e, n)| (vec![("event", e.to_string())], *n)),
        )?;
        let n = &self.0.status.neighbours;
        family(
            &mut enc,
            "nfv_neighbours",
            "Entries in the neighbour table (ARP and NDP).",
            MetricType::Gauge,
            [(vec![], n.snapshot().len())],
        )?;
        family(
            &mut enc,
            "nfv_neighbours_unresolved",
            "Next hops the configuration needs that are not resolved yet.",
            MetricType::Gauge,
            [(vec![], self.0.status.unresolved().len())],
        )?;
        reloads(&mut enc, &self.0)?;
        tables(&mut enc, &self.0)?;
        placement(&mut enc, &self.0)?;
        Ok(())
    }
}

/// The plan (`nfv plan`): where each stage's work runs, and what nfv's
/// XDP program did.
fn placement(enc: &mut DescriptorEncoder<'_>, s: &State) -> fmt::Result {
    let plan = nfv_core::plan::plan(&s.reloader.running());
    family(
        enc,
        "nfv_plan_placement",
        "Where the plan runs each stage's work (1 per stage, work and place: nic, xdp or worker).",
        MetricType::Gauge,
        plan.decisions.iter().map(|d| {
            let place = format!("{:?}", d.place).to_lowercase();
            (vec![("stage", d.stage.clone()), ("work", d.what.clone()), ("place", place)], 1u64)
        }),
    )?;
    if let Some(x) = &s.telemetry.xdp {
        use std::sync::atomic::Ordering::Relaxed;
        family(
            enc,
            "nfv_xdp_packets",
            "Packets nfv's XDP program decided itself (forwarded, or dropped by a filter) or sent up to the workers.",
            MetricType::Counter,
            [("forwarded", x.forwarded.load(Relaxed)), ("up", x.up.load(Relaxed))]
                .map(|(v, n)| (vec![("verdict", v.to_string())], n)),
        )?;
        family(
            enc,
            "nfv_xdp_program_runs",
            "Runs of nfv's XDP program, when the kernel keeps BPF statistics (kernel.bpf_stats_enabled=1).",
            MetricType::Counter,
            [(vec![], x.runs.load(Relaxed))],
        )?;
        family(
            enc,
            "nfv_xdp_program_seconds",
            "Time nfv's XDP program ran, when the kernel keeps BPF statistics.",
            MetricType::Counter,
            [(vec![], x.run_ns.load(Relaxed) as f64 / 1e9)],
        )?;
        family(
            enc,
            "nfv_xdp_flows",
            "Established flows installed in nfv's XDP program.",
            MetricType::Gauge,
            [(vec![], x.flows.load(Relaxed))],
        )?;
    }
    Ok(())
}

/// Table occupancy (per worker, or shared by the workers: no `worker`
/// label) and the versions of what changes live.
fn tables(enc: &mut DescriptorEncoder<'_>, s: &State) -> fmt::Result {
    let cfg = s.reloader.running();
    let mut series: Vec<(Labels, u64, u64)> = Vec::new();
    for (w, stages) in s.telemetry.stages.iter().enumerate() {
        for st in stages.iter() {
            for g in st.tables.iter() {
                let l = vec![("worker", w.to_string()), ("stage", st.name.clone()), ("table", g.name.to_string())];
                series.push((l, g.entries.get(), g.capacity.get()));
            }
        }
    }
    let nodes = cfg.nodes();
    for (_, st) in &nodes {
        for (name, o) in st.builder.shared_tables() {
            series.push((vec![("stage", st.name.clone()), ("table", name.to_string())], o.entries, o.capacity));
        }
    }
    let g = MetricType::Gauge;
    family(
        enc,
        "nfv_table_entries",
        "Entries in a stage's table, per worker (tables the workers share have no worker label).",
        g,
        series.iter().map(|(l, e, _)| (l.clone(), *e)),
    )?;
    family(
        enc,
        "nfv_table_capacity",
        "Most entries a stage's table holds, per worker; 0: no bound.",
        g,
        series.iter().map(|(l, _, c)| (l.clone(), *c)),
    )?;
    let versions = nodes.iter().filter_map(|(_, st)| {
        let (set, v) = st.builder.live()?.version();
        Some((vec![("stage", st.name.clone()), ("set", set.to_string())], v))
    });
    family(
        enc,
        "nfv_ruleset_version",
        "Version of what a stage changes live (rules, backends, forwards...): 0 at the start, one more per update.",
        g,
        versions,
    )
}

/// How configuration reloads went (Prometheus's own names, under `nfv_`).
fn reloads(enc: &mut DescriptorEncoder<'_>, s: &State) -> fmt::Result {
    let c = &s.reloader.counters;
    let (applied, refused) = (c.applied.load(Relaxed), c.refused.load(Relaxed));
    family(
        enc,
        "nfv_config_reloads",
        "Configuration reloads (nfv ctl reload, SIGHUP, a watched table file), by result.",
        MetricType::Counter,
        [(vec![("result", "applied".to_string())], applied), (vec![("result", "refused".to_string())], refused)],
    )?;
    family(
        enc,
        "nfv_config_last_reload_success_timestamp_seconds",
        "Unix time of the last applied reload (0: none since the start).",
        MetricType::Gauge,
        [(vec![], c.last_applied.load(Relaxed))],
    )
}

fn ports(enc: &mut DescriptorEncoder<'_>, t: &Telemetry) -> fmt::Result {
    let place = |p: &nfv_core::telemetry::PortCounters| {
        let (w, q) = p.place.get().copied().unwrap_or_default();
        vec![("port", p.name.clone()), ("worker", w.to_string()), ("queue", q.to_string())]
    };
    let each = |f: fn(&nfv_core::telemetry::PortCounters) -> u64| {
        t.ports.iter().map(move |p| (place(p), f(p))).collect::<Vec<_>>()
    };
    let c = MetricType::Counter;
    family(enc, "nfv_port_rx_packets", "Packets received, per port queue.", c, each(|p| p.rx_packets.get()))?;
    family(enc, "nfv_port_rx_bytes", "Octets received, per port queue.", c, each(|p| p.rx_bytes.get()))?;
    family(enc, "nfv_port_tx_packets", "Packets transmitted, per port queue.", c, each(|p| p.tx_packets.get()))?;
    family(enc, "nfv_port_tx_bytes", "Octets transmitted, per port queue.", c, each(|p| p.tx_bytes.get()))?;
    let drops = t.ports.iter().flat_map(|p| {
        p.reasons.iter().zip(p.drops.iter()).map(move |(r, n)| {
            let mut l = place(p);
            l.push(("reason", r.to_string()));
            (l, n.get())
        })
    });
    family(enc, "nfv_port_drops", "Packets a port could not receive or send, by reason.", c, drops)?;
    let modes = t.ports.iter().filter_map(|p| {
        let mut l = place(p);
        l.push(("mode", p.mode.get()?.clone()));
        Some((l, 1.0))
    });
    family(
        enc,
        "nfv_port_mode",
        "How each port queue runs (AF_XDP: the bind mode it got); always 1.",
        MetricType::Gauge,
        modes,
    )
}

fn stages(enc: &mut DescriptorEncoder<'_>, t: &Telemetry) -> fmt::Result {
    let all = || {
        t.stages.iter().enumerate().flat_map(|(w, chain)| {
            chain.iter().map(move |s| (vec![("worker", w.to_string()), ("stage", s.name.clone())], s))
        })
    };
    let c = MetricType::Counter;
    family(enc, "nfv_stage_packets", "Packets handed to a stage.", c, all().map(|(l, s)| (l, s.pkts_in.get())))?;
    family(enc, "nfv_stage_calls", "Batches a stage processed.", c, all().map(|(l, s)| (l, s.calls.get())))?;
    family(
        enc,
        "nfv_stage_cycles",
        "CPU cycle-counter ticks spent in a stage (nfv_stage_cycles_total / nfv_stage_packets_total: cycles per packet).",
        c,
        all().map(|(l, s)| (l, s.ticks.get())),
    )?;
    family(
        enc,
        "nfv_stage_seconds",
        "Time spent in a stage, from its cycle ticks.",
        c,
        all().map(|(l, s)| (l, s.ticks.get() as f64 / cycles::ticks_per_sec())),
    )?;
    family(
        enc,
        "nfv_stage_routed_packets",
        "Packets a stage gave an egress or handed to another worker.",
        c,
        all().map(|(l, s)| (l, s.pkts_out.get())),
    )?;
    family(
        enc,
        "nfv_stage_punted_packets",
        "Packets a stage sent to the slow path.",
        c,
        all().map(|(l, s)| (l, s.pkts_punt.get())),
    )?;
    let drops = all().flat_map(|(l, s)| {
        s.reasons.iter().zip(s.drops.iter()).map(move |(r, n)| {
            let mut l = l.clone();
            l.push(("reason", r.to_string()));
            (l, n.get())
        })
    });
    family(enc, "nfv_stage_drops", "Packets a stage dropped, by reason.", c, drops)
}

fn edges(enc: &mut DescriptorEncoder<'_>, t: &Telemetry) -> fmt::Result {
    let series = t
        .edge_summary()
        .into_iter()
        .map(|(from, to, n)| (vec![("from", from), ("to", to.unwrap_or_else(|| "end".into()))], n));
    family(
        enc,
        "nfv_graph_edge_packets",
        "Packets moved between chains of the graph (to=\"end\": left at a chain's end for transmission).",
        MetricType::Counter,
        series,
    )
}

fn workers(enc: &mut DescriptorEncoder<'_>, s: &State) -> fmt::Result {
    let now = cycles::now();
    let label = |w: &nfv_core::telemetry::WorkerCounters| vec![("worker", w.index.to_string())];
    let ws = &s.telemetry.workers;
    family(
        enc,
        "nfv_worker_polls",
        "Polls of a worker's queues.",
        MetricType::Counter,
        ws.iter().map(|w| (label(w), w.polls.get())),
    )?;
    family(
        enc,
        "nfv_worker_last_poll_age_seconds",
        "Seconds since a worker last polled (a stuck worker's grows; /livez turns red past its bound).",
        MetricType::Gauge,
        ws.iter().map(|w| (label(w), w.silent_secs(now))),
    )?;
    family(
        enc,
        "nfv_worker_live",
        "1 when a worker polled within the liveness bound (or ended its run), else 0.",
        MetricType::Gauge,
        ws.iter().map(|w| (label(w), u64::from(crate::probes::wedged(w, now, s.live_bound).is_none()))),
    )
}

fn latency(enc: &mut DescriptorEncoder<'_>, s: &State) -> fmt::Result {
    s.latency.with(&s.telemetry, |rows| {
        let mut m = enc.encode_descriptor(
            "nfv_batch_latency_seconds",
            "Time a received batch spends in its worker until transmitted.",
            None,
            MetricType::Histogram,
        )?;
        for (w, set, _) in rows {
            let (sum, count, b) = crate::latency::buckets(&set.batch);
            m.encode_family(&vec![("worker", w.to_string())])?.encode_histogram::<NoLabelSet>(sum, count, &b, None)?;
        }
        let mut m = enc.encode_descriptor(
            "nfv_stage_call_seconds",
            "Time of one call of a stage (one batch).",
            None,
            MetricType::Histogram,
        )?;
        for (w, set, names) in rows {
            for (name, h) in names.iter().zip(&set.stages) {
                let (sum, count, b) = crate::latency::buckets(h);
                m.encode_family(&vec![("worker", w.to_string()), ("stage", name.clone())])?
                    .encode_histogram::<NoLabelSet>(sum, count, &b, None)?;
            }
        }
        Ok(())
    })
}

/// The registry `/metrics` encodes.
pub(crate) fn registry(state: State) -> Registry {
    let mut r = Registry::default();
    r.register_collector(Box::new(NfvCollector(state)));
    r
}

/// The exposition text of `registry`.
pub(crate) fn render(registry: &Registry) -> String {
    let mut out = String::new();
    prometheus_client::encoding::text::encode(&mut out, registry).expect("writing to a String");
    out
}
