//! Builds workers, ports and the slow path from a validated [`Config`],
//! runs them on threads, reports live and at the end.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::adjacency::Adjacency;
use crate::config::{Config, PortKind};
use crate::frame::FramePool;
use crate::graph::Graph;
use crate::handoff::Handoff;
use crate::input::{INPUT_STAGE, Input, InputDrop};
use crate::neighbour::Neighbours;
use crate::packet::PortId;
use crate::port::generator::Generator;
use crate::port::pcap::{PCAP_DROP_REASONS, PcapPort};
use crate::port::sink::Sink;
use crate::port::{Port, PortInfo};
use crate::slowpath::{self, LocalAddrs, SlowPath, SlowPathCounters, SlowPathLink};
use crate::stage::{BuildCtx, ControlTask};
use crate::telemetry::Telemetry;
use crate::worker::{SlowMode, Worker};
use crate::worker_memory::{AFXDP_DROP_REASONS, WorkerMemory};

/// Depth of each worker's punt and inject queues.
const SLOW_QUEUE_DEPTH: usize = 256;
/// Depth of each worker's handoff inbox.
const HANDOFF_DEPTH: usize = crate::handoff::INBOX_DEPTH;

/// How the slow path runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SlowPathMode {
    /// A control thread (normal runs).
    Thread,
    /// On the worker, synchronously (replay: deterministic output order).
    Inline,
}

/// A failure to open what the configuration describes.
#[derive(Debug)]
pub struct BuildError(pub String);

impl std::fmt::Display for BuildError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BuildError {}

/// Workers ready to start, with everything the reporter reads.
pub struct Runtime {
    workers: Vec<Worker>,
    /// Counters of every stage and port.
    pub telemetry: Telemetry,
    control: Option<(SlowPath, Vec<Arc<SlowPathLink>>)>,
    /// Stages' control-side work (`chain/stage`, task).
    stage_tasks: Vec<(String, Box<dyn ControlTask>)>,
    /// Slow-path counters.
    pub slow_counters: Arc<SlowPathCounters>,
    /// The neighbour table.
    pub neighbours: Arc<Neighbours>,
    duration: Option<Duration>,
    stats_interval: Option<Duration>,
    /// Some port reads a finite input (a capture, a counted generator):
    /// without a duration, the run ends when it is exhausted.
    finite_input: bool,
    /// The run's phase and what readiness waits for.
    pub status: Arc<crate::status::RunStatus>,
    /// Packet tracing, armed by `nfv ctl trace add`.
    pub trace: Arc<crate::trace::TraceControl>,
    /// What opening the ports found worth saying (AF_XDP bind modes and
    /// why, busy poll, clean-ups), one line each.
    pub notes: Vec<String>,
}

/// What a finished run reports.
pub struct RunReport {
    /// Wall time from start to the last worker's exit.
    pub elapsed: Duration,
    /// Final counters.
    pub telemetry: Telemetry,
    /// Slow-path counters.
    pub slow: Arc<SlowPathCounters>,
    /// What stages had to say at the end ("worker N, stage: ..."), in
    /// worker order.
    pub stage_reports: Vec<String>,
    /// Workers that panicked: the run stopped every other worker and
    /// failed (the caller exits non-zero).
    pub failures: Vec<WorkerFailure>,
}

/// A worker that panicked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkerFailure {
    /// Its index.
    pub worker: usize,
    /// The stage that was running, when one was.
    pub stage: Option<String>,
    /// The panic's message.
    pub message: String,
}

impl std::fmt::Display for WorkerFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.stage {
            Some(s) => write!(f, "worker {} panicked in stage `{s}`: {}", self.worker, self.message),
            None => write!(f, "worker {} panicked outside its stages: {}", self.worker, self.message),
        }
    }
}

/// A panic payload's message (`panic!` gives a `&str` or a `String`).
fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".into())
}

/// Opens worker `worker`'s instance of port `pid`, polling `queue`.
fn open_port(
    cfg: &Config,
    pid: PortId,
    queue: u16,
    worker: usize,
    tx_only: bool,
    memory: &mut WorkerMemory,
) -> Result<Box<dyn Port>, BuildError> {
    let spec = &cfg.ports[pid as usize];
    Ok(match &spec.kind {
        PortKind::AfXdp(a) => {
            memory.open_af_xdp(PortInfo::new(pid, &spec.name, spec.mac, AFXDP_DROP_REASONS), a, queue, tx_only)?
        }
        PortKind::Generator(g) => {
            Box::new(Generator::new(PortInfo::new(pid, &spec.name, spec.mac, &[]), g, queue, spec.queues))
        }
        PortKind::Sink => Box::new(Sink::new(PortInfo::new(pid, &spec.name, spec.mac, &[]))),
        PortKind::Pcap(p) if p.recorder.is_some() => {
            let input = if queue == 0 { p.input.as_deref() } else { None };
            let info = PortInfo::new(pid, &spec.name, spec.mac, PCAP_DROP_REASONS);
            Box::new(
                PcapPort::recording(info, input, p.recorder.clone().expect("checked"))
                    .map_err(|e| BuildError(format!("port `{}`: {e}", spec.name)))?,
            )
        }
        PortKind::Pcap(p) => {
            // Only the worker polling queue 0 reads the file. Each worker
            // writes its own file (worker 0 the configured name, worker N
            // `NAME.wN.pcap`), so no two threads share a writer.
            let input = if queue == 0 { p.input.as_deref() } else { None };
            let output = p
                .output
                .as_ref()
                .map(|o| if worker == 0 { o.clone() } else { o.with_extension(format!("w{worker}.pcap")) });
            Box::new(
                PcapPort::open(PortInfo::new(pid, &spec.name, spec.mac, PCAP_DROP_REASONS), input, output.as_deref())
                    .map_err(|e| BuildError(format!("port `{}`: {e}", spec.name)))?,
            )
        }
    })
}

/// Fills in the MAC of AF_XDP ports configured without one from their
/// interface, so the slow path answers ARP with the address the wire sees.
fn resolve_macs(cfg: &Config) -> Result<Config, BuildError> {
    let mut cfg = cfg.clone();
    for p in &mut cfg.ports {
        if let (PortKind::AfXdp(_a), false) = (&p.kind, p.mac_configured) {
            #[cfg(feature = "af-xdp")]
            {
                p.mac = crate::port::afxdp::interface_mac(&_a.interface)
                    .map_err(|e| BuildError(format!("port `{}`: interface `{}`: {e}", p.name, _a.interface)))?;
            }
        }
    }
    Ok(cfg)
}

/// True when some worker polls queue `queue` of port `pid`.
fn polled_elsewhere(cfg: &Config, pid: PortId, queue: u16) -> bool {
    cfg.workers.iter().any(|w| w.rx.contains(&(pid, queue)))
}

/// Polls the stages' control tasks on their own thread, each at its own
/// period (a rebuild may take a while; neither workers nor the stats loop
/// wait for it) until `stop`.
fn spawn_stage_tasks(
    mut tasks: Vec<(String, Box<dyn ControlTask>)>,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<()> {
    std::thread::Builder::new()
        .name("nfv-stage-tasks".into())
        .spawn(move || {
            let mut due: Vec<Instant> = tasks.iter().map(|_| Instant::now()).collect();
            while !stop.load(Ordering::Relaxed) {
                for ((name, task), next) in tasks.iter_mut().zip(due.iter_mut()) {
                    if Instant::now() >= *next {
                        for line in task.poll() {
                            eprintln!("nfv: {name}: {line}");
                        }
                        *next = Instant::now() + task.period();
                    }
                }
                let wake = due.iter().min().copied().unwrap_or_else(Instant::now);
                let nap = wake.saturating_duration_since(Instant::now()).min(Duration::from_millis(50));
                std::thread::sleep(nap.max(Duration::from_micros(200)));
            }
        })
        .expect("spawn stage task thread")
}

/// The handoff inboxes of the workers entering at each chain: one set
/// when several do and a stage their graph reaches steers packets to the
/// worker holding their flow's state
/// ([`crate::stage::StageBuilder::hands_off`]), else none. (The
/// configuration refused a stage that hands off in two workers' graphs
/// of different entries.)
fn handoff_inboxes(cfg: &Config) -> Vec<Option<Arc<Handoff>>> {
    (0..cfg.chains.len())
        .map(|c| {
            let n = cfg.workers.iter().filter(|w| w.chain == c).count();
            let needed = n > 1 && cfg.reachable_stages(c).iter().any(|s| s.builder.hands_off());
            needed.then(|| Handoff::new(n, HANDOFF_DEPTH, cfg.run.batch_size))
        })
        .collect()
}

/// Worker `wi`'s instance of every port: the queues it polls, and for
/// sending a queue of each other port (a pcap file's writer, an AF_XDP
/// queue no worker polls and no other sends on; none free: said in
/// `notes`, and its packets there are counted `no-tx-port`).
fn open_worker_ports(
    cfg: &Config,
    wi: usize,
    memory: &mut WorkerMemory,
    tx_taken: &mut std::collections::HashSet<(PortId, u16)>,
    notes: &mut Vec<String>,
) -> Result<Vec<Option<Box<dyn Port>>>, BuildError> {
    let mut ports: Vec<Option<Box<dyn Port>>> = (0..cfg.ports.len()).map(|_| None).collect();
    for &(pid, q) in &cfg.workers[wi].rx {
        let port = open_port(cfg, pid, q, wi, false, memory)?;
        let _ = port.info().counters.place.set((wi, q));
        ports[pid as usize] = Some(port);
    }
    for pid in 0..cfg.ports.len() as PortId {
        if ports[pid as usize].is_none() {
            let spec = &cfg.ports[pid as usize];
            let queue = match spec.kind {
                // Transmit-only: a pcap file is read by the worker polling it.
                PortKind::Pcap(_) => 1,
                // An AF_XDP queue can hold one socket: take one that no
                // worker polls and no other worker sends on. Without a
                // free queue this worker cannot send there; the
                // dispatcher counts such packets as no-tx-port.
                PortKind::AfXdp(_) => {
                    let free = (0..spec.queues)
                        .map(|k| (wi as u16 + k) % spec.queues)
                        .find(|&q| !polled_elsewhere(cfg, pid, q) && !tx_taken.contains(&(pid, q)));
                    let Some(q) = free else {
                        notes.push(format!(
                            "worker {wi} cannot send on `{}`: each of its {} queue(s) is polled or used by \
                             another worker; poll a queue of `{}` on worker {wi}, or give it more queues",
                            spec.name, spec.queues, spec.name
                        ));
                        continue;
                    };
                    tx_taken.insert((pid, q));
                    q
                }
                _ => wi as u16 % spec.queues,
            };
            let port = open_port(cfg, pid, queue, wi, true, memory)?;
            let _ = port.info().counters.place.set((wi, queue));
            ports[pid as usize] = Some(port);
        }
    }
    Ok(ports)
}

/// Worker `wi`'s instance of the graph: every chain (those its packets
/// cannot reach left empty, so chain numbers are the configuration's),
/// each stage its packets may meet built once for this worker and its
/// rank among the workers running it, and at the front of its entry
/// chain the input stage when anything reads headers or its ports own an
/// address (it parses, and punts what is addressed to us; without it the
/// worker forwards like testpmd's io mode).
fn build_graph(
    cfg: &Config,
    wi: usize,
    local: &Arc<LocalAddrs>,
    port_macs: &[[u8; 6]],
    arena: &Arc<crate::frame::Arena>,
    mut offload: Option<&mut Offload>,
) -> Graph {
    let w = &cfg.workers[wi];
    let reach = cfg.reachable(w.chain);
    let stages = cfg.reachable_stages(w.chain);
    let owns = w.rx.iter().any(|(pid, _)| !local.ports[*pid as usize].1.is_empty());
    let input = owns || stages.iter().any(|s| s.builder.reads_headers());
    // Graph positions: the input stage shifts the entry chain's by one.
    let shift = |c: usize| (input && c == w.chain) as usize;
    let mut b = Graph::builder();
    let mut node_of = vec![usize::MAX; cfg.nodes().len()];
    let input_node = input.then(|| {
        b.node(INPUT_STAGE, InputDrop::NAMES, Box::new(Input::new(local.clone())), vec![], (w.chain as u16, 0))
    });
    for (home, s) in cfg.nodes() {
        if !stages.iter().any(|r| r.node == s.node) {
            continue;
        }
        let running: Vec<usize> = (0..cfg.workers.len())
            .filter(|&o| cfg.reachable_stages(cfg.workers[o].chain).iter().any(|r| r.node == s.node))
            .collect();
        let ctx = BuildCtx {
            worker: wi,
            port_macs,
            headers_read_later: read_later(cfg, s.node),
            chain_rank: running.iter().position(|&o| o == wi).unwrap_or(0),
            chain_workers: running.len().max(1),
        };
        let position = cfg.chains[home].stages.iter().position(|x| x.node == s.node).unwrap_or(0) + shift(home);
        let branches = s.builder.branches().into_iter().map(|(c, _)| c).collect();
        let mut stage = s.builder.build(&ctx);
        if let Some(o) = offload.as_deref_mut()
            && o.plan.offloaded.contains(&s.node)
        {
            let taken = stage.take_offload(o.task.offloader());
            assert!(taken, "the plan offloads only stages that take it (`{}`)", s.kind);
        }
        node_of[s.node] =
            b.node(display_name(cfg, home, s), s.builder.drop_reasons(), stage, branches, (home as u16, position));
    }
    for (c, chain) in cfg.chains.iter().enumerate() {
        let mut nodes: Vec<usize> = Vec::new();
        if reach.contains(&c) {
            nodes.extend(input_node.filter(|_| c == w.chain));
            nodes.extend(chain.stages.iter().map(|s| node_of[s.node]));
        }
        b.chain(chain.name.clone(), nodes, chain.then);
    }
    b.build(w.chain as u16, arena, cfg.run.batch_size)
}

/// Worker `wi`'s graph as [`Runtime::build`] would build it, its batches
/// on `arena`, for benchmarks and tests that drive a graph by hand
/// (`nfv_testkit::Rounds::round_graph`).
pub fn worker_graph(cfg: &Config, wi: usize, arena: &Arc<crate::frame::Arena>) -> Graph {
    let local = Arc::new(cfg.local_addrs());
    let port_macs: Vec<[u8; 6]> = cfg.ports.iter().map(|p| p.mac).collect();
    build_graph(cfg, wi, &local, &port_macs, arena, None)
}

/// The XDP engine while the runtime is built: the plan, the engine's
/// control task handing out offloaders, the ports' interface indexes.
struct Offload {
    engine: Arc<dyn crate::offload::Engine>,
    plan: crate::plan::Plan,
    task: crate::offload::EngineTask,
}

impl Offload {
    fn new(cfg: &Config, engine: Arc<dyn crate::offload::Engine>) -> Self {
        let ifindex: Vec<u32> = cfg
            .ports
            .iter()
            .map(|p| match &p.kind {
                PortKind::AfXdp(a) => std::ffi::CString::new(a.interface.as_str())
                    // SAFETY: a NUL-terminated name.
                    .map_or(0, |c| unsafe { libc::if_nametoindex(c.as_ptr()) }),
                _ => 0,
            })
            .collect();
        let task = crate::offload::EngineTask::new(engine.clone(), ifindex.into());
        Self { engine, plan: crate::plan::plan(cfg), task }
    }

    /// What the AF_XDP ports attach.
    fn ports(&self) -> crate::worker_memory::XdpPorts {
        let programs: Vec<_> =
            self.plan.programs.iter().map(|p| p.as_ref().map(|(p, _)| *p).unwrap_or_default()).collect();
        crate::worker_memory::XdpPorts {
            engine: self.engine.clone(),
            programs: programs.into(),
            ifindex: self.task.ifindex(),
        }
    }

    /// The start-up lines: what the program does on each port and why.
    fn notes(&self, cfg: &Config) -> Vec<String> {
        let mut v: Vec<String> = cfg
            .ports
            .iter()
            .zip(&self.plan.programs)
            .filter_map(|(p, prog)| {
                prog.as_ref().map(|(prog, why)| format!("xdp {}: {}; {why}", p.name, prog.describe()))
            })
            .collect();
        let stages: Vec<String> = cfg
            .nodes()
            .iter()
            .filter(|(_, s)| self.plan.offloaded.contains(&s.node))
            .map(|(c, s)| format!("{}/{}", cfg.chains[*c].name, s.name))
            .collect();
        if !stages.is_empty() {
            v.push(format!("xdp: the workers install the established flows of {}", stages.join(", ")));
        }
        v
    }
}

/// True when a stage a packet may meet after stage instance `node` reads
/// headers: later in a chain it sits in, or in a chain reached from there.
fn read_later(cfg: &Config, node: usize) -> bool {
    let reads = |s: &&crate::config::StageSpec| s.builder.reads_headers();
    cfg.chains.iter().enumerate().any(|(c, ch)| {
        ch.stages.iter().position(|s| s.node == node).is_some_and(|i| {
            ch.stages[i + 1..].iter().any(|s| reads(&s))
                || cfg.successors(c).into_iter().any(|t| cfg.reachable_stages(t).iter().any(reads))
        })
    })
}

/// A stage's name in tables: its own, or `chain/name` where two stages
/// share a name.
fn display_name(cfg: &Config, chain: usize, s: &crate::config::StageSpec) -> String {
    let same = cfg.nodes().iter().filter(|(_, o)| o.name == s.name).count();
    if same > 1 { format!("{}/{}", cfg.chains[chain].name, s.name) } else { s.name.clone() }
}

impl Runtime {
    /// Opens ports and builds every worker's chain. Nothing runs yet.
    pub fn build(cfg: &Config, slow_mode: SlowPathMode) -> Result<Self, BuildError> {
        Self::build_with(cfg, slow_mode, None)
    }

    /// As [`Self::build`], with nfv's XDP `engine` in place of libxdp's
    /// program on the AF_XDP ports: each does what the plan placed in XDP
    /// ([`crate::plan::Plan::programs`]), the stages whose flows it
    /// forwards install them ([`crate::offload`]), and its control task
    /// runs beside the stages'.
    pub fn build_with(
        cfg: &Config,
        slow_mode: SlowPathMode,
        engine: Option<Arc<dyn crate::offload::Engine>>,
    ) -> Result<Self, BuildError> {
        let cfg = &resolve_macs(cfg)?;
        let mut offload = engine.map(|e| Offload::new(cfg, e));
        let local = Arc::new(cfg.local_addrs());
        let statics = cfg.neighbours.iter().filter_map(|n| n.mac.map(|m| (n.ip, m, n.port)));
        let neighbours = Neighbours::new(statics);
        let mut template = SlowPath::new((*local).clone(), neighbours.clone());
        // Kept resolved by the slow path. `config::load` refused next hops
        // on no port's subnet, located, so `nfv check` refuses them too.
        let wanted = cfg.neighbours.iter().filter(|n| n.mac.is_none()).map(|n| n.ip);
        let wanted: Vec<_> =
            wanted.chain(cfg.nodes().into_iter().flat_map(|(_, s)| s.builder.wanted_neighbours())).collect();
        for &ip in &wanted {
            if !template.want(ip) {
                return Err(BuildError(format!("next hop {ip} is on no port's subnet (checked by config::load)")));
            }
        }
        let status = Arc::new(crate::status::RunStatus::new(wanted, neighbours.clone()));
        let port_macs: Vec<[u8; 6]> = cfg.ports.iter().map(|p| p.mac).collect();
        let slow_counters = template.counters.clone();
        let any_local = local.ports.iter().any(|(_, a)| !a.is_empty());
        let mut telemetry = Telemetry::default();
        let mut workers = Vec::new();
        let mut links = Vec::new();
        let mut notes = offload.as_ref().map(|o| o.notes(cfg)).unwrap_or_default();
        let mut tx_taken = std::collections::HashSet::new();
        let handoffs = handoff_inboxes(cfg);
        let trace = crate::trace::TraceControl::new();
        for (wi, w) in cfg.workers.iter().enumerate() {
            let mut memory = WorkerMemory::new(cfg, wi)?;
            memory.xdp = offload.as_ref().map(Offload::ports);
            let pool = FramePool::new(memory.arena());
            let mut graph = build_graph(cfg, wi, &local, &port_macs, pool.arena(), offload.as_mut());
            graph.set_tracer(trace.clone(), wi, cfg.port_names());
            let peer_rank = cfg.workers[..wi].iter().filter(|o| o.chain == w.chain).count();
            let ports = open_worker_ports(cfg, wi, &mut memory, &mut tx_taken, &mut notes)?;
            let slow = match (slow_mode, any_local || !cfg.neighbours.is_empty()) {
                (_, false) => SlowMode::None,
                (SlowPathMode::Inline, true) => {
                    let mut sp = SlowPath::new((*local).clone(), neighbours.clone());
                    sp.counters = slow_counters.clone();
                    SlowMode::Inline(Box::new(sp))
                }
                (SlowPathMode::Thread, true) => {
                    let link = SlowPathLink::new(SLOW_QUEUE_DEPTH);
                    links.push(link.clone());
                    SlowMode::Thread(link)
                }
            };
            let rx = w.rx.iter().map(|r| r.0).collect();
            let adjacency = Adjacency::new(neighbours.clone(), local.clone());
            let mut worker = Worker::new(wi, w.core, pool, graph, ports, rx, slow, adjacency);
            if let Some(h) = &handoffs[w.chain] {
                worker.set_handoff(h.clone(), peer_rank);
            }
            notes.extend(std::mem::take(&mut memory.notes));
            telemetry.stages.push(worker.stage_counters());
            telemetry.edges.push(worker.edge_counters());
            telemetry.ports.extend(worker.port_counters());
            telemetry.workers.push(worker.heartbeat());
            telemetry.latency.push(worker.latency_exchange());
            workers.push(worker);
        }
        let control = (!links.is_empty()).then_some((template, links));
        let mut stage_tasks: Vec<(String, Box<dyn ControlTask>)> = cfg
            .nodes()
            .into_iter()
            .filter_map(|(c, s)| Some((format!("{}/{}", cfg.chains[c].name, s.name), s.builder.control_task()?)))
            .collect();
        if let Some(o) = offload {
            telemetry.xdp = Some(o.task.counters());
            stage_tasks.push(("xdp".into(), Box::new(o.task)));
        }
        let secs = |s: f64| (s > 0.0).then(|| Duration::from_secs_f64(s));
        Ok(Self {
            workers,
            telemetry,
            control,
            stage_tasks,
            slow_counters,
            neighbours,
            duration: secs(cfg.run.duration),
            finite_input: cfg.ports.iter().any(|p| match &p.kind {
                PortKind::Pcap(p) => p.input.is_some(),
                PortKind::Generator(g) => g.count > 0,
                PortKind::Sink | PortKind::AfXdp(_) => false,
            }),
            status,
            trace,
            notes,
            stats_interval: secs(cfg.run.stats_interval),
        })
    }

    /// Overrides the configured run time.
    pub fn set_duration(&mut self, d: Option<Duration>) {
        self.duration = d;
    }

    /// Overrides the live stats interval (`None`: no live line).
    pub fn set_stats_interval(&mut self, d: Option<Duration>) {
        self.stats_interval = d;
    }

    /// Runs until `stop` is set, the duration passes, or, without a
    /// duration, every source of a configuration with finite input (a
    /// capture, a counted generator) is exhausted: a configuration
    /// without input (output-only captures, an N4-only UPF) stays up to
    /// be operated. `on_tick` gets the counters every stats interval.
    pub fn run(self, stop: Arc<AtomicBool>, mut on_tick: impl FnMut(&Telemetry, Duration)) -> RunReport {
        let Self {
            workers,
            telemetry,
            control,
            stage_tasks,
            slow_counters,
            duration,
            stats_interval,
            finite_input,
            status,
            ..
        } = self;
        let until_stopped = duration.is_some() || !finite_input;
        let control_stop = Arc::new(AtomicBool::new(false));
        let control = control.map(|(sp, links)| slowpath::spawn(sp, links, control_stop.clone()));
        let tasks = (!stage_tasks.is_empty()).then(|| spawn_stage_tasks(stage_tasks, control_stop.clone()));
        let start = Instant::now();
        let beats: Vec<_> = workers.iter().map(|w| w.heartbeat()).collect();
        let handles: Vec<_> = workers
            .into_iter()
            .map(|w| {
                let stop = stop.clone();
                std::thread::Builder::new()
                    .name(format!("nfv-worker-{}", w.index))
                    .spawn(move || w.run(&stop, until_stopped).stage_reports())
                    .expect("spawn worker")
            })
            .collect();
        // A worker ended without saying so: it panicked (its ports were
        // dropped as it unwound: sockets closed, programs detached).
        let died = |handles: &[std::thread::JoinHandle<_>]| {
            handles.iter().zip(&beats).any(|(h, b)| h.is_finished() && !b.exited.load(Ordering::Relaxed))
        };
        status.set_phase(crate::status::Phase::Running);
        let mut next_tick = stats_interval.map(|i| start + i);
        while !handles.iter().all(|h| h.is_finished()) {
            std::thread::sleep(Duration::from_millis(10));
            let now = Instant::now();
            if duration.is_some_and(|d| now - start >= d) || died(&handles) {
                stop.store(true, Ordering::Relaxed);
            }
            if stop.load(Ordering::Relaxed) || handles.iter().any(|h| h.is_finished()) {
                status.set_phase(crate::status::Phase::Stopping);
            }
            if let (Some(t), Some(i)) = (next_tick, stats_interval)
                && now >= t
            {
                on_tick(&telemetry, now - start);
                next_tick = Some(t + i);
            }
        }
        let (mut stage_reports, mut failures) = (Vec::new(), Vec::new());
        for (h, beat) in handles.into_iter().zip(&beats) {
            match h.join() {
                Ok(r) => stage_reports.extend(r),
                Err(p) => failures.push(WorkerFailure {
                    worker: beat.index,
                    stage: beat.running_stage().map(str::to_string),
                    message: panic_message(&*p),
                }),
            }
        }
        let elapsed = start.elapsed();
        control_stop.store(true, Ordering::Relaxed);
        if let Some(c) = control {
            let _ = c.join();
        }
        if let Some(t) = tasks {
            let _ = t.join();
        }
        RunReport { elapsed, telemetry, slow: slow_counters, stage_reports, failures }
    }

    /// Runs the workers on the calling thread, in turn, without pinning
    /// or threads (replays, benchmarks and tests): polls until every
    /// source is exhausted.
    pub fn run_inline(mut self) -> RunReport {
        let start = Instant::now();
        let workers = std::mem::take(&mut self.workers);
        let mut stage_reports = Vec::new();
        for w in Worker::run_interleaved(workers) {
            stage_reports.extend(w.stage_reports());
        }
        RunReport {
            elapsed: start.elapsed(),
            telemetry: self.telemetry,
            slow: self.slow_counters,
            stage_reports,
            failures: Vec::new(),
        }
    }

    /// Takes the built workers out (benchmarks drive `poll_once` directly).
    pub fn into_workers(self) -> Vec<Worker> {
        self.workers
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{self, Diagnostic, Params};
    use crate::stage::{BuildEnv, Stage, StageBuilder, StageCtx, StageFactory, StageRegistry};

    /// A stage that reads no header and, as `steer`, hands packets off;
    /// as `boom`, panics on worker 0's third batch.
    struct Kind(&'static str);
    struct Builder(&'static str);
    struct Nothing;
    struct Boom(u32);

    impl Stage for Nothing {
        fn process(&mut self, _: &mut crate::Batch, _: &mut StageCtx<'_>) {}
    }

    impl Stage for Boom {
        fn process(&mut self, _: &mut crate::Batch, _: &mut StageCtx<'_>) {
            self.0 += 1;
            assert!(self.0 < 3, "boom on purpose");
        }
    }

    impl StageBuilder for Builder {
        fn drop_reasons(&self) -> &'static [&'static str] {
            &[]
        }
        fn reads_headers(&self) -> bool {
            false
        }
        fn hands_off(&self) -> bool {
            self.0 == "steer"
        }
        fn build(&self, ctx: &BuildCtx<'_>) -> Box<dyn Stage> {
            if self.0 == "boom" && ctx.worker == 0 { Box::new(Boom(0)) } else { Box::new(Nothing) }
        }
    }

    impl StageFactory for Kind {
        fn kind(&self) -> &'static str {
            self.0
        }
        fn summary(&self) -> &'static str {
            "test"
        }
        fn configure(&self, _: &Params<'_>, _: &BuildEnv<'_>) -> Result<Arc<dyn StageBuilder>, Vec<Diagnostic>> {
            Ok(Arc::new(Builder(self.0)))
        }
    }

    fn load(stage: &str, addresses: &str, workers: usize) -> Config {
        let mut r = StageRegistry::new();
        r.register(Box::new(Kind("pass")));
        r.register(Box::new(Kind("steer")));
        r.register(Box::new(Kind("boom")));
        let mut src = format!(
            "[[ports]]\nname = \"g\"\nkind = \"generator\"\nqueues = {workers}\n{addresses}\n\n\
             [[chains]]\nname = \"c\"\nstages = [{{ kind = \"{stage}\" }}]\n"
        );
        for q in 0..workers {
            src += &format!("\n[[workers]]\nrx = [\"g:{q}\"]\nchain = \"c\"\n");
        }
        config::load("t.toml", &src, &r).unwrap_or_else(|e| panic!("{}", e.render()))
    }

    #[test]
    fn the_input_stage_runs_only_where_headers_are_read_or_a_port_owns_an_address() {
        let arena = FramePool::heap(8).arena().clone();
        let io = load("pass", "", 1);
        let local = Arc::new(io.local_addrs());
        let graph = build_graph(&io, 0, &local, &[[2, 0, 0, 0, 0, 1]], &arena, None);
        assert_eq!(graph.len(), 1, "io forwarding: the stage alone");
        let owned = load("pass", "addresses = [\"192.0.2.1/24\"]", 1);
        let local = Arc::new(owned.local_addrs());
        let graph = build_graph(&owned, 0, &local, &[[2, 0, 0, 0, 0, 1]], &arena, None);
        assert_eq!(graph.len(), 2, "the input stage first: it punts what is addressed to us");
    }

    #[test]
    fn a_worker_that_panics_is_named_with_its_stage_and_the_others_are_stopped() {
        let rt = Runtime::build(&load("boom", "", 2), SlowPathMode::Inline).unwrap();
        let t = Instant::now();
        let report = rt.run(Arc::new(AtomicBool::new(false)), |_, _| {});
        assert!(t.elapsed() < Duration::from_secs(5), "the run ends: {:?}", t.elapsed());
        let f = &report.failures;
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!((f[0].worker, f[0].stage.as_deref()), (0, Some("boom")));
        assert!(f[0].message.contains("boom on purpose"), "{}", f[0]);
        assert_eq!(f[0].to_string(), "worker 0 panicked in stage `boom`: boom on purpose");
        assert!(report.telemetry.workers[1].exited.load(Ordering::Relaxed), "worker 1 stopped and drained");
    }

    #[test]
    fn only_a_chain_of_several_workers_with_a_steering_stage_gets_handoff_inboxes() {
        assert!(handoff_inboxes(&load("steer", "", 2))[0].is_some());
        assert!(handoff_inboxes(&load("steer", "", 1))[0].is_none(), "one worker: nobody to hand to");
        assert!(handoff_inboxes(&load("pass", "", 2))[0].is_none(), "nothing steers");
    }
}
