//! Service function chaining across instances with NSH (RFC 8300), in
//! RFC 7665's terms:
//!
//! - `nsh-encap` puts a packet on a service path: an NSH header with the
//!   path (SPI) and index (SI) it is configured with and context metadata
//!   (a tenant id and the ingress port; MD type 1 or 2), over Ethernet
//!   (EtherType 0x894F) or VXLAN-GPE, the original frame inside. After a `classify`
//!   stage's branch, it is the service classifier.
//! - `sff`, the service function forwarder, forwards NSH packets by
//!   (SPI, SI) from its path table: to the next forwarder, to a function
//!   of this instance (the `chain` it names, NSH-unaware: the forwarder
//!   proxies, taking the NSH off and keeping it), or out of the path. It
//!   decrements the TTL and drops at 0, and drops at SI 0.
//! - `nsh-return`, at the end of a proxied function's chain, puts the NSH
//!   back, decrements the SI on the function's behalf and forwards by the
//!   path table of the `sff` it names.
//!
//! The path table is inline and in a watched file: a service path is
//! changed while traffic flows (a second firewall swapped in) by editing
//! the file.

pub mod encap;
pub mod paths;
pub mod sff;
pub mod transport;

/// Registers every stage of this crate.
pub fn register(r: &mut nfv_core::StageRegistry) {
    r.register(Box::new(encap::EncapFactory));
    r.register(Box::new(sff::SffFactory));
    r.register(Box::new(sff::ReturnFactory));
}
