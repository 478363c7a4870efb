//! The neighbour (adjacency) table: next-hop IP -> MAC and port, like VPP's
//! adjacencies. The control thread writes it (static entries from TOML,
//! entries learned from ARP/ND); workers read an immutable snapshot and
//! pick up a new one between batches.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use rustc_hash::FxHashMap;

use crate::packet::PortId;

/// Where an entry came from. Static entries are never replaced by learning.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// From `[[neighbours]]` in the config.
    Static,
    /// Learned from ARP or Neighbor Discovery.
    Learned,
}

/// One adjacency.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Neighbour {
    /// Link-layer address of the next hop.
    pub mac: [u8; 6],
    /// Port it is reached through.
    pub port: PortId,
    /// How it was set.
    pub origin: Origin,
}

/// Next hops a stage met unresolved, for the slow path to resolve (like
/// VPP's glean adjacency): bounded, each address once.
type Requests = Arc<Mutex<Vec<IpAddr>>>;

/// Requests held at most until the slow path takes them.
const MAX_REQUESTS: usize = 1024;

/// An immutable snapshot of the table.
#[derive(Clone, Debug, Default)]
pub struct NeighbourTable {
    entries: FxHashMap<IpAddr, Neighbour>,
    version: u64,
    requests: Requests,
}

impl NeighbourTable {
    /// Grows with every published change: a stage that caches headers
    /// built from adjacencies rebuilds them when it sees a new version.
    #[inline]
    pub fn version(&self) -> u64 {
        self.version
    }

    /// The adjacency for `ip`, if resolved.
    #[inline]
    pub fn lookup(&self, ip: &IpAddr) -> Option<&Neighbour> {
        self.entries.get(ip)
    }

    /// Asks the slow path to resolve `ip` now, once (a packet waits for
    /// it: [`crate::adjacency`] asks again each second while one does).
    /// Takes a lock: asked once per address and second, not per packet.
    /// Addresses on no port's subnet are ignored there.
    pub fn request(&self, ip: IpAddr) {
        let mut r = self.requests.lock().expect("neighbour requests");
        if r.len() < MAX_REQUESTS && !r.contains(&ip) {
            r.push(ip);
        }
    }

    /// Entries sorted by address, for dumps.
    pub fn entries(&self) -> Vec<(IpAddr, Neighbour)> {
        let mut v: Vec<_> = self.entries.iter().map(|(k, v)| (*k, *v)).collect();
        v.sort_by_key(|e| e.0);
        v
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// The published table: writers take turns, workers read snapshots.
pub struct Neighbours {
    current: ArcSwap<NeighbourTable>,
    generation: AtomicU64,
    writer: Mutex<()>,
}

impl Neighbours {
    /// A table holding the static entries.
    pub fn new(statics: impl IntoIterator<Item = (IpAddr, [u8; 6], PortId)>) -> Arc<Self> {
        let entries =
            statics.into_iter().map(|(ip, mac, port)| (ip, Neighbour { mac, port, origin: Origin::Static })).collect();
        Arc::new(Self {
            current: ArcSwap::from_pointee(NeighbourTable { entries, version: 0, requests: Requests::default() }),
            generation: AtomicU64::new(0),
            writer: Mutex::new(()),
        })
    }

    /// The addresses stages asked to resolve since the last call.
    pub fn take_requests(&self) -> Vec<IpAddr> {
        std::mem::take(&mut *self.current.load().requests.lock().expect("neighbour requests"))
    }

    /// The current snapshot.
    pub fn snapshot(&self) -> Arc<NeighbourTable> {
        self.current.load_full()
    }

    /// Changes whenever a new snapshot is published; workers compare it
    /// once per loop instead of touching the Arc.
    #[inline]
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Replaces the static entries with `statics` (a reload's
    /// `[[neighbours]]`): learned entries stay, unless a static one now
    /// takes their address.
    pub fn set_statics(&self, statics: &[(IpAddr, [u8; 6], PortId)]) {
        self.change(|t| {
            t.retain(|_, n| n.origin != Origin::Static);
            for &(ip, mac, port) in statics {
                t.insert(ip, Neighbour { mac, port, origin: Origin::Static });
            }
            true
        });
    }

    /// Adds or replaces one static entry (`nfv ctl neighbour add`).
    pub fn set_static(&self, ip: IpAddr, mac: [u8; 6], port: PortId) {
        self.change(|t| {
            t.insert(ip, Neighbour { mac, port, origin: Origin::Static });
            true
        });
    }

    /// Removes the entry for `ip`, static or learned; false when there
    /// was none. A next hop still in use is asked for again.
    pub fn remove(&self, ip: IpAddr) -> bool {
        self.change(|t| t.remove(&ip).is_some())
    }

    /// Publishes the table `f` makes of the current one, unless `f` says
    /// nothing changed (false). Writers (the slow path learning, a
    /// reload, `nfv ctl`) take turns: none loses another's change.
    fn change(&self, f: impl FnOnce(&mut FxHashMap<IpAddr, Neighbour>) -> bool) -> bool {
        let _writer = self.writer.lock().expect("neighbour writer");
        let mut next = NeighbourTable::clone(&self.current.load());
        if !f(&mut next.entries) {
            return false;
        }
        next.version += 1;
        self.current.store(Arc::new(next));
        self.generation.fetch_add(1, Ordering::Release);
        true
    }

    /// Records a learned adjacency; returns true if the table changed.
    /// Static entries win over learned ones.
    pub fn learn(&self, ip: IpAddr, mac: [u8; 6], port: PortId) -> bool {
        // Most answers confirm what is known: no copy of the table.
        if self
            .current
            .load()
            .entries
            .get(&ip)
            .is_some_and(|n| n.origin == Origin::Static || (n.mac, n.port) == (mac, port))
        {
            return false;
        }
        self.change(|t| match t.get(&ip) {
            Some(n) if n.origin == Origin::Static => false,
            Some(n) if n.mac == mac && n.port == port => false,
            _ => {
                t.insert(ip, Neighbour { mac, port, origin: Origin::Learned });
                true
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn static_entries_override_learning() {
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let n = Neighbours::new([(ip, [2, 0, 0, 0, 0, 1], 0)]);
        assert!(!n.learn(ip, [2, 0, 0, 0, 0, 9], 0));
        assert_eq!(n.snapshot().lookup(&ip).unwrap().mac, [2, 0, 0, 0, 0, 1]);
        let other: IpAddr = "10.0.0.2".parse().unwrap();
        let g = n.generation();
        assert!(n.learn(other, [2, 0, 0, 0, 0, 2], 1));
        assert!(n.generation() > g);
        assert!(!n.learn(other, [2, 0, 0, 0, 0, 2], 1), "same entry is not a change");
        assert_eq!(n.snapshot().lookup(&other).unwrap().origin, Origin::Learned);
        let third: IpAddr = "10.0.0.3".parse().unwrap();
        n.set_statics(&[(third, [2, 0, 0, 0, 0, 3], 1)]);
        let t = n.snapshot();
        assert!(t.lookup(&ip).is_none(), "the old static entry is gone");
        assert_eq!(t.lookup(&other).unwrap().origin, Origin::Learned, "learned entries stay");
        assert_eq!(t.lookup(&third).unwrap().origin, Origin::Static);
    }
}
