//! One pass over L2-L4 headers that fills [`Meta`] for every later stage,
//! and the flow hash used for load spreading and encapsulation entropy.
//!
//! Nothing here can read past the data it is given: Ethernet and IPv4, on
//! every packet's path, are read from fixed-size arrays taken with
//! `first_chunk` (one length check, then no per-field bounds checks); the
//! IPv6 header through nfv-net's checked view.

use nfv_net::wire::{Ipv4Packet, Ipv6Packet, ethertype, proto};

use crate::packet::{Meta, PacketMut, flags};

/// Why a frame could not be parsed at all.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParseError {
    /// Shorter than an Ethernet header.
    Runt,
    /// A VLAN tag is cut off.
    TruncatedVlan,
}

/// Parses Ethernet (with up to two VLAN tags), IPv4/IPv6 and the L4 header
/// position into `meta`. L3/L4 problems are not errors: the flags stay
/// clear and stages that need those layers drop under their own reason.
#[inline]
pub fn classify(data: &[u8], meta: &mut Meta) -> Result<(), ParseError> {
    meta.flags &= flags::TRACE | flags::HASH_OK | flags::CSUM_OFFLOAD | flags::NSH_PROXIED;
    meta.l4_off = 0;
    meta.l4_proto = 0;
    let eth = data.first_chunk::<14>().ok_or(ParseError::Runt)?;
    let mut et = u16::from_be_bytes([eth[12], eth[13]]);
    let mut off = 14;
    if is_vlan_tag(et) {
        (et, off) = skip_vlan_tags(data, et)?;
    }
    meta.ethertype = et;
    meta.l3_off = off as u16;
    let l3 = &data[off..];
    match et {
        ethertype::IPV4 => classify_ipv4(l3, off, meta),
        ethertype::IPV6 => classify_ipv6(l3, off, meta),
        _ => {}
    }
    Ok(())
}

#[inline(always)]
fn is_vlan_tag(et: u16) -> bool {
    matches!(et, ethertype::VLAN | ethertype::QINQ | ethertype::QINQ_OLD)
}

/// IEEE 802.1Q / 802.1ad: up to two tags; returns the inner EtherType and
/// the L3 offset.
#[cold]
fn skip_vlan_tags(data: &[u8], mut et: u16) -> Result<(u16, usize), ParseError> {
    let mut off = 14;
    for _ in 0..2 {
        if !is_vlan_tag(et) {
            break;
        }
        let tag = data.get(off..off + 4).ok_or(ParseError::TruncatedVlan)?;
        et = u16::from_be_bytes([tag[2], tag[3]]);
        off += 4;
    }
    Ok((et, off))
}

/// RFC 791 / RFC 1812 section 5.2.2 header sanity: version, IHL, total length.
#[inline(always)]
fn classify_ipv4(l3: &[u8], off: usize, meta: &mut Meta) {
    let Some(h) = l3.first_chunk::<20>() else { return };
    let ihl = (h[0] & 0x0f) as usize * 4;
    let total = u16::from_be_bytes([h[2], h[3]]) as usize;
    if h[0] >> 4 != 4 || ihl < 20 || ihl > total || total > l3.len() {
        return;
    }
    meta.flags |= flags::L3_OK;
    meta.l4_proto = h[9];
    // Flags and fragment offset (RFC 791 section 3.1): MF is 0x2000.
    let frag = u16::from_be_bytes([h[6], h[7]]);
    if frag & 0x3fff != 0 {
        meta.flags |= flags::FRAGMENT;
        if frag & 0x1fff != 0 {
            return; // no L4 header in a non-first fragment
        }
    }
    set_l4(&l3[ihl..total], off + ihl, meta);
}

/// RFC 8200: fixed header, then the extension header chain (sections 4.3-4.6)
/// up to the upper-layer header.
fn classify_ipv6(l3: &[u8], off: usize, meta: &mut Meta) {
    // Cut short or not version 6: nothing parsed.
    let Ok(ip) = Ipv6Packet::new_checked(l3) else { return };
    let end = 40 + ip.payload_len() as usize;
    if end > l3.len() || end == 40 && ip.next_header() == 0 {
        return; // truncated, or a jumbogram we do not handle
    }
    meta.flags |= flags::L3_OK;
    let mut next = ip.next_header();
    let mut pos = 40usize;
    for _ in 0..8 {
        let ext_len = match next {
            0 | 43 | 60 => l3.get(pos + 1).map(|&l| (l as usize + 1) * 8),
            51 => l3.get(pos + 1).map(|&l| (l as usize + 2) * 4),
            44 => {
                let Some(fh) = l3.get(pos..pos + 8) else { break };
                meta.flags |= flags::FRAGMENT;
                if u16::from_be_bytes([fh[2], fh[3]]) >> 3 != 0 {
                    meta.l4_proto = fh[0];
                    return;
                }
                Some(8)
            }
            _ => {
                meta.l4_proto = next;
                set_l4(&l3[pos.min(end)..end], off + pos, meta);
                return;
            }
        };
        let Some(len) = ext_len.filter(|&l| pos + l <= end) else { break };
        next = l3[pos];
        pos += len;
    }
    // Too many or truncated extension headers: L3 is fine, L4 unknown.
    meta.l4_proto = next;
}

/// Records the L4 offset and whether its fixed header fits in `l4`.
#[inline(always)]
fn set_l4(l4: &[u8], l4_off: usize, meta: &mut Meta) {
    meta.l4_off = l4_off as u16;
    let fits = match meta.l4_proto {
        proto::TCP => l4.len() >= 20 && (l4[12] >> 4) as usize * 4 >= 20,
        proto::UDP | proto::ICMP | proto::ICMPV6 => l4.len() >= 8,
        proto::SCTP => l4.len() >= 12,
        _ => false,
    };
    if fits {
        meta.flags |= flags::L4_OK;
    }
}

/// Symmetric 5-tuple hash: both directions of a flow hash alike, so a
/// software steering step can keep a flow's two halves on one worker.
pub fn flow_hash(data: &[u8], meta: &Meta) -> u32 {
    if meta.flags & flags::L3_OK == 0 {
        return mix(meta.ethertype as u32, 0, 0);
    }
    let l3 = meta.l3_off as usize;
    let (a, b) = match meta.ethertype {
        ethertype::IPV4 => {
            let ip = Ipv4Packet::new_unchecked(&data[l3..]);
            (ip.src(), ip.dst())
        }
        _ => {
            let ip = Ipv6Packet::new_unchecked(&data[l3..]);
            (fold_v6(ip.src_addr()), fold_v6(ip.dst_addr()))
        }
    };
    let ports = if meta.flags & flags::L4_OK != 0 && matches!(meta.l4_proto, proto::TCP | proto::UDP | proto::SCTP) {
        let p = meta.l4_off as usize;
        let (s, d) = nfv_net::wire::ports(&data[p..]);
        (s.min(d) as u32) << 16 | s.max(d) as u32
    } else {
        0
    };
    mix(a.min(b) ^ meta.l4_proto as u32, a.max(b), ports)
}

/// An IPv6 address folded to 32 bits by exclusive or of its words.
#[inline(always)]
fn fold_v6(a: [u8; 16]) -> u32 {
    let w = |i: usize| u32::from_be_bytes([a[i], a[i + 1], a[i + 2], a[i + 3]]);
    w(0) ^ w(4) ^ w(8) ^ w(12)
}

/// murmur3's 32-bit finaliser over three words.
#[inline(always)]
fn mix(a: u32, b: u32, c: u32) -> u32 {
    let mut h = a.wrapping_mul(0x9e37_79b1) ^ b.rotate_left(13) ^ c.wrapping_mul(0x85eb_ca6b);
    h ^= h >> 16;
    h = h.wrapping_mul(0x85eb_ca6b);
    h ^= h >> 13;
    h = h.wrapping_mul(0xc2b2_ae35);
    h ^ (h >> 16)
}

impl PacketMut<'_> {
    /// The flow hash, computed on first use and cached in the metadata.
    #[inline]
    pub fn flow_hash(&mut self) -> u32 {
        if self.meta().flags & flags::HASH_OK == 0 {
            let h = flow_hash(self.data(), self.meta());
            let m = self.meta_mut();
            m.hash = h;
            m.flags |= flags::HASH_OK;
        }
        self.meta().hash
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::PacketBuilder;

    fn udp4(src: [u8; 4], dst: [u8; 4], sp: u16, dp: u16) -> Vec<u8> {
        let mut out = Vec::new();
        PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
            .ipv4(src, dst, 64)
            .udp(sp, dp)
            .write(&mut out, &[1, 2, 3, 4])
            .unwrap();
        out
    }

    #[test]
    fn finds_l3_l4_behind_vlan_tags() {
        let mut out = Vec::new();
        PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
            .double_vlan(etherparse::VlanId::try_new(10).unwrap(), etherparse::VlanId::try_new(20).unwrap())
            .ipv6([1; 16], [2; 16], 64)
            .tcp(1000, 80, 1, 1000)
            .write(&mut out, &[0; 10])
            .unwrap();
        let mut m = Meta::default();
        classify(&out, &mut m).unwrap();
        assert_eq!((m.ethertype, m.l3_off, m.l4_off, m.l4_proto), (0x86dd, 22, 62, 6));
        assert_eq!(m.flags & (flags::L3_OK | flags::L4_OK), flags::L3_OK | flags::L4_OK);
    }

    #[test]
    fn truncated_ip_is_not_ok_and_runt_is_an_error() {
        let mut pkt = udp4([10, 0, 0, 1], [10, 0, 0, 2], 1, 2);
        pkt.truncate(30);
        let mut m = Meta::default();
        classify(&pkt, &mut m).unwrap();
        assert_eq!(m.flags & flags::L3_OK, 0);
        assert_eq!(classify(&pkt[..13], &mut m), Err(ParseError::Runt));
    }

    #[test]
    fn ipv4_fragments_carry_l4_only_in_the_first() {
        let pkt = udp4([10, 0, 0, 1], [10, 0, 0, 2], 1, 2);
        let parse = |flags_and_offset: u16| {
            let mut p = pkt.clone();
            p[20..22].copy_from_slice(&flags_and_offset.to_be_bytes());
            let mut m = Meta::default();
            classify(&p, &mut m).unwrap();
            m.flags
        };
        // DF only: not a fragment.
        assert_eq!(parse(0x4000) & (flags::FRAGMENT | flags::L4_OK), flags::L4_OK);
        // MF, offset 0: the first fragment still starts with the UDP header.
        assert_eq!(parse(0x2000) & (flags::FRAGMENT | flags::L4_OK), flags::FRAGMENT | flags::L4_OK);
        // Offset 185 (x 8 bytes), MF clear: the last fragment, no L4 header.
        assert_eq!(parse(185) & (flags::FRAGMENT | flags::L4_OK | flags::L3_OK), flags::FRAGMENT | flags::L3_OK);
    }

    #[test]
    fn hash_is_symmetric_and_spreads() {
        let fwd = udp4([10, 0, 0, 1], [10, 0, 0, 2], 1234, 53);
        let rev = udp4([10, 0, 0, 2], [10, 0, 0, 1], 53, 1234);
        let other = udp4([10, 0, 0, 1], [10, 0, 0, 2], 1235, 53);
        let h = |p: &[u8]| {
            let mut m = Meta::default();
            classify(p, &mut m).unwrap();
            flow_hash(p, &m)
        };
        assert_eq!(h(&fwd), h(&rev));
        assert_ne!(h(&fwd), h(&other));
    }
}
