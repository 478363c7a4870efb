//! One worker's connection table: which backend each client flow was
//! given, so established connections keep their backend when the Maglev
//! table changes (a backend added, drained, or its weight changed; the
//! paper's section 3.3).
//!
//! Entries live inside the hash buckets, three to a cache line: a lookup
//! reads one line, which a batch prefetches ahead (a separate index and
//! entry slab would cost two dependent misses per packet at a million
//! connections). Bounded and allocated once. An entry idle past its
//! protocol's timeout is dead: a sweep of a few buckets per batch clears
//! them (counted as expired), and an insertion reuses one. When a
//! bucket's three ways are all live, the least recently active of them
//! makes room (counted as evicted): an LRU per bucket, as Katran's LRU map
//! approximates one per table. An evicted flow's next packet goes through
//! the Maglev table again, which gives it the same backend unless the
//! backends changed meanwhile. One bucket (three ways) per configured
//! connection, rounded up to a power of two: at the configured maximum
//! about 2 % of the connections are evicted early this way (Poisson, one
//! per bucket on average), at half of it 0.4 %.

mod offload;

use nfv_net::mem::{huge_vec, prefetch};

use nfv_net::wire::proto;

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

/// A tracked connection: its key, its backend, its last packet.
#[derive(Clone, Copy, Debug, Default)]
#[repr(C)]
pub struct Conn {
    client: u32,
    vip: u32,
    client_port: u16,
    vip_port: u16,
    /// Protocol; 0 marks a free way.
    proto: u8,
    /// [`OPENING`] and [`offload::OFFLOADED`].
    flags: u8,
    /// Its backend (index among the VIP's backends).
    pub backend: u16,
    /// Our port toward the backend (NAT mode), 0 for none.
    pub nat_port: u16,
    /// Seconds of the last packet, modulo 65536 (timeouts are shorter).
    last_seen: u16,
}

/// Only the client's SYNs were seen so far: a SYN now is the same
/// connection opening again (a retransmission), not a new one.
const OPENING: u8 = 1;

impl Conn {
    /// See [`OPENING`].
    #[inline(always)]
    pub fn opening(&self) -> bool {
        self.flags & OPENING != 0
    }

    #[inline(always)]
    fn is(&self, k: &ConnKey) -> bool {
        self.client == k.client
            && self.vip == k.vip
            && self.client_port == k.client_port
            && self.vip_port == k.vip_port
            && self.proto == k.proto
    }

    /// The connection's key.
    pub fn key(&self) -> ConnKey {
        ConnKey {
            client: self.client,
            vip: self.vip,
            client_port: self.client_port,
            vip_port: self.vip_port,
            proto: self.proto,
        }
    }
}

/// Ways per bucket.
const WAYS: usize = 3;

#[derive(Clone, Copy, Default)]
#[repr(C, align(64))]
struct Bucket {
    ways: [Conn; WAYS],
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
    /// Removed to make room (their bucket was full).
    pub evicted: u64,
}

/// One worker's connections.
pub struct ConnTable {
    buckets: Vec<Bucket>,
    mask: usize,
    timeouts: Timeouts,
    seed: u64,
    len: usize,
    sweep: usize,
    /// Counters.
    pub stats: ConnStats,
    /// The XDP engine's flows, when the plan placed them there.
    offload: Option<nfv_core::offload::Offloader>,
    /// NAT mode's answer flows in XDP, by connection (with `offload`).
    backs: Vec<nfv_core::offload::FlowKey>,
}

impl ConnTable {
    /// A table for `max` connections (a bucket each, allocated now), its
    /// buckets chosen with `seed` on top of the flow hash.
    pub fn new(max: usize, timeouts: Timeouts, seed: u64) -> Self {
        let buckets = max.max(1).next_power_of_two();
        Self {
            buckets: huge_vec(buckets, Bucket::default()),
            mask: buckets - 1,
            timeouts,
            seed: seed | 1,
            len: 0,
            sweep: 0,
            stats: ConnStats::default(),
            offload: None,
            backs: Vec::new(),
        }
    }

    /// Live connections held.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Ways in all (the most connections the table could hold).
    pub fn capacity(&self) -> usize {
        self.buckets.len() * WAYS
    }

    /// Bytes allocated.
    pub fn bytes(&self) -> usize {
        self.buckets.len() * size_of::<Bucket>()
    }

    /// The bucket hash of a flow hash: the worker's seed on top (the flow
    /// hash is fixed for Maglev; bucket placement must not be predictable).
    #[inline(always)]
    pub fn index_hash(&self, flow_hash: u64) -> u64 {
        let h = (flow_hash ^ self.seed).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        h ^ (h >> 29)
    }

    /// Starts loading the bucket of `index_hash`.
    #[inline(always)]
    pub fn prefetch(&self, index_hash: u64) {
        prefetch(&self.buckets[index_hash as usize & self.mask]);
    }

    #[inline(always)]
    fn timeout(&self, p: u8) -> u32 {
        if p == proto::TCP { self.timeouts.tcp } else { self.timeouts.udp }
    }

    #[inline(always)]
    fn live(&self, c: &Conn, now: u32) -> bool {
        c.proto != 0 && ((now as u16).wrapping_sub(c.last_seen) as u32) < self.timeout(c.proto)
    }

    /// True when connection `id` is alive at `now`.
    #[inline(always)]
    pub fn is_live(&self, id: u32, now: u32) -> bool {
        self.live(self.get(id), now)
    }

    /// The live connection of `key`, as a number for [`Self::get`].
    #[inline(always)]
    pub fn find(&self, index_hash: u64, key: &ConnKey, now: u32) -> Option<u32> {
        let b = index_hash as usize & self.mask;
        let bucket = &self.buckets[b];
        (0..WAYS).find(|&w| bucket.ways[w].is(key) && self.live(&bucket.ways[w], now)).map(|w| (b * WAYS + w) as u32)
    }

    /// A connection by number.
    #[inline(always)]
    pub fn get(&self, id: u32) -> &Conn {
        &self.buckets[id as usize / WAYS].ways[id as usize % WAYS]
    }

    #[inline(always)]
    fn get_mut(&mut self, id: u32) -> &mut Conn {
        &mut self.buckets[id as usize / WAYS].ways[id as usize % WAYS]
    }

    /// Records a packet of connection `id` at `now`.
    #[inline(always)]
    pub fn touch(&mut self, id: u32, now: u32) {
        let c = self.get_mut(id);
        if c.last_seen != now as u16 {
            c.last_seen = now as u16;
        }
    }

    /// Gives connection `id` another backend (its own went away, or a
    /// SYN opened the flow anew); out of XDP first.
    pub fn set_backend(&mut self, id: u32, backend: u16) {
        self.withdraw(id);
        self.get_mut(id).backend = backend;
    }

    /// Marks connection `id` as opening (only SYNs seen) or open.
    #[inline(always)]
    pub fn set_opening(&mut self, id: u32, opening: bool) {
        let c = self.get_mut(id);
        c.flags = (c.flags & !OPENING) | if opening { OPENING } else { 0 };
    }

    /// Adds `key` -> (`backend`, `nat_port`) (not already present): into
    /// a free way, a dead one (counted expired), or the bucket's least
    /// recently active (counted evicted). Returns its number and the
    /// connection it replaced, if any (whose NAT port the caller frees).
    pub fn insert(
        &mut self,
        index_hash: u64,
        key: ConnKey,
        backend: u16,
        nat_port: u16,
        now: u32,
        opening: bool,
    ) -> (u32, Option<Conn>) {
        let b = index_hash as usize & self.mask;
        let ways = &self.buckets[b].ways;
        let w = match (0..WAYS).find(|&w| ways[w].proto == 0) {
            Some(w) => {
                self.len += 1;
                w
            }
            None => match (0..WAYS).find(|&w| !self.live(&ways[w], now)) {
                Some(w) => {
                    self.stats.expired += 1;
                    w
                }
                None => {
                    self.stats.evicted += 1;
                    let age = |w: usize| (now as u16).wrapping_sub(ways[w].last_seen);
                    (0..WAYS).max_by_key(|&w| age(w)).expect("ways")
                }
            },
        };
        let old = self.buckets[b].ways[w];
        self.withdraw((b * WAYS + w) as u32);
        self.buckets[b].ways[w] = Conn {
            client: key.client,
            vip: key.vip,
            client_port: key.client_port,
            vip_port: key.vip_port,
            proto: key.proto,
            flags: if opening { OPENING } else { 0 },
            backend,
            nat_port,
            last_seen: now as u16,
        };
        self.stats.created += 1;
        ((b * WAYS + w) as u32, (old.proto != 0).then_some(old))
    }

    /// Clears dead connections in the next `buckets` buckets (a sweep
    /// round the table, a few buckets per batch), telling `gone` of each;
    /// returns how many.
    pub fn expire(&mut self, now: u32, buckets: usize, mut gone: impl FnMut(&Conn)) -> usize {
        let mut n = 0;
        for _ in 0..buckets.min(self.buckets.len()) {
            let b = self.sweep;
            self.sweep = (self.sweep + 1) & self.mask;
            for w in 0..WAYS {
                let c = self.buckets[b].ways[w];
                if c.proto != 0 && !self.live(&c, now) {
                    self.withdraw((b * WAYS + w) as u32);
                    gone(&c);
                    self.buckets[b].ways[w].proto = 0;
                    self.len -= 1;
                    n += 1;
                }
            }
        }
        self.stats.expired += n as u64;
        n
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
        t.insert(h, k, (k.client & 7) as u16, 0, now, false).0
    }

    fn find(t: &ConnTable, k: &ConnKey, now: u32) -> Option<u32> {
        t.find(t.index_hash(k.hash()), k, now)
    }

    #[test]
    fn connections_are_found_and_die_by_their_protocols_timeout() {
        let mut t = ConnTable::new(64, Timeouts { tcp: 300, udp: 30 }, 7);
        let (a, b) = (key(1, proto::TCP), key(2, proto::UDP));
        add(&mut t, a, 0);
        add(&mut t, b, 0);
        assert_eq!(t.get(find(&t, &a, 0).unwrap()).backend, 1);
        assert!(find(&t, &b, 29).is_some());
        assert!(find(&t, &b, 30).is_none(), "UDP idle 30 s: dead");
        assert!(find(&t, &a, 30).is_some(), "TCP lives 300 s");
        t.touch(find(&t, &a, 200).unwrap(), 200);
        assert!(find(&t, &a, 450).is_some(), "touched at 200");
        let mut gone = Vec::new();
        assert_eq!(t.expire(450, t.buckets.len(), |c| gone.push(c.key())), 1, "the sweep clears the UDP flow");
        assert_eq!(gone, vec![b]);
        assert_eq!((t.len(), t.stats.expired), (1, 1));
    }

    #[test]
    fn a_full_bucket_evicts_its_least_recently_active_way() {
        let mut t = ConnTable::new(1, Timeouts::default(), 7);
        assert_eq!(t.buckets.len(), 1, "one bucket: every key shares it");
        let keys: Vec<ConnKey> = (0..4).map(|i| key(i, proto::TCP)).collect();
        for (i, k) in keys[..3].iter().enumerate() {
            add(&mut t, *k, i as u32);
        }
        t.touch(find(&t, &keys[0], 10).unwrap(), 10);
        add(&mut t, keys[3], 11);
        assert!(find(&t, &keys[1], 11).is_none(), "idle since 1: evicted");
        assert!([0, 2, 3].iter().all(|&i| find(&t, &keys[i], 11).is_some()));
        assert_eq!((t.len(), t.stats.evicted), (3, 1));
    }

    /// Random churn: a key found always carries the backend it was given;
    /// a key just added is found; nothing is held past capacity; under
    /// pressure evictions and expiries happen and are counted.
    #[test]
    fn random_churn_agrees_with_a_map() {
        let mut rng = fastrand::Rng::with_seed(9);
        let mut t = ConnTable::new(500, Timeouts::default(), 3);
        let mut given = std::collections::HashMap::new();
        for step in 0..50_000u32 {
            let now = step / 10;
            let k = key(rng.u32(0..3000), if rng.bool() { proto::TCP } else { proto::UDP });
            match find(&t, &k, now) {
                Some(id) => {
                    assert_eq!(given.get(&k), Some(&t.get(id).backend), "step {step}");
                    assert_eq!(t.get(id).key(), k);
                    t.touch(id, now);
                }
                None => {
                    add(&mut t, k, now);
                    given.insert(k, (k.client & 7) as u16);
                    assert!(find(&t, &k, now).is_some(), "step {step}: just added");
                }
            }
            t.expire(now, 4, |_| {});
            assert!(t.len() <= t.capacity());
        }
        let live = t.buckets.iter().flat_map(|b| b.ways.iter()).filter(|c| c.proto != 0).count();
        assert_eq!(live, t.len());
        assert!(t.stats.evicted > 0 && t.stats.expired > 0, "{:?}", t.stats);
    }
}
