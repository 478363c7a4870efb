//! `nfv`: run, check and replay service-function chains.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use clap::{Parser, Subcommand};

/// AF_XDP-first userspace packet processing: chains of network functions
/// over batches, run to completion on pinned cores.
#[derive(Parser)]
#[command(name = "nfv", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum HwCommand {
    /// What the kernel reports of IFACE (netdev and ethtool netlink,
    /// sysfs), as a profile a port can name with `profile = "FILE"`.
    Probe {
        /// Interface name.
        iface: String,
    },
    /// Send 64-byte (or --size) UDP frames out of IFACE as fast as the
    /// kernel takes them, from an XDP program run in live-frames mode:
    /// the generator for loading XDP data paths (an AF_XDP generator
    /// tops out near 1 Mpps on veth). Runs until stopped or --duration.
    Blast {
        /// Interface to send out of.
        iface: String,
        /// Destination MAC (the device under test's port).
        #[arg(long)]
        dst_mac: String,
        /// IPv4 source; its low 16 bits count through --addrs values.
        #[arg(long, default_value = "10.0.0.1")]
        src: std::net::Ipv4Addr,
        /// IPv4 destination and UDP port.
        #[arg(long, default_value = "198.51.100.2:9")]
        dst: std::net::SocketAddrV4,
        /// Source ports (from 1024): flows = ports x addrs.
        #[arg(long, default_value_t = 1)]
        ports: u32,
        /// Source addresses.
        #[arg(long, default_value_t = 1)]
        addrs: u32,
        /// Frame size without the FCS.
        #[arg(long, default_value_t = 60)]
        size: usize,
        /// Seconds to send (0: until stopped).
        #[arg(long, default_value_t = 0.0)]
        duration: f64,
        /// Send GTP-U G-PDUs of this TEID (--dst: the UPF's N3 address
        /// and port 2152), each carrying a UDP packet from --ue to
        /// --data-network.
        #[arg(long)]
        gtpu: Option<u32>,
        /// The G-PDUs' inner source (the UE).
        #[arg(long, default_value = "10.45.0.7")]
        ue: std::net::Ipv4Addr,
        /// The G-PDUs' inner destination and UDP port.
        #[arg(long, default_value = "198.51.100.2:9")]
        data_network: std::net::SocketAddrV4,
    },
    /// Play the AF_XDP device plugin for Kubernetes (labs without it,
    /// tests): attach its XDP program to each IFACE and hand each one's
    /// XSK map to nfv (`xsk-map-socket`) over --socket, until stopped.
    XskMapServer {
        /// Interfaces.
        #[arg(required = true)]
        ifaces: Vec<String>,
        /// The UNIX socket to serve on.
        #[arg(long)]
        socket: PathBuf,
    },
    /// Drop everything IFACE receives in XDP until stopped (a sink whose
    /// receive rate is the interface's rx counters).
    Sink {
        /// Interface.
        iface: String,
    },
}

#[derive(Subcommand)]
enum Command {
    /// Run a configuration (the embedded quickstart when FILE is omitted).
    Run {
        /// Configuration file.
        file: Option<PathBuf>,
        /// Seconds to run, overriding [run] duration (0: until Ctrl-C or
        /// the sources end).
        #[arg(long)]
        duration: Option<f64>,
        /// No live stats line.
        #[arg(long)]
        quiet: bool,
        /// The management endpoint's address (metrics, probes), over
        /// [management] listen: a pod's kubelet probes the pod's address
        /// (0.0.0.0:9464), not the loopback the default listens on.
        #[arg(long)]
        listen: Option<std::net::SocketAddr>,
    },
    /// Validate a configuration and report every error with its location.
    Check {
        /// Configuration file.
        file: PathBuf,
        /// Say what the pod was handed (attachments, device-plugin
        /// devices, CPUs, huge pages) and how each port was matched.
        #[arg(long)]
        pod: bool,
    },
    /// Replay a capture as if it arrived on a port of FILE, and record
    /// what every port transmits.
    Replay {
        /// Configuration file.
        file: PathBuf,
        /// Capture to read (pcap or pcapng): FILE, arriving on --port, or
        /// PORT=FILE; repeat for captures on several ports (polled in the
        /// order given).
        #[arg(long = "in", required = true)]
        inputs: Vec<String>,
        /// Recording to write: pcapng, one interface per port, named
        /// after it (tshark: `-Y 'frame.interface_name == "d1"'`).
        #[arg(long = "out")]
        output: PathBuf,
        /// Port the capture arrives on (default: the first port a worker
        /// polls).
        #[arg(long)]
        port: Option<String>,
        /// Chain to enter (default: the one the worker polling the port
        /// enters).
        #[arg(long)]
        chain: Option<String>,
    },
    /// Print the chain graph of FILE: chains, their stages, branches and
    /// ends.
    Graph {
        /// Configuration file.
        file: PathBuf,
        /// Graphviz dot instead of text (`nfv graph --dot F | dot -Tsvg`).
        #[arg(long)]
        dot: bool,
    },
    /// Print what of FILE runs where (NIC, XDP, AF_XDP workers), with
    /// the reason for every decision, from its ports' hardware profiles.
    Plan {
        /// Configuration file.
        file: PathBuf,
    },
    /// List the stage kinds this build knows.
    Stages,
    /// Benchmark nfv and its baselines on a veth bed this command builds
    /// (root): the no-drop and 0.5 % partial-drop rates (RFC 2544 binary
    /// search), latency at 10/50/90 % of the no-drop rate, loss, duplicates
    /// and reorder per flow; JSON and CSV into --out, a Markdown report
    /// with plots with --report (benches/README.md).
    Bench {
        /// Every frame size for forwarding, 64 and IMIX for the functions,
        /// longer trials (under 15 minutes on 2 cores); default: quick,
        /// 64-octet frames only (under 2 minutes).
        #[arg(long)]
        full: bool,
        /// Cases to run (fwd, nat, acl, lb, vtep, upf); default all.
        #[arg(long = "case", value_delimiter = ',')]
        cases: Vec<String>,
        /// DUTs to run (nfv, nfv-afxdp, testpmd-afxdp, kernel-...); default all.
        #[arg(long = "dut", value_delimiter = ',')]
        duts: Vec<String>,
        /// Directory for bench.json and bench.csv (and the report's plots).
        #[arg(long, default_value = "bench-results")]
        out: PathBuf,
        /// Write the Markdown report here (plots go into --out).
        #[arg(long)]
        report: Option<PathBuf>,
        /// Flows (RFC 4814 pseudo-random ports).
        #[arg(long, default_value_t = 1024)]
        flows: usize,
        /// Seconds per search trial (quick 0.2, full 0.4).
        #[arg(long)]
        trial_seconds: Option<f64>,
        /// Seconds of a final verification trial (quick 0.4, full 1.5).
        #[arg(long)]
        verify_seconds: Option<f64>,
        /// Seconds per latency trial (quick 0.2, full 0.5).
        #[arg(long)]
        latency_seconds: Option<f64>,
        /// Trials per search at most (20).
        #[arg(long)]
        max_trials: Option<usize>,
        /// The search's resolution, percent of the rate (1).
        #[arg(long)]
        resolution: Option<f64>,
        /// Measure a device already cabled in instead of building the bed:
        /// the generator sends out of this interface (the cases' traffic,
        /// to --dst-mac) ...
        #[arg(long, requires_all = ["rx", "dst_mac"])]
        tx: Option<String>,
        /// ... and the receiver listens on this one.
        #[arg(long, requires = "tx")]
        rx: Option<String>,
        /// The external DUT's MAC address on the --tx side.
        #[arg(long, requires = "tx")]
        dst_mac: Option<String>,
        /// The external DUT's name in the results.
        #[arg(long, default_value = "external")]
        dut_name: String,
        /// Say every trial.
        #[arg(long, short)]
        verbose: bool,
    },
    /// Hardware: `probe IFACE` prints what the running kernel reports of
    /// an interface as a hardware profile (hw-profiles/README.md).
    Hw {
        #[command(subcommand)]
        what: HwCommand,
    },
    /// Ask a running nfv (over its [management] socket): `show runtime`,
    /// `show errors`, `show ports`, `show plan`.
    Ctl {
        /// The running nfv's socket.
        #[arg(long, default_value = nfv_core::config::DEFAULT_SOCKET)]
        socket: PathBuf,
        /// Print the answer as JSON (for tooling).
        #[arg(long)]
        json: bool,
        /// The command, e.g. `show runtime`.
        #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
        command: Vec<String>,
    },
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Run { file, duration, quiet, listen } => {
            let mut cfg = match nfv_pipelines::load(file.as_deref()) {
                Ok(c) => c,
                Err(e) => return fail(&e),
            };
            if let Some(a) = listen {
                (cfg.management.listen, cfg.management.listen_explicit) = (Some(a), true);
            }
            let stop = Arc::new(AtomicBool::new(false));
            for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
                if let Err(e) = signal_hook::flag::register(sig, stop.clone()) {
                    return fail(&format!("cannot install signal handler: {e}"));
                }
            }
            let d = duration.map(|s| (s > 0.0).then(|| Duration::from_secs_f64(s)));
            match nfv_pipelines::run(&cfg, stop, d, !quiet) {
                Ok(report) => {
                    print!("{}", nfv_pipelines::render_report(&cfg, &report));
                    ended(&report)
                }
                Err(e) => fail(&e.to_string()),
            }
        }
        Command::Check { file, pod } => {
            if pod {
                print!("{}", nfv_core::pod::current().render());
            }
            match nfv_pipelines::load(Some(&file)) {
                Ok(cfg) => {
                    if pod {
                        for line in nfv_pipelines::pod_lines(&cfg) {
                            println!("{line}");
                        }
                    }
                    println!("{}: {}", file.display(), cfg.summary());
                    ExitCode::SUCCESS
                }
                Err(e) => fail(&e),
            }
        }
        Command::Replay { file, inputs, output, port, chain } => {
            let inputs: Vec<(Option<&str>, &std::path::Path)> = inputs
                .iter()
                .map(|i| match i.split_once('=') {
                    Some((p, f)) => (Some(p), std::path::Path::new(f)),
                    None => (None, std::path::Path::new(i.as_str())),
                })
                .collect();
            let cfg = match nfv_pipelines::load(Some(&file))
                .and_then(|c| nfv_pipelines::replay_config(c, &inputs, port.as_deref(), chain.as_deref(), &output))
            {
                Ok(c) => c,
                Err(e) => return fail(&e),
            };
            match nfv_pipelines::replay(&cfg) {
                Ok(report) => {
                    print!("{}", nfv_pipelines::render_report(&cfg, &report));
                    ended(&report)
                }
                Err(nfv_pipelines::ReplayError::CutShort(report, ports)) => {
                    print!("{}", nfv_pipelines::render_report(&cfg, &report));
                    fail(&format!(
                        "the capture on port `{}` is cut short (its last record is unreadable); what came before was replayed",
                        ports.join("`, `")
                    ))
                }
                Err(nfv_pipelines::ReplayError::Build(e)) => fail(&e.to_string()),
            }
        }
        Command::Graph { file, dot } => match nfv_pipelines::load(Some(&file)) {
            Ok(cfg) if dot => {
                print!("{}", nfv_pipelines::graph_view::dot(&cfg));
                ExitCode::SUCCESS
            }
            Ok(cfg) => {
                print!("{}", nfv_pipelines::graph_view::text(&cfg, None));
                ExitCode::SUCCESS
            }
            Err(e) => fail(&e),
        },
        Command::Ctl { socket, mut json, command } => {
            // `--json` may follow the command's words.
            let before = command.len();
            let mut words: Vec<String> = command.into_iter().filter(|w| w != "--json").collect();
            json |= words.len() != before;
            // A file the running nfv writes (`--out F`) or reads
            // (`reload F`) is named from here.
            let file_at = match words.first().map(String::as_str) {
                Some("reload") => Some(1),
                _ => words.iter().position(|w| w == "--out").map(|i| i + 1),
            };
            if let Some(f) = file_at.and_then(|i| words.get_mut(i))
                && let Ok(abs) = std::path::absolute(&*f)
            {
                *f = abs.display().to_string();
            }
            match nfv_mgmt::ctl::request(&socket, &words) {
                Ok(a) if json => {
                    println!("{}", serde_json::to_string_pretty(&a.json).unwrap_or_default());
                    if a.ok { ExitCode::SUCCESS } else { ExitCode::FAILURE }
                }
                Ok(a) if a.ok => {
                    print!("{}", a.text);
                    ExitCode::SUCCESS
                }
                Ok(a) => fail(&a.text),
                Err(e) => fail(&e),
            }
        }
        Command::Hw { what: HwCommand::Probe { iface } } => match nfv_hw::probe::probe(&iface) {
            Ok(p) => {
                println!("# {iface}, probed from the running kernel by `nfv hw probe` (hw-profiles/README.md)");
                print!("{}", p.profile().to_toml());
                ExitCode::SUCCESS
            }
            Err(e) => fail(&e),
        },
        Command::Hw {
            what: HwCommand::Blast { iface, dst_mac, src, dst, ports, addrs, size, duration, gtpu, ue, data_network },
        } => {
            let gtpu = gtpu.map(|teid| (teid, ue, data_network));
            let b = nfv_pipelines::Blast { iface, dst_mac, src, dst, flows: (ports, addrs), size, duration, gtpu };
            match nfv_pipelines::blast(&b) {
                Ok(line) => {
                    println!("{line}");
                    ExitCode::SUCCESS
                }
                Err(e) => fail(&e),
            }
        }
        Command::Hw { what: HwCommand::XskMapServer { ifaces, socket } } => {
            match nfv_pipelines::xsk_map_server(&ifaces, &socket) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => fail(&e),
            }
        }
        Command::Hw { what: HwCommand::Sink { iface } } => match nfv_pipelines::sink(&iface) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => fail(&e),
        },
        Command::Bench {
            full,
            cases,
            duts,
            out,
            report,
            flows,
            trial_seconds,
            verify_seconds,
            latency_seconds,
            max_trials,
            resolution,
            tx,
            rx,
            dst_mac,
            dut_name,
            verbose,
        } => {
            let args: Vec<String> = std::env::args().collect();
            let timing = nfv_pipelines::BenchTiming {
                trial: trial_seconds,
                verify: verify_seconds,
                latency: latency_seconds,
                max_trials,
                resolution: resolution.map(|r| r / 100.0),
            };
            let external = match (tx, rx, dst_mac) {
                (Some(tx), Some(rx), Some(mac)) => Some((tx, rx, mac, dut_name)),
                _ => None,
            };
            let b = nfv_pipelines::Bench {
                full,
                cases,
                duts,
                out,
                report,
                flows,
                timing,
                external,
                verbose,
                command: args.join(" "),
            };
            match nfv_pipelines::bench(&b) {
                Ok(summary) => {
                    print!("{summary}");
                    ExitCode::SUCCESS
                }
                Err(e) => fail(&e),
            }
        }
        Command::Plan { file } => match nfv_pipelines::load(Some(&file)) {
            Ok(cfg) => {
                print!("{}", nfv_core::plan::plan(&cfg).render());
                ExitCode::SUCCESS
            }
            Err(e) => fail(&e),
        },
        Command::Stages => {
            for (kind, summary) in nfv_pipelines::registry().describe() {
                println!("{kind:<16} {summary}");
            }
            ExitCode::SUCCESS
        }
    }
}

/// How a run that started ended: 70 (EX_SOFTWARE, sysexits.h) when a
/// worker panicked (a supervisor restarts the process), 74 (EX_IOERR)
/// when a port lost what it was to keep (a capture on a full disk), else
/// success; each said on stderr.
fn ended(report: &nfv_core::runtime::RunReport) -> ExitCode {
    for f in &report.failures {
        eprintln!("nfv: {f}; the other workers were stopped");
    }
    let faults: Vec<String> =
        report.telemetry.ports.iter().filter_map(|p| p.fault.get().map(|e| format!("port {}: {e}", p.name))).collect();
    for f in &faults {
        eprintln!("nfv: {f}: its capture is incomplete");
    }
    match (report.failures.is_empty(), faults.is_empty()) {
        (false, _) => ExitCode::from(70),
        (true, false) => ExitCode::from(74),
        (true, true) => ExitCode::SUCCESS,
    }
}

fn fail(msg: &str) -> ExitCode {
    eprint!("{msg}");
    if !msg.ends_with('\n') {
        eprintln!();
    }
    ExitCode::FAILURE
}
