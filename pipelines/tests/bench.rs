//! `nfv bench` end to end on its own veth bed (root): one of each kind of
//! DUT (nfv with its XDP engine, DPDK testpmd's AF_XDP PMD, the kernel
//! with a real nftables rule set loaded from the ACL case's rendering),
//! JSON, CSV and the Markdown report with its plots.

use std::process::Command;

#[test]
fn a_quick_bench_measures_each_kind_of_dut_and_writes_its_report() {
    if !nfv_testkit::root_or_skip("a_quick_bench_measures_each_kind_of_dut_and_writes_its_report")
        || !nfv_testkit::tools_or_skip(
            "a_quick_bench_measures_each_kind_of_dut_and_writes_its_report",
            &[&["sh", "-c", "command -v dpdk-testpmd"], &["nft", "--version"], &["ethtool", "--version"]],
        )
    {
        return;
    }
    let dir = std::env::temp_dir().join(format!("nfv-bench-test-{}", std::process::id()));
    let out = Command::new(env!("CARGO_BIN_EXE_nfv"))
        .args(["bench", "--case", "fwd,acl", "--dut", "nfv,testpmd-afxdp,kernel-nft-filter", "--flows", "256"])
        .arg("--out")
        .arg(&dir)
        .arg("--report")
        .arg(dir.join("REPORT.md"))
        .output()
        .expect("nfv runs");
    let text = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    assert!(!text.contains("note:"), "every DUT started and forwarded: {text}");

    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("bench.json")).unwrap()).expect("bench.json");
    let rows = json["rows"].as_array().unwrap();
    let mut seen = Vec::new();
    for r in rows {
        let (case, dut) = (r["case"].as_str().unwrap(), r["dut"].as_str().unwrap());
        seen.push(format!("{case}/{dut}/{}", r["goal"]));
        let rate = r["rate_pps"].as_f64().unwrap();
        assert!(rate > 10_000.0, "{case}/{dut} forwards: {r}");
        let levels = r["levels"].as_object().unwrap();
        assert_eq!(levels.len(), 3, "latency at 10, 50 and 90 %: {r}");
        for (level, l) in levels {
            let lat = &l["latency"];
            let v = |k: &str| lat[k].as_u64().unwrap();
            assert!(v("count") > 0, "{case}/{dut} {level}: {l}");
            assert!(v("min") > 0 && v("min") <= v("p50") && v("p50") <= v("p99") && v("p99") <= v("max"), "{l}");
            assert_eq!(l["duplicates"], 0, "nothing here duplicates: {l}");
        }
    }
    seen.sort();
    assert_eq!(
        seen,
        [
            "acl/kernel-nft-filter/0.0",
            "acl/kernel-nft-filter/0.005",
            "acl/nfv/0.0",
            "acl/nfv/0.005",
            "fwd/nfv/0.0",
            "fwd/nfv/0.005",
            "fwd/testpmd-afxdp/0.0",
            "fwd/testpmd-afxdp/0.005"
        ],
        "a row per case, DUT and goal"
    );
    let fwd_nfv = rows.iter().find(|r| r["case"] == "fwd" && r["dut"] == "nfv" && r["goal"] == 0.0).unwrap();
    assert!(fwd_nfv["vs_baseline"].as_f64().is_some_and(|v| v > 0.0), "nfv's ratio to testpmd: {fwd_nfv}");
    let env = &json["environment"];
    assert!(env["interfaces"].as_array().unwrap().iter().all(|i| i[1] == "veth"), "{env}");
    assert!(env["cores"].as_u64().unwrap() >= 1 && !env["kernel"].as_str().unwrap().is_empty());
    assert!(
        json["stage_costs"].as_array().unwrap().iter().any(|c| c["dut"] == "nfv" && c["stage"] == "l2-patch"),
        "nfv's stage counters read"
    );

    let csv = std::fs::read_to_string(dir.join("bench.csv")).unwrap();
    assert_eq!(csv.lines().count(), 1 + 8 * 3, "a line per row and load level:\n{csv}");
    let md = std::fs::read_to_string(dir.join("REPORT.md")).unwrap();
    for want in ["## fwd", "## acl", "| 64 | no drop |", "nfv / testpmd-afxdp", "fwd-latency.svg", "kernel-nft-filter"]
    {
        assert!(md.contains(want), "the report has {want}:\n{md}");
    }
    let svg = std::fs::read_to_string(dir.join("fwd-latency.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("testpmd-afxdp"), "a plot with its legend");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A veth pair in a namespace of its own stands in for a cabled DUT: frames
/// out of x0 arrive on x1, as they would from a switch or a DPDK box's
/// ports. `nfv bench --tx --rx --dst-mac` measures it with no bed, no
/// baselines and nothing started.
#[test]
fn an_external_dut_is_measured_over_the_interfaces_given() {
    let name = "an_external_dut_is_measured_over_the_interfaces_given";
    if !nfv_testkit::root_or_skip(name) || !nfv_testkit::tools_or_skip(name, &[&["ethtool", "--version"]]) {
        return;
    }
    let ns = format!("nfvbx{}", std::process::id());
    let ip = |args: &[&str]| {
        let s = Command::new("ip").args(["-n", &ns]).args(args).status().expect("ip runs");
        assert!(s.success(), "ip -n {ns} {args:?}");
    };
    assert!(Command::new("ip").args(["netns", "add", &ns]).status().unwrap().success());
    struct Gone(String);
    impl Drop for Gone {
        fn drop(&mut self) {
            let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
        }
    }
    let _gone = Gone(ns.clone());
    ip(&["link", "add", "x0", "type", "veth", "peer", "name", "x1"]);
    ip(&["link", "set", "x0", "up"]);
    ip(&["link", "set", "x1", "up"]);
    let link = Command::new("ip").args(["-n", &ns, "-j", "link", "show", "x1"]).output().unwrap();
    let link: serde_json::Value = serde_json::from_slice(&link.stdout).expect("ip -j");
    let mac = link[0]["address"].as_str().expect("x1 has a MAC").to_string();

    let dir = std::env::temp_dir().join(format!("nfv-bench-ext-{}", std::process::id()));
    let out = Command::new("ip")
        .args(["netns", "exec", &ns, env!("CARGO_BIN_EXE_nfv"), "bench", "--case", "fwd", "--flows", "64"])
        .args(["--tx", "x0", "--rx", "x1", "--dst-mac", &mac, "--dut-name", "wire"])
        .args(["--trial-seconds", "0.1", "--verify-seconds", "0.2", "--latency-seconds", "0.1"])
        .arg("--out")
        .arg(&dir)
        .arg("--report")
        .arg(dir.join("REPORT.md"))
        .output()
        .expect("nfv runs");
    let text = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    assert!(!text.contains("note:"), "{text}");

    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("bench.json")).unwrap()).expect("bench.json");
    let rows = json["rows"].as_array().unwrap();
    assert!(!rows.is_empty(), "{json}");
    for r in rows {
        assert_eq!(r["dut"], "wire", "the one DUT, no bed's: {r}");
        assert!(r["vs_baseline"].is_null(), "no baseline ran beside it: {r}");
        assert!(r["rate_pps"].as_f64().unwrap() > 10_000.0, "a wire forwards: {r}");
        for l in r["levels"].as_object().unwrap().values() {
            assert_eq!(l["lost"], 0, "a wire loses nothing at 90 % of its rate: {l}");
        }
    }
    let env = &json["environment"];
    assert!(env["topology"].as_str().unwrap().contains("x0 and x1"), "{env}");
    assert!(env["interfaces"].as_array().unwrap().iter().all(|i| i[1] == "veth"), "ethtool's driver: {env}");
    let md = std::fs::read_to_string(dir.join("REPORT.md")).unwrap();
    assert!(md.contains("wire") && !md.contains("generator-alone"), "{md}");
    assert!(
        md.contains("the fwd case's traffic through wire: UDP/IPv4 10.0.0.1 to 198.51.100.2"),
        "the report says what to configure the DUT for: {md}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
