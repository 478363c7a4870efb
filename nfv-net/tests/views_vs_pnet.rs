//! The views read what an independent implementation reads: every field of
//! Ethernet, IPv4, IPv6, UDP, TCP and ICMP headers over random octets,
//! against `pnet_packet`'s views of the same buffers.

use nfv_net::wire::{EthernetFrame, IcmpPacket, Ipv4Packet, Ipv6Packet, TcpPacket, UdpPacket};
use pnet_packet::Packet;

#[test]
fn every_field_reads_as_pnet_reads_it() {
    let mut rng = fastrand::Rng::with_seed(17);
    for _ in 0..20_000 {
        let b: Vec<u8> = (0..64).map(|_| rng.u8(..)).collect();

        let e = EthernetFrame::new_unchecked(&b[..]);
        let pe = pnet_packet::ethernet::EthernetPacket::new(&b).unwrap();
        assert_eq!(e.dst_addr(), pe.get_destination().octets());
        assert_eq!(e.src_addr(), pe.get_source().octets());
        assert_eq!(e.ethertype(), pe.get_ethertype().0);

        let ip = Ipv4Packet::new_unchecked(&b[..]);
        let p4 = pnet_packet::ipv4::Ipv4Packet::new(&b).unwrap();
        assert_eq!((ip.version(), ip.header_len()), (p4.get_version(), p4.get_header_length() as usize * 4));
        assert_eq!(
            (ip.tos(), ip.total_len(), ip.ident()),
            ((p4.get_dscp() << 2) | p4.get_ecn(), p4.get_total_length(), p4.get_identification())
        );
        let frag = (p4.get_flags() as u16) << 13 | p4.get_fragment_offset();
        assert_eq!((ip.frag_field(), ip.ttl(), ip.protocol()), (frag, p4.get_ttl(), p4.get_next_level_protocol().0));
        assert_eq!(
            (ip.checksum(), ip.src_addr(), ip.dst_addr()),
            (p4.get_checksum(), p4.get_source().octets(), p4.get_destination().octets())
        );

        let ip6 = Ipv6Packet::new_unchecked(&b[..]);
        let p6 = pnet_packet::ipv6::Ipv6Packet::new(&b).unwrap();
        assert_eq!(
            (ip6.version(), ip6.traffic_class(), ip6.flow_label()),
            (p6.get_version(), p6.get_traffic_class(), p6.get_flow_label())
        );
        assert_eq!(
            (ip6.payload_len(), ip6.next_header(), ip6.hop_limit()),
            (p6.get_payload_length(), p6.get_next_header().0, p6.get_hop_limit())
        );
        assert_eq!((ip6.src_addr(), ip6.dst_addr()), (p6.get_source().octets(), p6.get_destination().octets()));

        let u = UdpPacket::new_unchecked(&b[..]);
        let pu = pnet_packet::udp::UdpPacket::new(&b).unwrap();
        assert_eq!(
            (u.src_port(), u.dst_port(), u.len(), u.checksum()),
            (pu.get_source(), pu.get_destination(), pu.get_length(), pu.get_checksum())
        );
        assert_eq!(u.payload(), pu.payload());

        let t = TcpPacket::new_unchecked(&b[..]);
        let pt = pnet_packet::tcp::TcpPacket::new(&b).unwrap();
        assert_eq!(
            (t.src_port(), t.dst_port(), t.seq_number(), t.ack_number()),
            (pt.get_source(), pt.get_destination(), pt.get_sequence(), pt.get_acknowledgement())
        );
        assert_eq!(
            (t.header_len(), t.flags(), t.window(), t.checksum()),
            (pt.get_data_offset() as usize * 4, pt.get_flags(), pt.get_window(), pt.get_checksum())
        );

        let i = IcmpPacket::new_unchecked(&b[..]);
        let pi = pnet_packet::icmp::IcmpPacket::new(&b).unwrap();
        assert_eq!(
            (i.msg_type(), i.msg_code(), i.checksum()),
            (pi.get_icmp_type().0, pi.get_icmp_code().0, pi.get_checksum())
        );
    }
}
