//! A stand-in for the AF_XDP device plugin for Kubernetes, for labs
//! without it and for tests (`nfv hw xsk-map-server`): attaches a program
//! that sends each queue's packets to the AF_XDP socket in its XSKMAP (as
//! the plugin's CNI does) to each interface, and hands each map to a pod
//! that asks over a UNIX socket, in the plugin's protocol (its
//! `internal/uds`: SOCK_SEQPACKET, `/connect, HOST` -> `/host_ok`,
//! `/version` -> `0.1`, `/xsk_map_fd, IFACE` -> `/fd_ack` with the map in
//! SCM_RIGHTS or `/fd_nak`, `/fin` -> `/fin_ack`). Every host is accepted:
//! the plugin checks the pod's name against the kubelet's pod resources,
//! which a lab has not.

use std::io::IoSlice;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use libbpf_sys as bpf;
use nix::sys::socket::{
    AddressFamily, ControlMessage, MsgFlags, SockFlag, SockType, UnixAddr, accept, bind, listen, recv, sendmsg, socket,
};

use crate::xdp::{Program, errno};

static OBJECT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/plugin.bpf.o"));

/// The program attached to one interface, detached when dropped.
struct Attached {
    program: Program,
    ifindex: u32,
    mode: u32,
}

impl Drop for Attached {
    fn drop(&mut self) {
        // SAFETY: detaches what `serve` attached, in the same mode.
        unsafe { bpf::bpf_xdp_detach(self.ifindex as i32, self.mode, std::ptr::null()) };
    }
}

fn attach(iface: &str) -> Result<Attached, String> {
    let c = std::ffi::CString::new(iface).map_err(|_| "an interface name with NUL".to_string())?;
    // SAFETY: a NUL-terminated name.
    let ifindex = unsafe { libc::if_nametoindex(c.as_ptr()) };
    if ifindex == 0 {
        return Err(format!("no interface `{iface}`"));
    }
    let program = Program::open(OBJECT, "nfv_plugin")?;
    let mut rc = 0;
    for mode in [bpf::XDP_FLAGS_DRV_MODE, bpf::XDP_FLAGS_SKB_MODE] {
        // SAFETY: a loaded program's fd; no options.
        rc = unsafe {
            bpf::bpf_xdp_attach(ifindex as i32, program.prog, mode | bpf::XDP_FLAGS_UPDATE_IF_NOEXIST, std::ptr::null())
        };
        if rc == 0 {
            return Ok(Attached { program, ifindex, mode });
        }
    }
    Err(errno(&format!("attaching the plugin's program to {iface}"), rc))
}

/// Attaches the program to `ifaces` and answers pods on `socket` (mode
/// 0777, as the plugin's socket is mounted into pods) until `stop`.
pub fn serve(ifaces: &[String], socket_path: &Path, stop: &Arc<AtomicBool>) -> Result<(), String> {
    let attached: Vec<(String, Attached)> =
        ifaces.iter().map(|i| attach(i).map(|a| (i.clone(), a))).collect::<Result<_, _>>()?;
    let maps: Vec<(String, RawFd)> =
        attached.iter().map(|(i, a)| a.program.map("xsks").map(|m| (i.clone(), m))).collect::<Result<_, _>>()?;
    let _ = std::fs::remove_file(socket_path);
    fn e(what: &'static str) -> impl Fn(nix::Error) -> String {
        move |err| format!("{what}: {err}")
    }
    let s = socket(AddressFamily::Unix, SockType::SeqPacket, SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK, None)
        .map_err(e("socket"))?;
    bind(s.as_raw_fd(), &UnixAddr::new(socket_path).map_err(e("socket path"))?).map_err(e("bind"))?;
    std::fs::set_permissions(socket_path, std::os::unix::fs::PermissionsExt::from_mode(0o777))
        .map_err(|err| err.to_string())?;
    listen(&s, nix::sys::socket::Backlog::new(8).map_err(e("listen"))?).map_err(e("listen"))?;
    while !stop.load(Ordering::Relaxed) {
        match accept(s.as_raw_fd()) {
            // SAFETY: accept returned a new descriptor we own.
            Ok(c) => session(unsafe { std::os::fd::FromRawFd::from_raw_fd(c) }, &maps),
            Err(nix::Error::EAGAIN) => std::thread::sleep(std::time::Duration::from_millis(20)),
            Err(err) => return Err(format!("accept: {err}")),
        }
    }
    let _ = std::fs::remove_file(socket_path);
    Ok(())
}

/// One pod's requests, until `/fin` or it goes.
fn session(c: OwnedFd, maps: &[(String, RawFd)]) {
    let reply = |text: &str, fd: Option<RawFd>| {
        let fds = fd.map(|f| [f]);
        let cmsg: Vec<ControlMessage<'_>> = fds.as_ref().map(|f| ControlMessage::ScmRights(f)).into_iter().collect();
        let _ = sendmsg::<()>(c.as_raw_fd(), &[IoSlice::new(text.as_bytes())], &cmsg, MsgFlags::empty(), None);
    };
    let mut buf = [0u8; 128];
    loop {
        let n = match recv(c.as_raw_fd(), &mut buf, MsgFlags::empty()) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        let msg = String::from_utf8_lossy(&buf[..n]).trim().to_string();
        let (verb, arg) = msg.split_once(',').map_or((msg.as_str(), ""), |(v, a)| (v, a.trim()));
        match verb {
            "/connect" => reply("/host_ok", None),
            "/version" => reply("0.1", None),
            "/xsk_map_fd" => match maps.iter().find(|(i, _)| i == arg) {
                Some((_, m)) => reply("/fd_ack", Some(*m)),
                None => reply("/fd_nak", None),
            },
            "/fin" => {
                reply("/fin_ack", None);
                return;
            }
            _ => reply("/nak", None),
        }
    }
}
