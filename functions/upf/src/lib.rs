//! `upf`: a 5G user-plane function: GTP-U tunnels (3GPP TS 29.281)
//! between gNBs (N3) and a data network (N6), forwarding by the packet
//! detection, forwarding, QoS and usage rules of TS 29.244.
//!
//! [`gtpu`] reads and writes GTP-U headers, [`sdf`] parses and matches
//! service data flow filters, [`rules`] holds sessions' PDRs and FARs,
//! [`config`] the TOML parameters, [`stage`] the data path, [`usage`] the
//! URRs' counters, [`held`] the packets of buffering FARs, [`pfcp`] the N4
//! endpoint. Where the plan places the stage in XDP, its plain sessions
//! are forwarded by nfv's XDP program once a worker forwarded them
//! (`stage::offload`, docs/architecture.md).

#![warn(missing_docs)]

pub mod builder;
pub mod config;
pub mod fast;
pub mod gtpu;
pub mod held;
pub mod pfcp;
pub mod rules;
pub mod sdf;
pub mod stage;
pub mod usage;

use nfv_core::StageRegistry;

/// Registers the `upf` stage kind.
pub fn register(r: &mut StageRegistry) {
    r.register(Box::new(builder::UpfFactory));
}
