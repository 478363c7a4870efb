//! The veth bed a run measures on, built and removed by the run itself:
//!
//! ```text
//!   PREFIX-tg [g0] <-> [d0] PREFIX-dut [d1] <-> [s0] PREFIX-tg
//! ```
//!
//! The traffic generator's namespace holds both ends, as a TRex or
//! testpmd box holds both ports: the generator sends out of g0, the
//! receiver listens on s0 (XDP, so the namespace's stack never sees the
//! frames). The device under test gets d0 and d1 and nothing else: no
//! addresses (each DUT's setup adds its own), no IPv6 (no router
//! solicitations among the frames), no TX checksum offload (AF_XDP
//! forwards frames as they are, see ../shared/TESTBED.md). d1 and s0 have
//! an MTU of 1600, room for a VXLAN VTEP's 50 octets around a full frame.
//!
//! On a veth, a frame's receive work runs on the CPU that sent it: the
//! generator's core also carries d0's XDP program and the kernel's
//! forwarding; the DUT's transmit carries s0's receiver.

use std::process::Command;

/// The bed, removed on drop.
pub struct Bed {
    /// Namespace names' prefix.
    pub prefix: String,
    /// MAC addresses of g0, d0, d1, s0.
    pub macs: Macs,
}

/// The bed's MAC addresses.
#[derive(Clone, Debug, Default)]
pub struct Macs {
    /// The generator's port.
    pub g0: [u8; 6],
    /// The DUT's port toward the generator.
    pub d0: [u8; 6],
    /// The DUT's port toward the receiver.
    pub d1: [u8; 6],
    /// The receiver's port.
    pub s0: [u8; 6],
}

/// Runs `args` (a program and its arguments), its standard output, or
/// what it said when it failed.
pub fn run(args: &[&str]) -> Result<String, String> {
    let out = Command::new(args[0]).args(&args[1..]).output().map_err(|e| format!("{}: {e}", args[0]))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!("`{}` failed: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim()))
    }
}

/// Formats a MAC address.
pub fn mac_text(m: &[u8; 6]) -> String {
    m.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":")
}

/// An interface's MAC address, from sysfs (this namespace's view).
pub fn interface_mac(name: &str) -> Result<[u8; 6], String> {
    let path = format!("/sys/class/net/{name}/address");
    parse_mac(&std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?)
}

fn parse_mac(s: &str) -> Result<[u8; 6], String> {
    let v: Vec<u8> = s.trim().split(':').filter_map(|x| u8::from_str_radix(x, 16).ok()).collect();
    v.try_into().map_err(|_| format!("not a MAC address: {s}"))
}

impl Bed {
    /// The traffic generator's namespace.
    pub fn tg(&self) -> String {
        format!("{}-tg", self.prefix)
    }

    /// The DUT's namespace.
    pub fn dut(&self) -> String {
        format!("{}-dut", self.prefix)
    }

    /// Runs `args` in namespace `ns`.
    pub fn in_ns(ns: &str, args: &[&str]) -> Result<String, String> {
        let mut all = vec!["ip", "netns", "exec", ns];
        all.extend_from_slice(args);
        run(&all)
    }

    /// Runs `args` in the DUT's namespace.
    pub fn dut_run(&self, args: &[&str]) -> Result<String, String> {
        Self::in_ns(&self.dut(), args)
    }

    /// Builds the bed (removing what an earlier run with the same prefix
    /// left; a failed build is removed too, by the drop).
    pub fn up(prefix: &str) -> Result<Self, String> {
        let mut bed = Self { prefix: prefix.to_string(), macs: Macs::default() };
        bed.remove();
        bed.build()?;
        let mac = |ns: &str, i: &str| -> Result<[u8; 6], String> {
            parse_mac(&Self::in_ns(ns, &["cat", &format!("/sys/class/net/{i}/address")])?)
        };
        bed.macs = Macs {
            g0: mac(&bed.tg(), "g0")?,
            d0: mac(&bed.dut(), "d0")?,
            d1: mac(&bed.dut(), "d1")?,
            s0: mac(&bed.tg(), "s0")?,
        };
        Ok(bed)
    }

    fn build(&self) -> Result<(), String> {
        let (tg, dut) = (self.tg(), self.dut());
        for ns in [&tg, &dut] {
            run(&["ip", "netns", "add", ns])?;
            Self::in_ns(ns, &["ip", "link", "set", "lo", "up"])?;
        }
        run(&["ip", "link", "add", "g0", "netns", &tg, "type", "veth", "peer", "d0", "netns", &dut])?;
        run(&[
            "ip", "link", "add", "d1", "netns", &dut, "mtu", "1600", "type", "veth", "peer", "s0", "netns", &tg, "mtu",
            "1600",
        ])?;
        for (ns, i) in [(&tg, "g0"), (&dut, "d0"), (&dut, "d1"), (&tg, "s0")] {
            Self::in_ns(ns, &["sysctl", "-qw", &format!("net.ipv6.conf.{i}.disable_ipv6=1")])?;
            Self::in_ns(ns, &["ethtool", "-K", i, "tx", "off"])?;
            let _ = Self::in_ns(ns, &["ethtool", "-K", i, "tso", "off", "gso", "off", "gro", "off"]);
            Self::in_ns(ns, &["ip", "link", "set", i, "up"])?;
        }
        Ok(())
    }

    /// Deletes the namespaces (and so their veths).
    pub fn remove(&self) {
        for ns in [self.tg(), self.dut()] {
            let _ = run(&["ip", "netns", "del", &ns]);
        }
    }

    /// Moves the calling thread into the generator's namespace (the
    /// generator and receiver find g0 and s0 there).
    pub fn enter_tg(&self) -> Result<(), String> {
        enter(&format!("/var/run/netns/{}", self.tg()))
    }

    /// Runs `f` with the calling thread in the DUT's namespace (to attach
    /// a program to d0), then moves it back.
    pub fn in_dut<T>(&self, f: impl FnOnce() -> T) -> Result<T, String> {
        let back =
            std::fs::File::open("/proc/thread-self/ns/net").map_err(|e| format!("this thread's namespace: {e}"))?;
        enter(&format!("/var/run/netns/{}", self.dut()))?;
        let t = f();
        // SAFETY: a network namespace's file descriptor, open.
        if unsafe { libc::setns(std::os::fd::AsRawFd::as_raw_fd(&back), libc::CLONE_NEWNET) } != 0 {
            return Err(format!("back from {}: {}", self.dut(), std::io::Error::last_os_error()));
        }
        Ok(t)
    }
}

/// Moves the calling thread into the network namespace at `path`.
fn enter(path: &str) -> Result<(), String> {
    let f = std::fs::File::open(path).map_err(|e| format!("{path}: {e}"))?;
    // SAFETY: a network namespace's file descriptor, open.
    let rc = unsafe { libc::setns(std::os::fd::AsRawFd::as_raw_fd(&f), libc::CLONE_NEWNET) };
    if rc != 0 {
        return Err(format!("entering {path}: {}", std::io::Error::last_os_error()));
    }
    Ok(())
}

impl Drop for Bed {
    fn drop(&mut self) {
        self.remove();
    }
}
