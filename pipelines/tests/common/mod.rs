//! Helpers shared by the integration tests.

pub mod packet;
pub mod testbed;
