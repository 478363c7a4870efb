//! Making an AF_XDP socket on one queue of one interface, in the best bind
//! mode the device allows, and the few syscalls the data path needs.

use std::ffi::CString;
use std::io;
use std::os::fd::RawFd;
use std::ptr::NonNull;
use std::sync::Arc;

use libxdp_sys::{XDP_COPY, XDP_USE_NEED_WAKEUP, XDP_ZEROCOPY, xsk_socket, xsk_socket_config};

use super::ring::{ConsRing, ProdRing};
use super::umem::UmemReg;
use crate::config::XdpMode;

/// `XDP_FLAGS_SKB_MODE` / `XDP_FLAGS_DRV_MODE` from linux/if_link.h.
const XDP_FLAGS_SKB_MODE: u32 = 1 << 1;
const XDP_FLAGS_DRV_MODE: u32 = 1 << 2;
/// Socket options for busy polling (asm-generic/socket.h).
const SO_PREFER_BUSY_POLL: i32 = 69;
const SO_BUSY_POLL_BUDGET: i32 = 70;

/// One way to bind: where the XDP program runs and whether frames are DMA'd
/// into the UMEM (zero-copy) or copied by the kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BindMode {
    /// XDP program in the driver (native) rather than generic skb mode.
    pub driver: bool,
    /// Zero-copy bind.
    pub zero_copy: bool,
}

impl BindMode {
    const ZERO_COPY: Self = Self { driver: true, zero_copy: true };
    const DRIVER: Self = Self { driver: true, zero_copy: false };
    const SKB: Self = Self { driver: false, zero_copy: false };

    /// The attempts for a configured mode, best first.
    pub fn attempts(mode: XdpMode) -> &'static [BindMode] {
        match mode {
            XdpMode::Auto => &[Self::ZERO_COPY, Self::DRIVER, Self::SKB],
            XdpMode::ZeroCopy => &[Self::ZERO_COPY],
            XdpMode::Driver => &[Self::DRIVER],
            XdpMode::Skb => &[Self::SKB],
        }
    }
}

impl std::fmt::Display for BindMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let copy = if self.zero_copy { "zero-copy" } else { "copy" };
        let at = if self.driver { "driver" } else { "skb" };
        write!(f, "{copy}, {at} mode")
    }
}

/// The rings of one socket. libxdp keeps pointers to these structs until
/// the socket is deleted, so whoever holds them must drop the [`Xsk`]
/// first.
pub struct Rings {
    /// Received descriptors.
    pub rx: ConsRing,
    /// Descriptors to send.
    pub tx: ProdRing,
    /// Empty frames for the kernel to receive into.
    pub fill: ProdRing,
    /// Sent frames coming back.
    pub comp: ConsRing,
}

/// A bound AF_XDP socket.
pub struct Xsk {
    socket: SocketHandle,
    /// The mode it got.
    pub mode: BindMode,
    /// The modes tried before, with the kernel's answer.
    pub refused: Vec<(BindMode, io::Error)>,
}

struct SocketHandle {
    ptr: NonNull<xsk_socket>,
    fd: RawFd,
    umem: Arc<UmemReg>,
}

// SAFETY: the socket is used by one worker; libxdp calls that touch the
// shared UMEM are serialised by `UmemReg::lock`.
unsafe impl Send for SocketHandle {}

impl Drop for SocketHandle {
    fn drop(&mut self) {
        let _g = self.umem.lock.lock().unwrap_or_else(|e| e.into_inner());
        // SAFETY: created by xsk_socket__create_shared, deleted once; the
        // rings it references are still alive (dropped after this field).
        unsafe { libxdp_sys::xsk_socket__delete(self.ptr.as_ptr()) };
    }
}

/// Ring sizes of a socket.
#[derive(Clone, Copy, Debug)]
pub struct RingSizes {
    /// rx ring.
    pub rx: u32,
    /// tx ring.
    pub tx: u32,
}

impl Xsk {
    /// Binds a socket to `ifname` queue `queue` on `umem`, trying `mode`'s
    /// attempts in order. With `no_program`, libxdp loads no program: the
    /// queue's traffic keeps going to the kernel stack (a socket that only
    /// sends), or nfv's own XDP engine sends it here (the caller attaches
    /// it and adds the socket).
    ///
    /// The first socket of a registration binds the registration's own
    /// file descriptor; when libxdp fails after that bind (attaching the
    /// program in driver mode on a device without native XDP), the fd stays
    /// bound and a second bind would fail with EBUSY. So after a failed
    /// first socket, the next attempt gets a `fresh` registration, which
    /// replaces `umem`.
    pub fn open(
        ifname: &str,
        queue: u32,
        umem: &mut Arc<UmemReg>,
        fresh: &dyn Fn() -> io::Result<Arc<UmemReg>>,
        mode: XdpMode,
        sizes: RingSizes,
        no_program: bool,
    ) -> io::Result<(Self, Rings)> {
        let name = CString::new(ifname).map_err(|_| io::Error::other("interface name contains NUL"))?;
        let mut refused = Vec::new();
        let attempts = BindMode::attempts(mode);
        let mut replaced = false;
        for (i, &attempt) in attempts.iter().enumerate() {
            let mut result = Self::try_bind(&name, queue, umem, attempt, sizes, no_program);
            // The kernel releases a closed socket's hold on the queue in
            // deferred work: right after a replacement the queue can still
            // answer EBUSY for a few milliseconds.
            for _ in 0..50 {
                match &result {
                    Err((e, _)) if replaced && e.raw_os_error() == Some(libc::EBUSY) => {
                        std::thread::sleep(std::time::Duration::from_millis(10));
                        result = Self::try_bind(&name, queue, umem, attempt, sizes, no_program);
                    }
                    _ => break,
                }
            }
            match result {
                Ok((socket, rings)) => {
                    let zc = socket.zero_copy().unwrap_or(attempt.zero_copy);
                    let mode = BindMode { zero_copy: zc, ..attempt };
                    return Ok((Self { socket, mode, refused }, rings));
                }
                Err((e, was_first)) => {
                    refused.push((attempt, e));
                    if was_first && i + 1 < attempts.len() {
                        *umem = fresh()?;
                        replaced = true;
                    }
                }
            }
        }
        let why: Vec<String> = refused.iter().map(|(m, e)| format!("{m}: {e}")).collect();
        Err(io::Error::new(
            refused.last().map_or(io::ErrorKind::Other, |(_, e)| e.kind()),
            format!("cannot bind AF_XDP on {ifname} queue {queue} ({})", why.join("; ")),
        ))
    }

    fn try_bind(
        name: &CString,
        queue: u32,
        umem: &Arc<UmemReg>,
        mode: BindMode,
        sizes: RingSizes,
        no_program: bool,
    ) -> Result<(SocketHandle, Rings), (io::Error, bool)> {
        let g = umem.lock.lock().unwrap_or_else(|e| e.into_inner());
        // The first socket on a registration takes the rings libxdp made
        // with it; later ones (other interfaces or queues) get their own.
        let first = umem.first_rings.lock().unwrap_or_else(|e| e.into_inner()).take();
        let was_first = first.is_some();
        let (mut fill, mut comp) = first.unwrap_or_else(|| (ProdRing::unmapped(), ConsRing::unmapped()));
        let mut rx = ConsRing::unmapped();
        let mut tx = ProdRing::unmapped();
        let cfg = xsk_socket_config {
            rx_size: sizes.rx,
            tx_size: sizes.tx,
            __bindgen_anon_1: libxdp_sys::xsk_socket_config__bindgen_ty_1 {
                libxdp_flags: if no_program { libxdp_sys::XSK_LIBXDP_FLAGS__INHIBIT_PROG_LOAD } else { 0 },
            },
            xdp_flags: if mode.driver { XDP_FLAGS_DRV_MODE } else { XDP_FLAGS_SKB_MODE },
            bind_flags: (if mode.zero_copy { XDP_ZEROCOPY } else { XDP_COPY } | XDP_USE_NEED_WAKEUP) as u16,
        };
        let mut ptr = std::ptr::null_mut();
        // SAFETY: every ring struct is boxed (stable address, kept alive by
        // the returned Rings until after the socket is deleted); `umem` is
        // live and its libxdp state is guarded by the lock held here.
        let err = unsafe {
            libxdp_sys::xsk_socket__create_shared(
                &mut ptr,
                name.as_ptr(),
                queue,
                umem.ptr.as_ptr(),
                &mut *rx.r,
                &mut *tx.r,
                &mut *fill.r,
                &mut *comp.r,
                &cfg,
            )
        };
        if err != 0 {
            if was_first {
                // libxdp keeps these rings for the next attempt.
                *umem.first_rings.lock().unwrap_or_else(|e| e.into_inner()) = Some((fill, comp));
            }
            return Err((io::Error::from_raw_os_error(-err), was_first));
        }
        // The socket's Drop takes the lock: release it first.
        drop(g);
        let Some(ptr) = NonNull::new(ptr) else {
            return Err((io::Error::other("xsk_socket__create returned null"), was_first));
        };
        // SAFETY: ptr is a live socket.
        let fd = unsafe { libxdp_sys::xsk_socket__fd(ptr.as_ptr()) };
        let socket = SocketHandle { ptr, fd, umem: umem.clone() };
        if !(rx.is_mapped() && tx.is_mapped() && fill.is_mapped() && comp.is_mapped()) {
            // Another socket already holds this interface and queue on this
            // UMEM; libxdp reused its rings.
            drop(socket);
            return Err((io::Error::other("AF_XDP rings were not mapped (queue already bound?)"), false));
        }
        Ok((socket, Rings { rx, tx, fill, comp }))
    }

    /// The socket's file descriptor.
    pub fn fd(&self) -> RawFd {
        self.socket.fd
    }

    /// Asks for busy polling (`SO_PREFER_BUSY_POLL`, `SO_BUSY_POLL`,
    /// `SO_BUSY_POLL_BUDGET`): the kernel then runs the device's NAPI in
    /// our syscalls instead of in softirq. Fails on kernels or devices
    /// without it, or without CAP_NET_ADMIN.
    pub fn enable_busy_poll(&self, usecs: u32, budget: u32) -> io::Result<()> {
        setsockopt(self.fd(), libc::SOL_SOCKET, SO_PREFER_BUSY_POLL, 1)?;
        setsockopt(self.fd(), libc::SOL_SOCKET, libc::SO_BUSY_POLL, usecs)?;
        setsockopt(self.fd(), libc::SOL_SOCKET, SO_BUSY_POLL_BUDGET, budget)
    }

    /// The kernel's own drop counters for this socket (`XDP_STATISTICS`).
    pub fn statistics(&self) -> io::Result<libxdp_sys::xdp_statistics> {
        // SAFETY: getsockopt into a zeroed, correctly sized struct.
        unsafe {
            let mut st: libxdp_sys::xdp_statistics = std::mem::zeroed();
            let mut len = std::mem::size_of_val(&st) as libc::socklen_t;
            let rc = libc::getsockopt(
                self.fd(),
                libc::SOL_XDP,
                libxdp_sys::XDP_STATISTICS as i32,
                &mut st as *mut _ as *mut libc::c_void,
                &mut len,
            );
            if rc != 0 { Err(io::Error::last_os_error()) } else { Ok(st) }
        }
    }
}

impl SocketHandle {
    /// Whether the kernel bound zero-copy (`XDP_OPTIONS`).
    fn zero_copy(&self) -> io::Result<bool> {
        // SAFETY: getsockopt into a local of the right size.
        unsafe {
            let mut opts: libxdp_sys::xdp_options = std::mem::zeroed();
            let mut len = std::mem::size_of_val(&opts) as libc::socklen_t;
            let rc = libc::getsockopt(
                self.fd,
                libc::SOL_XDP,
                libxdp_sys::XDP_OPTIONS as i32,
                &mut opts as *mut _ as *mut libc::c_void,
                &mut len,
            );
            if rc != 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(opts.flags & libxdp_sys::XDP_OPTIONS_ZEROCOPY != 0)
        }
    }
}

fn setsockopt(fd: RawFd, level: i32, name: i32, value: u32) -> io::Result<()> {
    // SAFETY: setsockopt with a pointer to a local u32 and its size.
    let rc = unsafe {
        libc::setsockopt(fd, level, name, &value as *const u32 as *const libc::c_void, std::mem::size_of::<u32>() as _)
    };
    if rc != 0 { Err(io::Error::last_os_error()) } else { Ok(()) }
}

/// Asks the kernel to look at the rx/fill rings (need_wakeup, busy poll).
#[inline]
pub fn kick_rx(fd: RawFd) {
    // SAFETY: zero-length recvfrom on our socket; errors (EAGAIN) are the
    // normal "nothing to do" answer.
    unsafe {
        libc::recvfrom(fd, std::ptr::null_mut(), 0, libc::MSG_DONTWAIT, std::ptr::null_mut(), std::ptr::null_mut())
    };
}

/// Asks the kernel to transmit what the tx ring holds. False on an error
/// other than "more to do" or "no room yet" (EAGAIN, EBUSY, ENOBUFS).
#[inline]
pub fn kick_tx(fd: RawFd) -> bool {
    // SAFETY: zero-length sendto on our socket.
    let rc = unsafe { libc::sendto(fd, std::ptr::null(), 0, libc::MSG_DONTWAIT, std::ptr::null(), 0) };
    rc >= 0
        || matches!(
            io::Error::last_os_error().raw_os_error(),
            Some(libc::EAGAIN) | Some(libc::EBUSY) | Some(libc::ENOBUFS)
        )
}
