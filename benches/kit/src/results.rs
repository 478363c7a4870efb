//! What a run found, as a lab files it: the environment it ran in (CPU,
//! cores, kernel, the interfaces and their drivers, the AF_XDP mode, the
//! git commit, the chain's configuration) and a row per device under test,
//! frame size and goal, written as JSON (everything) and CSV (the rows).

use serde::Serialize;

use crate::latency::Summary;

/// Where the figures were measured.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Environment {
    /// `model name` of /proc/cpuinfo.
    pub cpu_model: String,
    /// CPUs online.
    pub cores: usize,
    /// The running kernel's release.
    pub kernel: String,
    /// What was measured on: the veth bed nfv bench built, or a DUT
    /// cabled between two interfaces.
    pub topology: String,
    /// The interfaces used and their drivers (`veth` on the test bed).
    pub interfaces: Vec<(String, String)>,
    /// How the AF_XDP sockets bound (`copy, driver mode`).
    pub af_xdp_mode: String,
    /// The generator and receiver and where they run.
    pub generator: String,
    /// `git describe --always --dirty` of the tree measured.
    pub commit: String,
    /// The chain's configuration, as run.
    pub chain_toml: String,
}

impl Environment {
    /// This machine's, for `interfaces` (names), the tree at `repo`.
    pub fn collect(interfaces: &[&str], repo: &std::path::Path) -> Self {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu_model = cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name")?.split_once(':').map(|(_, v)| v.trim().to_string()))
            .unwrap_or_default();
        // Online CPUs (not this thread's affinity, which the run narrows).
        // SAFETY: sysconf has no preconditions.
        let cores = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) }.max(1) as usize;
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default().trim().to_string();
        let driver = |i: &str| driver(None, i);
        let commit = std::process::Command::new("git")
            .args(["describe", "--always", "--dirty"])
            .current_dir(repo)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_else(|| format!("unknown: run outside a git checkout (nfv {})", env!("CARGO_PKG_VERSION")));
        Self {
            cpu_model,
            cores,
            kernel,
            interfaces: interfaces.iter().map(|i| (i.to_string(), driver(i))).collect(),
            commit,
            ..Self::default()
        }
    }
}

/// Interface `i`'s driver as `ethtool -i` says (in namespace `ns`, if
/// given), else its sysfs device's, else `virtual`.
pub fn driver(ns: Option<&str>, i: &str) -> String {
    let mut cmd = match ns {
        Some(ns) => {
            let mut c = std::process::Command::new("ip");
            c.args(["netns", "exec", ns, "ethtool", "-i", i]);
            c
        }
        None => {
            let mut c = std::process::Command::new("ethtool");
            c.args(["-i", i]);
            c
        }
    };
    cmd.output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout).lines().find_map(|l| l.strip_prefix("driver: ").map(str::to_string))
        })
        .or_else(|| {
            std::fs::read_link(format!("/sys/class/net/{i}/device/driver"))
                .ok()
                .and_then(|l| l.file_name().map(|n| n.to_string_lossy().into_owned()))
        })
        .unwrap_or_else(|| "virtual".into())
}

/// One measured result.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Row {
    /// The case (`fwd`, `nat`).
    pub case: String,
    /// The device under test (`nfv-nat44`, `kernel-nftables-masquerade`).
    pub dut: String,
    /// Frame size with FCS, or the mix's name.
    pub frames: String,
    /// The loss goal (0: no-drop rate).
    pub goal: f64,
    /// The rate found, packets per second.
    pub rate_pps: f64,
    /// Its ratio to the first baseline of the run at the same frames and
    /// goal (nfv's rows), if any.
    pub vs_baseline: Option<f64>,
    /// Verified by the final trial.
    pub verified: bool,
    /// The generator's limit, not the DUT's (the DUT forwarded all).
    pub generator_limited: bool,
    /// The rate is the line rate the search started from (the DUT
    /// forwarded everything asked of it).
    pub at_line_rate: bool,
    /// For a generator-limited row: the CPU time per packet the DUT took
    /// beyond the generator's own (1/rate - 1/the generator alone's rate,
    /// nanoseconds). On veth a DUT's receive work (its XDP program, the
    /// kernel's forwarding) runs on the generator's CPU, so the generator
    /// slows by exactly what the DUT costs.
    pub inline_ns_per_packet: Option<f64>,
    /// Trials the search ran.
    pub trials: usize,
    /// CPU time stolen by the hypervisor over the search, percent (a
    /// figure measured under steal is suspect).
    pub steal_percent: f64,
    /// Latency and sequence accounting at 10, 50 and 90 % of the rate.
    #[serde(skip)]
    pub latency: Vec<Level>,
}

/// One load level's trial: its latency and what the sequence numbers said.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Level {
    /// Percent of the row's rate.
    pub percent: u8,
    /// Latency, nanoseconds.
    pub latency: Summary,
    /// Packets never received.
    pub lost: u64,
    /// Packets received twice or more.
    pub duplicates: u64,
    /// Packets received after a later one of their flow (RFC 4737).
    pub reordered: u64,
}

/// What a case measured and the configuration nfv ran it with.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct CaseInfo {
    /// Its name.
    pub name: String,
    /// What it is.
    pub about: String,
    /// The DUT nfv's ratios are to.
    pub reference: String,
    /// nfv's configuration (with the XDP engine).
    pub nfv_config: String,
}

/// A stage's cost per packet in an nfv DUT, from its own counters (the
/// report nfv writes when it stops), comparable across machines.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct StageCost {
    /// The case.
    pub case: String,
    /// The DUT (`nfv`, `nfv-afxdp`).
    pub dut: String,
    /// The stage.
    pub stage: String,
    /// Packets it saw over the whole case.
    pub packets: u64,
    /// Cycle-counter ticks per packet.
    pub ticks_per_packet: f64,
    /// Nanoseconds per packet.
    pub ns_per_packet: f64,
}

/// A run: its environment and rows.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Run {
    /// Where.
    pub environment: Environment,
    /// `quick` or `full`, and the search's parameters.
    pub mode: String,
    /// The cases measured.
    pub cases: Vec<CaseInfo>,
    /// What.
    pub rows: Vec<Row>,
    /// nfv's per-stage costs.
    pub stage_costs: Vec<StageCost>,
    /// What went wrong or needs saying (a DUT that did not start).
    pub notes: Vec<String>,
}

/// A CSV row: the result and one load level's latency.
#[derive(Serialize)]
struct CsvRow<'a> {
    case: &'a str,
    dut: &'a str,
    frames: &'a str,
    goal: f64,
    rate_pps: f64,
    vs_baseline: Option<f64>,
    verified: bool,
    generator_limited: bool,
    steal_percent: f64,
    load_percent: Option<u8>,
    lost: Option<u64>,
    duplicates: Option<u64>,
    reordered: Option<u64>,
    count: Option<u64>,
    min: Option<u64>,
    p50: Option<u64>,
    p90: Option<u64>,
    p99: Option<u64>,
    p999: Option<u64>,
    max: Option<u64>,
    pdv99: Option<u64>,
}

impl Run {
    /// The whole run as JSON (latency per load level included).
    pub fn json(&self) -> String {
        let mut v = serde_json::to_value(self).expect("serialisable");
        for (row, out) in self.rows.iter().zip(v["rows"].as_array_mut().expect("rows")) {
            let lat: serde_json::Map<String, serde_json::Value> = row
                .latency
                .iter()
                .map(|l| (format!("{}%", l.percent), serde_json::to_value(l).expect("serialisable")))
                .collect();
            out["levels"] = lat.into();
        }
        serde_json::to_string_pretty(&v).expect("serialisable")
    }

    /// The rows as CSV, a line per result and load level.
    pub fn csv(&self) -> String {
        let mut w = csv::Writer::from_writer(Vec::new());
        for r in &self.rows {
            let levels: Vec<Option<&Level>> =
                if r.latency.is_empty() { vec![None] } else { r.latency.iter().map(Some).collect() };
            for l in levels {
                let s = l.map(|l| l.latency);
                let row = CsvRow {
                    case: &r.case,
                    dut: &r.dut,
                    frames: &r.frames,
                    goal: r.goal,
                    rate_pps: r.rate_pps,
                    vs_baseline: r.vs_baseline,
                    verified: r.verified,
                    generator_limited: r.generator_limited,
                    steal_percent: r.steal_percent,
                    load_percent: l.map(|l| l.percent),
                    lost: l.map(|l| l.lost),
                    duplicates: l.map(|l| l.duplicates),
                    reordered: l.map(|l| l.reordered),
                    count: s.map(|s| s.count),
                    min: s.map(|s| s.min),
                    p50: s.map(|s| s.p50),
                    p90: s.map(|s| s.p90),
                    p99: s.map(|s| s.p99),
                    p999: s.map(|s| s.p999),
                    max: s.map(|s| s.max),
                    pdv99: s.map(|s| s.pdv99),
                };
                w.serialize(row).expect("a row");
            }
        }
        String::from_utf8(w.into_inner().expect("flushed")).expect("UTF-8")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_writes_json_with_its_environment_and_csv_a_line_per_load_level() {
        let env = Environment::collect(&["lo"], std::path::Path::new(env!("CARGO_MANIFEST_DIR")));
        assert!(env.cores >= 1 && !env.kernel.is_empty());
        assert_eq!(env.interfaces.len(), 1);
        assert_eq!(env.interfaces[0].0, "lo");
        let lat = Summary { count: 10, min: 1000, p50: 2000, p90: 3000, p99: 4000, p999: 5000, max: 6000, pdv99: 3000 };
        let row = |dut: &str, rate: f64, vs: Option<f64>| Row {
            case: "nat".into(),
            dut: dut.into(),
            frames: "64".into(),
            goal: 0.0,
            rate_pps: rate,
            vs_baseline: vs,
            verified: true,
            generator_limited: false,
            at_line_rate: false,
            inline_ns_per_packet: None,
            trials: 12,
            steal_percent: 0.5,
            latency: [10, 50, 90]
                .map(|percent| Level { percent, latency: lat, lost: 0, duplicates: 0, reordered: 1 })
                .to_vec(),
        };
        let run = Run {
            environment: env,
            rows: vec![row("kernel", 500_000.0, None), row("nfv", 1e6, Some(2.0))],
            ..Run::default()
        };
        let json: serde_json::Value = serde_json::from_str(&run.json()).unwrap();
        assert_eq!(json["rows"][1]["vs_baseline"], 2.0);
        assert_eq!(json["rows"][0]["levels"]["90%"]["latency"]["p99"], 4000);
        assert_eq!(json["rows"][0]["levels"]["90%"]["reordered"], 1);
        assert!(json["environment"]["kernel"].is_string());
        let csv = run.csv();
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines.len(), 1 + 6, "a header, then a line per row and load level");
        assert!(
            lines[0]
                .starts_with("case,dut,frames,goal,rate_pps,vs_baseline,verified,generator_limited,steal_percent,load_percent,lost,duplicates,reordered,count,min")
        );
        assert!(
            lines[4].starts_with("nat,nfv,64,0.0,1000000.0,2.0,true,false,0.5,10,0,0,1,10,1000,2000"),
            "{}",
            lines[4]
        );
    }
}
