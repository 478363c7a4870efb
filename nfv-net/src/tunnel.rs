//! Outer headers of a tunnel, built once per remote endpoint and copied in
//! front of each packet: Ethernet, IPv4 or IPv6, then UDP and a constant
//! tunnel header (VXLAN, Geneve, RFC 7348 / RFC 8926; GTP-U's UDP, TS 29.281
//! 4.4) or nothing more (IP in IP, RFC 2003). What varies per packet
//! (lengths, the UDP source port, a copied TOS and DF) is written after the
//! copy, and the checksums are completed from sums taken when the template
//! was built: the IPv4 header checksum from the constant header's sum, the
//! IPv6 UDP checksum from the pseudo-header's and the tunnel header's, so
//! only the payload is read per packet.

use std::net::IpAddr;

use crate::checksum::{fold, sum};
use crate::wire::{EthernetRepr, Ipv4Packet, Ipv4Repr, Ipv6Packet, Ipv6Repr, UdpPacket, UdpRepr, ethernet};
use crate::wire::{ethertype, ipv4, ipv6, proto, udp};

/// What goes over the IP header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encap<'a> {
    /// UDP to `dport` (the source port is the packet's), then the constant
    /// `tunnel` header.
    Udp {
        /// Destination port (4789, 6081, 2152).
        dport: u16,
        /// The tunnel header's constant octets (empty when the caller
        /// writes its own per packet, as GTP-U's TEID and length).
        tunnel: &'a [u8],
    },
    /// The payload is an IP packet of protocol `protocol` (4: IPv4 in IP).
    Ip {
        /// Protocol of the payload.
        protocol: u8,
    },
}

/// The constant fields of an outer header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OuterSpec<'a> {
    /// Ethernet destination (the next hop) and source (our port).
    pub eth: ([u8; 6], [u8; 6]),
    /// Outer source address (ours).
    pub src: IpAddr,
    /// Outer destination address (the remote endpoint), of `src`'s family.
    pub dst: IpAddr,
    /// TTL or hop limit.
    pub ttl: u8,
    /// IPv4 flags and fragment offset of every packet ([`ipv4::DONT_FRAG`]
    /// for a tunnel that must not be fragmented), or 0.
    pub frag: u16,
    /// What follows the IP header.
    pub encap: Encap<'a>,
}

/// What an outer header takes from each packet.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PerPacket {
    /// UDP source port (entropy for the underlay's ECMP, RFC 7348 5).
    pub sport: u16,
    /// IPv4 type of service, where copied from the inner packet (RFC 2003
    /// 3.1); 0 otherwise.
    pub tos: u8,
    /// IPv4 flags added to the template's (a DF copied from the inner
    /// packet), 0 otherwise.
    pub frag: u16,
    /// Compute the UDP checksum over IPv6 (RFC 8200 8.1; false only where
    /// RFC 6935's zero checksum is configured). Never over IPv4: zero
    /// there says "none" (RFC 768), as tunnels send.
    pub udp6_checksum: bool,
}

/// An outer header ready to copy: its octets with lengths, source port
/// and checksums zero, and the sums that complete them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OuterHeader {
    hdr: Box<[u8]>,
    v6: bool,
    udp: bool,
    /// IPv4: sum of the header as built (total length and checksum zero).
    /// IPv6 with UDP: sum of the pseudo-header's addresses and next header,
    /// the UDP header as built and the tunnel header.
    partial: u32,
}

impl OuterHeader {
    /// Builds the template for `s`; `None` when `s.src` and `s.dst` are of
    /// different families.
    pub fn new(s: &OuterSpec<'_>) -> Option<Self> {
        let (ip_len, v6) = match (s.src, s.dst) {
            (IpAddr::V4(_), IpAddr::V4(_)) => (ipv4::HEADER_LEN, false),
            (IpAddr::V6(_), IpAddr::V6(_)) => (ipv6::HEADER_LEN, true),
            _ => return None,
        };
        let (udp, tunnel, protocol) = match s.encap {
            Encap::Udp { tunnel, .. } => (true, tunnel, proto::UDP),
            Encap::Ip { protocol } => (false, &[][..], protocol),
        };
        let l4 = ethernet::HEADER_LEN + ip_len;
        let len = l4 + if udp { udp::HEADER_LEN } else { 0 } + tunnel.len();
        let mut h = vec![0u8; len];
        let ethertype = if v6 { ethertype::IPV6 } else { ethertype::IPV4 };
        EthernetRepr { dst: s.eth.0, src: s.eth.1, ethertype }.emit(&mut h);
        let mut partial = match (s.src, s.dst) {
            (IpAddr::V4(src), IpAddr::V4(dst)) => {
                let ip = Ipv4Repr {
                    src: src.octets(),
                    dst: dst.octets(),
                    protocol,
                    payload_len: 0,
                    ttl: s.ttl,
                    tos: 0,
                    ident: 0,
                    frag_field: s.frag,
                };
                ip.emit(&mut h[ethernet::HEADER_LEN..]);
                // The sum without the length (0 above, with the header's
                // own length in it: taken out) and without the checksum.
                let mut view = Ipv4Packet::new_unchecked(&mut h[ethernet::HEADER_LEN..l4]);
                view.set_total_len(0);
                view.set_checksum(0);
                sum(&h[ethernet::HEADER_LEN..l4], 0)
            }
            (IpAddr::V6(src), IpAddr::V6(dst)) => {
                let ip = Ipv6Repr {
                    src: src.octets(),
                    dst: dst.octets(),
                    next_header: protocol,
                    payload_len: 0,
                    hop_limit: s.ttl,
                    traffic_class: 0,
                    flow_label: 0,
                };
                ip.emit(&mut h[ethernet::HEADER_LEN..]);
                sum(Ipv6Packet::new_unchecked(&h[ethernet::HEADER_LEN..l4]).addrs(), protocol as u32)
            }
            _ => unreachable!("families checked above"),
        };
        if let Encap::Udp { dport, tunnel } = s.encap {
            UdpRepr { src_port: 0, dst_port: dport, payload_len: 0 }.emit(&mut h[l4..]);
            UdpPacket::new_unchecked(&mut h[l4..]).set_len(0);
            h[l4 + udp::HEADER_LEN..].copy_from_slice(tunnel);
            if v6 {
                // The UDP header (zero length, source port and checksum)
                // and the tunnel header join the pseudo-header sum. Both
                // are whole 16-bit words, so the payload starts on a word
                // boundary of the sum.
                partial = sum(&h[l4..], partial);
            }
        }
        Some(Self { hdr: h.into_boxed_slice(), v6, udp, partial })
    }

    /// Octets the header puts in front of a payload.
    #[inline(always)]
    pub fn len(&self) -> usize {
        self.hdr.len()
    }

    /// Never: a header has at least Ethernet and IP.
    #[inline(always)]
    pub fn is_empty(&self) -> bool {
        self.hdr.is_empty()
    }

    /// True over IPv6.
    #[inline(always)]
    pub fn is_ipv6(&self) -> bool {
        self.v6
    }

    /// Writes the header at the start of `out`, in front of the
    /// `out.len() - self.len()` octets of payload already there: copies
    /// the template and completes lengths, source port and checksums.
    #[inline(always)]
    pub fn write(&self, out: &mut [u8], v: PerPacket) {
        let total = self.hdr.len();
        copy_header(&mut out[..total], &self.hdr);
        let ip_len = out.len() - ethernet::HEADER_LEN;
        if !self.v6 {
            const L4: usize = ethernet::HEADER_LEN + ipv4::HEADER_LEN;
            let csum = !fold(self.partial + ip_len as u32 + v.tos as u32 + v.frag as u32);
            let ip = if self.udp {
                // One length check for every field patched.
                let h: &mut [u8; L4 + udp::HEADER_LEN] = (&mut out[..L4 + udp::HEADER_LEN]).try_into().expect("42");
                let (head, u) = h.split_at_mut(L4);
                let mut u = UdpPacket::new_unchecked(u);
                u.set_src_port(v.sport);
                u.set_len((ip_len - ipv4::HEADER_LEN) as u16);
                &mut head[ethernet::HEADER_LEN..]
            } else {
                &mut out[ethernet::HEADER_LEN..L4]
            };
            let mut ip = Ipv4Packet::new_unchecked(ip);
            ip.set_total_len(ip_len as u16);
            if v.tos != 0 {
                ip.set_tos(v.tos);
            }
            if v.frag != 0 {
                ip.set_frag_field(ip.frag_field() | v.frag);
            }
            ip.set_checksum(csum);
        } else {
            let payload_len = (ip_len - ipv6::HEADER_LEN) as u16;
            let l4 = ethernet::HEADER_LEN + ipv6::HEADER_LEN;
            Ipv6Packet::new_unchecked(&mut out[ethernet::HEADER_LEN..l4]).set_payload_len(payload_len);
            if self.udp {
                let mut u = UdpPacket::new_unchecked(&mut out[l4..l4 + udp::HEADER_LEN]);
                u.set_src_port(v.sport);
                u.set_len(payload_len);
                if v.udp6_checksum {
                    // RFC 8200 8.1: over the pseudo-header and the whole
                    // datagram; a zero result is sent as 0xffff. The
                    // template's sum covers all but the payload, the source
                    // port and the UDP length (in the pseudo-header and the
                    // UDP header).
                    let c = !fold(sum(&out[total..], self.partial + 2 * payload_len as u32 + v.sport as u32));
                    UdpPacket::new_unchecked(&mut out[l4..]).set_checksum(if c == 0 { 0xffff } else { c });
                }
            }
        }
    }

    /// The Ethernet destination changed (the next hop resolved anew).
    pub fn set_eth_dst(&mut self, mac: [u8; 6]) {
        crate::wire::EthernetFrame::new_unchecked(&mut self.hdr[..]).set_dst_addr(mac);
    }
}

/// Copies a header of 32 to 96 octets (every usual tunnel's) as three
/// fixed 32-octet moves, the last overlapping the others (the bytes are
/// the same): a few vector moves instead of a call to memcpy, which a
/// copy of a length known only at run time becomes.
#[inline(always)]
fn copy_header(dst: &mut [u8], src: &[u8]) {
    const CHUNK: usize = 32;
    let n = src.len();
    if (CHUNK..=3 * CHUNK).contains(&n) && dst.len() == n {
        dst[..CHUNK].copy_from_slice(&src[..CHUNK]);
        if n > 2 * CHUNK {
            dst[CHUNK..2 * CHUNK].copy_from_slice(&src[CHUNK..2 * CHUNK]);
        }
        dst[n - CHUNK..].copy_from_slice(&src[n - CHUNK..]);
    } else {
        dst.copy_from_slice(src);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checksum::udp_checksum;
    use etherparse::{NetSlice, SlicedPacket, TransportSlice};

    fn spec(v6: bool, encap: Encap<'_>) -> OuterSpec<'_> {
        let (src, dst): (IpAddr, IpAddr) = if v6 {
            ("2001:db8::1".parse().unwrap(), "2001:db8::2".parse().unwrap())
        } else {
            ("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap())
        };
        OuterSpec { eth: ([2, 0, 0, 0, 0, 2], [2, 0, 0, 0, 0, 1]), src, dst, ttl: 64, frag: ipv4::DONT_FRAG, encap }
    }

    /// A packet of `payload` behind the header, as etherparse reads it.
    fn encapsulate(o: &OuterHeader, payload: &[u8], v: PerPacket) -> Vec<u8> {
        let mut f = vec![0u8; o.len()];
        f.extend_from_slice(payload);
        o.write(&mut f, v);
        f
    }

    #[test]
    fn udp_tunnels_over_both_families_check_out_with_etherparse() {
        let vxlan = [0x08, 0, 0, 0, 0, 0, 100, 0];
        let payload: Vec<u8> = (0..101u8).collect();
        for v6 in [false, true] {
            let o = OuterHeader::new(&spec(v6, Encap::Udp { dport: 4789, tunnel: &vxlan })).unwrap();
            assert_eq!(o.len(), if v6 { 70 } else { 50 });
            let v = PerPacket { sport: 49_999, udp6_checksum: true, ..PerPacket::default() };
            let f = encapsulate(&o, &payload, v);
            let p = SlicedPacket::from_ethernet(&f).unwrap();
            let Some(TransportSlice::Udp(u)) = &p.transport else { panic!() };
            assert_eq!((u.source_port(), u.destination_port(), u.length() as usize), (49_999, 4789, 8 + 8 + 101));
            assert_eq!(&u.payload()[..8], &vxlan);
            match &p.net {
                Some(NetSlice::Ipv4(ip)) => {
                    let h = ip.header().to_header();
                    assert_eq!(h.header_checksum, h.calc_header_checksum());
                    assert!(h.dont_fragment && u.checksum() == 0, "RFC 7348 5: no UDP checksum over IPv4");
                }
                Some(NetSlice::Ipv6(ip)) => {
                    let (l4, mut zeroed) = (14 + 40, f.clone());
                    zeroed[l4 + 6..l4 + 8].copy_from_slice(&[0, 0]);
                    assert_eq!(u.checksum(), udp_checksum(&zeroed[14..l4], false, &zeroed[l4..]));
                    assert_eq!(ip.header().payload_length() as usize, 8 + 8 + 101);
                }
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn ip_in_ip_copies_tos_and_df_into_a_valid_header() {
        let o = OuterHeader::new(&OuterSpec { frag: 0, ..spec(false, Encap::Ip { protocol: 4 }) }).unwrap();
        assert_eq!(o.len(), 34);
        let f = encapsulate(&o, &[0x45; 40], PerPacket { tos: 0xb8, frag: ipv4::DONT_FRAG, ..PerPacket::default() });
        let p = SlicedPacket::from_ethernet(&f).unwrap();
        let Some(NetSlice::Ipv4(ip)) = &p.net else { panic!() };
        let h = ip.header().to_header();
        assert_eq!((h.dscp.value(), h.ecn.value(), h.dont_fragment, h.protocol.0), (0xb8 >> 2, 0, true, 4));
        assert_eq!((h.total_len as usize, h.header_checksum), (20 + 40, h.calc_header_checksum()));
    }

    #[test]
    fn headers_of_every_length_are_copied_whole() {
        for n in 14..200 {
            let src: Vec<u8> = (0..n as u8).collect();
            let mut dst = vec![0xaa; n];
            copy_header(&mut dst, &src);
            assert_eq!(dst, src, "{n} octets");
        }
    }

    #[test]
    fn mixed_families_are_refused() {
        let mut s = spec(false, Encap::Ip { protocol: 4 });
        s.dst = "2001:db8::2".parse().unwrap();
        assert_eq!(OuterHeader::new(&s), None);
    }
}
