//! Refusals written into the refused packet's own frame, back to its
//! sender: a TCP reset (RFC 9293 section 3.10.7.1) or an ICMP destination
//! unreachable (RFC 792; "fragmentation needed" with its next-hop MTU,
//! RFC 1191) — what the kernel's `REJECT` target sends, what kube-proxy
//! answers for a Service without endpoints, what a tunnel endpoint tells a
//! sender whose packet is too big for the tunnel. IPv4, and the rules on
//! when an ICMP error may be sent for either family. The caller sends the
//! packet back out of the port it came in on.

use crate::packet::{Meta, PacketMut, flags};
use nfv_net::checksum;
use nfv_net::icmp_error::{self, IcmpError};
use nfv_net::wire::{Ipv4Packet, Ipv4Repr, Ipv6Packet, TcpPacket, ethertype, icmp, ipv4, ipv6, proto, tcp};

/// Why a packet gets no refusal (the caller drops it instead).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoRefusal {
    /// Not a parsed IPv4 packet of the protocol asked for, or a later
    /// fragment.
    NotApplicable,
    /// A reset is never answered (RFC 9293 3.10.7.1), nor is an ICMP
    /// error or a packet to a group address (RFC 1812 4.3.2.7).
    WouldAnswerARefusal,
}

/// ICMP destination unreachable codes (RFC 792, RFC 1812 5.2.7.1).
pub mod code {
    /// The host's port is closed (a UDP service without servers).
    pub const PORT_UNREACHABLE: u8 = 3;
    /// Too big to forward with DF set (RFC 1191: with the next-hop MTU).
    pub const FRAGMENTATION_NEEDED: u8 = 4;
    /// Administratively prohibited (RFC 1812).
    pub const ADMIN_PROHIBITED: u8 = 13;
}

/// True when the packet (`d`, parsed into `m`) may be answered with an
/// ICMP error: not about an ICMP error, nor a non-first fragment, nor from
/// an address that is not one host (RFC 1812 4.3.2.7; RFC 4443 2.4(e)),
/// nor, over IPv4, to a broadcast or group address (IPv6 answers those
/// with Packet Too Big, RFC 4443 2.4(e.3)).
pub fn may_answer_with_icmp_error(d: &[u8], m: &Meta) -> bool {
    let l3 = m.l3_off as usize;
    let l4 = m.l4_off as usize;
    let icmp_type = (m.flags & flags::L4_OK != 0).then(|| d.get(l4).copied()).flatten();
    match m.ethertype {
        ethertype::IPV4 => {
            let ip = Ipv4Packet::new_unchecked(&d[l3..]);
            let (src, dst, non_first) = (ip.src_addr(), ip.dst_addr(), ip.is_later_fragment());
            let icmp_error = m.l4_proto == proto::ICMP && !matches!(icmp_type, Some(0 | 8 | 13 | 14));
            let not_one_host = |a: [u8; 4]| a[0] >= 224 || a == [0; 4] || a == [255; 4];
            !(non_first || icmp_error || not_one_host(src) || not_one_host(dst))
        }
        ethertype::IPV6 => {
            let src = Ipv6Packet::new_unchecked(&d[l3..]).src_addr();
            let (src0, unspecified) = (src[0], src == [0; 16]);
            let icmp_error = m.l4_proto == proto::ICMPV6 && icmp_type.is_none_or(|t| t < 128);
            !(icmp_error || src0 == 0xff || unspecified || m.flags & flags::FRAGMENT != 0 && m.l4_off == 0)
        }
        _ => false,
    }
}

/// The sender's and the receiver's IPv4 addresses, the header length and
/// the total length of `p`'s IPv4 packet, when it may be refused.
fn ipv4(p: &PacketMut<'_>) -> Result<([u8; 4], [u8; 4], usize, usize), NoRefusal> {
    let m = p.meta();
    if m.ethertype != ethertype::IPV4 || m.flags & flags::L3_OK == 0 {
        return Err(NoRefusal::NotApplicable);
    }
    if !may_answer_with_icmp_error(p.data(), m) {
        return Err(NoRefusal::WouldAnswerARefusal);
    }
    let ip = Ipv4Packet::new_unchecked(&p.data()[m.l3_off as usize..]);
    Ok((ip.src_addr(), ip.dst_addr(), ip.header_len(), ip.total_len() as usize))
}

/// Back to the sender: Ethernet destination its source, source `our_mac`.
fn turn_ethernet(d: &mut [u8], our_mac: [u8; 6]) {
    d.copy_within(6..12, 0);
    d[6..12].copy_from_slice(&our_mac);
}

/// Turns the TCP segment `p` into the reset its sender gets from its
/// destination (RFC 9293 3.10.7.1): to a segment with ACK, `<SEQ=SEG.ACK>
/// <CTL=RST>`; else `<SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>`.
pub fn tcp_reset(p: &mut PacketMut<'_>, our_mac: [u8; 6]) -> Result<(), NoRefusal> {
    let m = p.meta();
    // A fragment is not reset: what it acknowledges would be partial.
    if m.l4_proto != proto::TCP || m.flags & (flags::L4_OK | flags::FRAGMENT) != flags::L4_OK {
        return Err(NoRefusal::NotApplicable);
    }
    let (src, dst, ihl, total) = ipv4(p)?;
    let (l3, l4) = (p.meta().l3_off as usize, p.meta().l4_off as usize);
    // The parser checked the 20 octets (`L4_OK`).
    let t = TcpPacket::new_unchecked(&p.data()[l4..]);
    let ctl = t.flags();
    if ctl & tcp::flags::RST != 0 {
        return Err(NoRefusal::WouldAnswerARefusal);
    }
    let (sport, dport, seq, ack) = (t.src_port(), t.dst_port(), t.seq_number(), t.ack_number());
    let data = total.saturating_sub(ihl + t.header_len()) as u32;
    let (seq, ack, ctl) = if ctl & tcp::flags::ACK != 0 {
        (ack, 0, tcp::flags::RST)
    } else {
        let len = data + (ctl & tcp::flags::SYN != 0) as u32 + (ctl & tcp::flags::FIN != 0) as u32;
        (0, seq.wrapping_add(len), tcp::flags::RST | tcp::flags::ACK)
    };
    let l4 = l3 + ipv4::HEADER_LEN;
    p.set_len(l4 + tcp::HEADER_LEN).map_err(|_| NoRefusal::NotApplicable)?;
    let d = p.data_mut();
    turn_ethernet(d, our_mac);
    let ip = Ipv4Repr {
        src: dst,
        dst: src,
        protocol: proto::TCP,
        payload_len: tcp::HEADER_LEN,
        ttl: 64,
        tos: 0,
        ident: 0,
        frag_field: ipv4::DONT_FRAG,
    };
    ip.emit(&mut d[l3..]);
    let h = &mut d[l4..l4 + tcp::HEADER_LEN];
    let mut r = TcpPacket::new_unchecked(&mut *h);
    r.set_src_port(dport);
    r.set_dst_port(sport);
    r.set_seq_number(seq);
    r.set_ack_number(ack);
    r.set_header_len(tcp::HEADER_LEN);
    r.set_flags(ctl);
    r.set_window(0);
    r.set_checksum(0);
    r.set_urgent(0);
    let pseudo = checksum::sum(&dst, checksum::sum(&src, proto::TCP as u32 + tcp::HEADER_LEN as u32));
    let c = !checksum::fold(checksum::sum(h, pseudo));
    TcpPacket::new_unchecked(h).set_checksum(c);
    let m = p.meta_mut();
    m.l4_off = l4 as u16;
    m.flags &= !flags::HASH_OK;
    Ok(())
}

/// What an ICMP destination unreachable says, besides what it quotes.
#[derive(Clone, Copy, Debug)]
pub struct Unreachable {
    /// The code ([`code`]).
    pub code: u8,
    /// Its source: `None` for the refused packet's destination (a host
    /// refusing), else a router's address.
    pub from: Option<[u8; 4]>,
    /// The next-hop MTU of "fragmentation needed" (RFC 1191), else 0.
    pub mtu: u16,
    /// Octets of the refused packet to quote: at least its header and
    /// eight octets (RFC 792), at most all of it; a router quotes as much
    /// as fits 576 octets (RFC 1812 4.3.2.3): 548.
    pub quote: usize,
}

/// Turns `p` into the ICMP destination unreachable `u` its sender gets,
/// quoting its IP packet as received.
pub fn icmp_unreachable(p: &mut PacketMut<'_>, u: Unreachable, our_mac: [u8; 6]) -> Result<(), NoRefusal> {
    let (src, dst, ihl, total) = ipv4(p)?;
    let l3 = p.meta().l3_off as usize;
    let q = u.quote.max(ihl + 8).min(total);
    let e = IcmpError {
        msg_type: icmp::v4::DEST_UNREACHABLE,
        code: u.code,
        rest: u.mtu as u32,
        from: u.from.unwrap_or(dst),
        to: src,
    };
    let len = p.len();
    p.set_len(len.max(l3 + icmp_error::V4_OVERHEAD + q)).map_err(|_| NoRefusal::NotApplicable)?;
    let d = p.data_mut();
    turn_ethernet(d, our_mac);
    let n = icmp_error::write_v4(&mut d[l3..], &e, q);
    p.set_len(l3 + n).map_err(|_| NoRefusal::NotApplicable)?;
    let m = p.meta_mut();
    (m.l4_off, m.l4_proto) = ((l3 + ipv4::HEADER_LEN) as u16, proto::ICMP);
    m.flags &= !(flags::HASH_OK | flags::FRAGMENT);
    Ok(())
}

/// Turns the IPv6 packet `p` into the ICMPv6 error `msg_type`/`code` with
/// the four octets `rest` (a Packet Too Big's MTU), from `from` to its
/// sender, quoting as much of it as fits the minimum MTU (RFC 4443
/// 2.4(c)); VLAN tags stay, the reply goes back the way it came.
pub fn icmp6_error(
    p: &mut PacketMut<'_>,
    (msg_type, code, rest): (u8, u8, u32),
    from: [u8; 16],
    our_mac: [u8; 6],
) -> Result<(), NoRefusal> {
    let m = p.meta();
    if m.ethertype != ethertype::IPV6 || m.flags & flags::L3_OK == 0 {
        return Err(NoRefusal::NotApplicable);
    }
    if !may_answer_with_icmp_error(p.data(), m) {
        return Err(NoRefusal::WouldAnswerARefusal);
    }
    let l3 = m.l3_off as usize;
    let to = Ipv6Packet::new_unchecked(&p.data()[l3..]).src_addr();
    let q = (p.len() - l3).min(MIN_MTU_V6 - icmp_error::V6_OVERHEAD);
    let len = p.len();
    p.set_len(len.max(l3 + icmp_error::V6_OVERHEAD + q)).map_err(|_| NoRefusal::NotApplicable)?;
    let d = p.data_mut();
    turn_ethernet(d, our_mac);
    let e = IcmpError { msg_type, code, rest, from, to };
    let n = icmp_error::write_v6(&mut d[l3..], &e, q);
    p.set_len(l3 + n).map_err(|_| NoRefusal::NotApplicable)?;
    let m = p.meta_mut();
    (m.l4_off, m.l4_proto) = ((l3 + ipv6::HEADER_LEN) as u16, proto::ICMPV6);
    m.flags &= !(flags::HASH_OK | flags::FRAGMENT);
    Ok(())
}

/// IPv6's minimum link MTU (RFC 8200 section 5).
pub const MIN_MTU_V6: usize = 1280;
