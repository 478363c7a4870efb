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
    },
    /// Validate a configuration and report every error with its location.
    Check {
        /// Configuration file.
        file: PathBuf,
    },
    /// Replay a capture through a chain of FILE and write what it transmits.
    Replay {
        /// Configuration file.
        file: PathBuf,
        /// Capture to read (pcap or pcapng).
        #[arg(long = "in")]
        input: PathBuf,
        /// Capture to write (pcap).
        #[arg(long = "out")]
        output: PathBuf,
        /// Chain to use (default: the first).
        #[arg(long)]
        chain: Option<String>,
    },
    /// List the stage kinds this build knows.
    Stages,
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Run { file, duration, quiet } => {
            let cfg = match nfv_pipelines::load(file.as_deref()) {
                Ok(c) => c,
                Err(e) => return fail(&e),
            };
            let stop = Arc::new(AtomicBool::new(false));
            for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
                if let Err(e) = signal_hook::flag::register(sig, stop.clone()) {
                    return fail(&format!("cannot install signal handler: {e}"));
                }
            }
            let d = duration.map(|s| (s > 0.0).then(|| Duration::from_secs_f64(s)));
            match nfv_pipelines::run(&cfg, stop, d, !quiet) {
                Ok(report) => {
                    print!("{}", nfv_pipelines::render_report(&report));
                    ExitCode::SUCCESS
                }
                Err(e) => fail(&e.to_string()),
            }
        }
        Command::Check { file } => match nfv_pipelines::load(Some(&file)) {
            Ok(cfg) => {
                println!("{}: {}", file.display(), nfv_pipelines::summary(&cfg));
                ExitCode::SUCCESS
            }
            Err(e) => fail(&e),
        },
        Command::Replay { file, input, output, chain } => {
            let cfg = nfv_pipelines::load(Some(&file))
                .and_then(|c| nfv_pipelines::replay_config(c, chain.as_deref(), &input, &output));
            match cfg.map(|c| nfv_pipelines::replay(&c)) {
                Ok(Ok(report)) => {
                    print!("{}", nfv_pipelines::render_report(&report));
                    ExitCode::SUCCESS
                }
                Ok(Err(e)) => fail(&e.to_string()),
                Err(e) => fail(&e),
            }
        }
        Command::Stages => {
            for (kind, summary) in nfv_pipelines::registry().describe() {
                println!("{kind:<16} {summary}");
            }
            ExitCode::SUCCESS
        }
    }
}

fn fail(msg: &str) -> ExitCode {
    eprint!("{msg}");
    if !msg.ends_with('\n') {
        eprintln!();
    }
    ExitCode::FAILURE
}
