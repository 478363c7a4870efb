//! Pod discovery through the binary, as a pod's `nfv check --pod` and
//! start-up see it: ports naming a Multus attachment and device-plugin
//! resources found from the fixtures of `tests/pod/` (a downward-API
//! file, a sysfs tree) and the device plugins' environment; a port whose
//! device is not there is refused at its line, saying where nfv looked.

use std::path::{Path, PathBuf};
use std::process::Command;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/pod")
}

/// `nfv check --pod` on `config` in a pod whose downward-API directory
/// is `podinfo` (under the fixtures), with `vars` set.
fn check(config: &str, podinfo: &str, vars: &[(&str, &str)]) -> (bool, String, String) {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let file = std::env::temp_dir().join(format!("nfv-pod-{}-{n}.toml", std::process::id()));
    std::fs::write(&file, config).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_nfv"))
        .args(["check", "--pod"])
        .arg(&file)
        .env_clear()
        .env("NFV_PODINFO", fixtures().join(podinfo))
        .env("NFV_SYSFS", fixtures().join("sys"))
        .env("KUBERNETES_SERVICE_HOST", "10.96.0.1")
        .envs(vars.iter().copied())
        .output()
        .unwrap();
    let _ = std::fs::remove_file(file);
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const PORTS: &str = r#"
[[ports]]
name = "n3"
kind = "af-xdp"
interface = { network = "sriov-n3" }

[[ports]]
name = "n6"
kind = "af-xdp"
interface = { resource = "intel.com/sriov_n6" }

[[chains]]
name = "c"
stages = [{ kind = "macswap" }]
then = "ingress"

[[workers]]
rx = ["n3", "n6"]
chain = "c"
"#;

#[test]
fn ports_are_found_by_attachment_and_by_resource() {
    for podinfo in ["podinfo", "podinfo-all"] {
        let (ok, out, err) = check(PORTS, podinfo, &[("PCIDEVICE_INTEL_COM_SRIOV_N6", "0000:18:02.5")]);
        assert!(ok, "{podinfo}: {err}");
        for want in [
            "pod: yes",
            "cnf/sriov-n3             interface net1     ips 10.10.0.1 pci 0000:18:02.5",
            "device plugin: PCIDEVICE_INTEL_COM_SRIOV_N6 = 0000:18:02.5",
            "port `n3`: network `cnf/sriov-n3`: interface net1, PCI 0000:18:02.5 (Multus network-status)",
            "port `n6`: resource `intel.com/sriov_n6` #0: PCIDEVICE_INTEL_COM_SRIOV_N6 PCI 0000:18:02.5, interface \
             ens1f0v3 by sysfs",
            "ok: 2 port(s)",
            "worker 0 on ",
            "management and control on ",
        ] {
            assert!(out.contains(want), "{podinfo}: no `{want}` in\n{out}");
        }
    }
}

#[test]
fn an_af_xdp_device_plugin_pod_finds_its_devices() {
    let config = PORTS.replace("{ network = \"sriov-n3\" }", "{ resource = \"afxdp/pool1\", index = 1 }");
    let config = config.replace("intel.com/sriov_n6", "afxdp/pool1");
    let (ok, out, err) = check(&config, "podinfo", &[("AFXDP_DEVICES", "ens801f0v1 ens801f0v2")]);
    assert!(ok, "{err}");
    assert!(out.contains("port `n3`: resource `afxdp/pool1` #1: AFXDP_DEVICES interface ens801f0v2"), "{out}");
    assert!(out.contains("port `n6`: resource `afxdp/pool1` #0: AFXDP_DEVICES interface ens801f0v1"), "{out}");
}

#[test]
fn a_device_the_pod_lacks_is_refused_at_its_line_saying_where_nfv_looked() {
    // No PCIDEVICE variable: the SR-IOV device plugin did not allocate.
    let (ok, _, err) = check(PORTS, "podinfo", &[]);
    assert!(!ok);
    assert!(err.contains(":10:") && err.contains("no PCIDEVICE_INTEL_COM_SRIOV_N6 in the environment"), "{err}");
    assert!(err.contains("nfv check --pod"), "{err}");
    // A VF bound to vfio-pci has no netdev.
    let (ok, _, err) = check(PORTS, "podinfo", &[("PCIDEVICE_INTEL_COM_SRIOV_N6", "0000:18:02.6")]);
    assert!(!ok && err.contains("bound to vfio-pci"), "{err}");
    // No downward-API volume.
    let (ok, out, err) = check(PORTS, "nowhere", &[("PCIDEVICE_INTEL_COM_SRIOV_N6", "0000:18:02.5")]);
    assert!(!ok && err.contains(":5:") && err.contains("no Multus network-status"), "{err}");
    assert!(out.contains("network-status: none (looked for"), "{out}");
    // A table that names neither, or both.
    let both = PORTS.replace("{ network = \"sriov-n3\" }", "{ network = \"a\", resource = \"b/c\" }");
    let (ok, _, err) = check(&both, "podinfo", &[]);
    assert!(!ok && err.contains("by `network` or by `resource`, one of them"), "{err}");
}
