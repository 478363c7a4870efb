//! How NSH packets travel between forwarders: over Ethernet (EtherType
//! 0x894F, RFC 8300 9.1), or over VXLAN-GPE (draft-ietf-nvo3-vxlan-gpe:
//! outer IPv4, UDP to 4790, a GPE header whose Next Protocol says NSH)
//! when the forwarders are not on one link. The outer IPv4 and UDP
//! headers are written afresh for each hop (addresses, lengths, header
//! checksum; the UDP checksum zero, as IPv4 allows).

use nfv_core::packet::flags;
use nfv_core::{Meta, PacketMut};
use nfv_net::wire::nsh::{self, gpe};
use nfv_net::wire::{Ipv4Packet, Ipv4Repr, UdpPacket, UdpRepr, ethertype, ipv4, proto};
use serde::Deserialize;

/// The transport of a forwarder or classifier.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Transport {
    /// NSH right after the Ethernet header.
    #[default]
    Ethernet,
    /// NSH in VXLAN-GPE in UDP in IPv4.
    VxlanGpe,
}

/// Where the NSH header starts over VXLAN-GPE (Ethernet, IPv4 without
/// options, UDP, GPE).
pub const GPE_AT: usize = 14 + 20 + 8 + gpe::HEADER_LEN;

impl Transport {
    /// The outer headers in front of NSH, addresses and lengths left for
    /// [`Transport::address`]: `vni` goes in the GPE header.
    pub fn template(self, vni: u32) -> Vec<u8> {
        match self {
            Transport::Ethernet => {
                let mut h = vec![0u8; 14];
                h[12..14].copy_from_slice(&nsh::ETHERTYPE.to_be_bytes());
                h
            }
            Transport::VxlanGpe => {
                let mut h = vec![0u8; GPE_AT];
                h[12..14].copy_from_slice(&ethertype::IPV4.to_be_bytes());
                gpe::emit(&mut h[42..], vni, nsh::next::NSH);
                h
            }
        }
    }

    /// Where the NSH header of packet `p` is, if it is an NSH packet of
    /// this transport to us (`local`: our VXLAN-GPE address).
    #[inline]
    pub fn nsh_at(self, p: &PacketMut<'_>, local: [u8; 4]) -> Option<usize> {
        let m: &Meta = p.meta();
        match self {
            Transport::Ethernet => (m.ethertype == nsh::ETHERTYPE).then_some(m.l3_off as usize),
            Transport::VxlanGpe => {
                if m.ethertype != ethertype::IPV4 || m.flags & flags::L4_OK == 0 || m.l4_proto != proto::UDP {
                    return None;
                }
                let d = p.data();
                let l4 = m.l4_off as usize;
                let udp = UdpPacket::new_unchecked(&d[l4..]);
                if udp.dst_port() != gpe::PORT || Ipv4Packet::new_unchecked(&d[m.l3_off as usize..]).dst_addr() != local
                {
                    return None;
                }
                let (_, next) = gpe::parse(udp.payload())?;
                (next == nsh::next::NSH && l4 + 8 + gpe::HEADER_LEN == GPE_AT).then_some(GPE_AT)
            }
        }
    }

    /// Writes the outer IPv4 and UDP headers of a packet for the hop from
    /// `src` to `dst` (lengths from the packet's); nothing over Ethernet.
    #[inline]
    pub fn address(self, p: &mut PacketMut<'_>, src: [u8; 4], dst: [u8; 4]) {
        if self == Transport::Ethernet || p.len() < GPE_AT {
            return;
        }
        let len = p.len();
        let d = p.data_mut();
        let repr = Ipv4Repr {
            src,
            dst,
            protocol: proto::UDP,
            payload_len: len - 34,
            ttl: 64,
            tos: 0,
            ident: 0,
            frag_field: ipv4::DONT_FRAG,
        };
        repr.emit(&mut d[14..34]);
        // The source port keeps what the classifier chose (its entropy).
        let sport = UdpPacket::new_unchecked(&d[34..42]).src_port();
        UdpRepr { src_port: sport.max(49152), dst_port: gpe::PORT, payload_len: len - 42 }.emit(&mut d[34..42]);
    }
}
