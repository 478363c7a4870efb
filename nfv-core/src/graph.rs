//! The graph executor: a worker's chains of stages, run over a batch in
//! place, one dynamic call per stage per batch.
//!
//! A worker receives into its entry chain's batch. Each stage runs over
//! the packets still in the chain; a stage may finish a packet (drop,
//! punt, hand off), decide its egress (it goes on through the chain), or
//! send it to another chain ([`crate::PacketMut::goto`], a classifier's
//! branch). Packets sent to a chain wait in the sending chain's outbox
//! for it, in order; a chain whose last stage is done moves what is left
//! to the chain it ends in (`then = "CHAIN"`, a merge point) or leaves it
//! for dispatch. When a chain's turn comes it takes what each chain
//! before it sent, in the order those ran. Chains run
//! in a topological order (the configuration has no loops), so each runs
//! at most once per received batch, over every packet sent to it: a
//! branch's stages see whole batches, and a split moves descriptors, never
//! frames. A stage may sit in several chains (`use = "NAME"`): one
//! instance, one state.

use std::sync::Arc;

use crate::batch::Batch;
use crate::cycles;
use crate::packet::{ChainId, PortId, Verdict, VerdictKind};
use crate::stage::{Occupancy, Stage, StageCtx};
use crate::telemetry::{Counter, StageCounters};

/// Where the packets still in a chain after its last stage go.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum End {
    /// Out of their egress if a stage decided one, else dropped and
    /// counted `unhandled` (VPP's `error-drop`): a packet nobody handled
    /// must not go back out where it came from.
    #[default]
    Drop,
    /// Undecided packets back out of the port they came in on
    /// (`then = "ingress"`: testpmd's macswap and io labs).
    Ingress,
    /// Undecided packets out of this port (`then = "PORT"`).
    Port(PortId),
    /// Every packet on to this chain (`then = "CHAIN"`).
    Chain(ChainId),
}

/// The `then` value that sends packets back out of their ingress port; no
/// port or chain may take this name.
pub const INGRESS: &str = "ingress";

/// Most tables a stage instance reports ([`Stage::tables`]).
const MAX_TABLES: usize = 8;

/// A stage instance with its counters.
struct Node {
    stage: Box<dyn Stage>,
    counters: Arc<StageCounters>,
    scratch: Box<[u64]>,
    /// The chain and position its tick's packets go on from (the chain
    /// that defines it).
    home: (ChainId, usize),
    /// Chains it may send packets to.
    branches: Vec<ChainId>,
}

/// One chain of a worker: its stages, its end, its batch.
struct ChainRt {
    nodes: Vec<usize>,
    end: End,
    batch: Batch,
}

/// Packets that moved along each edge of the graph, for the reports and
/// `nfv graph`: `branch[from][to]` between chains (a branch or a `then`),
/// `ended[from]` leaving a chain at its end for dispatch.
#[derive(Debug)]
pub struct EdgeCounters {
    /// Chain names, indexed by [`ChainId`].
    pub chains: Vec<String>,
    /// Packets from chain to chain, `chains.len()` squared, row-major.
    pub moved: Box<[Counter]>,
    /// Packets left at the end of each chain, for dispatch.
    pub ended: Box<[Counter]>,
}

impl EdgeCounters {
    fn new(chains: Vec<String>) -> Self {
        let n = chains.len();
        Self {
            moved: (0..n * n).map(|_| Counter::default()).collect(),
            ended: (0..n).map(|_| Counter::default()).collect(),
            chains,
        }
    }

    /// Packets moved from chain `from` to chain `to`.
    pub fn moved(&self, from: usize, to: usize) -> u64 {
        self.moved[from * self.chains.len() + to].get()
    }
}

/// A worker's instance of the configured graph.
pub struct Graph {
    nodes: Vec<Node>,
    chains: Vec<ChainRt>,
    /// Ticks per call of each node (swapped out by the worker, see
    /// [`crate::latency`]).
    hists: Vec<crate::latency::Hist>,
    /// The chains each chain may send packets to (its stages' branches,
    /// its end), and, by target, the chains that may send to it.
    targets: Vec<Vec<ChainId>>,
    sources: Vec<Vec<ChainId>>,
    /// Chains in topological order.
    order: Vec<ChainId>,
    entry: ChainId,
    edges: Arc<EdgeCounters>,
    /// Packet tracing, when the runtime gave one, and whether this run
    /// looks for traced packets (armed, or some in flight).
    tracer: Option<crate::trace::Tracer>,
    tracing: bool,
    /// The worker's heartbeat, told which node runs (a panic names it).
    beat: Option<Arc<crate::telemetry::WorkerCounters>>,
}

/// What [`Graph::builder`] assembles.
pub struct GraphBuilder {
    nodes: Vec<Node>,
    chains: Vec<(Vec<usize>, End)>,
    names: Vec<String>,
}

impl GraphBuilder {
    /// Adds a stage instance shown as `name`, which may send packets to
    /// the chains `branches`, and whose tick's packets go on from
    /// position `home.1` of chain `home.0`; returns its index.
    pub fn node(
        &mut self,
        name: impl Into<String>,
        reasons: &'static [&'static str],
        stage: Box<dyn Stage>,
        branches: Vec<ChainId>,
        home: (ChainId, usize),
    ) -> usize {
        let counters = Arc::new(StageCounters::new(name, reasons).with_tables(stage.tables()));
        let scratch = vec![0; reasons.len()].into_boxed_slice();
        self.nodes.push(Node { stage, counters, scratch, home, branches });
        self.nodes.len() - 1
    }

    /// Adds chain `name` of these nodes, in order, ending in `end`.
    pub fn chain(&mut self, name: impl Into<String>, nodes: Vec<usize>, end: End) {
        self.names.push(name.into());
        self.chains.push((nodes, end));
    }

    /// The graph, entered at chain `entry`; batches of `batch_size`
    /// packets in frames of `arena`.
    ///
    /// # Panics
    /// If the chains' ends or branches loop (the configuration refuses
    /// loops first) or name chains or nodes that do not exist.
    pub fn build(self, entry: ChainId, arena: &Arc<crate::frame::Arena>, batch_size: usize) -> Graph {
        let n = self.chains.len();
        let targets = successors(&self.nodes, &self.chains);
        let order = topological(&targets);
        let chains = self
            .chains
            .into_iter()
            .zip(&targets)
            .map(|((nodes, end), targets)| {
                assert!(nodes.iter().all(|&i| i < self.nodes.len()), "a chain names a node that does not exist");
                let mut batch = Batch::new(arena.clone(), batch_size);
                batch.set_targets(n, targets);
                ChainRt { nodes, end, batch }
            })
            .collect();
        let sources = (0..n as ChainId)
            .map(|t| order.iter().copied().filter(|&s| targets[s as usize].contains(&t)).collect())
            .collect();
        Graph {
            hists: self.nodes.iter().map(|_| crate::latency::hist()).collect(),
            nodes: self.nodes,
            chains,
            targets,
            sources,
            order,
            entry,
            edges: Arc::new(EdgeCounters::new(self.names)),
            tracer: None,
            tracing: false,
            beat: None,
        }
    }
}

/// The chains each chain may send packets to: its stages' branches and
/// the chain it ends in.
fn successors(nodes: &[Node], chains: &[(Vec<usize>, End)]) -> Vec<Vec<ChainId>> {
    chains
        .iter()
        .map(|(ns, end)| {
            let mut s: Vec<ChainId> = ns.iter().flat_map(|&i| nodes[i].branches.iter().copied()).collect();
            if let End::Chain(t) = end {
                s.push(*t);
            }
            s.sort_unstable();
            s.dedup();
            s
        })
        .collect()
}

/// Chains in an order where every chain comes after each chain that
/// may send packets to it (`succ`, by chain).
pub(crate) fn topological(succ: &[Vec<ChainId>]) -> Vec<ChainId> {
    let n = succ.len();
    let mut indegree = vec![0usize; n];
    for t in succ.iter().flatten() {
        indegree[*t as usize] += 1;
    }
    let mut order: Vec<ChainId> = (0..n as ChainId).filter(|&c| indegree[c as usize] == 0).collect();
    let mut i = 0;
    while i < order.len() {
        for &t in &succ[order[i] as usize] {
            indegree[t as usize] -= 1;
            if indegree[t as usize] == 0 {
                order.push(t);
            }
        }
        i += 1;
    }
    assert_eq!(order.len(), n, "chains loop");
    order
}

impl Graph {
    /// An empty graph to add nodes and chains to.
    pub fn builder() -> GraphBuilder {
        GraphBuilder { nodes: Vec::new(), chains: Vec::new(), names: Vec::new() }
    }

    /// The batch a worker receives into: its entry chain's.
    #[inline(always)]
    pub fn entry_batch(&mut self) -> &mut Batch {
        &mut self.chains[self.entry as usize].batch
    }

    /// The batch of chain `c` (handed-off packets resume in it).
    #[inline(always)]
    pub fn batch(&mut self, c: ChainId) -> &mut Batch {
        &mut self.chains[c as usize].batch
    }

    /// Number of stage instances.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// True for a graph without stages.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// (stage name, report) of every stage that has something to say.
    pub fn reports(&self) -> Vec<(String, String)> {
        self.nodes.iter().filter_map(|s| s.stage.report().map(|r| (s.counters.name.clone(), r))).collect()
    }

    /// Tells `beat` which stage runs, from now on (see
    /// [`crate::telemetry::WorkerCounters::in_stage`]).
    pub fn watch(&mut self, beat: Arc<crate::telemetry::WorkerCounters>) {
        self.beat = Some(beat);
    }

    /// Counters of every stage instance, in the order they were added.
    pub fn counters(&self) -> Vec<Arc<StageCounters>> {
        self.nodes.iter().map(|s| s.counters.clone()).collect()
    }

    /// The per-call tick histograms of the nodes, in node order (the
    /// worker swaps them with empty ones to hand them over).
    pub fn hists_mut(&mut self) -> &mut Vec<crate::latency::Hist> {
        &mut self.hists
    }

    /// Counters of the graph's edges.
    pub fn edges(&self) -> &Arc<EdgeCounters> {
        &self.edges
    }

    /// Follows packets `control` picks (see [`crate::trace`]), as worker
    /// `worker` of a configuration with these port names.
    pub fn set_tracer(&mut self, control: Arc<crate::trace::TraceControl>, worker: usize, ports: Vec<String>) {
        let chains = self.edges.chains.clone();
        self.tracer = Some(crate::trace::Tracer::new(control, worker, ports, chains));
    }

    /// Picks packets of the entry batch, just received on port `at`, if
    /// tracing is armed for received packets. One load when it is not.
    #[inline]
    pub fn pick_received(&mut self, at: &str) {
        if let Some(t) = &mut self.tracer
            && t.picks_at(None)
        {
            let batch = &mut self.chains[self.entry as usize].batch;
            let mut descs = std::mem::take(batch.active_mut());
            t.pick(&mut descs, &format!("rx {at}"), |d| batch.bytes_of(d));
            *batch.active_mut() = descs;
        }
    }

    /// Runs the entry chain over its batch, and every chain packets were
    /// sent to.
    #[inline]
    pub fn run(&mut self, ctx: &mut StageCtx<'_>) {
        self.run_from(self.entry, 0, ctx);
    }

    /// Runs chain `c` from position `first` on over its batch (packets
    /// another worker handed off resume where they left its graph), then,
    /// in topological order, every chain packets were sent to: each once,
    /// over all of them.
    #[inline]
    pub fn run_from(&mut self, c: ChainId, first: usize, ctx: &mut StageCtx<'_>) {
        self.tracing = self.tracer.as_ref().is_some_and(|t| t.control.armed() || t.in_flight());
        let rx = self.chains[c as usize].batch.rx_port();
        self.run_chain(c, first, ctx);
        for i in 0..self.order.len() {
            let t = self.order[i];
            if self.take_sent(t) {
                self.chains[t as usize].batch.set_rx_port(rx);
                self.run_chain(t, 0, ctx);
            }
        }
    }

    /// Moves what the chains before `t` sent it into its batch, in their
    /// order (a swap of lists when the batch is empty, as it is when the
    /// chain's turn comes); true if anything came.
    #[inline]
    fn take_sent(&mut self, t: ChainId) -> bool {
        let mut any = false;
        for &s in &self.sources[t as usize] {
            let Some(o) = self.chains[s as usize].batch.outbox(t) else { continue };
            if o.is_empty() {
                continue;
            }
            let mut sent = std::mem::take(o);
            let b = self.chains[t as usize].batch.active_mut();
            if b.is_empty() {
                std::mem::swap(b, &mut sent);
            } else {
                b.append(&mut sent);
            }
            // The emptied list goes back, capacity and all.
            *self.chains[s as usize].batch.outbox(t).expect("the outbox taken above") = sent;
            any = true;
        }
        any
    }

    /// Runs the stages of chain `c` from position `first` on, then moves
    /// what is left on to the chain it ends in; with tracing in its own
    /// copy of the loop, so the usual one has no trace test per stage.
    #[inline]
    fn run_chain(&mut self, c: ChainId, first: usize, ctx: &mut StageCtx<'_>) {
        if self.tracing {
            self.run_chain_as::<true>(c, first, ctx);
        } else {
            self.run_chain_as::<false>(c, first, ctx);
        }
    }

    #[inline]
    fn run_chain_as<const TRACE: bool>(&mut self, c: ChainId, first: usize, ctx: &mut StageCtx<'_>) {
        let Self { nodes, chains, targets, edges, hists, tracer, beat, .. } = self;
        let chain = &mut chains[c as usize];
        let batch = &mut chain.batch;
        for (position, &n) in chain.nodes.iter().enumerate().skip(first) {
            let n_in = batch.len();
            if n_in == 0 {
                break;
            }
            let node = &mut nodes[n];
            let seen = match (TRACE, tracer.as_mut()) {
                (true, Some(t)) => crate::trace::before_stage(t, &node.counters.name, batch),
                _ => None,
            };
            let t0 = cycles::now();
            if let Some(b) = beat {
                b.in_stage.store(n as u32 + 1, std::sync::atomic::Ordering::Relaxed);
            }
            node.stage.process(batch, ctx);
            settle(node, c, position, batch);
            if let Some(b) = beat {
                b.in_stage.store(0, std::sync::atomic::Ordering::Relaxed);
            }
            let t1 = cycles::now();
            if TRACE && let (Some(seen), Some(t)) = (seen, tracer.as_mut()) {
                crate::trace::after_stage(t, &node.counters.name, node.counters.reasons, batch, seen);
            }
            let k = &node.counters;
            k.calls.add(1);
            k.pkts_in.add(n_in as u64);
            k.pkts_next.add(batch.len() as u64);
            k.ticks.add(t1.wrapping_sub(t0));
            if let Some(h) = hists.get_mut(n) {
                h.saturating_record(t1.wrapping_sub(t0));
            }
        }
        let left = batch.len();
        if left > 0 {
            match chain.end {
                End::Chain(t) => batch.send_rest(t),
                _ => edges.ended[c as usize].add(left as u64),
            }
        }
        // Everything sent on waits in the outboxes until the chains after
        // this one run.
        let width = chains.len();
        for &t in &targets[c as usize] {
            let sent = chains[c as usize].batch.outbox(t).map_or(0, |o| o.len());
            if sent > 0 {
                edges.moved[c as usize * width + t as usize].add(sent as u64);
            }
        }
    }

    /// Lets every stage instance sample itself ([`Stage::sample`]): its
    /// table occupancy into its counters, and what else the management
    /// plane reads; between batches, about every 100 ms.
    pub fn sample_tables(&mut self) {
        let mut out = [Occupancy::default(); MAX_TABLES];
        for n in &self.nodes {
            let gauges = &n.counters.tables;
            let out = &mut out[..gauges.len().min(MAX_TABLES)];
            n.stage.sample(out);
            for (g, o) in gauges.iter().zip(out.iter()) {
                g.entries.set(o.entries);
                g.capacity.set(o.capacity);
            }
        }
    }

    /// Lets stage instance `node` add packets of its own to its home
    /// chain's batch ([`Stage::tick`]) and runs them through the stages
    /// after it there, and on; true when it added any (the caller then
    /// dispatches).
    pub fn tick(&mut self, node: usize, ctx: &mut StageCtx<'_>) -> bool {
        let Some(n) = self.nodes.get_mut(node) else { return false };
        let (c, position) = n.home;
        let batch = &mut self.chains[c as usize].batch;
        if let Some(b) = &self.beat {
            b.in_stage.store(node as u32 + 1, std::sync::atomic::Ordering::Relaxed);
        }
        n.stage.tick(batch, ctx);
        if let Some(b) = &self.beat {
            b.in_stage.store(0, std::sync::atomic::Ordering::Relaxed);
        }
        let Some(first) = batch.active().first() else { return false };
        // What a stage adds on its tick arrives from where its first
        // packet says.
        batch.set_rx_port(first.meta.port);
        settle(n, c, position, batch);
        self.run_from(c, position + 1, ctx);
        true
    }

    /// Empties every chain's batch where no worker dispatches them (test
    /// runners, benchmarks): see [`Batch::finish_into`]; `f` also gets
    /// the end of the chain each packet finished in.
    pub fn finish_into(
        &mut self,
        pool: &mut crate::frame::FramePool,
        adjacency: &mut crate::adjacency::Adjacency,
        mut f: impl FnMut(crate::packet::Finished<'_>, End),
    ) {
        self.for_each_batch(|batch, end| batch.finish_into(pool, adjacency, |p| f(p, end)));
    }

    /// Gives every chain's batch, with the chain's end, to `f` (dispatch),
    /// in topological order; each batch is empty afterwards if `f`
    /// empties it.
    pub(crate) fn for_each_batch(&mut self, mut f: impl FnMut(&mut Batch, End)) {
        for i in 0..self.order.len() {
            let c = self.order[i];
            // Packets waiting for a chain that has not run (none, after
            // `run`) end where it ends.
            self.take_sent(c);
            let chain = &mut self.chains[c as usize];
            if self.tracing
                && let Some(t) = self.tracer.as_mut()
            {
                crate::trace::at_end(t, &self.edges.chains[c as usize], &chain.batch, chain.end);
            }
            if !chain.batch.is_empty() || !chain.batch.done().is_empty() {
                f(&mut chain.batch, chain.end);
            }
        }
    }
}

/// Settles what the stage at `position` of chain `c` did: packets it
/// finished move to the batch's done list, counted (drops by reason,
/// punts), packets it branched to their chains' outboxes; a handoff is
/// stamped to resume at this stage on the receiving worker; packets it
/// gave an egress or handed off are counted as its `out`.
#[inline(always)]
fn settle(node: &mut Node, c: ChainId, position: usize, batch: &mut Batch) {
    let k = &node.counters;
    let routed = batch.take_routed();
    if routed > 0 {
        k.pkts_out.add(routed as u64);
    }
    if batch.unsettled() == 0 {
        return;
    }
    let done_before = batch.done().len();
    batch.settle(&mut node.scratch);
    for (counter, n) in k.drops.iter().zip(node.scratch.iter_mut()) {
        if *n > 0 {
            counter.add(std::mem::take(n));
        }
    }
    let (mut punt, mut handed) = (0, 0);
    for d in &mut batch.done_mut()[done_before..] {
        match d.verdict.kind(d.egress) {
            VerdictKind::Punt => punt += 1,
            // The receiver resumes at this stage.
            VerdictKind::Handoff { worker, .. } => {
                d.verdict = Verdict::handoff(worker, c as u8, position as u8);
                handed += 1;
            }
            _ => {}
        }
    }
    k.pkts_punt.add(punt);
    k.pkts_out.add(handed);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adjacency::Adjacency;
    use crate::frame::FramePool;
    use crate::neighbour::Neighbours;
    use crate::packet::Meta;

    /// Adds one packet on its tick.
    struct Ticker;

    impl Stage for Ticker {
        fn process(&mut self, _: &mut Batch, _: &mut StageCtx<'_>) {}

        fn tick(&mut self, batch: &mut Batch, ctx: &mut StageCtx<'_>) {
            batch.push(ctx.pool.packet_from(&[0; 60], Meta::default()).expect("a frame"));
        }
    }

    /// Sends everything out of port 1.
    struct Out;

    impl Stage for Out {
        fn process(&mut self, batch: &mut Batch, _: &mut StageCtx<'_>) {
            for mut p in batch.iter_mut() {
                p.send_to(1);
            }
        }
    }

    /// Sends a packet to the chain its first byte names, or drops it (0xff).
    struct Split;

    impl Stage for Split {
        fn process(&mut self, batch: &mut Batch, _: &mut StageCtx<'_>) {
            for mut p in batch.iter_mut() {
                match p.data()[0] {
                    0xff => p.drop_with(crate::DropReason(0)),
                    0 => {}
                    c => p.goto(c as ChainId),
                }
            }
        }
    }

    /// Writes its mark into the second byte.
    struct Mark(u8);

    impl Stage for Mark {
        fn process(&mut self, batch: &mut Batch, _: &mut StageCtx<'_>) {
            for mut p in batch.iter_mut() {
                p.data_mut()[1] = self.0;
            }
        }
    }

    fn with_ctx<R>(f: impl FnOnce(&mut StageCtx<'_>, &mut FramePool) -> R) -> R {
        let mut pool = FramePool::heap(64);
        let mut adjacency = Adjacency::new(Neighbours::new([]), Default::default());
        let mut other = FramePool::heap(1);
        let mut ctx = StageCtx { pool: &mut other, adjacency: &mut adjacency, now_ticks: 0 };
        f(&mut ctx, &mut pool)
    }

    #[test]
    fn what_a_stage_adds_on_its_tick_runs_through_the_stages_after_it_in_its_home_chain() {
        let mut pool = FramePool::heap(8);
        let mut b = Graph::builder();
        let out = b.node("out", &[], Box::new(Out), vec![], (0, 0));
        let ticker = b.node("ticker", &[], Box::new(Ticker), vec![], (0, 1));
        let again = b.node("out-again", &[], Box::new(Out), vec![], (0, 2));
        b.chain("c", vec![out, ticker, again], End::Drop);
        let mut g = b.build(0, pool.arena(), 8);
        let mut adjacency = Adjacency::new(Neighbours::new([]), Default::default());
        let mut ctx = StageCtx { pool: &mut pool, adjacency: &mut adjacency, now_ticks: 0 };
        assert!(!g.tick(out, &mut ctx), "the first stage adds nothing");
        assert!(g.tick(ticker, &mut ctx));
        let c = g.counters();
        assert_eq!((c[0].pkts_in.get(), c[2].pkts_in.get(), c[2].pkts_out.get()), (0, 1, 1), "not the one before");
        let mut outcomes = Vec::new();
        g.for_each_batch(|batch, _| batch.drain(|d| outcomes.push(d.outcome())));
        assert_eq!(outcomes, [VerdictKind::Out(1)], "through the stage after it");
        assert!(!g.tick(5, &mut ctx), "no such stage");
    }

    #[test]
    fn traced_packets_are_followed_stage_by_stage_across_chains_to_their_end() {
        with_ctx(|ctx, pool| {
            let mut b = Graph::builder();
            let split = b.node("split", &["bad"], Box::new(Split), vec![1], (0, 0));
            let mark = b.node("mark", &[], Box::new(Mark(7)), vec![], (1, 0));
            b.chain("entry", vec![split], End::Drop);
            b.chain("a", vec![mark], End::Port(1));
            let mut g = b.build(0, pool.arena(), 64);
            let control = crate::trace::TraceControl::new();
            g.set_tracer(control.clone(), 3, vec!["p0".into(), "p1".into()]);
            for first in [1u8, 0xff, 0, 1] {
                let mut data = [0u8; 60];
                data[0] = first;
                g.entry_batch().push(pool.packet_from(&data, Meta::default()).unwrap());
            }
            control.arm(3, None);
            g.pick_received("p0");
            g.run(ctx);
            g.for_each_batch(|batch, _| batch.finish_into(pool, ctx.adjacency, |_| {}));
            let mut steps = Vec::new();
            while let Some(r) = control.records.pop() {
                steps.push((r.packet, r.worker, r.at, r.what.split(':').next().unwrap().to_string()));
            }
            let at =
                |n: u32| steps.iter().filter(|s| s.0 == n).map(|s| (s.2.as_str(), s.3.as_str())).collect::<Vec<_>>();
            assert!(steps.iter().all(|s| s.1 == 3), "recorded as worker 3");
            assert_eq!(
                at(0),
                [("rx p0", "picked"), ("split", "to chain a"), ("mark", "next"), ("end of a", "undecided")]
            );
            assert_eq!(at(1), [("rx p0", "picked"), ("split", "drop")], "its reason named");
            assert_eq!(at(2), [("rx p0", "picked"), ("split", "next"), ("end of entry", "undecided")]);
            assert!(at(3).is_empty(), "only three armed");
            assert_eq!(control.remaining(), 0);
            assert!(!g.tracer.as_ref().unwrap().in_flight(), "every traced packet accounted for");
        });
    }

    #[test]
    fn a_split_keeps_order_per_branch_and_branches_merge_where_their_chains_end() {
        with_ctx(|ctx, pool| {
            // entry: split to a (mark 1) and b (mark 2), both ending in
            // merge (out of port 1); the rest stays in the entry.
            let mut b = Graph::builder();
            let split = b.node("split", &["bad"], Box::new(Split), vec![1, 2], (0, 0));
            let one = b.node("one", &[], Box::new(Mark(1)), vec![], (1, 0));
            let two = b.node("two", &[], Box::new(Mark(2)), vec![], (2, 0));
            let out = b.node("out", &[], Box::new(Out), vec![], (3, 0));
            b.chain("entry", vec![split], End::Drop);
            b.chain("a", vec![one], End::Chain(3));
            b.chain("b", vec![two], End::Chain(3));
            b.chain("merge", vec![out], End::Drop);
            let mut g = b.build(0, pool.arena(), 64);
            let firsts = [1u8, 2, 1, 0xff, 2, 2, 0, 1];
            for (i, f) in firsts.iter().enumerate() {
                let mut data = [0u8; 60];
                data[0] = *f;
                data[2] = i as u8;
                g.entry_batch().push(pool.packet_from(&data, Meta::default()).unwrap());
            }
            g.run(ctx);
            let mut seen = Vec::new();
            g.for_each_batch(|batch, end| {
                batch.finish_into(pool, ctx.adjacency, |p| seen.push((end, p.verdict, p.data[1], p.data[2])))
            });
            let e = g.edges().clone();
            assert_eq!((e.moved(0, 1), e.moved(0, 2), e.moved(1, 3), e.moved(2, 3)), (3, 3, 3, 3));
            assert_eq!((e.ended[0].get(), e.ended[3].get()), (1, 6), "one undecided in the entry, six merged");
            let merged: Vec<_> = seen.iter().filter(|s| s.1 == VerdictKind::Out(1)).map(|s| (s.2, s.3)).collect();
            assert_eq!(merged, [(1, 0), (1, 2), (1, 7), (2, 1), (2, 4), (2, 5)], "in order within each branch");
            assert!(seen.contains(&(End::Drop, VerdictKind::Next, 0, 6)), "the undecided one left at the entry's end");
            assert!(seen.iter().any(|s| s.1 == VerdictKind::Drop(crate::DropReason(0))));
            assert_eq!(g.counters()[0].drops[0].get(), 1);
        });
    }
}
