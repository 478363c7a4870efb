//! The `nfv` binary as a user drives it: check's exit codes, a run that
//! ends on SIGINT with a drained, complete report, and replay end to end.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn nfv() -> Command {
    Command::new(env!("CARGO_BIN_EXE_nfv"))
}

#[test]
fn check_accepts_shipped_configs_and_rejects_bad_ones() {
    let good = concat!(env!("CARGO_MANIFEST_DIR"), "/../configs/quickstart.toml");
    let out = nfv().args(["check", good]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("ok: 2 port(s), 1 chain(s) with 3 stage(s), 2 worker(s)"));
    let dir = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../configs"));
    let sfc = dir.join("sfc");
    let files = [dir, sfc.as_path()].into_iter().flat_map(|d| std::fs::read_dir(d).unwrap().map(|e| e.unwrap().path()));
    // Paths files (`*-paths.toml`) are read by the forwarders, not configurations.
    for path in
        files.filter(|p| p.extension().is_some_and(|e| e == "toml") && !p.to_string_lossy().ends_with("-paths.toml"))
    {
        let out = nfv().arg("check").arg(&path).output().unwrap();
        assert!(out.status.success(), "{}: {}", path.display(), String::from_utf8_lossy(&out.stderr));
    }
    let bad = std::env::temp_dir().join(format!("nfv-bad-{}.toml", std::process::id()));
    std::fs::write(&bad, "[[ports]]\nname = 1\n").unwrap();
    let out = nfv().args(["check", bad.to_str().unwrap()]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains(":2:8") && err.contains("nothing started"), "{err}");
    let _ = std::fs::remove_file(bad);
}

#[test]
fn sigint_drains_and_prints_the_final_report() {
    let child = nfv()
        .args(["run", "--duration", "0", "--quiet"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let status = Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let start = Instant::now();
    let out = child.wait_with_output().unwrap();
    assert!(start.elapsed() < Duration::from_secs(10), "shutdown took {:?}", start.elapsed());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    for needle in ["ran ", "input", "ttl-decrement", "macswap", "counter", "dispatch", "gen0", "sink0"] {
        assert!(stdout.contains(needle), "missing {needle:?}:\n{stdout}");
    }
    // Drained: what the generator produced, the sink received.
    let grab = |label: &str| -> u64 {
        let line = stdout.lines().find(|l| l.starts_with("ran ")).unwrap();
        let at = line.find(label).unwrap() + label.len();
        line[at..].split_whitespace().next().unwrap().parse().unwrap()
    };
    assert_eq!(grab("rx "), grab("tx "), "{stdout}");
}

/// The packets of a replay's recording, each with the name of the port
/// that sent it (its pcapng interface).
fn recording(path: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    use pcap_file::pcapng::Block;
    use pcap_file::pcapng::blocks::interface_description::InterfaceDescriptionOption;
    let mut r = pcap_file::pcapng::PcapNgReader::new(std::fs::File::open(path).unwrap()).unwrap();
    let mut names = Vec::new();
    let mut out = Vec::new();
    while let Some(b) = r.next_block() {
        match b.unwrap() {
            Block::InterfaceDescription(i) => names.push(
                i.options
                    .iter()
                    .find_map(|o| match o {
                        InterfaceDescriptionOption::IfName(n) => Some(n.to_string()),
                        _ => None,
                    })
                    .unwrap_or_default(),
            ),
            Block::EnhancedPacket(p) => out.push((names[p.interface_id as usize].clone(), p.data.into_owned())),
            _ => {}
        }
    }
    out
}

#[test]
fn replay_command_records_what_each_port_transmits() {
    let dir = std::env::temp_dir().join(format!("nfv-cli-replay-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = concat!(env!("CARGO_MANIFEST_DIR"), "/../configs/quickstart.toml");
    let input = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/data/pcaps/tcpdump-tests/geneve.pcap");
    let output = dir.join("out.pcapng");
    let out = nfv().args(["replay", cfg, "--in", input, "--out", output.to_str().unwrap()]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    let packets = recording(&output);
    let n = packets.len();
    assert!(packets.iter().all(|(port, _)| port == "sink0"), "the chain ends in sink0");
    assert!(n > 0 && stdout.contains(&format!("tx {n} packets")), "{n} packets; {stdout}");
    // Arriving on the port named: gen0 owns 192.0.2.1 in the quickstart.
    let bad = nfv().args(["replay", cfg, "--port", "sink9", "--in", input, "--out", "/dev/null"]).output().unwrap();
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(!bad.status.success() && err.contains("unknown port `sink9`; known ports: gen0, sink0"), "{err}");
    // A capture cut short: replayed up to where it ends, and a failure.
    let whole = std::fs::read(input).unwrap();
    let cut = dir.join("cut.pcap");
    std::fs::write(&cut, &whole[..whole.len() - 7]).unwrap();
    let out =
        nfv().args(["replay", cfg, "--in", cut.to_str().unwrap(), "--out", output.to_str().unwrap()]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a capture cut short fails the replay");
    assert!(err.contains("the capture on port `gen0` is cut short"), "{err}");
    assert_eq!(recording(&output).len(), n - 1, "every whole record before the cut replayed");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A capture on a full disk (`/dev/full`: every write is ENOSPC) is an
/// error, not a hang and not silence: the run finishes, the write errors
/// are counted, the first is said, and nfv exits 74 (EX_IOERR).
#[test]
fn a_capture_on_a_full_disk_ends_the_run_in_error_saying_why() {
    let dir = std::env::temp_dir().join(format!("nfv-full-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join("full.toml");
    std::fs::write(
        &cfg,
        "[[ports]]\nname = \"gen\"\nkind = \"generator\"\ncount = 20000\n\n\
         [[ports]]\nname = \"cap\"\nkind = \"pcap\"\noutput = \"/dev/full\"\n\n\
         [[chains]]\nname = \"pass\"\nstages = [{ kind = \"counter\" }]\nthen = \"cap\"\n\n\
         [[workers]]\nrx = [\"gen\"]\nchain = \"pass\"\n",
    )
    .unwrap();
    let t = Instant::now();
    let out = nfv().arg("run").arg(&cfg).arg("--quiet").output().unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(t.elapsed() < Duration::from_secs(20), "no hang: {:?}", t.elapsed());
    assert_eq!(out.status.code(), Some(74), "{stdout}\n{stderr}");
    assert!(stderr.contains("port cap") && stderr.contains("No space left on device"), "{stderr}");
    assert_eq!(stderr.matches("capture write failed").count(), 1, "said once, not per packet: {stderr}");
    assert!(stdout.contains("write-error"), "counted by reason in the report: {stdout}");
    let _ = std::fs::remove_dir_all(&dir);
}
