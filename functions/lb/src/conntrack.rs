//! One worker's connection table: which backend each client flow was
//! given, so established connections keep their backend when the Maglev
//! table changes (a backend added, drained, or its weight changed; the
//! paper's section 3.3). Bounded: a fixed slab indexed by nfv-core's
//! `FlowIndex`, allocated once; entries idle longer than their protocol's
//! timeout expire, and when the table is full the least recently active
//! entry is evicted (counted), as Katran's LRU does.
//!
//! Activity is kept in one list per protocol class, oldest first; a hit
//! moves its entry to the tail at most once a second, so a busy flow costs
//! one compare per packet.

use nfv_core::flowindex::FlowIndex;
use nfv_core::mem::{huge_vec, prefetch};

use crate::services::proto;

/// A client flow as it reaches the VIP.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct ConnKey {
    /// Client address.
    pub client: u32,
    /// VIP address.
    pub vip: u32,
    /// Client port.
    pub client_port: u16,
    /// VIP port.
    pub vip_port: u16,
    /// TCP or UDP.
    pub proto: u8,
}

impl ConnKey {
    /// The flow hash: fixed (no per-process seed), so every worker and
    /// every load balancer picks the same backend for a new flow.
    #[inline(always)]
    pub fn hash(&self) -> u64 {
        let x = ((self.client as u64) << 32 | self.vip as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let y = ((self.client_port as u64) << 24 | (self.vip_port as u64) << 8 | self.proto as u64)
            .wrapping_mul(0xbf58_476d_1ce4_e5b9);
        let h = (x ^ y.rotate_left(29)).wrapping_mul(0x94d0_49bb_1331_11eb);
        h ^ (h >> 31)
    }
}

const NONE: u32 = u32::MAX;
const CLASSES: usize = 2;

/// A tracked connection (one cache line's half).
#[derive(Clone, Copy, Debug)]
#[repr(C, align(32))]
pub struct Conn {
    /// Its key.
    pub key: ConnKey,
    /// Its VIP (index in the services).
    pub vip: u16,
    /// Its backend (index among the VIP's backends).
    pub backend: u16,
    /// Seconds, last packet.
    pub last_seen: u32,
    prev: u32,
    next: u32,
}

/// Idle timeouts, seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// TCP connections.
    pub tcp: u32,
    /// UDP flows.
    pub udp: u32,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self { tcp: 300, udp: 30 }
    }
}

/// Table counters.
#[derive(Clone, Copy, Debug, Default)]
pub struct ConnStats {
    /// Connections added.
    pub created: u64,
    /// Removed after their idle timeout.
    pub expired: u64,
    /// Removed to make room (the table was full).
    pub evicted: u64,
}

/// One worker's connections.
pub struct ConnTable {
    index: FlowIndex,
    conns: Vec<Conn>,
    free: Vec<u32>,
    lists: [(u32, u32); CLASSES],
    timeouts: [u32; CLASSES],
    seed: u64,
    len: usize,
    /// Counters.
    pub stats: ConnStats,
}

fn class(p: u8) -> usize {
    (p != proto::TCP) as usize
}

impl ConnTable {
    /// A table of `max` connections (allocated now), its index hashed
    /// with `seed` on top of the flow hash.
    pub fn new(max: usize, timeouts: Timeouts, seed: u64) -> Self {
        let max = max.max(1);
        let empty = Conn { key: ConnKey::default(), vip: 0, backend: 0, last_seen: 0, prev: NONE, next: NONE };
        Self {
            index: FlowIndex::with_capacity(max),
            conns: huge_vec(max, empty),
            free: (0..max as u32).rev().collect(),
            lists: [(NONE, NONE); CLASSES],
            timeouts: [timeouts.tcp, timeouts.udp],
            seed: seed | 1,
            len: 0,
            stats: ConnStats::default(),
        }
    }

    /// Connections held.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Most connections held.
    pub fn capacity(&self) -> usize {
        self.conns.len()
    }

    /// Bytes allocated.
    pub fn bytes(&self) -> usize {
        self.conns.len() * size_of::<Conn>() + self.index.bytes() + self.free.capacity() * 4
    }

    /// The index hash of a flow hash: the worker's seed on top (the flow
    /// hash is fixed for Maglev; the index must not be predictable).
    #[inline(always)]
    pub fn index_hash(&self, flow_hash: u64) -> u64 {
        let h = (flow_hash ^ self.seed).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        h ^ (h >> 29)
    }

    /// Starts loading the index line of `index_hash`.
    #[inline(always)]
    pub fn prefetch_index(&self, index_hash: u64) {
        self.index.prefetch(index_hash);
    }

    /// Starts loading the connection `index_hash` most likely names (its
    /// index line should be in by now).
    #[inline(always)]
    pub fn prefetch_conn(&self, index_hash: u64) {
        if let Some(i) = self.index.candidate(index_hash) {
            prefetch(&self.conns[i as usize]);
        }
    }

    /// The connection of `key`.
    #[inline(always)]
    pub fn find(&self, index_hash: u64, key: &ConnKey) -> Option<u32> {
        self.index.find(index_hash, |i| self.conns[i as usize].key == *key)
    }

    /// A connection by number.
    #[inline(always)]
    pub fn get(&self, id: u32) -> &Conn {
        &self.conns[id as usize]
    }

    /// Records a packet of connection `id` at `now`.
    #[inline(always)]
    pub fn touch(&mut self, id: u32, now: u32) {
        if self.conns[id as usize].last_seen != now {
            let c = class(self.conns[id as usize].key.proto);
            self.unlink(id, c);
            self.conns[id as usize].last_seen = now;
            self.link_tail(id, c);
        }
    }

    /// Gives connection `id` another backend (its own went away).
    pub fn set_backend(&mut self, id: u32, backend: u16) {
        self.conns[id as usize].backend = backend;
    }

    /// Adds `key` -> (`vip`, `backend`); when full, the least recently
    /// active connection makes room (counted).
    pub fn insert(&mut self, index_hash: u64, key: ConnKey, vip: u16, backend: u16, now: u32) -> u32 {
        if self.free.is_empty() {
            self.evict_oldest();
        }
        let id = self.free.pop().expect("room was made");
        self.conns[id as usize] = Conn { key, vip, backend, last_seen: now, prev: NONE, next: NONE };
        self.link_tail(id, class(key.proto));
        self.index.insert(index_hash, id);
        self.len += 1;
        self.stats.created += 1;
        id
    }

    /// Removes connections idle past their timeout, `budget` at most.
    pub fn expire(&mut self, now: u32, budget: usize) -> usize {
        let mut n = 0;
        for c in 0..CLASSES {
            while n < budget {
                let head = self.lists[c].0;
                if head == NONE || now.saturating_sub(self.conns[head as usize].last_seen) < self.timeouts[c] {
                    break;
                }
                self.remove(head);
                self.stats.expired += 1;
                n += 1;
            }
        }
        n
    }

    fn evict_oldest(&mut self) {
        let oldest = (0..CLASSES)
            .map(|c| self.lists[c].0)
            .filter(|&h| h != NONE)
            .min_by_key(|&h| self.conns[h as usize].last_seen)
            .expect("a full table has connections");
        self.remove(oldest);
        self.stats.evicted += 1;
    }

    fn remove(&mut self, id: u32) {
        let key = self.conns[id as usize].key;
        self.unlink(id, class(key.proto));
        let removed = self.index.remove(self.index_hash(key.hash()), id);
        debug_assert!(removed);
        self.free.push(id);
        self.len -= 1;
    }

    fn unlink(&mut self, id: u32, c: usize) {
        let (prev, next) = (self.conns[id as usize].prev, self.conns[id as usize].next);
        if prev == NONE {
            self.lists[c].0 = next
        } else {
            self.conns[prev as usize].next = next
        }
        if next == NONE { self.lists[c].1 = prev } else { self.conns[next as usize].prev = prev }
    }

    fn link_tail(&mut self, id: u32, c: usize) {
        let tail = self.lists[c].1;
        (self.conns[id as usize].prev, self.conns[id as usize].next) = (tail, NONE);
        if tail == NONE {
            self.lists[c].0 = id
        } else {
            self.conns[tail as usize].next = id
        }
        self.lists[c].1 = id;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(i: u32, p: u8) -> ConnKey {
        ConnKey { client: 0x0a00_0000 + i, vip: 0xc000_020a, client_port: 40000, vip_port: 80, proto: p }
    }

    fn add(t: &mut ConnTable, k: ConnKey, now: u32) -> u32 {
        let h = t.index_hash(k.hash());
        t.insert(h, k, 0, (k.client & 7) as u16, now)
    }

    fn find(t: &ConnTable, k: &ConnKey) -> Option<u32> {
        t.find(t.index_hash(k.hash()), k)
    }

    #[test]
    fn connections_are_found_expire_by_protocol_and_a_full_table_evicts_the_least_recent() {
        let mut t = ConnTable::new(4, Timeouts { tcp: 300, udp: 30 }, 7);
        let (a, b, c) = (key(1, proto::TCP), key(2, proto::UDP), key(3, proto::TCP));
        add(&mut t, a, 0);
        add(&mut t, b, 0);
        add(&mut t, c, 10);
        assert_eq!(t.get(find(&t, &a).unwrap()).backend, 1);
        assert_eq!(t.expire(29, 64), 0);
        assert_eq!(t.expire(30, 64), 1, "the UDP flow, idle 30 s");
        assert!(find(&t, &b).is_none() && find(&t, &a).is_some());
        // a is touched at 100, c is not: filling up evicts c.
        t.touch(find(&t, &a).unwrap(), 100);
        add(&mut t, key(4, proto::TCP), 100);
        add(&mut t, key(5, proto::TCP), 100);
        add(&mut t, key(6, proto::TCP), 101);
        assert!(find(&t, &c).is_none(), "least recently active, evicted");
        assert!(find(&t, &a).is_some());
        assert_eq!((t.len(), t.stats.created, t.stats.expired, t.stats.evicted), (4, 6, 1, 1));
    }

    #[test]
    fn random_churn_agrees_with_a_map() {
        let mut rng = fastrand::Rng::with_seed(9);
        let mut t = ConnTable::new(500, Timeouts::default(), 3);
        let mut model = std::collections::HashMap::new();
        for step in 0..20_000u32 {
            let now = step / 10;
            let k = key(rng.u32(0..2000), if rng.bool() { proto::TCP } else { proto::UDP });
            match find(&t, &k) {
                Some(id) => {
                    assert_eq!(model.get(&k), Some(&t.get(id).backend), "step {step}");
                    t.touch(id, now);
                }
                None => {
                    assert!(!model.contains_key(&k), "step {step}: lost without expiry or eviction");
                    add(&mut t, k, now);
                    model.insert(k, (k.client & 7) as u16);
                }
            }
            t.expire(now, 8);
            // What left by expiry or eviction leaves the model too.
            model.retain(|k, _| find(&t, k).is_some());
            assert_eq!((t.len(), t.index.len()), (model.len(), model.len()), "step {step}");
        }
        assert!(t.stats.evicted > 0 && t.stats.expired > 0, "{:?}", t.stats);
    }
}
