//! Usage counters of URRs (TS 29.244 5.2.2): what the data path counts
//! and the N4 endpoint reads for its usage reports.
//!
//! Each URR has a slot, numbered by the control side; each worker counts
//! into its own lane of slots (one writer per lane: a plain load and store,
//! no atomic read-modify-write, no line shared between workers). The
//! control side sums a slot over the lanes. Counters only grow: a report
//! is the difference from the sums at the previous one, so nothing the
//! workers write is ever reset under them.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, OnceLock};

use nfv_core::offload::{USAGE_SLOTS, UsageReader};
use std::time::{Duration, Instant};

/// A PDR without a URR (the slot of none).
pub const NO_URR: u32 = u32::MAX;

/// One URR's counts: octets and packets each way (TS 29.244 8.2.40
/// Volume Measurement). Octets are the T-PDU's (the inner IP packet's),
/// the GTP-U/UDP/IP outer headers not counted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Uplink octets.
    pub ul_bytes: u64,
    /// Uplink packets.
    pub ul_packets: u64,
    /// Downlink octets.
    pub dl_bytes: u64,
    /// Downlink packets.
    pub dl_packets: u64,
}

impl Counts {
    /// What was counted since `base`.
    pub fn since(self, base: Counts) -> Counts {
        Counts {
            ul_bytes: self.ul_bytes.wrapping_sub(base.ul_bytes),
            ul_packets: self.ul_packets.wrapping_sub(base.ul_packets),
            dl_bytes: self.dl_bytes.wrapping_sub(base.dl_bytes),
            dl_packets: self.dl_packets.wrapping_sub(base.dl_packets),
        }
    }

    /// Octets both ways.
    pub fn total_bytes(&self) -> u64 {
        self.ul_bytes + self.dl_bytes
    }
}

/// One URR's counters on one worker: half a cache line.
#[derive(Debug, Default)]
#[repr(C, align(32))]
struct Slot {
    ul_bytes: AtomicU64,
    ul_packets: AtomicU64,
    dl_bytes: AtomicU64,
    dl_packets: AtomicU64,
}

/// One worker's slots. Only that worker writes them.
#[derive(Debug)]
pub struct Lane {
    slots: Box<[Slot]>,
}

impl Lane {
    /// Counts a packet of `bytes` octets for the URR in `slot`.
    #[inline(always)]
    pub fn count(&self, slot: u32, downlink: bool, bytes: u64) {
        let Some(s) = self.slots.get(slot as usize) else { return };
        let (b, p) = if downlink { (&s.dl_bytes, &s.dl_packets) } else { (&s.ul_bytes, &s.ul_packets) };
        // One writer: load and store, no locked instruction.
        b.store(b.load(Relaxed) + bytes, Relaxed);
        p.store(p.load(Relaxed) + 1, Relaxed);
    }

    /// Whether it has slots at all (none without N4: nothing to prefetch).
    #[inline(always)]
    pub fn counts_anything(&self) -> bool {
        !self.slots.is_empty()
    }

    /// Starts loading `slot`'s counters (a batch's first pass).
    #[inline(always)]
    pub fn prefetch(&self, slot: u32) {
        if let Some(s) = self.slots.get(slot as usize) {
            nfv_net::mem::prefetch(s);
        }
    }

    fn read(&self, slot: u32) -> Counts {
        self.slots.get(slot as usize).map_or_else(Counts::default, |s| Counts {
            ul_bytes: s.ul_bytes.load(Relaxed),
            ul_packets: s.ul_packets.load(Relaxed),
            dl_bytes: s.dl_bytes.load(Relaxed),
            dl_packets: s.dl_packets.load(Relaxed),
        })
    }
}

/// Every worker's lane, and the slots handed out to URRs.
#[derive(Debug)]
pub struct Usage {
    capacity: u32,
    lanes: Mutex<Vec<Arc<Lane>>>,
    slots: Mutex<SlotPool>,
    /// Per slot: [`VOLUME`], [`BELOW`].
    marks: Box<[AtomicU8]>,
    /// What the XDP program counted, when sessions are offloaded.
    below: OnceLock<UsageReader>,
}

/// A slot's URR has a volume threshold to watch: its PDRs stay in the
/// workers (the N4 side checks thresholds every millisecond; reading the
/// program's counts that often would be a system call per URR).
const VOLUME: u8 = 1;
/// The XDP program may have counted into the slot: its counts are read
/// too (never cleared: counts only grow, reports are differences).
const BELOW: u8 = 2;

/// Slots in use and free. A freed slot rests a while before it is handed
/// out again, so that a worker still on the previous rules version
/// cannot count into the slot's next URR.
#[derive(Debug, Default)]
struct SlotPool {
    next: u32,
    resting: VecDeque<(Instant, u32)>,
}

/// How long a freed slot rests: far longer than a worker takes to pick up
/// a new rules version (between two batches).
const REST: Duration = Duration::from_secs(1);

impl Usage {
    /// Room for `capacity` URRs at once (each worker's lane takes 32
    /// octets per URR).
    pub fn new(capacity: u32) -> Arc<Self> {
        Arc::new(Self {
            capacity,
            lanes: Mutex::new(Vec::new()),
            slots: Mutex::new(SlotPool::default()),
            marks: (0..capacity).map(|_| AtomicU8::new(0)).collect(),
            below: OnceLock::new(),
        })
    }

    /// A new worker's lane (at build time).
    pub fn lane(&self) -> Arc<Lane> {
        let lane = Arc::new(Lane { slots: (0..self.capacity).map(|_| Slot::default()).collect() });
        self.lanes.lock().expect("usage lanes").push(lane.clone());
        lane
    }

    /// A slot's counts summed over the workers and, where sessions were
    /// offloaded, the XDP program (a system call: the control side only).
    pub fn read(&self, slot: u32) -> Counts {
        let lanes = self.lanes.lock().expect("usage lanes");
        let below = match (self.below.get(), self.mark(slot) & BELOW) {
            (Some(r), BELOW) => {
                let c = r.read(slot);
                Counts {
                    ul_bytes: c.ul_bytes,
                    ul_packets: c.ul_packets,
                    dl_bytes: c.dl_bytes,
                    dl_packets: c.dl_packets,
                }
            }
            _ => Counts::default(),
        };
        lanes.iter().map(|l| l.read(slot)).fold(below, |a, c| Counts {
            ul_bytes: a.ul_bytes + c.ul_bytes,
            ul_packets: a.ul_packets + c.ul_packets,
            dl_bytes: a.dl_bytes + c.dl_bytes,
            dl_packets: a.dl_packets + c.dl_packets,
        })
    }

    fn mark(&self, slot: u32) -> u8 {
        self.marks.get(slot as usize).map_or(0, |m| m.load(Relaxed))
    }

    /// Where the XDP program's counts are read from (once, when the
    /// stage is offloaded).
    pub fn read_below(&self, r: UsageReader) {
        let _ = self.below.set(r);
    }

    /// Whether a PDR counting into `slot` may be forwarded in XDP (no
    /// URR, or one without a volume threshold whose slot the program
    /// has): if so, the slot's XDP counts are read from now on.
    pub fn offloadable(&self, slot: u32) -> bool {
        if slot == NO_URR {
            return true;
        }
        let Some(m) = self.marks.get(slot as usize).filter(|_| slot < USAGE_SLOTS) else { return false };
        if m.load(Relaxed) & VOLUME != 0 {
            return false;
        }
        m.fetch_or(BELOW, Relaxed);
        true
    }

    /// Whether `slot`'s URR has a volume threshold to watch (set by the
    /// N4 side before it publishes the rules naming it).
    pub fn watch_volume(&self, slot: u32, on: bool) {
        if let Some(m) = self.marks.get(slot as usize) {
            if on {
                m.fetch_or(VOLUME, Relaxed);
            } else {
                m.fetch_and(!VOLUME, Relaxed);
            }
        }
    }

    /// A slot for a new URR, or `None` when all are taken (the session is
    /// refused: no resources).
    pub fn allocate(&self) -> Option<u32> {
        let mut pool = self.slots.lock().expect("usage slots");
        if let Some(&(since, slot)) = pool.resting.front()
            && since.elapsed() >= REST
        {
            pool.resting.pop_front();
            return Some(slot);
        }
        if pool.next < self.capacity {
            pool.next += 1;
            return Some(pool.next - 1);
        }
        None
    }

    /// Gives a removed URR's slot back.
    pub fn free(&self, slot: u32) {
        self.watch_volume(slot, false);
        self.slots.lock().expect("usage slots").resting.push_back((Instant::now(), slot));
    }

    /// Slots at most (`max-urrs`).
    pub fn capacity(&self) -> u32 {
        self.capacity
    }

    /// Slots in use.
    pub fn in_use(&self) -> u32 {
        let pool = self.slots.lock().expect("usage slots");
        pool.next - pool.resting.len() as u32
    }

    /// Octets the lanes take.
    pub fn bytes(&self) -> usize {
        self.lanes.lock().expect("usage lanes").len() * self.capacity as usize * size_of::<Slot>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lanes_add_up_and_slots_rest_before_reuse() {
        let u = Usage::new(2);
        let (a, b) = (u.lane(), u.lane());
        let (s0, s1) = (u.allocate().unwrap(), u.allocate().unwrap());
        assert_eq!(u.allocate(), None, "full");
        a.count(s0, false, 100);
        b.count(s0, false, 50);
        b.count(s0, true, 1000);
        a.count(s1, true, 7);
        a.count(NO_URR, true, 7);
        let c = u.read(s0);
        assert_eq!(c, Counts { ul_bytes: 150, ul_packets: 2, dl_bytes: 1000, dl_packets: 1 });
        assert_eq!(c.since(Counts { ul_bytes: 100, ul_packets: 1, ..Counts::default() }).ul_bytes, 50);
        u.free(s1);
        assert_eq!((u.allocate(), u.in_use()), (None, 1), "a freed slot rests");
        std::thread::sleep(REST);
        assert_eq!(u.allocate(), Some(s1));
        assert_eq!(u.bytes(), 2 * 2 * 32);
    }
}
