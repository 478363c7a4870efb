//! A software stand-in for the kernel side of the four AF_XDP rings.
//!
//! It runs the real [`AfXdpPort`] code against rings in plain memory: the
//! "kernel" completes every transmitted frame and receives a template
//! packet into each frame of the fill ring. Unit tests use it to check the
//! frame accounting; the instruction-count benchmark uses it to measure
//! what nfv spends per packet outside the kernel, which is what decides
//! speed on a zero-copy NIC (veth only offers copy mode, whose kernel cost
//! hides ours).

use std::sync::Arc;

use super::AfXdpPort;
use super::ring::{ConsRing, ProdRing, RingMemory};
use super::socket::Rings;
use crate::frame::{Arena, FRAME_SIZE, HEADROOM};
use crate::port::PortInfo;

/// The kernel side of a loopback port.
pub struct Loopback {
    rx: ProdRing,
    tx: ConsRing,
    fill: ConsRing,
    comp: ProdRing,
    arena: Arc<Arena>,
    template: Vec<u8>,
    /// Frames "received" so far.
    pub received: u64,
    /// Frames "transmitted" (completed) so far.
    pub transmitted: u64,
}

impl Loopback {
    /// A port over `arena` whose kernel side receives copies of `template`
    /// (at most `FRAME_SIZE - HEADROOM` bytes). `ring` is every ring's size.
    pub fn port(info: PortInfo, arena: Arc<Arena>, ring: u32, batch: usize, template: &[u8]) -> (AfXdpPort, Self) {
        assert!(template.len() <= FRAME_SIZE - HEADROOM);
        let mem = [RingMemory::new(ring), RingMemory::new(ring), RingMemory::new(ring), RingMemory::new(ring)];
        let user = Rings { rx: mem[0].cons(), tx: mem[1].prod(), fill: mem[2].prod(), comp: mem[3].cons() };
        let kernel = Self {
            rx: mem[0].prod(),
            tx: mem[1].cons(),
            fill: mem[2].cons(),
            comp: mem[3].prod(),
            arena,
            template: template.to_vec(),
            received: 0,
            transmitted: 0,
        };
        let mut port = AfXdpPort::with_queues(info, user, None, -1, false, batch);
        port.arena = Some(kernel.arena.id());
        (port, kernel)
    }

    /// One turn of the kernel: completes every transmitted frame, then
    /// receives up to `max` packets into frames from the fill ring.
    /// Never inlined, so profiles can subtract it.
    #[inline(never)]
    pub fn step(&mut self, max: u32) {
        let (n, idx) = self.tx.peek(u32::MAX);
        if n > 0 {
            let room = self.comp.reserve(n).expect("completion ring as large as tx ring");
            for i in 0..n {
                self.comp.set_addr(room.wrapping_add(i), self.tx.desc(idx.wrapping_add(i)).addr);
            }
            self.tx.release();
            self.comp.submit();
            self.transmitted += n as u64;
        }
        let free = self.rx.free(max);
        let (n, idx) = self.fill.peek(max.min(free));
        if n == 0 {
            return;
        }
        let room = self.rx.reserve(n).expect("checked free space");
        for i in 0..n {
            // Aligned mode: the chunk base, data after the headroom.
            let chunk = self.fill.addr(idx.wrapping_add(i)) & !(FRAME_SIZE as u64 - 1);
            let frame = (chunk / FRAME_SIZE as u64) as u32;
            let p = self.arena.frame_ptr(frame);
            // SAFETY: the frame was handed to the "kernel" through the fill
            // ring, so nobody else references it; the template fits.
            unsafe { std::ptr::copy_nonoverlapping(self.template.as_ptr(), p.add(HEADROOM), self.template.len()) };
            self.rx.set_desc(room.wrapping_add(i), chunk + HEADROOM as u64, self.template.len() as u32);
        }
        self.fill.release();
        self.rx.submit();
        self.received += n as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::Batch;
    use crate::frame::FramePool;
    use crate::port::Port;

    #[test]
    fn every_frame_comes_back_and_bytes_arrive_intact() {
        let mut pool = FramePool::heap(512);
        let arena = pool.arena().clone();
        let template: Vec<u8> = (0..64u8).collect();
        let info = PortInfo::new(0, "lo", [2, 0, 0, 0, 0, 1], super::super::AfXdpDrop::NAMES);
        let (mut port, mut kernel) = Loopback::port(info, arena.clone(), 128, 32, &template);
        let mut batch = Batch::new(arena, 32);
        let mut out = Vec::new();
        for _ in 0..1000 {
            kernel.step(32);
            let n = port.rx_burst(&mut pool, &mut batch);
            assert_eq!(batch.len(), n);
            for i in 0..n {
                assert_eq!(batch.data(i), &template[..]);
            }
            batch.drain(|d| out.push(d));
            port.tx_burst(&mut pool, &mut out);
        }
        kernel.step(0);
        port.flush(&mut pool);
        assert!(kernel.received > 20_000, "only {} received", kernel.received);
        assert_eq!(kernel.received, kernel.transmitted);
        // All frames are either free or waiting in the fill ring.
        let in_fill = 128 - port.q.fill.free(128);
        assert_eq!(pool.available() + in_fill as usize, 512);
    }
}
