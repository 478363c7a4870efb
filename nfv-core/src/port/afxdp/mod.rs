//! The AF_XDP port: one socket on one queue of one interface, receiving
//! into and transmitting from the worker's UMEM.
//!
//! Per poll: top the fill ring up from the pool in batch-sized chunks, take
//! up to a batch of rx descriptors, and turn each into a [`PktDesc`] naming
//! the frame it landed in (no copy). On transmit: reclaim completed frames
//! into the pool, write tx descriptors, and kick the kernel only when the
//! ring holds frames and it asked for a wakeup. libxdp (through
//! `libxdp-sys`) creates the UMEM and sockets and loads its redirect
//! program; the rings are driven in Rust ([`ring`]).
//!
//! Why `libxdp-sys` and not the safe API of `xsk-rs` (whose FFI layer it
//! is): an `xsk_rs::FrameDesc` can only name the address where a frame was
//! received (its address field is private), so a packet whose head moved
//! into the headroom (VXLAN, Geneve, GTP-U encapsulation push headers in
//! place) cannot be transmitted without a copy; and each descriptor it
//! reads or writes is a call into libxdp's ring helpers, which are C
//! inline functions Rust cannot inline. Our descriptors carry frame index
//! and head offset, and [`ring`] is the same protocol in ~100 lines.

pub mod device_plugin;
pub mod loopback;
pub mod ring;
pub mod socket;
pub mod system;
pub mod umem;

use std::collections::HashMap;
use std::io;
use std::os::fd::RawFd;
use std::sync::{Arc, Mutex, Weak};

use crate::batch::Batch;
use crate::config::AfXdpConfig;
use crate::frame::{FRAME_SIZE, FramePool};
use crate::packet::{Egress, Meta, PktDesc, Verdict};
use crate::port::{Port, PortInfo};
use socket::{RingSizes, Rings, Xsk};
use system::InterfaceLock;
use umem::UmemReg;

crate::drop_reasons! {
    /// Why an AF_XDP port lost a packet: our side (tx ring full) or the
    /// kernel's, read from `XDP_STATISTICS`.
    pub enum AfXdpDrop {
        TxRingFull => "tx-ring-full",
        KernelRxDropped => "kernel-rx-dropped",
        KernelRxRingFull => "kernel-rx-ring-full",
        KernelFillRingEmpty => "kernel-fill-ring-empty",
        KernelRxInvalid => "kernel-rx-invalid-desc",
        KernelTxInvalid => "kernel-tx-invalid-desc",
    }
}

/// log2 of [`FRAME_SIZE`]: a UMEM address shifted by it is the frame index.
const FRAME_SHIFT: u32 = FRAME_SIZE.trailing_zeros();
/// Kernel statistics are read once per this many polls, and at close.
const STATS_EVERY: u32 = 1 << 14;
/// Copy-mode kernels send at most 32 frames per `sendto`, and a `sendto`
/// costs about as much as copying those 32: a transmit burst kicks only
/// once this many frames wait, the rest go when the worker idles
/// ([`Port::flush`]). Zero-copy drivers rarely ask for a kick at all.
const KICK_AT: u32 = 32;
/// Kicks per call at most, so a busy device cannot hold the worker.
const MAX_KICKS: u32 = 8;

/// One AF_XDP queue owned by one worker.
pub struct AfXdpPort {
    /// Socket and its kernel side; `None` for the loopback stand-in.
    /// Declared before `q`: fields drop in order, and libxdp reads the
    /// ring structs while it deletes the socket.
    xsk: Option<XskHandle>,
    q: Rings,
    info: PortInfo,
    fd: RawFd,
    busy_poll: bool,
    refill_chunk: u32,
    polls: u32,
    last_stats: [u64; 5],
    /// Sends only: its fill ring is never read, so it is never filled.
    tx_only: bool,
    /// The arena whose frames its kernel side writes, where a safe caller
    /// chooses it ([`loopback::Loopback`]): the pool lending frames to
    /// the fill ring must be that arena's.
    arena: Option<u32>,
}

pub(crate) struct XskHandle {
    xsk: Xsk,
    _lock: Arc<InterfaceLock>,
}

/// Attaches a caller's XDP program in place of libxdp's and sends a
/// queue's traffic to a socket ([`AfXdpPort::open`]).
pub type OwnProgram<'a> = dyn Fn(u32, bool, RawFd) -> io::Result<(bool, String)> + 'a;

impl AfXdpPort {
    /// Opens `cfg.interface` queue `queue` on `umem` (replaced by a
    /// `fresh` registration if a failed attempt left it bound, see
    /// [`Xsk::open`]). `batch` sizes the fill-ring refills and the
    /// busy-poll budget; a `tx_only` socket does not take the queue's
    /// traffic from the kernel; with `own_program` libxdp attaches
    /// nothing and the caller's XDP program takes its place:
    /// `own_program(ifindex, driver, fd)` attaches it (in driver mode if
    /// `driver` and the device can) and sends the queue's traffic to
    /// socket `fd`, answering whether it got driver mode and a line for
    /// the log. Returns the port and its startup line (bind mode and why,
    /// busy poll, clean-ups).
    #[allow(clippy::too_many_arguments)]
    pub fn open(
        info: PortInfo,
        cfg: &AfXdpConfig,
        queue: u16,
        umem: &mut Arc<UmemReg>,
        fresh: &dyn Fn() -> io::Result<Arc<UmemReg>>,
        batch: usize,
        tx_only: bool,
        own_program: Option<&OwnProgram<'_>>,
    ) -> io::Result<(Self, String)> {
        let mut notes = system::prepare();
        let ifindex = ifindex(&cfg.interface)?;
        // The device plugin's program is not a stale one of ours.
        let (lock, note) = lock_interface(&cfg.interface, ifindex, cfg.xsk_map_socket.is_none())?;
        notes.extend(note);
        let sizes = RingSizes { rx: cfg.rx_ring, tx: cfg.tx_ring };
        let inhibit = tx_only || own_program.is_some();
        let (mut xsk, q) = Xsk::open(&cfg.interface, queue as u32, umem, fresh, cfg.mode, sizes, inhibit)?;
        for (m, e) in &xsk.refused {
            notes.push(format!("{m} refused: {e}"));
        }
        if let Some(attach) = own_program.filter(|_| !tx_only) {
            let (driver, note) = attach(ifindex, xsk.mode.driver, xsk.fd())?;
            xsk.mode.driver = driver;
            notes.push(note);
        }
        let mut busy_poll = false;
        if cfg.busy_poll_us > 0 {
            match xsk.enable_busy_poll(cfg.busy_poll_us, batch as u32) {
                Ok(()) => {
                    busy_poll = true;
                    notes.push(format!("busy poll {} us", cfg.busy_poll_us));
                }
                Err(e) => notes.push(format!("busy poll unavailable: {e}")),
            }
        }
        let summary = format!(
            "af-xdp {} queue {queue}{}: {}{}{}",
            cfg.interface,
            if tx_only { " (tx only)" } else { "" },
            xsk.mode,
            if notes.is_empty() { "" } else { "; " },
            notes.join("; ")
        );
        let _ = info.counters.mode.set(format!("af-xdp {}{}", xsk.mode, if busy_poll { ", busy poll" } else { "" }));
        let fd = xsk.fd();
        let mut port = Self::with_queues(info, q, Some(XskHandle { xsk, _lock: lock }), fd, busy_poll, batch);
        port.tx_only = tx_only;
        Ok((port, summary))
    }

    pub(crate) fn with_queues(
        info: PortInfo,
        q: Rings,
        xsk: Option<XskHandle>,
        fd: RawFd,
        busy_poll: bool,
        batch: usize,
    ) -> Self {
        Self {
            xsk,
            q,
            info,
            fd,
            busy_poll,
            refill_chunk: batch as u32,
            polls: 0,
            last_stats: [0; 5],
            tx_only: false,
            arena: None,
        }
    }

    /// Gives the kernel empty frames to receive into, in chunks of at
    /// least a batch (a reserve is all or nothing). Two batches' worth
    /// stay in the pool: the fill rings of a worker's ports may together
    /// lend more frames than it has, and a worker also needs frames for
    /// what it sends without receiving it (slow-path replies, packets
    /// handed over by other workers).
    #[inline]
    fn refill(&mut self, pool: &mut FramePool) {
        let free = self.q.fill.free(self.refill_chunk);
        if free < self.refill_chunk {
            return;
        }
        if let Some(arena) = self.arena {
            assert_eq!(arena, pool.arena().id(), "frames lent from a pool of another arena than the port writes");
        }
        let spare = pool.available().saturating_sub(2 * self.refill_chunk as usize);
        let n = free.min(spare as u32);
        if n == 0 {
            return;
        }
        let Some(idx) = self.q.fill.reserve(n) else { return };
        for (i, frame) in pool.alloc_bulk(n as usize).enumerate() {
            self.q.fill.set_addr(idx.wrapping_add(i as u32), (frame as u64) << FRAME_SHIFT);
        }
        self.q.fill.submit();
    }

    /// Returns frames the kernel finished sending to the pool.
    #[inline]
    fn reclaim(&mut self, pool: &mut FramePool) {
        let (n, idx) = self.q.comp.peek(u32::MAX);
        if n == 0 {
            return;
        }
        let comp = &self.q.comp;
        pool.free_bulk((0..n).map(|i| (comp.addr(idx.wrapping_add(i)) >> FRAME_SHIFT) as u32));
        self.q.comp.release();
    }

    /// Has the kernel send what the tx ring holds once at least `at`
    /// frames wait. Copy mode sends only inside `sendto`, at most 32
    /// frames per call (EAGAIN: more wait); zero-copy drivers ask through
    /// need_wakeup. Kicks while the kernel keeps taking frames, at most
    /// [`MAX_KICKS`] times; never kicks an empty ring. Returns true when
    /// frames still wait for a kick.
    #[inline]
    fn kick(&mut self, pool: &mut FramePool, at: u32) -> bool {
        let at = at.max(1);
        for _ in 0..MAX_KICKS {
            let before = self.q.tx.pending();
            if before < at || !self.q.tx.needs_wakeup() {
                break;
            }
            let ok = socket::kick_tx(self.fd);
            // Completions make room for the kernel's next round.
            self.reclaim(pool);
            if !ok || self.q.tx.pending() == before {
                break;
            }
        }
        self.q.tx.pending() > 0 && self.q.tx.needs_wakeup()
    }

    /// Folds the kernel's drop counters into the port's.
    fn read_kernel_stats(&mut self) {
        let Some(h) = &self.xsk else { return };
        let Ok(st) = h.xsk.statistics() else { return };
        let now =
            [st.rx_dropped, st.rx_ring_full, st.rx_fill_ring_empty_descs, st.rx_invalid_descs, st.tx_invalid_descs];
        let reasons = [
            AfXdpDrop::KernelRxDropped,
            AfXdpDrop::KernelRxRingFull,
            AfXdpDrop::KernelFillRingEmpty,
            AfXdpDrop::KernelRxInvalid,
            AfXdpDrop::KernelTxInvalid,
        ];
        for ((n, last), r) in now.iter().zip(self.last_stats.iter_mut()).zip(reasons) {
            if *n > *last {
                self.info.counters.count_drop(r as usize, *n - *last);
                *last = *n;
            }
        }
    }
}

impl Port for AfXdpPort {
    fn info(&self) -> &PortInfo {
        &self.info
    }

    fn prime(&mut self, pool: &mut FramePool) {
        if !self.tx_only {
            self.refill(pool);
        }
    }

    #[inline]
    fn rx_burst(&mut self, pool: &mut FramePool, batch: &mut Batch) -> usize {
        batch.assert_pool(pool);
        self.refill(pool);
        self.polls = self.polls.wrapping_add(1);
        if self.polls.is_multiple_of(STATS_EVERY) {
            self.read_kernel_stats();
        }
        let (n, idx) = self.q.rx.peek(batch.room() as u32);
        if n == 0 {
            if self.busy_poll || self.q.fill.needs_wakeup() {
                socket::kick_rx(self.fd);
            }
            return 0;
        }
        let meta = Meta { port: self.info.id, ..Meta::default() };
        let mut bytes = 0u64;
        let rx = &self.q.rx;
        batch.extend((0..n).map(|i| {
            let d = rx.desc(idx.wrapping_add(i));
            bytes += d.len as u64;
            PktDesc {
                frame: (d.addr >> FRAME_SHIFT) as u32,
                head: (d.addr & (FRAME_SIZE as u64 - 1)) as u16,
                len: d.len as u16,
                meta,
                verdict: Verdict::next(),
                egress: Egress::NONE,
            }
        }));
        self.q.rx.release();
        self.info.counters.rx(n as u64, bytes);
        n as usize
    }

    #[inline]
    fn tx_burst(&mut self, pool: &mut FramePool, pkts: &mut Vec<PktDesc>) {
        self.reclaim(pool);
        let want = pkts.len() as u32;
        let n = want.min(self.q.tx.free(want));
        let mut bytes = 0u64;
        if let Some(idx) = self.q.tx.reserve(n).filter(|_| n > 0) {
            for (i, d) in pkts[..n as usize].iter().enumerate() {
                bytes += d.len as u64;
                self.q.tx.set_desc(
                    idx.wrapping_add(i as u32),
                    ((d.frame as u64) << FRAME_SHIFT) | d.head as u64,
                    d.len as u32,
                );
            }
            self.q.tx.submit();
            self.info.counters.tx(n as u64, bytes);
        }
        if n < want {
            for d in &pkts[n as usize..] {
                pool.free(d.frame);
            }
            self.info.counters.count_drop(AfXdpDrop::TxRingFull as usize, (want - n) as u64);
        }
        pkts.clear();
        self.kick(pool, KICK_AT);
    }

    fn flush(&mut self, pool: &mut FramePool) -> bool {
        self.reclaim(pool);
        self.kick(pool, 1)
    }

    fn finish(&mut self, pool: &mut FramePool) {
        // Everything counted as sent should leave before the socket closes.
        for _ in 0..100 {
            if !self.flush(pool) {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        self.read_kernel_stats();
    }
}

/// The interface index of `name` in this network namespace.
fn ifindex(name: &str) -> io::Result<u32> {
    let c = std::ffi::CString::new(name).map_err(|_| io::Error::other("interface name contains NUL"))?;
    // SAFETY: valid C string.
    match unsafe { libc::if_nametoindex(c.as_ptr()) } {
        0 => Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("no interface `{name}` in this network namespace (see `ip link`)"),
        )),
        i => Ok(i),
    }
}

/// One lock per interface per process, shared by the queues of every
/// worker; the stale-program check runs once, at the first queue.
fn lock_interface(name: &str, ifindex: u32, detach_stale: bool) -> io::Result<(Arc<InterfaceLock>, Option<String>)> {
    static LOCKS: Mutex<Option<HashMap<String, Weak<InterfaceLock>>>> = Mutex::new(None);
    let mut g = LOCKS.lock().unwrap_or_else(|e| e.into_inner());
    let map = g.get_or_insert_with(HashMap::new);
    if let Some(l) = map.get(name).and_then(Weak::upgrade) {
        return Ok((l, None));
    }
    let (lock, note) = InterfaceLock::acquire(name, ifindex, detach_stale)?;
    let lock = Arc::new(lock);
    map.insert(name.to_string(), Arc::downgrade(&lock));
    Ok((lock, note))
}

/// The MAC address of `name` (`SIOCGIFHWADDR`), for ports configured
/// without one.
pub fn interface_mac(name: &str) -> io::Result<[u8; 6]> {
    // SAFETY: a throwaway datagram socket and an ioctl on a zeroed ifreq
    // whose name fits (checked).
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        let mut req: libc::ifreq = std::mem::zeroed();
        if name.len() >= req.ifr_name.len() {
            libc::close(fd);
            return Err(io::Error::other(format!("interface name `{name}` is too long")));
        }
        for (d, s) in req.ifr_name.iter_mut().zip(name.bytes()) {
            *d = s as libc::c_char;
        }
        let rc = libc::ioctl(fd, libc::SIOCGIFHWADDR, &mut req);
        let err = io::Error::last_os_error();
        libc::close(fd);
        if rc != 0 {
            return Err(err);
        }
        let sa = req.ifr_ifru.ifru_hwaddr.sa_data;
        Ok([sa[0] as u8, sa[1] as u8, sa[2] as u8, sa[3] as u8, sa[4] as u8, sa[5] as u8])
    }
}
