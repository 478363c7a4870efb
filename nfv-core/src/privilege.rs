//! Least privilege: the capabilities a configuration needs to start,
//! checked before anything is opened (a missing one is named, with what
//! needs it), and those dropped once the ports are open.
//!
//! Ports whose XSK map the AF_XDP device plugin hands over need only
//! CAP_NET_RAW and CAP_IPC_LOCK. Self-loading AF_XDP ports (nfv attaches
//! its XDP program, or libxdp's)
//! need CAP_NET_RAW (an AF_XDP socket, `xsk_create`), CAP_BPF and
//! CAP_NET_ADMIN (loading and attaching an XDP program), CAP_PERFMON (the
//! verifier allows pointer arithmetic with a checked variable offset,
//! `ip + tot_len`, only to a loader it trusts with Spectre v1:
//! `bypass_spec_v1`), and CAP_IPC_LOCK
//! unless the memlock limit is unlimited (the UMEM is pinned). Once the
//! ports are open only CAP_NET_ADMIN (the programs are detached at exit)
//! and CAP_NET_BIND_SERVICE are kept; everything else is dropped from the
//! permitted set, for good.
//! Pinning a thread within the process's own CPUs needs nothing.

use caps::{CapSet, Capability};

use crate::config::{Config, PortKind};

/// A capability a configuration needs, and what for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Need {
    /// The capability.
    pub cap: Capability,
    /// Why.
    pub why: &'static str,
}

/// What `cfg` needs to start.
pub fn needs(cfg: &Config) -> Vec<Need> {
    let af_xdp: Vec<&crate::config::AfXdpConfig> =
        cfg.ports.iter().filter_map(|p| if let PortKind::AfXdp(a) = &p.kind { Some(a) } else { None }).collect();
    if af_xdp.is_empty() {
        return Vec::new();
    }
    let mut v = vec![Need { cap: Capability::CAP_NET_RAW, why: "AF_XDP sockets" }];
    if !memlock_unlimited() {
        v.push(Need { cap: Capability::CAP_IPC_LOCK, why: "pinning the UMEM (or an unlimited memlock limit)" });
    }
    // Ports whose XSK map the AF_XDP device plugin hands over load nothing.
    if af_xdp.iter().all(|a| a.xsk_map_socket.is_some()) {
        return v;
    }
    v.extend([
        Need { cap: Capability::CAP_BPF, why: "loading the XDP program" },
        Need {
            cap: Capability::CAP_PERFMON,
            why: "the XDP program's checked packet-pointer arithmetic (the verifier's Spectre v1 rules refuse it \
                  without)",
        },
        Need { cap: Capability::CAP_NET_ADMIN, why: "attaching the XDP program to the ports" },
    ]);
    v
}

/// Whether nfv loads an XDP program itself (a port without the device
/// plugin's map): CAP_NET_ADMIN is then kept to detach it at exit.
pub fn self_loading(cfg: &Config) -> bool {
    cfg.ports.iter().any(|p| matches!(&p.kind, PortKind::AfXdp(a) if a.xsk_map_socket.is_none()))
}

fn memlock_unlimited() -> bool {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: a valid out-pointer.
    unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut lim) == 0 && lim.rlim_cur == libc::RLIM_INFINITY }
}

/// Checks the effective set against what `cfg` needs: an error names
/// every capability missing and what needs it.
pub fn check(cfg: &Config) -> Result<(), String> {
    let have = caps::read(None, CapSet::Effective).map_err(|e| format!("cannot read capabilities: {e}"))?;
    let missing: Vec<String> =
        needs(cfg).into_iter().filter(|n| !have.contains(&n.cap)).map(|n| format!("{} ({})", n.cap, n.why)).collect();
    if missing.is_empty() {
        return Ok(());
    }
    Err(format!(
        "missing capabilit{} {}: nothing started (a pod's securityContext.capabilities.add, or setcap on the \
         binary; see deploy/README.md)",
        if missing.len() == 1 { "y" } else { "ies" },
        missing.join(", ")
    ))
}

/// Once the ports are open: keeps CAP_NET_ADMIN if asked (nfv's programs
/// are detached at exit) and CAP_NET_BIND_SERVICE (a management endpoint on a
/// low port binds after) where they are held, drops every other
/// capability from the calling thread's effective, permitted, inheritable
/// and ambient sets (capabilities are per thread: call it before starting
/// the others). Returns what was dropped.
pub fn drop_after_start(keep_net_admin: bool) -> Result<Vec<Capability>, String> {
    let permitted = caps::read(None, CapSet::Permitted).map_err(|e| e.to_string())?;
    let keep =
        |c: &Capability| *c == Capability::CAP_NET_BIND_SERVICE || (keep_net_admin && *c == Capability::CAP_NET_ADMIN);
    let dropped: Vec<Capability> = permitted.iter().filter(|c| !keep(c)).copied().collect();
    let kept: caps::CapsHashSet = permitted.iter().filter(|c| keep(c)).copied().collect();
    caps::clear(None, CapSet::Ambient).map_err(|e| format!("clearing ambient capabilities: {e}"))?;
    caps::set(None, CapSet::Inheritable, &caps::CapsHashSet::new())
        .map_err(|e| format!("clearing inheritable capabilities: {e}"))?;
    caps::set(None, CapSet::Effective, &kept).map_err(|e| format!("dropping effective capabilities: {e}"))?;
    caps::set(None, CapSet::Permitted, &kept).map_err(|e| format!("dropping permitted capabilities: {e}"))?;
    let mut dropped = dropped;
    dropped.sort_by_key(|c| c.index());
    Ok(dropped)
}
