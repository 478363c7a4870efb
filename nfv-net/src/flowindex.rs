//! A fixed-size hash index from flow keys to slot numbers, for the flow
//! tables of network functions (NAT sessions, LB connections) that hold
//! millions of entries on the hot path: no allocation after creation, no
//! tombstones, no rehash, ever.
//!
//! Buckets are one cache line: seven (tag, slot) pairs and an overflow
//! count. An entry lives in its home bucket (hash & mask) or, when that is
//! full, in the next bucket with room (linear probing by bucket); every
//! bucket it passed counts it in `overflow`. A lookup walks from the home
//! bucket and stops at the first bucket whose `overflow` is 0: nothing
//! homed at or before it lives further on. Removing an entry decrements
//! the counts it incremented, so a deleted entry leaves nothing behind.
//! Sized so that at most 70 % of the ways are used at the bound, probes
//! rarely leave the home bucket.

/// Entries per bucket.
const WAYS: usize = 7;

/// One cache line of the index.
#[derive(Clone, Copy, Default)]
#[repr(C, align(64))]
struct Bucket {
    /// Hash tags (never 0); 0 marks a free way.
    tags: [u32; WAYS],
    /// Entries homed at or before this bucket that live after it.
    overflow: u32,
    slots: [u32; WAYS],
    _pad: u32,
}

impl Bucket {
    /// Bit `w` set for every way whose tag is `t`: two SSE2 compares of
    /// the line's first half (tags and the overflow count, which is masked
    /// off) instead of seven compare-and-branch steps.
    #[inline(always)]
    fn matches(&self, t: u32) -> u32 {
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::x86_64::*;
            // SAFETY: SSE2 is part of x86_64; the bucket is 64-byte
            // aligned and repr(C), its first 32 bytes the seven tags and
            // the overflow count, read as two aligned 16-byte lanes.
            unsafe {
                let p = (self as *const Bucket).cast::<__m128i>();
                let needle = _mm_set1_epi32(t as i32);
                let lo = _mm_castsi128_ps(_mm_cmpeq_epi32(_mm_load_si128(p), needle));
                let hi = _mm_castsi128_ps(_mm_cmpeq_epi32(_mm_load_si128(p.add(1)), needle));
                ((_mm_movemask_ps(lo) | _mm_movemask_ps(hi) << 4) as u32) & ((1 << WAYS) - 1)
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            (0..WAYS).filter(|&w| self.tags[w] == t).fold(0, |m, w| m | 1 << w)
        }
    }
}

/// The index. Keys live in the caller's slab: `find` asks the caller to
/// confirm a tag hit by its slot number.
pub struct FlowIndex {
    buckets: Vec<Bucket>,
    mask: usize,
    len: usize,
}

#[inline(always)]
fn tag(hash: u64) -> u32 {
    (hash >> 32) as u32 | 1
}

impl FlowIndex {
    /// An index able to hold `entries` entries, at most 70 % of its ways
    /// used when full (memory: 13-26 bytes per entry, allocated now).
    pub fn with_capacity(entries: usize) -> Self {
        let buckets = (entries * 10).div_ceil(WAYS * 7).next_power_of_two().max(1);
        Self { buckets: crate::mem::huge_vec(buckets, Bucket::default()), mask: buckets - 1, len: 0 }
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes allocated.
    pub fn bytes(&self) -> usize {
        self.buckets.len() * size_of::<Bucket>()
    }

    /// Hints the CPU to load `hash`'s home bucket (a batch computes its
    /// hashes first, prefetches, then looks up: the misses overlap).
    #[inline(always)]
    pub fn prefetch(&self, hash: u64) {
        crate::mem::prefetch(&self.buckets[hash as usize & self.mask]);
    }

    /// The first slot in `hash`'s home bucket with its tag, if any: what a
    /// batch prefetches once the bucket line has arrived.
    #[inline(always)]
    pub fn candidate(&self, hash: u64) -> Option<u32> {
        let bucket = &self.buckets[hash as usize & self.mask];
        let m = bucket.matches(tag(hash));
        (m != 0).then(|| bucket.slots[m.trailing_zeros() as usize])
    }

    /// The slot whose key has `hash` and for which `is_key` says yes.
    #[inline(always)]
    pub fn find(&self, hash: u64, mut is_key: impl FnMut(u32) -> bool) -> Option<u32> {
        let t = tag(hash);
        let mut b = hash as usize & self.mask;
        for _ in 0..self.buckets.len() {
            let bucket = &self.buckets[b];
            let mut m = bucket.matches(t);
            while m != 0 {
                let slot = bucket.slots[m.trailing_zeros() as usize];
                if is_key(slot) {
                    return Some(slot);
                }
                m &= m - 1;
            }
            if bucket.overflow == 0 {
                return None;
            }
            b = (b + 1) & self.mask;
        }
        None
    }

    /// Adds `slot` under `hash`; false when the index is full (callers
    /// bound their entries below the capacity, so only a misuse gets it).
    pub fn insert(&mut self, hash: u64, slot: u32) -> bool {
        if self.len == self.buckets.len() * WAYS {
            return false;
        }
        let t = tag(hash);
        let mut b = hash as usize & self.mask;
        loop {
            let bucket = &mut self.buckets[b];
            let free = bucket.matches(0);
            if free != 0 {
                let w = free.trailing_zeros() as usize;
                bucket.tags[w] = t;
                bucket.slots[w] = slot;
                self.len += 1;
                return true;
            }
            bucket.overflow += 1;
            b = (b + 1) & self.mask;
        }
    }

    /// Removes the entry `slot` added under `hash`; false if absent.
    pub fn remove(&mut self, hash: u64, slot: u32) -> bool {
        let t = tag(hash);
        let home = hash as usize & self.mask;
        let mut b = home;
        for _ in 0..self.buckets.len() {
            let bucket = &mut self.buckets[b];
            if let Some(w) = (0..WAYS).find(|&w| bucket.tags[w] == t && bucket.slots[w] == slot) {
                bucket.tags[w] = 0;
                self.len -= 1;
                // Undo the counts the insertion left on the buckets it passed.
                let mut p = home;
                while p != b {
                    self.buckets[p].overflow -= 1;
                    p = (p + 1) & self.mask;
                }
                return true;
            }
            if bucket.overflow == 0 {
                return false;
            }
            b = (b + 1) & self.mask;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Against a HashMap, with hashes forced into a few buckets so that
    /// overflow chains, wrap-around and removals in the middle of chains
    /// all happen.
    #[test]
    fn agrees_with_a_map_under_inserts_and_removes_with_colliding_hashes() {
        let mut rng = fastrand::Rng::with_seed(5);
        for spread in [1u64, 3, 64] {
            let mut idx = FlowIndex::with_capacity(200);
            let mut model = std::collections::HashMap::new();
            let hash_of = |key: u32| ((key as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) & !63) | (key as u64 % spread);
            for step in 0..20_000 {
                let key = rng.u32(0..400);
                if model.contains_key(&key) && rng.bool() {
                    assert!(idx.remove(hash_of(key), key), "step {step}");
                    model.remove(&key);
                } else if !model.contains_key(&key) && model.len() < 200 {
                    assert!(idx.insert(hash_of(key), key));
                    model.insert(key, ());
                }
                let probe = rng.u32(0..400);
                assert_eq!(idx.find(hash_of(probe), |s| s == probe), model.get(&probe).map(|_| probe), "step {step}");
                assert_eq!(idx.len(), model.len());
            }
            // Emptied, every overflow count is back to zero.
            for key in model.keys() {
                assert!(idx.remove(hash_of(*key), *key));
            }
            assert!(idx.buckets.iter().all(|b| b.overflow == 0 && b.tags == [0; WAYS]));
        }
    }
}
