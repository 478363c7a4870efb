//! TCP header view (RFC 9293 section 3.1).

use super::{Error, field};

mod f {
    use super::field::Field;
    pub const SRC_PORT: Field = 0..2;
    pub const DST_PORT: Field = 2..4;
    pub const SEQ: Field = 4..8;
    pub const ACK: Field = 8..12;
    pub const DATA_OFF: usize = 12;
    pub const FLAGS: usize = 13;
    pub const WINDOW: Field = 14..16;
    pub const CHECKSUM: Field = 16..18;
    pub const URGENT: Field = 18..20;
}

/// Length of a header without options.
pub const HEADER_LEN: usize = 20;

/// Control bits (RFC 9293 section 3.1).
pub mod flags {
    /// No more data from sender.
    pub const FIN: u8 = 0x01;
    /// Synchronise sequence numbers.
    pub const SYN: u8 = 0x02;
    /// Reset the connection.
    pub const RST: u8 = 0x04;
    /// Push function.
    pub const PSH: u8 = 0x08;
    /// Acknowledgment field significant.
    pub const ACK: u8 = 0x10;
}

super::view! {
    /// A read/write view of a TCP header at the start of `buffer`.
    TcpPacket
}

impl<T: AsRef<[u8]>> TcpPacket<T> {
    /// A view of a whole header, options included (data offset at least
    /// five words and within the buffer).
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self, Error> {
        let p = Self::new_unchecked(buffer);
        if p.d().len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        if p.header_len() < HEADER_LEN {
            return Err(Error::Malformed);
        }
        if p.d().len() < p.header_len() {
            return Err(Error::Truncated);
        }
        Ok(p)
    }

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

    /// Sequence number.
    #[inline(always)]
    pub fn seq_number(&self) -> u32 {
        field::rd32(self.d(), f::SEQ)
    }

    /// Acknowledgment number.
    #[inline(always)]
    pub fn ack_number(&self) -> u32 {
        field::rd32(self.d(), f::ACK)
    }

    /// Header length in octets (data offset times four).
    #[inline(always)]
    pub fn header_len(&self) -> usize {
        (self.d()[f::DATA_OFF] >> 4) as usize * 4
    }

    /// The control bits ([`flags`]).
    #[inline(always)]
    pub fn flags(&self) -> u8 {
        self.d()[f::FLAGS]
    }

    /// The control bits of a header that may be cut short before them
    /// (a filter reads what is there, RFC 9293 leaves the rest to TCP).
    #[inline(always)]
    pub fn try_flags(&self) -> Option<u8> {
        self.d().get(f::FLAGS).copied()
    }

    /// Window.
    #[inline(always)]
    pub fn window(&self) -> u16 {
        field::rd16(self.d(), f::WINDOW)
    }

    /// Checksum field.
    #[inline(always)]
    pub fn checksum(&self) -> u16 {
        field::rd16(self.d(), f::CHECKSUM)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> TcpPacket<T> {
    /// Sets the source port.
    #[inline(always)]
    pub fn set_src_port(&mut self, v: u16) {
        field::wr16(self.m(), f::SRC_PORT, v)
    }

    /// Sets the destination port.
    #[inline(always)]
    pub fn set_dst_port(&mut self, v: u16) {
        field::wr16(self.m(), f::DST_PORT, v)
    }

    /// Sets the sequence number.
    #[inline(always)]
    pub fn set_seq_number(&mut self, v: u32) {
        field::wr32(self.m(), f::SEQ, v)
    }

    /// Sets the acknowledgment number.
    #[inline(always)]
    pub fn set_ack_number(&mut self, v: u32) {
        field::wr32(self.m(), f::ACK, v)
    }

    /// Sets the header length in octets (a multiple of four).
    #[inline(always)]
    pub fn set_header_len(&mut self, len: usize) {
        self.m()[f::DATA_OFF] = ((len / 4) as u8) << 4;
    }

    /// Sets the control bits.
    #[inline(always)]
    pub fn set_flags(&mut self, v: u8) {
        self.m()[f::FLAGS] = v;
    }

    /// Sets the window.
    #[inline(always)]
    pub fn set_window(&mut self, v: u16) {
        field::wr16(self.m(), f::WINDOW, v)
    }

    /// Sets the checksum field.
    #[inline(always)]
    pub fn set_checksum(&mut self, v: u16) {
        field::wr16(self.m(), f::CHECKSUM, v)
    }

    /// Sets the urgent pointer.
    #[inline(always)]
    pub fn set_urgent(&mut self, v: u16) {
        field::wr16(self.m(), f::URGENT, v)
    }
}
