//! Ethernet II frame view (IEEE 802.3 clause 3.2.6 Length/Type) and
//! 802.1Q / 802.1ad VLAN tags (IEEE 802.1Q clause 9.6).

use super::{Error, ethertype, field};

mod f {
    use super::field::Field;
    pub const DST: Field = 0..6;
    pub const SRC: Field = 6..12;
    pub const TYPE: Field = 12..14;
    /// A VLAN tag's TCI and the EtherType it carries, after the TPID.
    pub const TAG_TCI: Field = 14..16;
    pub const TAG_TYPE: Field = 16..18;
}

/// Length of the header without tags.
pub const HEADER_LEN: usize = 14;
/// Length of one VLAN tag.
pub const TAG_LEN: usize = 4;

super::view! {
    /// A read/write view of an Ethernet header at the start of `buffer`.
    EthernetFrame, whole at HEADER_LEN
}

impl<T: AsRef<[u8]>> EthernetFrame<T> {
    /// Destination address.
    #[inline(always)]
    pub fn dst_addr(&self) -> [u8; 6] {
        field::array(self.d(), f::DST)
    }

    /// Source address.
    #[inline(always)]
    pub fn src_addr(&self) -> [u8; 6] {
        field::array(self.d(), f::SRC)
    }

    /// The EtherType (a TPID when the frame is tagged).
    #[inline(always)]
    pub fn ethertype(&self) -> u16 {
        field::rd16(self.d(), f::TYPE)
    }

    /// True when the destination is a group (multicast or broadcast)
    /// address: the I/G bit (IEEE 802 clause 8.2).
    #[inline(always)]
    pub fn is_group(&self) -> bool {
        self.d()[0] & 1 != 0
    }

    /// The outer VLAN tag: (TCI, the EtherType it carries), or `None`
    /// when untagged or the tag is cut short.
    #[inline]
    pub fn vlan(&self) -> Option<(u16, u16)> {
        let tpid = self.ethertype();
        let tagged = tpid == ethertype::VLAN || tpid == ethertype::QINQ || tpid == ethertype::QINQ_OLD;
        (tagged && self.d().len() >= HEADER_LEN + TAG_LEN)
            .then(|| (field::rd16(self.d(), f::TAG_TCI), field::rd16(self.d(), f::TAG_TYPE)))
    }

    /// What follows the untagged header.
    #[inline(always)]
    pub fn payload(&self) -> &[u8] {
        &self.d()[HEADER_LEN..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> EthernetFrame<T> {
    /// Sets the destination address.
    #[inline(always)]
    pub fn set_dst_addr(&mut self, a: [u8; 6]) {
        self.buffer.as_mut()[f::DST].copy_from_slice(&a)
    }

    /// Sets the source address.
    #[inline(always)]
    pub fn set_src_addr(&mut self, a: [u8; 6]) {
        self.buffer.as_mut()[f::SRC].copy_from_slice(&a)
    }

    /// Sets both addresses (a next hop's rewrite).
    #[inline(always)]
    pub fn set_addrs(&mut self, dst: [u8; 6], src: [u8; 6]) {
        self.set_dst_addr(dst);
        self.set_src_addr(src);
    }

    /// Swaps source and destination (a reply in place).
    #[inline(always)]
    pub fn swap_addrs(&mut self) {
        let (dst, src) = (self.dst_addr(), self.src_addr());
        self.set_addrs(src, dst);
    }

    /// Sets the EtherType.
    #[inline(always)]
    pub fn set_ethertype(&mut self, v: u16) {
        field::wr16(self.buffer.as_mut(), f::TYPE, v)
    }

    /// What follows the untagged header, writable.
    #[inline(always)]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[HEADER_LEN..]
    }
}

/// An untagged header to emit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EthernetRepr {
    /// Destination address.
    pub dst: [u8; 6],
    /// Source address.
    pub src: [u8; 6],
    /// EtherType.
    pub ethertype: u16,
}

impl EthernetRepr {
    /// Writes the header into the first 14 octets of `buffer`.
    #[inline]
    pub fn emit(&self, buffer: &mut [u8]) {
        let mut e = EthernetFrame::new_unchecked(&mut buffer[..HEADER_LEN]);
        e.set_addrs(self.dst, self.src);
        e.set_ethertype(self.ethertype);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_addresses_type_and_a_vlan_tag() {
        let mut f = vec![0xff; 6];
        f.extend_from_slice(&[2, 0, 0, 0, 0, 1]);
        f.extend_from_slice(&[0x81, 0x00, 0x20, 0x64, 0x08, 0x00]);
        let e = EthernetFrame::new_checked(&f[..]).unwrap();
        assert!(e.is_group());
        assert_eq!((e.src_addr(), e.ethertype()), ([2, 0, 0, 0, 0, 1], ethertype::VLAN));
        assert_eq!(e.vlan(), Some((0x2064, ethertype::IPV4)));
        assert_eq!(EthernetFrame::new_checked(&f[..13]).unwrap_err(), Error::Truncated);
        assert_eq!(EthernetFrame::new_checked(&f[..14]).unwrap().vlan(), None, "tag cut short");
    }

    #[test]
    fn emits_and_swaps() {
        let mut b = [0u8; 14];
        EthernetRepr { dst: [2, 0, 0, 0, 0, 2], src: [2, 0, 0, 0, 0, 1], ethertype: ethertype::IPV6 }.emit(&mut b);
        let mut e = EthernetFrame::new_unchecked(&mut b[..]);
        e.swap_addrs();
        assert_eq!((e.dst_addr(), e.src_addr(), e.ethertype()), ([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2], 0x86dd));
    }
}
