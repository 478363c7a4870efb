//! The VTEP stage on frames built and checked by etherparse (an independent
//! encoder/decoder): encapsulation, decapsulation, learning, flooding by
//! head-end replication, split horizon and the named drops.

mod common;

use common::*;
use etherparse::{Ipv4Header, Ipv6Header, PacketBuilder, SlicedPacket, TransportSlice, UdpHeader};
use nfv_core::packet::VerdictKind;

/// The metadata a stage leaves describes the bytes it leaves, as a fresh
/// parse would: later stages read it.
fn assert_meta_describes(bytes: &[u8], meta: &nfv_core::Meta) {
    let mut fresh = nfv_core::Meta::default();
    nfv_core::parse::classify(bytes, &mut fresh).unwrap();
    let relevant = |m: &nfv_core::Meta| (m.ethertype, m.l3_off, m.l4_off, m.l4_proto, m.flags & 3);
    assert_eq!(relevant(meta), relevant(&fresh), "metadata of {bytes:02x?}");
}

#[test]
fn unknown_destination_floods_to_local_ports_and_remote_vteps() {
    let (_cfg, mut s) = vtep("", false);
    let frame = inner(HOST_B, HOST_A);
    let with_meta = run_with_meta(s.as_mut(), 1, std::slice::from_ref(&frame), false);
    let out: Vec<_> = with_meta.iter().map(|o| (o.0.clone(), o.1)).collect();
    // host1, plus two remote VTEPs: three copies, the original among them.
    assert_eq!(out.len(), 3, "{out:?}");
    for (bytes, _, meta) in &with_meta {
        assert_meta_describes(bytes, meta);
    }
    let local: Vec<_> = out.iter().filter(|o| o.1 == VerdictKind::Out(2)).collect();
    assert_eq!(local.len(), 1);
    assert_eq!(local[0].0, frame, "the local copy is the frame unchanged");
    let tunnelled: Vec<_> = out.iter().filter(|o| o.1 == VerdictKind::Out(0)).map(|o| &o.0).collect();
    // The second remote VTEP (192.0.2.3) has no adjacency: that copy drops.
    assert_eq!(tunnelled.len(), 1, "{out:?}");
    let f = tunnelled[0];
    let p = SlicedPacket::from_ethernet(f).unwrap();
    let eth = p.link.as_ref().unwrap().to_header().unwrap();
    let eth = match eth {
        etherparse::LinkHeader::Ethernet2(e) => e,
        _ => panic!(),
    };
    assert_eq!(eth.destination, REMOTE_VTEP_MAC);
    assert_eq!(eth.source, UNDERLAY_MAC);
    let ip = match p.net.unwrap() {
        etherparse::NetSlice::Ipv4(ip) => ip.header().to_header(),
        _ => panic!("IPv4 outer"),
    };
    assert_eq!(ip.destination, [192, 0, 2, 2]);
    assert_eq!(ip.source, [192, 0, 2, 1]);
    assert!(ip.dont_fragment, "DF set");
    assert_eq!(ip.header_checksum, ip.calc_header_checksum(), "outer IPv4 checksum");
    let TransportSlice::Udp(udp) = p.transport.unwrap() else { panic!("UDP") };
    assert_eq!(udp.destination_port(), 4789);
    assert!(udp.source_port() >= 49152, "RFC 7348 source port range");
    assert_eq!(udp.checksum(), 0, "IPv4: UDP checksum 0");
    let vx = udp.payload();
    assert_eq!(&vx[..8], &[0x08, 0, 0, 0, 0, 0, 100, 0]);
    assert_eq!(&vx[8..], &frame[..], "inner frame intact");
}

#[test]
fn decapsulates_learns_and_then_encapsulates_to_the_learned_vtep() {
    let (_cfg, mut s) = vtep("", false);
    // The remote host answers from behind the remote VTEP.
    let from_remote = inner(HOST_A, REMOTE_HOST);
    let t = tunnelled(100, &from_remote, false, None);
    // HOST_A unknown yet: flooded to both local ports, never back out.
    let out = run(s.as_mut(), 0, std::slice::from_ref(&t), false);
    assert_eq!(out.len(), 2);
    assert!(out.iter().all(|o| o.0 == from_remote && matches!(o.1, VerdictKind::Out(1) | VerdictKind::Out(2))));
    // HOST_A speaks from host0: now both are learned.
    let to_remote = inner(REMOTE_HOST, HOST_A);
    let out = run(s.as_mut(), 1, std::slice::from_ref(&to_remote), false);
    assert_eq!(out.len(), 1, "known remote MAC: one unicast tunnel packet, no flood");
    assert_eq!(out[0].1, VerdictKind::Out(0));
    assert!(out[0].0.ends_with(&to_remote));
    // And traffic for HOST_A out of the tunnel now goes to host0 only.
    let out = run(s.as_mut(), 0, &[t], false);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].1, VerdictKind::Out(1));
    let report = s.report().unwrap();
    assert!(report.contains("fdb vni 100 02:00:00:00:00:c3 -> vtep 192.0.2.2"), "{report}");
    assert!(report.contains("fdb vni 100 02:00:00:00:00:a1 -> port host0"), "{report}");
}

#[test]
fn named_drops_for_bad_tunnel_packets() {
    let (cfg, mut s) = vtep("", false);
    let reasons = cfg.chains[0].stages[0].builder.drop_reasons();
    let reason = |v: &VerdictKind| match v {
        VerdictKind::Drop(r) => reasons[r.0 as usize],
        other => panic!("not dropped: {other:?}"),
    };
    let good = tunnelled(100, &inner(HOST_A, REMOTE_HOST), false, None);
    let unknown_vni = tunnelled(200, &inner(HOST_A, REMOTE_HOST), false, None);
    let mut no_i = good.clone();
    no_i[42] = 0;
    no_i[40..42].copy_from_slice(&[0, 0]); // IPv4: zero UDP checksum means none
    let mut bad_csum = good.clone();
    bad_csum[40..42].copy_from_slice(&[0x12, 0x34]);
    let mut wrong_dst = good.clone();
    wrong_dst[33] = 9; // 192.0.2.9
    let fix = |f: &mut Vec<u8>| {
        let (h, _) = Ipv4Header::from_slice(&f[14..]).unwrap();
        let c = h.calc_header_checksum();
        f[24..26].copy_from_slice(&c.to_be_bytes());
    };
    fix(&mut wrong_dst);
    let out = run(s.as_mut(), 0, &[unknown_vni, no_i, bad_csum, wrong_dst], false);
    let got: Vec<&str> = out.iter().map(|o| reason(&o.1)).collect();
    assert_eq!(got, ["unknown-vni", "i-flag-missing", "bad-udp-checksum", "not-our-vtep-address"]);
    // Not tunnel traffic at all: left for the rest of the chain.
    let plain = inner(HOST_A, REMOTE_HOST);
    let out = run(s.as_mut(), 0, &[plain], false);
    assert_eq!(out[0].1, VerdictKind::Next);
}

#[test]
fn ipv6_underlay_computes_and_verifies_the_udp_checksum() {
    // VXLAN, and Geneve with options; inner frames of odd and even length
    // (short ones and one past the AVX2 threshold of the checksum).
    let geneve = ", protocol = \"geneve\", geneve-options = [{ class = 0x0102, type = 1, data = \"0a0b0c0d\" }]";
    for (extra, tunnel_len) in [("", 8), (geneve, 16)] {
        let (_cfg, mut s) = vtep(extra, true);
        for payload_len in [5, 6, 300, 1301] {
            let mut frame = Vec::new();
            PacketBuilder::ethernet2(HOST_A, REMOTE_HOST)
                .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
                .udp(1234, 80)
                .write(&mut frame, &vec![0xa5; payload_len])
                .unwrap();
            let out = run_with_meta(s.as_mut(), 1, std::slice::from_ref(&frame), true);
            let (f, _, meta) = out.iter().find(|o| o.1 == VerdictKind::Out(0)).expect("tunnelled copy");
            assert_meta_describes(f, meta);
            let (ip, rest) = Ipv6Header::from_slice(&f[14..]).unwrap();
            let (udp, payload) = UdpHeader::from_slice(rest).unwrap();
            assert_ne!(udp.checksum, 0);
            assert_eq!(udp.checksum, udp.calc_checksum_ipv6(&ip, payload).unwrap(), "UDP checksum per etherparse");
            assert_eq!(&payload[tunnel_len..], &frame[..]);
        }
    }
    let (_cfg, mut s) = vtep("", true);
    let frame = inner(REMOTE_HOST, HOST_A);
    let out = run(s.as_mut(), 1, std::slice::from_ref(&frame), true);
    let f = &out.iter().find(|o| o.1 == VerdictKind::Out(0)).expect("tunnelled copy").0;
    let (_, rest) = Ipv6Header::from_slice(&f[14..]).unwrap();
    let (udp, _) = UdpHeader::from_slice(rest).unwrap();
    assert_eq!(udp.destination_port, 4789);
    // RFC 6935: zero when configured.
    let (_cfg, mut zero) = vtep(", zero-udp6-checksum-tx = true", true);
    let out = run(zero.as_mut(), 1, std::slice::from_ref(&frame), true);
    let f = &out.iter().find(|o| o.1 == VerdictKind::Out(0)).expect("tunnelled copy").0;
    assert_eq!(&f[60..62], &[0, 0], "zero UDP checksum");
    // etherparse computes the checksum of what it builds: we accept it.
    let t = tunnelled(100, &inner(HOST_A, REMOTE_HOST), true, None);
    let out = run(s.as_mut(), 0, std::slice::from_ref(&t), true);
    assert!(out.iter().all(|o| matches!(o.1, VerdictKind::Out(1) | VerdictKind::Out(2))), "{out:?}");
    let mut zero = t;
    let at = 14 + 40 + 6;
    zero[at..at + 2].copy_from_slice(&[0, 0]);
    let out = run(s.as_mut(), 0, &[zero], true);
    assert!(matches!(out[0].1, VerdictKind::Drop(_)), "zero UDP checksum over IPv6 refused by default");
}

#[test]
fn geneve_options_out_and_critical_unknown_options_dropped() {
    let extra = ", protocol = \"geneve\", geneve-options = [{ class = 0x0102, type = 1, data = \"0a0b0c0d\" }], \
                 known-geneve-options = [{ class = 0x0102, type = 0x81 }]";
    let (_cfg, mut s) = vtep(extra, false);
    let frame = inner(REMOTE_HOST, HOST_A);
    let out = run(s.as_mut(), 1, std::slice::from_ref(&frame), false);
    let f = &out.iter().find(|o| o.1 == VerdictKind::Out(0)).unwrap().0;
    let g = &f[42..];
    assert_eq!(u16::from_be_bytes([f[36], f[37]]), 6081);
    assert_eq!(&g[..8], &[2, 0, 0x65, 0x58, 0, 0, 100, 0], "2 words of options, TEB, VNI 100");
    assert_eq!(&g[8..16], &[0x01, 0x02, 0x01, 0x01, 0x0a, 0x0b, 0x0c, 0x0d]);
    assert_eq!(&g[16..], &frame[..]);
    let back = inner(HOST_A, REMOTE_HOST);
    let known_critical = [0x01, 0x02, 0x81, 0x00];
    let unknown_critical = [0x01, 0x03, 0x81, 0x00];
    let out = run(s.as_mut(), 0, &[tunnelled(100, &back, false, Some(&known_critical))], false);
    assert!(out.iter().all(|o| matches!(o.1, VerdictKind::Out(_))), "{out:?}");
    let out = run(s.as_mut(), 0, &[tunnelled(100, &back, false, Some(&unknown_critical))], false);
    assert_eq!(out.len(), 1);
    assert!(matches!(out[0].1, VerdictKind::Drop(_)));
}

#[test]
fn too_big_for_the_underlay_is_dropped_not_fragmented() {
    let (cfg, mut s) = vtep(", mtu = 600", false);
    let mut big = Vec::new();
    PacketBuilder::ethernet2(HOST_A, REMOTE_HOST)
        .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
        .udp(1, 2)
        .write(&mut big, &[0u8; 560])
        .unwrap();
    // Learn REMOTE_HOST behind the remote VTEP so the frame is unicast.
    run(s.as_mut(), 0, &[tunnelled(100, &inner(HOST_A, REMOTE_HOST), false, None)], false);
    let mut to = big.clone();
    to[..6].copy_from_slice(&REMOTE_HOST);
    to[6..12].copy_from_slice(&HOST_A);
    let out = run(s.as_mut(), 1, &[to], false);
    let reasons = cfg.chains[0].stages[0].builder.drop_reasons();
    match out[0].1 {
        VerdictKind::Drop(r) => assert_eq!(reasons[r.0 as usize], "too-big-for-underlay"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_flooded_frame_too_big_for_the_tunnel_is_answered_once_not_per_remote() {
    let (_cfg, mut s) = vtep(", mtu = 600, too-big-reply-from = [\"10.0.0.254\", \"fd10::fe\"]", false);
    let mut big = Vec::new();
    // Unknown destination: host1 plus both remote VTEPs of the flood list.
    PacketBuilder::ethernet2(HOST_A, [2, 0, 0, 0, 0, 0x77])
        .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
        .udp(1, 2)
        .write(&mut big, &[7u8; 800])
        .unwrap();
    let out = run(s.as_mut(), 1, std::slice::from_ref(&big), false);
    let verdicts: Vec<_> = out.iter().map(|o| o.1).collect();
    assert_eq!(verdicts, [VerdictKind::Out(2), VerdictKind::Out(1)], "the frame to host1, one ICMP answer");
    assert_eq!(out[0].0, big);
    assert_eq!(&out[1].0[..6], &HOST_A, "the answer goes to the sender");
}

#[test]
fn too_big_answers_with_icmp_fragmentation_needed_when_configured() {
    let (_cfg, mut s) = vtep(", mtu = 600, too-big-reply-from = [\"10.0.0.254\", \"fd10::fe\"]", false);
    run(s.as_mut(), 0, &[tunnelled(100, &inner(HOST_A, REMOTE_HOST), false, None)], false);
    // IPv4 with DF (etherparse sets it): ICMP type 3 code 4 back to the sender.
    let mut big = Vec::new();
    PacketBuilder::ethernet2(HOST_A, REMOTE_HOST)
        .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
        .udp(1, 2)
        .write(&mut big, &[7u8; 800])
        .unwrap();
    let out = run(s.as_mut(), 1, std::slice::from_ref(&big), false);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].1, VerdictKind::Out(1), "back out of the port it came in on");
    let reply = etherparse::SlicedPacket::from_ethernet(&out[0].0).unwrap();
    let etherparse::NetSlice::Ipv4(ip) = reply.net.unwrap() else { panic!("IPv4") };
    assert_eq!(ip.header().source(), [10, 0, 0, 254]);
    assert_eq!(ip.header().destination(), [10, 0, 0, 1]);
    let h = ip.header().to_header();
    assert_eq!(h.header_checksum, h.calc_header_checksum());
    let etherparse::TransportSlice::Icmpv4(icmp) = reply.transport.unwrap() else { panic!("ICMP") };
    // 600 - 20 (outer IP) - 8 (UDP) - 8 (VXLAN) - 14 (inner Ethernet) = 550.
    assert_eq!(
        icmp.icmp_type(),
        etherparse::Icmpv4Type::DestinationUnreachable(
            etherparse::icmpv4::DestUnreachableHeader::FragmentationNeeded { next_hop_mtu: 550 }
        )
    );
    assert_eq!(icmp.checksum(), icmp.icmp_type().calc_checksum(icmp.payload()), "ICMP checksum");
    assert_eq!(&icmp.payload()[..20], &big[14..34], "quotes the offending IP header");
    // IPv6: Packet Too Big.
    let mut big6 = Vec::new();
    PacketBuilder::ethernet2(HOST_A, REMOTE_HOST)
        .ipv6(
            [0xfd, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
            [0xfd, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2],
            64,
        )
        .udp(1, 2)
        .write(&mut big6, &[7u8; 800])
        .unwrap();
    let out = run(s.as_mut(), 1, std::slice::from_ref(&big6), false);
    let reply = etherparse::SlicedPacket::from_ethernet(&out[0].0).unwrap();
    let etherparse::NetSlice::Ipv6(ip) = reply.net.unwrap() else { panic!("IPv6") };
    let (src, dst) = (ip.header().source(), ip.header().destination());
    let etherparse::TransportSlice::Icmpv6(icmp) = reply.transport.unwrap() else { panic!("ICMPv6") };
    assert_eq!(icmp.icmp_type(), etherparse::Icmpv6Type::PacketTooBig { mtu: 550 });
    assert_eq!(icmp.checksum(), icmp.icmp_type().calc_checksum(src, dst, icmp.payload()).unwrap(), "ICMPv6 checksum");
    // Never an ICMP error about an ICMP error (RFC 1812 section 4.3.2.7).
    let mut err = Vec::new();
    PacketBuilder::ethernet2(HOST_A, REMOTE_HOST)
        .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
        .icmpv4(etherparse::Icmpv4Type::DestinationUnreachable(etherparse::icmpv4::DestUnreachableHeader::Port))
        .write(&mut err, &[7u8; 800])
        .unwrap();
    let out = run(s.as_mut(), 1, std::slice::from_ref(&err), false);
    assert!(matches!(out[0].1, VerdictKind::Drop(_)), "dropped, not answered: {:?}", out[0].1);
}

fn arp(op: u16, smac: [u8; 6], sip: [u8; 4], tmac: [u8; 6], tip: [u8; 4], dst: [u8; 6]) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&dst);
    f.extend_from_slice(&smac);
    f.extend_from_slice(&[0x08, 0x06, 0, 1, 8, 0, 6, 4]);
    f.extend_from_slice(&op.to_be_bytes());
    f.extend_from_slice(&smac);
    f.extend_from_slice(&sip);
    f.extend_from_slice(&tmac);
    f.extend_from_slice(&tip);
    f
}

#[test]
fn arp_for_a_known_inner_address_is_answered_locally() {
    let (_cfg, mut s) = vtep(", arp-suppression = true", false);
    let request = arp(1, HOST_A, [10, 0, 0, 1], [0; 6], [10, 0, 0, 2], [0xff; 6]);
    // Unknown yet: flooded like any broadcast (host1 and the tunnel).
    let out = run(s.as_mut(), 1, std::slice::from_ref(&request), false);
    assert!(out.len() >= 2 && out.iter().all(|o| o.1 != VerdictKind::Out(1)), "{out:?}");
    // The remote host answers through the tunnel: snooped.
    let reply = arp(2, REMOTE_HOST, [10, 0, 0, 2], HOST_A, [10, 0, 0, 1], HOST_A);
    run(s.as_mut(), 0, &[tunnelled(100, &reply, false, None)], false);
    // Next request: answered on the spot, back out of host0.
    let out = run(s.as_mut(), 1, std::slice::from_ref(&request), false);
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!(out[0].1, VerdictKind::Out(1));
    let a = etherparse::ArpPacketSlice::from_slice(&out[0].0[14..]).unwrap();
    assert_eq!(a.operation(), etherparse::ArpOperation::REPLY);
    assert_eq!(a.sender_hw_addr(), &REMOTE_HOST);
    assert_eq!(a.sender_protocol_addr(), &[10, 0, 0, 2]);
    assert_eq!(a.target_hw_addr(), &HOST_A);
    assert_eq!(a.target_protocol_addr(), &[10, 0, 0, 1]);
    assert_eq!(&out[0].0[..12], &[HOST_A, REMOTE_HOST].concat()[..], "Ethernet back to the asker");
    assert!(s.report().unwrap().contains("arp-suppressed 1"));
}

#[test]
fn vnis_are_separate_bridge_domains() {
    // host0 in VNI 100, host1 in VNI 200.
    let src = "[[ports]]\nname = \"up\"\nkind = \"generator\"\naddresses = [\"192.0.2.1/24\"]\n\n[[ports]]\nname = \"host0\"\nkind = \"sink\"\n\n\
               [[ports]]\nname = \"host1\"\nkind = \"sink\"\n\n\
               [[chains]]\nname = \"c\"\nstages = [{ kind = \"vtep\", underlay = \"up\", local-ip = \"192.0.2.1\", \
               bridge-domains = [{ vni = 100, ports = [\"host0\"], flood = [\"192.0.2.2\"] }, \
               { vni = 200, ports = [\"host1\"], flood = [\"192.0.2.2\"] }] }]\n\n\
               [[workers]]\nrx = [\"up\"]\nchain = \"c\"\n";
    let mut r = nfv_core::StageRegistry::new();
    nfv_vtep::register(&mut r);
    let cfg = nfv_core::config::load("t.toml", src, &r).unwrap_or_else(|e| panic!("{e}"));
    let macs = [UNDERLAY_MAC, [2, 0, 0, 0, 1, 1], [2, 0, 0, 0, 1, 2]];
    let mut s = cfg.chains[0].stages[0].builder.build(&nfv_core::BuildCtx {
        worker: 0,
        port_macs: &macs,
        headers_read_later: true,
        chain_rank: 0,
        chain_workers: 1,
    });
    let bcast = inner([0xff; 6], REMOTE_HOST);
    let out = run(s.as_mut(), 0, &[tunnelled(200, &bcast, false, None)], false);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].1, VerdictKind::Out(2), "VNI 200 floods to its own port only");
    let out = run(s.as_mut(), 0, &[tunnelled(100, &bcast, false, None)], false);
    assert_eq!(out[0].1, VerdictKind::Out(1));
    // A frame from host1 is encapsulated with VNI 200.
    let out = run(s.as_mut(), 2, &[inner(REMOTE_HOST, HOST_B)], false);
    let t = out.iter().find(|o| o.1 == VerdictKind::Out(0)).expect("tunnelled");
    assert_eq!(&t.0[42 + 4..42 + 7], &[0, 0, 200], "VNI 200 in the VXLAN header");
}

#[test]
fn inner_vlan_outer_fragments_and_truncation_are_named() {
    let (cfg, mut s) = vtep("", false);
    let reasons = cfg.chains[0].stages[0].builder.drop_reasons();
    let name = |v: &VerdictKind| match v {
        VerdictKind::Drop(r) => reasons[r.0 as usize],
        other => panic!("not dropped: {other:?}"),
    };
    // Inner 802.1Q tag, not allowed by default.
    let mut tagged = Vec::new();
    PacketBuilder::ethernet2(REMOTE_HOST, HOST_A)
        .single_vlan(etherparse::VlanId::try_new(10).unwrap())
        .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
        .udp(1, 2)
        .write(&mut tagged, b"x")
        .unwrap();
    let out = run(s.as_mut(), 0, &[tunnelled(100, &tagged, false, None)], false);
    assert_eq!(name(&out[0].1), "inner-vlan-not-allowed");
    // The outer packet as a first fragment (MF set), checksum fixed.
    let mut frag = tunnelled(100, &inner(HOST_A, REMOTE_HOST), false, None);
    frag[20] |= 0x20;
    frag[24..26].copy_from_slice(&[0, 0]);
    let c = etherparse::Ipv4Header::from_slice(&frag[14..]).unwrap().0.calc_header_checksum();
    frag[24..26].copy_from_slice(&c.to_be_bytes());
    let out = run(s.as_mut(), 0, &[frag], false);
    assert_eq!(name(&out[0].1), "outer-fragment");
    // UDP claims more than the packet holds.
    let mut short = tunnelled(100, &inner(HOST_A, REMOTE_HOST), false, None);
    short[38..40].copy_from_slice(&1000u16.to_be_bytes());
    short[40..42].copy_from_slice(&[0, 0]);
    let out = run(s.as_mut(), 0, &[short], false);
    assert_eq!(name(&out[0].1), "truncated");
}
