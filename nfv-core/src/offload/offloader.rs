//! A stage's end of the engine: bounded queues of changes out and
//! touches back, no system call, lock or allocation per call.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crossbeam::queue::ArrayQueue;

use super::{
    Engine, Entry, Filter, FlowKey, FlowOp, FlowValue, Key, L2Key, L2Value, UpfConf, UpfDownlink, UpfUplink,
    UsageReader, Vtep,
};
use crate::packet::PortId;

/// What one stage instance's offload did (shown in its report).
#[derive(Debug, Default)]
pub struct OffloadCounters {
    /// Flow directions handed to the engine.
    pub installed: AtomicU64,
    /// Removals handed to the engine.
    pub removed: AtomicU64,
    /// Installs refused because the queue was full (the flow stayed in
    /// the workers).
    pub refused: AtomicU64,
    /// Installs the engine could not apply (map full).
    pub failed: AtomicU64,
}

/// A stage instance's end of the queues to the engine.
pub(super) struct Link {
    pub(super) ops: ArrayQueue<FlowOp>,
    /// Changes the engine's task applied (or gave up on) so far.
    pub(super) applied: AtomicU64,
    pub(super) touched: ArrayQueue<Key>,
    pub(super) counters: OffloadCounters,
}

/// What a stage placed in XDP holds: installs and removes flows, learns
/// which were active. No system call, lock or allocation per call.
pub struct Offloader {
    pub(super) link: Arc<Link>,
    pub(super) ifindex: Arc<[u32]>,
    pub(super) waiting: Vec<Key>,
    pub(super) engine: Arc<dyn Engine>,
    /// Changes queued so far.
    pub(super) sent: u64,
}

impl Offloader {
    /// Installs one direction of a flow, sent out of `port` (its
    /// interface index is filled in). False when refused (the queue is
    /// full: the flow stays in the workers; try again on a later packet).
    #[inline]
    pub fn install(&mut self, key: FlowKey, mut value: FlowValue, port: PortId) -> bool {
        let Some(ifindex) = self.ready(Some(port)) else { return false };
        value.ifindex = ifindex;
        self.push(Entry::Flow(key, value))
    }

    /// Installs a VTEP's MAC: behind local `port` (its interface filled
    /// in), or behind the remote VTEP `value` names (`port` None). False
    /// when refused, as [`Self::install`].
    #[inline]
    pub fn install_l2(&mut self, key: L2Key, mut value: L2Value, port: Option<PortId>) -> bool {
        let Some(ifindex) = self.ready(port) else { return false };
        if port.is_some() {
            value.ifindex = ifindex;
        }
        self.push(Entry::L2(key, value))
    }

    /// Installs a UPF session's uplink (TEID `teid`), sent out of `port`
    /// (N6). False when refused, as [`Self::install`].
    #[inline]
    pub fn install_uplink(&mut self, teid: u32, mut value: UpfUplink, port: PortId) -> bool {
        let Some(ifindex) = self.ready(Some(port)) else { return false };
        value.ifindex = ifindex;
        self.push(Entry::Uplink(teid, value))
    }

    /// Installs a UPF session's downlink (UE address `ue`), sent out of
    /// `port` (N3). False when refused, as [`Self::install`].
    #[inline]
    pub fn install_downlink(&mut self, ue: u32, mut value: UpfDownlink, port: PortId) -> bool {
        let Some(ifindex) = self.ready(Some(port)) else { return false };
        value.ifindex = ifindex;
        self.push(Entry::Downlink(ue, value))
    }

    /// Whether an install may go now (no removal waits that cannot be
    /// queued first: else refused, counted), with `port`'s interface
    /// (`None` when `port` is not a device; 0 when no port is named).
    #[inline]
    fn ready(&mut self, port: Option<PortId>) -> Option<u32> {
        if !self.waiting.is_empty() && !self.retry() {
            self.link.counters.refused.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        match port {
            Some(p) => self.ifindex.get(p as usize).copied().filter(|&i| i != 0),
            None => Some(0),
        }
    }

    fn push(&mut self, e: Entry) -> bool {
        let ok = self.send(FlowOp::Install(e));
        let c = if ok { &self.link.counters.installed } else { &self.link.counters.refused };
        c.fetch_add(1, Ordering::Relaxed);
        ok
    }

    /// Removes one direction of a flow (before software changes its
    /// state). Never lost: a full queue keeps it here until there is room.
    #[inline]
    pub fn remove(&mut self, key: FlowKey) {
        self.remove_key(Key::Flow(key));
    }

    /// Removes a VTEP's MAC, as [`Self::remove`].
    #[inline]
    pub fn remove_l2(&mut self, key: L2Key) {
        self.remove_key(Key::L2(key));
    }

    /// Removes a UPF session's uplink, as [`Self::remove`].
    #[inline]
    pub fn remove_uplink(&mut self, teid: u32) {
        self.remove_key(Key::Teid(teid));
    }

    /// Removes a UPF session's downlink, as [`Self::remove`].
    #[inline]
    pub fn remove_downlink(&mut self, ue: u32) {
        self.remove_key(Key::Ue(ue));
    }

    fn remove_key(&mut self, key: Key) {
        self.link.counters.removed.fetch_add(1, Ordering::Relaxed);
        if (!self.waiting.is_empty() && !self.retry()) || !self.send(FlowOp::Remove(key)) {
            if self.waiting.len() < self.waiting.capacity() {
                self.waiting.push(key);
            } else {
                // Nowhere to keep it (20,480 changes behind): counted;
                // the flow forwards on in XDP until replaced.
                self.link.counters.failed.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Queues one change; false when the queue is full.
    #[inline]
    fn send(&mut self, op: FlowOp) -> bool {
        let ok = self.link.ops.push(op).is_ok();
        self.sent += u64::from(ok);
        ok
    }

    /// Whether the engine applied everything this stage sent (no removal
    /// waits here either): what XDP does is what the stage last said.
    pub fn drained(&self) -> bool {
        self.waiting.is_empty() && self.link.applied.load(Ordering::Acquire) >= self.sent
    }

    /// Queues the removals that waited; true when none waits any more.
    #[cold]
    fn retry(&mut self) -> bool {
        while let Some(&k) = self.waiting.first() {
            if !self.send(FlowOp::Remove(k)) {
                return false;
            }
            self.waiting.swap_remove(0);
        }
        true
    }

    /// An entry of this stage the engine saw packets of since it last
    /// said so (the stage refreshes its idle timer).
    #[inline]
    pub fn touched(&mut self) -> Option<Key> {
        if !self.waiting.is_empty() {
            self.retry();
        }
        self.link.touched.pop()
    }

    /// Hands the engine the stage's VTEP (once, when the stage takes the
    /// offloader: it is applied before any MAC the stage installs).
    pub fn set_vtep(&mut self, v: Vtep) -> bool {
        self.send(FlowOp::Vtep(Arc::new(v)))
    }

    /// Hands the engine the stage's UPF (once, when the stage takes the
    /// offloader: applied before any session it installs).
    pub fn set_upf(&mut self, u: UpfConf) -> bool {
        self.send(FlowOp::Upf(u))
    }

    /// What reads back the program's URR counts (for the N4 side).
    pub fn usage_reader(&self) -> UsageReader {
        UsageReader(self.engine.clone())
    }

    /// Replaces the filter (an ACL taking a new rule set). False when the
    /// queue is full: try again later.
    pub fn set_filter(&mut self, f: &Arc<Filter>) -> bool {
        self.send(FlowOp::Filter(f.clone()))
    }

    /// The counters, for the stage's report.
    pub fn counters(&self) -> &OffloadCounters {
        &self.link.counters
    }

    /// The counters as a line of a stage's report.
    pub fn report_line(&self) -> String {
        let c = &self.link.counters;
        let n = |a: &AtomicU64| a.load(Ordering::Relaxed);
        format!(
            "  xdp: flows installed {} removed {} refused {} failed {}\n",
            n(&c.installed),
            n(&c.removed),
            n(&c.refused),
            n(&c.failed)
        )
    }
}
