//! ICMPv4 (RFC 792) and ICMPv6 (RFC 4443 section 2.1) header view: both
//! start with type, code, checksum and four octets whose meaning the type
//! gives (identifier and sequence, a next-hop MTU, a pointer, unused).

use super::{Error, field};

mod f {
    use super::field::Field;
    pub const TYPE: usize = 0;
    pub const CODE: usize = 1;
    pub const CHECKSUM: Field = 2..4;
    pub const IDENT: Field = 4..6;
    pub const SEQ: Field = 6..8;
    pub const REST: Field = 4..8;
}

/// Length of the header (type, code, checksum, four octets).
pub const HEADER_LEN: usize = 8;

/// ICMPv4 types this code names (RFC 792, RFC 1191).
pub mod v4 {
    /// Echo reply.
    pub const ECHO_REPLY: u8 = 0;
    /// Destination unreachable.
    pub const DEST_UNREACHABLE: u8 = 3;
    /// Source quench (deprecated, RFC 6633).
    pub const SOURCE_QUENCH: u8 = 4;
    /// Redirect.
    pub const REDIRECT: u8 = 5;
    /// Echo request.
    pub const ECHO_REQUEST: u8 = 8;
    /// Time exceeded.
    pub const TIME_EXCEEDED: u8 = 11;
    /// Parameter problem.
    pub const PARAMETER_PROBLEM: u8 = 12;
    /// Timestamp request.
    pub const TIMESTAMP: u8 = 13;
    /// Timestamp reply.
    pub const TIMESTAMP_REPLY: u8 = 14;
}

/// ICMPv6 types this code names (RFC 4443, RFC 4861).
pub mod v6 {
    /// Destination unreachable.
    pub const DEST_UNREACHABLE: u8 = 1;
    /// Packet too big.
    pub const PACKET_TOO_BIG: u8 = 2;
    /// Time exceeded.
    pub const TIME_EXCEEDED: u8 = 3;
    /// Parameter problem.
    pub const PARAMETER_PROBLEM: u8 = 4;
    /// Echo request.
    pub const ECHO_REQUEST: u8 = 128;
    /// Echo reply.
    pub const ECHO_REPLY: u8 = 129;
    /// Neighbor solicitation.
    pub const NEIGHBOR_SOLICIT: u8 = 135;
    /// Neighbor advertisement.
    pub const NEIGHBOR_ADVERT: u8 = 136;
}

super::view! {
    /// A read/write view of an ICMP or ICMPv6 header at the start of `buffer`.
    IcmpPacket, whole at HEADER_LEN
}

impl<T: AsRef<[u8]>> IcmpPacket<T> {
    /// Message type.
    #[inline(always)]
    pub fn msg_type(&self) -> u8 {
        self.d()[f::TYPE]
    }

    /// Message code.
    #[inline(always)]
    pub fn msg_code(&self) -> u8 {
        self.d()[f::CODE]
    }

    /// Checksum field.
    #[inline(always)]
    pub fn checksum(&self) -> u16 {
        field::rd16(self.d(), f::CHECKSUM)
    }

    /// Echo identifier (the "port" of a query, RFC 3022 section 2.2).
    #[inline(always)]
    pub fn echo_ident(&self) -> u16 {
        field::rd16(self.d(), f::IDENT)
    }

    /// The echo identifier of a message that may be cut short before it.
    #[inline(always)]
    pub fn try_echo_ident(&self) -> Option<u16> {
        field::try_rd16(self.d(), f::IDENT)
    }

    /// Echo sequence number.
    #[inline(always)]
    pub fn echo_seq(&self) -> u16 {
        field::rd16(self.d(), f::SEQ)
    }

    /// The four type-specific octets as one number (an MTU in its low
    /// half for "fragmentation needed", a whole MTU for "packet too big").
    #[inline(always)]
    pub fn rest(&self) -> u32 {
        field::rd32(self.d(), f::REST)
    }

    /// What follows the header (an error's quote, an echo's data).
    #[inline(always)]
    pub fn payload(&self) -> &[u8] {
        &self.d()[HEADER_LEN..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> IcmpPacket<T> {
    /// Sets the type.
    #[inline(always)]
    pub fn set_msg_type(&mut self, v: u8) {
        self.buffer.as_mut()[f::TYPE] = v;
    }

    /// Sets the code.
    #[inline(always)]
    pub fn set_msg_code(&mut self, v: u8) {
        self.buffer.as_mut()[f::CODE] = v;
    }

    /// Sets the checksum field.
    #[inline(always)]
    pub fn set_checksum(&mut self, v: u16) {
        field::wr16(self.buffer.as_mut(), f::CHECKSUM, v)
    }

    /// Sets the echo identifier.
    #[inline(always)]
    pub fn set_echo_ident(&mut self, v: u16) {
        field::wr16(self.buffer.as_mut(), f::IDENT, v)
    }

    /// Sets the four type-specific octets.
    #[inline(always)]
    pub fn set_rest(&mut self, v: u32) {
        field::wr32(self.buffer.as_mut(), f::REST, v)
    }

    /// What follows the header, writable.
    #[inline(always)]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[HEADER_LEN..]
    }
}
