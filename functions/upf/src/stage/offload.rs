//! The UPF's plain sessions in nfv's XDP program (when the plan places
//! the stage there): like a SmartNIC's flow offload, a session is handed
//! down once a worker forwarded one of its packets by the flat entry,
//! with the headers the worker itself wrote (the N6 gateway's MAC uplink,
//! the gNB tunnel's outer headers downlink), so what XDP sends is what the
//! worker sent. Only a PDR without QER metering and whose URR watches no
//! volume threshold goes down; the program counts its usage into the
//! URR's slot, which the N4 side adds to the workers' counts.
//!
//! The session table is the N4 side's, so withdrawal follows its
//! versions: taking up a version, a worker withdraws what it offered for
//! every session the version changed (`Sessions::changed`), everything
//! when it missed part of the log or the neighbour table changed. A
//! withdrawal is queued before anything the worker offers under the new
//! version.

use nfv_core::StageCtx;
use nfv_core::offload::{GTPU_OUTER_LEN, Offloader, UpfConf, UpfDownlink, UpfUplink};
use std::net::{IpAddr, Ipv4Addr};

use super::UpfStage;
use super::tunnel::TUNNEL;
use crate::fast::Fast;
use crate::rules::{NO_BUCKET, Sessions};

/// What one worker handed to XDP, by session slot.
pub(super) struct Offload {
    o: Offloader,
    offered: Vec<Offered>,
    /// The sessions version the offers follow.
    version: u64,
}

/// One session's offers: its uplink TEID and downlink UE address, each
/// once decided (installed, or found not to go down).
#[derive(Clone, Copy, Default)]
struct Offered {
    teid: u32,
    ue: u32,
    up: Decided,
    down: Decided,
}

#[derive(Clone, Copy, Default, PartialEq, Eq)]
enum Decided {
    #[default]
    No,
    /// Installed: withdrawn when the session changes.
    Installed,
    /// Stays in the workers until the session changes.
    Kept,
}

impl Offload {
    pub(super) fn new(o: Offloader, version: u64) -> Self {
        Self { o, offered: Vec::new(), version }
    }

    fn entry(&mut self, slot: u32) -> &mut Offered {
        let i = slot as usize;
        if i >= self.offered.len() {
            self.offered.resize(i + 1, Offered::default());
        }
        &mut self.offered[i]
    }

    #[inline(always)]
    fn decided(&self, slot: u32, down: bool) -> bool {
        self.offered.get(slot as usize).is_some_and(|e| if down { e.down } else { e.up } != Decided::No)
    }

    /// Takes up version `s`: withdraws what `s` changed since the offers'
    /// version.
    #[inline]
    pub(super) fn follow(&mut self, s: &Sessions) {
        if s.version == self.version {
            return;
        }
        self.follow_now(s);
    }

    #[cold]
    #[inline(never)]
    fn follow_now(&mut self, s: &Sessions) {
        if self.version < s.changed_since {
            self.withdraw_all();
        } else {
            let since = self.version;
            for &(_, slot) in s.changed.iter().rev().take_while(|(v, _)| *v > since) {
                self.withdraw(slot);
            }
        }
        self.version = s.version;
    }

    fn withdraw(&mut self, slot: u32) {
        let Some(e) = self.offered.get_mut(slot as usize) else { return };
        let e = std::mem::take(e);
        if e.up == Decided::Installed {
            self.o.remove_uplink(e.teid);
        }
        if e.down == Decided::Installed {
            self.o.remove_downlink(e.ue);
        }
    }

    /// Withdraws every offer (the neighbour table changed: the MACs and
    /// outer headers installed may be stale).
    pub(super) fn withdraw_all(&mut self) {
        for slot in 0..self.offered.len() as u32 {
            self.withdraw(slot);
        }
    }

    /// Whether everything this worker queued was applied (End Markers
    /// wait for it: no G-PDU may follow one into the old tunnel).
    pub(super) fn drained(&self) -> bool {
        self.o.drained()
    }

    /// The offload line of the stage's report.
    pub(super) fn report_line(&self) -> String {
        self.o.report_line()
    }
}

impl UpfStage {
    /// Hands the engine the UPF and keeps the offloader.
    pub(super) fn set_offload(&mut self, mut o: Offloader) {
        o.set_upf(UpfConf { n3: self.upf.n3, n3_address: self.upf.n3_address });
        self.upf.usage.read_below(o.usage_reader());
        self.offload = Some(Box::new(Offload::new(o, self.sessions.version)));
    }

    /// After a worker decapsulated a G-PDU of TEID `teid` by flat entry
    /// `f`: its uplink handed to XDP, once per session.
    #[inline(always)]
    pub(super) fn offer_uplink(&mut self, teid: u32, f: &Fast) {
        if let Some(o) = &self.offload
            && !o.decided(f.session, false)
        {
            self.offer_uplink_now(teid, *f);
        }
    }

    #[cold]
    #[inline(never)]
    fn offer_uplink_now(&mut self, teid: u32, f: Fast) {
        let Some(gateway) = self.ways.get().n6_gateway else { return };
        let (n6, smac) = (self.upf.n6, self.macs[self.upf.n6 as usize]);
        let down = f.bucket == NO_BUCKET && self.upf.usage.offloadable(f.urr);
        let Some(o) = self.offload.as_deref_mut() else { return };
        let value = UpfUplink { ue: f.ue.to_be_bytes(), urr: f.urr, dmac: gateway, smac, ifindex: 0 };
        let decided = match down {
            false => Decided::Kept,
            true if o.o.install_uplink(teid, value, n6) => Decided::Installed,
            // Refused (queue full): tried again on a later packet.
            true => return,
        };
        let e = o.entry(f.session);
        (e.teid, e.up) = (teid, decided);
    }

    /// After a worker encapsulated a packet to UE `ue` by flat entry
    /// `f`: its downlink handed to XDP, once per session, with the outer
    /// headers toward the gNB the worker wrote.
    #[inline(always)]
    pub(super) fn offer_downlink(&mut self, ue: u32, f: &Fast, ctx: &StageCtx<'_>) {
        if let Some(o) = &self.offload
            && !o.decided(f.session, true)
        {
            self.offer_downlink_now(ue, *f, ctx);
        }
    }

    #[cold]
    #[inline(never)]
    fn offer_downlink_now(&mut self, ue: u32, f: Fast, ctx: &StageCtx<'_>) {
        let down = f.bucket == NO_BUCKET && self.upf.usage.offloadable(f.urr);
        let mut outer = [0u8; GTPU_OUTER_LEN];
        if down {
            // Resolved (else the packet waits for the gNB: tried again
            // on a later packet), IPv4 (the only outer header the
            // program writes).
            let Some(t) = self.peer(IpAddr::V4(Ipv4Addr::from(f.peer)), ctx) else { return };
            if !t.resolved || t.outer.len() != GTPU_OUTER_LEN {
                return;
            }
            t.outer.write(&mut outer, TUNNEL);
        }
        let n3 = self.upf.n3;
        let Some(o) = self.offload.as_deref_mut() else { return };
        let decided = match down {
            false => Decided::Kept,
            true if o.o.install_downlink(ue, UpfDownlink::new(outer, f.teid, f.qfi, f.urr), n3) => Decided::Installed,
            true => return,
        };
        let e = o.entry(f.session);
        (e.ue, e.down) = (ue, decided);
    }
}
