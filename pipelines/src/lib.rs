//! The pipeline layer: the registry of every stage kind this build ships,
//! and the commands of the `nfv` binary (run, check, replay) as functions
//! tests can call.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use nfv_core::config::{self, Config, PcapConfig, PortKind, PortSpec, Report, Tx, WorkerSpec};
use nfv_core::cycles;
use nfv_core::runtime::{BuildError, RunReport, Runtime, SlowPathMode};
use nfv_core::telemetry::{Telemetry, render_port_table, render_stage_table};
use nfv_core::{PortId, StageRegistry};

/// Every stage kind this build knows.
pub fn registry() -> StageRegistry {
    let mut r = StageRegistry::new();
    nfv_basic::register(&mut r);
    nfv_vtep::register(&mut r);
    nfv_acl::register(&mut r);
    nfv_nat::register(&mut r);
    nfv_lb::register(&mut r);
    nfv_upf::register(&mut r);
    r
}

/// Loads and validates `path` (or the embedded quickstart when `None`).
pub fn load(path: Option<&Path>) -> Result<Config, String> {
    let (name, text) = match path {
        Some(p) => (p.display().to_string(), std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))?),
        None => ("<embedded quickstart.toml>".to_string(), config::QUICKSTART.to_string()),
    };
    config::load(&name, &text, &registry()).map_err(|r: Report| r.render())
}

/// The one-line summary `nfv check` prints for a valid file.
pub fn summary(cfg: &Config) -> String {
    let stages: usize = cfg.chains.iter().map(|c| c.stages.len()).sum();
    format!(
        "ok: {} port(s), {} chain(s) with {} stage(s), {} worker(s)",
        cfg.ports.len(),
        cfg.chains.len(),
        stages,
        cfg.workers.len()
    )
}

/// Rewrites `cfg` for `nfv replay`: one worker reads `input` through the
/// chain `chain` (default: the first) and writes what leaves the chain to
/// `output`. The file's own ports become sinks (so stages that send to
/// them still resolve and are counted, but nothing is opened).
pub fn replay_config(mut cfg: Config, chain: Option<&str>, input: &Path, output: &Path) -> Result<Config, String> {
    let chain_idx = match chain {
        None if cfg.chains.is_empty() => return Err("the file defines no chain".into()),
        None => 0,
        Some(name) => cfg.chains.iter().position(|c| c.name == name).ok_or_else(|| {
            let known: Vec<_> = cfg.chains.iter().map(|c| c.name.as_str()).collect();
            format!("unknown chain `{name}`; known chains: {}", known.join(", "))
        })?,
    };
    for p in &mut cfg.ports {
        p.kind = PortKind::Sink;
        p.queues = 1;
    }
    // The replay port takes the addresses of the chain's first rx port so
    // the slow path answers what it would answer live.
    let first_rx = cfg.workers.iter().find(|w| w.chain == chain_idx).and_then(|w| w.rx.first()).map(|r| r.0);
    let (mac, addresses) = first_rx
        .map(|p| (cfg.ports[p as usize].mac, cfg.ports[p as usize].addresses.clone()))
        .unwrap_or(([2, 0x6e, 0x66, 0x76, 0, 0xff], Vec::new()));
    let pid = cfg.ports.len() as PortId;
    cfg.ports.push(PortSpec {
        name: "replay".into(),
        kind: PortKind::Pcap(PcapConfig { input: Some(input.into()), output: Some(output.into()) }),
        queues: 1,
        mac,
        mac_configured: true,
        addresses,
    });
    // Packets the chain leaves undecided go where the chain's worker
    // sends them live: dropped (no `tx`), or out, into the capture.
    let tx = match cfg.workers.iter().find(|w| w.chain == chain_idx).map_or(Tx::Drop, |w| w.tx) {
        Tx::Drop => Tx::Drop,
        Tx::Port(_) | Tx::InPort => Tx::Port(pid),
    };
    cfg.workers = vec![WorkerSpec { core: None, rx: vec![(pid, 0)], chain: chain_idx, tx }];
    cfg.run.duration = 0.0;
    Ok(cfg)
}

/// Runs a configuration to the end; `live` prints a stats line each
/// interval. `stop` ends the run early (SIGINT/SIGTERM). `duration`
/// overrides `[run] duration`; `Some(None)` runs until stopped.
pub fn run(
    cfg: &Config,
    stop: Arc<AtomicBool>,
    duration: Option<Option<Duration>>,
    live: bool,
) -> Result<RunReport, BuildError> {
    let mut rt = Runtime::build(cfg, SlowPathMode::Thread)?;
    for n in &rt.notes {
        eprintln!("nfv: {n}");
    }
    if let Some(d) = duration {
        rt.set_duration(d);
    }
    if !live {
        rt.set_stats_interval(None);
    }
    let mut last = (0u64, 0u64, Duration::ZERO);
    Ok(rt.run(stop, |t: &Telemetry, now| {
        let (rx, tx) = (t.total_rx(), t.total_tx());
        let dt = (now - last.2).as_secs_f64().max(1e-9);
        eprintln!(
            "[{:>6.1}s] rx {:>8.3} Mpps  tx {:>8.3} Mpps  (total rx {rx}, tx {tx})",
            now.as_secs_f64(),
            (rx - last.0) as f64 / dt / 1e6,
            (tx - last.1) as f64 / dt / 1e6,
        );
        last = (rx, tx, now);
    }))
}

/// Replays a capture through a chain, deterministically (one worker, the
/// slow path inline), and returns the report.
pub fn replay(cfg: &Config) -> Result<RunReport, BuildError> {
    Ok(Runtime::build(cfg, SlowPathMode::Inline)?.run_inline())
}

/// The final report: throughput, per-stage table, per-port table, slow path.
pub fn render_report(r: &RunReport) -> String {
    let secs = r.elapsed.as_secs_f64();
    let stages = r.telemetry.stage_summary();
    let ports = r.telemetry.port_summary();
    let rx = r.telemetry.total_rx();
    let tx = r.telemetry.total_tx();
    let s = &r.slow;
    format!(
        "\nran {secs:.2} s: rx {rx} packets ({:.3} Mpps), tx {tx} packets ({:.3} Mpps)\n\n{}\n{}\nslow path: arp-replies={} echo-replies={} nd-adverts={} resolutions-sent={} learned={} ignored={} time-exceeded={} rate-limited={}\n{}",
        rx as f64 / secs.max(1e-9) / 1e6,
        tx as f64 / secs.max(1e-9) / 1e6,
        render_stage_table(&stages, secs, cycles::ticks_per_ns()),
        render_port_table(&ports, secs),
        s.arp_replies.get(),
        s.echo_replies.get(),
        s.nd_adverts.get(),
        s.resolutions_sent.get(),
        s.learned.get(),
        s.ignored.get(),
        s.time_exceeded.get(),
        s.rate_limited.get(),
        r.stage_reports.iter().map(|t| format!("\n{t}")).collect::<String>(),
    )
}
