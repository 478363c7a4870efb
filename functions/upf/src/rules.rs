//! A session's rules as the data path uses them (TS 29.244 section 5.2):
//! packet detection rules (PDRs: where a packet comes from, its tunnel,
//! its UE address, its service data flow, its QFI) each naming a
//! forwarding action rule (FAR: forward, drop or buffer; outer header
//! creation toward a gNB). The lowest precedence value wins among the
//! PDRs that match (5.2.1). The session table indexes sessions by uplink
//! TEID and by UE address, and is replaced whole on a change (workers
//! pick up the new version between batches).

use rustc_hash::FxHashMap;

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
    /// The UE's address.
    pub ue_ip: Option<u32>,
    /// Service data flow filters; empty: any.
    pub sdf: Vec<SdfFilter>,
    /// The QFI the packet must carry.
    pub qfi: Option<u8>,
}

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

/// Outer Header Creation (TS 29.244 section 8.2.56): GTP-U/UDP/IPv4.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OuterHeader {
    /// The peer's TEID.
    pub teid: u32,
    /// The peer's (gNB's) address.
    pub peer: u32,
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

/// Every session, indexed for the data path; one version.
#[derive(Clone, Debug, Default)]
pub struct Sessions {
    /// The sessions.
    pub list: Vec<Session>,
    by_teid: FxHashMap<u32, u32>,
    by_ue: FxHashMap<u32, u32>,
    /// Incremented by every change.
    pub version: u64,
}

impl Sessions {
    /// Indexes `list`; refuses a TEID or UE address claimed twice, or a
    /// PDR naming a FAR the session lacks.
    pub fn new(list: Vec<Session>, version: u64) -> Result<Self, String> {
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
        Ok(Self { list, by_teid, by_ue, version })
    }

    /// The session whose uplink tunnel is `teid`.
    #[inline]
    pub fn by_teid(&self, teid: u32) -> Option<&Session> {
        self.by_teid.get(&teid).map(|&i| &self.list[i as usize])
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
        };
        let far = |id, action, destination, outer| Far { id, action, destination, outer, qfi: Some(9) };
        Session::new(
            1,
            vec![
                pdr(1, 200, Interface::Access, Some(0x1234), vec![], 1),
                pdr(2, 200, Interface::Core, None, vec![], 2),
                pdr(3, 100, Interface::Core, None, vec!["permit out 6 from any 25 to assigned"], 3),
            ],
            vec![
                far(1, Action::Forward, Interface::Core, None),
                far(2, Action::Forward, Interface::Access, Some(OuterHeader { teid: 0xabcd, peer: 0x0a0a_0002 })),
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
