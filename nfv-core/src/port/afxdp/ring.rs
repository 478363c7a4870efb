//! The four AF_XDP rings (fill, completion, rx, tx), driven from Rust.
//!
//! libxdp creates and maps the rings and fills in `xsk_ring_prod` /
//! `xsk_ring_cons`; its accessors are C inline functions, which Rust can
//! only call through a symbol, one call per descriptor. These methods are
//! the same single-producer/single-consumer protocol (libxdp `xsk.h`,
//! kernel `Documentation/networking/af_xdp.rst`) written so that rustc
//! inlines them into the worker loop: an acquire load of the peer's index
//! when the cached view runs out, plain writes of descriptors, and a
//! release store to publish.
//!
//! Convention kept from libxdp: a producer's `cached_cons` is the real
//! consumer index plus the ring size, so `cached_cons - cached_prod` is the
//! free space without an addition on the fast path.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use libxdp_sys::{XDP_RING_NEED_WAKEUP, xdp_desc, xsk_ring_cons, xsk_ring_prod};

/// A ring this process produces into (fill, tx). Boxed because libxdp
/// keeps the address of the struct until the socket is deleted.
pub struct ProdRing {
    pub(super) r: Box<xsk_ring_prod>,
    /// The memory of a ring that is not a kernel mmap ([`RingMemory`]).
    _mem: Option<Arc<RingMemory>>,
}

/// A ring this process consumes from (completion, rx).
pub struct ConsRing {
    pub(super) r: Box<xsk_ring_cons>,
    _mem: Option<Arc<RingMemory>>,
}

// SAFETY: a ring is used by the one worker that owns its port; the raw
// pointers inside point into an mmap that lives as long as the socket.
unsafe impl Send for ProdRing {}
unsafe impl Send for ConsRing {}

#[inline(always)]
fn atomic(p: *mut u32) -> &'static AtomicU32 {
    // SAFETY: `p` points to a kernel-shared, 4-byte aligned ring index that
    // stays mapped while the ring exists; AtomicU32 has u32's layout.
    unsafe { AtomicU32::from_ptr(p) }
}

impl ProdRing {
    /// An unmapped ring for libxdp to fill in.
    pub(super) fn unmapped() -> Self {
        // SAFETY: xsk_ring_prod is plain data (integers and raw pointers);
        // all-zero is libxdp's "not created" state.
        Self { r: Box::new(unsafe { std::mem::zeroed() }), _mem: None }
    }

    /// True once libxdp mapped the ring.
    pub(super) fn is_mapped(&self) -> bool {
        !self.r.ring.is_null()
    }

    /// Number of slots in the ring.
    pub fn size(&self) -> u32 {
        self.r.size
    }

    /// Free slots, refreshing the consumer index only when fewer than
    /// `want` are known to be free.
    #[inline(always)]
    pub fn free(&mut self, want: u32) -> u32 {
        let r = &mut *self.r;
        let free = r.cached_cons.wrapping_sub(r.cached_prod);
        if free >= want {
            return free;
        }
        r.cached_cons = atomic(r.consumer).load(Ordering::Acquire).wrapping_add(r.size);
        r.cached_cons.wrapping_sub(r.cached_prod)
    }

    /// Reserves exactly `n` slots (all or nothing, like libxdp) and returns
    /// the index of the first.
    #[inline(always)]
    pub fn reserve(&mut self, n: u32) -> Option<u32> {
        if self.free(n) < n {
            return None;
        }
        let idx = self.r.cached_prod;
        self.r.cached_prod = idx.wrapping_add(n);
        Some(idx)
    }

    /// Writes a fill-ring entry (a UMEM address) at `idx`.
    #[inline(always)]
    pub fn set_addr(&mut self, idx: u32, addr: u64) {
        let r = &*self.r;
        // SAFETY: idx & mask < size; the fill ring holds `size` u64 slots
        // and slot `idx` was reserved, so the kernel does not read it yet.
        unsafe { *(r.ring as *mut u64).add((idx & r.mask) as usize) = addr };
    }

    /// Writes a tx-ring descriptor at `idx`.
    #[inline(always)]
    pub fn set_desc(&mut self, idx: u32, addr: u64, len: u32) {
        let r = &*self.r;
        // SAFETY: as for `set_addr`, with `xdp_desc` slots.
        unsafe { *(r.ring as *mut xdp_desc).add((idx & r.mask) as usize) = xdp_desc { addr, len, options: 0 } };
    }

    /// Publishes every reserved slot to the kernel.
    #[inline(always)]
    pub fn submit(&mut self) {
        atomic(self.r.producer).store(self.r.cached_prod, Ordering::Release);
    }

    /// Entries published but not yet taken by the kernel.
    #[inline]
    pub fn pending(&self) -> u32 {
        self.r.cached_prod.wrapping_sub(atomic(self.r.consumer).load(Ordering::Acquire))
    }

    /// The kernel asks for a syscall before it looks at this ring again
    /// (`XDP_USE_NEED_WAKEUP`).
    #[inline(always)]
    pub fn needs_wakeup(&self) -> bool {
        atomic(self.r.flags).load(Ordering::Relaxed) & XDP_RING_NEED_WAKEUP != 0
    }
}

impl ConsRing {
    /// An unmapped ring for libxdp to fill in.
    pub(super) fn unmapped() -> Self {
        // SAFETY: as for `ProdRing::unmapped`.
        Self { r: Box::new(unsafe { std::mem::zeroed() }), _mem: None }
    }

    /// True once libxdp mapped the ring.
    pub(super) fn is_mapped(&self) -> bool {
        !self.r.ring.is_null()
    }

    /// Takes up to `max` entries; returns how many and the first index.
    /// They stay valid until [`ConsRing::release`].
    #[inline(always)]
    pub fn peek(&mut self, max: u32) -> (u32, u32) {
        let r = &mut *self.r;
        let mut avail = r.cached_prod.wrapping_sub(r.cached_cons);
        if avail == 0 {
            r.cached_prod = atomic(r.producer).load(Ordering::Acquire);
            avail = r.cached_prod.wrapping_sub(r.cached_cons);
        }
        let n = avail.min(max);
        let idx = r.cached_cons;
        r.cached_cons = idx.wrapping_add(n);
        (n, idx)
    }

    /// The completion-ring entry (a UMEM address) at `idx`.
    #[inline(always)]
    pub fn addr(&self, idx: u32) -> u64 {
        let r = &*self.r;
        // SAFETY: idx was returned by `peek`, so the kernel published it
        // and does not overwrite it before `release`.
        unsafe { *(r.ring as *const u64).add((idx & r.mask) as usize) }
    }

    /// The rx-ring descriptor at `idx`.
    #[inline(always)]
    pub fn desc(&self, idx: u32) -> xdp_desc {
        let r = &*self.r;
        // SAFETY: as for `addr`, with `xdp_desc` slots.
        unsafe { *(r.ring as *const xdp_desc).add((idx & r.mask) as usize) }
    }

    /// Gives every peeked entry back to the kernel.
    #[inline(always)]
    pub fn release(&mut self) {
        atomic(self.r.consumer).store(self.r.cached_cons, Ordering::Release);
    }
}

/// A ring in plain memory, for the software stand-in of the kernel side
/// ([`super::loopback`]) and the unit tests.
pub(super) struct RingMemory {
    producer: Box<AtomicU32>,
    consumer: Box<AtomicU32>,
    flags: Box<AtomicU32>,
    slots: Box<[u128]>,
}

impl RingMemory {
    /// A ring of `size` (a power of two) slots of up to 16 bytes.
    pub(super) fn new(size: u32) -> Arc<Self> {
        assert!(size.is_power_of_two());
        Arc::new(Self {
            producer: Box::new(AtomicU32::new(0)),
            consumer: Box::new(AtomicU32::new(0)),
            flags: Box::new(AtomicU32::new(0)),
            slots: vec![0u128; size as usize].into_boxed_slice(),
        })
    }

    fn raw(&self) -> (*mut u32, *mut u32, *mut libc::c_void, *mut u32, u32) {
        (
            self.producer.as_ptr(),
            self.consumer.as_ptr(),
            self.slots.as_ptr() as *mut libc::c_void,
            self.flags.as_ptr(),
            self.slots.len() as u32,
        )
    }

    /// The producer's view, as libxdp would set it up. It keeps the
    /// memory alive.
    pub(super) fn prod(self: &Arc<Self>) -> ProdRing {
        let (producer, consumer, ring, flags, size) = self.raw();
        let r = Box::new(xsk_ring_prod {
            cached_prod: 0,
            cached_cons: size,
            mask: size - 1,
            size,
            producer,
            consumer,
            ring,
            flags,
        });
        ProdRing { r, _mem: Some(self.clone()) }
    }

    /// The consumer's view. It keeps the memory alive.
    pub(super) fn cons(self: &Arc<Self>) -> ConsRing {
        let (producer, consumer, ring, flags, size) = self.raw();
        let r = Box::new(xsk_ring_cons {
            cached_prod: 0,
            cached_cons: 0,
            mask: size - 1,
            size,
            producer,
            consumer,
            ring,
            flags,
        });
        ConsRing { r, _mem: Some(self.clone()) }
    }

    /// Sets or clears the need-wakeup flag, as the kernel does.
    #[cfg(test)]
    pub(super) fn set_need_wakeup(&self, on: bool) {
        self.flags.store(if on { XDP_RING_NEED_WAKEUP } else { 0 }, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn producer_and_consumer_agree_across_wraparound() {
        let mem = RingMemory::new(8);
        let mut p = mem.prod();
        let mut c = mem.cons();
        let mut next_out = 0u64;
        let mut next_in = 0u64;
        for round in 0..100 {
            let n = 1 + round % 7;
            let Some(idx) = p.reserve(n) else { panic!("ring of 8 refused {n} with all slots free") };
            for i in 0..n {
                p.set_addr(idx.wrapping_add(i), next_out);
                next_out += 1;
            }
            assert_eq!(p.pending(), n);
            p.submit();
            let (got, idx) = c.peek(u32::MAX);
            assert_eq!(got, n);
            for i in 0..got {
                assert_eq!(c.addr(idx.wrapping_add(i)), next_in);
                next_in += 1;
            }
            c.release();
            assert_eq!(p.pending(), 0);
        }
    }

    #[test]
    fn reserve_is_all_or_nothing_and_sees_released_slots() {
        let mem = RingMemory::new(4);
        let mut p = mem.prod();
        let mut c = mem.cons();
        assert!(p.reserve(3).is_some());
        p.submit();
        assert_eq!(p.reserve(2), None, "only one slot is free");
        assert_eq!(p.free(1), 1);
        let (n, _) = c.peek(2);
        assert_eq!(n, 2);
        c.release();
        assert_eq!(p.reserve(3), Some(3), "released slots come back");
        assert!(!p.needs_wakeup());
        mem.set_need_wakeup(true);
        assert!(p.needs_wakeup());
    }
}
