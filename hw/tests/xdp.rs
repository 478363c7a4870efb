//! The XDP engine forwards exactly as the workers would: frames run
//! through the software stages (`ttl-decrement`, `macswap`) and through
//! the XDP program configured for the same chain (`BPF_PROG_TEST_RUN`,
//! no device) leave byte for byte the same; what the program cannot
//! decide (an expiring TTL, a frame that is not IPv4) goes up to the
//! workers untouched.
#![cfg(feature = "xdp")]

use etherparse::PacketBuilder;
use nfv_core::BuildCtx;
use nfv_core::packet::VerdictKind;
use nfv_hw::xdp::{Program, action, flags};
use nfv_testkit::{FrameRunner, root_or_skip, two_port_config};

fn udp(ttl: u8, payload: usize) -> Vec<u8> {
    let mut f = Vec::new();
    PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
        .ipv4([10, 0, 0, 1], [198, 51, 100, 7], ttl)
        .udp(4000, 53)
        .write(&mut f, &vec![0x5a; payload])
        .unwrap();
    f
}

/// The chain in software: the verdict of the last stage and the bytes.
fn software(frame: &[u8]) -> (VerdictKind, Vec<u8>) {
    let cfg = two_port_config(
        "t.toml",
        ["a", "b"],
        "{ kind = \"ttl-decrement\" }, { kind = \"macswap\" }",
        nfv_basic::register,
    )
    .unwrap();
    let macs = [[2, 0, 0, 0, 0, 0xa], [2, 0, 0, 0, 0, 0xb]];
    let ctx = BuildCtx { worker: 0, port_macs: &macs, headers_read_later: true, chain_rank: 0, chain_workers: 1 };
    let mut runner = FrameRunner::new([]);
    let mut bytes = frame.to_vec();
    let mut verdict = VerdictKind::Next;
    for s in &cfg.chains[0].stages {
        let (v, _, out) = runner.run(&mut *s.builder.build(&ctx), 0, &bytes);
        (verdict, bytes) = (v, out);
        if v != VerdictKind::Next {
            break;
        }
    }
    (verdict, bytes)
}

#[test]
fn ttl_and_macswap_in_xdp_leave_the_bytes_the_workers_would() {
    if !root_or_skip("ttl_and_macswap_in_xdp_leave_the_bytes_the_workers_would") {
        return;
    }
    let p = Program::load().unwrap();
    p.set_flags(flags::TTL | flags::MACSWAP | flags::BACK).unwrap();
    for (ttl, len) in [(64, 18), (2, 0), (255, 1400), (128, 1)] {
        let f = udp(ttl, len);
        let (v, sw) = software(&f);
        assert_eq!(v, VerdictKind::Next, "the workers pass it on");
        let (verdict, out) = p.test_run(&f).unwrap();
        assert_eq!(verdict, action::TX, "decided in XDP, back out");
        assert_eq!(out, sw, "byte for byte as the workers leave it (ttl {ttl}, {len} octets)");
    }
    // What the program leaves to the workers goes up untouched.
    let expiring = udp(1, 18);
    assert_ne!(software(&expiring).0, VerdictKind::Next, "the workers answer it (time exceeded)");
    let mut arp = udp(64, 18);
    arp[12..14].copy_from_slice(&[0x08, 0x06]);
    for f in [expiring, arp] {
        let (verdict, out) = p.test_run(&f).unwrap();
        assert_eq!((verdict, out), (action::PASS, f), "up to the workers (no socket here: pass)");
    }
    // Off: everything goes up.
    p.set_flags(0).unwrap();
    assert_eq!(p.test_run(&udp(64, 18)).unwrap().0, action::PASS);
}
