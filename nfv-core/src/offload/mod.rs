//! The workers' side of the XDP engine: what a stage hands below the
//! workers and how it learns back what happened there.
//!
//! The engine itself (the XDP program and its maps, `nfv-hw`) is reached
//! through [`Engine`]. A stage the plan placed in XDP gets an
//! [`Offloader`] ([`crate::stage::Stage::take_offload`]) and, like a
//! SmartNIC's flow offload (OVS hardware offload, conntrack offload),
//! installs a flow once software has established it, with the headers
//! software itself wrote (so what XDP sends is what the worker sent), and
//! removes it before the flow's state changes in software. The stage
//! never makes the system call itself: installs and removals go through
//! a bounded queue to the engine's control task ([`EngineTask`]), which
//! applies them in order, reads the program's `last_seen` per flow once a
//! second and tells the owning stage which of its flows were active
//! ([`Offloader::touched`]), so idle timers stay exact while the packets
//! never reach the workers.

use std::os::fd::RawFd;
use std::sync::Arc;
use std::time::Duration;

use crate::config::XdpMode;

mod memory;
mod offloader;
mod tables;
mod task;

pub use memory::MemoryEngine;
pub use offloader::{OffloadCounters, Offloader};
pub use tables::{
    Entry, FILTER_MAX, Filter, FilterRule, FlowKey, FlowValue, GTPU_OUTER_LEN, Key, L2Key, L2Value, USAGE_SLOTS,
    UpfConf, UpfDownlink, UpfUplink, UsageCounts, Vtep, VtepConf,
};
pub use task::{EngineTask, XdpCounters};

/// What the XDP program does on one port, from the plan: the steps of
/// the chain it enters that run below the workers, in the program's
/// order (filter, TTL, then one way out).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PortProgram {
    /// Filter by an ACL's rules ([`Filter`]): denied packets dropped.
    pub acl: bool,
    /// A VXLAN VTEP's known unicast ([`Vtep`]).
    pub vtep: bool,
    /// Decrement the IPv4 TTL (expiring packets go up).
    pub ttl: bool,
    /// Forward the established flows the stages installed.
    pub flows: bool,
    /// Swap the Ethernet addresses.
    pub macswap: bool,
    /// Send back out of the ingress port.
    pub back: bool,
    /// Cross-connect: send out of `patch_to`.
    pub patch: bool,
    /// The peer port of the cross-connect.
    pub patch_to: Option<crate::packet::PortId>,
    /// A UPF's sessions with a plain PDR and FAR ([`UpfConf`]).
    pub upf: bool,
}

impl PortProgram {
    /// Nothing below the workers: every packet goes up, as with libxdp's
    /// own program.
    pub const NOTHING: Self = Self {
        acl: false,
        vtep: false,
        ttl: false,
        flows: false,
        macswap: false,
        back: false,
        patch: false,
        patch_to: None,
        upf: false,
    };

    /// The steps, named, for the plan and the start-up log.
    pub fn describe(&self) -> String {
        let mut v = Vec::new();
        if self.acl {
            v.push("acl filter");
        }
        if self.vtep {
            v.push("vtep known unicast");
        }
        if self.ttl {
            v.push("ttl-decrement");
        }
        if self.flows {
            v.push("established flows");
        }
        if self.macswap {
            v.push("macswap");
        }
        if self.back {
            v.push("back out of the ingress port");
        }
        if self.patch {
            v.push("cross-connect");
        }
        if self.upf {
            v.push("upf sessions");
        }
        if v.is_empty() { "nothing".into() } else { v.join(", ") }
    }
}

/// The XDP engine as the runtime drives it (implemented by `nfv-hw`'s
/// program; tests may give a double). Every call is a system call: only
/// the runtime's threads make them, never a worker.
pub trait Engine: Send + Sync {
    /// Attaches the program to interface `ifindex` (driver mode, or
    /// generic where `mode` asks or the driver has no hook), doing
    /// `program` there; once per interface, later calls answer the same.
    /// `peer` is the interface a cross-connect sends to (0: none).
    /// Returns whether it runs in driver mode, and a line for the log.
    fn attach(&self, ifindex: u32, mode: XdpMode, program: PortProgram, peer: u32) -> Result<(bool, String), String>;
    /// Sends what goes up on `ifindex` queue `queue` to socket `fd`.
    fn add_socket(&self, ifindex: u32, queue: u32, fd: RawFd) -> Result<(), String>;
    /// Installs (or replaces) an entry (a direction of a flow, a VTEP's
    /// MAC).
    fn insert(&self, entry: &Entry) -> Result<(), String>;
    /// Removes an entry; false when it was not there.
    fn remove(&self, key: &Key) -> Result<bool, String>;
    /// The `last_seen` of an entry (`None`: not installed).
    fn last_seen(&self, key: &Key) -> Result<Option<u64>, String>;
    /// Every installed entry's `last_seen`, read in batches (a few system
    /// calls for the whole table); `Err` where the kernel cannot, and the
    /// task asks entry by entry.
    fn activity(&self) -> Result<Vec<(Key, u64)>, String> {
        Err("no batch reads".into())
    }
    /// Sets the VTEP ([`PortProgram::vtep`]); `ifindex` maps its ports.
    fn set_vtep(&self, vtep: &Vtep, ifindex: &[u32]) -> Result<(), String>;
    /// Replaces the filter ([`PortProgram::acl`]).
    fn set_filter(&self, filter: &Filter) -> Result<(), String>;
    /// Sets the UPF ([`PortProgram::upf`]); `ifindex` maps its ports.
    fn set_upf(&self, upf: &UpfConf, ifindex: &[u32]) -> Result<(), String>;
    /// What the program counted into URR slot `slot` (below
    /// [`USAGE_SLOTS`]) so far: one system call, on a control thread.
    fn usage(&self, slot: u32) -> Result<UsageCounts, String>;
    /// What the program did so far, over every CPU.
    fn stats(&self) -> EngineStats;
}

/// What the XDP program did so far ([`Engine::stats`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EngineStats {
    /// Packets it forwarded (or dropped by a filter) itself.
    pub forwarded: u64,
    /// Packets it sent up to the workers.
    pub up: u64,
    /// Its runs and the nanoseconds they took, when the kernel keeps BPF
    /// statistics (`sysctl kernel.bpf_stats_enabled=1`; zero otherwise).
    pub runs: u64,
    /// See `runs`.
    pub run_ns: u64,
}

/// One change to the program's tables.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FlowOp {
    /// Install or replace.
    Install(Entry),
    /// Remove.
    Remove(Key),
    /// The VTEP (once, at the start).
    Vtep(Arc<Vtep>),
    /// A new filter (every worker's instance of the ACL sends the same:
    /// applied once).
    Filter(Arc<Filter>),
    /// The UPF (every worker's instance sends the same: applied once).
    Upf(UpfConf),
}

/// Reads what the program counted for the UPF's URRs: a system call per
/// read, for the N4 side's usage reports (never a worker).
#[derive(Clone)]
pub struct UsageReader(pub(crate) Arc<dyn Engine>);

impl UsageReader {
    /// Slot `slot`'s counts (zero when the engine cannot say: told once
    /// by the caller's report, which then misses only what XDP counted).
    pub fn read(&self, slot: u32) -> UsageCounts {
        self.0.usage(slot).unwrap_or_default()
    }
}

impl std::fmt::Debug for UsageReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UsageReader")
    }
}

/// Changes a stage instance may have waiting at once: past this an
/// install is refused (the flow stays in the workers, counted) and a
/// removal waits in the stage ([`REMOVALS_WAITING`]).
pub const OPS_DEPTH: usize = 16384;
/// Removals a stage keeps while its queue is full: each is retried
/// before anything else it sends.
pub const REMOVALS_WAITING: usize = 4096;
/// Active flows reported back per second and stage at most.
pub const TOUCHED_DEPTH: usize = 65536;
/// How often the engine reads the flows' activity.
pub const SCAN_EVERY: Duration = Duration::from_secs(1);
