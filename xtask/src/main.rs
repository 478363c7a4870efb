//! `cargo xtask run|test|bench|report|setup`: the README's commands. Each makes
//! sure what the project needs from the system is there (installing
//! missing Debian packages idempotently when run as root), then builds and
//! runs with cargo.

mod fuzz;

use std::process::{Command, ExitCode};

/// Debian packages the build and the test suite need, with the reason.
/// Checked with `dpkg -s`; only missing ones are installed.
const PACKAGES: &[(&str, &str)] = &[
    ("clang", "libxdp-sys compiles libxdp's XDP programs and runs bindgen (libclang)"),
    ("llvm", "libxdp's build strips and links BPF objects"),
    ("m4", "libxdp's build generates sources with m4"),
    ("libelf-dev", "libbpf (under libxdp) reads BPF ELF objects"),
    ("zlib1g-dev", "libbpf links zlib"),
    ("pkg-config", "the C dependencies are found through pkg-config"),
    ("make", "libbpf-sys builds libbpf with make"),
    ("iproute2", "the AF_XDP test bed creates namespaces and veth pairs with ip"),
    ("nftables", "nfv bench's kernel baselines (masquerade, filter, DNAT) and the live tests' firewalls"),
    ("iputils-ping", "live tests ping through the device under test"),
    ("netcat-openbsd", "live tests move TCP data through the device under test with nc"),
    ("ethtool", "the test bed turns off checksum offload on veths feeding the device under test"),
    ("dpdk-dev", "dpdk-testpmd (AF_XDP forwarding baseline) and dpdk-test-acl (ACL baseline)"),
    ("librte-net-af-xdp23", "DPDK's AF_XDP poll-mode driver for dpdk-testpmd --vdev net_af_xdp"),
    ("python3-scapy", "VXLAN/Geneve tests compare with scapy's decoding (and build Geneve peers with it)"),
    ("tshark", "protocol tests check our packets against Wireshark's dissectors"),
    ("valgrind", "callgrind counts instructions per packet (benches/loop-cost.sh)"),
    ("traceroute", "the NAT live test traces a route through the NAT (ICMP errors translated back)"),
    ("curl", "the NAT live test fetches over HTTP through the NAT; the management tests scrape /metrics"),
    ("conntrack", "nfv bench flushes the kernel baselines' conntrack table between DUTs"),
    ("fonts-dejavu-core", "nfv bench's report lays out its plots' text in DejaVu Sans"),
    ("graphviz", "`nfv graph --dot` output is checked by Graphviz's dot"),
    ("prometheus", "the management test has a real Prometheus server scrape a running nfv"),
    ("buildah", "deploy/build-image.sh commits the runtime image from scratch (tested)"),
    ("kubectl", "deploy/k8s is rendered with kubectl kustomize (tested)"),
    ("python3-venv", "kubernetes-validate (PyPI) validates the rendered manifests in a venv"),
];

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (task, rest) = match args.split_first() {
        Some((t, r)) => (t.as_str(), r.to_vec()),
        None => ("help", Vec::new()),
    };
    let ok = match task {
        "setup" => setup(),
        "run" => {
            setup()
                && cargo(
                    &[
                        &["run", "--release", "-q", "-p", "nfv-pipelines", "--bin", "nfv", "--", "run"],
                        &strs(&rest)[..],
                    ]
                    .concat(),
                )
        }
        "test" => {
            setup()
                && cargo(&["fmt", "--all", "--", "--check"])
                && cargo(&["clippy", "--workspace", "--all-targets", "-q", "--", "-D", "warnings"])
                && cargo(&[&["test", "--workspace"], &strs(&rest)[..]].concat())
                // Every fuzz target a few seconds (the long runs: cargo xtask fuzz).
                && fuzz::fuzz(&["--seconds".into(), "5".into(), "--jobs".into(), "2".into()])
        }
        "fuzz" => setup() && fuzz::fuzz(&rest),
        "bench" => setup() && cargo(&[&["bench", "-p", "nfv-benches"], &strs(&rest)[..]].concat()),
        // benches/REPORT.md, regenerated: the full run unless --quick.
        "report" => {
            let mode: &[&str] = if rest.iter().any(|a| a == "--quick") { &[] } else { &["--full"] };
            let extra: Vec<&str> = rest.iter().filter(|a| *a != "--quick").map(String::as_str).collect();
            let target = std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".into());
            let nfv = format!("{target}/release/nfv");
            setup()
                && cargo(&["build", "--release", "-q", "-p", "nfv-pipelines", "--bin", "nfv"])
                && run(&[
                    &[nfv.as_str(), "bench"],
                    mode,
                    &["--out", "benches/report", "--report", "benches/REPORT.md"],
                    &extra[..],
                ]
                .concat())
        }
        _ => {
            eprintln!(
                "usage: cargo xtask <setup|run [nfv run args]|test [cargo test args]|bench [criterion args]|report [--quick] [nfv bench args]|fuzz [TARGET ...] [--seconds N] [--jobs N]>"
            );
            return ExitCode::from(2);
        }
    };
    if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

fn run(args: &[&str]) -> bool {
    eprintln!("xtask: {}", args.join(" "));
    Command::new(args[0]).args(&args[1..]).status().is_ok_and(|s| s.success())
}

fn cargo(args: &[&str]) -> bool {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    eprintln!("xtask: cargo {}", args.join(" "));
    Command::new(cargo).args(args).status().is_ok_and(|s| s.success())
}

/// Python tools from PyPI the test suite needs, pinned, in a venv under
/// the target directory (Debian's Python takes no pip installs).
const PYPI: &[(&str, &str)] =
    &[("kubernetes-validate==1.37.0", "deploy/k8s's rendered manifests are validated against Kubernetes' schemas")];

/// Installs missing Debian packages (root only; otherwise says what to
/// run), then the PyPI tools into `target/tools/venv`.
fn setup() -> bool {
    debian() && pypi()
}

fn pypi() -> bool {
    let target = std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".into());
    let venv = std::path::Path::new(&target).join("tools/venv");
    let pip = venv.join("bin/pip");
    let have = |spec: &str| {
        let name = spec.split("==").next().unwrap_or(spec);
        Command::new(&pip).args(["show", "-q", name]).output().is_ok_and(|o| o.status.success())
    };
    if PYPI.iter().all(|(spec, _)| have(spec)) {
        return true;
    }
    if !pip.exists() && !Command::new("python3").args(["-m", "venv"]).arg(&venv).status().is_ok_and(|s| s.success()) {
        eprintln!("xtask: cannot create the venv {}", venv.display());
        return false;
    }
    PYPI.iter().filter(|(spec, _)| !have(spec)).all(|(spec, why)| {
        eprintln!("xtask: installing {spec} from PyPI: {why}");
        Command::new(&pip).args(["install", "-q", spec]).status().is_ok_and(|s| s.success())
    })
}

fn debian() -> bool {
    let missing: Vec<&str> = PACKAGES
        .iter()
        .filter(|(p, _)| !Command::new("dpkg").args(["-s", p]).output().is_ok_and(|o| o.status.success()))
        .map(|(p, _)| *p)
        .collect();
    if missing.is_empty() {
        return true;
    }
    for (p, why) in PACKAGES.iter().filter(|(p, _)| missing.contains(p)) {
        eprintln!("xtask: installing {p}: {why}");
    }
    let is_root = Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.starts_with(b"0"));
    if !is_root {
        eprintln!("xtask: not root; run: sudo apt-get install -y {}", missing.join(" "));
        return false;
    }
    let apt = |args: &[&str]| {
        Command::new("apt-get").args(args).env("DEBIAN_FRONTEND", "noninteractive").status().is_ok_and(|s| s.success())
    };
    apt(&["update", "-q"]) && apt(&[&["install", "-y", "-q", "--no-install-recommends"], &missing[..]].concat())
}
