//! `nat44`: source and destination NAT for IPv4 as an operator deploys it
//! at a network's edge (RFC 4787, RFC 5382, RFC 5508, RFC 7857).

pub mod frags;
pub mod index;
pub mod ports;
pub mod sessions;
pub mod translate;
