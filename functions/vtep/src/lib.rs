//! `vtep`: a VXLAN (RFC 7348) or Geneve (RFC 8926) tunnel endpoint.
//!
//! One stage handles both directions, by the port a batch came in on:
//! frames from a bridge domain's local ports are switched by the
//! forwarding database ([`fdb`]) to another local port or encapsulated
//! toward a remote VTEP (flooded, by head-end replication, when the
//! destination is unknown or a group address); tunnel packets on the
//! underlay port addressed to us are validated, decapsulated, learned from
//! and delivered to the bridge domain's local ports, never back into the
//! overlay (split horizon). Anything else on the underlay port goes on
//! down the chain.

pub mod builder;
pub mod config;
pub mod fdb;
pub mod outer;
pub mod stage;
pub mod table;
pub mod wire;

use nfv_core::StageRegistry;

/// Registers the `vtep` stage kind.
pub fn register(r: &mut StageRegistry) {
    r.register(Box::new(builder::VtepFactory));
}
