//! ICMP error messages about a packet, written over the packet itself: the
//! one builder behind every error the data plane sends (a refused flow's
//! destination unreachable, a tunnel's "fragmentation needed" and "packet
//! too big", the slow path's time exceeded).
//!
//! The buffer holds the offending IP packet from its first octet; the
//! quote (RFC 792: the header and at least eight octets; RFC 1812 4.3.2.3
//! and RFC 4443 2.4(c): as much as fits the minimum MTU) moves back to
//! make room, and the new IP and ICMP headers go in front of it, the
//! checksums filled. The caller provides the room (the buffer must reach
//! `header + quote` octets) and the Ethernet header.

use crate::checksum;
use crate::wire::{Ipv4Repr, Ipv6Repr, icmp, ipv4, ipv6, proto};

/// What an error says besides its quote.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IcmpError<A> {
    /// Message type (`wire::icmp::v4` or `wire::icmp::v6`).
    pub msg_type: u8,
    /// Message code.
    pub code: u8,
    /// The four type-specific octets: a next-hop MTU (RFC 1191 puts it in
    /// the low half), a whole MTU (RFC 4443 3.2), a pointer, or zero.
    pub rest: u32,
    /// The error's source address (the refused packet's destination for
    /// a host refusing, a router's own address otherwise).
    pub from: A,
    /// The error's destination: the offending packet's source.
    pub to: A,
}

/// Octets an IPv4 error puts in front of its quote.
pub const V4_OVERHEAD: usize = ipv4::HEADER_LEN + icmp::HEADER_LEN;
/// Octets an IPv6 error puts in front of its quote.
pub const V6_OVERHEAD: usize = ipv6::HEADER_LEN + icmp::HEADER_LEN;

/// Turns the IPv4 packet at the start of `buf` into `e` quoting its first
/// `quote` octets (TTL 64, DF, RFC 1812 4.3.2.3). Returns the error's
/// length. `buf` must hold `V4_OVERHEAD + quote` octets.
pub fn write_v4(buf: &mut [u8], e: &IcmpError<[u8; 4]>, quote: usize) -> usize {
    let len = V4_OVERHEAD + quote;
    buf.copy_within(..quote, V4_OVERHEAD);
    let ip = Ipv4Repr {
        src: e.from,
        dst: e.to,
        protocol: proto::ICMP,
        payload_len: icmp::HEADER_LEN + quote,
        ttl: 64,
        tos: 0,
        ident: 0,
        frag_field: ipv4::DONT_FRAG,
    };
    ip.emit(buf);
    let msg = &mut buf[ipv4::HEADER_LEN..len];
    write_icmp(msg, e.msg_type, e.code, e.rest);
    // RFC 792: over the ICMP message alone.
    let c = checksum::checksum(msg);
    icmp::IcmpPacket::new_unchecked(msg).set_checksum(c);
    len
}

/// Turns the IPv6 packet at the start of `buf` into `e` quoting its first
/// `quote` octets (hop limit 255, as the kernel's ICMPv6 errors). Returns
/// the error's length. `buf` must hold `V6_OVERHEAD + quote` octets.
pub fn write_v6(buf: &mut [u8], e: &IcmpError<[u8; 16]>, quote: usize) -> usize {
    let len = V6_OVERHEAD + quote;
    buf.copy_within(..quote, V6_OVERHEAD);
    let plen = icmp::HEADER_LEN + quote;
    let ip = Ipv6Repr {
        src: e.from,
        dst: e.to,
        next_header: proto::ICMPV6,
        payload_len: plen,
        hop_limit: 255,
        traffic_class: 0,
        flow_label: 0,
    };
    ip.emit(buf);
    let (head, msg) = buf[..len].split_at_mut(ipv6::HEADER_LEN);
    write_icmp(msg, e.msg_type, e.code, e.rest);
    // RFC 4443 section 2.3: over the IPv6 pseudo-header too.
    let head = ipv6::Ipv6Packet::new_unchecked(&*head);
    let c = !checksum::fold(checksum::sum(msg, checksum::sum(head.addrs(), plen as u32 + proto::ICMPV6 as u32)));
    icmp::IcmpPacket::new_unchecked(msg).set_checksum(c);
    len
}

/// The ICMP header, checksum zero.
fn write_icmp(msg: &mut [u8], msg_type: u8, code: u8, rest: u32) {
    let mut h = icmp::IcmpPacket::new_unchecked(msg);
    h.set_msg_type(msg_type);
    h.set_msg_code(code);
    h.set_checksum(0);
    h.set_rest(rest);
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::{Icmpv4Type, Icmpv6Type, NetSlice, PacketBuilder, SlicedPacket, TransportSlice};

    /// A datagram with an Ethernet header, then room for the error.
    fn datagram(v6: bool) -> Vec<u8> {
        let b = PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2]);
        let b = if v6 {
            b.ipv6(
                [0x20, 1, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
                [0x20, 1, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2],
                64,
            )
        } else {
            b.ipv4([10, 0, 0, 1], [192, 0, 2, 7], 64)
        };
        let mut f = Vec::new();
        b.udp(4000, 53).write(&mut f, &[7; 100]).unwrap();
        f.resize(f.len() + 64, 0);
        f
    }

    #[test]
    fn an_ipv4_error_quotes_the_packet_and_etherparse_verifies_it() {
        let mut f = datagram(false);
        let original = f[14..14 + 28 + 100].to_vec();
        let e = IcmpError {
            msg_type: icmp::v4::DEST_UNREACHABLE,
            code: 4,
            rest: 1450,
            from: [192, 0, 2, 1],
            to: [10, 0, 0, 1],
        };
        let n = write_v4(&mut f[14..], &e, 56);
        f.truncate(14 + n);
        let p = SlicedPacket::from_ethernet(&f).unwrap();
        let Some(NetSlice::Ipv4(ip)) = &p.net else { panic!("{:?}", p.net) };
        let h = ip.header().to_header();
        assert_eq!(
            (h.source, h.destination, h.time_to_live, h.dont_fragment),
            ([192, 0, 2, 1], [10, 0, 0, 1], 64, true)
        );
        assert_eq!(h.header_checksum, h.calc_header_checksum());
        let Some(TransportSlice::Icmpv4(m)) = &p.transport else { panic!() };
        assert!(matches!(
            m.icmp_type(),
            Icmpv4Type::DestinationUnreachable(etherparse::icmpv4::DestUnreachableHeader::FragmentationNeeded {
                next_hop_mtu: 1450
            })
        ));
        assert_eq!(m.checksum(), m.header().icmp_type.calc_checksum(m.payload()));
        assert_eq!(m.payload(), &original[..56]);
    }

    #[test]
    fn an_ipv6_error_quotes_the_packet_and_etherparse_verifies_it() {
        let mut f = datagram(true);
        let original = f[14..14 + 48 + 100].to_vec();
        let from = [0x20, 1, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xfe];
        let to = [0x20, 1, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
        let e = IcmpError { msg_type: icmp::v6::PACKET_TOO_BIG, code: 0, rest: 1430, from, to };
        let n = write_v6(&mut f[14..], &e, 148);
        f.truncate(14 + n);
        let p = SlicedPacket::from_ethernet(&f).unwrap();
        let Some(NetSlice::Ipv6(ip)) = &p.net else { panic!() };
        let h = ip.header().to_header();
        assert_eq!((h.source, h.destination, h.hop_limit), (from, to, 255));
        let Some(TransportSlice::Icmpv6(m)) = &p.transport else { panic!() };
        assert_eq!(m.icmp_type(), Icmpv6Type::PacketTooBig { mtu: 1430 });
        assert_eq!(m.checksum(), m.icmp_type().calc_checksum(from, to, m.payload()).unwrap());
        assert_eq!(m.payload(), &original[..]);
    }
}
