//! `nfv hw probe` on the veth bed against `ethtool` (the kernel's own
//! tool, reading the same device): driver, channel maxima and the ntuple
//! feature agree; the probed profile is one `nfv check` accepts; a port
//! declaring a NIC its interface is not gets its disagreements told at
//! start.
#![cfg(feature = "af-xdp")]

mod common;

use std::process::Command;

use common::testbed::{TestBed, privileged};

/// The value after `label` on the first line that has it (`ethtool`'s
/// `Key:\tvalue` layout).
fn field<'a>(text: &'a str, label: &str) -> &'a str {
    text.lines().find_map(|l| l.trim().strip_prefix(label)).map_or("", str::trim)
}

#[test]
fn a_probe_of_a_veth_port_agrees_with_ethtool_and_loads_as_a_profile() {
    if !privileged("a_probe_of_a_veth_port_agrees_with_ethtool_and_loads_as_a_profile") {
        return;
    }
    let bed = TestBed::up("line", 2);
    let nfv = env!("CARGO_BIN_EXE_nfv");
    let probed = bed.exec("dut", &[nfv, "hw", "probe", "d0"]);
    let profile =
        nfv_core::hwprofile::Profile::parse("probed.toml", &probed).unwrap_or_else(|e| panic!("{e}\n{probed}"));
    let info = bed.exec("dut", &["ethtool", "-i", "d0"]);
    assert_eq!(profile.identity.drivers, [field(&info, "driver:")], "{info}");
    let channels = bed.exec("dut", &["ethtool", "-l", "d0"]);
    let rx_max: u32 = field(&channels, "RX:").parse().unwrap_or_else(|_| panic!("{channels}"));
    assert_eq!(profile.limits.max_queues, Some(rx_max), "{channels}\n{probed}");
    let features = bed.exec("dut", &["ethtool", "-k", "d0"]);
    assert_eq!(profile.steering.ntuple, field(&features, "ntuple-filters:").starts_with("on"), "{features}");
    assert!(profile.af_xdp.native_xdp && !profile.af_xdp.zero_copy, "veth: native XDP, copy mode: {probed}");

    // The probed file is a profile a port can name; e810 is not what d0 is.
    let dir = std::env::temp_dir().join(format!("nfv-hw-probe-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("d0.toml"), &probed).unwrap();
    let config = |profile: &str| {
        format!(
            "[management]\nlisten = \"off\"\nsocket = \"off\"\n\n\
             [[ports]]\nname = \"d0\"\nkind = \"af-xdp\"\ninterface = \"d0\"\nqueues = 2\nprofile = \"{profile}\"\n\n\
             [[chains]]\nname = \"c\"\nstages = [{{ kind = \"macswap\" }}]\nthen = \"ingress\"\n\n\
             [[workers]]\nrx = [\"d0:0\"]\nchain = \"c\"\n"
        )
    };
    std::fs::write(dir.join("probed.toml"), config("d0.toml")).unwrap();
    let check = Command::new(nfv).arg("check").arg(dir.join("probed.toml")).output().unwrap();
    assert!(check.status.success(), "{}", String::from_utf8_lossy(&check.stderr));
    std::fs::write(dir.join("e810.toml"), config("e810")).unwrap();
    let run =
        bed.exec_output("dut", &[nfv, "run", dir.join("e810.toml").to_str().unwrap(), "--duration", "0.5", "--quiet"]);
    let log = String::from_utf8_lossy(&run.stderr);
    assert!(log.contains("nfv: WARNING: port `d0`: profile `e810` says AF_XDP zero-copy; d0 has none"), "{log}");
    let _ = std::fs::remove_dir_all(&dir);
}
