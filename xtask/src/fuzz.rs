//! `cargo xtask fuzz`: builds nfv-fuzz's libFuzzer driver with coverage
//! instrumentation on the stable toolchain (the flags cargo-fuzz passes,
//! minus the sanitizer, which needs nightly), writes the seed corpora and
//! runs each target for a time, reporting executions and coverage and
//! failing on any finding. `fuzz/README.md` says why it is built this way.

use std::path::{Path, PathBuf};
use std::process::Command;

/// LLVM's SanitizerCoverage as libFuzzer reads it: edge counters, the PC
/// table, comparison tracing. `--cfg fuzzing` as cargo-fuzz sets it.
const RUSTFLAGS: &str = "-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
    -Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
    -Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing";

struct Options {
    targets: Vec<String>,
    seconds: u64,
    jobs: usize,
}

fn options(args: &[String]) -> Result<Options, String> {
    let mut o = Options { targets: Vec::new(), seconds: 60, jobs: 1 };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut num = |what: &str| -> Result<u64, String> {
            it.next().and_then(|v| v.parse().ok()).ok_or(format!("{what} takes a number"))
        };
        match a.as_str() {
            "--seconds" => o.seconds = num("--seconds")?,
            "--jobs" => o.jobs = num("--jobs")?.max(1) as usize,
            t if !t.starts_with('-') => o.targets.push(t.to_string()),
            other => return Err(format!("unknown option {other}")),
        }
    }
    Ok(o)
}

fn host() -> Option<String> {
    let out = Command::new("rustc").arg("-vV").output().ok()?;
    String::from_utf8_lossy(&out.stdout).lines().find_map(|l| l.strip_prefix("host: ").map(str::to_string))
}

/// What one target's run found.
struct Outcome {
    target: String,
    executions: u64,
    coverage: u64,
    features: u64,
    corpus: usize,
    findings: Vec<PathBuf>,
}

/// Runs the fuzz task; false when anything failed or a target found
/// something.
pub fn fuzz(args: &[String]) -> bool {
    let o = match options(args) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("xtask fuzz: {e}\nusage: cargo xtask fuzz [TARGET ...] [--seconds N (60)] [--jobs N (1)]");
            return false;
        }
    };
    let target_dir = PathBuf::from(std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".into()));
    let work = target_dir.join("fuzz");
    let Some(host) = host() else {
        eprintln!("xtask fuzz: rustc -vV names no host");
        return false;
    };
    // Seeds from the uninstrumented build (shared with the test suite's).
    let seeds = work.join("seeds");
    let _ = std::fs::remove_dir_all(&seeds);
    if !super::cargo(&["build", "-q", "-p", "nfv-fuzz", "--bin", "nfv-fuzz-seeds"])
        || !super::run(&[&target_dir.join("debug/nfv-fuzz-seeds").to_string_lossy(), &seeds.to_string_lossy()])
    {
        return false;
    }
    // The instrumented driver: --target keeps the flags off build scripts
    // and proc macros (they would need libFuzzer's hooks to link).
    let build = work.join("build");
    eprintln!("xtask: RUSTFLAGS=\"{RUSTFLAGS}\" (the fuzz build)");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let built = Command::new(cargo)
        .args(["build", "-q", "--profile", "fuzz", "-p", "nfv-fuzz", "--bin", "nfv-fuzz", "--features", "libfuzzer"])
        .args(["--target", &host, "--target-dir"])
        .arg(&build)
        .env("RUSTFLAGS", RUSTFLAGS)
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .status()
        .is_ok_and(|s| s.success());
    if !built {
        return false;
    }
    let driver = build.join(&host).join("fuzz/nfv-fuzz");
    let all = targets(&driver);
    let chosen: Vec<(String, usize)> = if o.targets.is_empty() {
        all.clone()
    } else {
        let mut v = Vec::new();
        for t in &o.targets {
            match all.iter().find(|(n, _)| n == t) {
                Some(x) => v.push(x.clone()),
                None => {
                    let names: Vec<&str> = all.iter().map(|(n, _)| n.as_str()).collect();
                    eprintln!("xtask fuzz: no target {t}; the targets are {}", names.join(", "));
                    return false;
                }
            }
        }
        v
    };
    let queue = std::sync::Mutex::new(chosen.into_iter());
    let results = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..o.jobs {
            s.spawn(|| {
                loop {
                    let next = queue.lock().unwrap().next();
                    let Some((t, max_len)) = next else { break };
                    let r = run_target(&driver, &work, &t, max_len, o.seconds);
                    results.lock().unwrap().push(r);
                }
            });
        }
    });
    let mut results = results.into_inner().unwrap();
    results.sort_by(|a, b| a.target.cmp(&b.target));
    println!("| target | seconds | executions | exec/s | coverage (edges) | features | corpus | findings |");
    println!("|---|---:|---:|---:|---:|---:|---:|---|");
    let mut ok = true;
    for r in &results {
        let findings: Vec<String> = r.findings.iter().map(|p| p.display().to_string()).collect();
        ok &= findings.is_empty() && r.executions > 0;
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            r.target,
            o.seconds,
            r.executions,
            r.executions / o.seconds.max(1),
            r.coverage,
            r.features,
            r.corpus,
            if findings.is_empty() { "none".to_string() } else { findings.join(" ") }
        );
    }
    if !ok {
        eprintln!(
            "xtask fuzz: a finding (or a target that never ran; its log is under {}/logs). Replay one with \
             NFV_FUZZ_TARGET=T {} FILE; once fixed, keep it in fuzz/regressions/T/.",
            work.display(),
            driver.display()
        );
    }
    ok
}

/// The driver's targets and their input lengths (`NFV_FUZZ_TARGET=list`).
fn targets(driver: &Path) -> Vec<(String, usize)> {
    let out = Command::new(driver).env("NFV_FUZZ_TARGET", "list").arg("-runs=0").output();
    let text = out.map(|o| String::from_utf8_lossy(&o.stdout).into_owned()).unwrap_or_default();
    text.lines()
        .filter_map(|l| l.strip_prefix("target "))
        .filter_map(|l| l.split_once(' '))
        .filter_map(|(n, m)| Some((n.to_string(), m.parse().ok()?)))
        .collect()
}

fn run_target(driver: &Path, work: &Path, target: &str, max_len: usize, seconds: u64) -> Outcome {
    let corpus = work.join("corpus").join(target);
    let artifacts = work.join("artifacts").join(target);
    let logs = work.join("logs");
    for d in [&corpus, &artifacts, &logs] {
        let _ = std::fs::create_dir_all(d);
    }
    let log = logs.join(format!("{target}.log"));
    eprintln!("xtask: fuzzing {target} for {seconds} s (log {})", log.display());
    let status = Command::new(driver)
        .env("NFV_FUZZ_TARGET", target)
        .arg(&corpus)
        .arg(work.join("seeds").join(target))
        .arg(format!("-max_total_time={seconds}"))
        .arg(format!("-max_len={max_len}"))
        .arg(format!("-artifact_prefix={}/", artifacts.display()))
        .args(["-print_final_stats=1", "-timeout=10", "-rss_limit_mb=2048"])
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).expect("the log file"))
        .status();
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    let stat = |key: &str| {
        text.lines().find_map(|l| l.strip_prefix(key)).and_then(|v| v.trim().parse::<u64>().ok()).unwrap_or(0)
    };
    // The last status line: "#N DONE cov: C ft: F corp: ...".
    let last = text.lines().rev().find(|l| l.contains(" cov: ")).unwrap_or("");
    let field = |name: &str| {
        last.split_whitespace().skip_while(|w| *w != name).nth(1).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
    };
    let mut findings: Vec<PathBuf> =
        std::fs::read_dir(&artifacts).map(|d| d.flatten().map(|e| e.path()).collect()).unwrap_or_default();
    if !status.is_ok_and(|s| s.success()) && findings.is_empty() {
        findings.push(log.clone());
    }
    Outcome {
        target: target.into(),
        executions: stat("stat::number_of_executed_units:"),
        coverage: field("cov:"),
        features: field("ft:"),
        corpus: std::fs::read_dir(&corpus).map(|d| d.count()).unwrap_or(0),
        findings,
    }
}
