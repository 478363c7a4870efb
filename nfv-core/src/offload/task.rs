//! The engine's side: the control task applying the stages' changes and
//! reporting activity back.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crossbeam::queue::ArrayQueue;

use super::offloader::Link;
use super::{
    Engine, Filter, FlowOp, Key, OPS_DEPTH, OffloadCounters, Offloader, REMOVALS_WAITING, SCAN_EVERY, TOUCHED_DEPTH,
    UpfConf,
};

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

/// The engine's control task: applies the stages' changes in order and
/// reports activity back. Runs on the runtime's control thread.
pub struct EngineTask {
    engine: Arc<dyn Engine>,
    links: Vec<Arc<Link>>,
    /// Installed entries: owner (index into `links`) and the `last_seen`
    /// last reported.
    installed: HashMap<Key, (usize, u64)>,
    next_scan: Instant,
    /// Lines to say once (an install the map refused).
    said_full: bool,
    /// Published for the report and the metrics.
    counters: Arc<XdpCounters>,
    /// The filter applied last.
    filter: Option<Arc<Filter>>,
    /// The UPF set last.
    upf: Option<UpfConf>,
    /// The ports' interfaces (what the offloaders map with).
    ifindex: Arc<[u32]>,
}

impl EngineTask {
    /// The task for `engine`, with no stage yet; `ifindex` maps port ids
    /// to interfaces (0: not a device).
    pub fn new(engine: Arc<dyn Engine>, ifindex: Arc<[u32]>) -> Self {
        Self {
            engine,
            links: Vec::new(),
            installed: HashMap::new(),
            next_scan: Instant::now() + SCAN_EVERY,
            said_full: false,
            counters: Arc::default(),
            filter: None,
            upf: None,
            ifindex,
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

    /// The ports' interfaces it maps with.
    pub fn ifindex(&self) -> Arc<[u32]> {
        self.ifindex.clone()
    }

    /// A new stage instance's offloader.
    pub fn offloader(&mut self) -> Offloader {
        let link = Arc::new(Link {
            ops: ArrayQueue::new(OPS_DEPTH),
            applied: AtomicU64::new(0),
            touched: ArrayQueue::new(TOUCHED_DEPTH),
            counters: OffloadCounters::default(),
        });
        self.links.push(link.clone());
        Offloader {
            link,
            ifindex: self.ifindex.clone(),
            waiting: Vec::with_capacity(REMOVALS_WAITING),
            engine: self.engine.clone(),
            sent: 0,
        }
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
                    FlowOp::Install(e) => match self.engine.insert(&e) {
                        Ok(()) => {
                            self.installed.insert(e.key(), (i, 0));
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
                    FlowOp::Vtep(v) => {
                        if let Err(e) = self.engine.set_vtep(&v, &self.ifindex) {
                            lines.push(format!("XDP VTEP refused: {e}"));
                        }
                    }
                    FlowOp::Upf(u) if self.upf == Some(u) => {}
                    FlowOp::Upf(u) => {
                        if let Err(e) = self.engine.set_upf(&u, &self.ifindex) {
                            lines.push(format!("XDP UPF refused: {e}"));
                        }
                        self.upf = Some(u);
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
                link.applied.fetch_add(1, Ordering::Release);
            }
        }
        if Instant::now() >= self.next_scan {
            self.next_scan = Instant::now() + SCAN_EVERY;
            let links = &self.links;
            let engine = &self.engine;
            let batch: Option<HashMap<Key, u64>> = engine.activity().ok().map(|v| v.into_iter().collect());
            self.installed.retain(|k, (owner, reported)| {
                if !k.has_activity() {
                    return true;
                }
                let seen = match &batch {
                    Some(b) => Ok(b.get(k).copied()),
                    None => engine.last_seen(k),
                };
                match seen {
                    Ok(Some(t)) => {
                        if t > *reported && links[*owner].touched.push(*k).is_ok() {
                            *reported = t;
                        }
                        true
                    }
                    Ok(None) => false,
                    Err(_) => true,
                }
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

impl EngineTask {
    /// Reads the entries' activity at the next [`Self::step`], not a
    /// second later (tests).
    pub fn scan_now(&mut self) {
        self.next_scan = Instant::now();
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::offload::{FlowKey, FlowValue, MemoryEngine};

    #[test]
    fn installs_and_removals_apply_in_order_and_activity_comes_back_to_its_stage() {
        let engine = Arc::new(MemoryEngine::default());
        let mut task = EngineTask::new(engine.clone(), Arc::from(vec![0, 7]));
        let mut a = task.offloader();
        let mut b = task.offloader();
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
        engine.touch(&Key::Flow(k2), 99);
        task.scan_now();
        task.step();
        assert_eq!(a.touched(), None);
        assert_eq!(b.touched(), Some(Key::Flow(k2)));
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
        let mut task = EngineTask::new(engine.clone(), Arc::from(vec![9]));
        let mut a = task.offloader();
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
