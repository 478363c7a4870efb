//! Typed zero-copy views of L2-L4 headers (and ARP), in smoltcp's `wire` shape: a
//! view wraps a byte buffer (`&[u8]`, `&mut [u8]`), `new_checked` refuses
//! what is not a well-formed header, `new_unchecked` trusts the caller
//! (the input parser already checked, `Meta::flags`), named accessors read
//! and write fields in place, and a `*Repr` emits a header we originate.
//! Field offsets live here and nowhere else; the accessors compile to the
//! same loads and stores as the indexing they replace.

mod field;

/// A view type: a buffer wrapped, `new_unchecked` and `into_inner`, and
/// the two accessors the field methods use; with `whole at N`, the
/// `new_checked` of a header of fixed length N. One definition for every
/// header's view, in smoltcp's shape.
macro_rules! view {
    ($(#[$doc:meta])* $name:ident, whole at $len:expr) => {
        view! { $(#[$doc])* $name }

        impl<T: AsRef<[u8]>> $name<T> {
            /// A view of at least a whole header (its fields say nothing
            /// of its length).
            #[inline]
            pub fn new_checked(buffer: T) -> Result<Self, Error> {
                if buffer.as_ref().len() < $len {
                    return Err(Error::Truncated);
                }
                Ok(Self { buffer })
            }
        }
    };
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub struct $name<T: AsRef<[u8]>> {
            buffer: T,
        }

        impl<T: AsRef<[u8]>> $name<T> {
            /// A view without checks: the caller (the input parser's
            /// flags) knows the header is there; a field past the end
            /// panics, as indexing would.
            #[inline(always)]
            pub const fn new_unchecked(buffer: T) -> Self {
                Self { buffer }
            }

            /// The underlying buffer.
            #[inline(always)]
            pub fn into_inner(self) -> T {
                self.buffer
            }

            #[inline(always)]
            fn d(&self) -> &[u8] {
                self.buffer.as_ref()
            }
        }

        impl<T: AsRef<[u8]> + AsMut<[u8]>> $name<T> {
            #[allow(dead_code)]
            #[inline(always)]
            fn m(&mut self) -> &mut [u8] {
                self.buffer.as_mut()
            }
        }
    };
}
use view;

pub mod arp;
pub mod ethernet;
pub mod icmp;
pub mod ipv4;
pub mod ipv6;
pub mod nsh;
pub mod tcp;
pub mod udp;

pub use arp::ArpPacket;
pub use ethernet::{EthernetFrame, EthernetRepr};
pub use icmp::IcmpPacket;
pub use ipv4::{Ipv4Packet, Ipv4Repr};
pub use ipv6::{Ipv6Packet, Ipv6Repr};
pub use nsh::{NshPacket, NshRepr};
pub use tcp::TcpPacket;
pub use udp::{UdpPacket, UdpRepr};

/// The source and destination ports at the start of a TCP, UDP or SCTP
/// header, which all put them first (RFC 9293, RFC 768, RFC 9260): the
/// flow key of whichever it is.
#[inline(always)]
pub fn ports(l4: &[u8]) -> (u16, u16) {
    let u = UdpPacket::new_unchecked(l4);
    (u.src_port(), u.dst_port())
}

/// Writes the ports at the start of a TCP, UDP or SCTP header.
#[inline(always)]
pub fn set_ports(l4: &mut [u8], src: u16, dst: u16) {
    let mut u = UdpPacket::new_unchecked(l4);
    u.set_src_port(src);
    u.set_dst_port(dst);
}

/// Why a checked view refused a buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// The buffer ends inside the header.
    Truncated,
    /// A field contradicts the header's shape (version, lengths).
    Malformed,
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Error::Truncated => "truncated header",
            Error::Malformed => "malformed header",
        })
    }
}

impl std::error::Error for Error {}

/// EtherTypes this code names (IEEE registry).
pub mod ethertype {
    /// IPv4.
    pub const IPV4: u16 = 0x0800;
    /// ARP.
    pub const ARP: u16 = 0x0806;
    /// IPv6.
    pub const IPV6: u16 = 0x86dd;
    /// 802.1Q VLAN tag.
    pub const VLAN: u16 = 0x8100;
    /// 802.1ad service tag (QinQ).
    pub const QINQ: u16 = 0x88a8;
    /// Pre-standard QinQ tag some switches still send.
    pub const QINQ_OLD: u16 = 0x9100;
}

/// IP protocol numbers this code names (IANA registry).
pub mod proto {
    /// ICMP.
    pub const ICMP: u8 = 1;
    /// IP in IP (RFC 2003).
    pub const IPIP: u8 = 4;
    /// TCP.
    pub const TCP: u8 = 6;
    /// UDP.
    pub const UDP: u8 = 17;
    /// IPv6 in IP (RFC 4213).
    pub const IPV6: u8 = 41;
    /// ICMPv6.
    pub const ICMPV6: u8 = 58;
    /// SCTP.
    pub const SCTP: u8 = 132;
}
