//! The in-frame refusals (`nfv_core::reject`) checked by etherparse: a
//! TCP reset that the sender's stack accepts, an ICMP destination
//! unreachable quoting what it refuses, and no answer where RFC 1812 and
//! RFC 793 forbid one.
use etherparse::{Icmpv4Type, NetSlice, PacketBuilder, SlicedPacket, TransportSlice};
use nfv_core::reject::{Unreachable, code, icmp_unreachable, tcp_reset};
use nfv_core::{Batch, Stage, StageCtx};
use nfv_net::wire::proto;
use nfv_testkit::FrameRunner;

const US: [u8; 6] = [2, 0, 0, 0, 0, 0xfe];
const PEER: [u8; 6] = [2, 0, 0, 0, 0, 1];

/// Refuses everything with a reset or a port unreachable.
struct Refuse;

impl Stage for Refuse {
    fn process(&mut self, batch: &mut Batch, _: &mut StageCtx<'_>) {
        for mut p in batch.iter_mut() {
            let r = match p.meta().l4_proto {
                proto::TCP => tcp_reset(&mut p, US),
                _ => {
                    let u = Unreachable { code: code::PORT_UNREACHABLE, from: None, mtu: 0, quote: 0 };
                    icmp_unreachable(&mut p, u, US)
                }
            };
            if r.is_ok() {
                p.send_to(0);
            }
        }
    }
}

fn refuse(f: &[u8]) -> Option<Vec<u8>> {
    let (v, _, out) = FrameRunner::new([]).run(&mut Refuse, 0, f);
    (v == nfv_core::packet::VerdictKind::Out(0)).then_some(out)
}

fn ip_checked(f: &[u8]) -> SlicedPacket<'_> {
    let p = SlicedPacket::from_ethernet(f).unwrap();
    assert_eq!((&f[0..6], &f[6..12]), (&PEER[..], &US[..]), "back to the sender");
    let Some(NetSlice::Ipv4(ip)) = &p.net else { panic!() };
    let h = ip.header().to_header();
    assert_eq!((h.source, h.destination, h.time_to_live), ([192, 0, 2, 10], [10, 0, 0, 1], 64));
    assert_eq!(h.header_checksum, h.calc_header_checksum());
    p
}

#[test]
fn a_syn_gets_a_reset_acking_it_and_a_segment_with_ack_one_at_its_ack() {
    let mut syn = Vec::new();
    PacketBuilder::ethernet2(PEER, US)
        .ipv4([10, 0, 0, 1], [192, 0, 2, 10], 64)
        .tcp(40000, 80, 1000, 64240)
        .syn()
        .write(&mut syn, &[])
        .unwrap();
    let out = refuse(&syn).unwrap();
    let p = ip_checked(&out);
    let Some(TransportSlice::Tcp(t)) = &p.transport else { panic!() };
    assert_eq!(
        (t.source_port(), t.destination_port(), t.sequence_number(), t.acknowledgment_number()),
        (80, 40000, 0, 1001)
    );
    assert!(t.rst() && t.ack() && !t.syn());
    let Some(NetSlice::Ipv4(ip)) = &p.net else { panic!() };
    assert_eq!(t.calc_checksum_ipv4(ip.header().source(), ip.header().destination()).unwrap(), t.checksum());
    let mut data = Vec::new();
    PacketBuilder::ethernet2(PEER, US)
        .ipv4([10, 0, 0, 1], [192, 0, 2, 10], 64)
        .tcp(40000, 80, 5, 64240)
        .ack(777)
        .write(&mut data, b"hello")
        .unwrap();
    let out = refuse(&data).unwrap();
    let Some(TransportSlice::Tcp(t)) = &ip_checked(&out).transport else { panic!() };
    assert_eq!((t.sequence_number(), t.rst(), t.ack()), (777, true, false));
    let mut rst = Vec::new();
    PacketBuilder::ethernet2(PEER, US)
        .ipv4([10, 0, 0, 1], [192, 0, 2, 10], 64)
        .tcp(40000, 80, 5, 0)
        .rst()
        .write(&mut rst, &[])
        .unwrap();
    assert_eq!(refuse(&rst), None, "a reset is never answered");
}

#[test]
fn a_datagram_gets_a_port_unreachable_quoting_it() {
    let mut udp = Vec::new();
    PacketBuilder::ethernet2(PEER, US)
        .ipv4([10, 0, 0, 1], [192, 0, 2, 10], 64)
        .udp(5353, 53)
        .write(&mut udp, b"a question longer than eight")
        .unwrap();
    let out = refuse(&udp).unwrap();
    let p = ip_checked(&out);
    let Some(TransportSlice::Icmpv4(icmp)) = &p.transport else { panic!() };
    assert!(matches!(
        icmp.icmp_type(),
        Icmpv4Type::DestinationUnreachable(etherparse::icmpv4::DestUnreachableHeader::Port)
    ));
    assert_eq!(icmp.checksum(), icmp.header().icmp_type.calc_checksum(icmp.payload()));
    assert_eq!(icmp.payload(), &udp[14..14 + 28], "the header and eight octets");
    let mut to_group = Vec::new();
    PacketBuilder::ethernet2(PEER, US)
        .ipv4([10, 0, 0, 1], [224, 0, 0, 251], 64)
        .udp(5353, 5353)
        .write(&mut to_group, b"q")
        .unwrap();
    assert_eq!(refuse(&to_group), None, "nothing about a group address");
}
