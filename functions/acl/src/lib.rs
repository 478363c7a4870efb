//! `acl`: a firewall stage that classifies every packet on its 5-tuple
//! (and ingress port, TCP flags) against an ordered rule list and applies
//! the first match's action (permit or deny), counting hits and bytes per
//! rule.
//!
//! [`classify`] holds the classifiers (the fast one and the linear
//! reference), [`rule`] the rule model and its boxes, [`classbench`] the
//! ClassBench file format, [`config`] the TOML parameters, [`rules_file`]
//! rules kept in a file, [`update`] rule updates while traffic flows,
//! [`flows`] the reflect state, [`hits`] the per-rule counters, [`stage`]
//! the data path, [`table`] the `nfv ctl acl` commands.

#![warn(missing_docs)]

pub mod builder;
pub mod classbench;
pub mod classify;
pub mod config;
pub mod flows;
pub mod hits;
pub mod rule;
pub mod rules_file;
pub mod stage;
pub mod table;
pub mod update;
pub mod xdp;

use nfv_core::StageRegistry;

/// Registers the `acl` stage kind.
pub fn register(r: &mut StageRegistry) {
    r.register(Box::new(builder::AclFactory));
}
