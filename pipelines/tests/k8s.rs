//! The Kubernetes manifests (`deploy/k8s`): every overlay, one per
//! configuration in `configs/`, renders offline with `kubectl kustomize`,
//! validates strictly against the schemas of Kubernetes 1.32
//! (`kubernetes-validate`, PyPI), and passes what a CNF reviewer checks:
//! no privileged container, no host namespaces, capabilities dropped and
//! added by name, requests equal to limits with integer CPUs, the three
//! probes, a read-only root filesystem, the recommended labels; the
//! networks the pod asks for exist, one VF requested for each, named as
//! the chain's ports name their interfaces; the ConfigMap holds the
//! configuration as shipped, which `nfv check` accepts; the
//! ServiceMonitor selects the metrics Service by a port it has.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

const KUBERNETES: &str = "1.32.0";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn venv() -> PathBuf {
    let target = std::env::var("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|_| root().join("target"));
    target.join("tools/venv/bin")
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The rendered objects of `overlay`, as JSON (PyYAML, which
/// kubernetes-validate brings, reads kubectl's YAML).
fn objects(yaml: &Path) -> Vec<Value> {
    let py = "import json, sys, yaml; print(json.dumps([d for d in yaml.safe_load_all(open(sys.argv[1])) if d]))";
    let json = run(Command::new(venv().join("python")).args(["-c", py]).arg(yaml));
    serde_json::from_str(&json).unwrap()
}

fn find<'a>(objs: &'a [Value], kind: &str) -> Vec<&'a Value> {
    objs.iter().filter(|o| o["kind"] == kind).collect()
}

#[test]
fn every_overlay_renders_validates_and_passes_a_cnf_review() {
    let validate = venv().join("kubernetes-validate");
    let tools: &[&[&str]] = &[&["kubectl", "version", "--client"], &[validate.to_str().unwrap(), "--version"]];
    if !nfv_testkit::tools_or_skip("every_overlay_renders_validates_and_passes_a_cnf_review", tools) {
        return;
    }
    run(Command::new("bash").arg(root().join("deploy/k8s/overlays.sh")).arg("--check"));
    let overlays = root().join("deploy/k8s/overlays");
    let work = std::env::temp_dir().join(format!("nfv-k8s-{}", std::process::id()));
    std::fs::create_dir_all(&work).unwrap();
    let mut names: Vec<String> =
        std::fs::read_dir(&overlays).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    assert_eq!(names.len(), 14, "one overlay per configuration: {names:?}");
    for name in &names {
        let yaml = work.join(format!("{name}.yaml"));
        std::fs::write(&yaml, run(Command::new("kubectl").arg("kustomize").arg(overlays.join(name)))).unwrap();
        let said = run(Command::new(&validate).args(["-k", KUBERNETES, "--strict"]).arg(&yaml));
        for kind in ["deployment", "service", "configmap"] {
            assert!(said.contains(&format!("passed for resource {kind}/{name}-")), "{name}: {kind}\n{said}");
        }
        review(name, &objects(&yaml), &work);
    }
    let _ = std::fs::remove_dir_all(work);
}

/// A CNF reviewer's checks of one overlay's objects.
fn review(name: &str, objs: &[Value], work: &Path) {
    let deployments = find(objs, "Deployment");
    assert_eq!(deployments.len(), 1, "{name}");
    let d = deployments[0];
    let pod = &d["spec"]["template"];
    let spec = &pod["spec"];
    for host in ["hostNetwork", "hostPID", "hostIPC"] {
        assert!(spec[host].is_null() || spec[host] == false, "{name}: {host}");
    }
    for (what, labels) in [("deployment", &d["metadata"]["labels"]), ("pod", &pod["metadata"]["labels"])] {
        for l in ["name", "instance", "component", "part-of", "managed-by"] {
            assert!(labels[format!("app.kubernetes.io/{l}")].is_string(), "{name}: {what} label {l}");
        }
    }
    assert_eq!(d["metadata"]["labels"]["app.kubernetes.io/instance"], name);
    let c = &spec["containers"][0];
    let sc = &c["securityContext"];
    assert_ne!(sc["privileged"], true, "{name}");
    assert_eq!(
        (&sc["allowPrivilegeEscalation"], &sc["readOnlyRootFilesystem"]),
        (&Value::from(false), &Value::from(true))
    );
    assert_eq!(sc["capabilities"]["drop"], serde_json::json!(["ALL"]), "{name}");
    let add: Vec<&str> = sc["capabilities"]["add"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    assert_eq!(add, ["NET_RAW", "NET_ADMIN", "BPF", "PERFMON", "IPC_LOCK"], "{name}: explicit, nothing more");
    let (req, lim) = (&c["resources"]["requests"], &c["resources"]["limits"]);
    assert_eq!(req, lim, "{name}: Guaranteed QoS");
    let cpu = req["cpu"].as_str().unwrap();
    assert!(cpu.parse::<u32>().is_ok_and(|n| n >= 2), "{name}: integer CPUs, not {cpu}");
    for p in ["startupProbe", "livenessProbe", "readinessProbe"] {
        assert!(c[p]["httpGet"]["path"].is_string(), "{name}: {p}");
    }
    // The networks asked for exist, a VF each, named as the ports' interfaces.
    let nets: Vec<Value> =
        serde_json::from_str(pod["metadata"]["annotations"]["k8s.v1.cni.cncf.io/networks"].as_str().unwrap()).unwrap();
    if !nets.is_empty() {
        let huge = req["hugepages-2Mi"].as_str().unwrap_or_else(|| panic!("{name}: huge pages for the frames"));
        assert!(huge.ends_with("Mi"), "{name}: {huge}");
    }
    let nads = find(objs, "NetworkAttachmentDefinition");
    assert_eq!(nets.len(), nads.len(), "{name}");
    for n in &nets {
        let nad = nads.iter().find(|a| a["metadata"]["name"] == n["name"]).unwrap_or_else(|| panic!("{name}: {n}"));
        let resource = nad["metadata"]["annotations"]["k8s.v1.cni.cncf.io/resourceName"].as_str().unwrap();
        assert_eq!(req[resource], Value::from(nets.len().to_string()), "{name}: a VF per network");
        let cni: Value = serde_json::from_str(nad["spec"]["config"].as_str().unwrap()).unwrap();
        assert_eq!(cni["type"], "sriov", "{name}");
    }
    // The configuration as shipped, accepted by nfv check (in a directory
    // of the ConfigMap's files, as the pod mounts it).
    let cms = find(objs, "ConfigMap");
    let data = cms[0]["data"].as_object().unwrap();
    let shipped = match name.strip_prefix("sfc-") {
        Some(s) => root().join("configs/sfc").join(format!("{s}.toml")),
        None => root().join("configs").join(format!("{name}.toml")),
    };
    assert_eq!(data["nfv.toml"].as_str().unwrap(), std::fs::read_to_string(&shipped).unwrap(), "{name}");
    let dir = work.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    for (f, text) in data {
        std::fs::write(dir.join(f), text.as_str().unwrap()).unwrap();
    }
    let interfaces: Vec<String> = nets.iter().map(|n| n["interface"].as_str().unwrap().to_string()).collect();
    let config = data["nfv.toml"].as_str().unwrap();
    for i in &interfaces {
        assert!(config.contains(&format!("interface = \"{i}\"")), "{name}: a port on {i}");
    }
    run(Command::new(env!("CARGO_BIN_EXE_nfv")).arg("check").arg(dir.join("nfv.toml")));
    // The ServiceMonitor selects the Service by its labels and a port it has.
    let svc = find(objs, "Service")[0];
    let sm = find(objs, "ServiceMonitor")[0];
    for (k, v) in sm["spec"]["selector"]["matchLabels"].as_object().unwrap() {
        assert_eq!(&svc["metadata"]["labels"][k], v, "{name}: the ServiceMonitor's selector");
    }
    let port = &sm["spec"]["endpoints"][0]["port"];
    assert!(svc["spec"]["ports"].as_array().unwrap().iter().any(|p| &p["name"] == port), "{name}");
}
