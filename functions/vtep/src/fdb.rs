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
    /// Installed in nfv's XDP program ([`Fdb::offer`]).
    offloaded: bool,
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
    /// nfv's XDP program's copy of the entries it forwards by, when the
    /// plan placed the VTEP's known unicast there: an entry goes there
    /// when a packet used it ([`Fdb::offer`]) and leaves it whenever it
    /// moves, ages out or is replaced, before the change takes effect.
    offload: Option<nfv_core::offload::Offloader>,
}

/// (24-bit VNI, 48-bit MAC) in one integer.
#[inline(always)]
fn key(vni: u32, mac: &[u8; 6]) -> u128 {
    (vni as u128) << 48 | u64::from_be_bytes([0, 0, mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]]) as u128
}

/// Takes the entry of key `k` out of the XDP program.
fn withdraw(offload: &mut Option<nfv_core::offload::Offloader>, k: u128) {
    if let Some(o) = offload.as_mut() {
        let b = (k as u64).to_be_bytes();
        o.remove_l2(nfv_core::offload::L2Key::new((k >> 48) as u32, [b[2], b[3], b[4], b[5], b[6], b[7]]));
    }
}

impl Fdb {
    /// An empty table of at most `max` learned entries that forgets an
    /// address after `ageing` ticks without traffic.
    pub fn new(max: usize, ageing: u64) -> Self {
        let mut map = FxHashMap::default();
        map.reserve(max.min(1 << 16));
        Self { map, learned: 0, max, ageing, next_full_sweep: 0, stats: FdbStats::default(), offload: None }
    }

    /// Adds a static entry (configuration).
    pub fn add_static(&mut self, vni: u32, mac: [u8; 6], dest: Dest) {
        let old = self.map.insert(key(vni, &mac), Entry { dest, last_seen: 0, is_static: true, offloaded: false });
        if old.is_some_and(|e| !e.is_static) {
            self.learned -= 1;
        }
        if old.is_some_and(|e| e.offloaded) {
            self.withdraw(key(vni, &mac));
        }
    }

    /// Removes every static entry (a new set of them follows).
    pub fn clear_statics(&mut self) {
        let offload = &mut self.offload;
        self.map.retain(|k, e| {
            if e.is_static && e.offloaded {
                withdraw(offload, *k);
            }
            !e.is_static
        });
    }

    /// Where `mac` lives in `vni`, if known and not aged out.
    #[inline]
    pub fn lookup(&mut self, vni: u32, mac: &[u8; 6], now: u64) -> Option<Dest> {
        let k = key(vni, mac);
        let e = self.map.get(&k)?;
        if e.is_static || now.wrapping_sub(e.last_seen) < self.ageing {
            return Some(e.dest);
        }
        if self.map.remove(&k).is_some_and(|e| e.offloaded) {
            self.withdraw(k);
        }
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
            let was_below = std::mem::take(&mut e.offloaded);
            self.stats.moved += 1;
            if was_below {
                self.withdraw(k);
            }
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
        self.map.insert(k, Entry { dest, last_seen: now, is_static: false, offloaded: false });
        self.learned += 1;
        self.stats.learned += 1;
        Learned::New
    }

    /// Removes every learned entry older than the ageing time.
    pub fn expire(&mut self, now: u64) {
        let (ageing, before) = (self.ageing, self.map.len());
        let offload = &mut self.offload;
        self.map.retain(|k, e| {
            let keep = e.is_static || now.wrapping_sub(e.last_seen) < ageing;
            if !keep && e.offloaded {
                withdraw(offload, *k);
            }
            keep
        });
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

    /// Hands the table nfv's XDP program's copy.
    pub fn set_offload(&mut self, o: nfv_core::offload::Offloader) {
        self.offload = Some(o);
    }

    /// The offload, when there is one (its counters for reports).
    pub fn offload(&self) -> Option<&nfv_core::offload::Offloader> {
        self.offload.as_ref()
    }

    /// The same, to take its touches.
    pub fn offload_mut(&mut self) -> Option<&mut nfv_core::offload::Offloader> {
        self.offload.as_mut()
    }

    /// A packet just used the entry of `mac` in `vni`: installs it in the
    /// XDP program if it is not there yet, behind local port `port`, or
    /// behind the remote VTEP at IPv4 `remote` through next hop `hop`.
    #[inline]
    pub fn offer(&mut self, vni: u32, mac: &[u8; 6], port: Option<PortId>, remote: Option<(u32, [u8; 6])>) {
        let Some(o) = self.offload.as_mut() else { return };
        let Some(e) = self.map.get_mut(&key(vni, mac)) else { return };
        if e.offloaded {
            return;
        }
        use nfv_core::offload::{L2Key, L2Value};
        let value = match remote {
            Some((ip, hop)) => L2Value::remote(ip, hop),
            None => L2Value::local(),
        };
        e.offloaded = o.install_l2(L2Key::new(vni, *mac), value, port);
    }

    /// The XDP program forwarded by the entry of `mac` in `vni`: it lives
    /// on as if seen now.
    pub fn touch(&mut self, vni: u32, mac: &[u8; 6], now: u64) {
        if let Some(e) = self.map.get_mut(&key(vni, mac))
            && !e.is_static
        {
            e.last_seen = now;
        }
    }

    /// Takes every entry behind a remote VTEP out of the XDP program (the
    /// next hop's address changed: what it holds is stale).
    pub fn withdraw_remotes(&mut self) {
        let offload = &mut self.offload;
        for (k, e) in self.map.iter_mut() {
            if e.offloaded && matches!(e.dest, Dest::Remote(_)) {
                e.offloaded = false;
                withdraw(offload, *k);
            }
        }
    }

    fn withdraw(&mut self, k: u128) {
        withdraw(&mut self.offload, k);
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

    #[test]
    fn entries_in_xdp_leave_it_when_they_move_age_or_are_replaced() {
        use nfv_core::offload::{EngineTask, Key, L2Key, MemoryEngine};
        use std::sync::Arc;
        let engine = Arc::new(MemoryEngine::default());
        let mut task = EngineTask::new(engine.clone(), Arc::from(vec![0, 11, 12]));
        let mut f = Fdb::new(10, 100);
        f.set_offload(task.offloader());
        f.learn(1, &A, Dest::Local(1), 0);
        f.learn(1, &B, Dest::Remote(3), 0);
        f.offer(1, &A, Some(1), None);
        f.offer(1, &B, None, Some((0xc000_0202, [2, 0, 0, 0, 0, 0xee])));
        f.offer(1, &A, Some(1), None);
        task.step();
        let l2 = engine.l2();
        assert_eq!(l2.len(), 2);
        assert_eq!(l2[&L2Key::new(1, A)].ifindex, 11);
        assert_eq!(l2[&L2Key::new(1, B)].remote, [192, 0, 2, 2]);
        // XDP keeps A alive past its ageing; B moves, and leaves XDP.
        engine.touch(&Key::L2(L2Key::new(1, A)), 7);
        task.scan_now();
        task.step();
        let Some(Key::L2(k)) = f.offload_mut().unwrap().touched() else { panic!("a touch") };
        f.touch(k.vni, &k.mac, 90);
        assert_eq!(f.learn(1, &B, Dest::Local(2), 95), Learned::Moved);
        task.step();
        assert_eq!(engine.l2().keys().copied().collect::<Vec<_>>(), vec![L2Key::new(1, A)]);
        f.expire(150);
        assert_eq!(f.lookup(1, &A, 150), Some(Dest::Local(1)), "touched at 90: alive");
        // A static entry replaces it; then the next hop of remotes changes.
        f.add_static(1, A, Dest::Local(2));
        task.step();
        assert!(engine.l2().is_empty());
        f.learn(1, &B, Dest::Remote(3), 160);
        f.offer(1, &B, None, Some((0xc000_0202, [2; 6])));
        f.offer(1, &A, Some(2), None);
        task.step();
        f.withdraw_remotes();
        task.step();
        assert_eq!(engine.l2().keys().copied().collect::<Vec<_>>(), vec![L2Key::new(1, A)]);
        f.expire(1000);
        f.clear_statics();
        task.step();
        assert!(engine.l2().is_empty(), "aged and cleared: nothing left below");
    }
}
