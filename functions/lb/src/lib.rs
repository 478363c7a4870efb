//! `lb`: an L4 load balancer in the manner of Maglev and Katran: virtual
//! IPs (address, port, protocol) spread over weighted backends.
//!
//! [`maglev`] builds the lookup tables, [`services`] holds the VIPs and
//! backends the workers share (replaced whole on a change),
//! [`conntrack`] each worker's connections, [`config`] the TOML
//! parameters, [`update`] backend changes at run time, [`stage`] the data
//! path.

#![warn(missing_docs)]

pub mod builder;
pub mod config;
pub mod conntrack;
pub mod maglev;
pub mod services;
pub mod stage;
pub mod table;
pub mod update;

use nfv_core::StageRegistry;

/// Registers the `lb` stage kind.
pub fn register(r: &mut StageRegistry) {
    r.register(Box::new(builder::LbFactory));
}
