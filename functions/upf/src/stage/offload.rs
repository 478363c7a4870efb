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

    /// As a worker forwards a G-PDU of TEID `teid` by the flat entry of
    /// session slot `session`: its uplink handed to XDP, once per session
    /// (the entry read again off the hot path).
    #[inline(always)]
    pub(super) fn offer_uplink(&mut self, teid: u32, session: u32) {
        if let Some(o) = &self.offload
            && !o.decided(session, false)
        {
            self.offer_uplink_now(teid);
        }
    }

    #[cold]
    #[inline(never)]
    fn offer_uplink_now(&mut self, teid: u32) {
        let Some(&f) = self.sessions.fast_uplink.get(teid) else { return };
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

    /// As a worker forwards a packet to UE `ue` by the flat entry of
    /// session slot `session`: its downlink handed to XDP, once per
    /// session, with the outer headers toward the gNB the worker writes.
    #[inline(always)]
    pub(super) fn offer_downlink(&mut self, ue: u32, session: u32, ctx: &StageCtx<'_>) {
        if let Some(o) = &self.offload
            && !o.decided(session, true)
        {
            self.offer_downlink_now(ue, ctx);
        }
    }

    #[cold]
    #[inline(never)]
    fn offer_downlink_now(&mut self, ue: u32, ctx: &StageCtx<'_>) {
        let Some(&f) = self.sessions.fast_downlink.get(ue) else { return };
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use etherparse::PacketBuilder;
    use nfv_core::BuildCtx;
    use nfv_core::offload::{EngineTask, MemoryEngine};
    use nfv_core::packet::VerdictKind;
    use nfv_testkit::{FrameRunner, two_port_config};

    use crate::config::StaticSession;

    const OUR: [[u8; 6]; 2] = [[2, 0, 0, 0, 1, 0], [2, 0, 0, 0, 1, 1]];
    const GNB_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0xb];
    const GW_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0xe];

    fn session(seid: u64, ue: [u8; 4], teid: u32, down: u32, mbr: Option<u64>) -> StaticSession {
        StaticSession {
            seid,
            ue: ue.into(),
            ue6: None,
            uplink_teid: teid,
            gnb: [10, 10, 0, 2].into(),
            downlink_teid: down,
            qfi: Some(9),
            mbr_ul: None,
            mbr_dl: mbr,
        }
    }

    fn gpdu(teid: u32, ue: [u8; 4]) -> Vec<u8> {
        let mut inner = Vec::new();
        PacketBuilder::ipv4(ue, [8, 8, 8, 8], 64).udp(4000, 53).write(&mut inner, b"up").unwrap();
        let mut g = vec![0x30, 0xff, 0, inner.len() as u8];
        g.extend(teid.to_be_bytes());
        g.extend(inner);
        let mut f = Vec::new();
        PacketBuilder::ethernet2(GNB_MAC, OUR[0])
            .ipv4([10, 10, 0, 2], [10, 10, 0, 1], 64)
            .udp(2152, 2152)
            .write(&mut f, &g)
            .unwrap();
        f
    }

    fn to_ue(ue: [u8; 4]) -> Vec<u8> {
        let mut f = Vec::new();
        PacketBuilder::ethernet2(GW_MAC, OUR[1])
            .ipv4([8, 8, 8, 8], ue, 64)
            .udp(53, 4000)
            .write(&mut f, b"down")
            .unwrap();
        f
    }

    /// Sessions go down once forwarded (a metered one's downlink stays
    /// up), come out when a version changes them, and go down again as
    /// the new rules say; a new neighbour table takes everything out.
    #[test]
    fn offers_follow_the_session_versions() {
        let stage = "{ kind = \"upf\", n3 = \"a\", n3-address = \"10.10.0.1\", n6 = \"b\", \
                     n6-gateway = \"198.51.100.2\", sessions = [\
                     { seid = 1, ue = \"10.45.0.7\", uplink-teid = 100, gnb = \"10.10.0.2\", downlink-teid = 200, qfi = 9 }, \
                     { seid = 2, ue = \"10.45.0.8\", uplink-teid = 101, gnb = \"10.10.0.2\", downlink-teid = 201, qfi = 9, \
                       mbr-dl = 1000 }] }";
        let cfg = two_port_config("upf.toml", ["a", "b"], stage, crate::register).unwrap();
        let b = &cfg.chains[0].stages[0].builder;
        let upf = b.as_any().downcast_ref::<crate::builder::UpfBuilder>().unwrap().0.clone();
        let ctx = BuildCtx { worker: 0, port_macs: &OUR, headers_read_later: false, chain_rank: 0, chain_workers: 1 };
        let mut stage = b.build(&ctx);
        let memory = Arc::new(MemoryEngine::default());
        let mut task = EngineTask::new(memory.clone(), Arc::from(vec![7, 8]));
        assert!(stage.take_offload(task.offloader()));
        let ip = std::net::IpAddr::from;
        let mut runner = FrameRunner::new([(ip([10, 10, 0, 2]), GNB_MAC, 0), (ip([198, 51, 100, 2]), GW_MAC, 1)]);
        let (ue1, ue2) = ([10, 45, 0, 7], [10, 45, 0, 8]);
        let run = |runner: &mut FrameRunner, stage: &mut Box<dyn nfv_core::Stage>, port, f: &[u8]| {
            let (v, _, _) = runner.run(&mut **stage, port, f);
            assert!(matches!(v, VerdictKind::Out(_)), "{v:?}");
        };
        for (teid, ue) in [(100, ue1), (101, ue2)] {
            run(&mut runner, &mut stage, 0, &gpdu(teid, ue));
            run(&mut runner, &mut stage, 1, &to_ue(ue));
        }
        task.step();
        let (conf, up, down) = memory.upf();
        assert_eq!(conf.map(|c| (c.n3, c.n3_address)), Some((0, 0x0a0a_0001)));
        let mut teids: Vec<u32> = up.keys().copied().collect();
        teids.sort_unstable();
        assert_eq!(teids, [100, 101], "both uplinks (unmetered)");
        assert_eq!(up[&100].ifindex, 8, "to N6");
        assert_eq!(up[&100].dmac, GW_MAC);
        assert_eq!(down.keys().copied().collect::<Vec<_>>(), [u32::from_be_bytes(ue1)], "the metered downlink stays");
        let d = down[&u32::from_be_bytes(ue1)];
        assert_eq!((d.teid, d.qfi, d.ifindex), (200u32.to_be_bytes(), 9, 7));
        assert_eq!((&d.outer[..6], &d.outer[26..34]), (&GNB_MAC[..], &[10, 10, 0, 1, 10, 10, 0, 2][..]));
        // The SMF's handover, as a new version: session 1 into TEID 300.
        let s = upf.sessions.load();
        let moved = Arc::new(session(1, ue1, 100, 300, None).rules());
        upf.sessions.publish(s.changed([(1, Some(moved))], s.version + 1).unwrap());
        run(&mut runner, &mut stage, 0, &gpdu(101, ue2));
        task.step();
        let (_, up, down) = memory.upf();
        assert!(!up.contains_key(&100) && down.is_empty(), "session 1 withdrawn, before anything under its new rules");
        assert!(up.contains_key(&101), "session 2 untouched");
        run(&mut runner, &mut stage, 1, &to_ue(ue1));
        task.step();
        let (_, _, down) = memory.upf();
        assert_eq!(down[&u32::from_be_bytes(ue1)].teid, 300u32.to_be_bytes(), "offered again into the new tunnel");
        // A change of the neighbour table: everything out.
        runner.learn(ip([10, 10, 0, 99]), [2, 0, 0, 0, 0, 0x77], 0);
        runner.release();
        run(&mut runner, &mut stage, 0, &gpdu(101, ue2));
        task.step();
        let (_, up, down) = memory.upf();
        assert_eq!((up.len(), down.len()), (1, 0), "only what this packet offered again");
    }

    /// The N4 side's reads add what XDP counted, for slots a worker let
    /// go down; a URR watching a volume threshold keeps its PDRs up.
    #[test]
    fn usage_reads_add_what_xdp_counted() {
        let usage = crate::usage::Usage::new(4);
        let lane = usage.lane();
        let (a, b) = (usage.allocate().unwrap(), usage.allocate().unwrap());
        let memory = Arc::new(MemoryEngine::default());
        let mut task = EngineTask::new(memory.clone(), Arc::from(vec![1]));
        usage.read_below(task.offloader().usage_reader());
        lane.count(a, false, 100);
        memory.count(a, false, 1000);
        memory.count(a, true, 50);
        assert_eq!(usage.read(a).ul_bytes, 100, "no worker let slot a go down yet: not read");
        assert!(usage.offloadable(a));
        let c = usage.read(a);
        assert_eq!((c.ul_bytes, c.ul_packets, c.dl_bytes, c.dl_packets), (1100, 2, 50, 1));
        usage.watch_volume(b, true);
        assert!(!usage.offloadable(b), "a volume threshold stays in the workers");
        usage.free(b);
        assert!(usage.offloadable(b), "its next URR may go down");
        assert!(usage.offloadable(crate::usage::NO_URR));
    }
}
