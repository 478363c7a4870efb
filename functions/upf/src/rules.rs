//! A session's rules as the data path uses them (TS 29.244 section 5.2):
//! packet detection rules (PDRs: where a packet comes from, its tunnel,
//! its UE address, its service data flow, its QFI) each naming a
//! forwarding action rule (FAR: forward, drop or buffer; outer header
//! creation toward a gNB). The lowest precedence value wins among the
//! PDRs that match (5.2.1). The session table indexes sessions by uplink
//! TEID and by UE address, and is replaced whole on a change (workers
//! pick up the new version between batches).

use std::net::IpAddr;

use rustc_hash::FxHashMap;

use crate::sdf::{FlowView, SdfFilter};
use crate::usage::NO_URR;

/// Source and destination interface values (TS 29.244 section 8.2.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Interface {
    /// Access: the gNB side, N3 (value 0).
    Access,
    /// Core: the data network side, N6 (value 1).
    Core,
}

/// Packet detection information (TS 29.244 section 8.2.2 et seq.).
#[derive(Clone, Debug, Default)]
pub struct Pdi {
    /// Where the packet comes from; `None` matches none.
    pub source: Option<Interface>,
    /// The local F-TEID's TEID (uplink).
    pub teid: Option<u32>,
    /// The UE's address.
    pub ue_ip: Option<u32>,
    /// Service data flow filters; empty: any.
    pub sdf: Vec<SdfFilter>,
    /// The QFI the packet must carry.
    pub qfi: Option<u8>,
}

/// What a QER (TS 29.244 5.4.5, 8.2.7 Gate Status, 8.2.8 MBR) asks of
/// one direction: the gate, and the maximum bit rate as bytes per second
/// (0: no limit).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Limit {
    /// The gate is open.
    pub open: bool,
    /// Maximum bytes per second; 0 for none.
    pub bytes_per_sec: u64,
}

/// No rate limit (the index of no bucket).
pub const NO_BUCKET: u32 = u32::MAX;

/// A packet detection rule.
#[derive(Clone, Debug)]
pub struct Pdr {
    /// Its id within the session.
    pub id: u16,
    /// Lower wins.
    pub precedence: u32,
    /// What it matches.
    pub pdi: Pdi,
    /// Remove the outer GTP-U/UDP/IP header (uplink).
    pub remove_outer_header: bool,
    /// Its FAR's id.
    pub far: u32,
    /// Its QER's gate and rate for this PDR's direction.
    pub limit: Option<Limit>,
    /// The rate bucket the data path keeps for it ([`NO_BUCKET`] for
    /// none); numbered when the session table is built.
    pub bucket: u32,
    /// The usage counter slots of its URRs (TS 29.244 5.2.2), counted
    /// for every packet it forwards.
    pub urrs: Vec<u32>,
}

/// Apply Action (TS 29.244 section 8.2.26).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Forward.
    Forward,
    /// Drop.
    Drop,
    /// Buffer (until a modification says otherwise).
    Buffer,
}

/// Outer Header Creation (TS 29.244 section 8.2.56): GTP-U/UDP/IPv4 or
/// GTP-U/UDP/IPv6.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OuterHeader {
    /// The peer's TEID.
    pub teid: u32,
    /// The peer's (gNB's) address: IPv4 or IPv6 underlay.
    pub peer: IpAddr,
}

/// A forwarding action rule.
#[derive(Clone, Debug)]
pub struct Far {
    /// Its id within the session.
    pub id: u32,
    /// What to do.
    pub action: Action,
    /// Where to (forwarding).
    pub destination: Interface,
    /// The tunnel to put the packet in (downlink).
    pub outer: Option<OuterHeader>,
    /// QFI to mark in the PDU Session Container (from the QER).
    pub qfi: Option<u8>,
    /// Notify the SMF when buffering starts (Apply Action NOCP, 5.2.3.1).
    pub notify: bool,
}

/// One PFCP session.
#[derive(Clone, Debug)]
pub struct Session {
    /// Its SEID.
    pub seid: u64,
    /// PDRs, lowest precedence first.
    pub pdrs: Vec<Pdr>,
    /// FARs.
    pub fars: Vec<Far>,
}

impl Session {
    /// A session with its PDRs put in precedence order.
    pub fn new(seid: u64, mut pdrs: Vec<Pdr>, fars: Vec<Far>) -> Self {
        pdrs.sort_by_key(|p| p.precedence);
        Self { seid, pdrs, fars }
    }

    /// The first PDR (by precedence) matching a packet from `source` with
    /// tunnel `teid` and `qfi` (uplink) whose flow is `flow`.
    #[inline]
    pub fn detect(&self, source: Interface, teid: Option<u32>, qfi: Option<u8>, flow: &FlowView) -> Option<&Pdr> {
        self.pdrs.iter().find(|p| {
            let d = &p.pdi;
            d.source == Some(source)
                && (d.teid.is_none() || d.teid == teid)
                && d.ue_ip.is_none_or(|ip| ip == flow.ue.0)
                && (d.qfi.is_none() || d.qfi == qfi)
                && (d.sdf.is_empty() || d.sdf.iter().any(|f| f.matches(flow)))
        })
    }

    /// The FAR `id`.
    #[inline]
    pub fn far(&self, id: u32) -> Option<&Far> {
        self.fars.iter().find(|f| f.id == id)
    }
}

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
    /// The FAR's action: 0 forward, 1 drop, 2 buffer.
    pub action: u8,
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
    const NONE: u32 = u32::MAX;
    /// `qfi` value for no PDU Session Container.
    pub const NO_QFI: u8 = 0xff;
}

/// An open-addressing table of [`Fast`] entries (linear probing, at most
/// half full), built with the snapshot and only read by the workers.
#[derive(Clone, Debug, Default)]
pub struct FastTable {
    slots: Vec<Fast>,
    mask: usize,
}

#[inline(always)]
fn slot_of(key: u32, mask: usize) -> usize {
    ((key as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 32) as usize & mask
}

impl FastTable {
    fn new(entries: &[Fast]) -> Self {
        let n = (entries.len() * 2).next_power_of_two().max(2);
        let mut t = Self { slots: vec![Fast { session: Fast::NONE, ..Fast::default() }; n], mask: n - 1 };
        for e in entries {
            let mut i = slot_of(e.key, t.mask);
            while t.slots[i].session != Fast::NONE {
                i = (i + 1) & t.mask;
            }
            t.slots[i] = *e;
        }
        t
    }

    /// Starts loading `key`'s home slot.
    #[inline(always)]
    pub fn prefetch(&self, key: u32) {
        if !self.slots.is_empty() {
            nfv_core::mem::prefetch(&self.slots[slot_of(key, self.mask)]);
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

/// Every session, indexed for the data path; one version.
#[derive(Clone, Debug, Default)]
pub struct Sessions {
    /// The sessions.
    pub list: Vec<Session>,
    by_teid: FxHashMap<u32, u32>,
    by_ue: FxHashMap<u32, u32>,
    /// Uplink by TEID, flattened.
    pub fast_uplink: FastTable,
    /// Downlink by UE address, flattened.
    pub fast_downlink: FastTable,
    /// Every rate-limited PDR's limit, by bucket number.
    pub limits: Vec<Limit>,
    /// Incremented by every change.
    pub version: u64,
}

/// The flattened rule of `s` for packets from `source` keyed `key`: its
/// only PDR for that source, when it has no SDF filter and no QFI
/// condition; else a pointer to the general walk.
fn flatten(s: &Session, i: u32, source: Interface, key: u32) -> Fast {
    let mut pdrs = s.pdrs.iter().filter(|p| p.pdi.source == Some(source));
    let general = Fast { key, session: Fast::GENERAL, ..Fast::default() };
    let (Some(p), None) = (pdrs.next(), pdrs.next()) else { return general };
    let Some(far) = s.far(p.far) else { return general };
    if !p.pdi.sdf.is_empty()
        || p.pdi.qfi.is_some()
        || p.urrs.len() > 1
        || (source == Interface::Core && p.pdi.ue_ip != Some(key))
    {
        return general;
    }
    let action = match far.action {
        Action::Forward => 0,
        Action::Drop => 1,
        Action::Buffer => 2,
    };
    let (teid, peer) = match far.outer.map(|o| (o.teid, o.peer)) {
        Some((t, IpAddr::V4(a))) => (t, u32::from(a)),
        // The flat entry holds an IPv4 peer; IPv6 underlay takes the walk.
        Some((_, IpAddr::V6(_))) => return general,
        None => (0, 0),
    };
    if source == Interface::Core && action == 0 && far.outer.is_none() {
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
        bucket: p.bucket,
        urr: p.urrs.first().copied().unwrap_or(NO_URR),
    }
}

impl Sessions {
    /// Indexes `list`; refuses a TEID or UE address claimed twice, or a
    /// PDR naming a FAR the session lacks.
    pub fn new(mut list: Vec<Session>, version: u64) -> Result<Self, String> {
        let mut limits = Vec::new();
        for p in list.iter_mut().flat_map(|s| s.pdrs.iter_mut()) {
            p.bucket = match p.limit {
                Some(l) => {
                    limits.push(l);
                    (limits.len() - 1) as u32
                }
                None => NO_BUCKET,
            };
        }
        let (mut by_teid, mut by_ue) = (FxHashMap::default(), FxHashMap::default());
        for (i, s) in list.iter().enumerate() {
            for p in &s.pdrs {
                if s.far(p.far).is_none() {
                    return Err(format!("session {}: PDR {} names FAR {}, which it lacks", s.seid, p.id, p.far));
                }
                for (map, key, what) in [(&mut by_teid, p.pdi.teid, "TEID"), (&mut by_ue, p.pdi.ue_ip, "UE address")] {
                    if let Some(k) = key
                        && let Some(&other) = map.get(&k)
                        && other != i as u32
                    {
                        return Err(format!(
                            "sessions {} and {}: {what} {k:#x} twice",
                            list[other as usize].seid, s.seid
                        ));
                    }
                    if let Some(k) = key {
                        map.insert(k, i as u32);
                    }
                }
            }
        }
        let ul: Vec<Fast> =
            by_teid.iter().map(|(&k, &i)| flatten(&list[i as usize], i, Interface::Access, k)).collect();
        let dl: Vec<Fast> = by_ue.iter().map(|(&k, &i)| flatten(&list[i as usize], i, Interface::Core, k)).collect();
        let (fast_uplink, fast_downlink) = (FastTable::new(&ul), FastTable::new(&dl));
        Ok(Self { list, by_teid, by_ue, fast_uplink, fast_downlink, limits, version })
    }

    /// The session whose uplink tunnel is `teid`.
    #[inline]
    pub fn by_teid(&self, teid: u32) -> Option<&Session> {
        self.by_teid.get(&teid).map(|&i| &self.list[i as usize])
    }

    /// Bytes the table holds (sessions, their rules, the indexes), about:
    /// what a worker's snapshot costs.
    pub fn bytes(&self) -> usize {
        let rules: usize = self
            .list
            .iter()
            .map(|s| {
                size_of::<Session>()
                    + s.pdrs.capacity() * size_of::<Pdr>()
                    + s.fars.capacity() * size_of::<Far>()
                    + s.pdrs
                        .iter()
                        .map(|p| p.pdi.sdf.capacity() * size_of::<crate::sdf::SdfFilter>() + p.urrs.capacity() * 4)
                        .sum::<usize>()
            })
            .sum();
        let index = (self.by_teid.capacity() + self.by_ue.capacity()) * (size_of::<(u32, u32)>() + 1);
        let fast = (self.fast_uplink.slots.len() + self.fast_downlink.slots.len()) * size_of::<Fast>();
        rules + index + fast + self.limits.capacity() * size_of::<Limit>()
    }

    /// The session of UE address `ip`.
    #[inline]
    pub fn by_ue(&self, ip: u32) -> Option<&Session> {
        self.by_ue.get(&ip).map(|&i| &self.list[i as usize])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sdf;

    fn session() -> Session {
        let ue = 0x0a2d_0007;
        let pdr = |id, precedence, source, teid, sdf: Vec<&str>, far| Pdr {
            id,
            precedence,
            pdi: Pdi {
                source: Some(source),
                teid,
                ue_ip: Some(ue),
                sdf: sdf.into_iter().map(|s| sdf::parse(s).unwrap()).collect(),
                qfi: None,
            },
            remove_outer_header: source == Interface::Access,
            far,
            limit: None,
            bucket: NO_BUCKET,
            urrs: Vec::new(),
        };
        let far = |id, action, destination, outer| Far { id, action, destination, outer, qfi: Some(9), notify: false };
        Session::new(
            1,
            vec![
                pdr(1, 200, Interface::Access, Some(0x1234), vec![], 1),
                pdr(2, 200, Interface::Core, None, vec![], 2),
                pdr(3, 100, Interface::Core, None, vec!["permit out 6 from any 25 to assigned"], 3),
            ],
            vec![
                far(1, Action::Forward, Interface::Core, None),
                far(
                    2,
                    Action::Forward,
                    Interface::Access,
                    Some(OuterHeader { teid: 0xabcd, peer: [10, 10, 0, 2].into() }),
                ),
                far(3, Action::Drop, Interface::Access, None),
            ],
        )
    }

    #[test]
    fn the_lowest_precedence_match_wins_and_sessions_are_found_by_teid_and_ue() {
        let s = Sessions::new(vec![session()], 0).unwrap();
        let ue = (0x0a2d_0007, 40000);
        let smtp = FlowView { proto: 6, remote: (0x0808_0808, 25), ue };
        let web = FlowView { proto: 6, remote: (0x0808_0808, 443), ue };
        let dl = s.by_ue(0x0a2d_0007).unwrap();
        assert_eq!(dl.detect(Interface::Core, None, None, &smtp).unwrap().far, 3, "precedence 100 first");
        assert_eq!(dl.detect(Interface::Core, None, None, &web).unwrap().far, 2);
        let ul = s.by_teid(0x1234).unwrap();
        assert_eq!(ul.detect(Interface::Access, Some(0x1234), Some(9), &web).unwrap().far, 1);
        assert!(ul.detect(Interface::Access, Some(0x9999), None, &web).is_none(), "another tunnel");
        assert!(s.by_teid(0x9999).is_none() && s.by_ue(1).is_none());
    }

    #[test]
    fn usual_sessions_flatten_and_the_rest_take_the_general_walk() {
        let s = Sessions::new(vec![session()], 0).unwrap();
        let ul = s.fast_uplink.get(0x1234).unwrap();
        assert_eq!((ul.session, ul.ue, ul.action), (0, 0x0a2d_0007, 0), "one uplink PDR: flat");
        let dl = s.fast_downlink.get(0x0a2d_0007).unwrap();
        assert_eq!(dl.session, Fast::GENERAL, "two downlink PDRs, one with an SDF filter: the general walk");
        assert!(s.fast_uplink.get(0x9999).is_none() && s.fast_downlink.get(1).is_none());
        let many = usual_sessions(1000);
        let s = Sessions::new(many, 0).unwrap();
        for i in 0..1000u32 {
            let d = s.fast_downlink.get(0x0a00_0000 + i).unwrap();
            assert_eq!((d.session, d.teid, d.peer, d.qfi), (i, 0xabcd, 0x0a0a_0002, 9));
            assert_eq!(s.fast_uplink.get(0x10_0000 + i).unwrap().session, i);
        }
    }

    /// `n` sessions of the usual shape (one uplink, one downlink PDR):
    /// UE 10.0.x.y and uplink TEID 0x100000 + i for session i.
    fn usual_sessions(n: u32) -> Vec<Session> {
        (0..n)
            .map(|i| {
                let mut x = session();
                x.seid = i as u64;
                x.pdrs.retain(|p| p.id != 3);
                x.fars.retain(|f| f.id != 3);
                for p in &mut x.pdrs {
                    p.pdi.ue_ip = Some(0x0a00_0000 + i);
                    p.pdi.teid = p.pdi.teid.map(|_| 0x10_0000 + i);
                }
                x
            })
            .collect()
    }

    /// 100,000 sessions (the scale): every one found both ways,
    /// flattened, and the memory it takes reported.
    #[test]
    fn a_hundred_thousand_sessions_are_indexed_and_their_memory_told() {
        let n = 100_000u32;
        let list = usual_sessions(n);
        let s = Sessions::new(list, 0).unwrap();
        for i in (0..n).step_by(997) {
            assert_eq!(s.by_teid(0x10_0000 + i).unwrap().seid, i as u64);
            assert_eq!(s.fast_downlink.get(0x0a00_0000 + i).unwrap().session, i);
        }
        let mib = s.bytes() as f64 / (1 << 20) as f64;
        eprintln!("100000 sessions: {mib:.1} MiB ({} bytes each)", s.bytes() / n as usize);
        assert!(mib < 200.0, "{mib} MiB");
    }

    #[test]
    fn conflicts_and_dangling_fars_are_refused() {
        let mut other = session();
        other.seid = 2;
        let e = Sessions::new(vec![session(), other.clone()], 0).unwrap_err();
        assert!(e.contains("UE address 0xa2d0007 twice"), "{e}");
        for p in &mut other.pdrs {
            p.pdi.ue_ip = Some(0x0a2d_0008);
        }
        let e = Sessions::new(vec![session(), other], 0).unwrap_err();
        assert!(e.contains("TEID 0x1234 twice"), "{e}");
        let mut dangling = session();
        dangling.fars.pop();
        assert!(Sessions::new(vec![dangling], 0).unwrap_err().contains("PDR 3 names FAR 3"));
    }
}
