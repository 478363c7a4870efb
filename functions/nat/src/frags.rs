//! Fragments without reassembly. Only a first fragment carries the ports
//! that find a session; the NAT remembers, per (source, destination,
//! protocol, identification) as the fragments arrive, the address the first
//! one was given, and gives the same to the later ones (their ports and
//! the transport checksum are in the first fragment only, and the
//! checksum's change is made there). A later fragment that arrives before
//! its first, or after its entry was overwritten, has nothing to go by: it
//! is dropped and counted, never guessed.
//!
//! With several workers, the first fragment may belong to another worker
//! (its ports say which); the worker it arrived at remembers where it
//! handed it, and hands the later ones, which carry no ports, the same way
//! (a NIC hashes every fragment of a datagram alike, on its addresses).
//!
//! The table is a ring of fixed size: a new datagram takes the oldest
//! entry's place. Entries also lapse after a few seconds (RFC 791's
//! reassembly timer is the receiver's; ours only bounds how long an
//! identification is trusted).

use nfv_net::flowindex::FlowIndex;
use nfv_net::rewrite::Side;

/// A datagram's fragments as they arrive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FragKey {
    /// Source address, as received.
    pub src: u32,
    /// Destination address, as received.
    pub dst: u32,
    /// IPv4 identification.
    pub id: u16,
    /// Protocol.
    pub proto: u8,
}

/// What became of a datagram's first fragment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fate {
    /// Its `Side` address was translated to this one.
    Translated(Side, u32),
    /// It was handed to this worker of the chain, which holds its session.
    HandedTo(u16),
}

#[derive(Clone, Copy)]
struct Entry {
    key: FragKey,
    fate: Fate,
    hash: u64,
    at: u32,
    live: bool,
}

/// Translations of first fragments, for the fragments that follow.
pub struct Fragments {
    ring: Vec<Entry>,
    next: usize,
    index: FlowIndex,
    lifetime: u32,
    seed: u64,
}

impl Fragments {
    /// A ring of `entries` datagrams, each trusted for `lifetime` seconds.
    pub fn new(entries: usize, lifetime: u32, seed: u64) -> Self {
        let empty = Entry {
            key: FragKey { src: 0, dst: 0, id: 0, proto: 0 },
            fate: Fate::HandedTo(0),
            hash: 0,
            at: 0,
            live: false,
        };
        let entries = entries.max(1);
        Self { ring: vec![empty; entries], next: 0, index: FlowIndex::with_capacity(entries), lifetime, seed }
    }

    fn hash(&self, k: &FragKey) -> u64 {
        let x = ((k.src as u64) << 32 | k.dst as u64) ^ self.seed;
        let h = (x ^ ((k.id as u64) << 8 | k.proto as u64).rotate_left(40)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        h ^ (h >> 31)
    }

    /// Remembers what became of the first fragment of `key`.
    pub fn remember(&mut self, key: FragKey, fate: Fate, now: u32) {
        let h = self.hash(&key);
        if let Some(i) = self.index.find(h, |i| self.ring[i as usize].key == key) {
            let e = &mut self.ring[i as usize];
            (e.fate, e.at) = (fate, now);
            return;
        }
        let slot = self.next;
        self.next = (self.next + 1) % self.ring.len();
        let old = self.ring[slot];
        if old.live {
            self.index.remove(old.hash, slot as u32);
        }
        self.ring[slot] = Entry { key, fate, hash: h, at: now, live: true };
        self.index.insert(h, slot as u32);
    }

    /// What became of the first fragment of `key`, if known and recent.
    pub fn lookup(&self, key: &FragKey, now: u32) -> Option<Fate> {
        let h = self.hash(key);
        let i = self.index.find(h, |i| self.ring[i as usize].key == *key)?;
        let e = &self.ring[i as usize];
        (now.saturating_sub(e.at) <= self.lifetime).then_some(e.fate)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(id: u16) -> FragKey {
        FragKey { src: 1, dst: 2, id, proto: 17 }
    }

    #[test]
    fn later_fragments_find_the_first_ones_translation_until_it_lapses_or_is_overwritten() {
        let mut f = Fragments::new(4, 5, 1);
        assert_eq!(f.lookup(&key(1), 0), None, "no first fragment yet");
        f.remember(key(1), Fate::Translated(Side::Src, 99), 10);
        assert_eq!(f.lookup(&key(1), 12), Some(Fate::Translated(Side::Src, 99)));
        assert_eq!(f.lookup(&key(1), 16), None, "lapsed");
        for id in 2..=5 {
            f.remember(key(id), Fate::HandedTo(id), 20);
        }
        assert_eq!(f.lookup(&key(1), 20), None, "overwritten by the ring");
        assert_eq!(f.lookup(&key(5), 20), Some(Fate::HandedTo(5)));
        assert_eq!(f.index.len(), 4);
    }
}
