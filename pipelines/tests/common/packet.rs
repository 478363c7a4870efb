//! A raw AF_PACKET capture on one interface: what the kernel's receive
//! path sees, before any routing decision drops it.

#![allow(dead_code)]

use std::time::{Duration, Instant};

/// An AF_PACKET socket bound to one interface, receiving every frame.
pub struct Capture {
    fd: i32,
}

impl Capture {
    /// Opens the capture on `ifname` in the calling thread's namespace.
    pub fn open(ifname: &str) -> Self {
        let name = std::ffi::CString::new(ifname).unwrap();
        // SAFETY: plain socket calls with checked results.
        unsafe {
            let proto = (libc::ETH_P_ALL as u16).to_be() as i32;
            let fd = libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, proto);
            assert!(fd >= 0, "AF_PACKET socket: {}", std::io::Error::last_os_error());
            let mut sll: libc::sockaddr_ll = std::mem::zeroed();
            sll.sll_family = libc::AF_PACKET as u16;
            sll.sll_protocol = proto as u16;
            sll.sll_ifindex = libc::if_nametoindex(name.as_ptr()) as i32;
            assert!(sll.sll_ifindex > 0, "no interface {ifname}");
            let rc = libc::bind(
                fd,
                &sll as *const _ as *const libc::sockaddr,
                std::mem::size_of::<libc::sockaddr_ll>() as u32,
            );
            assert_eq!(rc, 0, "bind AF_PACKET: {}", std::io::Error::last_os_error());
            let tv = libc::timeval { tv_sec: 0, tv_usec: 100_000 };
            libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                &tv as *const _ as *const libc::c_void,
                std::mem::size_of::<libc::timeval>() as u32,
            );
            let buf: i32 = 8 << 20;
            libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_RCVBUFFORCE,
                &buf as *const _ as *const libc::c_void,
                std::mem::size_of::<i32>() as u32,
            );
            Self { fd }
        }
    }

    /// Sends `frame` as it is out of the interface.
    pub fn send(&self, frame: &[u8]) {
        // SAFETY: send from a local buffer on the bound socket.
        let n = unsafe { libc::send(self.fd, frame.as_ptr() as *const libc::c_void, frame.len(), 0) };
        assert_eq!(n, frame.len() as isize, "AF_PACKET send: {}", std::io::Error::last_os_error());
    }

    /// Counts incoming frames `keep` accepts until `want` or `quiet` of
    /// silence. Frames this host sends are not counted.
    pub fn count(&self, want: usize, quiet: Duration, keep: impl Fn(&[u8]) -> bool) -> usize {
        let mut buf = [0u8; 2048];
        let mut n = 0;
        let mut last = Instant::now();
        while n < want && last.elapsed() < quiet {
            // SAFETY: recvfrom into local buffers of the given sizes.
            let (len, pkttype) = unsafe {
                let mut sll: libc::sockaddr_ll = std::mem::zeroed();
                let mut sl = std::mem::size_of::<libc::sockaddr_ll>() as u32;
                let len = libc::recvfrom(
                    self.fd,
                    buf.as_mut_ptr() as *mut libc::c_void,
                    buf.len(),
                    0,
                    &mut sll as *mut _ as *mut libc::sockaddr,
                    &mut sl,
                );
                (len, sll.sll_pkttype)
            };
            if len < 0 {
                continue;
            }
            if pkttype != libc::PACKET_OUTGOING && keep(&buf[..len as usize]) {
                n += 1;
                last = Instant::now();
            }
        }
        n
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        // SAFETY: closes the socket we opened.
        unsafe { libc::close(self.fd) };
    }
}
