//! The security defaults SECURITY.md promises, on a running nfv (root):
//! capabilities dropped once the ports are open, management on loopback
//! unless told otherwise.
#![cfg(feature = "af-xdp")]

mod common;

use common::testbed::{TestBed, privileged};

/// A capability set's bits from /proc/PID/status (`CapPrm:` etc.).
fn caps(pid: u32, set: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let hex = status.lines().find_map(|l| l.strip_prefix(&format!("{set}:"))).expect("a capability line");
    u64::from_str_radix(hex.trim(), 16).unwrap()
}

#[test]
fn a_running_nfv_keeps_only_net_admin_and_net_bind_service_and_listens_on_loopback() {
    if !privileged("a_running_nfv_keeps_only_net_admin_and_net_bind_service_and_listens_on_loopback") {
        return;
    }
    let bed = TestBed::up("line", 1);
    let src = "[run]\nstats-interval = 0\n\n\
               [[ports]]\nname = \"d0\"\nkind = \"af-xdp\"\ninterface = \"d0\"\n\n\
               [[ports]]\nname = \"d1\"\nkind = \"af-xdp\"\ninterface = \"d1\"\n\n\
               [[chains]]\nname = \"xc\"\nstages = [{ kind = \"l2-patch\", pairs = [[\"d0\", \"d1\"]] }]\n\n\
               [[workers]]\ncore = 1\nrx = [\"d0\", \"d1\"]\nchain = \"xc\"\n";
    let dut = bed.start_nfv(src, 2);
    // linux/capability.h: CAP_NET_BIND_SERVICE 10, CAP_NET_ADMIN 12.
    let kept = 1u64 << 10 | 1 << 12;
    // Dropped once the ports are open, which the start-up notes precede.
    let t = std::time::Instant::now();
    while caps(dut.pid(), "CapPrm") & !kept != 0 && t.elapsed() < std::time::Duration::from_secs(10) {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let (prm, eff) = (caps(dut.pid(), "CapPrm"), caps(dut.pid(), "CapEff"));
    assert_eq!(prm & !kept, 0, "permitted {prm:#x}: only NET_ADMIN and NET_BIND_SERVICE may stay");
    assert_eq!(eff & !kept, 0, "effective {eff:#x}");
    assert!(prm & (1 << 12) != 0, "NET_ADMIN kept: the XDP programs are detached at exit");
    // Management: the default address is loopback.
    let mut listening = bed.exec("dut", &["ss", "-Htln"]);
    while !listening.contains(":9464") && t.elapsed() < std::time::Duration::from_secs(10) {
        std::thread::sleep(std::time::Duration::from_millis(50));
        listening = bed.exec("dut", &["ss", "-Htln"]);
    }
    assert!(listening.contains("127.0.0.1:9464"), "{listening}");
    assert!(!listening.contains("0.0.0.0:9464") && !listening.contains("*:9464"), "{listening}");
    let report = dut.stop();
    assert!(report.text.contains("d0"), "{}", report.text);
}
