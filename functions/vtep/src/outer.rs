//! A tunnel packet as it arrives on the underlay: the outer Ethernet,
//! IP and UDP headers the input stage parsed, checked (destination,
//! fragments, lengths, the UDP checksum: RFC 768, RFC 8200 section 8.1,
//! RFC 6935) and the tunnel header after them, up to the inner frame.

use std::net::IpAddr;

use nfv_core::packet::flags;
use nfv_net::checksum::{fold, sum, udp_pseudo_sum};
use nfv_net::wire::{Ipv4Packet, Ipv6Packet, UdpPacket, ethertype, ipv6, proto, udp};

use crate::stage::VtepDrop;

/// A tunnel packet, validated up to the inner frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TunnelPacket {
    /// Outer source address (the remote VTEP).
    pub src: IpAddr,
    /// Outer destination address.
    pub dst: IpAddr,
    /// Virtual network identifier.
    pub vni: u32,
    /// Where the inner Ethernet frame lies in the packet.
    pub inner: std::ops::Range<usize>,
}

/// Checks an outer Ethernet/IP/UDP packet to `udp_port` (parsed into
/// `m` by the input stage) and its tunnel header, and finds the inner
/// frame. `Ok(None)`: not UDP to that port, not tunnel traffic. With
/// `local`, a packet to another address is refused before any checksum
/// work; whether the VNI is known is the caller's business.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub fn parse_tunnel_packet(
    d: &[u8],
    m: &nfv_core::Meta,
    tunnel: crate::wire::Tunnel,
    udp_port: u16,
    local: Option<IpAddr>,
    accept_zero_udp6_checksum: bool,
    known: impl Fn(u16, u8) -> bool,
) -> Result<Option<TunnelPacket>, VtepDrop> {
    if m.flags & flags::L3_OK == 0 && matches!(m.ethertype, ethertype::IPV4 | ethertype::IPV6) {
        // An IP header the parser refused (a total length past the end of
        // the frame, a bad IHL): whoever it is for, it is not forwarded.
        return Err(VtepDrop::Truncated);
    }
    if m.flags & flags::L4_OK == 0 || m.l4_proto != proto::UDP {
        return Ok(None);
    }
    let (l3, l4) = (m.l3_off as usize, m.l4_off as usize);
    let udp = d.get(l4..).and_then(|u| UdpPacket::new_checked(u).ok()).ok_or(VtepDrop::Truncated)?;
    if udp.dst_port() != udp_port {
        return Ok(None);
    }
    let v4 = m.ethertype == ethertype::IPV4;
    let (ip4, ip6) = (Ipv4Packet::new_unchecked(&d[l3..]), Ipv6Packet::new_unchecked(&d[l3..]));
    // The destination compared as bytes, before any address is built.
    let ours = match local {
        None => true,
        Some(IpAddr::V4(a)) => v4 && ip4.dst_addr() == a.octets(),
        Some(IpAddr::V6(a)) => !v4 && ip6.dst_addr() == a.octets(),
    };
    if !ours {
        return Err(VtepDrop::WrongDestination);
    }
    let (src, dst) = if v4 {
        (IpAddr::from(ip4.src_addr()), IpAddr::from(ip4.dst_addr()))
    } else {
        (IpAddr::from(ip6.src_addr()), IpAddr::from(ip6.dst_addr()))
    };
    if m.flags & flags::FRAGMENT != 0 {
        return Err(VtepDrop::OuterFragment);
    }
    let udp_len = udp.len() as usize;
    let end = l4 + udp_len;
    // Within the IP packet, not just the frame: Ethernet padding after it
    // is not tunnel payload.
    let ip_end = if v4 { l3 + ip4.total_len() as usize } else { l3 + ipv6::HEADER_LEN + ip6.payload_len() as usize };
    if udp_len < 8 || end > d.len().min(ip_end) {
        return Err(VtepDrop::Truncated);
    }
    // RFC 768 / RFC 8200 section 8.1: a non-zero checksum is verified;
    // zero means "none" on IPv4 and is refused on IPv6 unless the tunnel
    // allows it (RFC 6935).
    if udp.checksum() == 0 {
        if !v4 && !accept_zero_udp6_checksum {
            return Err(VtepDrop::ZeroUdp6Checksum);
        }
    } else if fold(udp_pseudo_sum(&d[l3..], v4, udp_len) + sum(&d[l4..end], 0)) != 0xffff {
        return Err(VtepDrop::BadUdpChecksum);
    }
    let h = tunnel.parse(&d[l4 + udp::HEADER_LEN..end], known)?;
    let inner = l4 + udp::HEADER_LEN + h.len;
    if end - inner < 14 {
        return Err(VtepDrop::Truncated);
    }
    Ok(Some(TunnelPacket { src, dst, vni: h.vni, inner: inner..end }))
}
