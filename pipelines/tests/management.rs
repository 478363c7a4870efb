//! The management plane as an operator meets it: curl scrapes `/metrics`
//! and asks the probes of a running `nfv`, `nfv ctl` asks its socket, and
//! both tell the same story; a bad `[management]` is refused where it is
//! written; a configuration without input stays up until told to stop.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn nfv() -> Command {
    Command::new(env!("CARGO_BIN_EXE_nfv"))
}

/// A TCP port nothing listens on now.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn dir(test: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("nfv-mgmt-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// `curl -s` of `path` on `port`: (HTTP status, body).
fn curl(port: u16, path: &str) -> (u16, String) {
    let out = Command::new("curl")
        .args(["-s", "-w", "\n%{http_code}", &format!("http://127.0.0.1:{port}{path}")])
        .output()
        .expect("curl runs");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (code.trim().parse().unwrap_or(0), body.to_string())
}

fn ctl(socket: &Path, args: &[&str]) -> Output {
    nfv().arg("ctl").arg("--socket").arg(socket).args(args).output().unwrap()
}

fn json(out: &Output) -> serde_json::Value {
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Waits until `/startupz` answers 200.
fn started(port: u16, child: &mut Child) {
    let t0 = Instant::now();
    while curl(port, "/startupz").0 != 200 {
        assert!(child.try_wait().unwrap().is_none(), "nfv exited before starting");
        assert!(t0.elapsed() < Duration::from_secs(20), "no /startupz within 20 s");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn stop(mut child: Child) -> Output {
    let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    let t0 = Instant::now();
    while child.try_wait().unwrap().is_none() {
        assert!(t0.elapsed() < Duration::from_secs(15), "nfv did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

/// The value of the one series of `metrics` whose line starts with
/// `series` (name and labels as printed).
fn value(metrics: &str, series: &str) -> f64 {
    let line = metrics.lines().find(|l| l.starts_with(series)).unwrap_or_else(|| panic!("no {series} in\n{metrics}"));
    line.rsplit(' ').next().unwrap().parse().unwrap()
}

/// A generator (with `gen_extra` keys) through a counter into the drop
/// stage, managed on `port` and `socket`, written to `dir/run.toml`.
fn counted_drop(dir: &Path, port: u16, socket: &Path, gen_extra: &str) -> PathBuf {
    let cfg = dir.join("run.toml");
    std::fs::write(
        &cfg,
        format!(
            r#"
[run]
stats-interval = 0

[management]
listen = "127.0.0.1:{port}"
socket = "{}"

[[ports]]
name = "gen"
kind = "generator"
flows = 64
{gen_extra}

[[chains]]
name = "main"
stages = [{{ kind = "counter" }}, {{ kind = "drop" }}]

[[workers]]
rx = ["gen"]
chain = "main"
"#,
            socket.display()
        ),
    )
    .unwrap();
    cfg
}

#[test]
fn metrics_probes_and_ctl_tell_the_same_story_of_a_running_chain() {
    if !nfv_testkit::tools_or_skip("management", &[&["curl", "--version"], &["tshark", "--version"]]) {
        return;
    }
    let d = dir("story");
    let port = free_port();
    let socket = d.join("ctl.sock");
    let cfg = counted_drop(&d, port, &socket, "");
    let mut child = nfv().arg("run").arg(&cfg).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    started(port, &mut child);
    assert_eq!(curl(port, "/livez"), (200, "ok\n".into()));
    assert_eq!(curl(port, "/readyz"), (200, "ok\n".into()), "no next hop to wait for");
    assert_eq!(curl(port, "/nothing").0, 404);
    // The socket is the operator's alone.
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&socket).unwrap().permissions().mode() & 0o777, 0o600);
    std::thread::sleep(Duration::from_millis(1500));

    let (code, m) = curl(port, "/metrics");
    assert_eq!(code, 200);
    assert!(m.trim_end().ends_with("# EOF"), "OpenMetrics text ends in # EOF");
    assert!(m.contains(&format!("nfv_build_info{{version=\"{}\"}} 1", env!("CARGO_PKG_VERSION"))));
    // One naming scheme: every counter's samples end in _total.
    for l in m.lines().filter(|l| l.starts_with("# TYPE ") && l.ends_with(" counter")) {
        let name = l.split(' ').nth(2).unwrap();
        let bare = |s: &&str| s.starts_with(&format!("{name}{{")) || s.starts_with(&format!("{name} "));
        assert!(!m.lines().any(|s| bare(&s)), "{name} has samples without _total");
    }
    let counted = value(&m, r#"nfv_stage_packets_total{worker="0",stage="counter"}"#);
    let dropped = value(&m, r#"nfv_stage_drops_total{worker="0",stage="drop",reason="dropped-by-config"}"#);
    assert!(counted > 0.0 && dropped > 0.0, "counted {counted}, dropped {dropped}");
    // Read while the worker writes: ports first, then stages.
    assert!(value(&m, r#"nfv_port_rx_packets_total{port="gen",worker="0",queue="0"}"#) > 0.0);
    assert_eq!(value(&m, r#"nfv_worker_live{worker="0"}"#), 1.0);

    // ctl, asked after the scrape, saw at least as much.
    let rt = json(&ctl(&socket, &["show", "runtime", "--json"]));
    let stage = |name: &str| rt["stages"].as_array().unwrap().iter().find(|s| s["stage"] == name).cloned().unwrap();
    let counter = stage("counter");
    assert!(counter["packets"].as_f64().unwrap() >= counted);
    assert!(counter["packets_per_second"].as_f64().unwrap() > 0.0, "{counter}");
    assert!(stage("drop")["drops"]["dropped-by-config"].as_f64().unwrap() >= dropped);
    assert_eq!(rt["workers"][0]["worker"], 0);
    let errors = json(&ctl(&socket, &["--json", "show", "errors"]));
    assert!(
        errors.as_array().unwrap().iter().any(|e| e["stage"] == "drop" && e["reason"] == "dropped-by-config"),
        "{errors}"
    );
    let text = ctl(&socket, &["show", "runtime"]);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("counter") && text.contains("Mpps"), "{text}");
    let ports = json(&ctl(&socket, &["show", "ports", "--json"]));
    assert!(ports.as_array().unwrap().iter().any(|p| p["port"] == "gen" && p["rx_packets"].as_u64().unwrap() > 0));
    // Latency: each batch from receive to transmit, each stage's call.
    let lat = json(&ctl(&socket, &["show", "latency", "--json"]));
    let batch = &lat["workers"][0]["batch"];
    assert!(batch["count"].as_u64().unwrap() > 0, "{lat}");
    let q = |k: &str| batch[k].as_f64().unwrap();
    assert!(
        q("p50_us") > 0.0 && q("p50_us") <= q("p90_us") && q("p99_us") <= q("p99.9_us") && q("p99.9_us") <= q("max_us")
    );
    assert!(
        lat["stages"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["stage"] == "counter" && s["call"]["count"].as_u64() > Some(0))
    );
    let text = String::from_utf8_lossy(&ctl(&socket, &["show", "latency"]).stdout).to_string();
    assert!(text.contains("p99.9 us") && text.contains("worker 0"), "{text}");
    let m = curl(port, "/metrics").1;
    let count = value(&m, r#"nfv_batch_latency_seconds_count{worker="0"}"#);
    let buckets: Vec<f64> = m
        .lines()
        .filter(|l| l.starts_with("nfv_batch_latency_seconds_bucket{") && l.contains(r#"worker="0""#))
        .map(|l| l.rsplit(' ').next().unwrap().parse().unwrap())
        .collect();
    assert!(count > 0.0 && buckets.windows(2).all(|w| w[0] <= w[1]), "cumulative buckets: {buckets:?}");
    assert_eq!(buckets.last(), Some(&count), "+Inf holds every batch");
    // The plan of the running configuration: no device, no XDP.
    let plan = json(&ctl(&socket, &["show", "plan", "--json"]));
    assert!(plan["decisions"].as_array().is_some_and(|d| !d.is_empty()) && plan["xdp"].is_null(), "{plan}");
    // The configuration running, as written.
    let shown = json(&ctl(&socket, &["show", "config", "--json"]));
    assert_eq!(shown["text"].as_str().unwrap(), std::fs::read_to_string(&cfg).unwrap());
    assert!(
        shown["file"].as_str().unwrap().ends_with("run.toml")
            && shown["summary"].as_str().unwrap().starts_with("ok: 1 port(s)")
    );
    // Tracing: the next two packets received, stage by stage.
    let armed = ctl(&socket, &["trace", "add", "2"]);
    assert!(String::from_utf8_lossy(&armed.stdout).contains("tracing the next 2 packets received"));
    std::thread::sleep(Duration::from_millis(300));
    let tr = json(&ctl(&socket, &["show", "trace", "--json"]));
    let packets = tr["packets"].as_array().unwrap();
    assert_eq!(packets.len(), 2, "{tr}");
    let steps: Vec<&str> = packets[0]["steps"].as_array().unwrap().iter().map(|s| s["at"].as_str().unwrap()).collect();
    // No stage reads headers here, so no parse (no `input` stage).
    assert_eq!(steps, ["rx gen", "counter", "drop"], "{tr}");
    assert_eq!(packets[0]["steps"][2]["what"], "drop: dropped-by-config", "{tr}");
    assert_eq!(tr["armed"], 0, "both picked");
    let refused = ctl(&socket, &["trace", "add", "1", "--stage", "port-tx"]);
    assert!(String::from_utf8_lossy(&refused.stderr).contains("stages: counter, drop"), "only the graph's stages");
    assert!(ctl(&socket, &["trace", "clear"]).status.success());
    // A capture of what enters a stage, read by tshark.
    let pcap = d.join("drop.pcap");
    let cap =
        json(&ctl(&socket, &["capture", "--stage", "drop", "--count", "5", "--out", pcap.to_str().unwrap(), "--json"]));
    assert_eq!(cap["captured"], 5, "{cap}");
    let ts = Command::new("tshark")
        .arg("-r")
        .arg(&pcap)
        .args(["-T", "fields", "-e", "eth.type", "-e", "frame.len"])
        .output()
        .unwrap();
    let (out, err) = (String::from_utf8_lossy(&ts.stdout), String::from_utf8_lossy(&ts.stderr));
    let warnings: Vec<&str> = err.lines().filter(|l| !l.contains("Running as user")).collect();
    assert!(ts.status.success() && warnings.is_empty(), "{err}");
    assert_eq!(out.lines().filter(|l| l.starts_with("0x0800\t60")).count(), 5, "{out}");
    let bad = ctl(&socket, &["show", "everything"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("known: show runtime"), "the refusal lists the commands");

    let out = stop(child);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(!socket.exists(), "the socket goes with the process");
    let nobody = ctl(&socket, &["show", "runtime"]);
    assert!(!nobody.status.success() && String::from_utf8_lossy(&nobody.stderr).contains("is it running?"));
    let _ = std::fs::remove_dir_all(d);
}

#[test]
fn a_configuration_without_input_stays_up_until_stopped() {
    if !nfv_testkit::tools_or_skip("management", &[&["curl", "--version"]]) {
        return;
    }
    let d = dir("stays");
    let port = free_port();
    let cfg = d.join("idle.toml");
    std::fs::write(
        &cfg,
        format!(
            r#"
[management]
listen = "127.0.0.1:{port}"
socket = "off"

[[ports]]
name = "cap"
kind = "pcap"
output = "{}"

[[chains]]
name = "main"
stages = [{{ kind = "counter" }}]
then = "cap"

[[workers]]
rx = ["cap"]
chain = "main"
"#,
            d.join("out.pcap").display()
        ),
    )
    .unwrap();
    for duration in [None, Some("30")] {
        let mut cmd = nfv();
        cmd.arg("run").arg(&cfg).arg("--quiet");
        if let Some(s) = duration {
            cmd.args(["--duration", s]);
        }
        let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        started(port, &mut child);
        std::thread::sleep(Duration::from_secs(2));
        assert!(child.try_wait().unwrap().is_none(), "exited without input ({duration:?})");
        assert_eq!(curl(port, "/readyz").0, 200);
        assert_eq!(curl(port, "/livez").0, 200, "an idle worker still polls");
        let out = stop(child);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    let _ = std::fs::remove_dir_all(d);
}

#[test]
fn a_bad_management_section_is_refused_where_it_is_written() {
    let d = dir("bad");
    let cfg = d.join("bad.toml");
    let base = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../configs/quickstart.toml")).unwrap();
    for (section, want, at) in [
        ("[management]\nlisten = \"localhost\"\n", "is not an address and port", "bad.toml:2:10"),
        ("[management]\nsocket = \"relative.sock\"\n", "is not an absolute path", "bad.toml:2:10"),
        ("[management]\nlisten = \"off\"\nport = 1\n", "unknown field `port`", "bad.toml:3:1"),
    ] {
        std::fs::write(&cfg, format!("{section}\n{base}")).unwrap();
        let out = nfv().arg("check").arg(&cfg).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{section}");
        assert!(err.contains(want) && err.contains(at), "{section}: {err}");
    }
    // An address the file names and another process holds is an error.
    let held = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = held.local_addr().unwrap();
    std::fs::write(&cfg, format!("[management]\nlisten = \"{addr}\"\nsocket = \"off\"\n{base}")).unwrap();
    let out = nfv().arg("run").arg(&cfg).arg("--quiet").output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains(&format!("[management] listen = \"{addr}\"")));
    let _ = std::fs::remove_dir_all(d);
}

#[test]
fn a_worker_that_stops_polling_turns_livez_red_within_its_bound() {
    if !nfv_testkit::tools_or_skip("management", &[&["curl", "--version"]]) {
        return;
    }
    let d = dir("livez");
    let port = free_port();
    let cfg = d.join("stall.toml");
    std::fs::write(
        &cfg,
        format!(
            r#"
[run]
stats-interval = 0

[management]
listen = "127.0.0.1:{port}"
socket = "off"

[[ports]]
name = "gen"
kind = "generator"
queues = 2

[[chains]]
name = "main"
stages = [{{ kind = "stall", after = 100000, seconds = 4.0 }}, {{ kind = "drop" }}]

[[workers]]
rx = ["gen:0"]
chain = "main"

[[workers]]
rx = ["gen:1"]
chain = "main"
"#
        ),
    )
    .unwrap();
    let mut child = nfv().arg("run").arg(&cfg).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    started(port, &mut child);
    // Both workers stall once, each after its first 100000 packets; the
    // probe must say so within the 1 s bound (plus a poll of ours).
    let t0 = Instant::now();
    let red = loop {
        let (code, body) = curl(port, "/livez");
        if code == 503 {
            break body;
        }
        assert!(t0.elapsed() < Duration::from_secs(4), "/livez never turned red");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(red.contains("worker 0") || red.contains("worker 1"), "{red}");
    assert!(red.contains("no poll for") && red.contains("bound 1 s"), "{red}");
    let m = curl(port, "/metrics").1;
    assert!(m.contains("nfv_worker_live{worker=\"0\"} 0") || m.contains("nfv_worker_live{worker=\"1\"} 0"), "{m}");
    // And green again once they poll.
    let t1 = Instant::now();
    while curl(port, "/livez").0 != 200 {
        assert!(t1.elapsed() < Duration::from_secs(10), "/livez stayed red after the stall");
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = stop(child);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let _ = std::fs::remove_dir_all(d);
}

/// Prometheus's HTTP API: the first sample's value of `query`, if any.
fn promql(port: u16, query: &str) -> Option<f64> {
    let out = Command::new("curl")
        .args(["-s", "-G", &format!("http://127.0.0.1:{port}/api/v1/query"), "--data-urlencode"])
        .arg(format!("query={query}"))
        .output()
        .ok()?;
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
    v["data"]["result"][0]["value"][1].as_str()?.parse().ok()
}

#[test]
fn a_real_prometheus_server_scrapes_what_ctl_shows() {
    if !nfv_testkit::tools_or_skip("management", &[&["curl", "--version"], &["prometheus", "--version"]]) {
        return;
    }
    let d = dir("prom");
    let (port, prom_port) = (free_port(), free_port());
    let socket = d.join("ctl.sock");
    // A counted generator: steady traffic for some seconds, then counters
    // that stand still, so the two can be compared exactly.
    let cfg = counted_drop(&d, port, &socket, "count = 20000000");
    std::fs::write(
        d.join("prometheus.yml"),
        format!(
            "global:\n  scrape_interval: 500ms\n  evaluation_interval: 500ms\nscrape_configs:\n  - job_name: nfv\n    static_configs:\n      - targets: ['127.0.0.1:{port}']\n"
        ),
    )
    .unwrap();
    let mut child = nfv()
        .arg("run")
        .arg(&cfg)
        .args(["--duration", "120"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    started(port, &mut child);
    let prom = Command::new("prometheus")
        .arg(format!("--config.file={}", d.join("prometheus.yml").display()))
        .arg(format!("--storage.tsdb.path={}", d.join("tsdb").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{prom_port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    struct Kill(Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _prom = Kill(prom);
    let pps = || {
        json(&ctl(&socket, &["show", "runtime", "--json"]))["stages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["stage"] == "counter")
            .map(|s| s["packets_per_second"].as_f64().unwrap())
            .unwrap()
    };

    // While traffic flows: Prometheus's per-stage rate against ctl's.
    // Once five scrapes in the window all saw traffic (none from start-up).
    let series = r#"nfv_stage_packets_total{job="nfv",stage="counter"}"#;
    let rate = format!("rate({series}[2500ms])");
    let steady = format!("count_over_time(({series} > 0)[2500ms:500ms])");
    let t0 = Instant::now();
    let (prom_rate, ctl_rate) = loop {
        assert!(t0.elapsed() < Duration::from_secs(30), "Prometheus never scraped five samples while traffic flowed");
        std::thread::sleep(Duration::from_millis(300));
        let before = pps();
        if promql(prom_port, &steady).unwrap_or(0.0) < 5.0 {
            continue;
        }
        let Some(r) = promql(prom_port, &rate).filter(|r| *r > 0.0) else { continue };
        let after = pps();
        if before > 0.0 && after > 0.0 {
            break (r, (before + after) / 2.0);
        }
    };
    let p99 = promql(prom_port, "histogram_quantile(0.99, rate(nfv_batch_latency_seconds_bucket[2500ms]))");
    assert!(p99.is_some_and(|v| v > 0.0 && v < 1.0), "a batch's p99 from the histogram: {p99:?}");
    // Every query of the Grafana dashboard shipped in deploy/ is one
    // Prometheus accepts, and each panel's metrics exist.
    let dash: serde_json::Value =
        serde_json::from_str(include_str!("../../deploy/grafana/nfv-dashboard.json")).unwrap();
    for panel in dash["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            let q = target["expr"].as_str().unwrap().replace("$job", ".*");
            let out = Command::new("curl")
                .args(["-s", "-G", &format!("http://127.0.0.1:{prom_port}/api/v1/query"), "--data-urlencode"])
                .arg(format!("query={q}"))
                .output()
                .unwrap();
            let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            assert_eq!(v["status"], "success", "{}: {q}: {v}", panel["title"]);
        }
    }
    let ratio = prom_rate / ctl_rate;
    assert!((0.5..2.0).contains(&ratio), "Prometheus {prom_rate:.0} pps, nfv ctl {ctl_rate:.0} pps");

    // Traffic over: both read the same counters.
    let t1 = Instant::now();
    while pps() > 0.0 {
        assert!(t1.elapsed() < Duration::from_secs(60), "the generator never finished");
        std::thread::sleep(Duration::from_millis(500));
    }
    std::thread::sleep(Duration::from_millis(1500));
    let rt = json(&ctl(&socket, &["show", "runtime", "--json"]));
    let stage = |name: &str| rt["stages"].as_array().unwrap().iter().find(|s| s["stage"] == name).cloned().unwrap();
    let dropped = stage("drop")["drops"]["dropped-by-config"].as_f64().unwrap();
    let counted = stage("counter")["packets"].as_f64().unwrap();
    assert_eq!(counted, 20_000_000.0, "the generator's count, all through the counter");
    let t2 = Instant::now();
    let by_reason = r#"nfv_stage_drops_total{job="nfv",stage="drop",reason="dropped-by-config"}"#;
    while promql(prom_port, by_reason) != Some(dropped) {
        assert!(
            t2.elapsed() < Duration::from_secs(10),
            "Prometheus says {:?} dropped-by-config, nfv ctl {dropped}",
            promql(prom_port, by_reason)
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    assert_eq!(promql(prom_port, r#"nfv_stage_packets_total{job="nfv",stage="counter"}"#), Some(counted));
    let out = stop(child);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let _ = std::fs::remove_dir_all(d);
}

#[test]
fn sighup_reloads_the_running_file_and_a_bad_edit_changes_nothing() {
    if !nfv_testkit::tools_or_skip("management", &[&["curl", "--version"]]) {
        return;
    }
    let d = dir("sighup");
    let (port, socket) = (free_port(), d.join("nfv.sock"));
    let cfg = d.join("fw.toml");
    let write = |rules: &str| {
        let text = format!(
            "[management]\nlisten = \"127.0.0.1:{port}\"\nsocket = \"{}\"\n\n\
             [[ports]]\nname = \"gen\"\nkind = \"generator\"\nflows = 64\n\n\
             [[ports]]\nname = \"out\"\nkind = \"sink\"\n\n\
             [[chains]]\nname = \"fw\"\nstages = [{{ kind = \"acl\", default = \"permit\", rules = [{rules}] }}]\nthen = \"out\"\n\n\
             [[workers]]\nrx = [\"gen\"]\nchain = \"fw\"\n",
            socket.display()
        );
        std::fs::write(&cfg, text).unwrap();
    };
    write("{ action = \"deny\", proto = \"udp\", dst-port = \"1024-2000\" }");
    let mut child =
        nfv().arg("run").arg(&cfg).arg("--quiet").stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    started(port, &mut child);
    let hup = || {
        let _ = Command::new("kill").args(["-HUP", &child.id().to_string()]).status();
        // The reload thread looks every 100 ms.
        std::thread::sleep(Duration::from_millis(500));
    };
    write("{ action = \"deny\", proto = \"udp\", dst-port = \"1024-2000\" }, { action = \"deny\", proto = \"tcp\" }");
    hup();
    let rules = json(&ctl(&socket, &["acl", "list", "--json"]));
    assert_eq!(rules["rows"].as_array().unwrap().len(), 3, "two rules and the default: {rules}");
    write("{ action = \"deny\", proto = \"udp\", dst-port = \"1024-99999\" }");
    hup();
    let rules = json(&ctl(&socket, &["acl", "list", "--json"]));
    assert_eq!(rules["rows"].as_array().unwrap().len(), 3, "the bad edit changed nothing: {rules}");
    let shown = String::from_utf8_lossy(&ctl(&socket, &["show", "config"]).stdout).to_string();
    assert!(shown.contains("proto = \"tcp\"") && !shown.contains("99999"), "show config: what runs ({shown})");
    let (_, metrics) = curl(port, "/metrics");
    assert_eq!(value(&metrics, "nfv_config_reloads_total{result=\"applied\"}"), 1.0);
    assert_eq!(value(&metrics, "nfv_config_reloads_total{result=\"refused\"}"), 1.0);
    assert_eq!(value(&metrics, "nfv_ruleset_version{stage=\"acl\",set=\"rules\"}"), 1.0);
    let out = stop(child);
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(log.contains("nfv: SIGHUP: reloading") && log.contains("rules version 1: 2 rules"), "{log}");
    assert!(log.contains("dst-port`: not a port or port range") && log.contains("reload refused"), "{log}");
    let _ = std::fs::remove_dir_all(d);
}
