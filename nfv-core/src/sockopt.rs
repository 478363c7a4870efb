//! Socket options the std library does not set: a control-plane socket
//! that takes bursts (an SMF establishing sessions by the thousand) needs
//! a receive buffer larger than the system default.

use std::os::fd::AsRawFd;

/// Asks for a receive buffer of `bytes` on `sock`: beyond the system's
/// `rmem_max` when privileged (SO_RCVBUFFORCE), else as far as allowed
/// (SO_RCVBUF). Returns the size the kernel grants (it doubles what is
/// asked, for its bookkeeping), 0 if it could not be read.
pub fn receive_buffer(sock: &impl AsRawFd, bytes: usize) -> usize {
    let fd = sock.as_raw_fd();
    let size = bytes.min(i32::MAX as usize) as libc::c_int;
    let len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: setsockopt and getsockopt on a descriptor the caller owns,
    // with a c_int value and its length.
    unsafe {
        let p = &size as *const libc::c_int as *const libc::c_void;
        if libc::setsockopt(fd, libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, p, len) != 0 {
            libc::setsockopt(fd, libc::SOL_SOCKET, libc::SO_RCVBUF, p, len);
        }
        let mut got: libc::c_int = 0;
        let mut got_len = len;
        let q = &mut got as *mut libc::c_int as *mut libc::c_void;
        if libc::getsockopt(fd, libc::SOL_SOCKET, libc::SO_RCVBUF, q, &mut got_len) != 0 {
            return 0;
        }
        got.max(0) as usize
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_receive_buffer_grows_at_least_to_the_default() {
        let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let before = super::receive_buffer(&s, 0);
        let after = super::receive_buffer(&s, 4 << 20);
        assert!(after >= before && after > 0, "{before} -> {after}");
    }
}
