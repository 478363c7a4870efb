//! The worker loop over the AF_XDP port code with the kernel side played
//! by [`Loopback`] (rings in memory, a template frame received into every
//! filled frame, every sent frame completed), for instruction counting
//! under callgrind (`benches/afxdp-cost.sh`). Only `poll_dut` is counted:
//! rx ring -> (chain) -> dispatch -> tx ring, completion and fill ring
//! upkeep, i.e. what nfv spends per packet outside the kernel.
//!
//! usage: afxdp_loop CASE BATCHES
//!   io       no stage at all: rx -> tx on the same port (testpmd io)
//!   input    the input stage (L2-L4 parse) only
//!   macswap  input + macswap (testpmd macswap)

use std::sync::Arc;

use nfv_core::adjacency::Adjacency;
use nfv_core::frame::FramePool;
use nfv_core::graph::{End, Graph};
use nfv_core::input::{INPUT_STAGE, Input, InputDrop};
use nfv_core::neighbour::Neighbours;
use nfv_core::port::afxdp::AfXdpDrop;
use nfv_core::port::afxdp::loopback::Loopback;
use nfv_core::port::{Port, PortInfo};
use nfv_core::slowpath::LocalAddrs;
use nfv_core::worker::{SlowMode, Worker};

const BATCH: usize = 64;

/// One poll of the device under test; never inlined so callgrind can
/// count it alone (`--toggle-collect`).
#[inline(never)]
fn poll_dut(w: &mut Worker) -> usize {
    w.poll_once()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(case), Some(n)) = (args.get(1), args.get(2).and_then(|n| n.parse::<u64>().ok())) else {
        eprintln!("usage: afxdp_loop io|input|macswap BATCHES");
        std::process::exit(2);
    };
    let pool = FramePool::heap(8192);
    let arena = pool.arena().clone();
    // 64-byte UDP/IPv4 frame (60 bytes without FCS), as trafgen sends.
    let frame = udp_frame();
    let info = PortInfo::new(0, "xsk0", [2, 0, 0, 0, 0, 1], AfXdpDrop::NAMES);
    let (port, mut kernel) = Loopback::port(info, arena.clone(), 2048, BATCH, &frame);
    let mut graph = Graph::builder();
    let local = Arc::new(LocalAddrs { ports: vec![([2, 0, 0, 0, 0, 1], Vec::new())] });
    let mut nodes = Vec::new();
    match case.as_str() {
        "io" => {}
        "input" => {
            nodes.push(graph.node(INPUT_STAGE, InputDrop::NAMES, Box::new(Input::new(local)), vec![], (0, 0)));
        }
        "macswap" => {
            nodes.push(graph.node(INPUT_STAGE, InputDrop::NAMES, Box::new(Input::new(local)), vec![], (0, 0)));
            nodes.push(graph.node("macswap", &[], Box::new(nfv_basic::macswap::MacSwap), vec![], (0, 1)));
        }
        other => panic!("unknown case {other}"),
    }
    graph.chain("c", nodes, End::Ingress);
    let graph = graph.build(0, &arena, BATCH);
    let ports: Vec<Option<Box<dyn Port>>> = vec![Some(Box::new(port))];
    let mut w = Worker::new(
        0,
        None,
        pool,
        graph,
        ports,
        vec![0],
        SlowMode::None,
        Adjacency::new(Neighbours::new(std::iter::empty()), Default::default()),
    );
    // Prime: the first poll fills the fill ring, the kernel then receives.
    poll_dut(&mut w);
    let mut total = 0;
    for _ in 0..n {
        kernel.step(BATCH as u32);
        total += poll_dut(&mut w);
    }
    kernel.step(0);
    assert_eq!(total as u64, BATCH as u64 * n, "every poll got a full batch");
    assert_eq!(kernel.transmitted, total as u64, "every packet was transmitted");
}

/// Ethernet/IPv4/UDP, 18 bytes of payload: 60 bytes.
fn udp_frame() -> Vec<u8> {
    let mut f = vec![
        0x02, 0, 0, 0, 0, 0x02, 0x02, 0, 0, 0, 0, 0x03, 0x08, 0x00, // Ethernet
        0x45, 0, 0, 46, 0, 1, 0x40, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2, // IPv4
        0x04, 0x00, 0x23, 0x28, 0, 26, 0, 0, // UDP 1024 -> 9000
    ];
    f.resize(60, 0);
    let csum = nfv_net::checksum::checksum(&f[14..34]);
    f[24..26].copy_from_slice(&csum.to_be_bytes());
    f
}
