//! `nat44`: source and destination NAT for IPv4 as an operator deploys it
//! at a network's edge (RFC 4787, RFC 5382, RFC 5508, RFC 7857).
//!
//! [`sessions`] holds a worker's mappings and sessions (nfv-core's
//! `flowindex` finds them, its `portmap` hands out outside ports, its
//! `rewrite` rewrites headers and checksums), [`frags`] follows fragments, [`config`] the TOML
//! parameters, [`stage`] the data path, [`steer`] which worker holds a
//! packet's state when several run the chain.

#![warn(missing_docs)]

pub mod builder;
pub mod config;
pub mod frags;
pub mod sessions;
pub mod stage;
pub mod steer;
pub mod table;

use nfv_core::StageRegistry;

/// Registers the `nat44` stage kind.
pub fn register(r: &mut StageRegistry) {
    r.register(Box::new(builder::NatFactory));
}
