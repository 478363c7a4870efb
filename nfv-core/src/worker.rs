//! The poll-mode worker: one thread pinned to one core, owning its queues,
//! its frame pool, its chain instance and its flow state. It polls, runs
//! the chain to completion over each batch, and transmits; it never blocks.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::adjacency::Adjacency;
use crate::batch::Batch;
use crate::cycles;
use crate::dispatch::{self, Route, Tally};
use crate::frame::FramePool;
use crate::graph::{End, Graph};
use crate::handoff::{Handoff, HandoffBatch};
use crate::packet::{Meta, PktDesc, PortId};
use crate::port::Port;
use crate::slowpath::{SlowFrame, SlowPath, SlowPathLink};
use crate::stage::StageCtx;
use crate::telemetry::StageCounters;

crate::drop_reasons! {
    /// Drops decided after the chain, when a packet is handed on.
    pub enum DispatchDrop {
        NoTxPort => "no-tx-port",
        PuntQueueFull => "punt-queue-full",
        NoSlowPath => "no-slow-path",
        InjectNoFrame => "inject-no-frame",
        HandoffFull => "handoff-full",
        HandoffNoFrame => "handoff-no-frame",
        Unhandled => "unhandled",
    }
}

/// Name of the dispatch pseudo-stage in tables.
pub const DISPATCH_STAGE: &str = "dispatch";
/// Pseudo-stage timing the ports' receive calls (rings, refills, kicks).
pub const RX_STAGE: &str = "port-rx";
/// Pseudo-stage counting packets other workers of the chain handed to
/// this one, and the time to copy them in ([`crate::handoff`]).
pub const HANDOFF_STAGE: &str = "handoff-rx";
/// Pseudo-stage timing the ports' transmit calls (rings, completions,
/// kicks: in AF_XDP copy mode the kernel's copy runs inside these).
pub const TX_STAGE: &str = "port-tx";

/// How punted packets reach the slow path.
pub enum SlowMode {
    /// No slow path: punts are dropped and counted.
    None,
    /// Through queues to the control thread.
    Thread(Arc<SlowPathLink>),
    /// Handled on the worker itself, right after the batch (replay, tests:
    /// deterministic order).
    Inline(Box<SlowPath>),
}

/// Everything a worker owns.
pub struct Worker {
    /// Worker index (0-based).
    pub index: usize,
    core: Option<usize>,
    pool: FramePool,
    graph: Graph,
    ports: Vec<Option<Box<dyn Port>>>,
    rx: Vec<PortId>,
    tx_queues: Vec<Vec<PktDesc>>,
    slow: SlowMode,
    adjacency: Adjacency,
    dispatch: Arc<StageCounters>,
    rx_time: Arc<StageCounters>,
    tx_time: Arc<StageCounters>,
    /// When the chain's stages last had their [`crate::Stage::tick`], and
    /// how often they get it (a millisecond, in cycle-counter ticks).
    last_tick: u64,
    /// Heartbeat: polls and the time of the last one.
    beat: Arc<crate::telemetry::WorkerCounters>,
    /// Latency histograms being recorded, and the queues that hand them
    /// to the management plane every [`crate::latency::HAND_EVERY`].
    latency: Box<crate::latency::LatencySet>,
    exchange: Arc<crate::latency::Exchange>,
    last_hand: u64,
    hand_every: u64,
    tick_every: u64,
    flush_pending: bool,
    handoff: Option<HandoffLink>,
}

/// A worker's end of its chain's [`Handoff`] inboxes.
struct HandoffLink {
    ring: Arc<Handoff>,
    /// This worker's rank among the chain's workers.
    rank: usize,
    /// Received packets waiting to be run: ((chain, position), descriptor).
    staged: Vec<((u8, u8), PktDesc)>,
    /// What the batch being dispatched hands to each worker (by rank),
    /// queued once at the end of the dispatch.
    outgoing: Vec<Option<HandoffBatch>>,
    counters: Arc<StageCounters>,
    /// This worker told the others its sources are exhausted.
    announced: bool,
}

/// Consecutive empty polls before the worker yields its core, and before
/// it starts sleeping. Traffic resets the count, so a loaded worker never
/// sleeps.
const SPIN_POLLS: u32 = 1024;
const YIELD_POLLS: u32 = 4096;
const IDLE_SLEEP: Duration = Duration::from_micros(50);
/// Busy polls between flushes of every port (sends what waits below a
/// port's kick threshold).
const BUSY_FLUSH_EVERY: u32 = 8;

impl Worker {
    /// Assembles a worker. `ports` is indexed by [`PortId`] and holds this
    /// worker's instance of every port it receives on or sends to; `graph`
    /// was built on `pool`'s arena.
    ///
    /// # Panics
    /// If `graph`'s batches are of another arena than `pool`.
    #[allow(clippy::too_many_arguments)] // each part a worker owns, named
    pub fn new(
        index: usize,
        core: Option<usize>,
        mut pool: FramePool,
        mut graph: Graph,
        mut ports: Vec<Option<Box<dyn Port>>>,
        rx: Vec<PortId>,
        slow: SlowMode,
        adjacency: Adjacency,
    ) -> Self {
        graph.entry_batch().assert_pool(&pool);
        for p in ports.iter_mut().flatten() {
            p.prime(&mut pool);
        }
        let tx_queues = ports.iter().map(|_| Vec::with_capacity(2 * crate::batch::MAX_BATCH)).collect();
        let stage_names: Vec<String> = graph.counters().iter().map(|c| c.name.clone()).collect();
        let beat = Arc::new(crate::telemetry::WorkerCounters {
            index,
            core,
            stage_names: stage_names.clone(),
            ..Default::default()
        });
        graph.watch(beat.clone());
        Self {
            index,
            core,
            pool,
            graph,
            ports,
            rx,
            tx_queues,
            slow,
            adjacency,
            dispatch: Arc::new(StageCounters::new(DISPATCH_STAGE, DispatchDrop::NAMES)),
            rx_time: Arc::new(StageCounters::new(RX_STAGE, &[])),
            tx_time: Arc::new(StageCounters::new(TX_STAGE, &[])),
            flush_pending: false,
            handoff: None,
            last_tick: cycles::now(),
            beat,
            latency: Box::new(crate::latency::LatencySet::new(stage_names.len())),
            exchange: crate::latency::Exchange::new(index, stage_names),
            last_hand: cycles::now(),
            hand_every: (cycles::ticks_per_ns() * crate::latency::HAND_EVERY.as_nanos() as f64) as u64,
            tick_every: (cycles::ticks_per_ns() * 1e6) as u64,
        }
    }

    /// Joins the worker to its peers' handoff inboxes (the workers with
    /// the same entry chain) as worker `rank`: stages may then hand
    /// packets to the others, and this one runs what they hand to it.
    pub fn set_handoff(&mut self, ring: Arc<Handoff>, rank: usize) {
        self.handoff = Some(HandoffLink {
            outgoing: (0..ring.workers()).map(|_| None).collect(),
            ring,
            rank,
            staged: Vec::with_capacity(crate::batch::MAX_BATCH),
            counters: Arc::new(StageCounters::new(HANDOFF_STAGE, &[])),
            announced: false,
        });
    }

    /// Counters in the order a packet meets them: port receive (and
    /// handoff receive), the graph's stages, dispatch, packets held for
    /// their next hop, port transmit.
    pub fn stage_counters(&self) -> Vec<Arc<StageCounters>> {
        let mut v = vec![self.rx_time.clone()];
        v.extend(self.handoff.as_ref().map(|h| h.counters.clone()));
        v.extend(self.graph.counters());
        v.push(self.dispatch.clone());
        v.push(self.adjacency.counters().clone());
        v.push(self.tx_time.clone());
        v
    }

    /// Packets along each edge of this worker's graph.
    pub fn edge_counters(&self) -> Arc<crate::graph::EdgeCounters> {
        self.graph.edges().clone()
    }

    /// End-of-run reports of the graph's stages, labelled by worker.
    pub fn stage_reports(&self) -> Vec<String> {
        self.graph.reports().into_iter().map(|(name, r)| format!("worker {}, {name}:\n{r}", self.index)).collect()
    }

    /// Hands the latency histograms over if the reader returned a spare
    /// set; the graph's stage histograms go with them (two swaps of
    /// vectors, no copy).
    fn hand_latency(&mut self) {
        std::mem::swap(&mut self.latency.stages, self.graph.hists_mut());
        self.exchange.hand_over(&mut self.latency);
        std::mem::swap(&mut self.latency.stages, self.graph.hists_mut());
    }

    /// Where this worker's latency histograms are handed over.
    pub fn latency_exchange(&self) -> Arc<crate::latency::Exchange> {
        self.exchange.clone()
    }

    /// This worker's heartbeat.
    pub fn heartbeat(&self) -> Arc<crate::telemetry::WorkerCounters> {
        self.beat.clone()
    }

    /// Counters of this worker's port instances.
    pub fn port_counters(&self) -> Vec<Arc<crate::telemetry::PortCounters>> {
        self.ports.iter().flatten().map(|p| p.info().counters.clone()).collect()
    }

    /// Polls every rx queue once and processes what arrived; returns the
    /// number of packets received. The unit of work of [`Worker::run`],
    /// public for benchmarks and tests.
    #[inline]
    pub fn poll_once(&mut self) -> usize {
        if self.adjacency.refresh() {
            // Packets held for a next hop the slow path just resolved go
            // before anything received now.
            self.adjacency.release(&mut self.pool, &mut self.tx_queues);
            self.transmit();
            // An idle worker kicks its rings only when asked: a released
            // SYN must not wait for the client's retransmission.
            self.flush_pending = true;
        }
        let mut got = 0;
        for i in 0..self.rx.len() {
            let pid = self.rx[i] as usize;
            let Some(port) = self.ports[pid].as_mut() else { continue };
            let t0 = cycles::now();
            let batch = self.graph.entry_batch();
            batch.set_rx_port(pid as PortId);
            let n = port.rx_burst(&mut self.pool, batch);
            if n == 0 {
                continue;
            }
            self.graph.pick_received(&port.info().name);
            let c = &self.rx_time;
            c.ticks.add(cycles::now().wrapping_sub(t0));
            c.calls.add(1);
            c.pkts_in.add(n as u64);
            got += n;
            let mut ctx = StageCtx { pool: &mut self.pool, adjacency: &mut self.adjacency, now_ticks: cycles::now() };
            self.graph.run(&mut ctx);
            self.dispatch();
            // From the burst's receive to its transmit.
            self.latency.batch.saturating_record(cycles::now().wrapping_sub(t0));
        }
        got += self.receive_handoffs();
        self.send_handoffs();
        self.service_slow_path();
        let now = cycles::now();
        self.beat.polls.add(1);
        self.beat.last_poll.set(now);
        if now.wrapping_sub(self.last_tick) >= self.tick_every {
            self.last_tick = now;
            self.adjacency.expire(&mut self.pool, now);
            got += self.tick();
            if now.wrapping_sub(self.last_hand) >= self.hand_every {
                self.last_hand = now;
                self.hand_latency();
                self.graph.sample_tables();
            }
        }
        got
    }

    /// Gives every stage its tick; what a stage adds runs through the rest
    /// of the graph and is dispatched. Returns how many stages added some.
    fn tick(&mut self) -> usize {
        let mut added = 0;
        for node in 0..self.graph.len() {
            let mut ctx = StageCtx { pool: &mut self.pool, adjacency: &mut self.adjacency, now_ticks: cycles::now() };
            if self.graph.tick(node, &mut ctx) {
                added += 1;
                self.dispatch();
            }
        }
        added
    }

    /// Queues what this poll's batches handed to other workers: one batch
    /// per worker per poll (few queue operations, and an inbox holds many
    /// polls' worth even when traffic is sparse).
    fn send_handoffs(&mut self) {
        let Some(h) = self.handoff.as_mut() else { return };
        let mut full = 0u64;
        for (to, slot) in h.outgoing.iter_mut().enumerate() {
            if let Some(b) = slot.take()
                && let Err((_, b)) = h.ring.send(to, b)
            {
                full += b.len() as u64;
                h.ring.recycle(b);
            }
        }
        self.dispatch.drops[DispatchDrop::HandoffFull as usize].add(full);
    }

    /// Runs what peer workers handed to this one (one of their batches):
    /// copied into frames of this worker's pool, then run from the chain
    /// and position each left its sender's graph at, grouped by (arrival
    /// port, chain, position) in arrival order. Returns the packets taken
    /// from the inbox.
    fn receive_handoffs(&mut self) -> usize {
        let Some(link) = self.handoff.as_mut() else { return 0 };
        let Some(incoming) = link.ring.receive(link.rank) else { return 0 };
        let t0 = cycles::now();
        let mut staged = std::mem::take(&mut link.staged);
        let mut no_frame = 0u64;
        for (meta, egress, at, data) in incoming.iter() {
            match self.pool.desc_from(data, meta) {
                Some(d) => staged.push((at, PktDesc { egress, ..d })),
                None => no_frame += 1,
            }
        }
        let taken = incoming.len();
        link.ring.recycle(incoming);
        let c = &link.counters;
        c.calls.add(1);
        c.pkts_in.add(taken as u64);
        c.ticks.add(cycles::now().wrapping_sub(t0));
        self.dispatch.drops[DispatchDrop::HandoffNoFrame as usize].add(no_frame);
        while let Some(&(at, ref first)) = staged.first() {
            let port = first.meta.port;
            let batch = self.graph.batch(at.0 as u16);
            batch.set_rx_port(port);
            staged.retain(|(s, d)| {
                let same = *s == at && d.meta.port == port;
                if same {
                    batch.push_desc(d.dup());
                }
                !same
            });
            let mut ctx = StageCtx { pool: &mut self.pool, adjacency: &mut self.adjacency, now_ticks: cycles::now() };
            self.graph.run_from(at.0 as u16, at.1 as usize, &mut ctx);
            self.dispatch();
        }
        if let Some(link) = self.handoff.as_mut() {
            link.staged = staged;
        }
        taken
    }

    /// Hands every packet the graph finished on, batch by batch.
    fn dispatch(&mut self) {
        let Self { graph, tx_queues, pool, slow, handoff, adjacency, dispatch, .. } = self;
        let mut out = Dispatch { tx_queues, pool, slow, handoff, adjacency, counters: dispatch };
        graph.for_each_batch(|batch, end| out.batch(batch, end));
        self.transmit();
    }

    fn transmit(&mut self) {
        for (pid, q) in self.tx_queues.iter_mut().enumerate() {
            if q.is_empty() {
                continue;
            }
            match self.ports[pid].as_mut() {
                Some(port) => {
                    let t0 = cycles::now();
                    let c = &self.tx_time;
                    c.calls.add(1);
                    c.pkts_in.add(q.len() as u64);
                    port.tx_burst(&mut self.pool, q);
                    c.ticks.add(cycles::now().wrapping_sub(t0));
                }
                None => {
                    self.dispatch.drops[DispatchDrop::NoTxPort as usize].add(q.len() as u64);
                    for d in q.drain(..) {
                        self.pool.free(d.frame);
                    }
                }
            }
        }
    }

    /// Transmits frames the control thread built (replies, resolutions).
    fn service_slow_path(&mut self) {
        let SlowMode::Thread(link) = &self.slow else { return };
        if link.inject.is_empty() {
            return;
        }
        while let Some(f) = link.inject.pop() {
            if stage_frame(&mut self.pool, &mut self.tx_queues, &f).is_err() {
                self.dispatch.drops[DispatchDrop::InjectNoFrame as usize].add(1);
            }
        }
        self.transmit();
        // An idle worker kicks its tx rings only when asked: without this
        // a reply built while no traffic flows waited for the next packet
        // (a traceroute hop answered a second late, after its probe timed
        // out).
        self.flush_pending = true;
    }

    /// Flushes every port (kicks TX, reclaims completions).
    pub fn flush(&mut self) {
        self.transmit();
        // Kicks deferred to idle time are transmit work: count their time.
        let t0 = cycles::now();
        let mut pending = false;
        for p in self.ports.iter_mut().flatten() {
            pending |= p.flush(&mut self.pool);
        }
        self.flush_pending = pending;
        self.tx_time.ticks.add(cycles::now().wrapping_sub(t0));
    }

    /// True when every rx port is a finished finite source.
    pub fn sources_exhausted(&self) -> bool {
        self.rx.iter().all(|&p| self.ports[p as usize].as_ref().is_none_or(|p| p.exhausted()))
    }

    /// True when this worker, its sources exhausted, can leave: no other
    /// worker of its chain can hand it anything any more. Tells the
    /// others, once, that its own sources are done.
    fn finished(&mut self) -> bool {
        if !self.sources_exhausted() {
            return false;
        }
        let Some(link) = self.handoff.as_mut() else { return true };
        if !link.announced {
            link.announced = true;
            link.ring.mark_exhausted();
        }
        link.ring.all_exhausted() && link.ring.is_empty(link.rank)
    }

    /// The poll loop: pins to the core, polls until `stop` or (unless
    /// `until_stopped`: a process being operated stays up) until every
    /// source is exhausted, then drains and returns.
    pub fn run(mut self, stop: &AtomicBool, until_stopped: bool) -> Self {
        if let Some(core) = self.core {
            // Best effort: a container may not allow the core; say so once.
            if !core_affinity::set_for_current(core_affinity::CoreId { id: core }) {
                eprintln!("worker {}: could not pin to core {core}; running unpinned", self.index);
            }
        }
        let mut idle: u32 = 0;
        let mut busy: u32 = 0;
        loop {
            // One relaxed load per loop: the flag is written once, at stop.
            if stop.load(Ordering::Relaxed) {
                break;
            }
            if self.poll_once() > 0 {
                idle = 0;
                busy = busy.wrapping_add(1);
                // A port that gets a few frames while others are busy must
                // not wait for the worker to idle.
                if busy.is_multiple_of(BUSY_FLUSH_EVERY) {
                    self.flush();
                }
                continue;
            }
            if !until_stopped && self.finished() {
                break;
            }
            idle = idle.saturating_add(1);
            if idle == 1 || self.flush_pending {
                // Traffic paused: send what waits in tx rings now.
                self.flush();
            }
            if idle < SPIN_POLLS {
                std::hint::spin_loop();
            } else if idle < YIELD_POLLS {
                std::thread::yield_now();
            } else {
                std::thread::sleep(IDLE_SLEEP);
            }
        }
        let w = self.drain();
        w.beat.exited.store(true, Ordering::Relaxed);
        w
    }

    /// Runs several workers of one process in turn on the calling thread
    /// (replays and tests: no threads, no pinning), until every source is
    /// exhausted and nothing is left in a handoff inbox; then drains each.
    pub fn run_interleaved(mut workers: Vec<Worker>) -> Vec<Worker> {
        loop {
            let mut got = 0;
            for w in workers.iter_mut() {
                got += w.poll_once();
            }
            if got == 0 {
                workers.iter_mut().for_each(Worker::flush);
                // Every worker must get to say it is finished: no `all`.
                let finished = workers.iter_mut().fold(true, |all, w| w.finished() & all);
                if finished {
                    break;
                }
            }
        }
        workers.into_iter().map(Worker::drain).collect()
    }

    /// Runs what other workers handed over, lets the control thread's
    /// last replies out, and finishes every port.
    fn drain(mut self) -> Self {
        self.send_handoffs();
        while self.receive_handoffs() > 0 {}
        self.service_slow_path();
        self.adjacency.drop_all(&mut self.pool);
        self.transmit();
        for p in self.ports.iter_mut().flatten() {
            p.finish(&mut self.pool);
        }
        self
    }
}

/// What dispatching a batch needs of its worker.
struct Dispatch<'w> {
    tx_queues: &'w mut Vec<Vec<PktDesc>>,
    pool: &'w mut FramePool,
    slow: &'w mut SlowMode,
    handoff: &'w mut Option<HandoffLink>,
    adjacency: &'w mut Adjacency,
    counters: &'w StageCounters,
}

impl Dispatch<'_> {
    /// Hands every packet of a finished batch on (transmit queue, free,
    /// adjacency, slow path, handoff) by its outcome and `end`, the end
    /// of the chain it finished in.
    fn batch(&mut self, batch: &mut Batch, end: End) {
        let t0 = cycles::now();
        let rx_port = batch.rx_port();
        // Fast path: the whole batch goes to one port (io forwarding, a
        // cross-connect, a chain whose stages all chose one port): one
        // copy of the descriptors, no per-packet decision.
        let target = dispatch::uniform_target(batch.uniform_egress(), rx_port, end);
        if let Some(q) = target.and_then(|p| self.tx_queues.get_mut(p as usize)) {
            let n = batch.len() + batch.done().len();
            batch.move_all_to(q);
            self.counters.calls.add(1);
            self.counters.pkts_in.add(n as u64);
            self.counters.ticks.add(cycles::now().wrapping_sub(t0));
            return;
        }
        let Self { tx_queues, pool, slow, handoff, adjacency, .. } = self;
        let arena = batch.arena().id();
        let mut tally = Tally::default();
        let n = batch.len() + batch.done().len();
        batch.drain(|d| match dispatch::route(d.outcome(), d.meta.port, end) {
            Route::Port(p) => match tx_queues.get_mut(p as usize) {
                Some(q) => q.push(d),
                None => {
                    tally.no_port += 1;
                    pool.free(d.frame);
                }
            },
            Route::Free => pool.free(d.frame),
            Route::Unhandled => {
                tally.unhandled += 1;
                pool.free(d.frame);
            }
            // The frame is the adjacency's until its next hop resolves.
            Route::Hold => {
                if let Err(d) = adjacency.take(d, arena) {
                    pool.free(d.frame);
                }
            }
            Route::Refused(r) => {
                adjacency.count_refused(r);
                pool.free(d.frame);
            }
            Route::Punt => {
                punt(slow, pool, tx_queues, &d, &mut tally);
                pool.free(d.frame);
            }
            Route::Handoff { worker, chain, stage } => {
                queue_handoff(handoff, pool, &d, (worker, chain, stage), &mut tally);
                pool.free(d.frame);
            }
        });
        tally.record(self.counters, n);
        self.counters.ticks.add(cycles::now().wrapping_sub(t0));
    }
}

/// Gives a punted packet to the slow path: through the queue to the
/// control thread, or handled at once (inline), its replies queued for
/// their ports.
fn punt(slow: &mut SlowMode, pool: &mut FramePool, tx_queues: &mut [Vec<PktDesc>], d: &PktDesc, tally: &mut Tally) {
    tally.punted += 1;
    let data = &pool.frame(d.frame)[d.data_range()];
    match slow {
        SlowMode::Thread(link) => match link.free.pop() {
            Some(mut buf) => {
                buf.clear();
                buf.extend_from_slice(data);
                if let Err(f) = link.punted.push(SlowFrame { port: d.meta.port, data: buf }) {
                    let _ = link.free.push(f.data);
                    tally.punt_full += 1;
                }
            }
            None => tally.punt_full += 1,
        },
        SlowMode::Inline(sp) => {
            let replies = sp.handle(d.meta.port, data);
            for reply in replies {
                match stage_frame(pool, tx_queues, &reply) {
                    Ok(()) => {}
                    Err(DispatchDrop::NoTxPort) => tally.no_port += 1,
                    Err(_) => tally.punt_full += 1,
                }
            }
        }
        SlowMode::None => tally.no_slow += 1,
    }
}

/// Copies a packet into this poll's batch for peer worker `worker` (to
/// resume at position `stage` of chain `chain`), sending the batch on
/// when it fills.
fn queue_handoff(
    handoff: &mut Option<HandoffLink>,
    pool: &FramePool,
    d: &PktDesc,
    (worker, chain, stage): (u8, u8, u8),
    tally: &mut Tally,
) {
    let Some(h) = handoff.as_mut() else {
        tally.handoff_full += 1;
        return;
    };
    let Some(slot) = h.outgoing.get_mut(worker as usize) else {
        tally.handoff_full += 1;
        return;
    };
    if slot.is_none() {
        *slot = h.ring.batch();
    }
    let Some(b) = slot.as_mut() else {
        tally.handoff_full += 1;
        return;
    };
    b.push(d.meta, d.egress.portable(), (chain, stage), &pool.frame(d.frame)[d.data_range()]);
    if b.is_full()
        && let Some(full) = slot.take()
        && let Err((_, full)) = h.ring.send(worker as usize, full)
    {
        tally.handoff_full += full.len() as u64;
        h.ring.recycle(full);
    }
}

/// Copies a slow-path frame into a pool frame queued for its port.
fn stage_frame(pool: &mut FramePool, tx_queues: &mut [Vec<PktDesc>], f: &SlowFrame) -> Result<(), DispatchDrop> {
    let q = tx_queues.get_mut(f.port as usize).ok_or(DispatchDrop::NoTxPort)?;
    let meta = Meta { port: f.port, ..Meta::default() };
    q.push(pool.desc_from(&f.data, meta).ok_or(DispatchDrop::InjectNoFrame)?);
    Ok(())
}
