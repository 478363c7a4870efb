//! The pipeline layer: the registry of every stage kind this build ships,
//! and the commands of the `nfv` binary (run, check, replay) as functions
//! tests can call.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use nfv_core::StageRegistry;
use nfv_core::config::{self, Config, PcapConfig, PortKind, Report, WorkerSpec};
use nfv_core::cycles;
use nfv_core::port::pcap::Recorder;
use nfv_core::runtime::{BuildError, RunReport, Runtime, SlowPathMode};
use nfv_core::telemetry::{Telemetry, render_port_table, render_stage_table};

pub mod graph_view;

/// Every stage kind this build knows.
pub fn registry() -> StageRegistry {
    let mut r = StageRegistry::new();
    nfv_basic::register(&mut r);
    nfv_vtep::register(&mut r);
    nfv_acl::register(&mut r);
    nfv_nat::register(&mut r);
    nfv_lb::register(&mut r);
    nfv_upf::register(&mut r);
    nfv_sfc::register(&mut r);
    r
}

/// Loads and validates `path` (or the embedded quickstart when `None`);
/// file names in it are relative to its directory.
pub fn load(path: Option<&Path>) -> Result<Config, String> {
    match path {
        Some(p) => config::load_file(p, &registry()),
        None => {
            config::load("<embedded quickstart.toml>", config::QUICKSTART, &registry()).map_err(|r: Report| r.render())
        }
    }
}

/// Rewrites `cfg` for `nfv replay`: one worker reads each capture of
/// `inputs` as if it arrived on its port (a port named, else `port`, else
/// the first port a worker polls), the captures' ports polled in the
/// order given, and runs what arrives through the graph from `chain`
/// (default: the entry chain of the workers polling those ports); what
/// every port transmits is recorded into `output`, a pcapng file with one
/// interface per port, named after it. Nothing of the file's own is
/// opened: every port becomes a capture port with its MAC and addresses,
/// so the slow path answers what it would answer live.
pub fn replay_config(
    mut cfg: Config,
    inputs: &[(Option<&str>, &Path)],
    port: Option<&str>,
    chain: Option<&str>,
    output: &Path,
) -> Result<Config, String> {
    let names = cfg.port_names();
    let first_polled = cfg.workers.first().and_then(|w| w.rx.first()).map(|r| r.0 as usize);
    let find = |name: &str| {
        names
            .iter()
            .position(|p| p == name)
            .ok_or_else(|| format!("unknown port `{name}`; known ports: {}", names.join(", ")))
    };
    let mut feeds: Vec<(usize, &Path)> = Vec::new();
    for (named, file) in inputs {
        let pid = match named.or(port) {
            Some(n) => find(n)?,
            None => first_polled.ok_or("no worker polls a port: name one with --port")?,
        };
        if feeds.iter().any(|(p, _)| *p == pid) {
            return Err(format!("two captures for port `{}`: one per port", names[pid]));
        }
        if !file.is_file() {
            return Err(format!("capture `{}` does not exist", file.display()));
        }
        feeds.push((pid, file));
    }
    let entry_of = |pid: usize| cfg.workers.iter().find(|w| w.rx.iter().any(|r| r.0 as usize == pid)).map(|w| w.chain);
    let entry = match chain {
        Some(name) => cfg.chains.iter().position(|c| c.name == name).ok_or_else(|| {
            let known: Vec<_> = cfg.chains.iter().map(|c| c.name.as_str()).collect();
            format!("unknown chain `{name}`; known chains: {}", known.join(", "))
        })?,
        None => {
            let entries: Vec<Option<usize>> = feeds.iter().map(|(p, _)| entry_of(*p)).collect();
            match entries.first().copied().flatten() {
                Some(e) if entries.iter().all(|x| *x == Some(e)) => e,
                _ => return Err("the ports' packets enter different chains, or no worker polls one: name the chain to enter with --chain".into()),
            }
        }
    };
    let recorder = Recorder::create(output, &names).map_err(|e| e.to_string())?;
    for (i, p) in cfg.ports.iter_mut().enumerate() {
        let input = feeds.iter().find(|(pid, _)| *pid == i).map(|(_, f)| f.to_path_buf());
        p.kind = PortKind::Pcap(PcapConfig { input, output: None, recorder: Some(recorder.clone()) });
        p.queues = 1;
    }
    let rx = feeds.iter().map(|(p, _)| (*p as u16, 0)).collect();
    cfg.workers = vec![WorkerSpec { core: None, rx, chain: entry }];
    cfg.run.duration = 0.0;
    Ok(cfg)
}

/// nfv's XDP engine for a run whose plan places work below the workers
/// (`[run] offload = "xdp"`, the default, with AF_XDP ports). Without it
/// (a build without XDP, no privilege to load it) libxdp's program sends
/// every packet up, and the run says so.
fn xdp_engine(cfg: &Config) -> Option<Arc<dyn nfv_core::offload::Engine>> {
    let wanted = cfg.run.offload == nfv_core::config::OffloadMode::Xdp && nfv_core::privilege::self_loading(cfg);
    if !wanted {
        return None;
    }
    #[cfg(feature = "af-xdp")]
    match nfv_hw::xdp::Engine::load() {
        Ok(e) => Some(Arc::new(e)),
        Err(e) => {
            eprintln!("nfv: WARNING: the XDP engine is unavailable ({e}): everything runs in the workers");
            None
        }
    }
    #[cfg(not(feature = "af-xdp"))]
    {
        eprintln!("nfv: WARNING: built without XDP: everything runs in the workers");
        None
    }
}

/// What `nfv hw blast` sends (its command line).
#[derive(Clone, Debug)]
pub struct Blast {
    /// Interface to send out of.
    pub iface: String,
    /// Destination MAC.
    pub dst_mac: String,
    /// IPv4 source (its low 16 bits count through `addrs` values).
    pub src: std::net::Ipv4Addr,
    /// IPv4 destination and UDP port.
    pub dst: std::net::SocketAddrV4,
    /// Source ports and source addresses used.
    pub flows: (u32, u32),
    /// Frame size without the FCS.
    pub size: usize,
    /// Seconds to send (0: until stopped).
    pub duration: f64,
    /// G-PDUs of this TEID from the UE to the data network, to `dst`.
    pub gtpu: Option<(u32, std::net::Ipv4Addr, std::net::SocketAddrV4)>,
}

/// `nfv bench`'s arguments.
pub struct Bench {
    /// The full run, not the quick one.
    pub full: bool,
    /// Cases (empty: all).
    pub cases: Vec<String>,
    /// DUTs (empty: all).
    pub duts: Vec<String>,
    /// Where JSON, CSV and plots go.
    pub out: PathBuf,
    /// Where the Markdown report goes, if anywhere.
    pub report: Option<PathBuf>,
    /// Flows.
    pub flows: usize,
    /// Overrides of the mode's trial lengths and search budget.
    pub timing: BenchTiming,
    /// An external DUT: tx and rx interfaces, its MAC, its name.
    pub external: Option<(String, String, String, String)>,
    /// Say every trial.
    pub verbose: bool,
    /// The command line, for the report.
    pub command: String,
}

/// `nfv bench`'s overrides of its mode's timing (`None`: the mode's).
#[derive(Clone, Copy, Debug, Default)]
pub struct BenchTiming {
    /// Seconds per search trial.
    pub trial: Option<f64>,
    /// Seconds of a verification trial.
    pub verify: Option<f64>,
    /// Seconds per latency trial.
    pub latency: Option<f64>,
    /// Trials per search at most.
    pub max_trials: Option<usize>,
    /// The search's resolution, a fraction of the rate.
    pub resolution: Option<f64>,
}

/// Runs `nfv bench`: a table of what it found.
pub fn bench(b: &Bench) -> Result<String, String> {
    #[cfg(feature = "af-xdp")]
    {
        use nfv_bench::run::{Mode, Options, Timing};
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            return Err("nfv bench builds a veth bed and loads XDP programs: run it as root".into());
        }
        let mode = if b.full { Mode::Full } else { Mode::Quick };
        let d = Timing::of(mode);
        let t = b.timing;
        let timing = Timing {
            trial: t.trial.unwrap_or(d.trial),
            verify: t.verify.unwrap_or(d.verify),
            latency: t.latency.unwrap_or(d.latency),
            max_trials: t.max_trials.unwrap_or(d.max_trials),
            resolution: t.resolution.unwrap_or(d.resolution),
        };
        let valid = timing.trial > 0.0
            && timing.verify > 0.0
            && timing.latency > 0.0
            && timing.max_trials >= 2
            && (0.0001..0.5).contains(&timing.resolution);
        if !valid {
            return Err("trial seconds must be above 0, at least 2 trials, a resolution of 0.01 to 50 %".into());
        }
        let external = match &b.external {
            Some((tx, rx, mac, name)) => Some(nfv_bench::run::External {
                tx: tx.clone(),
                rx: rx.clone(),
                dut_mac: nfv_core::config::parse_mac(mac).map_err(|e| format!("--dst-mac: {e}"))?,
                name: name.clone(),
            }),
            None => None,
        };
        let o = Options {
            mode,
            timing,
            external,
            cases: b.cases.clone(),
            duts: b.duts.clone(),
            nfv: std::env::current_exe().map_err(|e| format!("finding nfv itself: {e}"))?,
            repo: std::env::current_dir().map_err(|e| e.to_string())?,
            work: std::env::temp_dir().join(format!("nfv-bench-{}", std::process::id())),
            prefix: "nfvbench".into(),
            flows: b.flows,
            line_bits: 10e9,
            verbose: b.verbose,
        };
        let run = nfv_bench::run::bench(&o);
        let _ = std::fs::remove_dir_all(&o.work);
        let run = run?;
        nfv_bench::run::write(&run, &b.out)?;
        if let Some(md) = &b.report {
            nfv_bench::report::write(&run, md, &b.out, &b.command)?;
        }
        let mut s = String::new();
        for r in run.rows.iter().filter(|r| r.goal == 0.0) {
            use std::fmt::Write as _;
            let _ = writeln!(
                s,
                "{:<5} {:<24} {:>10} {:>9.3} Mpps{}{}{}",
                r.case,
                r.dut,
                r.frames,
                r.rate_pps / 1e6,
                if r.generator_limited { " (generator's limit)" } else { "" },
                if r.at_line_rate { " (line rate)" } else { "" },
                r.vs_baseline.map_or(String::new(), |v| format!("  x{v:.2}"))
            );
        }
        for n in &run.notes {
            s.push_str(&format!("note: {n}\n"));
        }
        Ok(s)
    }
    #[cfg(not(feature = "af-xdp"))]
    {
        let _ = b;
        Err("this nfv was built without XDP".into())
    }
}

/// `nfv hw blast`: sends from nfv's XDP generator out of `b.iface` until
/// SIGINT/SIGTERM or `b.duration` seconds (0: no limit); returns what it
/// sent, as a line.
pub fn blast(b: &Blast) -> Result<String, String> {
    #[cfg(feature = "af-xdp")]
    {
        let (iface, (ports, addrs), duration) = (&b.iface, b.flows, b.duration);
        let mac = nfv_core::config::parse_mac(&b.dst_mac).map_err(|e| format!("--dst-mac: {e}"))?;
        let src_mac = nfv_core::port::afxdp::interface_mac(iface).map_err(|e| format!("{iface}: {e}"))?;
        let ifindex = ifindex(iface)?;
        let traffic = nfv_hw::blast::Traffic {
            src_mac,
            dst_mac: mac,
            src: b.src.octets(),
            dst: (b.dst.ip().octets(), b.dst.port()),
            frame_size: b.size,
            ports,
            addrs,
            gtpu: b.gtpu.map(|(teid, ue, dn)| nfv_hw::blast::Gtpu {
                teid,
                ue: ue.octets(),
                data_network: (dn.ip().octets(), dn.port()),
            }),
            measure: None,
        };
        let generator = nfv_hw::blast::Generator::load(ifindex, &traffic)?;
        let stop = stop_flag()?;
        let start = std::time::Instant::now();
        let mut calls = 0u64;
        while !stop.load(std::sync::atomic::Ordering::Relaxed)
            && (duration <= 0.0 || start.elapsed().as_secs_f64() < duration)
        {
            generator.send()?;
            calls += 1;
        }
        let n = calls * nfv_hw::blast::PER_CALL as u64;
        let secs = start.elapsed().as_secs_f64();
        Ok(format!("sent {n} frames in {secs:.2} s ({:.3} Mpps offered to {iface})", n as f64 / secs / 1e6))
    }
    #[cfg(not(feature = "af-xdp"))]
    {
        let _ = b;
        Err("this nfv was built without XDP".into())
    }
}

/// Set by SIGINT or SIGTERM.
#[cfg(feature = "af-xdp")]
fn stop_flag() -> Result<Arc<AtomicBool>, String> {
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, stop.clone()).map_err(|e| e.to_string())?;
    }
    Ok(stop)
}

/// The index of interface `name` in this network namespace.
#[cfg(feature = "af-xdp")]
fn ifindex(name: &str) -> Result<u32, String> {
    let c = std::ffi::CString::new(name).map_err(|_| "interface name contains NUL".to_string())?;
    // SAFETY: a NUL-terminated name.
    match unsafe { libc::if_nametoindex(c.as_ptr()) } {
        0 => Err(format!("no interface `{name}` in this network namespace")),
        i => Ok(i),
    }
}

/// `nfv hw xsk-map-server`: plays the AF_XDP device plugin on `ifaces`,
/// serving their XSK maps on `socket`, until SIGINT or SIGTERM.
pub fn xsk_map_server(ifaces: &[String], socket: &Path) -> Result<(), String> {
    #[cfg(feature = "af-xdp")]
    {
        let stop = stop_flag()?;
        nfv_hw::plugin::serve(ifaces, socket, &stop)
    }
    #[cfg(not(feature = "af-xdp"))]
    {
        let _ = (ifaces, socket);
        Err("this nfv was built without XDP".into())
    }
}

/// `nfv hw sink`: drops what `iface` receives in XDP until SIGINT or
/// SIGTERM.
pub fn sink(iface: &str) -> Result<(), String> {
    #[cfg(feature = "af-xdp")]
    {
        let _sink = nfv_hw::blast::Sink::attach(ifindex(iface)?)?;
        let stop = stop_flag()?;
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    }
    #[cfg(not(feature = "af-xdp"))]
    {
        let _ = iface;
        Err("this nfv was built without XDP".into())
    }
}

/// What the pod was handed and how each AF_XDP port found its interface
/// (`nfv check --pod`, and the start-up log in a pod): empty outside a
/// pod when every port names its interface.
pub fn pod_lines(cfg: &Config) -> Vec<String> {
    let pod = nfv_core::pod::current();
    let mut lines = Vec::new();
    for p in &cfg.ports {
        let nfv_core::config::PortKind::AfXdp(a) = &p.kind else { continue };
        match &a.found {
            Some(how) => lines.push(format!("port `{}`: {how}", p.name)),
            None if pod.in_pod => lines.push(format!("port `{}`: interface {} as named", p.name, a.interface)),
            None => {}
        }
    }
    if pod.in_pod {
        let cores: Vec<Option<usize>> = cfg.workers.iter().map(|w| w.core).collect();
        let cpus = nfv_core::pod::cpus::format_list(&pod.cpus);
        match nfv_core::pod::cpus::place(&cores, &pod.cpus) {
            Ok(p) => {
                let on: Vec<String> = p.workers.iter().enumerate().map(|(i, c)| format!("worker {i} on {c}")).collect();
                let rest = nfv_core::pod::cpus::format_list(&p.housekeeping);
                lines.push(format!("cpus {cpus}: {}, management and control on {rest}", on.join(", ")));
                lines.extend(p.notes);
            }
            Err(e) => lines.push(format!("cpus {cpus}: {e}")),
        }
    }
    lines
}

/// In a pod, the configuration with each worker on a CPU of its own
/// ([`nfv_core::pod::cpus::place`]), and this thread (whose affinity
/// every thread it starts inherits) on the housekeeping CPUs; `None`
/// outside a pod.
fn place_in_pod(cfg: &Config) -> Result<Option<Config>, String> {
    let pod = nfv_core::pod::current();
    if !pod.in_pod {
        return Ok(None);
    }
    let cores: Vec<Option<usize>> = cfg.workers.iter().map(|w| w.core).collect();
    let p = nfv_core::pod::cpus::place(&cores, &pod.cpus)?;
    let mut placed = cfg.clone();
    for (w, c) in placed.workers.iter_mut().zip(&p.workers) {
        w.core = Some(*c);
    }
    nfv_core::pod::cpus::pin_current(&p.housekeeping)?;
    Ok(Some(placed))
}

/// Runs a configuration to the end, with its management plane (metrics,
/// probes, `nfv ctl`) beside it; `live` prints a stats line each
/// interval. `stop` ends the run early (SIGINT/SIGTERM). `duration`
/// overrides `[run] duration`; `Some(None)` runs until stopped.
pub fn run(
    cfg: &Config,
    stop: Arc<AtomicBool>,
    duration: Option<Option<Duration>>,
    live: bool,
) -> Result<RunReport, BuildError> {
    for n in profile_disagreements(cfg) {
        eprintln!("nfv: WARNING: {n}");
    }
    for line in pod_lines(cfg) {
        eprintln!("nfv: pod: {line}");
    }
    let placed = place_in_pod(cfg).map_err(BuildError)?;
    let cfg = placed.as_ref().unwrap_or(cfg);
    // The plan, as `nfv plan` prints it, when there is a device to plan.
    if cfg.ports.iter().any(|p| matches!(p.kind, nfv_core::config::PortKind::AfXdp(_))) {
        for line in nfv_core::plan::plan(cfg).render().lines() {
            eprintln!("nfv: plan: {line}");
        }
    }
    nfv_core::privilege::check(cfg).map_err(BuildError)?;
    let mut rt = Runtime::build_with(cfg, SlowPathMode::Thread, xdp_engine(cfg))?;
    for n in &rt.notes {
        eprintln!("nfv: {n}");
    }
    // Ports open, programs attached: what remains of the privileges goes
    // before any other thread starts (threads inherit the set).
    // (libxdp's program, `offload = "off"`, is found by its id to be
    // removed at exit, which takes CAP_SYS_ADMIN: nothing is dropped.)
    let libxdp = nfv_core::privilege::self_loading(cfg) && cfg.run.offload != nfv_core::config::OffloadMode::Xdp;
    if !nfv_core::privilege::needs(cfg).is_empty() && !libxdp {
        match nfv_core::privilege::drop_after_start(nfv_core::privilege::self_loading(cfg)) {
            Ok(d) if !d.is_empty() => {
                let names: Vec<String> = d.iter().map(|c| c.to_string()).collect();
                eprintln!("nfv: capabilities dropped after start: {}", names.join(" "));
            }
            Ok(_) => {}
            Err(e) => eprintln!("nfv: WARNING: capabilities not dropped: {e}"),
        }
    }
    if let Some(d) = duration {
        rt.set_duration(d);
    }
    if !live {
        rt.set_stats_interval(None);
    }
    let reloader = reloader(cfg, rt.neighbours.clone());
    let state = nfv_mgmt::State::new(
        rt.telemetry.clone(),
        rt.status.clone(),
        rt.slow_counters.clone(),
        rt.trace.clone(),
        reloader.clone(),
    );
    let mgmt = nfv_mgmt::start(&cfg.management, state).map_err(BuildError)?;
    for n in &mgmt.notes {
        eprintln!("nfv: {n}");
    }
    if let Some(a) = mgmt.http_addr {
        eprintln!("nfv: metrics and probes on http://{a}/metrics, /livez, /readyz, /startupz");
    }
    // SIGHUP reloads, as it does nginx, HAProxy and Prometheus.
    let hup = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGHUP, hup.clone())
        .map_err(|e| BuildError(format!("cannot install the SIGHUP handler: {e}")))?;
    let reload_stop = Arc::new(AtomicBool::new(false));
    reloader.set_log(|l| eprintln!("nfv: {l}"));
    let reloads = reloader.clone().spawn(hup, reload_stop.clone());
    let mut last = (0u64, 0u64, Duration::ZERO);
    let report = rt.run(stop, |t: &Telemetry, now| {
        let (rx, tx) = (t.total_rx(), t.total_tx());
        let dt = (now - last.2).as_secs_f64().max(1e-9);
        eprintln!(
            "[{:>6.1}s] rx {:>8.3} Mpps  tx {:>8.3} Mpps  (total rx {rx}, tx {tx})",
            now.as_secs_f64(),
            (rx - last.0) as f64 / dt / 1e6,
            (tx - last.1) as f64 / dt / 1e6,
        );
        last = (rx, tx, now);
    });
    drop(mgmt);
    reload_stop.store(true, Ordering::Relaxed);
    let _ = reloads.join();
    Ok(report)
}

/// Where an AF_XDP port's declared hardware profile claims more than the
/// running kernel reports of its interface (probed now), one line each;
/// a probe that fails is a line too. The run then gets what the device
/// really does (the bind falls back as it would without a profile).
pub fn profile_disagreements(cfg: &Config) -> Vec<String> {
    let mut lines = Vec::new();
    for p in &cfg.ports {
        let (PortKind::AfXdp(a), Some(declared)) = (&p.kind, &p.profile) else { continue };
        match nfv_hw::probe::probe(&a.interface) {
            Ok(found) => {
                lines.extend(found.disagreements(declared).into_iter().map(|l| format!("port `{}`: {l}", p.name)))
            }
            Err(e) => lines.push(format!("port `{}`: cannot probe {}: {e}", p.name, a.interface)),
        }
    }
    lines
}

/// The reloader of a run of `cfg`: every way the running configuration
/// changes (`nfv ctl reload`, SIGHUP, a watched table file) goes through
/// it, reading files with this binary's stage kinds.
pub fn reloader(cfg: &Config, neighbours: Arc<nfv_core::neighbour::Neighbours>) -> Arc<nfv_core::reload::Reloader> {
    let load = |file: &str, text: &str| config::load_as_file(file, text, &registry()).map_err(|r| r.render());
    nfv_core::reload::Reloader::new(cfg.clone(), neighbours, Box::new(load))
}

/// Replays a capture through the graph, deterministically (one worker,
/// the slow path inline), and returns the report once the recording is
/// complete; `Err` also when the capture was cut short (its last record
/// unreadable: what came before was replayed and is in the report).
pub fn replay(cfg: &Config) -> Result<RunReport, ReplayError> {
    let report = Runtime::build(cfg, SlowPathMode::Inline).map_err(ReplayError::Build)?.run_inline();
    for p in &cfg.ports {
        if let PortKind::Pcap(PcapConfig { recorder: Some(r), .. }) = &p.kind {
            r.flush().map_err(|e| ReplayError::Build(BuildError(format!("writing the recording: {e}"))))?;
            break;
        }
    }
    let mut cut: Vec<String> = report
        .telemetry
        .ports
        .iter()
        .filter(|p| p.reasons.iter().zip(p.drops.iter()).any(|(r, n)| *r == "read-error" && n.get() > 0))
        .map(|p| p.name.clone())
        .collect();
    cut.dedup();
    if !cut.is_empty() {
        return Err(ReplayError::CutShort(Box::new(report), cut));
    }
    Ok(report)
}

/// Why a replay failed.
pub enum ReplayError {
    /// The configuration could not be built.
    Build(BuildError),
    /// A capture ends in an unreadable record: everything before it was
    /// replayed (the report); the ports whose captures were cut short.
    CutShort(Box<RunReport>, Vec<String>),
}

/// The final report: throughput, the graph with packets per edge (when
/// there is more than one chain), per-stage table, per-port table, slow
/// path.
pub fn render_report(cfg: &Config, r: &RunReport) -> String {
    let graph = if cfg.chains.len() > 1 {
        format!("\ngraph (packets per edge):\n{}", graph_view::text(cfg, Some(&r.telemetry)))
    } else {
        String::new()
    };
    graph + &render_tables(r)
}

fn render_tables(r: &RunReport) -> String {
    let secs = r.elapsed.as_secs_f64();
    let stages = r.telemetry.stage_summary();
    let ports = r.telemetry.port_summary();
    let rx = r.telemetry.total_rx();
    let tx = r.telemetry.total_tx();
    let s = &r.slow;
    format!(
        "\nran {secs:.2} s: rx {rx} packets ({:.3} Mpps), tx {tx} packets ({:.3} Mpps)\n\n{}\n{}\nslow path: arp-replies={} echo-replies={} nd-adverts={} resolutions-sent={} learned={} ignored={} time-exceeded={} rate-limited={} neighbours-lost={}\n{}",
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
        s.neighbours_lost.get(),
        xdp_line(r) + &r.stage_reports.iter().map(|t| format!("\n{t}")).collect::<String>(),
    )
}

/// What nfv's XDP program did, when the run attached it.
fn xdp_line(r: &RunReport) -> String {
    use std::sync::atomic::Ordering::Relaxed;
    r.telemetry.xdp.as_ref().map_or_else(String::new, |x| {
        let runs = x.runs.load(Relaxed);
        let cost = if runs > 0 {
            format!(", {:.1} ns per packet in the program", x.run_ns.load(Relaxed) as f64 / runs as f64)
        } else {
            String::new()
        };
        format!(
            "xdp: forwarded {} packets, sent up {}, flows installed {}{cost}\n",
            x.forwarded.load(Relaxed),
            x.up.load(Relaxed),
            x.flows.load(Relaxed)
        )
    })
}
