//! The generator's and the receiver's XDP programs: the frames the
//! generator would send (parsed by etherparse, not by us), and a live
//! trial over a veth pair with nothing in between (everything sent
//! arrives, once, in order, within a millisecond).

use std::process::Command;

use etherparse::{NetSlice, SlicedPacket, TransportSlice};
use nfv_bench::engine::Engine;
use nfv_bench::traffic::{Mix, Stamp, flow_ports};
use nfv_hw::blast::{Generator, Gtpu, Measure, Traffic, stamp_offset};
use nfv_hw::receiver::Receiver;

fn traffic(measure: Measure, gtpu: Option<Gtpu>) -> Traffic {
    Traffic {
        src_mac: [2, 0, 0, 0, 0, 1],
        dst_mac: [2, 0, 0, 0, 0, 2],
        src: [10, 0, 0, 1],
        dst: ([198, 51, 100, 2], 9),
        frame_size: 60,
        ports: 1,
        addrs: 1,
        gtpu,
        measure: Some(measure),
    }
}

fn ifindex(name: &str) -> u32 {
    let c = std::ffi::CString::new(name).unwrap();
    // SAFETY: a NUL-terminated name.
    unsafe { libc::if_nametoindex(c.as_ptr()) }
}

/// Runs `f` in a thread of its own network namespace (gone with it).
fn in_fresh_netns(f: impl FnOnce() + Send + 'static) {
    std::thread::spawn(move || {
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).expect("unshare a network namespace");
        f()
    })
    .join()
    .expect("the test thread");
}

fn sh(cmd: &str) {
    let ok = Command::new("sh").args(["-ec", cmd]).status().is_ok_and(|s| s.success());
    assert!(ok, "{cmd}");
}

#[test]
fn generated_frames_carry_stamps_flows_and_the_mix() {
    if !nfv_testkit::root_or_skip("generated_frames_carry_stamps_flows_and_the_mix") {
        return;
    }
    let flows = flow_ports(5, 9);
    let mix = Mix::imix_simple().sequence();
    let sizes: Vec<u16> = mix.iter().map(|&s| (s - 4) as u16).collect();
    let g = Generator::load(
        ifindex("lo"),
        &traffic(Measure { flows: flows.clone(), vary_dport: true, sizes: sizes.clone() }, None),
    )
    .expect("load");
    g.pace(0.0, 30).unwrap();
    for n in 0..30u64 {
        let (verdict, f) = g.run_once().unwrap();
        assert_eq!(verdict, 4, "redirected");
        assert_eq!(f.len(), sizes[n as usize % sizes.len()] as usize, "frame {n} follows the mix");
        let p = SlicedPacket::from_ethernet(&f).expect("a valid frame");
        let Some(NetSlice::Ipv4(ip)) = &p.net else { panic!("IPv4") };
        assert_eq!(ip.header().total_len() as usize, f.len() - 14);
        assert_eq!(ip.header().header_checksum(), ip.header().to_header().calc_header_checksum());
        let Some(TransportSlice::Udp(u)) = &p.transport else { panic!("UDP") };
        assert_eq!(u.length() as usize, f.len() - 34);
        let flow = (n % 5) as usize;
        assert_eq!((u.source_port(), u.destination_port()), flows[flow]);
        let s = Stamp::read(u.payload()).expect("our stamp");
        assert_eq!((s.flow, s.seq), (flow as u16, (n / 5) as u32));
        assert!(s.sent_ns > 0);
    }
    assert_eq!(g.pacing().unwrap().sent, 30);
    assert_eq!(g.run_once().unwrap().0, 1, "all 30 sent: the 31st is dropped");
    // Paced: at one frame a second the second is not due yet.
    g.pace(1.0, 10).unwrap();
    assert_eq!(g.run_once().unwrap().0, 4);
    assert_eq!(g.run_once().unwrap().0, 1, "not due");
    assert_eq!(g.pacing().unwrap().sent, 1);

    // A G-PDU: the inner packet's ports and lengths, the stamp inside.
    let gtpu = Gtpu { teid: 4660, ue: [10, 45, 0, 7], data_network: ([198, 51, 100, 2], 9) };
    let g = Generator::load(
        ifindex("lo"),
        &traffic(Measure { flows: flows.clone(), vary_dport: false, sizes: vec![96, 200] }, Some(gtpu)),
    )
    .expect("load");
    g.pace(0.0, 4).unwrap();
    for n in 0..4u64 {
        let (_, f) = g.run_once().unwrap();
        assert_eq!(f.len(), [96, 200][n as usize % 2]);
        let inner = &f[42 + 8..];
        let p = SlicedPacket::from_ip(inner).expect("the inner packet");
        let Some(NetSlice::Ipv4(ip)) = &p.net else { panic!("IPv4") };
        assert_eq!(ip.header().total_len() as usize, f.len() - 50);
        assert_eq!(ip.header().header_checksum(), ip.header().to_header().calc_header_checksum());
        assert_eq!(u16::from_be_bytes([f[44], f[45]]) as usize, f.len() - 50, "the G-PDU's length");
        let Some(TransportSlice::Udp(u)) = &p.transport else { panic!("UDP") };
        assert_eq!((u.source_port(), u.destination_port()), (flows[(n % 5) as usize].0, 9));
        let s = Stamp::read(&f[stamp_offset(true) as usize..]).expect("stamp inside");
        assert_eq!(s.seq, (n / 5) as u32);
    }
    // Too small for the stamp: refused.
    assert!(
        Generator::load(ifindex("lo"), &traffic(Measure { flows, vary_dport: false, sizes: vec![60] }, Some(gtpu)))
            .is_err()
    );
}

#[test]
fn a_trial_over_a_bare_veth_pair_loses_nothing() {
    if !nfv_testkit::root_or_skip("a_trial_over_a_bare_veth_pair_loses_nothing") {
        return;
    }
    in_fresh_netns(|| {
        // No IPv6 on the pair: no router solicitations among the frames.
        sh(
            "ip link add bt0 type veth peer name bt1 && sysctl -qw net.ipv6.conf.bt0.disable_ipv6=1 net.ipv6.conf.bt1.disable_ipv6=1 && ip link set bt0 up && ip link set bt1 up",
        );
        let flows = flow_ports(64, 3);
        let g = Generator::load(ifindex("bt0"), &traffic(Measure { flows, vary_dport: true, sizes: vec![] }, None))
            .expect("generator");
        let r = Receiver::attach(ifindex("bt1"), &[42]).expect("receiver");
        let mut e = Engine::new(g, r, 64);
        for (rate, secs) in [(100_000.0, 0.2), (20_000.0, 0.1)] {
            let o = e.measure(rate, secs).expect("a trial");
            let want = (rate * secs) as u64;
            assert_eq!(o.trial.sent, want, "{o:?}");
            assert_eq!((o.trial.received, o.lost, o.duplicates, o.reordered), (want, 0, 0, 0), "{o:?}");
            assert_eq!((o.counts.stamped, o.counts.foreign, o.counts.unrecorded), (want, 0, 0));
            assert_eq!(o.latency.count, want);
            assert!(o.latency.p50 < 1_000_000 && o.latency.min > 0, "{:?}", o.latency);
            assert!(o.trial.offered_as_asked(), "{o:?}");
        }
    });
}
