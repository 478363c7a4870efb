//! IPv4 header view (RFC 791 section 3.1).

use super::{Error, field};
use crate::checksum;

/// Offsets of the fixed header's fields.
mod f {
    use super::field::{Field, Rest};
    pub const VER_IHL: usize = 0;
    pub const TOS: usize = 1;
    pub const LENGTH: Field = 2..4;
    pub const IDENT: Field = 4..6;
    pub const FLG_OFF: Field = 6..8;
    pub const TTL: usize = 8;
    pub const PROTOCOL: usize = 9;
    pub const CHECKSUM: Field = 10..12;
    pub const SRC: Field = 12..16;
    pub const DST: Field = 16..20;
    pub const ADDRS: Field = 12..20;
    pub const OPTIONS: Rest = 20..;
}

/// Length of a header without options.
pub const HEADER_LEN: usize = 20;

/// "Don't Fragment" in the flags and fragment offset field.
pub const DONT_FRAG: u16 = 0x4000;
/// "More Fragments".
pub const MORE_FRAGS: u16 = 0x2000;
/// The fragment offset, in 8-octet units.
pub const FRAG_OFFSET: u16 = 0x1fff;

super::view! {
    /// A read/write view of an IPv4 header at the start of `buffer`.
    Ipv4Packet
}

impl<T: AsRef<[u8]>> Ipv4Packet<T> {
    /// A view of a well-formed header: version 4, header length at least
    /// 20 and within the buffer, total length covering the header.
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self, Error> {
        let p = Self::new_unchecked(buffer);
        p.check()?;
        Ok(p)
    }

    /// What `new_checked` checks.
    #[inline]
    pub fn check(&self) -> Result<(), Error> {
        let d = self.buffer.as_ref();
        if d.len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        let hl = self.header_len();
        if self.version() != 4 || hl < HEADER_LEN || (self.total_len() as usize) < hl {
            return Err(Error::Malformed);
        }
        if d.len() < hl {
            return Err(Error::Truncated);
        }
        Ok(())
    }

    /// Version field (4).
    #[inline(always)]
    pub fn version(&self) -> u8 {
        self.d()[f::VER_IHL] >> 4
    }

    /// Header length in octets (IHL times four).
    #[inline(always)]
    pub fn header_len(&self) -> usize {
        (self.d()[f::VER_IHL] & 0x0f) as usize * 4
    }

    /// Type of service octet: DSCP and ECN (RFC 2474, RFC 3168).
    #[inline(always)]
    pub fn tos(&self) -> u8 {
        self.d()[f::TOS]
    }

    /// Total length: header and payload.
    #[inline(always)]
    pub fn total_len(&self) -> u16 {
        field::rd16(self.d(), f::LENGTH)
    }

    /// Identification.
    #[inline(always)]
    pub fn ident(&self) -> u16 {
        field::rd16(self.d(), f::IDENT)
    }

    /// Flags and fragment offset as one field ([`DONT_FRAG`],
    /// [`MORE_FRAGS`], [`FRAG_OFFSET`]).
    #[inline(always)]
    pub fn frag_field(&self) -> u16 {
        field::rd16(self.d(), f::FLG_OFF)
    }

    /// True for any fragment, first or not (MF set or a non-zero offset).
    #[inline(always)]
    pub fn is_fragment(&self) -> bool {
        self.frag_field() & (MORE_FRAGS | FRAG_OFFSET) != 0
    }

    /// True for a fragment other than the first (its transport header is
    /// in the first).
    #[inline(always)]
    pub fn is_later_fragment(&self) -> bool {
        self.frag_field() & FRAG_OFFSET != 0
    }

    /// Time to live.
    #[inline(always)]
    pub fn ttl(&self) -> u8 {
        self.d()[f::TTL]
    }

    /// Protocol of the payload ([`super::proto`]).
    #[inline(always)]
    pub fn protocol(&self) -> u8 {
        self.d()[f::PROTOCOL]
    }

    /// Header checksum field.
    #[inline(always)]
    pub fn checksum(&self) -> u16 {
        field::rd16(self.d(), f::CHECKSUM)
    }

    /// Source address.
    #[inline(always)]
    pub fn src_addr(&self) -> [u8; 4] {
        field::array(self.d(), f::SRC)
    }

    /// Destination address.
    #[inline(always)]
    pub fn dst_addr(&self) -> [u8; 4] {
        field::array(self.d(), f::DST)
    }

    /// Source address as a number (table keys).
    #[inline(always)]
    pub fn src(&self) -> u32 {
        field::rd32(self.d(), f::SRC)
    }

    /// Destination address as a number.
    #[inline(always)]
    pub fn dst(&self) -> u32 {
        field::rd32(self.d(), f::DST)
    }

    /// Source and destination, the eight octets a pseudo-header sums.
    #[inline(always)]
    pub fn addrs(&self) -> &[u8] {
        &self.d()[f::ADDRS]
    }

    /// The header with its options.
    #[inline(always)]
    pub fn header(&self) -> &[u8] {
        &self.d()[..self.header_len()]
    }

    /// The options, empty without.
    #[inline(always)]
    pub fn options(&self) -> &[u8] {
        &self.d()[f::OPTIONS.start..self.header_len()]
    }

    /// True when the header checksum verifies (the header sums to
    /// 0xffff, RFC 1071).
    #[inline(always)]
    pub fn verify_checksum(&self) -> bool {
        if let Some(h) = self.d().first_chunk::<HEADER_LEN>()
            && self.header_len() == HEADER_LEN
        {
            // The usual header, no options: five words, one fold.
            let w = |i: usize| u32::from_be_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]]) as u64;
            let mut acc = w(0) + w(4) + w(8) + w(12) + w(16);
            acc = (acc & 0xffff_ffff) + (acc >> 32);
            acc = (acc & 0xffff_ffff) + (acc >> 32);
            return checksum::fold(acc as u32) == 0xffff;
        }
        checksum::fold(checksum::sum(self.header(), 0)) == 0xffff
    }

    /// What follows the header, up to the total length (or the buffer's
    /// end, whichever comes first).
    #[inline]
    pub fn payload(&self) -> &[u8] {
        let d = self.d();
        let end = (self.total_len() as usize).clamp(self.header_len(), d.len());
        &d[self.header_len()..end]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv4Packet<T> {
    /// Sets version 4 and the header length in octets.
    #[inline(always)]
    pub fn set_version_and_len(&mut self, header_len: usize) {
        self.m()[f::VER_IHL] = 0x40 | (header_len / 4) as u8;
    }

    /// Sets the type of service octet.
    #[inline(always)]
    pub fn set_tos(&mut self, v: u8) {
        self.m()[f::TOS] = v;
    }

    /// Sets the total length.
    #[inline(always)]
    pub fn set_total_len(&mut self, v: u16) {
        field::wr16(self.m(), f::LENGTH, v)
    }

    /// Sets the identification.
    #[inline(always)]
    pub fn set_ident(&mut self, v: u16) {
        field::wr16(self.m(), f::IDENT, v)
    }

    /// Sets flags and fragment offset.
    #[inline(always)]
    pub fn set_frag_field(&mut self, v: u16) {
        field::wr16(self.m(), f::FLG_OFF, v)
    }

    /// Sets the time to live.
    #[inline(always)]
    pub fn set_ttl(&mut self, v: u8) {
        self.m()[f::TTL] = v;
    }

    /// Sets the protocol.
    #[inline(always)]
    pub fn set_protocol(&mut self, v: u8) {
        self.m()[f::PROTOCOL] = v;
    }

    /// Sets the checksum field.
    #[inline(always)]
    pub fn set_checksum(&mut self, v: u16) {
        field::wr16(self.m(), f::CHECKSUM, v)
    }

    /// Sets the source address.
    #[inline(always)]
    pub fn set_src_addr(&mut self, a: [u8; 4]) {
        self.m()[f::SRC].copy_from_slice(&a)
    }

    /// Sets the destination address.
    #[inline(always)]
    pub fn set_dst_addr(&mut self, a: [u8; 4]) {
        self.m()[f::DST].copy_from_slice(&a)
    }

    /// Computes and writes the header checksum (RFC 791 section 3.1).
    #[inline]
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let c = checksum::checksum(self.header());
        self.set_checksum(c);
    }

    /// The payload, writable (see [`Ipv4Packet::payload`]).
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let (hl, total) = (self.header_len(), self.total_len() as usize);
        let d = self.m();
        let end = total.clamp(hl, d.len());
        &mut d[hl..end]
    }
}

/// The fields of a header to emit (no options): the builder side of the
/// view, for the packets we originate (tunnel outer headers, ICMP
/// errors, replies).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Repr {
    /// Source address.
    pub src: [u8; 4],
    /// Destination address.
    pub dst: [u8; 4],
    /// Payload protocol.
    pub protocol: u8,
    /// Payload length (the total length is this plus 20).
    pub payload_len: usize,
    /// Time to live.
    pub ttl: u8,
    /// Type of service octet.
    pub tos: u8,
    /// Identification.
    pub ident: u16,
    /// Flags and fragment offset ([`DONT_FRAG`] for tunnels that must
    /// not be fragmented on the way).
    pub frag_field: u16,
}

impl Ipv4Repr {
    /// Writes the header into the first 20 octets of `buffer`, checksum
    /// included.
    #[inline]
    pub fn emit(&self, buffer: &mut [u8]) {
        let mut p = Ipv4Packet::new_unchecked(&mut buffer[..HEADER_LEN]);
        p.set_version_and_len(HEADER_LEN);
        p.set_tos(self.tos);
        p.set_total_len((HEADER_LEN + self.payload_len) as u16);
        p.set_ident(self.ident);
        p.set_frag_field(self.frag_field);
        p.set_ttl(self.ttl);
        p.set_protocol(self.protocol);
        p.set_src_addr(self.src);
        p.set_dst_addr(self.dst);
        p.fill_checksum();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An IPv4/UDP header from RFC 1071's style of example, built by hand.
    fn header() -> Vec<u8> {
        let mut h = vec![0x45, 0x00, 0x00, 0x30, 0x12, 0x34, 0x40, 0x00, 0x40, 0x11, 0, 0, 10, 0, 0, 1, 192, 0, 2, 7];
        let c = checksum::checksum(&h);
        h[10..12].copy_from_slice(&c.to_be_bytes());
        h.extend_from_slice(&[0; 28]);
        h
    }

    #[test]
    fn reads_every_field() {
        let h = header();
        let p = Ipv4Packet::new_checked(&h[..]).unwrap();
        assert_eq!((p.version(), p.header_len(), p.total_len(), p.ident()), (4, 20, 48, 0x1234));
        assert_eq!((p.ttl(), p.protocol(), p.frag_field()), (64, 17, DONT_FRAG));
        assert!(!p.is_fragment() && p.verify_checksum());
        assert_eq!((p.src_addr(), p.dst_addr(), p.src()), ([10, 0, 0, 1], [192, 0, 2, 7], 0x0a00_0001));
        assert_eq!(p.payload().len(), 28);
    }

    #[test]
    fn refuses_what_is_not_a_header() {
        let h = header();
        assert_eq!(Ipv4Packet::new_checked(&h[..19]).unwrap_err(), Error::Truncated);
        let mut v6 = h.clone();
        v6[0] = 0x65;
        assert_eq!(Ipv4Packet::new_checked(&v6[..]).unwrap_err(), Error::Malformed);
        let mut long = h.clone();
        long[0] = 0x46;
        assert_eq!(Ipv4Packet::new_checked(&long[..22]).unwrap_err(), Error::Truncated, "options cut short");
        long[0] = 0x4f;
        assert_eq!(Ipv4Packet::new_checked(&long[..]).unwrap_err(), Error::Malformed, "header longer than the packet");
    }

    #[test]
    fn emit_then_read_back_and_the_checksum_verifies() {
        let mut b = [0u8; 20];
        let r = Ipv4Repr {
            src: [192, 0, 2, 1],
            dst: [198, 51, 100, 2],
            protocol: 17,
            payload_len: 8,
            ttl: 64,
            tos: 0,
            ident: 0,
            frag_field: DONT_FRAG,
        };
        r.emit(&mut b);
        let p = Ipv4Packet::new_checked(&b[..]).unwrap();
        assert!(p.verify_checksum());
        assert_eq!((p.total_len(), p.src_addr(), p.dst_addr()), (28, r.src, r.dst));
    }
}
