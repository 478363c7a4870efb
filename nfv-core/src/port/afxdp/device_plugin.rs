//! The XSK map from the AF_XDP device plugin for Kubernetes
//! (intel/afxdp-plugins-for-kubernetes): its CNI attached the XDP program
//! to the pod's device and its server hands the program's XSKMAP over a
//! UNIX socket in the pod, so that the pod needs no capability to load or
//! attach anything (CAP_NET_RAW for the socket, CAP_IPC_LOCK for the
//! UMEM). The protocol (the plugin's `internal/uds` and DPDK's af_xdp
//! driver, `uds_path`): SOCK_SEQPACKET; `/connect, HOSTNAME` answered
//! `/host_ok`; `/xsk_map_fd, IFACE` answered `/fd_ack` with the map's
//! file descriptor in an SCM_RIGHTS message; `/fin` answered `/fin_ack`.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

use nix::sys::socket::{
    AddressFamily, ControlMessageOwned, MsgFlags, SockFlag, SockType, UnixAddr, connect, recvmsg, send, socket,
};

/// Where DPDK's af_xdp driver looks for the plugin's socket of `iface`
/// (`/tmp/afxdp_dp/IFACE/afxdp.sock`).
pub fn default_socket(iface: &str) -> String {
    format!("/tmp/afxdp_dp/{iface}/afxdp.sock")
}

fn io(e: nix::Error) -> io::Error {
    io::Error::from_raw_os_error(e as i32)
}

/// Sends `msg`, returns the answer and the descriptor it carried.
fn request(s: &OwnedFd, msg: &str) -> io::Result<(String, Option<OwnedFd>)> {
    send(s.as_raw_fd(), msg.as_bytes(), MsgFlags::empty()).map_err(io)?;
    let mut buf = [0u8; 128];
    let mut cmsg = nix::cmsg_space!([std::os::fd::RawFd; 2]);
    let mut iov = [std::io::IoSliceMut::new(&mut buf)];
    let r = recvmsg::<()>(s.as_raw_fd(), &mut iov, Some(&mut cmsg), MsgFlags::MSG_CMSG_CLOEXEC).map_err(io)?;
    let mut fd = None;
    for c in r.cmsgs().map_err(io)? {
        if let ControlMessageOwned::ScmRights(fds) = c {
            // SAFETY: the kernel installed these descriptors for us; each
            // is owned once.
            fd = fds.first().map(|&f| unsafe { OwnedFd::from_raw_fd(f) });
        }
    }
    let n = r.bytes;
    let text = String::from_utf8_lossy(&buf[..n]).trim_end_matches('\0').trim().to_string();
    Ok((text, fd))
}

/// The XSKMAP the device plugin holds for `iface`, from its server at
/// `path`; an error says what the plugin answered.
pub fn xsk_map(path: &Path, iface: &str) -> io::Result<OwnedFd> {
    let s = socket(AddressFamily::Unix, SockType::SeqPacket, SockFlag::SOCK_CLOEXEC, None).map_err(io)?;
    let addr = UnixAddr::new(path).map_err(io)?;
    connect(s.as_raw_fd(), &addr)
        .map_err(|e| io::Error::other(format!("the AF_XDP device plugin's socket {}: {}", path.display(), io(e))))?;
    let host = nix::unistd::gethostname().map_err(io)?.to_string_lossy().into_owned();
    let (ok, _) = request(&s, &format!("/connect, {host}"))?;
    if ok != "/host_ok" {
        return Err(io::Error::other(format!("the AF_XDP device plugin refused pod `{host}`: `{ok}`")));
    }
    let (ack, fd) = request(&s, &format!("/xsk_map_fd, {iface}"))?;
    let fd = match (ack.starts_with("/fd_ack"), fd) {
        (true, Some(fd)) => fd,
        _ => return Err(io::Error::other(format!("the AF_XDP device plugin has no XSK map for {iface}: `{ack}`"))),
    };
    let _ = request(&s, "/fin");
    Ok(fd)
}
