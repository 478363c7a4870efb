//! Frame memory: one arena of fixed-size frames per worker, and the free list
//! that hands them out.
//!
//! Every backend shares this shape so a frame received on one port can be
//! sent on another without a copy: an AF_XDP UMEM is an arena (shared UMEM
//! between the interfaces of a worker), and the generator, pcap and sink
//! ports borrow frames from the same pool. A frame is named by its index;
//! the only `unsafe` of the data path lives here and in [`crate::batch`],
//! resting on one invariant: a frame index is owned by exactly one holder at
//! a time (the free list, a batch, a port's ring).

use std::any::Any;
use std::ptr::NonNull;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::packet::{Meta, NewPacket, PktDesc};

/// Bytes per frame. 2048 holds a 1518-byte frame plus encapsulation headroom
/// and is a valid AF_XDP chunk size.
pub const FRAME_SIZE: usize = 2048;

/// Bytes reserved in front of received data so that VXLAN, Geneve, GTP-U or
/// IP-in-IP headers can be pushed without moving the packet (>= 128 needed).
pub const HEADROOM: usize = 256;

/// Largest packet a frame can carry once the headroom is reserved.
pub const MAX_DATA: usize = FRAME_SIZE - HEADROOM;

/// Index of a frame inside its arena.
pub type FrameId = u32;

/// A contiguous region of `frames * FRAME_SIZE` bytes.
pub struct Arena {
    base: NonNull<u8>,
    frames: u32,
    /// Distinguishes arenas, so a packet made from one pool cannot enter a
    /// batch whose frames live in another ([`crate::Batch::push`]).
    id: u32,
    // Keeps the memory alive: a heap buffer here, an mmap'ed UMEM for AF_XDP.
    _owner: Box<dyn Any + Send + Sync>,
}

// SAFETY: the arena is a plain byte region; access to individual frames is
// serialised by the one-owner-per-frame invariant documented above.
unsafe impl Send for Arena {}
unsafe impl Sync for Arena {}

impl Arena {
    /// A zeroed heap arena for in-memory ports (generator, pcap, sink).
    pub fn heap(frames: u32) -> Arc<Self> {
        let mut buf = nfv_net::mem::huge_vec(frames as usize * FRAME_SIZE, 0u8).into_boxed_slice();
        let base = NonNull::new(buf.as_mut_ptr()).expect("non-null heap buffer");
        Arc::new(Self { base, frames, id: next_arena_id(), _owner: Box::new(buf) })
    }

    /// Wraps memory owned elsewhere (an AF_XDP UMEM).
    ///
    /// # Safety
    /// `base` must point to `frames * FRAME_SIZE` writable bytes that stay
    /// valid while `owner` lives, and nothing outside the frame ownership
    /// protocol may write to them (the kernel only touches frames it was
    /// handed through a ring).
    pub unsafe fn from_raw(base: NonNull<u8>, frames: u32, owner: Box<dyn Any + Send + Sync>) -> Arc<Self> {
        Arc::new(Self { base, frames, id: next_arena_id(), _owner: owner })
    }

    /// This arena's identity among the arenas of the process.
    #[inline(always)]
    pub(crate) fn id(&self) -> u32 {
        self.id
    }

    /// Number of frames in the arena.
    pub fn frames(&self) -> u32 {
        self.frames
    }

    /// Start of the arena, for backends that hand addresses to a kernel.
    pub fn base(&self) -> NonNull<u8> {
        self.base
    }

    /// Raw pointer to a frame's first byte.
    #[inline(always)]
    pub(crate) fn frame_ptr(&self, id: FrameId) -> *mut u8 {
        debug_assert!(id < self.frames, "frame {id} outside arena of {}", self.frames);
        // SAFETY: id < frames keeps the offset inside the region.
        unsafe { self.base.as_ptr().add(id as usize * FRAME_SIZE) }
    }
}

fn next_arena_id() -> u32 {
    static NEXT: AtomicU32 = AtomicU32::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// The frames of an arena that nobody holds right now.
///
/// Ports take frames here to receive into and give them back when a packet
/// is transmitted (sink, pcap) or dropped. A LIFO stack keeps recently used,
/// cache-warm frames in circulation.
pub struct FramePool {
    arena: Arc<Arena>,
    free: Vec<FrameId>,
}

impl FramePool {
    /// A pool over a fresh heap arena of `frames` frames: the pool of an
    /// in-memory worker, a test or a benchmark.
    pub fn heap(frames: u32) -> Self {
        Self::new(Arena::heap(frames))
    }

    /// A pool owning every frame of `arena`. Crate-private: two pools over
    /// one arena would hand out the same frames twice.
    pub(crate) fn new(arena: Arc<Arena>) -> Self {
        let free = (0..arena.frames()).rev().collect();
        Self { arena, free }
    }

    /// The arena this pool draws from.
    pub fn arena(&self) -> &Arc<Arena> {
        &self.arena
    }

    /// Takes a free frame, or `None` when every frame is in use.
    #[inline]
    pub(crate) fn alloc(&mut self) -> Option<FrameId> {
        self.free.pop()
    }

    /// Returns a frame to the pool. The caller gives up every reference to it.
    #[inline]
    pub(crate) fn free(&mut self, id: FrameId) {
        debug_assert!(self.free.len() < self.arena.frames() as usize, "double free of frame {id}");
        self.free.push(id);
    }

    /// Takes `n` free frames at once (`n <= available()`), for a port that
    /// lends a chunk of frames to a kernel ring.
    #[cfg_attr(not(feature = "af-xdp"), allow(dead_code))] // the AF_XDP rings' bulk moves
    #[inline]
    pub(crate) fn alloc_bulk(&mut self, n: usize) -> std::vec::Drain<'_, FrameId> {
        let len = self.free.len();
        self.free.drain(len - n..)
    }

    /// Returns many frames at once (an AF_XDP completion ring's worth).
    #[cfg_attr(not(feature = "af-xdp"), allow(dead_code))] // the AF_XDP rings' bulk moves
    #[inline]
    pub(crate) fn free_bulk(&mut self, ids: impl IntoIterator<Item = FrameId>) {
        self.free.extend(ids);
        debug_assert!(self.free.len() <= self.arena.frames() as usize, "double free");
    }

    /// Frames currently free.
    pub fn available(&self) -> usize {
        self.free.len()
    }

    /// The whole frame, for a port filling a frame it just allocated.
    #[inline]
    pub(crate) fn frame_mut(&mut self, id: FrameId) -> &mut [u8; FRAME_SIZE] {
        // SAFETY: the caller holds `id` (taken from this pool), so no other
        // reference to the frame exists; `&mut self` prevents a second
        // borrow through the pool.
        unsafe { &mut *(self.arena.frame_ptr(id) as *mut [u8; FRAME_SIZE]) }
    }

    /// The whole frame, read-only, for a port transmitting it.
    #[inline]
    pub(crate) fn frame(&self, id: FrameId) -> &[u8; FRAME_SIZE] {
        // SAFETY: as for `frame_mut`; shared access while the caller holds id.
        unsafe { &*(self.arena.frame_ptr(id) as *const [u8; FRAME_SIZE]) }
    }

    /// A new packet holding a copy of `data`, with metadata `meta` (its
    /// port, and what a parser found), for a stage that replicates or
    /// releases packets. `None` when no frame is free or `data` does not
    /// fit one.
    #[inline]
    pub fn packet_from(&mut self, data: &[u8], meta: Meta) -> Option<NewPacket> {
        let desc = self.desc_from(data, meta)?;
        Some(NewPacket::new(desc, self.arena.id()))
    }

    /// The same for the crate's own copies (a capture's packets, packets
    /// handed over by another worker, slow-path frames): the descriptor
    /// of a fresh frame holding `data` at the headroom.
    #[inline]
    pub(crate) fn desc_from(&mut self, data: &[u8], meta: Meta) -> Option<PktDesc> {
        if data.len() > MAX_DATA {
            return None;
        }
        let id = self.alloc()?;
        self.frame_mut(id)[HEADROOM..HEADROOM + data.len()].copy_from_slice(data);
        let mut desc = PktDesc::new(id, data.len() as u16, meta.port);
        desc.meta = meta;
        Some(desc)
    }

    /// A new packet whose bytes `fill` writes into a fresh frame (the
    /// [`MAX_DATA`] bytes after the headroom, not zeroed), returning their
    /// length; a length over `MAX_DATA` gives the frame back and `None`,
    /// as does an exhausted pool.
    #[inline]
    pub fn build_packet(&mut self, meta: Meta, fill: impl FnOnce(&mut [u8; MAX_DATA]) -> usize) -> Option<NewPacket> {
        let id = self.alloc()?;
        let frame = self.frame_mut(id);
        let room: &mut [u8; MAX_DATA] = (&mut frame[HEADROOM..]).try_into().expect("frame minus headroom");
        let len = fill(room);
        if len > MAX_DATA {
            self.free(id);
            return None;
        }
        let mut desc = PktDesc::new(id, len as u16, meta.port);
        desc.meta = meta;
        Some(NewPacket::new(desc, self.arena.id()))
    }

    /// Gives a packet that will not be sent back to the pool.
    #[inline]
    pub fn discard(&mut self, p: NewPacket) {
        assert_eq!(p.arena(), self.arena.id(), "a packet given back to a pool it did not come from");
        self.free(p.into_desc().frame);
    }
}
