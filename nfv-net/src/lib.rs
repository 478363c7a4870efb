//! nfv-net: the packet library every stage of the data plane stands on,
//! knowing nothing of batches, workers or configuration.
//!
//! - [`wire`]: typed zero-copy views of Ethernet/VLAN, IPv4, IPv6, UDP,
//!   TCP and ICMP/ICMPv6 headers (smoltcp's shape) and the `*Repr`s that
//!   emit them; the only place header offsets are written down.
//! - [`checksum`]: the Internet checksum and its incremental update.
//! - [`icmp_error`]: the ICMP and ICMPv6 errors every stage and the slow
//!   path send, written over the packet they quote.
//! - [`rewrite`]: address and port rewrites with their checksum updates,
//!   ICMP errors' quoted headers included (NAT, LB).
//! - [`tunnel`]: the outer headers of VXLAN, Geneve, GTP-U and IP-in-IP
//!   tunnels, built once per endpoint, completed per packet.
//! - [`flowindex`], [`portmap`]: the flow tables' index and port
//!   allocation maps; [`mem`]: huge pages and prefetch for them.
//! - [`be`]: big-endian fields at computed offsets, for the protocol
//!   headers that have no view here (GTP-U, VXLAN, PFCP).

#![warn(missing_docs)]

pub mod be;
pub mod checksum;
pub mod flowindex;
pub mod icmp_error;
pub mod mem;
pub mod portmap;
pub mod rewrite;
pub mod tunnel;
pub mod wire;
