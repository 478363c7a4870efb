//! Helpers shared by the integration tests.

pub mod lb_bed;
pub mod packet;
pub mod testbed;
