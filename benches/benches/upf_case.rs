//! The UPF benchmark cases, shared by the criterion bench and the
//! callgrind example: a `upf` stage with static sessions, and uplink
//! G-PDUs or downlink datagrams of sessions drawn at random.
#![allow(dead_code)]

#[path = "stage_case.rs"]
mod stage_case;

use etherparse::PacketBuilder;
use std::sync::Arc;

use nfv_core::BuildCtx;
use nfv_core::published::Published;
use nfv_upf::config::{StaticSession, Upf};
use nfv_upf::rules::{Session, Sessions};
use nfv_upf::stage::UpfStage;
use nfv_upf::usage::Usage;
#[allow(unused_imports)]
pub use stage_case::{Case, FRAMES, case_of, run};

const N3_MAC: [u8; 6] = [2, 0, 0, 0, 3, 3];
const N6_MAC: [u8; 6] = [2, 0, 0, 0, 6, 6];

fn ue(i: u32) -> [u8; 4] {
    (0x0a2d_0000 + i).to_be_bytes()
}

/// A `upf` stage with `n` sessions: UE 10.45.x.y, uplink TEID 1000 + i,
/// downlink TEID 500000 + i, all behind one gNB, QFI 9; with `urr`, each
/// session's two PDRs count into a URR of its own (as a session an SMF
/// establishes for charging does).
fn stage(n: u32, urr: bool) -> Box<dyn nfv_core::Stage> {
    let usage = Usage::new(if urr { n } else { 0 });
    let sessions: Vec<Session> = (0..n)
        .map(|i| {
            let mut s = StaticSession {
                seid: i as u64,
                ue: ue(i).into(),
                ue6: None,
                uplink_teid: 1000 + i,
                gnb: [10, 10, 0, 2].into(),
                downlink_teid: 500_000 + i,
                qfi: Some(9),
                mbr_ul: None,
                mbr_dl: None,
            }
            .rules();
            if urr {
                let slot = usage.allocate().expect("a slot per session");
                s.pdrs.iter_mut().for_each(|p| p.urrs = vec![slot]);
            }
            s
        })
        .collect();
    let upf = Upf {
        n3: 0,
        n3_address: u32::from_be_bytes([10, 10, 0, 1]),
        n3_address6: None,
        n6: 1,
        n6_gateway: u32::from_be_bytes([198, 51, 100, 1]),
        n3_gateway: None,
        sessions: Published::new(Sessions::new(sessions.into_iter().map(Arc::new).collect(), 0).expect("sessions")),
        n4: None,
        smf: Vec::new(),
        smf_watch: None,
        statics: Vec::new(),
        usage,
        buffer_packets: 0,
        buffering: Arc::new(crossbeam::queue::ArrayQueue::new(1)),
    };
    let macs = [N3_MAC, N6_MAC];
    let ctx = BuildCtx { worker: 0, port_macs: &macs, headers_read_later: false, chain_rank: 0, chain_workers: 1 };
    Box::new(UpfStage::new(Arc::new(upf), &ctx))
}

fn neighbours() -> [(std::net::IpAddr, [u8; 6], u16); 2] {
    [([10, 10, 0, 2].into(), [2, 0, 0, 0, 0, 0x9b], 0), ([198, 51, 100, 1].into(), [2, 0, 0, 0, 0, 0x66], 1)]
}

pub fn uplink(n: u32, picks: &[u32], urr: bool) -> Case {
    let frames = picks.iter().map(|&i| {
        let mut inner = Vec::new();
        PacketBuilder::ipv4(ue(i), [198, 51, 100, 9], 64).udp(4000, 53).write(&mut inner, &[0; 18]).unwrap();
        let mut g = [0u8; 16];
        nfv_upf::gtpu::write_gpdu(&mut g, 1000 + i, inner.len(), Some((nfv_upf::gtpu::pdu_type::UPLINK, 9)));
        let mut f = Vec::new();
        PacketBuilder::ethernet2([2, 0, 0, 0, 0, 0x9b], N3_MAC)
            .ipv4([10, 10, 0, 2], [10, 10, 0, 1], 64)
            .udp(2152, 2152)
            .write(&mut f, &[&g[..], &inner].concat())
            .unwrap();
        f
    });
    case_of(stage(n, urr), frames, 0, neighbours())
}

pub fn downlink(n: u32, picks: &[u32], urr: bool) -> Case {
    let frames = picks.iter().map(|&i| {
        let mut f = Vec::new();
        PacketBuilder::ethernet2([2, 0, 0, 0, 0, 0x66], N6_MAC)
            .ipv4([198, 51, 100, 9], ue(i), 64)
            .udp(53, 4000)
            .write(&mut f, &[0; 18])
            .unwrap();
        f
    });
    case_of(stage(n, urr), frames, 1, neighbours())
}

/// `n` sessions and frames of `FRAMES` of them drawn at random (seed 3),
/// uplink or downlink.
pub fn drawn(n: u32, up: bool, urr: bool) -> Case {
    let mut rng = fastrand::Rng::with_seed(3);
    let picks: Vec<u32> = (0..FRAMES.min(n as usize * 4)).map(|_| rng.u32(0..n)).collect();
    if up { uplink(n, &picks, urr) } else { downlink(n, &picks, urr) }
}
