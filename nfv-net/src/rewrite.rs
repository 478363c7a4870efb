//! Rewriting an IPv4 packet's address and port in place, every checksum
//! updated incrementally (RFC 1624 eqn. 3): the IPv4 header's; TCP's and
//! UDP's, whose pseudo-header holds the addresses (RFC 9293 section 3.1,
//! RFC 768; a UDP checksum of 0 means none and stays 0, a computed 0 is sent
//! as 0xffff); ICMP's, which covers the identifier but no pseudo-header
//! (RFC 792).
//!
//! For the stages that translate addresses: NAT44, the load balancer's
//! NAT mode. ICMP errors (RFC 5508 section 4.2) carry the IP header and
//! the first bytes of the packet that caused them: a translator rewrites
//! the outer header and that embedded packet, the embedded IP checksum and, when
//! present, the embedded transport checksum, and the ICMP checksum, which
//! covers all of them, follows each change.
//!
//! Functions return `None`, changing nothing, when the packet is too short
//! for the fields they touch: the caller drops it as malformed.

use crate::checksum::{adjust, delta16, delta32};
use crate::wire::proto;

/// Which endpoint of a packet changes.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Side {
    /// The source (inside to outside).
    Src,
    /// The destination (outside to inside).
    Dst,
}

use crate::be::{rd16, rd32, wr16, wr32};

/// Offset of the checksum in an L4 header, and whether 0 means "none".
fn l4_checksum_at(p: u8) -> Option<(usize, bool)> {
    match p {
        proto::TCP => Some((16, false)),
        proto::UDP => Some((6, true)),
        proto::ICMP => Some((2, false)),
        _ => None,
    }
}

/// Applies the change summed in `delta` to the checksum at `at`, keeping a
/// UDP "no checksum" 0 as it is and never producing 0 for UDP (RFC 768).
#[inline(always)]
fn fix(d: &mut [u8], at: usize, zero_is_none: bool, delta: u32) {
    let c = rd16(d, at);
    if zero_is_none && c == 0 {
        return;
    }
    let n = adjust(c, delta);
    wr16(d, at, if zero_is_none && n == 0 { 0xffff } else { n });
}

/// Rewrites `side`'s address to `addr` in the IPv4 header at `l3`, and,
/// with `l4` (the L4 header is in this packet: not a non-first fragment),
/// its port (TCP/UDP) or echo identifier (ICMP) to `port`. Returns the old
/// (address, port).
#[inline(always)]
pub fn rewrite(
    d: &mut [u8],
    l3: usize,
    l4: Option<usize>,
    p: u8,
    side: Side,
    addr: u32,
    port: u16,
) -> Option<(u32, u16)> {
    let a_at = l3 + if side == Side::Src { 12 } else { 16 };
    if d.len() < l3 + 20 {
        return None;
    }
    let (port_at, csum) = match (l4, p) {
        (None, _) => (None, None),
        (Some(l4), proto::ICMP) => (Some(l4 + 4), l4_checksum_at(p).map(|(o, z)| (l4 + o, z))),
        (Some(l4), proto::TCP | proto::UDP) => {
            (Some(l4 + if side == Side::Src { 0 } else { 2 }), l4_checksum_at(p).map(|(o, z)| (l4 + o, z)))
        }
        (Some(_), _) => (None, None),
    };
    let end = port_at.map_or(0, |a| a + 2).max(csum.map_or(0, |(c, _)| c + 2));
    if d.len() < end {
        return None;
    }
    // RFC 1624 eqn. 3 with every change summed first: HC' = ~(~HC + ~m + m')
    // over each 16-bit word m that changes, one fold per checksum.
    let old_addr = rd32(d, a_at);
    wr32(d, a_at, addr);
    let addr_delta = delta32(old_addr, addr);
    fix(d, l3 + 10, false, addr_delta);
    let mut old_port = 0;
    let mut delta = if p == proto::ICMP { 0 } else { addr_delta };
    if let Some(at) = port_at {
        old_port = rd16(d, at);
        wr16(d, at, port);
        delta += delta16(old_port, port);
    }
    if let Some((c_at, zero_is_none)) = csum {
        fix(d, c_at, zero_is_none, delta);
    }
    Some((old_addr, old_port))
}

/// [`rewrite`] for the usual packet, an IPv4 header without options
/// followed by the whole TCP, UDP or ICMP echo header: the header bytes are
/// taken as one fixed-size array, so none of the accesses below is checked
/// again. `false` (nothing changed) for anything else: use [`rewrite`].
#[inline(always)]
pub fn rewrite_plain(d: &mut [u8], l3: usize, p: u8, side: Side, addr: u32, port: u16) -> bool {
    if d.get(l3) != Some(&0x45) {
        return false;
    }
    let src = side == Side::Src;
    match p {
        proto::TCP => fixed::<40>(d, l3, 20 + if src { 0 } else { 2 }, 36, false, true, src, addr, port),
        proto::UDP => fixed::<28>(d, l3, 20 + if src { 0 } else { 2 }, 26, true, true, src, addr, port),
        proto::ICMP => fixed::<28>(d, l3, 24, 22, false, false, src, addr, port),
        _ => false,
    }
}

/// The rewrite on `N` header bytes at `l3`: port (or identifier) at
/// `port_at`, transport checksum at `csum_at`; `pseudo`: that checksum
/// covers the addresses (not ICMP's).
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn fixed<const N: usize>(
    d: &mut [u8],
    l3: usize,
    port_at: usize,
    csum_at: usize,
    zero_is_none: bool,
    pseudo: bool,
    src: bool,
    addr: u32,
    port: u16,
) -> bool {
    let Some(h) = d.get_mut(l3..l3 + N) else { return false };
    let h: &mut [u8; N] = h.try_into().expect("N bytes");
    let a_at = if src { 12 } else { 16 };
    let old_addr = u32::from_be_bytes([h[a_at], h[a_at + 1], h[a_at + 2], h[a_at + 3]]);
    h[a_at..a_at + 4].copy_from_slice(&addr.to_be_bytes());
    let addr_delta = delta32(old_addr, addr);
    let ip_c = u16::from_be_bytes([h[10], h[11]]);
    h[10..12].copy_from_slice(&adjust(ip_c, addr_delta).to_be_bytes());
    let old_port = u16::from_be_bytes([h[port_at], h[port_at + 1]]);
    h[port_at..port_at + 2].copy_from_slice(&port.to_be_bytes());
    let c = u16::from_be_bytes([h[csum_at], h[csum_at + 1]]);
    if !(zero_is_none && c == 0) {
        let delta = if pseudo { addr_delta } else { 0 } + delta16(old_port, port);
        let n = adjust(c, delta);
        let n = if zero_is_none && n == 0 { 0xffff } else { n };
        h[csum_at..csum_at + 2].copy_from_slice(&n.to_be_bytes());
    }
    true
}

/// ICMP error types translated (RFC 5508 section 4.2 and REQ-3):
/// destination unreachable, time exceeded, parameter problem.
pub fn is_icmp_error(icmp_type: u8) -> bool {
    matches!(icmp_type, 3 | 11 | 12)
}

/// The packet embedded in an ICMP error, as found in the frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Embedded {
    /// Offset of the embedded IPv4 header.
    pub l3: usize,
    /// Offset of its transport header (8 bytes of it at least).
    pub l4: usize,
    /// Its protocol.
    pub proto: u8,
    /// Its source address and port (ICMP: the echo identifier).
    pub src: (u32, u16),
    /// Its destination address and port (ICMP: 0).
    pub dst: (u32, u16),
}

/// The embedded packet of the ICMP error whose ICMP header is at `icmp`,
/// if it is a first fragment of TCP, UDP or an ICMP echo with the 8
/// transport bytes RFC 792 promises.
pub fn embedded(d: &[u8], icmp: usize) -> Option<Embedded> {
    let l3 = icmp + 8;
    let h = d.get(l3..l3 + 20)?;
    let ihl = (h[0] & 0x0f) as usize * 4;
    if h[0] >> 4 != 4 || ihl < 20 || rd16(h, 6) & 0x1fff != 0 {
        return None;
    }
    let l4 = l3 + ihl;
    let t = d.get(l4..l4 + 8)?;
    let p = h[9];
    let (src, dst) = (rd32(h, 12), rd32(h, 16));
    let (sp, dp) = match p {
        proto::TCP | proto::UDP => (rd16(t, 0), rd16(t, 2)),
        // An echo request or reply: the identifier is the "port".
        proto::ICMP if matches!(t[0], 8 | 0) => (rd16(t, 4), 0),
        _ => return None,
    };
    Some(Embedded { l3, l4, proto: p, src: (src, sp), dst: (dst, dp) })
}

/// Translates an ICMP error: the outer header's `outer` side becomes
/// `addr`, and the embedded packet's opposite side (the embedded packet
/// went the other way) becomes `addr`:`port`. Returns `None` (nothing
/// changed) if the frame is too short.
pub fn rewrite_icmp_error(
    d: &mut [u8],
    l3: usize,
    icmp: usize,
    e: &Embedded,
    outer: Side,
    addr: u32,
    port: u16,
) -> Option<()> {
    let inner = if outer == Side::Src { Side::Dst } else { Side::Src };
    rewrite_icmp_embedded(d, icmp, e, inner, addr, port)?;
    rewrite_outer(d, l3, outer, addr);
    Some(())
}

/// The embedded packet of the ICMP error at `icmp`: its `side` becomes
/// `addr`:`port`, its checksums and the ICMP checksum follow. (A load
/// balancer's NAT mode changes both sides of the quoted packet.) `None`,
/// nothing changed, if the frame is too short.
pub fn rewrite_icmp_embedded(d: &mut [u8], icmp: usize, e: &Embedded, side: Side, addr: u32, port: u16) -> Option<()> {
    let c_at = icmp + 2;
    if d.len() < c_at + 2 {
        return None;
    }
    // The embedded transport checksum, if the error carries it.
    let emb_csum = l4_checksum_at(e.proto).map(|(o, z)| (e.l4 + o, z)).filter(|(at, _)| d.len() >= at + 2);
    let old_emb_csum = emb_csum.map(|(at, _)| rd16(d, at));
    let old_emb_ip_csum = rd16(d, e.l3 + 10);
    // The embedded packet: address, port or identifier, its checksums.
    let (old_addr, old_port) = rewrite_embedded(d, e, side, addr, port)?;
    // The ICMP checksum covers the embedded bytes: follow every change.
    let mut delta = delta32(old_addr, addr) + delta16(old_port, port) + delta16(old_emb_ip_csum, rd16(d, e.l3 + 10));
    if let (Some((at, _)), Some(old)) = (emb_csum, old_emb_csum) {
        delta += delta16(old, rd16(d, at));
    }
    fix(d, c_at, false, delta);
    Some(())
}

/// The outer IPv4 header's `side` becomes `addr`, its checksum following
/// (an ICMP message has no pseudo-header).
pub fn rewrite_outer(d: &mut [u8], l3: usize, side: Side, addr: u32) {
    let a_at = l3 + if side == Side::Src { 12 } else { 16 };
    let old_outer = rd32(d, a_at);
    wr32(d, a_at, addr);
    fix(d, l3 + 10, false, delta32(old_outer, addr));
}

/// The embedded packet's `side` to `addr`:`port`, with its IP checksum and
/// its transport checksum when present in the error (a TCP header may be
/// cut after 8 bytes: then only the ports are there).
fn rewrite_embedded(d: &mut [u8], e: &Embedded, side: Side, addr: u32, port: u16) -> Option<(u32, u16)> {
    let l4 = e.l4;
    let a_at = e.l3 + if side == Side::Src { 12 } else { 16 };
    let port_at = match e.proto {
        proto::ICMP => l4 + 4,
        _ => l4 + if side == Side::Src { 0 } else { 2 },
    };
    if d.len() < port_at + 2 {
        return None;
    }
    let old_addr = rd32(d, a_at);
    let old_port = rd16(d, port_at);
    wr32(d, a_at, addr);
    fix(d, e.l3 + 10, false, delta32(old_addr, addr));
    wr16(d, port_at, port);
    if let Some((o, zero_is_none)) = l4_checksum_at(e.proto) {
        let at = l4 + o;
        if d.len() >= at + 2 {
            if e.proto != proto::ICMP {
                fix(d, at, zero_is_none, delta32(old_addr, addr));
            }
            fix(d, at, zero_is_none, delta16(old_port, port));
        }
    }
    Some((old_addr, old_port))
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::{Icmpv4Slice, Icmpv4Type, Ipv4HeaderSlice, PacketBuilder, TcpSlice, UdpSlice};

    const L3: usize = 14;

    fn udp(src: [u8; 4], sport: u16, dst: [u8; 4], dport: u16) -> Vec<u8> {
        let mut f = Vec::new();
        PacketBuilder::ethernet2([1; 6], [2; 6])
            .ipv4(src, dst, 64)
            .udp(sport, dport)
            .write(&mut f, b"hello nat")
            .unwrap();
        f
    }

    fn tcp(src: [u8; 4], sport: u16, dst: [u8; 4], dport: u16) -> Vec<u8> {
        let mut f = Vec::new();
        PacketBuilder::ethernet2([1; 6], [2; 6])
            .ipv4(src, dst, 64)
            .tcp(sport, dport, 7, 1000)
            .syn()
            .write(&mut f, b"abc")
            .unwrap();
        f
    }

    fn ping(src: [u8; 4], dst: [u8; 4], id: u16) -> Vec<u8> {
        let mut f = Vec::new();
        PacketBuilder::ethernet2([1; 6], [2; 6])
            .ipv4(src, dst, 64)
            .icmpv4_echo_request(id, 1)
            .write(&mut f, b"ping data")
            .unwrap();
        f
    }

    /// Every checksum of an Ethernet/IPv4 frame checked by etherparse's
    /// own computation (the IP header's, TCP/UDP over the pseudo-header,
    /// ICMP over the message).
    fn assert_checksums(f: &[u8]) {
        let ip = Ipv4HeaderSlice::from_slice(&f[L3..]).unwrap();
        let h = ip.to_header();
        assert_eq!(h.header_checksum, h.calc_header_checksum(), "IP header checksum");
        let payload = &f[L3 + ip.slice().len()..L3 + h.total_len as usize];
        match h.protocol.0 {
            6 => {
                let t = TcpSlice::from_slice(payload).unwrap();
                let want = t.to_header().calc_checksum_ipv4(&h, t.payload()).unwrap();
                assert_eq!(t.checksum(), want, "TCP checksum");
            }
            17 => {
                let u = UdpSlice::from_slice(payload).unwrap();
                if u.checksum() != 0 {
                    let want = u.to_header().calc_checksum_ipv4(&h, u.payload()).unwrap();
                    assert_eq!(u.checksum(), want, "UDP checksum");
                }
            }
            1 => {
                let i = Icmpv4Slice::from_slice(payload).unwrap();
                assert_eq!(i.checksum(), i.header().icmp_type.calc_checksum(i.payload()), "ICMP checksum");
            }
            _ => {}
        }
    }

    #[test]
    fn source_and_destination_rewrites_keep_every_checksum_right() {
        for (f, p) in [
            (udp([10, 0, 0, 1], 5000, [198, 51, 100, 2], 53), proto::UDP),
            (tcp([10, 0, 0, 1], 40000, [198, 51, 100, 2], 80), proto::TCP),
            (ping([10, 0, 0, 1], [198, 51, 100, 2], 77), proto::ICMP),
        ] {
            let mut f = f;
            let old = rewrite(&mut f, L3, Some(L3 + 20), p, Side::Src, 0xc633_640a, 61000).unwrap();
            assert_eq!(old.0, 0x0a00_0001);
            assert_eq!(&f[L3 + 12..L3 + 16], &[198, 51, 100, 10]);
            assert_checksums(&f);
            if p != proto::ICMP {
                rewrite(&mut f, L3, Some(L3 + 20), p, Side::Dst, 0x0a00_0009, 8080).unwrap();
                assert_eq!(u16::from_be_bytes([f[L3 + 22], f[L3 + 23]]), 8080);
                assert_checksums(&f);
            } else {
                assert_eq!(u16::from_be_bytes([f[L3 + 24], f[L3 + 25]]), 61000, "echo identifier");
            }
        }
    }

    #[test]
    fn the_plain_rewrite_equals_the_general_one() {
        for (f, p) in [
            (udp([10, 0, 0, 1], 5000, [198, 51, 100, 2], 53), proto::UDP),
            (tcp([10, 0, 0, 1], 40000, [198, 51, 100, 2], 80), proto::TCP),
            (ping([10, 0, 0, 1], [198, 51, 100, 2], 77), proto::ICMP),
        ] {
            for side in [Side::Src, Side::Dst] {
                let (mut a, mut b) = (f.clone(), f.clone());
                assert!(rewrite_plain(&mut a, L3, p, side, 0xc633_640a, 61000));
                rewrite(&mut b, L3, Some(L3 + 20), p, side, 0xc633_640a, 61000).unwrap();
                assert_eq!(a, b, "{p} {side:?}");
                assert_checksums(&a);
            }
        }
        let mut short = udp([10, 0, 0, 1], 5000, [198, 51, 100, 2], 53);
        short.truncate(L3 + 27);
        assert!(!rewrite_plain(&mut short, L3, proto::UDP, Side::Src, 1, 2));
    }

    #[test]
    fn a_zero_udp_checksum_stays_zero_and_a_short_packet_is_left_alone() {
        let mut f = udp([10, 0, 0, 1], 5000, [198, 51, 100, 2], 53);
        f[L3 + 26..L3 + 28].copy_from_slice(&[0, 0]);
        rewrite(&mut f, L3, Some(L3 + 20), proto::UDP, Side::Src, 0xc633_640a, 61000).unwrap();
        assert_eq!(&f[L3 + 26..L3 + 28], &[0, 0]);
        let short = f[..L3 + 24].to_vec();
        let mut s = short.clone();
        assert_eq!(rewrite(&mut s, L3, Some(L3 + 20), proto::UDP, Side::Src, 1, 2), None);
        assert_eq!(s, short, "nothing changed");
    }

    /// A router's "port unreachable" about a UDP datagram we sent out
    /// from the pool address: translated back, the inside host sees an
    /// error about the datagram it sent, every checksum right.
    #[test]
    fn icmp_errors_translate_the_embedded_packet_both_ways() {
        for (inner, p) in [
            (udp([198, 51, 100, 10], 61000, [198, 51, 100, 2], 53), proto::UDP),
            (tcp([198, 51, 100, 10], 61000, [198, 51, 100, 2], 80), proto::TCP),
            (ping([198, 51, 100, 10], [198, 51, 100, 2], 61000), proto::ICMP),
        ] {
            // The error quotes the IP header and 8 bytes (RFC 792), or more.
            for quoted in [28, inner.len() - L3] {
                let mut f = Vec::new();
                PacketBuilder::ethernet2([3; 6], [4; 6])
                    .ipv4([203, 0, 113, 1], [198, 51, 100, 10], 64)
                    .icmpv4(Icmpv4Type::DestinationUnreachable(etherparse::icmpv4::DestUnreachableHeader::Port))
                    .write(&mut f, &inner[L3..L3 + quoted])
                    .unwrap();
                let icmp = L3 + 20;
                let e = embedded(&f, icmp).unwrap();
                assert_eq!((e.proto, e.src), (p, (0xc633_640a, 61000)));
                rewrite_icmp_error(&mut f, L3, icmp, &e, Side::Dst, 0x0a00_0001, 5000).unwrap();
                assert_checksums(&f);
                let emb = embedded(&f, icmp).unwrap();
                assert_eq!(emb.src, (0x0a00_0001, 5000), "embedded source is the inside host's");
                assert_eq!(&f[L3 + 16..L3 + 20], &[10, 0, 0, 1], "outer destination");
                let ip = Ipv4HeaderSlice::from_slice(&f[emb.l3..]).unwrap().to_header();
                assert_eq!(ip.header_checksum, ip.calc_header_checksum(), "embedded IP checksum");
                if quoted > 28 && p == proto::UDP {
                    let u = UdpSlice::from_slice(&f[emb.l4..]).unwrap();
                    assert_eq!(u.checksum(), u.to_header().calc_checksum_ipv4(&ip, u.payload()).unwrap());
                }
                if quoted > 28 && p == proto::ICMP {
                    let i = Icmpv4Slice::from_slice(&f[emb.l4..]).unwrap();
                    assert_eq!(i.checksum(), i.header().icmp_type.calc_checksum(i.payload()));
                }
                // And back the other way (an inside host's error about an
                // inbound packet): outer source, embedded destination.
                let mut g = f.clone();
                rewrite_icmp_error(&mut g, L3, icmp, &emb, Side::Src, 0xc633_6463, 1234).unwrap();
                assert_checksums(&g);
                let back = embedded(&g, icmp).unwrap();
                // An echo's identifier is its one "port", on either side.
                let want = if p == proto::ICMP { ((0xc633_6463, 0), 1234) } else { ((0xc633_6463, 1234), 5000) };
                assert_eq!((back.dst, back.src.1), want);
            }
        }
        let mut junk = vec![0u8; L3 + 20 + 8 + 10];
        assert_eq!(embedded(&junk, L3 + 20), None);
        junk[L3 + 28] = 0x45;
        assert_eq!(embedded(&junk, L3 + 20), None, "embedded header cut short");
    }
}
