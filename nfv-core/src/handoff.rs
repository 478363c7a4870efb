//! Software steering between the workers of one chain.
//!
//! Flow state is per worker (shared nothing). When the NIC cannot put
//! both directions of a flow on the worker that holds its state (NAT
//! return traffic: the outside port's RSS hashes a different 5-tuple), a
//! stage hands the packet off ([`crate::PacketMut::hand_off`]) and the
//! owning worker's instance of the same stage takes it from there, like
//! VPP's handoff nodes.
//!
//! Each worker has a bounded inbox of batches (a lock-free `crossbeam`
//! queue). Workers own separate frame pools (an AF_XDP UMEM each), so the
//! bytes are copied: a sender gathers what one poll (all its rx batches)
//! hands to a worker into one [`HandoffBatch`] from a shared free list,
//! and queues it once; the receiver copies each packet into a frame of its
//! own pool. Per batch, not per packet: four queue operations; per packet,
//! two copies of its bytes. No allocation once the buffers exist, no lock,
//! no system call. A full inbox or an empty free list drops the packets,
//! and the dispatcher counts them. Buffers reserve room for full batches,
//! but memory is only touched as packets fill it.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crossbeam::queue::ArrayQueue;

use crate::frame::MAX_DATA;
use crate::packet::{Egress, Meta};

/// Batches each worker's inbox holds (polls' worth: a receiver that
/// naps while idle must not lose a burst of sparse traffic).
pub const INBOX_DEPTH: usize = 64;

/// Packets one sender's batch hands to one worker.
pub struct HandoffBatch {
    /// (metadata, egress, (chain, position) to resume at, end of its bytes).
    pkts: Vec<(Meta, Egress, (u8, u8), u32)>,
    bytes: Vec<u8>,
}

impl HandoffBatch {
    /// Room for `pkts` full-sized packets, reserved now.
    fn with_capacity(pkts: usize) -> Self {
        Self { pkts: Vec::with_capacity(pkts), bytes: Vec::with_capacity(pkts * MAX_DATA) }
    }

    /// Adds a packet: its metadata (the port it counts as arriving on
    /// included; parsed offsets stay true, the bytes are copied as they
    /// are), the egress an earlier stage decided, the chain and position
    /// to resume at, its bytes.
    #[inline]
    pub fn push(&mut self, meta: Meta, egress: Egress, at: (u8, u8), data: &[u8]) {
        self.bytes.extend_from_slice(data);
        self.pkts.push((meta, egress, at, self.bytes.len() as u32));
    }

    /// Packets held.
    pub fn len(&self) -> usize {
        self.pkts.len()
    }

    /// True when it holds as many packets as it has room for (the sender
    /// queues it then and starts another: it never grows).
    pub fn is_full(&self) -> bool {
        self.pkts.len() == self.pkts.capacity()
    }

    /// True when it holds none.
    pub fn is_empty(&self) -> bool {
        self.pkts.is_empty()
    }

    /// The packets, in the order they were added: (metadata, egress,
    /// (chain, position), bytes).
    pub fn iter(&self) -> impl Iterator<Item = (Meta, Egress, (u8, u8), &[u8])> {
        let mut start = 0;
        self.pkts.iter().map(move |&(meta, egress, at, end)| {
            let data = &self.bytes[start..end as usize];
            start = end as usize;
            (meta, egress, at, data)
        })
    }

    fn clear(&mut self) {
        self.pkts.clear();
        self.bytes.clear();
    }
}

/// The inboxes of one chain's workers, indexed by rank.
pub struct Handoff {
    inboxes: Vec<ArrayQueue<HandoffBatch>>,
    free: ArrayQueue<HandoffBatch>,
    /// Workers whose sources are exhausted (finite runs): a worker leaves
    /// only when every one is, and its inbox is empty, so nothing handed
    /// to it is left behind.
    exhausted: AtomicUsize,
}

/// Why a batch could not be handed off.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HandoffError {
    /// No worker has that rank.
    NoWorker,
    /// The receiver's inbox is full (it is slower than its senders).
    Full,
}

impl Handoff {
    /// Inboxes of `depth` batches for `workers` workers, and the buffers
    /// to fill them all and one more per worker, each with room for
    /// `batch` packets.
    pub fn new(workers: usize, depth: usize, batch: usize) -> Arc<Self> {
        let buffers = workers * (depth + 1);
        let free = ArrayQueue::new(buffers);
        for _ in 0..buffers {
            let _ = free.push(HandoffBatch::with_capacity(batch));
        }
        let inboxes = (0..workers).map(|_| ArrayQueue::new(depth)).collect();
        Arc::new(Self { inboxes, free, exhausted: AtomicUsize::new(0) })
    }

    /// Workers served.
    pub fn workers(&self) -> usize {
        self.inboxes.len()
    }

    /// An empty batch to fill, if a buffer is free.
    #[inline]
    pub fn batch(&self) -> Option<HandoffBatch> {
        self.free.pop()
    }

    /// Queues `batch` for worker `to`; on failure, gives it back (the
    /// caller counts its packets and recycles it).
    #[inline]
    pub fn send(&self, to: usize, batch: HandoffBatch) -> Result<(), (HandoffError, HandoffBatch)> {
        match self.inboxes.get(to) {
            Some(inbox) => inbox.push(batch).map_err(|b| (HandoffError::Full, b)),
            None => Err((HandoffError::NoWorker, batch)),
        }
    }

    /// The next batch for worker `rank`, if any.
    #[inline]
    pub fn receive(&self, rank: usize) -> Option<HandoffBatch> {
        self.inboxes[rank].pop()
    }

    /// True when worker `rank` has nothing waiting.
    #[inline]
    pub fn is_empty(&self, rank: usize) -> bool {
        self.inboxes[rank].is_empty()
    }

    /// Gives a batch buffer back, emptied.
    #[inline]
    pub fn recycle(&self, mut batch: HandoffBatch) {
        batch.clear();
        let _ = self.free.push(batch);
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_reach_their_worker_in_order_and_a_full_inbox_refuses() {
        let h = Handoff::new(2, 2, 64);
        let meta = |port| Meta { port, ..Meta::default() };
        for round in 0..2u8 {
            let mut b = h.batch().unwrap();
            for i in 0..3u8 {
                b.push(meta(i as u16), Egress::port(7), (1, 2), &vec![round * 10 + i; 60 + i as usize]);
            }
            h.send(1, b).map_err(|e| e.0).unwrap();
        }
        let b = h.batch().unwrap();
        let (e, b) = h.send(1, b).unwrap_err();
        assert_eq!(e, HandoffError::Full);
        let (e, b) = h.send(2, b).unwrap_err();
        assert_eq!(e, HandoffError::NoWorker);
        h.recycle(b);
        assert!(h.is_empty(0));
        for round in 0..2u8 {
            let b = h.receive(1).unwrap();
            let got: Vec<(u16, (u8, u8), u8, usize)> =
                b.iter().map(|(m, _, s, d)| (m.port, s, d[0], d.len())).collect();
            let r = round * 10;
            assert_eq!(got, vec![(0, (1, 2), r, 60), (1, (1, 2), r + 1, 61), (2, (1, 2), r + 2, 62)]);
            h.recycle(b);
        }
        assert!(h.receive(1).is_none());
        assert_eq!(h.free.len(), 6, "every buffer back");
    }
}
