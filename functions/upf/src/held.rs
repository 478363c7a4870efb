//! Downlink packets a worker holds for sessions whose FAR says buffer (TS
//! 29.244 5.2.3.1: a UE in idle mode is paged; its packets wait until the
//! SMF's modification makes the FAR forward, or drop).
//!
//! Copies, in slots allocated once: the frames themselves go back to the
//! pool at once, so a held packet never pins a ring's frame. Arrival order
//! is kept across sessions; each session holds at most
//! [`PER_SESSION`] packets and the worker at most its slot count: past
//! either, the packet is dropped and counted.

use std::collections::VecDeque;

use rustc_hash::FxHashMap;

/// Packets one session may have held (TS 29.244 leaves the amount to the
/// UP function unless a BAR suggests one).
pub const PER_SESSION: u16 = 64;

/// Largest frame held (an Ethernet frame of a 1500-octet packet, and
/// room).
pub const SLOT: usize = 1536;

/// One held packet: the UE it is for, where its bytes are, how many, and
/// when it came (cycle counter).
#[derive(Clone, Copy, Debug)]
pub struct Entry {
    /// The UE's key downlink: its IPv4 address, or its IPv6 /64.
    pub ue: u64,
    slot: u32,
    /// Frame length.
    pub len: u16,
    /// Arrival, in cycle-counter ticks.
    pub at: u64,
}

/// Why a packet was not held.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refused {
    /// The worker's slots are all taken, or the session holds its share.
    Full,
    /// Larger than a slot.
    TooLarge,
}

/// A worker's held packets.
#[derive(Debug)]
pub struct Held {
    bytes: Vec<u8>,
    free: Vec<u32>,
    order: VecDeque<Entry>,
    per_ue: FxHashMap<u64, u16>,
}

impl Held {
    /// Room for `slots` packets, allocated now (none on the data path).
    pub fn new(slots: usize) -> Self {
        let mut per_ue = FxHashMap::default();
        per_ue.reserve(slots);
        Self {
            bytes: vec![0; slots * SLOT],
            free: (0..slots as u32).rev().collect(),
            order: VecDeque::with_capacity(slots),
            per_ue,
        }
    }

    /// Nothing held.
    #[inline(always)]
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    /// Packets held for UE `ue`.
    #[inline]
    pub fn holds_for(&self, ue: u64) -> bool {
        self.per_ue.contains_key(&ue)
    }

    /// Holds a copy of `frame` for `ue`, arrived at `at`; `Ok(true)` when
    /// it is the session's first held packet (the SMF is to hear of it).
    pub fn hold(&mut self, ue: u64, frame: &[u8], at: u64) -> Result<bool, Refused> {
        if frame.len() > SLOT {
            return Err(Refused::TooLarge);
        }
        let count = self.per_ue.get(&ue).copied().unwrap_or(0);
        if count >= PER_SESSION {
            return Err(Refused::Full);
        }
        let slot = self.free.pop().ok_or(Refused::Full)?;
        let at_byte = slot as usize * SLOT;
        self.bytes[at_byte..at_byte + frame.len()].copy_from_slice(frame);
        self.order.push_back(Entry { ue, slot, len: frame.len() as u16, at });
        self.per_ue.insert(ue, count + 1);
        Ok(count == 0)
    }

    /// Goes over the held packets in arrival order: `f(entry, bytes)`
    /// returns true for one that stays, false for one it took out (sent
    /// on, or dropped); a taken one's slot is freed. At most `max` are
    /// taken out per call (the rest stay, in order, for the next); returns
    /// how many were.
    pub fn sweep(&mut self, max: usize, mut f: impl FnMut(&Entry, &[u8]) -> bool) -> usize {
        let mut taken = 0;
        for _ in 0..self.order.len() {
            let e = self.order.pop_front().expect("counted");
            let at = e.slot as usize * SLOT;
            if taken >= max || f(&e, &self.bytes[at..at + e.len as usize]) {
                self.order.push_back(e);
                continue;
            }
            taken += 1;
            self.free.push(e.slot);
            match self.per_ue.get_mut(&e.ue) {
                Some(c) if *c > 1 => *c -= 1,
                _ => {
                    self.per_ue.remove(&e.ue);
                }
            }
        }
        taken
    }

    /// Packets held.
    pub fn len(&self) -> usize {
        self.order.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn held_packets_leave_in_order_and_the_limits_hold() {
        let mut h = Held::new(100);
        assert_eq!(h.hold(1, b"a1", 0), Ok(true), "the session's first");
        assert_eq!(h.hold(2, b"b1", 0), Ok(true));
        assert_eq!(h.hold(1, b"a2", 0), Ok(false));
        assert_eq!(h.hold(1, &[0; SLOT + 1], 0), Err(Refused::TooLarge));
        // UE 1's packets leave, UE 2's stay.
        let mut out = Vec::new();
        let taken = h.sweep(10, |e, b| {
            if e.ue == 2 {
                return true;
            }
            out.push(b.to_vec());
            false
        });
        assert_eq!(taken, 2);
        assert_eq!(out, vec![b"a1".to_vec(), b"a2".to_vec()]);
        assert!(!h.holds_for(1) && h.holds_for(2) && h.len() == 1);
        for i in 0..PER_SESSION - 1 {
            assert!(h.hold(2, &[i as u8], 0).is_ok());
        }
        assert_eq!(h.hold(2, b"over", 0), Err(Refused::Full), "a session's share");
        // At most `max` leave per sweep; the rest stay, in order.
        let mut firsts = Vec::new();
        assert_eq!(
            h.sweep(3, |_, b| {
                firsts.push(b.to_vec());
                false
            }),
            3
        );
        assert_eq!(firsts, vec![b"b1".to_vec(), vec![0], vec![1]]);
        assert_eq!(h.len(), PER_SESSION as usize - 3);
        let mut small = Held::new(1);
        assert!(small.hold(7, b"x", 0).is_ok());
        assert_eq!(small.hold(8, b"y", 0), Err(Refused::Full), "the worker's slots");
    }
}
