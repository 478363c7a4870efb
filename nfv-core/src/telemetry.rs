//! Counters the workers write and the reporter reads, and the tables that
//! show them (VPP's `show runtime` / `show errors`).
//!
//! Every counter has exactly one writer thread (its worker), so an update
//! is a relaxed load and store, not a locked read-modify-write.

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// A monotonically increasing count with a single writer.
#[derive(Default, Debug)]
pub struct Counter(AtomicU64);

impl Counter {
    /// Adds `n` (single writer: not a locked instruction).
    #[inline(always)]
    pub fn add(&self, n: u64) {
        self.0.store(self.0.load(Relaxed).wrapping_add(n), Relaxed);
    }
    /// Current value.
    #[inline]
    pub fn get(&self) -> u64 {
        self.0.load(Relaxed)
    }
    /// Sets the value (a gauge with a single writer: a time stamp).
    #[inline(always)]
    pub fn set(&self, v: u64) {
        self.0.store(v, Relaxed);
    }
}

/// A worker's heartbeat, for the liveness probe: a worker stuck in a
/// stage stops beating, and the probe says which.
#[derive(Debug, Default)]
pub struct WorkerCounters {
    /// Worker index.
    pub index: usize,
    /// The core it is pinned to, if any.
    pub core: Option<usize>,
    /// Polls of all its queues.
    pub polls: Counter,
    /// Cycle counter at its last poll.
    pub last_poll: Counter,
    /// Set when its poll loop has ended (sources exhausted or stopped):
    /// silent by design, not wedged.
    pub exited: std::sync::atomic::AtomicBool,
    /// The graph node whose `process` is running (its index + 1; 0
    /// between stages): names the stage a panic came from.
    pub in_stage: std::sync::atomic::AtomicU32,
    /// The graph's stage names, by node index.
    pub stage_names: Vec<String>,
}

impl WorkerCounters {
    /// The stage running now (the one a panic came from, read after it).
    pub fn running_stage(&self) -> Option<&str> {
        let i = self.in_stage.load(std::sync::atomic::Ordering::Relaxed) as usize;
        i.checked_sub(1).and_then(|i| self.stage_names.get(i)).map(String::as_str)
    }

    /// Seconds since the worker's last poll, as of cycle counter `now`.
    pub fn silent_secs(&self, now: u64) -> f64 {
        now.saturating_sub(self.last_poll.get()) as f64 / crate::cycles::ticks_per_sec()
    }
}

/// Counters of one stage instance (one per worker per chain position).
#[derive(Debug)]
pub struct StageCounters {
    /// Stage name as configured (its kind, or its `name`).
    pub name: String,
    /// Names of the drop reasons, indexed like `drops`.
    pub reasons: &'static [&'static str],
    /// Batches processed.
    pub calls: Counter,
    /// Packets handed to the stage.
    pub pkts_in: Counter,
    /// Packets that left it with verdict next.
    pub pkts_next: Counter,
    /// Packets it gave an egress (they still go on through the graph),
    /// or handed to another worker.
    pub pkts_out: Counter,
    /// Packets it punted to the slow path.
    pub pkts_punt: Counter,
    /// Cycle-counter ticks spent in the stage.
    pub ticks: Counter,
    /// Drops by reason.
    pub drops: Box<[Counter]>,
    /// The instance's tables, as of its last sample.
    pub tables: Box<[TableGauge]>,
}

/// A table of a stage instance: entries and capacity as the worker last
/// sampled them ([`crate::Stage::occupancy`]).
#[derive(Debug)]
pub struct TableGauge {
    /// Its name.
    pub name: &'static str,
    /// Entries.
    pub entries: Counter,
    /// Most it holds (0: no bound).
    pub capacity: Counter,
}

impl StageCounters {
    /// These counters with gauges for tables `names`.
    pub fn with_tables(mut self, names: &[&'static str]) -> Self {
        self.tables = names
            .iter()
            .map(|&name| TableGauge { name, entries: Counter::default(), capacity: Counter::default() })
            .collect();
        self
    }

    /// Zeroed counters for a stage with these drop reasons.
    pub fn new(name: impl Into<String>, reasons: &'static [&'static str]) -> Self {
        Self {
            name: name.into(),
            reasons,
            calls: Counter::default(),
            pkts_in: Counter::default(),
            pkts_next: Counter::default(),
            pkts_out: Counter::default(),
            pkts_punt: Counter::default(),
            ticks: Counter::default(),
            drops: reasons.iter().map(|_| Counter::default()).collect(),
            tables: Box::new([]),
        }
    }
}

/// Counters of one port instance (one per worker queue).
#[derive(Debug)]
pub struct PortCounters {
    /// Port name.
    pub name: String,
    /// Packets received.
    pub rx_packets: Counter,
    /// Bytes received.
    pub rx_bytes: Counter,
    /// Packets transmitted.
    pub tx_packets: Counter,
    /// Bytes transmitted.
    pub tx_bytes: Counter,
    /// Names of the port's drop reasons (records it could not receive,
    /// frames it could not send).
    pub reasons: &'static [&'static str],
    /// Drops by reason.
    pub drops: Box<[Counter]>,
    /// How the backend runs, set once when it opens (AF_XDP: the bind
    /// mode it got), shown in the port table.
    pub mode: std::sync::OnceLock<String>,
    /// (worker, queue) of this instance, set when the runtime opens it
    /// (the metrics' labels).
    pub place: std::sync::OnceLock<(usize, u16)>,
    /// The first I/O error that lost what the port was to keep (a capture
    /// file that could not be written: a full disk): the run ends in
    /// error, saying this.
    pub fault: std::sync::OnceLock<String>,
}

impl PortCounters {
    /// Zeroed counters.
    pub fn new(name: impl Into<String>, reasons: &'static [&'static str]) -> Self {
        Self {
            name: name.into(),
            rx_packets: Counter::default(),
            rx_bytes: Counter::default(),
            tx_packets: Counter::default(),
            tx_bytes: Counter::default(),
            reasons,
            drops: reasons.iter().map(|_| Counter::default()).collect(),
            mode: std::sync::OnceLock::new(),
            place: std::sync::OnceLock::new(),
            fault: std::sync::OnceLock::new(),
        }
    }
    /// Counts received packets.
    #[inline(always)]
    pub fn rx(&self, pkts: u64, bytes: u64) {
        self.rx_packets.add(pkts);
        self.rx_bytes.add(bytes);
    }
    /// Counts transmitted packets.
    #[inline(always)]
    pub fn tx(&self, pkts: u64, bytes: u64) {
        self.tx_packets.add(pkts);
        self.tx_bytes.add(bytes);
    }
    /// Counts a drop under reason index `r`.
    #[inline]
    pub fn count_drop(&self, r: usize, n: u64) {
        if let Some(c) = self.drops.get(r) {
            c.add(n);
        }
    }
}

/// Everything the reporter can read, registered as workers are built.
#[derive(Default, Clone)]
pub struct Telemetry {
    /// Stage counters, per worker, in chain order.
    pub stages: Vec<Vec<Arc<StageCounters>>>,
    /// Port counters of every port instance.
    pub ports: Vec<Arc<PortCounters>>,
    /// Edge counters of each worker's graph.
    pub edges: Vec<Arc<crate::graph::EdgeCounters>>,
    /// Each worker's heartbeat.
    pub workers: Vec<Arc<WorkerCounters>>,
    /// Each worker's latency histograms, handed over.
    pub latency: Vec<Arc<crate::latency::Exchange>>,
    /// nfv's XDP program, when the run attached it.
    pub xdp: Option<Arc<crate::offload::XdpCounters>>,
}

/// Summed view of one stage across workers.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StageSummary {
    /// Stage name.
    pub name: String,
    /// Batches.
    pub calls: u64,
    /// Packets in.
    pub pkts_in: u64,
    /// Packets on to the next stage.
    pub next: u64,
    /// Packets sent to a port directly.
    pub out: u64,
    /// Packets punted.
    pub punt: u64,
    /// Ticks spent.
    pub ticks: u64,
    /// (reason, count) for every non-zero drop reason.
    pub drops: Vec<(String, u64)>,
    /// Distinct modes of the instances (AF_XDP bind modes).
    pub modes: Vec<String>,
}

impl StageSummary {
    /// Total drops.
    pub fn dropped(&self) -> u64 {
        self.drops.iter().map(|d| d.1).sum()
    }

    /// What this stage did since `old` (its summary earlier; `None`:
    /// since start): the counts of an interval, for its rates.
    pub fn since(&self, old: Option<&Self>) -> Self {
        let d = |f: fn(&Self) -> u64| f(self).saturating_sub(old.map_or(0, f));
        Self {
            pkts_in: d(|x| x.pkts_in),
            calls: d(|x| x.calls),
            ticks: d(|x| x.ticks),
            next: d(|x| x.next),
            out: d(|x| x.out),
            punt: d(|x| x.punt),
            drops: drops_since(&self.drops, old.map(|o| &o.drops[..])),
            ..self.clone()
        }
    }
}

/// Drops by reason counted since `old`, the non-zero ones.
fn drops_since(now: &[(String, u64)], old: Option<&[(String, u64)]>) -> Vec<(String, u64)> {
    let was = |r: &str| old.and_then(|o| o.iter().find(|x| x.0 == r)).map_or(0, |x| x.1);
    now.iter().map(|(r, n)| (r.clone(), n.saturating_sub(was(r)))).filter(|x| x.1 > 0).collect()
}

/// Summed view of one port across its queues.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PortSummary {
    /// Port name.
    pub name: String,
    /// Packets received.
    pub rx_packets: u64,
    /// Bytes received.
    pub rx_bytes: u64,
    /// Packets sent.
    pub tx_packets: u64,
    /// Bytes sent.
    pub tx_bytes: u64,
    /// (reason, count) for every non-zero drop reason.
    pub drops: Vec<(String, u64)>,
    /// Distinct modes of the instances (AF_XDP bind modes).
    pub modes: Vec<String>,
}

impl PortSummary {
    /// What this port did since `old` (see [`StageSummary::since`]).
    pub fn since(&self, old: Option<&Self>) -> Self {
        let d = |f: fn(&Self) -> u64| f(self).saturating_sub(old.map_or(0, f));
        Self {
            rx_packets: d(|x| x.rx_packets),
            rx_bytes: d(|x| x.rx_bytes),
            tx_packets: d(|x| x.tx_packets),
            tx_bytes: d(|x| x.tx_bytes),
            drops: drops_since(&self.drops, old.map(|o| &o.drops[..])),
            ..self.clone()
        }
    }
}

impl Telemetry {
    /// Stage totals by chain position, summed over workers running the
    /// same chain shape (matched by position and name).
    pub fn stage_summary(&self) -> Vec<StageSummary> {
        let mut out: Vec<StageSummary> = Vec::new();
        for chain in &self.stages {
            for c in chain {
                let idx = match out.iter().position(|s| s.name == c.name) {
                    Some(i) => i,
                    None => {
                        out.push(StageSummary { name: c.name.clone(), ..Default::default() });
                        out.len() - 1
                    }
                };
                let s = &mut out[idx];
                s.calls += c.calls.get();
                s.pkts_in += c.pkts_in.get();
                s.next += c.pkts_next.get();
                s.out += c.pkts_out.get();
                s.punt += c.pkts_punt.get();
                s.ticks += c.ticks.get();
                for (r, n) in c.reasons.iter().zip(c.drops.iter()) {
                    merge(&mut s.drops, r, n.get());
                }
            }
        }
        out
    }

    /// Port totals by name.
    pub fn port_summary(&self) -> Vec<PortSummary> {
        let mut out: Vec<PortSummary> = Vec::new();
        for p in &self.ports {
            let idx = match out.iter().position(|s| s.name == p.name) {
                Some(i) => i,
                None => {
                    out.push(PortSummary { name: p.name.clone(), ..Default::default() });
                    out.len() - 1
                }
            };
            let s = &mut out[idx];
            s.rx_packets += p.rx_packets.get();
            s.rx_bytes += p.rx_bytes.get();
            s.tx_packets += p.tx_packets.get();
            s.tx_bytes += p.tx_bytes.get();
            if let Some(m) = p.mode.get()
                && !s.modes.contains(m)
            {
                s.modes.push(m.clone());
            }
            for (r, n) in p.reasons.iter().zip(p.drops.iter()) {
                merge(&mut s.drops, r, n.get());
            }
        }
        out
    }

    /// Packets received on all ports so far.
    pub fn total_rx(&self) -> u64 {
        self.ports.iter().map(|p| p.rx_packets.get()).sum()
    }

    /// Packets transmitted on all ports so far.
    pub fn total_tx(&self) -> u64 {
        self.ports.iter().map(|p| p.tx_packets.get()).sum()
    }

    /// Packets along each edge of the graph, summed over workers:
    /// (from chain, to chain, packets) for moves between chains and
    /// (from chain, None, packets) for those left at a chain's end.
    pub fn edge_summary(&self) -> Vec<(String, Option<String>, u64)> {
        let Some(first) = self.edges.first() else { return Vec::new() };
        let n = first.chains.len();
        let mut out = Vec::new();
        for from in 0..n {
            for to in 0..n {
                let moved: u64 = self.edges.iter().map(|e| e.moved(from, to)).sum();
                if moved > 0 {
                    out.push((first.chains[from].clone(), Some(first.chains[to].clone()), moved));
                }
            }
            let ended: u64 = self.edges.iter().map(|e| e.ended[from].get()).sum();
            if ended > 0 {
                out.push((first.chains[from].clone(), None, ended));
            }
        }
        out
    }
}

fn merge(drops: &mut Vec<(String, u64)>, reason: &str, n: u64) {
    if n == 0 {
        return;
    }
    match drops.iter_mut().find(|d| d.0 == reason) {
        Some(d) => d.1 += n,
        None => drops.push((reason.to_string(), n)),
    }
}

/// Renders the per-stage table: packets, rate, cost per packet, drops by
/// reason. `secs` is the wall time the counters cover, `ticks_per_ns` the
/// calibrated cycle counter rate.
pub fn render_stage_table(stages: &[StageSummary], secs: f64, ticks_per_ns: f64) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{:<18} {:>12} {:>10} {:>9} {:>9} {:>10} {:>10}  drops by reason",
        "stage", "packets", "Mpps", "pkt/call", "ns/pkt", "ticks/pkt", "dropped"
    );
    // The adjacency's row only when it held or refused something.
    let shown = |st: &&StageSummary| st.name != crate::adjacency::ADJACENCY_STAGE || st.pkts_in > 0 || st.dropped() > 0;
    for st in stages.iter().filter(shown) {
        let per = |v: u64| if st.pkts_in == 0 { 0.0 } else { v as f64 / st.pkts_in as f64 };
        let reasons: Vec<String> = st.drops.iter().map(|(r, n)| format!("{r}={n}")).collect();
        let _ = writeln!(
            s,
            "{:<18} {:>12} {:>10.3} {:>9.1} {:>9.2} {:>10.1} {:>10}  {}",
            st.name,
            st.pkts_in,
            st.pkts_in as f64 / secs.max(1e-9) / 1e6,
            if st.calls == 0 { 0.0 } else { st.pkts_in as f64 / st.calls as f64 },
            per(st.ticks) / ticks_per_ns,
            per(st.ticks),
            st.dropped(),
            reasons.join(" ")
        );
    }
    s
}

/// Renders the per-port table.
pub fn render_port_table(ports: &[PortSummary], secs: f64) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{:<18} {:>12} {:>10} {:>12} {:>10}  drops by reason [mode]",
        "port", "rx packets", "rx Mpps", "tx packets", "tx Mpps"
    );
    for p in ports {
        let mut reasons: Vec<String> = p.drops.iter().map(|(r, n)| format!("{r}={n}")).collect();
        if !p.modes.is_empty() {
            reasons.push(format!("[{}]", p.modes.join(" / ")));
        }
        let _ = writeln!(
            s,
            "{:<18} {:>12} {:>10.3} {:>12} {:>10.3}  {}",
            p.name,
            p.rx_packets,
            p.rx_packets as f64 / secs.max(1e-9) / 1e6,
            p.tx_packets,
            p.tx_packets as f64 / secs.max(1e-9) / 1e6,
            reasons.join(" ")
        );
    }
    s
}
