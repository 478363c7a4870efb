//! A whole run: the bed built, then for each case each DUT started in
//! turn (nfv, then the baselines, same bed, same traffic), for each frame
//! size the throughput search and the latency trials at 10, 50 and 90 %
//! of the no-drop rate, the DUT stopped (nfv's own stage counters read
//! from the report it writes when it stops), the bed removed.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Instant;

use nfv_hw::blast::{Generator, Measure, Traffic as BlastTraffic};
use nfv_hw::receiver::Receiver;

use crate::bed::Bed;
use crate::cases::{self, Case, DstMac, Dut, DutKind, Frames, Peers};
use crate::engine::{Engine, Searching};
use crate::results::{CaseInfo, Environment, Level, Row, Run, StageCost};
use crate::search::{self, Search};
use crate::traffic::{flow_ports, line_rate};

/// Quick or full.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// 64-octet frames (128 for the UPF), short trials: under 2 minutes.
    Quick,
    /// Every frame size for forwarding, 64 and IMIX for the functions.
    Full,
}

/// What to run.
#[derive(Clone, Debug)]
pub struct Options {
    /// Quick or full.
    pub mode: Mode,
    /// Cases to run (empty: all).
    pub cases: Vec<String>,
    /// DUTs to run (empty: all).
    pub duts: Vec<String>,
    /// The nfv binary the nfv DUTs run.
    pub nfv: PathBuf,
    /// The source tree (its git commit goes in the environment).
    pub repo: PathBuf,
    /// Scratch directory (configurations, DUT output).
    pub work: PathBuf,
    /// The bed's namespace prefix.
    pub prefix: String,
    /// Flows (RFC 4814 ports, from a fixed seed: every DUT gets the same).
    pub flows: usize,
    /// The line rate the search starts from, bits per second (a veth has
    /// none: 10 GbE's).
    pub line_bits: f64,
    /// Trial lengths, resolution, the trial budget.
    pub timing: Timing,
    /// Measure a device already cabled between two interfaces instead of
    /// building the veth bed.
    pub external: Option<External>,
    /// Say each trial on standard error.
    pub verbose: bool,
}

/// A DUT nfv bench does not run: whatever is between `tx` and `rx`.
#[derive(Clone, Debug)]
pub struct External {
    /// The interface the generator sends out of.
    pub tx: String,
    /// The interface the receiver listens on.
    pub rx: String,
    /// The DUT's MAC address on the tx side.
    pub dut_mac: [u8; 6],
    /// Its name in the results.
    pub name: String,
}

/// Where the generator sends and the receiver listens, and the MACs the
/// frames carry.
struct Ends {
    tx: String,
    rx: String,
    src_mac: [u8; 6],
    dut_mac: [u8; 6],
}

/// How long trials are and how many a search may run.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Timing {
    /// Seconds per search trial.
    pub trial: f64,
    /// Seconds of a final verification trial.
    pub verify: f64,
    /// Seconds per latency trial.
    pub latency: f64,
    /// The search's resolution, relative.
    pub resolution: f64,
    /// Trials per search at most.
    pub max_trials: usize,
}

impl Timing {
    /// A mode's defaults: quick fits in 2 minutes, full in 15 on this
    /// 2-core machine.
    pub fn of(mode: Mode) -> Self {
        match mode {
            Mode::Quick => Self { trial: 0.2, verify: 0.4, latency: 0.2, resolution: 0.01, max_trials: 20 },
            Mode::Full => Self { trial: 0.4, verify: 1.5, latency: 0.5, resolution: 0.01, max_trials: 20 },
        }
    }

    fn search(self, max_rate: f64) -> Search {
        Search {
            goals: vec![0.0, 0.005],
            max_rate,
            min_rate: 10_000.0,
            resolution: self.resolution,
            trial_seconds: self.trial,
            verify_seconds: self.verify,
            max_trials: self.max_trials,
        }
    }
}

impl Mode {
    /// Its name in reports.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Quick => "quick",
            Mode::Full => "full",
        }
    }
}

/// Load levels latency is measured at, percent of the no-drop rate.
pub const LEVELS: [u8; 3] = [10, 50, 90];

fn say(verbose: bool, what: impl AsRef<str>) {
    if verbose {
        eprintln!("{}", what.as_ref());
    }
}

/// Runs everything `o` asks; the run's results.
pub fn bench(o: &Options) -> Result<Run, String> {
    std::fs::create_dir_all(&o.work).map_err(|e| format!("{}: {e}", o.work.display()))?;
    pin_to(0);
    let (bed, ends, peers) = match &o.external {
        None => {
            let bed = Bed::up(&o.prefix)?;
            bed.enter_tg()?;
            let ends = Ends { tx: "g0".into(), rx: "s0".into(), src_mac: bed.macs.g0, dut_mac: bed.macs.d0 };
            let peers = Peers { s0: bed.macs.s0 };
            (Some(bed), ends, peers)
        }
        Some(x) => {
            let src_mac = crate::bed::interface_mac(&x.tx)?;
            let peers = Peers { s0: crate::bed::interface_mac(&x.rx)? };
            (None, Ends { tx: x.tx.clone(), rx: x.rx.clone(), src_mac, dut_mac: x.dut_mac }, peers)
        }
    };
    let mut all = cases::all(&peers, &o.work);
    if let Some(x) = &o.external {
        // The cases' traffic, one DUT: the one cabled in.
        for c in &mut all {
            c.duts = vec![Dut { name: x.name.clone(), kind: DutKind::External }];
            c.reference = "";
        }
    }
    let chosen: Vec<&Case> = all.iter().filter(|c| o.cases.is_empty() || o.cases.iter().any(|n| n == c.name)).collect();
    if chosen.is_empty() {
        let names: Vec<&str> = all.iter().map(|c| c.name).collect();
        return Err(format!("no such case; the cases are {}", names.join(", ")));
    }
    let env = match &bed {
        Some(bed) => environment(bed, o),
        None => external_environment(&ends, o),
    };
    let mut out = Run { environment: env, mode: mode_text(o.mode, o.timing), ..Run::default() };
    for case in chosen {
        let nfv_config = case.duts.iter().find_map(|d| match &d.kind {
            DutKind::Nfv(c) if d.name == "nfv" => Some(c.clone()),
            _ => None,
        });
        let about = match &o.external {
            None => case.about.into(),
            Some(x) => format!("the {} case's traffic through {}: {}", case.name, x.name, case.traffic.describe()),
        };
        out.cases.push(CaseInfo {
            name: case.name.into(),
            about,
            reference: case.reference.into(),
            nfv_config: nfv_config.unwrap_or_default(),
        });
        run_case(o, bed.as_ref(), &ends, case, &mut out)?;
    }
    ratios(&mut out);
    inline_costs(&mut out);
    Ok(out)
}

fn mode_text(m: Mode, t: Timing) -> String {
    format!(
        "{}: trials {} s, verification {} s, resolution {} %, at most {} trials a search, goals no-drop and 0.5 % loss, latency trials {} s",
        m.name(),
        t.trial,
        t.verify,
        t.resolution * 100.0,
        t.max_trials,
        t.latency
    )
}

fn external_environment(ends: &Ends, o: &Options) -> Environment {
    let mut env = Environment::collect(&[&ends.tx, &ends.rx], &o.repo);
    env.af_xdp_mode = "none: the generator and the receiver are XDP programs".into();
    env.topology = format!("an external DUT between {} and {}", ends.tx, ends.rx);
    env.generator = format!(
        "nfv's XDP generator out of {} and nfv's XDP receiver on {}, one process, the kernel's monotonic clock at both ends; {} flows (RFC 4814 ports)",
        ends.tx, ends.rx, o.flows
    );
    env
}

fn environment(bed: &Bed, o: &Options) -> Environment {
    let mut env = Environment::collect(&[], &o.repo);
    let driver = |ns: String, i: &str| crate::results::driver(Some(&ns), i);
    env.interfaces = vec![
        ("g0 (generator)".into(), driver(bed.tg(), "g0")),
        ("d0 (DUT)".into(), driver(bed.dut(), "d0")),
        ("d1 (DUT)".into(), driver(bed.dut(), "d1")),
        ("s0 (receiver)".into(), driver(bed.tg(), "s0")),
    ];
    env.af_xdp_mode = "copy, native XDP (veth has no zero-copy)".into();
    env.topology = "the veth bed nfv bench builds: generator g0 -> d0 DUT d1 -> s0 receiver".into();
    env.generator = format!(
        "nfv's XDP generator (BPF_PROG_TEST_RUN live frames, paced by the program) on CPU 0 and nfv's XDP receiver on s0, \
         one process, the kernel's monotonic clock at both ends; {} flows (RFC 4814 ports); DUT workers on CPU 1",
        o.flows
    );
    env
}

/// Pins the calling thread to `cpu`.
fn pin_to(cpu: usize) {
    // SAFETY: a zeroed set with one CPU; the calling thread.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

fn ifindex(name: &str) -> Result<u32, String> {
    let c = std::ffi::CString::new(name).map_err(|e| e.to_string())?;
    // SAFETY: a NUL-terminated name.
    match unsafe { libc::if_nametoindex(c.as_ptr()) } {
        0 => Err(format!("no interface {name} here")),
        i => Ok(i),
    }
}

fn generator(case: &Case, frames: &Frames, ends: &Ends, flows: usize) -> Result<Generator, String> {
    let t = &case.traffic;
    let traffic = BlastTraffic {
        src_mac: ends.src_mac,
        dst_mac: match t.dst_mac {
            DstMac::D0 => ends.dut_mac,
            DstMac::Station(m) => m,
        },
        src: t.src,
        dst: t.dst,
        frame_size: frames.lengths()[0] as usize,
        ports: 1,
        addrs: 1,
        gtpu: t.gtpu,
        measure: Some(Measure {
            flows: flow_ports(flows, 4814),
            vary_dport: t.vary_dport,
            sizes: if matches!(frames, Frames::Mix(_)) { frames.lengths() } else { vec![] },
        }),
    };
    Generator::load(ifindex(&ends.tx)?, &traffic)
}

/// A running DUT.
enum Running {
    Process(Child, PathBuf),
    Kernel,
    /// Nothing runs (an external DUT); for the generator alone, the
    /// case's receiver to put back (the one at d0 in its place).
    Nothing(Option<Receiver>),
}

fn start(o: &Options, bed: Option<&Bed>, case: &Case, dut: &Dut, engine: &mut Engine) -> Result<Running, String> {
    let Some(bed) = bed else {
        // No bed: an external DUT, already running.
        return Ok(Running::Nothing(None));
    };
    let log = o.work.join(format!("{}-{}.out", case.name, dut.name));
    let file = || std::fs::File::create(&log).map_err(|e| format!("{}: {e}", log.display()));
    match &dut.kind {
        DutKind::External => Ok(Running::Nothing(None)),
        DutKind::GeneratorAlone => {
            let offset = nfv_hw::blast::stamp_offset(case.traffic.gtpu.is_some());
            let r = bed.in_dut(|| -> Result<Receiver, String> { Receiver::attach(ifindex("d0")?, &[offset]) })??;
            Ok(Running::Nothing(Some(engine.set_receiver(r))))
        }
        DutKind::Nfv(config) => {
            let path = o.work.join(format!("{}-{}.toml", case.name, dut.name));
            std::fs::write(&path, config).map_err(|e| format!("{}: {e}", path.display()))?;
            let (out, err) = (file()?, file()?);
            let child = Command::new("ip")
                .args(["netns", "exec", &bed.dut()])
                .arg(&o.nfv)
                .arg("run")
                .arg(&path)
                .args(["--duration", "0", "--quiet"])
                .stdin(Stdio::null())
                .stdout(out)
                .stderr(err)
                .spawn()
                .map_err(|e| format!("starting nfv: {e}"))?;
            Ok(Running::Process(child, log))
        }
        DutKind::Testpmd => {
            let (out, err) = (file()?, file()?);
            let child = Command::new("ip")
                .args(["netns", "exec", &bed.dut(), "dpdk-testpmd", "-l", "0,1", "-m", "512", "--no-huge", "--no-pci"])
                .args(["--vdev", "net_af_xdp0,iface=d0", "--vdev", "net_af_xdp1,iface=d1", "--"])
                .args(["--total-num-mbufs=32768", "--forward-mode=io", "--auto-start"])
                .stdin(Stdio::piped())
                .stdout(out)
                .stderr(err)
                .spawn()
                .map_err(|e| format!("starting dpdk-testpmd: {e}"))?;
            Ok(Running::Process(child, log))
        }
        DutKind::Kernel(cmds) => {
            for c in cmds {
                let args: Vec<&str> = c.iter().map(String::as_str).collect();
                if let Err(e) = bed.dut_run(&args) {
                    // Leave the namespace as the next DUT expects it.
                    stop(Some(bed), Running::Kernel, engine);
                    return Err(e);
                }
            }
            Ok(Running::Kernel)
        }
    }
}

/// Stops a DUT; what it wrote (nfv's report).
fn stop(bed: Option<&Bed>, r: Running, engine: &mut Engine) -> String {
    let Some(bed) = bed else { return String::new() };
    match r {
        Running::Nothing(None) => String::new(),
        Running::Nothing(Some(receiver)) => {
            // Detached where it was attached.
            let on_d0 = engine.set_receiver(receiver);
            let _ = bed.in_dut(|| drop(on_d0));
            String::new()
        }
        Running::Process(mut child, log) => {
            if let Some(mut stdin) = child.stdin.take() {
                // testpmd stops on a newline.
                let _ = stdin.write_all(b"\n");
            }
            // SAFETY: a child of ours (ip execs nfv itself).
            unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
            let deadline = Instant::now() + std::time::Duration::from_secs(10);
            while child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
            std::fs::read_to_string(&log).unwrap_or_default()
        }
        Running::Kernel => {
            for c in cases::kernel_teardown() {
                let args: Vec<&str> = c.iter().map(String::as_str).collect();
                let _ = bed.dut_run(&args);
            }
            String::new()
        }
    }
}

/// Whether the DUT forwards: low-rate trials until one loses nothing
/// (nfv's start, flows learnt, XDP entries installed), 10 s at most.
fn warm_up(engine: &mut Engine, child: Option<&mut Child>) -> Result<(), String> {
    let deadline = Instant::now() + std::time::Duration::from_secs(10);
    let mut child = child;
    loop {
        if let Some(c) = child.as_deref_mut()
            && let Ok(Some(status)) = c.try_wait()
        {
            return Err(format!("it exited ({status})"));
        }
        let o = engine.measure(20_000.0, 0.25)?;
        if o.trial.sent > 0 && o.trial.received == o.trial.sent {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!("it forwarded {} of {} frames at 20 kpps after 10 s", o.trial.received, o.trial.sent));
        }
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
}

/// CPU time stolen (and all), from /proc/stat.
fn steal() -> (u64, u64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let v: Vec<u64> =
        stat.lines().next().unwrap_or("").split_whitespace().skip(1).filter_map(|x| x.parse().ok()).collect();
    (v.get(7).copied().unwrap_or(0), v.iter().take(8).sum())
}

fn run_case(o: &Options, bed: Option<&Bed>, ends: &Ends, case: &Case, out: &mut Run) -> Result<(), String> {
    let frames = match o.mode {
        Mode::Quick => &case.frames_quick,
        Mode::Full => &case.frames_full,
    };
    let receiver = Receiver::attach(ifindex(&ends.rx)?, &case.rx_offsets)?;
    let mut engine = Engine::new(generator(case, &frames[0], ends, o.flows)?, receiver, o.flows);
    for dut in case.duts.iter().filter(|d| o.duts.is_empty() || o.duts.contains(&d.name)) {
        say(o.verbose, format!("{} / {}: starting", case.name, dut.name));
        let mut running = match start(o, bed, case, dut, &mut engine) {
            Ok(r) => r,
            Err(e) => {
                out.notes.push(format!("{} / {}: did not start: {e}", case.name, dut.name));
                continue;
            }
        };
        std::thread::sleep(std::time::Duration::from_millis(500));
        engine.set_generator(generator(case, &frames[0], ends, o.flows)?);
        let child = match &mut running {
            Running::Process(c, _) => Some(c),
            Running::Kernel | Running::Nothing(_) => None,
        };
        if let Err(e) = warm_up(&mut engine, child) {
            let log = stop(bed, running, &mut engine);
            let tail: Vec<&str> = log.lines().rev().take(5).collect();
            out.notes.push(format!("{} / {}: does not forward: {e} ({})", case.name, dut.name, tail.join(" / ")));
            continue;
        }
        for f in frames {
            engine.set_generator(generator(case, f, ends, o.flows)?);
            // Flows the new frames start anew (a NAT's sessions stay).
            let _ = engine.measure(20_000.0, 0.1)?;
            let rows = measure_frames(o, &mut engine, case, dut, f)?;
            out.rows.extend(rows);
        }
        let report = stop(bed, running, &mut engine);
        if matches!(dut.kind, DutKind::Nfv(_)) {
            out.stage_costs.extend(stage_costs(&report, case.name, &dut.name));
        }
    }
    Ok(())
}

fn measure_frames(o: &Options, engine: &mut Engine, case: &Case, dut: &Dut, f: &Frames) -> Result<Vec<Row>, String> {
    let s = o.timing.search(line_rate(o.line_bits, f.mean()));
    let (steal0, all0) = steal();
    let mut t = Searching { engine, outcomes: Vec::new(), error: None };
    let (results, trials) = search::run(&s, &mut t);
    if let Some(e) = t.error {
        return Err(format!("{} / {} / {}: {e}", case.name, dut.name, f.name()));
    }
    for tr in &trials {
        say(
            o.verbose,
            format!(
                "  {} {} {}: asked {:.3} offered {:.3} Mpps, lost {:.4} %",
                case.name,
                dut.name,
                f.name(),
                tr.asked / 1e6,
                tr.offered / 1e6,
                tr.loss_ratio() * 100.0
            ),
        );
    }
    let (steal1, all1) = steal();
    let steal_percent = if all1 > all0 { 100.0 * (steal1 - steal0) as f64 / (all1 - all0) as f64 } else { 0.0 };
    // Latency at levels of the no-drop rate (of the partial-drop rate
    // when nothing passed without loss).
    let base = results.iter().map(|r| r.rate).find(|&r| r > 0.0).unwrap_or(0.0);
    let mut levels = Vec::new();
    if base > 0.0 {
        for p in LEVELS {
            let m = engine.measure(base * f64::from(p) / 100.0, o.timing.latency)?;
            levels.push(Level {
                percent: p,
                latency: m.latency,
                lost: m.lost,
                duplicates: m.duplicates,
                reordered: m.reordered,
            });
        }
    }
    Ok(results
        .iter()
        .map(|r| Row {
            case: case.name.into(),
            dut: dut.name.clone(),
            frames: f.name(),
            goal: r.goal,
            rate_pps: r.rate,
            vs_baseline: None,
            verified: r.verified,
            generator_limited: r.generator_limited,
            at_line_rate: r.rate >= 0.99 * s.max_rate,
            inline_ns_per_packet: None,
            trials: trials.len(),
            steal_percent,
            latency: levels.clone(),
        })
        .collect())
}

/// nfv rows' ratios to their case's reference DUT, same frames and goal.
fn ratios(run: &mut Run) {
    let refs: Vec<(String, String, String, f64, u64)> = run
        .rows
        .iter()
        .filter(|r| run.cases.iter().any(|c| c.name == r.case && c.reference == r.dut))
        .map(|r| (r.case.clone(), r.frames.clone(), r.dut.clone(), r.rate_pps, (r.goal * 1e6) as u64))
        .collect();
    for r in run.rows.iter_mut().filter(|r| r.dut.starts_with("nfv")) {
        if let Some(b) =
            refs.iter().find(|b| b.0 == r.case && b.1 == r.frames && b.4 == (r.goal * 1e6) as u64 && b.2 != r.dut)
            && b.3 > 0.0
        {
            r.vs_baseline = Some(r.rate_pps / b.3);
        }
    }
}

/// Generator-limited rows' CPU time per packet beyond the generator's.
fn inline_costs(run: &mut Run) {
    let alone: Vec<(String, String, u64, f64)> = run
        .rows
        .iter()
        .filter(|r| r.dut == cases::GENERATOR_ALONE)
        .map(|r| (r.case.clone(), r.frames.clone(), (r.goal * 1e6) as u64, r.rate_pps))
        .collect();
    for r in run.rows.iter_mut().filter(|r| r.generator_limited && r.dut != cases::GENERATOR_ALONE && r.rate_pps > 0.0)
    {
        if let Some(a) = alone.iter().find(|a| a.0 == r.case && a.1 == r.frames && a.2 == (r.goal * 1e6) as u64)
            && a.3 > r.rate_pps
        {
            r.inline_ns_per_packet = Some(1e9 / r.rate_pps - 1e9 / a.3);
        }
    }
}

/// The stage table of an nfv report (`stage packets Mpps pkt/call ns/pkt
/// ticks/pkt dropped`).
pub fn stage_costs(report: &str, case: &str, dut: &str) -> Vec<StageCost> {
    let mut out = Vec::new();
    let mut inside = false;
    for l in report.lines() {
        if l.starts_with("stage ") && l.contains("ticks/pkt") {
            inside = true;
            continue;
        }
        if !inside {
            continue;
        }
        let f: Vec<&str> = l.split_whitespace().collect();
        if f.len() < 7 {
            break;
        }
        let (Ok(packets), Ok(ns), Ok(ticks)) = (f[1].parse::<u64>(), f[4].parse::<f64>(), f[5].parse::<f64>()) else {
            break;
        };
        out.push(StageCost {
            case: case.into(),
            dut: dut.into(),
            stage: f[0].into(),
            packets,
            ticks_per_packet: ticks,
            ns_per_packet: ns,
        });
    }
    out
}

/// Writes the run as JSON and CSV into `dir`: `bench.json`, `bench.csv`.
pub fn write(run: &Run, dir: &Path) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for (name, text) in [("bench.json", run.json()), ("bench.csv", run.csv())] {
        let p = dir.join(name);
        std::fs::write(&p, text).map_err(|e| format!("{}: {e}", p.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stage_table_of_an_nfv_report_is_read() {
        let report = "\
stage                   packets       Mpps  pkt/call    ns/pkt  ticks/pkt    dropped  drops by reason
ttl-decrement           1000000      0.400      32.0      9.50       19.0          0
nat44                   1000000      0.400      32.0     40.25       80.5         12  no-session=12

port stuff";
        let c = stage_costs(report, "nat", "nfv-afxdp");
        assert_eq!(c.len(), 2);
        assert_eq!(
            (c[1].stage.as_str(), c[1].packets, c[1].ticks_per_packet, c[1].ns_per_packet),
            ("nat44", 1_000_000, 80.5, 40.25)
        );
    }
}
