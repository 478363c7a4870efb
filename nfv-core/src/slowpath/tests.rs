//! The slow path's answers and its next-hop resolution, driven directly.

use super::resolve::{PROBES, STALE_AFTER};
use super::*;
use etherparse::{Icmpv4Type, NetSlice, PacketBuilder, SlicedPacket, TransportSlice};

const PEER: [u8; 6] = [2, 0, 0, 0, 0, 1];
const OURS: [u8; 6] = [2, 0, 0, 0, 0, 0xfe];

fn slow_path() -> SlowPath {
    let local = LocalAddrs {
        ports: vec![(OURS, vec![OwnedAddr { addr: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 254)), prefix: 24 }])],
    };
    SlowPath::new(local, Neighbours::new([]))
}

#[test]
fn a_next_hop_a_stage_asks_for_is_resolved_and_one_off_link_ignored() {
    let mut sp = slow_path();
    assert!(!sp.adopt_requests(), "nothing asked");
    let snapshot = sp.neighbours.snapshot();
    for ip in ["10.0.0.9", "10.0.0.9", "192.0.2.1"] {
        snapshot.request(ip.parse().unwrap());
    }
    assert!(sp.adopt_requests(), "10.0.0.9 is on d0's subnet");
    let arps = sp.resolution_requests(true);
    assert_eq!(arps.len(), 1, "once, and not the off-link one");
    assert_eq!(&arps[0].data[38..42], &[10, 0, 0, 9], "ARP target");
    assert!(sp.resolution_requests(true).is_empty(), "asked for once, not kept resolved");
    snapshot.request("10.0.0.9".parse().unwrap());
    assert!(!sp.adopt_requests(), "asked within half a second (another worker): not again");
    sp.asked.get_mut(&"10.0.0.9".parse().unwrap()).unwrap().1 -= Duration::from_millis(500);
    snapshot.request("10.0.0.9".parse().unwrap());
    assert!(sp.adopt_requests(), "later, again");
    assert_eq!(sp.resolution_requests(true).len(), 1);
    // The answer is learned (it is addressed to us anyway), and so is a
    // request from the host itself.
    // The reply as etherparse writes it.
    let arp = etherparse::ArpPacket::new(
        etherparse::ArpHardwareId::ETHERNET,
        etherparse::EtherType::IPV4,
        etherparse::ArpOperation::REPLY,
        &PEER,
        &[10, 0, 0, 9],
        &OURS,
        &[10, 0, 0, 254],
    )
    .unwrap();
    let mut reply = Vec::new();
    PacketBuilder::ethernet2(PEER, OURS).arp(arp).write(&mut reply).unwrap();
    assert!(sp.handle(0, &reply).is_empty());
    assert_eq!(sp.neighbours.snapshot().lookup(&"10.0.0.9".parse().unwrap()).map(|n| n.mac), Some(PEER));
}

/// A learned next hop that stops answering is probed, then removed
/// (packets for it wait and ask again), and learned anew, at its new
/// MAC, when it answers again.
#[test]
fn a_neighbour_that_goes_quiet_is_probed_removed_and_resolved_again() {
    let mut sp = slow_path();
    let hop: IpAddr = "10.0.0.9".parse().unwrap();
    assert!(sp.want(hop));
    let reply = |mac: [u8; 6]| {
        let arp = etherparse::ArpPacket::new(
            etherparse::ArpHardwareId::ETHERNET,
            etherparse::EtherType::IPV4,
            etherparse::ArpOperation::REPLY,
            &mac,
            &[10, 0, 0, 9],
            &OURS,
            &[10, 0, 0, 254],
        )
        .unwrap();
        let mut f = Vec::new();
        PacketBuilder::ethernet2(mac, OURS).arp(arp).write(&mut f).unwrap();
        f
    };
    sp.handle(0, &reply(PEER));
    assert_eq!(sp.neighbours.snapshot().lookup(&hop).map(|n| n.mac), Some(PEER));
    assert!(sp.resolution_requests(true).is_empty(), "resolved and fresh: nothing to ask");
    // Quiet for longer than STALE_AFTER: a probe a round, PROBES of them.
    let age = |sp: &mut SlowPath| sp.confirmed.get_mut(&hop).unwrap().0 -= STALE_AFTER;
    for n in 1..=PROBES {
        age(&mut sp);
        let probes = sp.resolution_requests(true);
        assert_eq!(probes.len(), 1, "probe {n}");
        assert_eq!(&probes[0].data[38..42], &[10, 0, 0, 9], "an ARP request for it");
    }
    age(&mut sp);
    sp.resolution_requests(true);
    assert!(sp.neighbours.snapshot().lookup(&hop).is_none(), "removed after {PROBES} probes");
    assert_eq!(sp.counters.neighbours_lost.get(), 1);
    // Still wanted: asked for again, and learned where it is now.
    assert_eq!(sp.resolution_requests(true).len(), 1, "resolved again");
    let moved = [2, 0, 0, 0, 0, 0x77];
    sp.handle(0, &reply(moved));
    assert_eq!(sp.neighbours.snapshot().lookup(&hop).map(|n| n.mac), Some(moved));
    // An answer to a probe keeps it.
    age(&mut sp);
    assert_eq!(sp.resolution_requests(true).len(), 1, "probed");
    sp.handle(0, &reply(moved));
    assert!(sp.resolution_requests(true).is_empty(), "confirmed: no probe, kept");
    assert!(sp.neighbours.snapshot().lookup(&hop).is_some());
}

/// The same for an IPv6 next hop: one Neighbor Solicitation to its
/// solicited-node group (RFC 4861 7.2.2), and its advertisement learned.
#[test]
fn an_ipv6_next_hop_asked_for_is_solicited_and_its_advertisement_learned() {
    let ours6: Ipv6Addr = "fd00::1".parse().unwrap();
    let local = LocalAddrs { ports: vec![(OURS, vec![OwnedAddr { addr: IpAddr::V6(ours6), prefix: 64 }])] };
    let mut sp = SlowPath::new(local, Neighbours::new([]));
    let hop: Ipv6Addr = "fd00::2:3".parse().unwrap();
    sp.neighbours.snapshot().request(IpAddr::V6(hop));
    assert!(sp.adopt_requests());
    let ns = sp.resolution_requests(false);
    assert_eq!(ns.len(), 1);
    let p = SlicedPacket::from_ethernet(&ns[0].data).unwrap();
    let Some(NetSlice::Ipv6(ip)) = &p.net else { panic!() };
    assert_eq!(ip.header().destination_addr(), "ff02::1:ff02:3".parse::<Ipv6Addr>().unwrap());
    assert_eq!(&ns[0].data[0..6], &[0x33, 0x33, 0xff, 0x02, 0x00, 0x03]);
    // The advertisement as etherparse writes it (RFC 4861 4.4): the
    // target, then its link-layer address option (type 2, 8 octets).
    let mut na = Vec::new();
    let mut body = hop.octets().to_vec();
    body.extend_from_slice(&[2, 1]);
    body.extend_from_slice(&PEER);
    let solicited =
        etherparse::icmpv6::NeighborAdvertisementHeader { router: false, solicited: true, r#override: true };
    PacketBuilder::ethernet2(PEER, OURS)
        .ipv6(hop.octets(), ours6.octets(), 255)
        .icmpv6(etherparse::Icmpv6Type::NeighborAdvertisement(solicited))
        .write(&mut na, &body)
        .unwrap();
    assert!(sp.handle(0, &na).is_empty());
    assert_eq!(sp.neighbours.snapshot().lookup(&IpAddr::V6(hop)).map(|n| n.mac), Some(PEER));
}

fn udp(ttl: u8) -> Vec<u8> {
    let mut f = Vec::new();
    PacketBuilder::ethernet2(PEER, OURS)
        .ipv4([10, 0, 0, 1], [198, 51, 100, 2], ttl)
        .udp(40000, 33434)
        .write(&mut f, &[7; 20])
        .unwrap();
    f
}

/// What traceroute needs from a hop: an RFC 792 time exceeded from the
/// hop's address, quoting the probe's header and its UDP ports.
#[test]
fn an_expired_packet_gets_a_time_exceeded_quoting_it() {
    let mut sp = slow_path();
    let probe = udp(1);
    let out = sp.handle(0, &probe);
    assert_eq!(out.len(), 1);
    let f = &out[0].data;
    assert_eq!(&f[0..6], &PEER);
    let p = SlicedPacket::from_ethernet(f).unwrap();
    let Some(NetSlice::Ipv4(ip)) = &p.net else { panic!() };
    let h = ip.header().to_header();
    assert_eq!((h.source, h.destination), ([10, 0, 0, 254], [10, 0, 0, 1]));
    assert_eq!(h.header_checksum, h.calc_header_checksum());
    let Some(TransportSlice::Icmpv4(icmp)) = &p.transport else { panic!() };
    assert!(matches!(icmp.icmp_type(), Icmpv4Type::TimeExceeded(_)), "{:?}", icmp.icmp_type());
    assert_eq!(icmp.checksum(), icmp.header().icmp_type.calc_checksum(icmp.payload()));
    assert_eq!(icmp.payload(), &probe[14..14 + 28], "the probe's header as received and 8 bytes");
    assert_eq!(sp.counters.time_exceeded.get(), 1);
}

#[test]
fn no_error_about_an_error_for_our_own_address_or_past_the_rate_limit() {
    let mut sp = slow_path();
    let mut err = Vec::new();
    PacketBuilder::ethernet2(PEER, OURS)
        .ipv4([10, 0, 0, 1], [198, 51, 100, 2], 1)
        .icmpv4(Icmpv4Type::DestinationUnreachable(etherparse::icmpv4::DestUnreachableHeader::Port))
        .write(&mut err, &[0; 28])
        .unwrap();
    assert!(sp.handle(0, &err).is_empty(), "RFC 1812 4.3.2.7: no error about an error");
    let mut igmp = Vec::new();
    PacketBuilder::ethernet2(PEER, [1, 0, 0x5e, 0, 0, 0x16])
        .ipv4([10, 0, 0, 1], [224, 0, 0, 22], 1)
        .write(&mut igmp, etherparse::IpNumber(2), &[0x22, 0, 0, 0, 0, 0, 0, 0])
        .unwrap();
    assert!(sp.handle(0, &igmp).is_empty(), "nor about multicast");
    let mut to_us = udp(1);
    to_us[14 + 16..14 + 20].copy_from_slice(&[10, 0, 0, 254]);
    to_us[14 + 10..14 + 12].copy_from_slice(&[0, 0]);
    let c = nfv_net::checksum::checksum(&to_us[14..34]);
    to_us[14 + 10..14 + 12].copy_from_slice(&c.to_be_bytes());
    assert_eq!(sp.counters.time_exceeded.get(), 0);
    let _ = sp.handle(0, &to_us);
    assert_eq!(sp.counters.time_exceeded.get(), 0, "addressed to us: delivered, not expired");
    let sent = (0..ICMP_ERRORS_PER_SEC + 50).filter(|_| !sp.handle(0, &udp(1)).is_empty()).count();
    assert_eq!(sent as u32, ICMP_ERRORS_PER_SEC, "at most the budget within a second");
    assert_eq!(sp.counters.rate_limited.get(), 50);
}
