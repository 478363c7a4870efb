//! Software steering between the workers of one chain.
//!
//! Flow state is per worker (shared nothing). When the NIC cannot put
//! both directions of a flow on the worker that holds its state (NAT
//! return traffic: the outside port's RSS hashes a different 5-tuple), a
//! stage hands the packet off ([`crate::PacketMut::hand_off`]) and the
//! owning worker's instance of the same stage takes it from there, like
//! VPP's handoff nodes.
//!
//! Each worker has a bounded inbox (a lock-free `crossbeam` queue). Workers
//! own separate frame pools (an AF_XDP UMEM each), so the bytes are copied
//! into a buffer from a shared free list, and out of it into a frame of
//! the receiver's pool: no allocation once the buffers exist, no lock, no
//! system call. A full inbox or an empty free list drops the packet, and
//! the dispatcher counts it.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crossbeam::queue::ArrayQueue;

use crate::frame::MAX_DATA;
use crate::packet::Meta;

/// Packets each worker's inbox holds (four full batches).
pub const INBOX_DEPTH: usize = 1024;

/// One packet on its way to another worker.
pub struct HandoffFrame {
    /// Its metadata (parsed offsets stay true: the bytes are copied as
    /// they are), the port it counts as arriving on included.
    pub meta: Meta,
    /// Chain position the receiver resumes at.
    pub stage: u8,
    /// The packet's bytes (a buffer of the free list).
    pub data: Vec<u8>,
}

/// The inboxes of one chain's workers, indexed by rank.
pub struct Handoff {
    inboxes: Vec<ArrayQueue<HandoffFrame>>,
    free: ArrayQueue<Vec<u8>>,
    /// Workers whose sources are exhausted (finite runs): a worker leaves
    /// only when every one is, and its inbox is empty, so nothing handed
    /// to it is left behind.
    exhausted: AtomicUsize,
}

/// Why a packet could not be handed off.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HandoffError {
    /// No worker has that rank.
    NoWorker,
    /// The receiver's inbox is full (it is slower than its senders), or
    /// every buffer is in flight.
    Full,
}

impl Handoff {
    /// Inboxes for `workers` workers, `depth` packets each, and the
    /// buffers to fill them all.
    pub fn new(workers: usize, depth: usize) -> Arc<Self> {
        let buffers = workers * depth;
        let free = ArrayQueue::new(buffers);
        for _ in 0..buffers {
            let _ = free.push(Vec::with_capacity(MAX_DATA));
        }
        let inboxes = (0..workers).map(|_| ArrayQueue::new(depth)).collect();
        Arc::new(Self { inboxes, free, exhausted: AtomicUsize::new(0) })
    }

    /// Workers served.
    pub fn workers(&self) -> usize {
        self.inboxes.len()
    }

    /// Copies `data` into the inbox of worker `to`.
    #[inline]
    pub fn send(&self, to: usize, meta: Meta, stage: u8, data: &[u8]) -> Result<(), HandoffError> {
        let inbox = self.inboxes.get(to).ok_or(HandoffError::NoWorker)?;
        let mut buf = self.free.pop().ok_or(HandoffError::Full)?;
        buf.clear();
        buf.extend_from_slice(data);
        inbox.push(HandoffFrame { meta, stage, data: buf }).map_err(|f| {
            let _ = self.free.push(f.data);
            HandoffError::Full
        })
    }

    /// The next packet for worker `rank`, if any.
    #[inline]
    pub fn receive(&self, rank: usize) -> Option<HandoffFrame> {
        self.inboxes[rank].pop()
    }

    /// True when worker `rank` has nothing waiting.
    #[inline]
    pub fn is_empty(&self, rank: usize) -> bool {
        self.inboxes[rank].is_empty()
    }

    /// Says (once per worker) that a worker's own sources are exhausted.
    pub fn mark_exhausted(&self) {
        self.exhausted.fetch_add(1, Ordering::AcqRel);
    }

    /// True when every worker's sources are exhausted: from then on only
    /// packets already in the inboxes remain.
    pub fn all_exhausted(&self) -> bool {
        self.exhausted.load(Ordering::Acquire) >= self.inboxes.len()
    }

    /// Gives a received packet's buffer back.
    #[inline]
    pub fn recycle(&self, buf: Vec<u8>) {
        let _ = self.free.push(buf);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packets_reach_their_worker_in_order_and_a_full_inbox_refuses() {
        let h = Handoff::new(2, 4);
        let meta = Meta { port: 3, ..Meta::default() };
        for i in 0..4u8 {
            h.send(1, meta, 2, &[i; 60]).unwrap();
        }
        assert_eq!(h.send(1, meta, 2, &[9; 60]), Err(HandoffError::Full));
        assert_eq!(h.send(2, meta, 2, &[9; 60]), Err(HandoffError::NoWorker));
        assert!(h.is_empty(0));
        for i in 0..4u8 {
            let f = h.receive(1).unwrap();
            assert_eq!((f.meta.port, f.stage, f.data[0], f.data.len()), (3, 2, i, 60));
            h.recycle(f.data);
        }
        assert!(h.receive(1).is_none());
        assert_eq!(h.free.len(), 8, "every buffer back");
    }
}
