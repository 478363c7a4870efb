//! nfv-core: the data-plane machinery every network function stands on.
//!
//! The way of a packet: a [`port::Port`] fills a [`batch::Batch`] with
//! frames from the worker's [`frame::FramePool`]; the [`input`] stage
//! parses L2-L4 once into [`packet::Meta`]; the [`graph::Graph`] runs each
//! [`stage::Stage`] of each chain over whole batches in place, moving
//! packets between chains as stages branch them; the [`worker::Worker`]
//! transmits, drops, punts or hands off (to the worker that holds the
//! flow's state, [`handoff`]) each packet by its [`packet::Verdict`] and
//! its [`packet::Egress`].
//! This crate knows no network function by name.

#![warn(missing_docs)]

pub mod adjacency;
pub mod batch;
pub mod config;
pub mod cycles;
mod dispatch;
pub mod filewatch;
pub mod frame;
pub mod graph;
pub mod handoff;
pub mod hwprofile;
pub mod input;
pub mod latency;
pub mod live;
pub mod neighbour;
pub mod offload;
pub mod packet;
pub mod parse;
pub mod plan;
pub mod pod;
pub mod port;
pub mod privilege;
pub mod published;
pub mod reject;
pub mod reload;
pub mod runtime;
pub mod slowpath;
pub mod sockopt;
pub mod stage;
pub mod status;
pub mod telemetry;
pub mod trace;
pub mod worker;
pub mod worker_memory;

pub use batch::Batch;
pub use packet::{ChainId, DropReason, Egress, Meta, NewPacket, PacketMut, PktDesc, PortId, Verdict};
pub use stage::{
    BuildCtx, BuildEnv, ControlTask, Occupancy, Stage, StageBuilder, StageCtx, StageFactory, StageRegistry,
};
