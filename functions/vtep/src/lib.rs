//! VTEP (work in progress).

pub mod fdb;
pub mod wire;
