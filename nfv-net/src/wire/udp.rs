//! UDP header view (RFC 768).

use super::{Error, field};

mod f {
    use super::field::Field;
    pub const SRC_PORT: Field = 0..2;
    pub const DST_PORT: Field = 2..4;
    pub const LENGTH: Field = 4..6;
    pub const CHECKSUM: Field = 6..8;
}

/// Length of the header.
pub const HEADER_LEN: usize = 8;

super::view! {
    /// A read/write view of a UDP header at the start of `buffer`.
    UdpPacket, whole at HEADER_LEN
}

impl<T: AsRef<[u8]>> UdpPacket<T> {
    /// Source port.
    #[inline(always)]
    pub fn src_port(&self) -> u16 {
        field::rd16(self.d(), f::SRC_PORT)
    }

    /// Destination port.
    #[inline(always)]
    pub fn dst_port(&self) -> u16 {
        field::rd16(self.d(), f::DST_PORT)
    }

    /// Length: header and payload.
    #[inline(always)]
    pub fn len(&self) -> u16 {
        field::rd16(self.d(), f::LENGTH)
    }

    /// True when the length field says zero.
    #[inline(always)]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Checksum field (0: none, allowed over IPv4, RFC 768).
    #[inline(always)]
    pub fn checksum(&self) -> u16 {
        field::rd16(self.d(), f::CHECKSUM)
    }

    /// What follows the header.
    #[inline(always)]
    pub fn payload(&self) -> &[u8] {
        &self.d()[HEADER_LEN..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> UdpPacket<T> {
    /// Sets the source port.
    #[inline(always)]
    pub fn set_src_port(&mut self, v: u16) {
        field::wr16(self.buffer.as_mut(), f::SRC_PORT, v)
    }

    /// Sets the destination port.
    #[inline(always)]
    pub fn set_dst_port(&mut self, v: u16) {
        field::wr16(self.buffer.as_mut(), f::DST_PORT, v)
    }

    /// Sets the length.
    #[inline(always)]
    pub fn set_len(&mut self, v: u16) {
        field::wr16(self.buffer.as_mut(), f::LENGTH, v)
    }

    /// Sets the checksum field.
    #[inline(always)]
    pub fn set_checksum(&mut self, v: u16) {
        field::wr16(self.buffer.as_mut(), f::CHECKSUM, v)
    }

    /// What follows the header, writable.
    #[inline(always)]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[HEADER_LEN..]
    }
}

/// A header to emit; the checksum is the caller's (zero, or filled over
/// the pseudo-header once the payload is written).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UdpRepr {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Payload length (the length field is this plus 8).
    pub payload_len: usize,
}

impl UdpRepr {
    /// Writes the header, checksum zero, into the first 8 octets.
    #[inline]
    pub fn emit(&self, buffer: &mut [u8]) {
        let mut u = UdpPacket::new_unchecked(&mut buffer[..HEADER_LEN]);
        u.set_src_port(self.src_port);
        u.set_dst_port(self.dst_port);
        u.set_len((HEADER_LEN + self.payload_len) as u16);
        u.set_checksum(0);
    }
}
