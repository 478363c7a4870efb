//! The UPF's plain sessions in XDP forward exactly as the workers would:
//! uplink G-PDUs (with and without optional fields and a PDU Session
//! Container, with trailing octets) and downlink packets (with and without
//! a QFI, padded short frames) run through the software stage, which
//! installs the sessions with the headers it wrote, then through the XDP
//! program with those entries (`BPF_PROG_TEST_RUN`, no device): the same
//! bytes leave. What the program cannot decide goes up untouched, and it
//! counts URR usage as the workers do.
#![cfg(feature = "xdp")]

use std::sync::Arc;

use etherparse::PacketBuilder;
use nfv_core::BuildCtx;
use nfv_core::offload::{Engine as _, EngineTask, Entry, MemoryEngine};
use nfv_core::packet::VerdictKind;
use nfv_hw::xdp::{Engine, action, flags};
use nfv_testkit::{FrameRunner, root_or_skip, two_port_config};

const N3: [u8; 4] = [10, 10, 0, 1];
const GNB: [u8; 4] = [10, 10, 0, 2];
const UE: [u8; 4] = [10, 45, 0, 7];
const UE2: [u8; 4] = [10, 45, 0, 8];
const DN: [u8; 4] = [8, 8, 4, 4];
const MAC_GNB: [u8; 6] = [2, 0, 0, 0, 0, 0x0b];
const MAC_GW: [u8; 6] = [2, 0, 0, 0, 0, 0xee];
const OUR: [[u8; 6]; 2] = [[2, 0, 0, 0, 1, 0], [2, 0, 0, 0, 1, 1]];

fn lo() -> u32 {
    // SAFETY: a NUL-terminated name.
    unsafe { libc::if_nametoindex(c"lo".as_ptr()) }
}

/// An inner IPv4/UDP packet (no Ethernet header).
fn inner(src: [u8; 4], dst: [u8; 4], payload: usize) -> Vec<u8> {
    let mut p = Vec::new();
    PacketBuilder::ipv4(src, dst, 64).udp(40000, 443).write(&mut p, &vec![0x42; payload]).unwrap();
    p
}

/// A G-PDU from the gNB for `teid` with GTP-U header `gtp` (its length
/// field filled in), `trailing` octets after it.
fn gpdu(teid: u32, gtp: &[u8], packet: &[u8], trailing: usize) -> Vec<u8> {
    let mut g = gtp.to_vec();
    g[4..8].copy_from_slice(&teid.to_be_bytes());
    let len = (g.len() - 8 + packet.len()) as u16;
    g[2..4].copy_from_slice(&len.to_be_bytes());
    g.extend_from_slice(packet);
    g.extend(std::iter::repeat_n(0xee, trailing));
    let mut f = Vec::new();
    PacketBuilder::ethernet2(MAC_GNB, OUR[0]).ipv4(GNB, N3, 64).udp(2152, 2152).write(&mut f, &g).unwrap();
    f
}

/// A packet from the data network to `ue`, padded to `min` octets.
fn downlink(ue: [u8; 4], payload: usize, min: usize) -> Vec<u8> {
    let mut f = Vec::new();
    PacketBuilder::ethernet2(MAC_GW, OUR[1]).ipv4(DN, ue, 60).udp(443, 40000).write(&mut f, &vec![7; payload]).unwrap();
    f.resize(f.len().max(min), 0);
    f
}

const PLAIN: [u8; 8] = [0x30, 0xff, 0, 0, 0, 0, 0, 0];
const SEQ: [u8; 12] = [0x32, 0xff, 0, 0, 0, 0, 0, 0, 0x12, 0x34, 0, 0];
/// With an uplink PDU Session Container (TS 38.415 5.5.2.2), QFI 9.
const PSC: [u8; 16] = [0x34, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x85, 1, 0x10, 9, 0];

/// The stage over ports (N3 `a`, N6 `b`) whose interfaces are `ifindex`,
/// two static sessions (one with a QFI), offloaded into an engine in
/// memory; the program with the N3 port at `ifindex[0]`.
struct Bed {
    stage: Box<dyn nfv_core::Stage>,
    runner: FrameRunner,
    task: EngineTask,
    memory: Arc<MemoryEngine>,
    x: Engine,
}

impl Bed {
    fn new(ifindex: [u32; 2]) -> Self {
        let stage = "{ kind = \"upf\", n3 = \"a\", n3-address = \"10.10.0.1\", n6 = \"b\", \
                     n6-gateway = \"198.51.100.2\", sessions = [\
                     { seid = 1, ue = \"10.45.0.7\", uplink-teid = 4660, gnb = \"10.10.0.2\", \
                       downlink-teid = 43981, qfi = 9 }, \
                     { seid = 2, ue = \"10.45.0.8\", uplink-teid = 4661, gnb = \"10.10.0.2\", \
                       downlink-teid = 43982 }] }";
        let cfg = two_port_config("upf.toml", ["a", "b"], stage, nfv_upf::register).unwrap();
        let ctx = BuildCtx { worker: 0, port_macs: &OUR, headers_read_later: false, chain_rank: 0, chain_workers: 1 };
        let ip = std::net::IpAddr::from;
        let mut runner = FrameRunner::new([(ip(GNB), MAC_GNB, 0), (ip([198, 51, 100, 2]), MAC_GW, 1)]);
        runner.set_port(0, OUR[0], &["10.10.0.1/24"]);
        runner.set_port(1, OUR[1], &["198.51.100.1/24"]);
        let mut stage = cfg.chains[0].stages[0].builder.build(&ctx);
        let memory = Arc::new(MemoryEngine::default());
        let mut task = EngineTask::new(memory.clone(), Arc::from(ifindex));
        assert!(stage.take_offload(task.offloader()));
        let x = Engine::load().unwrap();
        x.program().configure(lo(), flags::UPF, 0).unwrap();
        Self { stage, runner, task, memory, x }
    }

    /// The workers' output of `f` from `port`.
    fn software(&mut self, port: u16, f: &[u8]) -> (VerdictKind, Vec<u8>) {
        let (v, _, out) = self.runner.run(&mut *self.stage, port, f);
        (v, out)
    }

    /// What the stage installed so far, into the program; the number of
    /// (uplink, downlink) entries.
    fn sync(&mut self, ifindex: [u32; 2]) -> (usize, usize) {
        self.task.step();
        let (conf, up, down) = self.memory.upf();
        let conf = conf.expect("the stage gave its UPF");
        assert_eq!((conf.n3, conf.n3_address), (0, u32::from_be_bytes(N3)));
        self.x.set_upf(&conf, &ifindex).unwrap();
        for (t, v) in &up {
            self.x.insert(&Entry::Uplink(*t, *v)).unwrap();
        }
        for (u, v) in &down {
            self.x.insert(&Entry::Downlink(*u, *v)).unwrap();
        }
        (up.len(), down.len())
    }
}

#[test]
fn uplink_in_xdp_leaves_the_bytes_the_workers_would() {
    if !root_or_skip("uplink_in_xdp_leaves_the_bytes_the_workers_would") {
        return;
    }
    // N3 is the loopback, where BPF_PROG_TEST_RUN runs the program; N6 a
    // device of no test (a redirect).
    let ifindex = [lo(), 0xfff1];
    let mut bed = Bed::new(ifindex);
    let mut offered = 0;
    for (teid, ue) in [(4660, UE), (4661, UE2)] {
        for gtp in [&PLAIN[..], &SEQ, &PSC] {
            for (payload, trailing) in [(0, 0), (18, 6), (1200, 0)] {
                let f = gpdu(teid, gtp, &inner(ue, DN, payload), trailing);
                let (v, sw) = bed.software(0, &f);
                assert_eq!(v, VerdictKind::Out(1), "the workers send it to N6");
                let (up, _) = bed.sync(ifindex);
                offered = offered.max(up);
                let (verdict, out) = bed.x.program().test_run(&f).unwrap();
                let what = format!("TEID {teid}, GTP-U {:#x}, {payload} octets, {trailing} trailing", gtp[0]);
                assert_eq!((verdict, &out), (action::REDIRECT, &sw), "{what}");
            }
        }
    }
    assert_eq!(offered, 2, "one uplink per session");
    // Up, untouched: a UE source the PDR does not allow (the workers drop
    // it, counted), an unknown TEID (they answer an Error Indication), an
    // Echo Request, an extension header other than the container, IPv6
    // inside.
    let mut echo = gpdu(4660, &PLAIN, &[], 0);
    echo[43] = 1;
    let mut ext = gpdu(4660, &PSC, &inner(UE, DN, 20), 0);
    ext[53] = 0x40;
    let mut v6 = gpdu(4660, &PLAIN, &inner(UE, DN, 20), 0);
    v6[50] = 0x60;
    for f in [gpdu(4660, &PLAIN, &inner(UE2, DN, 20), 0), gpdu(9999, &PLAIN, &inner(UE, DN, 20), 0), echo, ext, v6] {
        assert_eq!(bed.x.program().test_run(&f).unwrap(), (action::PASS, f.clone()));
    }
}

#[test]
fn downlink_in_xdp_leaves_the_bytes_the_workers_would() {
    if !root_or_skip("downlink_in_xdp_leaves_the_bytes_the_workers_would") {
        return;
    }
    // N6 is the loopback now: packets arriving there go down the tunnel.
    let ifindex = [0xfff0, lo()];
    let mut bed = Bed::new(ifindex);
    for ue in [UE, UE2] {
        for (payload, min) in [(0, 60), (10, 60), (1400, 0)] {
            let f = downlink(ue, payload, min);
            let (v, sw) = bed.software(1, &f);
            assert_eq!(v, VerdictKind::Out(0), "the workers send it to N3");
            bed.sync(ifindex);
            let (verdict, out) = bed.x.program().test_run(&f).unwrap();
            assert_eq!((verdict, &out), (action::REDIRECT, &sw), "UE {ue:?}, {payload} octets padded to {min}");
        }
    }
    assert_eq!(bed.sync(ifindex).1, 2, "one downlink per session");
    // Up, untouched: an unknown UE, a frame shorter than its IP length.
    let mut short = downlink(UE, 100, 0);
    short.truncate(80);
    for f in [downlink([10, 45, 0, 99], 10, 0), short] {
        assert_eq!(bed.x.program().test_run(&f).unwrap(), (action::PASS, f.clone()));
    }
}

/// The program counts URR usage as the workers do: T-PDU octets (the
/// inner packet's), both ways, into the entry's slot.
#[test]
fn the_program_counts_urr_usage_by_slot() {
    if !root_or_skip("the_program_counts_urr_usage_by_slot") {
        return;
    }
    let e = Engine::load().unwrap();
    e.program().configure(lo(), flags::UPF, 0).unwrap();
    e.set_upf(&nfv_hw::xdp::UpfConf { n3: 0, n3_address: u32::from_be_bytes(N3) }, &[lo()]).unwrap();
    let up = nfv_hw::xdp::UpfUplink { ue: UE, urr: 5, dmac: MAC_GW, smac: OUR[1], ifindex: 0xfff1 };
    e.insert(&Entry::Uplink(4660, up)).unwrap();
    let mut sent = 0;
    for payload in [0, 100, 1000] {
        let p = inner(UE, DN, payload);
        sent += p.len() as u64;
        assert_eq!(e.program().test_run(&gpdu(4660, &PSC, &p, 3)).unwrap().0, action::REDIRECT);
    }
    let c = e.usage(5).unwrap();
    assert_eq!((c.ul_bytes, c.ul_packets, c.dl_packets), (sent, 3, 0));
    assert_eq!(e.usage(6).unwrap(), Default::default());
}
