//! IPv6 fixed header view (RFC 8200 section 3).

use super::{Error, field};

mod f {
    use super::field::Field;
    pub const VER_TC_FLOW: Field = 0..4;
    pub const LENGTH: Field = 4..6;
    pub const NXT_HDR: usize = 6;
    pub const HOP_LIMIT: usize = 7;
    pub const SRC: Field = 8..24;
    pub const DST: Field = 24..40;
    pub const ADDRS: Field = 8..40;
}

/// Length of the fixed header.
pub const HEADER_LEN: usize = 40;

super::view! {
    /// A read/write view of an IPv6 header at the start of `buffer`.
    Ipv6Packet
}

impl<T: AsRef<[u8]>> Ipv6Packet<T> {
    /// A view of a whole fixed header of version 6.
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self, Error> {
        let p = Self::new_unchecked(buffer);
        if p.d().len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        if p.version() != 6 {
            return Err(Error::Malformed);
        }
        Ok(p)
    }

    /// Version field (6).
    #[inline(always)]
    pub fn version(&self) -> u8 {
        self.d()[0] >> 4
    }

    /// Traffic class (DSCP and ECN).
    #[inline(always)]
    pub fn traffic_class(&self) -> u8 {
        ((field::rd32(self.d(), f::VER_TC_FLOW) >> 20) & 0xff) as u8
    }

    /// Flow label.
    #[inline(always)]
    pub fn flow_label(&self) -> u32 {
        field::rd32(self.d(), f::VER_TC_FLOW) & 0xf_ffff
    }

    /// Payload length (extension headers included).
    #[inline(always)]
    pub fn payload_len(&self) -> u16 {
        field::rd16(self.d(), f::LENGTH)
    }

    /// Next header.
    #[inline(always)]
    pub fn next_header(&self) -> u8 {
        self.d()[f::NXT_HDR]
    }

    /// Hop limit.
    #[inline(always)]
    pub fn hop_limit(&self) -> u8 {
        self.d()[f::HOP_LIMIT]
    }

    /// Source address.
    #[inline(always)]
    pub fn src_addr(&self) -> [u8; 16] {
        field::array(self.d(), f::SRC)
    }

    /// Destination address.
    #[inline(always)]
    pub fn dst_addr(&self) -> [u8; 16] {
        field::array(self.d(), f::DST)
    }

    /// Source and destination, the 32 octets a pseudo-header sums.
    #[inline(always)]
    pub fn addrs(&self) -> &[u8] {
        &self.d()[f::ADDRS]
    }

    /// What follows the fixed header, up to the payload length (or the
    /// buffer's end).
    #[inline]
    pub fn payload(&self) -> &[u8] {
        let d = self.d();
        let end = (HEADER_LEN + self.payload_len() as usize).min(d.len());
        &d[HEADER_LEN..end.max(HEADER_LEN)]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv6Packet<T> {
    /// Sets version 6, the traffic class and the flow label.
    #[inline(always)]
    pub fn set_version_tc_flow(&mut self, tc: u8, flow: u32) {
        field::wr32(self.m(), f::VER_TC_FLOW, 6 << 28 | (tc as u32) << 20 | (flow & 0xf_ffff))
    }

    /// Sets the payload length.
    #[inline(always)]
    pub fn set_payload_len(&mut self, v: u16) {
        field::wr16(self.m(), f::LENGTH, v)
    }

    /// Sets the next header.
    #[inline(always)]
    pub fn set_next_header(&mut self, v: u8) {
        self.m()[f::NXT_HDR] = v;
    }

    /// Sets the hop limit.
    #[inline(always)]
    pub fn set_hop_limit(&mut self, v: u8) {
        self.m()[f::HOP_LIMIT] = v;
    }

    /// Sets the source address.
    #[inline(always)]
    pub fn set_src_addr(&mut self, a: [u8; 16]) {
        self.m()[f::SRC].copy_from_slice(&a)
    }

    /// Sets the destination address.
    #[inline(always)]
    pub fn set_dst_addr(&mut self, a: [u8; 16]) {
        self.m()[f::DST].copy_from_slice(&a)
    }
}

/// A fixed header to emit (no extension headers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv6Repr {
    /// Source address.
    pub src: [u8; 16],
    /// Destination address.
    pub dst: [u8; 16],
    /// Next header.
    pub next_header: u8,
    /// Payload length.
    pub payload_len: usize,
    /// Hop limit.
    pub hop_limit: u8,
    /// Traffic class.
    pub traffic_class: u8,
    /// Flow label (a tunnel's entropy, RFC 6438).
    pub flow_label: u32,
}

impl Ipv6Repr {
    /// Writes the header into the first 40 octets of `buffer`.
    #[inline]
    pub fn emit(&self, buffer: &mut [u8]) {
        let mut p = Ipv6Packet::new_unchecked(&mut buffer[..HEADER_LEN]);
        p.set_version_tc_flow(self.traffic_class, self.flow_label);
        p.set_payload_len(self.payload_len as u16);
        p.set_next_header(self.next_header);
        p.set_hop_limit(self.hop_limit);
        p.set_src_addr(self.src);
        p.set_dst_addr(self.dst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emit_then_read_back() {
        let mut b = [0u8; 48];
        let r = Ipv6Repr {
            src: [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
            dst: [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2],
            next_header: 17,
            payload_len: 8,
            hop_limit: 64,
            traffic_class: 0xb8,
            flow_label: 0x12345,
        };
        r.emit(&mut b);
        let p = Ipv6Packet::new_checked(&b[..]).unwrap();
        assert_eq!((p.version(), p.traffic_class(), p.flow_label()), (6, 0xb8, 0x12345));
        assert_eq!((p.payload_len(), p.next_header(), p.hop_limit()), (8, 17, 64));
        assert_eq!((p.src_addr(), p.dst_addr(), p.payload().len()), (r.src, r.dst, 8));
        assert_eq!(Ipv6Packet::new_checked(&b[..39]).unwrap_err(), Error::Truncated);
    }
}
