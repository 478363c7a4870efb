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

use std::collections::HashMap;
use std::os::fd::RawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crossbeam::queue::ArrayQueue;

use crate::config::XdpMode;
use crate::packet::PortId;

/// An established flow as one direction's packets show it (the program's
/// `struct flow_key`): addresses and ports as on the wire, padding zero
/// (the map compares every byte).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct FlowKey {
    /// Source address, network order.
    pub src: [u8; 4],
    /// Destination address, network order.
    pub dst: [u8; 4],
    /// Source port, network order.
    pub sport: [u8; 2],
    /// Destination port, network order.
    pub dport: [u8; 2],
    /// IP protocol.
    pub proto: u8,
    pad: [u8; 3],
}

impl FlowKey {
    /// The key of packets from `src:sport` to `dst:dport` (host order).
    pub fn new(proto: u8, src: u32, sport: u16, dst: u32, dport: u16) -> Self {
        Self {
            src: src.to_be_bytes(),
            dst: dst.to_be_bytes(),
            sport: sport.to_be_bytes(),
            dport: dport.to_be_bytes(),
            proto,
            pad: [0; 3],
        }
    }
}

/// What one direction of a flow becomes (the program's `struct
/// flow_val`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FlowValue {
    /// The new address, network order.
    pub addr: [u8; 4],
    /// The new port, network order.
    pub port: [u8; 2],
    /// 0: the source changes (inside to outside), 1: the destination,
    /// 2: nothing (only the Ethernet addresses).
    pub side: u8,
    pad: u8,
    /// Ethernet destination to send with.
    pub dmac: [u8; 6],
    /// Ethernet source to send with.
    pub smac: [u8; 6],
    /// Egress interface.
    pub ifindex: u32,
    pad2: u32,
    /// `bpf_ktime_get_ns` of the last packet forwarded here.
    pub last_seen: u64,
}

impl FlowValue {
    /// Forward unchanged but for the Ethernet addresses (a direct server
    /// return backend), from `smac` to `dmac` out of `ifindex`.
    pub fn forward(dmac: [u8; 6], smac: [u8; 6], ifindex: u32) -> Self {
        Self { side: 2, dmac, smac, ifindex, ..Self::default() }
    }

    /// Translate the source (`outbound`) or the destination to
    /// `addr:port` (host order), sending from `smac` to `dmac` out of
    /// `ifindex`.
    pub fn new(outbound: bool, addr: u32, port: u16, dmac: [u8; 6], smac: [u8; 6], ifindex: u32) -> Self {
        Self {
            addr: addr.to_be_bytes(),
            port: port.to_be_bytes(),
            side: u8::from(!outbound),
            dmac,
            smac,
            ifindex,
            ..Self::default()
        }
    }
}

/// An ACL rule as the XDP program's prefix and port filter holds it (its
/// `struct acl_rule`, IPv4): addresses and masks as on the wire, ranges
/// inclusive in host order (ICMP: type and code).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FilterRule {
    /// Source network.
    pub src: [u8; 4],
    /// Source mask.
    pub src_mask: [u8; 4],
    /// Destination network.
    pub dst: [u8; 4],
    /// Destination mask.
    pub dst_mask: [u8; 4],
    /// Source port (ICMP type) range.
    pub sport: (u16, u16),
    /// Destination port (ICMP code) range.
    pub dport: (u16, u16),
    /// Protocol value.
    pub proto: u8,
    /// Protocol mask (0: any).
    pub proto_mask: u8,
    /// TCP flags value.
    pub flags: u8,
    /// TCP flags mask.
    pub flags_mask: u8,
    /// 0 permit, 1 deny.
    pub action: u32,
}

/// Most rules the XDP filter holds.
pub const FILTER_MAX: usize = 256;

/// A first-match filter for IPv4 (an ACL whose rules the program can
/// hold): what it denies is dropped in XDP, what it permits goes on
/// (IPv6 and IPv4 with options go up to the workers' ACL).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Filter {
    /// The rule set is one the filter cannot hold: every packet goes up
    /// to the workers (nothing after the ACL may act on a packet in XDP
    /// that the workers' ACL has not decided).
    pub up: bool,
    /// The rules, in order (at most [`FILTER_MAX`]).
    pub rules: Vec<FilterRule>,
    /// No rule matched: drop.
    pub default_deny: bool,
    /// Frames that are neither IPv4 nor IPv6: drop.
    pub non_ip_deny: bool,
}

impl Filter {
    /// Sends everything up (what the filter holds while a rule set it
    /// cannot express is in force: the workers' ACL decides).
    pub fn up() -> Self {
        Self { up: true, ..Self::default() }
    }
}

/// What the XDP program does on one port, from the plan: the steps of
/// the chain it enters that run below the workers, in the program's
/// order (filter, TTL, then one way out).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PortProgram {
    /// Filter by an ACL's rules ([`Filter`]): denied packets dropped.
    pub acl: bool,
    /// Decrement the IPv4 TTL (expiring packets go up).
    pub ttl: bool,
    /// Forward the established flows the stages installed.
    pub flows: bool,
    /// Swap the Ethernet addresses.
    pub macswap: bool,
    /// Send back out of the ingress port.
    pub back: bool,
}

impl PortProgram {
    /// Nothing below the workers: every packet goes up, as with libxdp's
    /// own program.
    pub const NOTHING: Self = Self { acl: false, ttl: false, flows: false, macswap: false, back: false };

    /// The steps, named, for the plan and the start-up log.
    pub fn describe(&self) -> String {
        let mut v = Vec::new();
        if self.acl {
            v.push("acl filter");
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
    /// Returns whether it runs in driver mode, and a line for the log.
    fn attach(&self, ifindex: u32, mode: XdpMode, program: PortProgram) -> Result<(bool, String), String>;
    /// Sends what goes up on `ifindex` queue `queue` to socket `fd`.
    fn add_socket(&self, ifindex: u32, queue: u32, fd: RawFd) -> Result<(), String>;
    /// Installs (or replaces) one direction of a flow.
    fn insert(&self, key: &FlowKey, value: &FlowValue) -> Result<(), String>;
    /// Removes one direction of a flow; false when it was not there.
    fn remove(&self, key: &FlowKey) -> Result<bool, String>;
    /// The `last_seen` of a flow (`None`: not installed).
    fn last_seen(&self, key: &FlowKey) -> Result<Option<u64>, String>;
    /// Replaces the filter ([`PortProgram::acl`]).
    fn set_filter(&self, filter: &Filter) -> Result<(), String>;
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
    Install(FlowKey, FlowValue),
    /// Remove.
    Remove(FlowKey),
    /// A new filter (every worker's instance of the ACL sends the same:
    /// applied once).
    Filter(Arc<Filter>),
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

/// What the XDP program did, over every CPU, as of the engine's last
/// look (once a second, and at the end of the run): for the run report
/// and the metrics.
#[derive(Debug, Default)]
pub struct XdpCounters {
    /// Packets the program forwarded (or dropped by a filter) itself.
    pub forwarded: AtomicU64,
    /// Packets it sent up to the workers.
    pub up: AtomicU64,
    /// Flows installed.
    pub flows: AtomicU64,
    /// Runs of the program and their nanoseconds, when the kernel keeps
    /// BPF statistics.
    pub runs: AtomicU64,
    /// See `runs`.
    pub run_ns: AtomicU64,
}

/// A stage instance's end of the queues to the engine.
struct Link {
    ops: ArrayQueue<FlowOp>,
    touched: ArrayQueue<FlowKey>,
    counters: OffloadCounters,
}

/// What a stage placed in XDP holds: installs and removes flows, learns
/// which were active. No system call, lock or allocation per call.
pub struct Offloader {
    link: Arc<Link>,
    ifindex: Arc<[u32]>,
    waiting: Vec<FlowKey>,
}

impl Offloader {
    /// Installs one direction of a flow, sent out of `port` (its
    /// interface index is filled in). False when refused (the queue is
    /// full: the flow stays in the workers; try again on a later packet).
    #[inline]
    pub fn install(&mut self, key: FlowKey, mut value: FlowValue, port: PortId) -> bool {
        if !self.waiting.is_empty() && !self.retry() {
            self.link.counters.refused.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        value.ifindex = self.ifindex.get(port as usize).copied().unwrap_or(0);
        if value.ifindex == 0 {
            return false;
        }
        let ok = self.link.ops.push(FlowOp::Install(key, value)).is_ok();
        let c = if ok { &self.link.counters.installed } else { &self.link.counters.refused };
        c.fetch_add(1, Ordering::Relaxed);
        ok
    }

    /// Removes one direction of a flow (before software changes its
    /// state). Never lost: a full queue keeps it here until there is room.
    #[inline]
    pub fn remove(&mut self, key: FlowKey) {
        self.link.counters.removed.fetch_add(1, Ordering::Relaxed);
        if (!self.waiting.is_empty() && !self.retry()) || self.link.ops.push(FlowOp::Remove(key)).is_err() {
            if self.waiting.len() < self.waiting.capacity() {
                self.waiting.push(key);
            } else {
                // Nowhere to keep it (20,480 changes behind): counted;
                // the flow forwards on in XDP until replaced.
                self.link.counters.failed.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Queues the removals that waited; true when none waits any more.
    #[cold]
    fn retry(&mut self) -> bool {
        while let Some(&k) = self.waiting.first() {
            if self.link.ops.push(FlowOp::Remove(k)).is_err() {
                return false;
            }
            self.waiting.swap_remove(0);
        }
        true
    }

    /// A flow of this stage the engine saw packets of since it last said
    /// so (the stage refreshes its idle timer).
    #[inline]
    pub fn touched(&mut self) -> Option<FlowKey> {
        if !self.waiting.is_empty() {
            self.retry();
        }
        self.link.touched.pop()
    }

    /// Replaces the filter (an ACL taking a new rule set). False when the
    /// queue is full: try again later.
    pub fn set_filter(&mut self, f: &Arc<Filter>) -> bool {
        self.link.ops.push(FlowOp::Filter(f.clone())).is_ok()
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

/// The engine's control task: applies the stages' changes in order and
/// reports activity back. Runs on the runtime's control thread.
pub struct EngineTask {
    engine: Arc<dyn Engine>,
    links: Vec<Arc<Link>>,
    /// Installed flows: owner (index into `links`) and the `last_seen`
    /// last reported.
    installed: HashMap<FlowKey, (usize, u64)>,
    next_scan: Instant,
    /// Lines to say once (an install the map refused).
    said_full: bool,
    /// Published for the report and the metrics.
    counters: Arc<XdpCounters>,
    /// The filter applied last.
    filter: Option<Arc<Filter>>,
}

impl EngineTask {
    /// The task for `engine`, with no stage yet.
    pub fn new(engine: Arc<dyn Engine>) -> Self {
        Self {
            engine,
            links: Vec::new(),
            installed: HashMap::new(),
            next_scan: Instant::now() + SCAN_EVERY,
            said_full: false,
            counters: Arc::default(),
            filter: None,
        }
    }

    /// What the program did, kept current by the task.
    pub fn counters(&self) -> Arc<XdpCounters> {
        self.counters.clone()
    }

    fn publish(&self) {
        let st = self.engine.stats();
        self.counters.forwarded.store(st.forwarded, Ordering::Relaxed);
        self.counters.up.store(st.up, Ordering::Relaxed);
        self.counters.runs.store(st.runs, Ordering::Relaxed);
        self.counters.run_ns.store(st.run_ns, Ordering::Relaxed);
        self.counters.flows.store(self.installed.len() as u64, Ordering::Relaxed);
    }

    /// A new stage instance's offloader; `ifindex` maps its port ids to
    /// interfaces (0: not a device).
    pub fn offloader(&mut self, ifindex: Arc<[u32]>) -> Offloader {
        let link = Arc::new(Link {
            ops: ArrayQueue::new(OPS_DEPTH),
            touched: ArrayQueue::new(TOUCHED_DEPTH),
            counters: OffloadCounters::default(),
        });
        self.links.push(link.clone());
        Offloader { link, ifindex, waiting: Vec::with_capacity(REMOVALS_WAITING) }
    }

    /// Flows installed now.
    pub fn len(&self) -> usize {
        self.installed.len()
    }

    /// True when no flow is installed.
    pub fn is_empty(&self) -> bool {
        self.installed.is_empty()
    }

    /// Applies what the stages queued; once every [`SCAN_EVERY`], reads
    /// the flows' activity and tells their stages.
    pub fn step(&mut self) -> Vec<String> {
        let mut lines = Vec::new();
        for (i, link) in self.links.iter().enumerate() {
            while let Some(op) = link.ops.pop() {
                match op {
                    FlowOp::Install(k, v) => match self.engine.insert(&k, &v) {
                        Ok(()) => {
                            self.installed.insert(k, (i, 0));
                        }
                        Err(e) => {
                            link.counters.failed.fetch_add(1, Ordering::Relaxed);
                            if !self.said_full {
                                self.said_full = true;
                                lines.push(format!(
                                    "XDP flows map refused an install ({e}); such flows stay in the workers"
                                ));
                            }
                        }
                    },
                    FlowOp::Remove(k) => {
                        self.installed.remove(&k);
                        if let Err(e) = self.engine.remove(&k) {
                            lines.push(format!("XDP flows map refused a removal: {e}"));
                        }
                    }
                    FlowOp::Filter(f) if self.filter.as_ref().is_some_and(|g| Arc::ptr_eq(g, &f)) => {}
                    FlowOp::Filter(f) => {
                        match self.engine.set_filter(&f) {
                            Ok(()) => lines.push(format!("XDP filter: {} rules", f.rules.len())),
                            Err(e) => lines.push(format!("XDP filter refused: {e}")),
                        }
                        self.filter = Some(f);
                    }
                }
            }
        }
        if Instant::now() >= self.next_scan {
            self.next_scan = Instant::now() + SCAN_EVERY;
            let links = &self.links;
            let engine = &self.engine;
            self.installed.retain(|k, (owner, reported)| match engine.last_seen(k) {
                Ok(Some(t)) => {
                    if t > *reported && links[*owner].touched.push(*k).is_ok() {
                        *reported = t;
                    }
                    true
                }
                Ok(None) => false,
                Err(_) => true,
            });
            self.publish();
        }
        lines
    }
}

impl Drop for EngineTask {
    fn drop(&mut self) {
        self.publish();
    }
}

impl crate::stage::ControlTask for EngineTask {
    fn poll(&mut self) -> Vec<String> {
        self.step()
    }

    fn period(&self) -> Duration {
        Duration::from_millis(1)
    }
}

/// An engine without a kernel: the flows map in memory, as the XDP
/// program would hold it, with activity set by hand
/// ([`MemoryEngine::touch`]). For the tests of stages that install flows.
#[derive(Default)]
pub struct MemoryEngine {
    flows: std::sync::Mutex<HashMap<FlowKey, FlowValue>>,
    filter: std::sync::Mutex<Option<Filter>>,
}

impl MemoryEngine {
    /// The filter set last.
    pub fn filter(&self) -> Option<Filter> {
        self.filter.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The flows installed now.
    pub fn flows(&self) -> HashMap<FlowKey, FlowValue> {
        self.flows.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// As if the program forwarded a packet of `key` at `at` (ns).
    pub fn touch(&self, key: &FlowKey, at: u64) {
        if let Some(v) = self.flows.lock().unwrap_or_else(|e| e.into_inner()).get_mut(key) {
            v.last_seen = at;
        }
    }
}

impl Engine for MemoryEngine {
    fn attach(&self, _: u32, _: XdpMode, _: PortProgram) -> Result<(bool, String), String> {
        Ok((true, String::new()))
    }
    fn add_socket(&self, _: u32, _: u32, _: RawFd) -> Result<(), String> {
        Ok(())
    }
    fn insert(&self, k: &FlowKey, v: &FlowValue) -> Result<(), String> {
        self.flows.lock().unwrap_or_else(|e| e.into_inner()).insert(*k, *v);
        Ok(())
    }
    fn remove(&self, k: &FlowKey) -> Result<bool, String> {
        Ok(self.flows.lock().unwrap_or_else(|e| e.into_inner()).remove(k).is_some())
    }
    fn last_seen(&self, k: &FlowKey) -> Result<Option<u64>, String> {
        Ok(self.flows.lock().unwrap_or_else(|e| e.into_inner()).get(k).map(|v| v.last_seen))
    }
    fn set_filter(&self, f: &Filter) -> Result<(), String> {
        *self.filter.lock().unwrap_or_else(|e| e.into_inner()) = Some(f.clone());
        Ok(())
    }
    fn stats(&self) -> EngineStats {
        EngineStats::default()
    }
}

impl EngineTask {
    /// Reads the flows' activity at the next [`Self::step`], not a second
    /// later (tests).
    pub fn scan_now(&mut self) {
        self.next_scan = Instant::now();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn installs_and_removals_apply_in_order_and_activity_comes_back_to_its_stage() {
        let engine = Arc::new(MemoryEngine::default());
        let mut task = EngineTask::new(engine.clone());
        let mut a = task.offloader(Arc::from(vec![0, 7]));
        let mut b = task.offloader(Arc::from(vec![0, 7]));
        let k1 = FlowKey::new(17, 1, 2, 3, 4);
        let k2 = FlowKey::new(17, 5, 6, 7, 8);
        assert!(a.install(k1, FlowValue::forward([1; 6], [2; 6], 0), 1));
        assert!(!a.install(k2, FlowValue::default(), 0), "port 0 is not a device");
        assert!(b.install(k2, FlowValue::default(), 1));
        a.remove(k1);
        assert!(a.install(k1, FlowValue::forward([3; 6], [2; 6], 0), 1));
        task.step();
        let flows = engine.flows();
        assert_eq!(flows.len(), 2);
        assert_eq!(flows[&k1].dmac, [3; 6], "the later install wins: order kept");
        assert_eq!(flows[&k1].ifindex, 7);
        // The program saw k2 only: stage b hears of it, a does not.
        engine.touch(&k2, 99);
        task.scan_now();
        task.step();
        assert_eq!(a.touched(), None);
        assert_eq!(b.touched(), Some(k2));
        assert_eq!(b.touched(), None);
        // Unchanged activity is not reported again.
        task.scan_now();
        task.step();
        assert_eq!(b.touched(), None);
        assert_eq!(a.counters().installed.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn a_full_queue_refuses_installs_but_keeps_removals() {
        let engine = Arc::new(MemoryEngine::default());
        let mut task = EngineTask::new(engine.clone());
        let mut a = task.offloader(Arc::from(vec![9]));
        for i in 0..OPS_DEPTH as u32 {
            assert!(a.install(FlowKey::new(6, i, 1, 2, 3), FlowValue::default(), 0));
        }
        assert!(!a.install(FlowKey::new(6, u32::MAX, 1, 2, 3), FlowValue::default(), 0));
        a.remove(FlowKey::new(6, 0, 1, 2, 3));
        assert_eq!(a.waiting.len(), 1);
        task.step();
        assert_eq!(engine.flows().len(), OPS_DEPTH);
        // The waiting removal goes first, before the next install.
        assert!(a.install(FlowKey::new(6, u32::MAX, 1, 2, 3), FlowValue::default(), 0));
        task.step();
        let flows = engine.flows();
        assert!(!flows.contains_key(&FlowKey::new(6, 0, 1, 2, 3)));
        assert!(flows.contains_key(&FlowKey::new(6, u32::MAX, 1, 2, 3)));
        assert_eq!(a.counters().refused.load(Ordering::Relaxed), 1);
    }
}
