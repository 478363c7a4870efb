//! Packets no stage handles are dropped and counted, never sent back
//! where they came from: every shipped configuration with a port on each
//! side of `tests/testbed.sh line` gets, from each side, a broadcast UDP
//! datagram, a unicast to another host on the segment and a truncated
//! packet (an IPv4 total length past the end of the frame) to its own
//! address; none of them comes back, and the report names what became of
//! each. (Two instances on one segment would otherwise reflect broadcasts
//! at each other.)
#![cfg(feature = "af-xdp")]

mod common;

use std::time::Duration;

use common::packet::Capture;
use common::testbed::{TestBed, privileged};
use etherparse::PacketBuilder;

const MARK: &[u8] = b"nfv-reflection-probe";

/// One side of the bed: the host's interface there and its namespace,
/// the host's address, nfv's address on that side, and the drop reasons
/// the three probes must show up under (broadcast, other host, truncated).
struct Side {
    ns: &'static str,
    ifname: &'static str,
    dut_if: &'static str,
    host: [u8; 4],
    ours: [u8; 4],
    expect: [&'static str; 3],
}

/// The three probes from `side`'s host (MAC `mac`) to nfv (MAC `dut`).
fn probes(side: &Side, mac: [u8; 6], dut: [u8; 6]) -> Vec<Vec<u8>> {
    let mut other = side.host;
    other[3] = 99;
    let udp = |dst_mac: [u8; 6], dst: [u8; 4], port: u16| {
        let mut f = Vec::new();
        PacketBuilder::ethernet2(mac, dst_mac).ipv4(side.host, dst, 64).udp(40000, port).write(&mut f, MARK).unwrap();
        f
    };
    let broadcast = udp([0xff; 6], [255; 4], 67);
    let elsewhere = udp([2, 0, 0, 0, 0, 0x99], other, 9);
    let mut truncated = udp(dut, side.ours, 4789);
    truncated[14 + 2..14 + 4].copy_from_slice(&400u16.to_be_bytes());
    vec![broadcast, elsewhere, truncated]
}

/// Sends the probes from each side and counts what comes back to it.
fn probe(config: &str, sides: &[Side]) {
    let bed = TestBed::up("line", 1);
    for s in sides {
        bed.exec(s.ns, &["ip", "addr", "flush", "dev", s.ifname]);
        let host = std::net::Ipv4Addr::from(s.host).to_string();
        bed.exec(s.ns, &["ip", "addr", "add", &format!("{host}/24"), "dev", s.ifname]);
    }
    let dut = bed.start_nfv(config, 2);
    for s in sides {
        let (mac, dut_mac) = (bed.mac(s.ns, s.ifname), bed.mac("dut", s.dut_if));
        let frames = probes(s, mac, dut_mac);
        let ifname = s.ifname;
        let back = bed.in_ns(s.ns, move || {
            let cap = Capture::open(ifname);
            for f in &frames {
                cap.send(f);
            }
            cap.count(usize::MAX, Duration::from_millis(1500), |f| f.windows(MARK.len()).any(|w| w == MARK))
        });
        assert_eq!(back, 0, "{config}: a probe came back to {}", s.ns);
    }
    let report = dut.stop().text;
    for s in sides {
        for reason in s.expect {
            assert!(report.contains(&format!("{reason}=")), "{}: no {reason} in:\n{report}", s.ns);
        }
    }
}

#[test]
fn the_vtep_drops_what_is_not_its_tunnel_on_the_underlay() {
    if !privileged("the_vtep_drops_what_is_not_its_tunnel_on_the_underlay") {
        return;
    }
    let underlay = Side {
        ns: "sink",
        ifname: "s0",
        dut_if: "d1",
        host: [192, 168, 0, 2],
        ours: [192, 168, 0, 1],
        expect: ["unhandled", "unhandled", "truncated"],
    };
    probe(include_str!("../../configs/vtep-vxlan.toml"), &[underlay]);
}

#[test]
fn the_nat_drops_broadcasts_and_what_is_not_for_it() {
    if !privileged("the_nat_drops_broadcasts_and_what_is_not_for_it") {
        return;
    }
    let inside = Side {
        ns: "gen",
        ifname: "g0",
        dut_if: "d0",
        host: [10, 0, 0, 1],
        ours: [10, 0, 0, 254],
        expect: ["broadcast-or-multicast", "destination-inside", "malformed-ip"],
    };
    let outside = Side {
        ns: "sink",
        ifname: "s0",
        dut_if: "d1",
        host: [198, 51, 100, 2],
        ours: [198, 51, 100, 1],
        expect: ["not-our-address", "not-our-address", "malformed-ip"],
    };
    probe(include_str!("../../configs/nat44.toml"), &[inside, outside]);
}

#[test]
fn the_load_balancer_drops_what_is_not_for_a_vip_or_a_client() {
    if !privileged("the_load_balancer_drops_what_is_not_for_a_vip_or_a_client") {
        return;
    }
    let clients = Side {
        ns: "gen",
        ifname: "g0",
        dut_if: "d0",
        host: [10, 0, 0, 1],
        ours: [10, 0, 0, 254],
        expect: ["not-a-vip", "not-a-vip", "malformed-ip"],
    };
    let backends = Side {
        ns: "sink",
        ifname: "s0",
        dut_if: "d1",
        host: [10, 1, 0, 11],
        ours: [10, 1, 0, 1],
        expect: ["no-route", "no-route", "malformed-ip"],
    };
    probe(include_str!("../../configs/lb.toml"), &[clients, backends]);
}

#[test]
fn the_upf_drops_what_is_not_gtpu_or_for_a_ue() {
    if !privileged("the_upf_drops_what_is_not_gtpu_or_for_a_ue") {
        return;
    }
    let n3 = Side {
        ns: "gen",
        ifname: "g0",
        dut_if: "d0",
        host: [10, 10, 0, 2],
        ours: [10, 10, 0, 1],
        expect: ["not-gtpu", "not-gtpu", "malformed"],
    };
    let n6 = Side {
        ns: "sink",
        ifname: "s0",
        dut_if: "d1",
        host: [198, 51, 100, 2],
        ours: [198, 51, 100, 1],
        expect: ["unknown-ue", "unknown-ue", "malformed"],
    };
    probe(include_str!("../../configs/upf.toml"), &[n3, n6]);
}

#[test]
fn the_composed_upf_acl_nat44_drops_what_is_not_gtpu_or_translatable() {
    if !privileged("the_composed_upf_acl_nat44_drops_what_is_not_gtpu_or_translatable") {
        return;
    }
    let n3 = Side {
        ns: "gen",
        ifname: "g0",
        dut_if: "d0",
        host: [10, 10, 0, 2],
        ours: [10, 10, 0, 1],
        expect: ["not-gtpu", "not-gtpu", "malformed"],
    };
    // The NAT, first on the way down, translates nothing of these.
    let n6 = Side {
        ns: "sink",
        ifname: "s0",
        dut_if: "d1",
        host: [198, 51, 100, 2],
        ours: [198, 51, 100, 1],
        expect: ["not-our-address", "not-our-address", "malformed"],
    };
    probe(include_str!("../../configs/upf-acl-nat44.toml"), &[n3, n6]);
}

#[test]
fn the_composed_vtep_acl_nat44_drops_what_is_not_its_tunnel_or_translatable() {
    if !privileged("the_composed_vtep_acl_nat44_drops_what_is_not_its_tunnel_or_translatable") {
        return;
    }
    let outside = Side {
        ns: "gen",
        ifname: "g0",
        dut_if: "d0",
        host: [198, 51, 100, 2],
        ours: [198, 51, 100, 1],
        expect: ["not-our-address", "not-our-address", "malformed"],
    };
    // Not VXLAN: past the VTEP to the NAT, whose inside they are not from.
    let underlay = Side {
        ns: "sink",
        ifname: "s0",
        dut_if: "d1",
        host: [192, 168, 0, 2],
        ours: [192, 168, 0, 1],
        expect: ["source-not-inside", "source-not-inside", "truncated"],
    };
    probe(include_str!("../../configs/vtep-acl-nat44.toml"), &[outside, underlay]);
}

#[test]
fn the_single_box_graph_drops_what_no_chain_takes() {
    if !privileged("the_single_box_graph_drops_what_no_chain_takes") {
        return;
    }
    // The access side, the VTEP's underlay: the rest goes to the firewall
    // and the NAT.
    let access = Side {
        ns: "gen",
        ifname: "g0",
        dut_if: "d0",
        host: [10, 10, 0, 4],
        ours: [10, 10, 0, 1],
        expect: ["broadcast-or-multicast", "destination-inside", "malformed-ip"],
    };
    // The core side is also the overlay's bridged segment: its broadcast
    // and unknown unicast are flooded into the tunnel (by design; here the
    // remote VTEP never answers ARP, so they wait and are given up), and
    // the truncated packet, to the port's own MAC, is not the bridge's.
    let core = Side {
        ns: "sink",
        ifname: "s0",
        dut_if: "d1",
        host: [198, 51, 100, 2],
        ours: [198, 51, 100, 1],
        expect: ["unresolved", "unresolved", "unhandled"],
    };
    probe(include_str!("../../configs/sfc/single-box.toml"), &[access, core]);
}
