//! The `Port` trait and its in-memory backends.
//!
//! A port object is one queue of one interface, owned by one worker. It
//! receives into frames taken from the worker's pool and transmits frames
//! the worker hands it; backends that send asynchronously (AF_XDP) return
//! frames to the pool when the kernel completes them.

#[cfg(feature = "af-xdp")]
pub mod afxdp;
pub mod generator;
pub mod pcap;
pub mod sink;

use std::sync::Arc;

use crate::batch::Batch;
use crate::frame::FramePool;
use crate::packet::{PktDesc, PortId};
use crate::telemetry::PortCounters;

/// Identity shared by every backend.
#[derive(Clone, Debug)]
pub struct PortInfo {
    /// Index in the running configuration.
    pub id: PortId,
    /// Configured name.
    pub name: Arc<str>,
    /// MAC address used as source for frames we originate.
    pub mac: [u8; 6],
    /// Counters of this instance.
    pub counters: Arc<PortCounters>,
}

impl PortInfo {
    /// Identity with fresh counters declaring `reasons` as drop reasons.
    pub fn new(id: PortId, name: &str, mac: [u8; 6], reasons: &'static [&'static str]) -> Self {
        Self { id, name: name.into(), mac, counters: Arc::new(PortCounters::new(name, reasons)) }
    }
}

/// One queue of a network port, driven by one worker.
pub trait Port: Send {
    /// Identity and counters.
    fn info(&self) -> &PortInfo;

    /// Receives up to `batch.room()` packets into frames from `pool`,
    /// sets `meta.port`, and returns how many were added.
    fn rx_burst(&mut self, pool: &mut FramePool, batch: &mut Batch) -> usize;

    /// Transmits every descriptor in `pkts` and leaves it empty. Frames it
    /// cannot send are freed to `pool` and counted under a reason.
    fn tx_burst(&mut self, pool: &mut FramePool, pkts: &mut Vec<PktDesc>);

    /// Lends the kernel frames to receive into before the worker starts
    /// polling, so what arrives before its first poll (a neighbour's
    /// answer to the slow path's first resolution) is not dropped.
    fn prime(&mut self, _pool: &mut FramePool) {}

    /// Pushes out anything buffered and reclaims completed frames; called
    /// when the worker is idle, every few busy polls, and at shutdown.
    /// Returns true while frames still wait to be sent, so the worker
    /// flushes again soon.
    fn flush(&mut self, _pool: &mut FramePool) -> bool {
        false
    }

    /// Last call before the port closes: flushes until nothing waits (or a
    /// device stops taking frames) and reads final counters (kernel
    /// statistics, too costly for every flush).
    fn finish(&mut self, pool: &mut FramePool) {
        self.flush(pool);
    }

    /// True when a finite source (a pcap file, a generator with a count)
    /// has nothing more to give.
    fn exhausted(&self) -> bool {
        false
    }
}
