//! A session's rules as the data path uses them (TS 29.244 section 5.2):
//! packet detection rules (PDRs: where a packet comes from, its tunnel,
//! its UE address, its service data flow, its QFI) each naming a
//! forwarding action rule (FAR: forward, drop or buffer; outer header
//! creation toward a gNB). The lowest precedence value wins among the
//! PDRs that match (5.2.1). The session table indexes sessions by uplink
//! TEID and by UE address, and is replaced whole on a change (workers
//! pick up the new version between batches).

use std::net::IpAddr;
use std::sync::Arc;

use rustc_hash::FxHashMap;

use crate::fast::{FastTable, flatten};
use crate::sdf::{FlowView, SdfFilter};

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
    /// The UE's IPv4 address.
    pub ue_ip: Option<u32>,
    /// The UE's IPv6 /64 prefix (upper 64 bits): an IPv6 PDU session.
    pub ue_ip6: Option<u64>,
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
    /// Its rate bucket's rank among its session's limited PDRs
    /// ([`NO_BUCKET`] for none), numbered by [`Session::new`]; the data
    /// path's bucket is its session's base plus this.
    pub bucket: u32,
    /// The usage counter slots of its URRs (TS 29.244 5.2.2), counted
    /// for every packet it forwards.
    pub urrs: Vec<u32>,
}

/// Apply Action (TS 29.244 section 8.2.26).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(u8)]
pub enum Action {
    /// Forward.
    #[default]
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
        let mut rank = 0;
        for p in &mut pdrs {
            p.bucket = match p.limit {
                Some(_) => {
                    rank += 1;
                    rank - 1
                }
                None => NO_BUCKET,
            };
        }
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
                && match flow.ue6 {
                    // A PDR with only the other family's address is not
                    // for this packet.
                    None => d.ue_ip.map_or(d.ue_ip6.is_none(), |ip| ip == flow.ue.0),
                    Some(prefix) => d.ue_ip6.map_or(d.ue_ip.is_none(), |p| p == prefix),
                }
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

/// Every session, indexed for the data path; one version. A new version
/// is the previous one with the changed sessions taken out and put back
/// ([`Sessions::changed`]): the sessions are shared, the indexes copied
/// and patched, so a change costs a copy of the indexes, not a rebuild
/// of every session's entries.
#[derive(Clone, Debug, Default)]
pub struct Sessions {
    /// The sessions by slot (a removed session's slot is reused).
    slots: Vec<Option<Arc<Session>>>,
    free: Vec<u32>,
    by_seid: FxHashMap<u64, u32>,
    by_teid: FxHashMap<u32, u32>,
    by_ue: FxHashMap<u32, u32>,
    by_ue6: FxHashMap<u64, u32>,
    /// Uplink by TEID, flattened.
    pub fast_uplink: FastTable,
    /// Downlink by UE address, flattened.
    pub fast_downlink: FastTable,
    /// Every rate-limited PDR's limit, by bucket number (a session's
    /// buckets follow its slot's base; a replaced session's old ones stay
    /// unused until the numbering is redone).
    pub limits: Vec<Limit>,
    bucket_base: Vec<u32>,
    /// Limits still named by a session.
    live_limits: usize,
    /// Changes when buckets are renumbered (workers then start their
    /// rate buckets afresh; otherwise they keep them across versions).
    pub bucket_epoch: u64,
    /// Incremented by every change.
    pub version: u64,
    /// Tunnels the SMF switched away from asking for End Markers, by the
    /// version that switched (the last [`END_MARKERS_KEPT`]): each worker
    /// sends those of versions it has not yet.
    pub end_markers: Vec<(u64, OuterHeader)>,
    /// The slots whose session went or was replaced, by the version that
    /// did it (oldest first): a worker that handed a session's flat
    /// entries to XDP withdraws them when it takes up a version that
    /// changed the session. Complete for the versions after
    /// `changed_since` (a worker on an older one withdraws everything).
    pub changed: Vec<(u64, u32)>,
    /// See `changed`.
    pub changed_since: u64,
}

/// Changed slots a table carries (workers take them up within a
/// millisecond; past this the oldest are dropped and `changed_since`
/// moves on).
pub const CHANGES_KEPT: usize = 8192;

/// End Marker requests a table carries (workers take them up within a
/// millisecond; older ones are dropped).
pub const END_MARKERS_KEPT: usize = 256;

/// Leftover limits tolerated beyond twice the live ones before buckets
/// are renumbered (small in tests, so that they renumber).
const RENUMBER_SLACK: usize = if cfg!(test) { 16 } else { 4096 };

impl Sessions {
    /// Indexes `list`; refuses a TEID, UE address or SEID claimed twice,
    /// or a PDR naming a FAR the session lacks.
    pub fn new(list: Vec<Arc<Session>>, version: u64) -> Result<Self, String> {
        let mut t = Self {
            fast_uplink: FastTable::with_capacity(list.len()),
            fast_downlink: FastTable::with_capacity(list.len()),
            bucket_epoch: version,
            version,
            changed_since: version,
            ..Self::default()
        };
        t.by_seid.reserve(list.len());
        t.by_teid.reserve(list.len());
        t.by_ue.reserve(list.len());
        for s in list {
            t.add(s)?;
        }
        Ok(t)
    }

    /// This version with `changes` (SEID, its new rules or `None` for
    /// gone), as version `version`: all or nothing.
    pub fn changed(
        &self,
        changes: impl IntoIterator<Item = (u64, Option<Arc<Session>>)>,
        version: u64,
    ) -> Result<Self, String> {
        let mut t = self.clone();
        t.version = version;
        for (seid, new) in changes {
            if let Some(&slot) = t.by_seid.get(&seid) {
                t.changed.push((version, slot));
            }
            t.remove(seid);
            if let Some(s) = new {
                t.add(s)?;
            }
        }
        if t.changed.len() > CHANGES_KEPT {
            let cut = t.changed.len() - CHANGES_KEPT;
            t.changed_since = t.changed[cut - 1].0;
            t.changed.drain(..cut);
        }
        // Renumber the buckets once most are left over from replaced
        // sessions (slots renumbered too: `changed` starts afresh).
        if t.limits.len() > 2 * t.live_limits + RENUMBER_SLACK {
            let mut renumbered = Self::new(t.iter().cloned().collect(), version)?;
            renumbered.end_markers = t.end_markers;
            return Ok(renumbered);
        }
        Ok(t)
    }

    /// Records End Markers due into `tunnels` (switched away from in this
    /// version).
    pub fn with_end_markers(mut self, tunnels: impl IntoIterator<Item = OuterHeader>) -> Self {
        let v = self.version;
        self.end_markers.extend(tunnels.into_iter().map(|t| (v, t)));
        let over = self.end_markers.len().saturating_sub(END_MARKERS_KEPT);
        self.end_markers.drain(..over);
        self
    }

    fn add(&mut self, s: Arc<Session>) -> Result<(), String> {
        // Checked first: a refused session leaves nothing behind.
        if self.by_seid.contains_key(&s.seid) {
            return Err(format!("SEID {} twice", s.seid));
        }
        for p in &s.pdrs {
            if s.far(p.far).is_none() {
                return Err(format!("session {}: PDR {} names FAR {}, which it lacks", s.seid, p.id, p.far));
            }
            for (map, key, what) in [(&self.by_teid, p.pdi.teid, "TEID"), (&self.by_ue, p.pdi.ue_ip, "UE address")] {
                if let Some(k) = key
                    && let Some(&other) = map.get(&k)
                {
                    let other = self.slots[other as usize].as_ref().map_or(0, |o| o.seid);
                    return Err(format!("sessions {other} and {}: {what} {k:#x} twice", s.seid));
                }
            }
            if let Some(k) = p.pdi.ue_ip6
                && let Some(&other) = self.by_ue6.get(&k)
            {
                let other = self.slots[other as usize].as_ref().map_or(0, |o| o.seid);
                return Err(format!("sessions {other} and {}: UE IPv6 prefix {k:#x}::/64 twice", s.seid));
            }
        }
        let slot = self.free.pop().unwrap_or_else(|| {
            self.slots.push(None);
            self.bucket_base.push(0);
            (self.slots.len() - 1) as u32
        });
        let base = self.limits.len() as u32;
        self.bucket_base[slot as usize] = base;
        let limits = s.pdrs.iter().filter_map(|p| p.limit);
        let before = self.limits.len();
        self.limits.extend(limits);
        self.live_limits += self.limits.len() - before;
        for p in &s.pdrs {
            if let Some(t) = p.pdi.teid {
                self.by_teid.insert(t, slot);
                self.fast_uplink.insert(flatten(&s, slot, base, Interface::Access, t));
            }
            if let Some(u) = p.pdi.ue_ip {
                self.by_ue.insert(u, slot);
                self.fast_downlink.insert(flatten(&s, slot, base, Interface::Core, u));
            }
            if let Some(u) = p.pdi.ue_ip6 {
                self.by_ue6.insert(u, slot);
            }
        }
        self.by_seid.insert(s.seid, slot);
        self.slots[slot as usize] = Some(s);
        Ok(())
    }

    fn remove(&mut self, seid: u64) {
        let Some(slot) = self.by_seid.remove(&seid) else { return };
        let Some(s) = self.slots[slot as usize].take() else { return };
        for p in &s.pdrs {
            if let Some(t) = p.pdi.teid
                && self.by_teid.get(&t) == Some(&slot)
            {
                self.by_teid.remove(&t);
                self.fast_uplink.remove(t);
            }
            if let Some(u) = p.pdi.ue_ip
                && self.by_ue.get(&u) == Some(&slot)
            {
                self.by_ue.remove(&u);
                self.fast_downlink.remove(u);
            }
            if let Some(u) = p.pdi.ue_ip6
                && self.by_ue6.get(&u) == Some(&slot)
            {
                self.by_ue6.remove(&u);
            }
        }
        self.live_limits -= s.pdrs.iter().filter(|p| p.limit.is_some()).count();
        self.free.push(slot);
    }

    /// Sessions held.
    pub fn len(&self) -> usize {
        self.by_seid.len()
    }

    /// No sessions.
    pub fn is_empty(&self) -> bool {
        self.by_seid.is_empty()
    }

    /// The sessions, in slot order.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<Session>> {
        self.slots.iter().flatten()
    }

    /// The data path's rate bucket of PDR `pdr` of the session in slot
    /// `i`.
    #[inline]
    pub fn bucket(&self, i: u32, pdr: &Pdr) -> u32 {
        if pdr.bucket == NO_BUCKET { NO_BUCKET } else { self.bucket_base[i as usize] + pdr.bucket }
    }

    /// The session whose uplink tunnel is `teid`, and its slot.
    #[inline]
    pub fn numbered_by_teid(&self, teid: u32) -> Option<(u32, &Session)> {
        let &i = self.by_teid.get(&teid)?;
        self.slots[i as usize].as_deref().map(|s| (i, s))
    }

    /// The session of UE address `ip`, and its slot.
    #[inline]
    pub fn numbered_by_ue(&self, ip: u32) -> Option<(u32, &Session)> {
        let &i = self.by_ue.get(&ip)?;
        self.slots[i as usize].as_deref().map(|s| (i, s))
    }

    /// The session of UE IPv6 prefix `prefix` (upper 64 bits), and its
    /// slot.
    #[inline]
    pub fn numbered_by_ue6(&self, prefix: u64) -> Option<(u32, &Session)> {
        let &i = self.by_ue6.get(&prefix)?;
        self.slots[i as usize].as_deref().map(|s| (i, s))
    }

    /// The session whose uplink tunnel is `teid`.
    #[inline]
    pub fn by_teid(&self, teid: u32) -> Option<&Session> {
        self.numbered_by_teid(teid).map(|(_, s)| s)
    }

    /// The session of UE address `ip`.
    #[inline]
    pub fn by_ue(&self, ip: u32) -> Option<&Session> {
        self.numbered_by_ue(ip).map(|(_, s)| s)
    }

    /// Octets the table holds (sessions, their rules, the indexes), about:
    /// what a worker's snapshot costs.
    pub fn bytes(&self) -> usize {
        let rules: usize = self
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
        let index = (self.by_teid.capacity() + self.by_ue.capacity()) * (size_of::<(u32, u32)>() + 1)
            + self.by_ue6.capacity() * (size_of::<(u64, u32)>() + 1)
            + self.by_seid.capacity() * (size_of::<(u64, u32)>() + 1)
            + self.slots.capacity() * size_of::<Option<Arc<Session>>>()
            + self.bucket_base.capacity() * 4;
        let fast = self.fast_uplink.bytes() + self.fast_downlink.bytes();
        rules + index + fast + self.limits.capacity() * size_of::<Limit>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fast::Fast;
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
                ue_ip6: None,
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
        let s = Sessions::new(vec![Arc::new(session())], 0).unwrap();
        let ue = (0x0a2d_0007, 40000);
        let smtp = FlowView { proto: 6, remote: (0x0808_0808, 25), ue, ue6: None };
        let web = FlowView { proto: 6, remote: (0x0808_0808, 443), ue, ue6: None };
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
        let s = Sessions::new(vec![Arc::new(session())], 0).unwrap();
        let ul = s.fast_uplink.get(0x1234).unwrap();
        assert_eq!((ul.session, ul.ue, ul.action), (0, 0x0a2d_0007, Action::Forward), "one uplink PDR: flat");
        let dl = s.fast_downlink.get(0x0a2d_0007).unwrap();
        assert_eq!(dl.session, Fast::GENERAL, "two downlink PDRs, one with an SDF filter: the general walk");
        assert!(s.fast_uplink.get(0x9999).is_none() && s.fast_downlink.get(1).is_none());
        let many = usual_sessions(1000);
        let s = Sessions::new(many.into_iter().map(Arc::new).collect(), 0).unwrap();
        for i in 0..1000u32 {
            let d = s.fast_downlink.get(0x0a00_0000 + i).unwrap();
            assert_eq!((d.session, d.teid, d.peer, d.qfi), (i, 0xabcd, 0x0a0a_0002, 9));
            assert_eq!(s.fast_uplink.get(0x10_0000 + i).unwrap().session, i);
        }
    }

    /// The change log names the slots of sessions a version replaced or
    /// removed (what workers withdraw from XDP), and where it was cut
    /// says from which version on it is complete.
    #[test]
    fn the_change_log_names_changed_slots_and_where_it_is_complete() {
        let s = Sessions::new(usual_sessions(3).into_iter().map(Arc::new).collect(), 1).unwrap();
        assert_eq!((s.changed.as_slice(), s.changed_since), (&[][..], 1), "a new table: nothing before it");
        let mut x = usual_sessions(3).pop().unwrap();
        x.fars[1].outer = Some(OuterHeader { teid: 0x7777, peer: [10, 10, 0, 3].into() });
        let slot = |t: &Sessions, seid| t.by_seid[&seid];
        let (s1, s2) = (slot(&s, 1), slot(&s, 2));
        let t = s.changed([(2, Some(Arc::new(x))), (1, None), (99, None)], 2).unwrap();
        assert_eq!(t.changed, [(2, s2), (2, s1)], "replaced and removed; an unknown SEID names nothing");
        let fresh = usual_sessions(CHANGES_KEPT as u32 + 10).into_iter().skip(3).map(|s| (s.seid, Some(Arc::new(s))));
        let t = t.changed(fresh, 3).unwrap();
        assert_eq!(t.changed.len(), 2, "new sessions change no slot a worker offered");
        let all = t.changed((3..CHANGES_KEPT as u64 + 10).map(|seid| (seid, None)), 4).unwrap();
        assert_eq!((all.changed.len(), all.changed_since), (CHANGES_KEPT, 4), "cut: complete only after 4");
    }

    /// An IPv6-only uplink PDR is not flattened: the flat entry checks an
    /// IPv4 source, and would let any IPv4 source through.
    #[test]
    fn an_ipv6_only_pdr_takes_the_general_walk() {
        let mut x = usual_sessions(1).pop().unwrap();
        for p in &mut x.pdrs {
            p.pdi.ue_ip6 = Some(0x2001_0db8_0045_0007);
            if p.pdi.source == Some(Interface::Access) {
                p.pdi.ue_ip = None;
            }
        }
        let s = Sessions::new(vec![Arc::new(x)], 0).unwrap();
        assert_eq!(s.fast_uplink.get(0x10_0000).unwrap().session, Fast::GENERAL);
        let v4 = FlowView { proto: 17, remote: (1, 53), ue: (0x0a63_0001, 4000), ue6: None };
        let uplink = s.by_teid(0x10_0000).unwrap();
        assert!(uplink.detect(Interface::Access, Some(0x10_0000), None, &v4).is_none(), "IPv4 from anyone: no PDR");
        let v6 = FlowView { ue6: Some(0x2001_0db8_0045_0007), ..v4 };
        assert!(uplink.detect(Interface::Access, Some(0x10_0000), None, &v6).is_some());
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
        let s = Sessions::new(list.into_iter().map(Arc::new).collect(), 0).unwrap();
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
        let e = Sessions::new(vec![Arc::new(session()), Arc::new(other.clone())], 0).unwrap_err();
        assert!(e.contains("UE address 0xa2d0007 twice"), "{e}");
        for p in &mut other.pdrs {
            p.pdi.ue_ip = Some(0x0a2d_0008);
        }
        let e = Sessions::new(vec![Arc::new(session()), Arc::new(other)], 0).unwrap_err();
        assert!(e.contains("TEID 0x1234 twice"), "{e}");
        let mut dangling = session();
        dangling.fars.pop();
        assert!(Sessions::new(vec![Arc::new(dangling)], 0).unwrap_err().contains("PDR 3 names FAR 3"));
    }

    /// Versions made by changes agree with a table built whole from the
    /// same sessions: every session found by TEID and UE address, the
    /// same flat entries and limits; a refused change leaves the version
    /// it came from as it was.
    #[test]
    fn changed_versions_agree_with_a_table_built_whole() {
        let mut rng = fastrand::Rng::with_seed(29244);
        let mut live: std::collections::BTreeMap<u64, Arc<Session>> = Default::default();
        let mut t = Sessions::default();
        for round in 0..400 {
            let mut changes = Vec::new();
            for _ in 0..rng.usize(1..8) {
                let seid = rng.u64(0..64);
                if rng.u8(0..3) == 0 {
                    changes.push((seid, None));
                    live.remove(&seid);
                } else {
                    // UE and TEID tied to the SEID (no conflicts), a limit
                    // on some, another peer now and then.
                    let mut x = usual_sessions(1).pop().unwrap();
                    x.seid = seid;
                    for p in &mut x.pdrs {
                        p.pdi.ue_ip = Some(0x0a00_0000 + seid as u32);
                        p.pdi.teid = p.pdi.teid.map(|_| 0x10_0000 + seid as u32);
                        p.limit = rng.bool().then_some(Limit { open: true, bytes_per_sec: seid * 1000 });
                    }
                    x.fars[1].outer = Some(OuterHeader { teid: round, peer: [10, 10, 0, rng.u8(2..4)].into() });
                    let x = Arc::new(Session::new(x.seid, x.pdrs, x.fars));
                    changes.push((seid, Some(x.clone())));
                    live.insert(seid, x);
                }
            }
            t = t.changed(changes, round as u64 + 1).unwrap();
            let whole = Sessions::new(live.values().cloned().collect(), 0).unwrap();
            assert_eq!(t.len(), whole.len());
            for seid in 0..64u64 {
                let (teid, ue) = (0x10_0000 + seid as u32, 0x0a00_0000 + seid as u32);
                assert_eq!(t.by_teid(teid).map(|s| s.seid), whole.by_teid(teid).map(|s| s.seid));
                assert_eq!(t.by_ue(ue).map(|s| s.seid), whole.by_ue(ue).map(|s| s.seid));
                for (a, b) in [
                    (t.fast_uplink.get(teid), whole.fast_uplink.get(teid)),
                    (t.fast_downlink.get(ue), whole.fast_downlink.get(ue)),
                ] {
                    let same = |f: &Fast, limits: &[Limit]| {
                        (
                            f.key,
                            f.ue,
                            f.teid,
                            f.peer,
                            f.action,
                            f.qfi,
                            f.urr,
                            (f.bucket != NO_BUCKET).then(|| limits[f.bucket as usize]),
                        )
                    };
                    assert_eq!(
                        a.map(|f| same(f, &t.limits)),
                        b.map(|f| same(f, &whole.limits)),
                        "SEID {seid}, round {round}"
                    );
                }
            }
        }
        // A conflict: refused whole, the version unchanged.
        let mut other = usual_sessions(1).pop().unwrap();
        other.seid = 999;
        for p in &mut other.pdrs {
            p.pdi.ue_ip = t.iter().next().and_then(|s| s.pdrs[0].pdi.ue_ip);
        }
        let before = t.len();
        assert!(t.changed([(999, Some(Arc::new(other)))], 1000).unwrap_err().contains("twice"));
        assert_eq!(t.len(), before);
    }
}
