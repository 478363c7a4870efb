//! `acl`: a firewall stage that classifies every packet on its 5-tuple
//! (and ingress port, TCP flags) against an ordered rule list and applies
//! the first match's action: permit, deny, or permit+reflect.
//!
//! [`classify`] holds the classifiers (the fast one and the linear
//! reference), [`rule`] the rule model and its boxes, [`classbench`] the
//! ClassBench file format.

pub mod classbench;
pub mod classify;
pub mod rule;
