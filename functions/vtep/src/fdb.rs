//! The forwarding database: inner MAC address -> where it lives, per VNI.
//!
//! Entries are static (from the configuration, never age, never move) or
//! learned from the data plane: an inner source MAC seen on a local port,
//! or arriving from a remote VTEP (RFC 7348 section 4.1: "learning").
//! Learned entries age out after `ageing` without traffic, and the table is
//! bounded: when full, a new address is not learned (its traffic floods)
//! and the refusal is counted. Each worker owns its table.

use nfv_core::PortId;
use rustc_hash::FxHashMap;

/// A remote VTEP, by its index in the stage's table of VTEP addresses
/// (small and cheap to copy and compare on the fast path).
pub type RemoteId = u16;

/// Where a MAC address is reached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dest {
    /// Behind a local port of the bridge domain.
    Local(PortId),
    /// Behind a remote VTEP.
    Remote(RemoteId),
}

#[derive(Clone, Copy, Debug)]
struct Entry {
    dest: Dest,
    last_seen: u64,
    is_static: bool,
}

/// What a learning attempt did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Learned {
    /// Known at that place already; its age was reset.
    Refreshed,
    /// New entry.
    New,
    /// The address moved (another port or VTEP).
    Moved,
    /// Static entry: left alone.
    Static,
    /// Table full: not learned.
    Full,
}

/// Counters of the table's life.
#[derive(Clone, Copy, Debug, Default)]
pub struct FdbStats {
    /// Entries learned.
    pub learned: u64,
    /// Entries that moved.
    pub moved: u64,
    /// Entries that aged out.
    pub aged: u64,
    /// Addresses not learned because the table was full.
    pub full: u64,
}

/// One worker's forwarding database.
pub struct Fdb {
    map: FxHashMap<u128, Entry>,
    /// Learned (not static) entries in `map`: the bound applies to them.
    learned: usize,
    max: usize,
    ageing: u64,
    /// A full table is swept for aged entries at most once per
    /// `ageing / 16`: a burst of new addresses against a full table of
    /// live ones must not scan it once per packet.
    next_full_sweep: u64,
    /// Counters.
    pub stats: FdbStats,
}

/// (24-bit VNI, 48-bit MAC) in one integer.
#[inline(always)]
fn key(vni: u32, mac: &[u8; 6]) -> u128 {
    (vni as u128) << 48 | u64::from_be_bytes([0, 0, mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]]) as u128
}

impl Fdb {
    /// An empty table of at most `max` learned entries that forgets an
    /// address after `ageing` ticks without traffic.
    pub fn new(max: usize, ageing: u64) -> Self {
        let mut map = FxHashMap::default();
        map.reserve(max.min(1 << 16));
        Self { map, learned: 0, max, ageing, next_full_sweep: 0, stats: FdbStats::default() }
    }

    /// Adds a static entry (configuration).
    pub fn add_static(&mut self, vni: u32, mac: [u8; 6], dest: Dest) {
        let old = self.map.insert(key(vni, &mac), Entry { dest, last_seen: 0, is_static: true });
        if old.is_some_and(|e| !e.is_static) {
            self.learned -= 1;
        }
    }

    /// Removes every static entry (a new set of them follows).
    pub fn clear_statics(&mut self) {
        self.map.retain(|_, e| !e.is_static);
    }

    /// Where `mac` lives in `vni`, if known and not aged out.
    #[inline]
    pub fn lookup(&mut self, vni: u32, mac: &[u8; 6], now: u64) -> Option<Dest> {
        let k = key(vni, mac);
        let e = self.map.get(&k)?;
        if e.is_static || now.wrapping_sub(e.last_seen) < self.ageing {
            return Some(e.dest);
        }
        self.map.remove(&k);
        self.learned -= 1;
        self.stats.aged += 1;
        None
    }

    /// Records that `mac` was seen at `dest` in `vni`.
    #[inline]
    pub fn learn(&mut self, vni: u32, mac: &[u8; 6], dest: Dest, now: u64) -> Learned {
        let k = key(vni, mac);
        if let Some(e) = self.map.get_mut(&k) {
            if e.is_static {
                return Learned::Static;
            }
            e.last_seen = now;
            if e.dest == dest {
                return Learned::Refreshed;
            }
            e.dest = dest;
            self.stats.moved += 1;
            return Learned::Moved;
        }
        if self.learned >= self.max {
            // Make room from aged entries before refusing.
            if now.wrapping_sub(self.next_full_sweep) < u64::MAX / 2 {
                self.expire(now);
                self.next_full_sweep = now.wrapping_add(self.ageing / 16);
            }
            if self.learned >= self.max {
                self.stats.full += 1;
                return Learned::Full;
            }
        }
        self.map.insert(k, Entry { dest, last_seen: now, is_static: false });
        self.learned += 1;
        self.stats.learned += 1;
        Learned::New
    }

    /// Removes every learned entry older than the ageing time.
    pub fn expire(&mut self, now: u64) {
        let (ageing, before) = (self.ageing, self.map.len());
        self.map.retain(|_, e| e.is_static || now.wrapping_sub(e.last_seen) < ageing);
        let aged = before - self.map.len();
        self.learned -= aged;
        self.stats.aged += aged as u64;
    }

    /// Entries (vni, mac, dest, static, ticks since last seen), sorted.
    pub fn dump(&self, now: u64) -> Vec<(u32, [u8; 6], Dest, bool, u64)> {
        let mut v: Vec<_> = self
            .map
            .iter()
            .map(|(k, e)| {
                let b = (*k as u64).to_be_bytes();
                let mac = [b[2], b[3], b[4], b[5], b[6], b[7]];
                ((k >> 48) as u32, mac, e.dest, e.is_static, now.wrapping_sub(e.last_seen))
            })
            .collect();
        v.sort_by_key(|e| (e.0, e.1));
        v
    }

    /// Entries in the table.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: [u8; 6] = [2, 0, 0, 0, 0, 0xa];
    const B: [u8; 6] = [2, 0, 0, 0, 0, 0xb];

    #[test]
    fn learns_moves_ages_and_keeps_vnis_apart() {
        let mut f = Fdb::new(10, 100);
        let r: RemoteId = 7;
        assert_eq!(f.learn(1, &A, Dest::Local(3), 0), Learned::New);
        assert_eq!(f.lookup(1, &A, 50), Some(Dest::Local(3)));
        assert_eq!(f.lookup(2, &A, 50), None, "another VNI is another table");
        assert_eq!(f.lookup(1 | 1 << 16, &A, 50), None, "all 24 VNI bits count");
        assert_eq!(f.learn(0xff_ffff, &A, Dest::Local(4), 50), Learned::New);
        assert_eq!(f.dump(50).last().unwrap().0, 0xff_ffff);
        assert_eq!(f.learn(1, &A, Dest::Local(3), 60), Learned::Refreshed);
        assert_eq!(f.learn(1, &A, Dest::Remote(r), 70), Learned::Moved);
        assert_eq!(f.lookup(1, &A, 169), Some(Dest::Remote(r)));
        assert_eq!(f.lookup(1, &A, 171), None, "aged out 100 ticks after last seen");
        assert_eq!(f.stats.aged, 1);
    }

    #[test]
    fn static_entries_win_and_a_full_table_refuses() {
        let mut f = Fdb::new(1, 100);
        f.add_static(1, A, Dest::Local(1));
        assert_eq!(f.learn(1, &A, Dest::Local(2), 0), Learned::Static);
        assert_eq!(f.lookup(1, &A, 1_000_000), Some(Dest::Local(1)), "static entries never age");
        assert_eq!(f.learn(1, &B, Dest::Local(2), 0), Learned::New, "static entries do not count in the bound");
        assert_eq!(f.learn(2, &B, Dest::Local(2), 99), Learned::Full);
        assert_eq!(f.stats.full, 1);
        // The full table was just swept: the next sweep waits ageing / 16
        // (6 ticks), even though the entry aged meanwhile.
        assert_eq!(f.learn(2, &B, Dest::Local(2), 102), Learned::Full);
        // Then there is room again.
        assert_eq!(f.learn(2, &B, Dest::Local(2), 105), Learned::New);
        assert_eq!(f.stats.aged, 1);
        let dump = f.dump(500);
        assert_eq!(dump.len(), 2);
        assert_eq!(dump[0], (1, A, Dest::Local(1), true, 500));
        assert_eq!(f.len(), 2);
    }
}
