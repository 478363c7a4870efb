//! Network Service Header (RFC 8300) and its VXLAN-GPE transport
//! (draft-ietf-nvo3-vxlan-gpe): the header a service function chain
//! carries between forwarders: the service path (SPI) and where on it
//! the packet is (SI), and context metadata, fixed (MD type 1, four
//! words) or as TLVs (MD type 2).

use super::{Error, field};

mod f {
    use super::field::Field;
    /// Version, O bit, U bit, TTL, Length, MD type (RFC 8300 2.2).
    pub const BASE: Field = 0..4;
    /// SPI (24 bits) and SI (8 bits) (RFC 8300 2.3).
    pub const PATH: Field = 4..8;
}

/// EtherType of NSH over Ethernet (RFC 8300 9.1).
pub const ETHERTYPE: u16 = 0x894f;
/// Length of the base and service path headers.
pub const BASE_LEN: usize = 8;
/// Length of an MD type 1 header (RFC 8300 2.4: four context words).
pub const MD1_LEN: usize = 24;
/// The largest header the Length field can say (63 words).
pub const MAX_LEN: usize = 63 * 4;
/// The TTL a classifier sets (RFC 8300 2.2: 63 recommended).
pub const DEFAULT_TTL: u8 = 63;

/// MD types (RFC 8300 2.2).
pub mod md_type {
    /// Fixed-length context (four words).
    pub const ONE: u8 = 1;
    /// Variable-length context (TLVs).
    pub const TWO: u8 = 2;
}

/// Next Protocol values (RFC 8300 11.2.5), shared by VXLAN-GPE.
pub mod next {
    /// IPv4.
    pub const IPV4: u8 = 1;
    /// IPv6.
    pub const IPV6: u8 = 2;
    /// Ethernet.
    pub const ETHERNET: u8 = 3;
    /// NSH.
    pub const NSH: u8 = 4;
    /// MPLS.
    pub const MPLS: u8 = 5;
}

super::view! {
    /// A read/write view of an NSH header at the start of `buffer`.
    NshPacket
}

impl<T: AsRef<[u8]>> NshPacket<T> {
    /// A view of a whole header: version 0, a Length that covers the
    /// base and path headers (and, for MD type 1, exactly the four
    /// context words; RFC 8300 2.2, 2.4) within the buffer.
    pub fn new_checked(buffer: T) -> Result<Self, Error> {
        let p = Self { buffer };
        let d = p.d();
        if d.len() < BASE_LEN {
            return Err(Error::Truncated);
        }
        let len = p.header_len();
        if p.version() != 0 || len < BASE_LEN || (p.md_type() == md_type::ONE && len != MD1_LEN) {
            return Err(Error::Malformed);
        }
        if d.len() < len {
            return Err(Error::Truncated);
        }
        Ok(p)
    }

    fn base(&self) -> u32 {
        field::rd32(self.d(), f::BASE)
    }

    /// Version (0).
    #[inline(always)]
    pub fn version(&self) -> u8 {
        (self.base() >> 30) as u8
    }

    /// The O bit: an OAM packet (RFC 8300 2.2).
    #[inline(always)]
    pub fn oam(&self) -> bool {
        self.base() >> 29 & 1 == 1
    }

    /// Hops left (6 bits; RFC 8300 2.2: decremented by each SFF, a packet
    /// at 0 is dropped).
    #[inline(always)]
    pub fn ttl(&self) -> u8 {
        (self.base() >> 22 & 0x3f) as u8
    }

    /// The whole header's length in octets (the Length field counts
    /// 4-octet words).
    #[inline(always)]
    pub fn header_len(&self) -> usize {
        (self.base() >> 16 & 0x3f) as usize * 4
    }

    /// MD type.
    #[inline(always)]
    pub fn md_type(&self) -> u8 {
        (self.base() >> 8 & 0xf) as u8
    }

    /// What follows the header ([`next`]).
    #[inline(always)]
    pub fn next_protocol(&self) -> u8 {
        self.base() as u8
    }

    /// Service path identifier (24 bits).
    #[inline(always)]
    pub fn spi(&self) -> u32 {
        field::rd32(self.d(), f::PATH) >> 8
    }

    /// Service index.
    #[inline(always)]
    pub fn si(&self) -> u8 {
        self.d()[7]
    }

    /// The context headers: MD type 1's four words, or MD type 2's TLVs.
    #[inline(always)]
    pub fn context(&self) -> &[u8] {
        &self.d()[BASE_LEN..self.header_len()]
    }

    /// The fixed fields at once (two loads), for a forwarder that reads
    /// them all.
    #[inline(always)]
    pub fn header(&self) -> NshHeader {
        let (b, path) = (self.base(), field::rd32(self.d(), f::PATH));
        NshHeader {
            ttl: (b >> 22 & 0x3f) as u8,
            len: (b >> 16 & 0x3f) as usize * 4,
            md_type: (b >> 8 & 0xf) as u8,
            next_protocol: b as u8,
            spi: path >> 8,
            si: path as u8,
        }
    }

    /// MD type 2's TLVs, in order (RFC 8300 2.5.1: class, type, value).
    pub fn tlvs(&self) -> Tlvs<'_> {
        Tlvs { rest: if self.md_type() == md_type::TWO { self.context() } else { &[] } }
    }

    /// What follows the header.
    #[inline(always)]
    pub fn payload(&self) -> &[u8] {
        &self.d()[self.header_len()..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> NshPacket<T> {
    /// Sets the service index.
    #[inline(always)]
    pub fn set_si(&mut self, si: u8) {
        self.m()[7] = si;
    }

    /// Sets the TTL, the other base fields kept.
    #[inline(always)]
    pub fn set_ttl(&mut self, ttl: u8) {
        let b = self.base() & !(0x3f << 22) | ((ttl as u32 & 0x3f) << 22);
        field::wr32(self.m(), f::BASE, b);
    }

    /// Sets the service path identifier (24 bits), the index kept.
    #[inline(always)]
    pub fn set_spi(&mut self, spi: u32) {
        let si = self.si();
        field::wr32(self.m(), f::PATH, spi << 8 | si as u32);
    }
}

/// The fixed fields of an NSH header ([`NshPacket::header`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NshHeader {
    /// Hops left.
    pub ttl: u8,
    /// The whole header's length in octets.
    pub len: usize,
    /// MD type.
    pub md_type: u8,
    /// What follows.
    pub next_protocol: u8,
    /// Service path identifier.
    pub spi: u32,
    /// Service index.
    pub si: u8,
}

/// One MD type 2 context header: a class, a type and its value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tlv<'a> {
    /// Metadata Class (IANA registry; 0x0000 is IETF base NSH).
    pub class: u16,
    /// Type, within the class (its high bit says critical).
    pub kind: u8,
    /// The value, without its padding.
    pub value: &'a [u8],
}

/// MD type 2's TLVs; a TLV running past the header ends the walk (its
/// header's Length said otherwise: [`tlvs_valid`] tells).
pub struct Tlvs<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Tlvs<'a> {
    type Item = Tlv<'a>;

    fn next(&mut self) -> Option<Tlv<'a>> {
        let h = self.rest.get(..4)?;
        // RFC 8300 2.5.1: the Length counts the value's octets, padded to
        // a 4-octet boundary on the wire.
        let len = (h[3] & 0x7f) as usize;
        let value = self.rest.get(4..4 + len)?;
        let tlv = Tlv { class: u16::from_be_bytes([h[0], h[1]]), kind: h[2], value };
        self.rest = self.rest.get(4 + len.next_multiple_of(4)..).unwrap_or(&[]);
        Some(tlv)
    }
}

/// True when MD type 2 context `ctx` is whole TLVs, each within it.
pub fn tlvs_valid(ctx: &[u8]) -> bool {
    let mut rest = ctx;
    while !rest.is_empty() {
        let Some(h) = rest.get(..4) else { return false };
        let padded = 4 + ((h[3] & 0x7f) as usize).next_multiple_of(4);
        let Some(r) = rest.get(padded..) else { return false };
        rest = r;
    }
    true
}

/// An NSH header to emit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NshRepr {
    /// TTL (6 bits).
    pub ttl: u8,
    /// What follows ([`next`]).
    pub next_protocol: u8,
    /// Service path identifier (24 bits).
    pub spi: u32,
    /// Service index.
    pub si: u8,
    /// The context: MD type 1's four words, or MD type 2's TLVs.
    pub context: Context,
}

/// Context headers to emit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Context {
    /// MD type 1: four words (RFC 8300 2.4; zero when unused).
    Md1([u32; 4]),
    /// MD type 2: (class, type, value) TLVs, each padded to a word.
    Md2(Vec<(u16, u8, Vec<u8>)>),
}

impl NshRepr {
    /// The emitted header's length in octets.
    pub fn header_len(&self) -> usize {
        BASE_LEN
            + match &self.context {
                Context::Md1(_) => 16,
                Context::Md2(t) => t.iter().map(|(_, _, v)| 4 + v.len().next_multiple_of(4)).sum(),
            }
    }

    /// Writes the header at the start of `buf` ([`NshRepr::header_len`]
    /// octets).
    ///
    /// # Panics
    /// If `buf` is shorter, or the header longer than the Length field
    /// can say ([`MAX_LEN`]), or a TLV's value longer than 127 octets:
    /// callers check configurations first.
    pub fn emit(&self, buf: &mut [u8]) {
        let len = self.header_len();
        assert!(len <= MAX_LEN, "NSH header of {len} octets");
        let md = match self.context {
            Context::Md1(_) => md_type::ONE,
            Context::Md2(_) => md_type::TWO,
        };
        let base =
            ((self.ttl as u32 & 0x3f) << 22) | ((len / 4) as u32) << 16 | (md as u32) << 8 | self.next_protocol as u32;
        field::wr32(buf, f::BASE, base);
        field::wr32(buf, f::PATH, (self.spi & 0xff_ffff) << 8 | self.si as u32);
        let mut at = BASE_LEN;
        match &self.context {
            Context::Md1(words) => {
                for w in words {
                    buf[at..at + 4].copy_from_slice(&w.to_be_bytes());
                    at += 4;
                }
            }
            Context::Md2(tlvs) => {
                for (class, kind, value) in tlvs {
                    assert!(value.len() <= 127, "TLV value of {} octets", value.len());
                    buf[at..at + 2].copy_from_slice(&class.to_be_bytes());
                    buf[at + 2] = *kind;
                    buf[at + 3] = value.len() as u8;
                    buf[at + 4..at + 4 + value.len()].copy_from_slice(value);
                    let padded = value.len().next_multiple_of(4);
                    buf[at + 4 + value.len()..at + 4 + padded].fill(0);
                    at += 4 + padded;
                }
            }
        }
    }
}

/// The VXLAN-GPE header (draft-ietf-nvo3-vxlan-gpe 3.1): 8 octets after
/// UDP to [`gpe::PORT`].
pub mod gpe {
    /// The UDP port (IANA).
    pub const PORT: u16 = 4790;
    /// Header length.
    pub const HEADER_LEN: usize = 8;
    /// Flags: I (VNI valid) and P (Next Protocol present).
    pub const FLAGS_I_P: u8 = 0x0c;

    /// (VNI, next protocol) of a VXLAN-GPE header with I and P set and
    /// version 0, else `None`.
    pub fn parse(h: &[u8]) -> Option<(u32, u8)> {
        let h = h.get(..HEADER_LEN)?;
        (h[0] & FLAGS_I_P == FLAGS_I_P && h[0] & 0x30 == 0).then(|| (u32::from_be_bytes([0, h[4], h[5], h[6]]), h[3]))
    }

    /// Writes a header for `vni` announcing `next` ([`super::next`]).
    pub fn emit(buf: &mut [u8], vni: u32, next: u8) {
        buf[..HEADER_LEN].copy_from_slice(&[FLAGS_I_P, 0, 0, next, (vni >> 16) as u8, (vni >> 8) as u8, vni as u8, 0]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 8300 figure 2/5: an MD type 1 header, SPI 42, SI 255, TTL 63,
    /// Ethernet next, context 1, 2, 3, 4.
    const MD1: [u8; 24] =
        [0x0f, 0xc6, 0x01, 0x03, 0x00, 0x00, 0x2a, 0xff, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4];

    #[test]
    fn md1_reads_and_emits_field_by_field() {
        let p = NshPacket::new_checked(&MD1[..]).unwrap();
        assert_eq!((p.version(), p.oam(), p.ttl(), p.header_len()), (0, false, 63, 24));
        assert_eq!((p.md_type(), p.next_protocol(), p.spi(), p.si()), (1, next::ETHERNET, 42, 255));
        assert_eq!(p.context(), &MD1[8..]);
        let h = NshHeader { ttl: 63, len: 24, md_type: 1, next_protocol: next::ETHERNET, spi: 42, si: 255 };
        assert_eq!(p.header(), h);
        let r =
            NshRepr { ttl: 63, next_protocol: next::ETHERNET, spi: 42, si: 255, context: Context::Md1([1, 2, 3, 4]) };
        let mut out = [0u8; 24];
        r.emit(&mut out);
        assert_eq!(out, MD1);
    }

    #[test]
    fn md2_tlvs_are_padded_to_words_and_walked_back() {
        let tlvs = vec![(0x0000, 0x01, vec![0xaa, 0xbb, 0xcc]), (0x0102, 0x83, vec![]), (0xffff, 0x7f, vec![1; 8])];
        let r =
            NshRepr { ttl: 5, next_protocol: next::IPV4, spi: 0xabcdef, si: 9, context: Context::Md2(tlvs.clone()) };
        assert_eq!(r.header_len(), 8 + 8 + 4 + 12);
        let mut buf = vec![0u8; r.header_len() + 3];
        r.emit(&mut buf);
        let p = NshPacket::new_checked(&buf[..]).unwrap();
        assert_eq!((p.md_type(), p.header_len(), p.spi(), p.si(), p.ttl()), (2, 32, 0xabcdef, 9, 5));
        assert!(tlvs_valid(p.context()));
        let got: Vec<(u16, u8, Vec<u8>)> = p.tlvs().map(|t| (t.class, t.kind, t.value.to_vec())).collect();
        assert_eq!(got, tlvs);
        assert_eq!(&buf[8..16], &[0, 0, 1, 3, 0xaa, 0xbb, 0xcc, 0], "class, type, length 3, value, one pad octet");
        assert_eq!(p.payload().len(), 3);
    }

    #[test]
    fn bad_headers_are_refused() {
        assert_eq!(NshPacket::new_checked(&MD1[..7]).unwrap_err(), Error::Truncated);
        assert_eq!(NshPacket::new_checked(&MD1[..20]).unwrap_err(), Error::Truncated, "Length says 24");
        let mut v1 = MD1;
        v1[0] |= 0x40;
        assert_eq!(NshPacket::new_checked(&v1[..]).unwrap_err(), Error::Malformed, "version 1");
        let mut short = MD1;
        short[1] = 0xc5; // Length 5 words with MD type 1
        assert_eq!(NshPacket::new_checked(&short[..]).unwrap_err(), Error::Malformed);
        assert!(!tlvs_valid(&[0, 0, 1, 5, 1, 2, 3, 4]), "a TLV past the context");
    }

    #[test]
    fn ttl_spi_and_si_change_alone() {
        let mut b = MD1;
        let mut p = NshPacket::new_unchecked(&mut b[..]);
        p.set_ttl(1);
        p.set_si(254);
        p.set_spi(7);
        assert_eq!((p.ttl(), p.si(), p.spi(), p.header_len(), p.next_protocol()), (1, 254, 7, 24, next::ETHERNET));
    }

    #[test]
    fn vxlan_gpe_carries_its_next_protocol() {
        let mut h = [0u8; 8];
        gpe::emit(&mut h, 0x123456, next::NSH);
        assert_eq!(h, [0x0c, 0, 0, 4, 0x12, 0x34, 0x56, 0]);
        assert_eq!(gpe::parse(&h), Some((0x123456, next::NSH)));
        assert_eq!(gpe::parse(&[0x08, 0, 0, 4, 0, 0, 1, 0]), None, "no P bit: plain VXLAN");
    }
}
