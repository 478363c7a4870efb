//! A pod played on the veth bed: `nfv` in the DUT namespace as user
//! nobody with exactly the self-loading capability set (setpriv: bounding,
//! inheritable and ambient sets named), its ports found by pod discovery
//! from a network-status file naming the veths (as Multus writes it),
//! carrying the kernel's ping and ARP across; and the same run with one
//! capability less refused with that capability named.
#![cfg(feature = "af-xdp")]

mod common;

use std::os::unix::fs::PermissionsExt;

use common::testbed::{TestBed, privileged};

/// What a pod that loads its own XDP program is given.
const CAPS: [&str; 5] = ["net_raw", "net_admin", "bpf", "perfmon", "ipc_lock"];

fn setpriv(caps: &[&str]) -> Vec<String> {
    let set = |sign: &str| {
        std::iter::once("-all".to_string())
            .chain(caps.iter().map(|c| format!("{sign}{c}")))
            .collect::<Vec<_>>()
            .join(",")
    };
    vec![
        "setpriv".into(),
        "--reuid=65534".into(),
        "--regid=65534".into(),
        "--clear-groups".into(),
        format!("--inh-caps={}", set("+")),
        format!("--ambient-caps={}", set("+")),
        format!("--bounding-set={}", set("+")),
        "--".into(),
    ]
}

#[test]
fn a_least_privilege_pod_finds_its_ports_and_forwards_and_one_capability_less_is_named() {
    if !privileged("a_least_privilege_pod_finds_its_ports_and_forwards_and_one_capability_less_is_named")
        || !nfv_testkit::tools_or_skip("a_least_privilege_pod", &[&["setpriv", "--version"]])
    {
        return;
    }
    let bed = TestBed::up("line", 1);
    // The pod's files, readable by nobody: the downward-API directory and
    // the chain (a cross-connect, in nfv's XDP program).
    let dir = std::env::temp_dir().join(format!("nfv-pod-live-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("podinfo")).unwrap();
    let status = r#"[{"name":"cbr0","interface":"eth0","ips":["10.244.1.24"],"default":true,"dns":{}},
        {"name":"cnf/line-a","interface":"d0","ips":[],"mac":"","dns":{}},
        {"name":"cnf/line-b","interface":"d1","ips":[],"mac":"","dns":{}}]"#;
    std::fs::write(dir.join("podinfo/network-status"), status).unwrap();
    let config = format!(
        "[run]\nstats-interval = 0\n\n[management]\nsocket = \"{}/nfv.sock\"\n\n\
         [[ports]]\nname = \"a\"\nkind = \"af-xdp\"\ninterface = {{ network = \"line-a\" }}\n\n\
         [[ports]]\nname = \"b\"\nkind = \"af-xdp\"\ninterface = {{ network = \"line-b\" }}\n\n\
         [[chains]]\nname = \"xc\"\nstages = [{{ kind = \"l2-patch\", pairs = [[\"a\", \"b\"]] }}]\n\n\
         [[workers]]\nrx = [\"a\", \"b\"]\nchain = \"xc\"\n",
        dir.display()
    );
    let path = dir.join("pod.toml");
    std::fs::write(&path, &config).unwrap();
    for p in [dir.clone(), dir.join("podinfo")] {
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o777)).unwrap();
    }
    let podinfo = dir.join("podinfo");
    let env = [("NFV_PODINFO", podinfo.to_str().unwrap()), ("KUBERNETES_SERVICE_HOST", "10.96.0.1")];
    let wrapper = setpriv(&CAPS);
    let wrapper: Vec<&str> = wrapper.iter().map(String::as_str).collect();
    let dut = bed.start_nfv_as("dut", &path, 2, &wrapper, &env).unwrap_or_else(|e| panic!("{e}"));
    let said = dut.notes.join("\n");
    for want in [
        "nfv: pod: port `a`: network `cnf/line-a`: interface d0 (Multus network-status)",
        "nfv: pod: port `b`: network `cnf/line-b`: interface d1 (Multus network-status)",
    ] {
        assert!(said.contains(want), "no `{want}` in\n{said}");
    }
    bed.exec("gen", &["ping", "-c", "3", "-i", "0.2", "-W", "2", "10.0.0.2"]);
    let report = dut.stop();
    let dropped = "nfv: capabilities dropped after start: CAP_NET_RAW CAP_IPC_LOCK CAP_PERFMON CAP_BPF";
    assert!(report.log.contains(dropped), "{}", report.log);
    assert!(!said.contains("memlock limit"), "CAP_IPC_LOCK held: no memlock warning\n{said}");
    assert!(report.xdp().0 >= 6, "the pings and their answers crossed in XDP\n{}", report.text);
    for missing in CAPS {
        let fewer: Vec<&str> = CAPS.iter().copied().filter(|c| *c != missing).collect();
        let wrapper = setpriv(&fewer);
        let wrapper: Vec<&str> = wrapper.iter().map(String::as_str).collect();
        // (A run removes its configuration when it ends.)
        std::fs::write(&path, &config).unwrap();
        let err = match bed.start_nfv_as("dut", &path, 2, &wrapper, &env) {
            Ok(d) => panic!("started without {missing}: {:?}", d.notes),
            Err(e) => e,
        };
        let name = format!("CAP_{}", missing.to_uppercase());
        assert!(err.contains("missing capability") && err.contains(&name), "without {missing}:\n{err}");
    }
    let _ = std::fs::remove_dir_all(dir);
}

/// The AF_XDP device plugin's way: its program attached and its XSK maps
/// served over a UNIX socket (played by `nfv hw xsk-map-server`, as root);
/// nfv, as nobody with only NET_RAW and IPC_LOCK, puts its sockets in the
/// maps it is handed and carries ping across in its worker; without
/// NET_RAW it is refused with the capability named.
#[test]
fn with_the_device_plugins_xsk_map_a_pod_needs_only_net_raw_and_ipc_lock() {
    if !privileged("with_the_device_plugins_xsk_map_a_pod_needs_only_net_raw_and_ipc_lock")
        || !nfv_testkit::tools_or_skip("device_plugin_pod", &[&["setpriv", "--version"]])
    {
        return;
    }
    let bed = TestBed::up("line", 1);
    let dir = std::env::temp_dir().join(format!("nfv-pod-plugin-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    let sock = dir.join("afxdp.sock");
    let mut server = std::process::Command::new("ip")
        .args(["netns", "exec", &bed.ns("dut"), env!("CARGO_BIN_EXE_nfv"), "hw", "xsk-map-server", "d0", "d1"])
        .arg("--socket")
        .arg(&sock)
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !sock.exists() {
        assert!(std::time::Instant::now() < deadline, "the plugin's socket did not appear");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let config = format!(
        "[run]\nstats-interval = 0\n\n[management]\nsocket = \"{d}/nfv.sock\"\n\n\
         [[ports]]\nname = \"a\"\nkind = \"af-xdp\"\ninterface = \"d0\"\nxsk-map-socket = \"{s}\"\n\n\
         [[ports]]\nname = \"b\"\nkind = \"af-xdp\"\ninterface = \"d1\"\nxsk-map-socket = \"{s}\"\n\n\
         [[chains]]\nname = \"xc\"\nstages = [{{ kind = \"l2-patch\", pairs = [[\"a\", \"b\"]] }}]\n\n\
         [[workers]]\nrx = [\"a\", \"b\"]\nchain = \"xc\"\n",
        d = dir.display(),
        s = sock.display()
    );
    let path = dir.join("pod.toml");
    for (caps, ok) in [(&["net_raw", "ipc_lock"][..], true), (&["ipc_lock"][..], false)] {
        std::fs::write(&path, &config).unwrap();
        let wrapper = setpriv(caps);
        let wrapper: Vec<&str> = wrapper.iter().map(String::as_str).collect();
        match (bed.start_nfv_as("dut", &path, 2, &wrapper, &[]), ok) {
            (Ok(dut), true) => {
                let said = dut.notes.join("\n");
                assert!(said.contains("XSK map from the AF_XDP device plugin"), "{said}");
                assert!(said.contains("the AF_XDP device plugin's program"), "the plan says so\n{said}");
                bed.exec("gen", &["ping", "-c", "3", "-i", "0.2", "-W", "2", "10.0.0.2"]);
                let report = dut.stop();
                assert!(report.port("a").rx >= 3 && report.port("b").rx >= 3, "in the worker\n{}", report.text);
            }
            (Err(e), false) => {
                assert!(e.contains("missing capability CAP_NET_RAW (AF_XDP sockets)"), "{e}");
                assert!(!e.contains("CAP_BPF"), "nothing to load: {e}");
            }
            (Ok(d), false) => panic!("started without NET_RAW: {:?}", d.notes),
            (Err(e), true) => panic!("{e}"),
        }
    }
    // SAFETY: signalling our own child.
    unsafe { libc::kill(server.id() as i32, libc::SIGTERM) };
    assert!(server.wait().unwrap().success());
    assert!(!bed.exec("dut", &["ip", "link", "show", "d0"]).contains("prog/xdp"), "the plugin's program went with it");
    let _ = std::fs::remove_dir_all(dir);
}
