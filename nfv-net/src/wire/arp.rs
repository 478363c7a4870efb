//! ARP packet view for Ethernet and IPv4 (RFC 826).

use super::{Error, ethertype, field};

mod f {
    use super::field::Field;
    pub const HTYPE_TO_PLEN: Field = 0..6;
    pub const OPER: Field = 6..8;
    pub const SHA: Field = 8..14;
    pub const SPA: Field = 14..18;
    pub const THA: Field = 18..24;
    pub const TPA: Field = 24..28;
}

/// Length of an Ethernet/IPv4 ARP packet.
pub const LEN: usize = 28;
/// A request.
pub const REQUEST: u16 = 1;
/// A reply.
pub const REPLY: u16 = 2;

/// Hardware type 1 (Ethernet), protocol IPv4, lengths 6 and 4.
const ETHERNET_IPV4: [u8; 6] = {
    let [p0, p1] = ethertype::IPV4.to_be_bytes();
    [0, 1, p0, p1, 6, 4]
};

super::view! {
    /// A read/write view of an Ethernet/IPv4 ARP packet.
    ArpPacket
}

impl<T: AsRef<[u8]>> ArpPacket<T> {
    /// A view of a whole Ethernet/IPv4 ARP packet; anything else (other
    /// hardware or protocol, cut short) is refused.
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self, Error> {
        let d = buffer.as_ref();
        if d.len() < LEN {
            return Err(Error::Truncated);
        }
        if d[f::HTYPE_TO_PLEN] != ETHERNET_IPV4 {
            return Err(Error::Malformed);
        }
        Ok(Self { buffer })
    }

    /// Operation ([`REQUEST`], [`REPLY`]).
    #[inline(always)]
    pub fn operation(&self) -> u16 {
        field::rd16(self.d(), f::OPER)
    }

    /// Sender hardware address.
    #[inline(always)]
    pub fn sender_mac(&self) -> [u8; 6] {
        field::array(self.d(), f::SHA)
    }

    /// Sender protocol address.
    #[inline(always)]
    pub fn sender_ip(&self) -> [u8; 4] {
        field::array(self.d(), f::SPA)
    }

    /// Target hardware address.
    #[inline(always)]
    pub fn target_mac(&self) -> [u8; 6] {
        field::array(self.d(), f::THA)
    }

    /// Target protocol address.
    #[inline(always)]
    pub fn target_ip(&self) -> [u8; 4] {
        field::array(self.d(), f::TPA)
    }
}

impl ArpPacket<&[u8]> {
    /// The target protocol address field of `buf` when the buffer reaches
    /// it, whatever hardware and protocol the packet names: the input
    /// stage punts by it, the slow path then refuses what it does not
    /// speak.
    #[inline]
    pub fn target_ip_of(buf: &[u8]) -> Option<[u8; 4]> {
        buf.get(f::TPA).map(|t| t.try_into().expect("four octets"))
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> ArpPacket<T> {
    /// Turns a request into its reply in place: `mac` answers for the
    /// target address, to the sender.
    #[inline]
    pub fn make_reply(&mut self, mac: [u8; 6]) {
        let (sha, spa, tpa) = (self.sender_mac(), self.sender_ip(), self.target_ip());
        let d = self.buffer.as_mut();
        field::wr16(d, f::OPER, REPLY);
        d[f::SHA].copy_from_slice(&mac);
        d[f::SPA].copy_from_slice(&tpa);
        d[f::THA].copy_from_slice(&sha);
        d[f::TPA].copy_from_slice(&spa);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_becomes_its_reply() {
        let mut a = [0u8; 28];
        a[..6].copy_from_slice(&ETHERNET_IPV4);
        a[6..8].copy_from_slice(&[0, 1]);
        a[8..14].copy_from_slice(&[2, 0, 0, 0, 0, 1]);
        a[14..18].copy_from_slice(&[10, 0, 0, 1]);
        a[24..28].copy_from_slice(&[10, 0, 0, 2]);
        let mut p = ArpPacket::new_checked(&mut a[..]).unwrap();
        assert_eq!((p.operation(), p.sender_ip(), p.target_ip()), (REQUEST, [10, 0, 0, 1], [10, 0, 0, 2]));
        p.make_reply([2, 0, 0, 0, 0, 2]);
        assert_eq!((p.operation(), p.sender_mac(), p.sender_ip()), (REPLY, [2, 0, 0, 0, 0, 2], [10, 0, 0, 2]));
        assert_eq!((p.target_mac(), p.target_ip()), ([2, 0, 0, 0, 0, 1], [10, 0, 0, 1]));
        assert_eq!(ArpPacket::new_checked(&a[..27]).unwrap_err(), Error::Truncated);
        a[1] = 6;
        assert_eq!(ArpPacket::new_checked(&a[..]).unwrap_err(), Error::Malformed);
    }
}
