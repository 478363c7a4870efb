//! The flat entries of the usual sessions: what a packet of a session
//! with one PDR per direction needs, in 32 octets, found by TEID (uplink)
//! or UE address (downlink) in an open-addressing table read once per
//! packet; sessions whose rules need more take the general PDR walk.

use std::net::IpAddr;

use crate::rules::{Action, Interface, NO_BUCKET, Session};
use crate::usage::NO_URR;

/// The usual session's rule for one direction, flattened: what a packet
/// needs when the session has a single PDR for that direction with no
/// SDF filter, no QFI condition and at most one URR (the common case),
/// half a cache line read per packet instead of a walk over the
/// session's vectors.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct Fast {
    /// The key: uplink TEID or UE address; 0 with `session == NONE`: empty.
    pub key: u32,
    /// The session (index in the list), or [`Fast::GENERAL`] when its
    /// rules need the general walk.
    pub session: u32,
    /// The UE address the PDR requires (uplink: the inner source).
    pub ue: u32,
    /// The peer's TEID (downlink outer header creation).
    pub teid: u32,
    /// The peer's address (downlink).
    pub peer: u32,
    /// The FAR's action.
    pub action: Action,
    /// The QFI to mark, `NO_QFI` for none.
    pub qfi: u8,
    /// The PDR's rate bucket, [`NO_BUCKET`] for none.
    pub bucket: u32,
    /// The PDR's URR's counter slot, [`NO_URR`] for none.
    pub urr: u32,
}

impl Fast {
    /// `session` value of a key whose session needs the general walk.
    pub const GENERAL: u32 = u32::MAX - 1;
    /// `session` value of an empty slot.
    pub const NONE: u32 = u32::MAX;
    /// `qfi` value for no PDU Session Container.
    pub const NO_QFI: u8 = 0xff;
}

/// An open-addressing table of [`Fast`] entries (linear probing, at most
/// half full, backward-shift deletion so no tombstones pile up), changed
/// by the N4 side between versions and only read by the workers.
#[derive(Clone, Debug, Default)]
pub struct FastTable {
    slots: Vec<Fast>,
    mask: usize,
    used: usize,
}

#[inline(always)]
fn slot_of(key: u32, mask: usize) -> usize {
    ((key as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 32) as usize & mask
}

const EMPTY: Fast =
    Fast { key: 0, session: Fast::NONE, ue: 0, teid: 0, peer: 0, action: Action::Forward, qfi: 0, bucket: 0, urr: 0 };

impl FastTable {
    /// A table for about `n` entries.
    pub fn with_capacity(n: usize) -> Self {
        let size = (n * 2).next_power_of_two().max(16);
        Self { slots: vec![EMPTY; size], mask: size - 1, used: 0 }
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.used
    }

    /// No entries.
    pub fn is_empty(&self) -> bool {
        self.used == 0
    }

    /// Octets the slots take.
    pub fn bytes(&self) -> usize {
        self.slots.len() * size_of::<Fast>()
    }

    /// Adds `e`, or replaces the entry of its key.
    pub fn insert(&mut self, e: Fast) {
        if (self.used + 1) * 2 > self.slots.len() {
            self.grow();
        }
        let mut i = slot_of(e.key, self.mask);
        while self.slots[i].session != Fast::NONE && self.slots[i].key != e.key {
            i = (i + 1) & self.mask;
        }
        if self.slots[i].session == Fast::NONE {
            self.used += 1;
        }
        self.slots[i] = e;
    }

    /// Removes `key`'s entry, if any: the entries after it in its run
    /// move back to fill the hole when their home allows.
    pub fn remove(&mut self, key: u32) {
        if self.slots.is_empty() {
            return;
        }
        let mut i = slot_of(key, self.mask);
        loop {
            let e = &self.slots[i];
            if e.session == Fast::NONE {
                return;
            }
            if e.key == key {
                break;
            }
            i = (i + 1) & self.mask;
        }
        let mut hole = i;
        let mut j = (i + 1) & self.mask;
        while self.slots[j].session != Fast::NONE {
            let home = slot_of(self.slots[j].key, self.mask);
            // It may move back unless its home lies after the hole, up
            // to where it is (cyclically).
            if (j.wrapping_sub(home) & self.mask) >= (j.wrapping_sub(hole) & self.mask) {
                self.slots[hole] = self.slots[j];
                hole = j;
            }
            j = (j + 1) & self.mask;
        }
        self.slots[hole] = EMPTY;
        self.used -= 1;
    }

    fn grow(&mut self) {
        let mut bigger = Self::with_capacity(self.slots.len());
        for e in self.slots.iter().filter(|e| e.session != Fast::NONE) {
            bigger.insert(*e);
        }
        *self = bigger;
    }

    /// Starts loading `key`'s home slot.
    #[inline(always)]
    pub fn prefetch(&self, key: u32) {
        if !self.slots.is_empty() {
            nfv_net::mem::prefetch(&self.slots[slot_of(key, self.mask)]);
        }
    }

    /// `key`'s entry.
    #[inline(always)]
    pub fn get(&self, key: u32) -> Option<&Fast> {
        if self.slots.is_empty() {
            return None;
        }
        let mut i = slot_of(key, self.mask);
        loop {
            let e = &self.slots[i];
            if e.session == Fast::NONE {
                return None;
            }
            if e.key == key {
                return Some(e);
            }
            i = (i + 1) & self.mask;
        }
    }
}

/// The flattened rule of `s` for packets from `source` keyed `key`: its
/// only PDR for that source, when it has no SDF filter and no QFI
/// condition; else a pointer to the general walk.
pub fn flatten(s: &Session, i: u32, base: u32, source: Interface, key: u32) -> Fast {
    let mut pdrs = s.pdrs.iter().filter(|p| p.pdi.source == Some(source));
    let general = Fast { key, session: Fast::GENERAL, ..Fast::default() };
    let (Some(p), None) = (pdrs.next(), pdrs.next()) else { return general };
    let Some(far) = s.far(p.far) else { return general };
    if !p.pdi.sdf.is_empty()
        || p.pdi.qfi.is_some()
        || p.urrs.len() > 1
        || (source == Interface::Core && p.pdi.ue_ip != Some(key))
        // An IPv6-only PDR: the flat entry's source check is IPv4's.
        || (p.pdi.ue_ip.is_none() && p.pdi.ue_ip6.is_some())
    {
        return general;
    }
    let action = far.action;
    let (teid, peer) = match far.outer.map(|o| (o.teid, o.peer)) {
        Some((t, IpAddr::V4(a))) => (t, u32::from(a)),
        // The flat entry holds an IPv4 peer; IPv6 underlay takes the walk.
        Some((_, IpAddr::V6(_))) => return general,
        None => (0, 0),
    };
    if source == Interface::Core && action == Action::Forward && far.outer.is_none() {
        return general;
    }
    Fast {
        key,
        session: i,
        ue: p.pdi.ue_ip.unwrap_or(0),
        teid,
        peer,
        action,
        qfi: far.qfi.unwrap_or(Fast::NO_QFI),
        bucket: if p.bucket == NO_BUCKET { NO_BUCKET } else { base + p.bucket },
        urr: p.urrs.first().copied().unwrap_or(NO_URR),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(key: u32) -> Fast {
        Fast { key, session: key, ..Fast::default() }
    }

    /// Against a map, under keys that collide on their home slot.
    #[test]
    fn inserts_and_removals_agree_with_a_map() {
        let mut t = FastTable::with_capacity(8);
        let mut m = std::collections::HashMap::new();
        let mut rng = fastrand::Rng::with_seed(7);
        for round in 0..20_000 {
            // Few distinct keys, many of one home: long runs, wrap-around.
            let key = rng.u32(0..64) * if round % 3 == 0 { 1 } else { 1 << 20 };
            if rng.bool() {
                t.insert(entry(key));
                m.insert(key, key);
            } else {
                t.remove(key);
                m.remove(&key);
            }
            assert_eq!(t.len(), m.len());
        }
        for key in (0..64).flat_map(|k| [k, k << 20]) {
            assert_eq!(t.get(key).map(|e| e.session), m.get(&key).copied(), "key {key:#x}");
        }
    }
}
