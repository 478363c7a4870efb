//! Driving a stage by hand, for the network functions' tests and the
//! benchmarks: a chain of one stage between two ports, configured from TOML
//! like any other (so parameters are checked as in a real run), and one
//! runner that parses frames, runs them through a stage in one batch,
//! settles the verdicts and gives back the packets as they left.
//!
//! It uses only nfv-core's public API, which hands frames out as owned
//! [`nfv_core::packet::NewPacket`]s: what a test can do, a stage can do,
//! and neither can alias a frame.

#![warn(missing_docs)]

use std::net::IpAddr;
use std::sync::Arc;

use nfv_core::adjacency::Adjacency;
use nfv_core::config::{self, Config};
use nfv_core::frame::FramePool;
use nfv_core::neighbour::Neighbours;
use nfv_core::packet::{FrameTag, Meta, PortId, VerdictKind};
use nfv_core::slowpath::{LocalAddrs, OwnedAddr};
use nfv_core::{Batch, Stage, StageCtx, StageRegistry};

/// The reloader a run keeps over `cfg` (loaded with the stage kinds
/// `register` adds): `poll` reloads it when a file its stages read
/// changes, as a running `nfv` does once a second.
pub fn reloader(cfg: &Config, register: impl FnOnce(&mut StageRegistry)) -> std::sync::Arc<nfv_core::reload::Reloader> {
    let mut r = StageRegistry::new();
    register(&mut r);
    let load = move |f: &str, t: &str| config::load(f, t, &r).map_err(|e| e.render());
    nfv_core::reload::Reloader::new(cfg.clone(), Neighbours::new([]), Box::new(load))
}

/// A configuration of two generator ports named `ports` and one chain of
/// `stage` (an inline TOML table) polled on both, loaded as `file` with
/// the stage kinds `register` adds; errors rendered. Both ports' subnets
/// span everything (as [`FrameRunner`]'s do): any next hop a stage names
/// can be asked for.
pub fn two_port_config(
    file: &str,
    ports: [&str; 2],
    stage: &str,
    register: impl FnOnce(&mut StageRegistry),
) -> Result<Config, String> {
    const ANYWHERE: &str = "addresses = [\"0.0.0.0/0\", \"::/0\"]\n";
    let [a, b] = ports;
    let src = format!(
        "[[ports]]\nname = \"{a}\"\nkind = \"generator\"\n{ANYWHERE}\n[[ports]]\nname = \"{b}\"\nkind = \"generator\"\n{ANYWHERE}\n\
         [[chains]]\nname = \"c\"\nstages = [{stage}]\n\n[[workers]]\nrx = [\"{a}\", \"{b}\"]\nchain = \"c\"\n"
    );
    let mut r = StageRegistry::new();
    register(&mut r);
    config::load(file, &src, &r).map_err(|e| e.render())
}

/// A packet as it left a stage run by hand.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// Which of the frames fed it is (their index), or `None` for a
    /// packet the stage added (a replica, a released or generated one).
    pub fed: Option<usize>,
    /// Its verdict (`Next` if the stage left it alone).
    pub verdict: VerdictKind,
    /// Its metadata as it left (a stage handing it off may change its
    /// port).
    pub meta: Meta,
    /// Its bytes as it left.
    pub data: Vec<u8>,
}

/// Frames, a neighbour table and a clock for running stages by hand: the
/// one runner of the functions' tests and the stage benchmarks.
pub struct FrameRunner {
    pool: FramePool,
    batch: Batch,
    table: Arc<Neighbours>,
    ports: LocalAddrs,
    adjacency: Adjacency,
    /// Tags of the frames fed in the current batch, by feeding order.
    fed: Vec<FrameTag>,
    /// The batch's "now" in cycle-counter ticks.
    pub now_ticks: u64,
}

impl FrameRunner {
    /// A runner whose stages see these (address, MAC, port) neighbours,
    /// on ports with the MACs a configuration gives ports without one,
    /// every address on-link on every port (see [`FrameRunner::set_port`]).
    pub fn new(neighbours: impl IntoIterator<Item = (IpAddr, [u8; 6], PortId)>) -> Self {
        Self::with_frames(neighbours, 256)
    }

    /// [`FrameRunner::new`] with a pool of `frames` frames (a benchmark
    /// cycling through many flows).
    pub fn with_frames(neighbours: impl IntoIterator<Item = (IpAddr, [u8; 6], PortId)>, frames: u32) -> Self {
        let anywhere = vec![
            OwnedAddr { addr: IpAddr::from([0, 0, 0, 0]), prefix: 0 },
            OwnedAddr { addr: IpAddr::from([0u16; 8]), prefix: 0 },
        ];
        let ports = LocalAddrs { ports: (0..16).map(|i| (config::default_port_mac(i), anywhere.clone())).collect() };
        Self::with_ports(neighbours, frames, ports)
    }

    /// A runner whose ports are `ports` (none: next hops are only ever
    /// looked up, never asked for).
    fn with_ports(
        neighbours: impl IntoIterator<Item = (IpAddr, [u8; 6], PortId)>,
        frames: u32,
        ports: LocalAddrs,
    ) -> Self {
        let table = Neighbours::new(neighbours);
        let pool = FramePool::heap(frames);
        Self {
            batch: Batch::new(pool.arena().clone(), nfv_core::batch::DEFAULT_BATCH),
            pool,
            adjacency: Adjacency::new(table.clone(), Arc::new(ports.clone())),
            ports,
            table,
            fed: Vec::with_capacity(nfv_core::batch::MAX_BATCH),
            now_ticks: 0,
        }
    }

    /// Gives `port` this MAC and these subnets (`"10.0.0.254/24"`): next
    /// hops elsewhere are not asked for on it.
    pub fn set_port(&mut self, port: PortId, mac: [u8; 6], subnets: &[&str]) {
        let subnets = subnets
            .iter()
            .map(|s| {
                let (a, l) = s.split_once('/').expect("address/length");
                OwnedAddr { addr: a.parse().expect("an address"), prefix: l.parse().expect("a length") }
            })
            .collect();
        self.ports.ports[port as usize] = (mac, subnets);
        self.adjacency = Adjacency::new(self.table.clone(), Arc::new(self.ports.clone()));
    }

    /// Packets held for their next hop that may leave now (the table
    /// learned it since), as the worker would send them: settled, in the
    /// order they were held.
    pub fn release(&mut self) -> Vec<(VerdictKind, Meta, Vec<u8>)> {
        self.adjacency.expire(&mut self.pool, self.now_ticks);
        self.adjacency.refresh();
        let mut out = Vec::new();
        self.adjacency.release_into(&mut self.pool, |p| out.push((p.verdict, *p.meta, p.data.to_vec())));
        out
    }

    /// Held packets given up on at `now_ticks` (dropped, frames freed);
    /// true while packets are still held.
    pub fn expire(&mut self) -> bool {
        self.adjacency.expire(&mut self.pool, self.now_ticks);
        self.adjacency.holds()
    }

    /// Frames taken from the pool and not given back: packets held for a
    /// next hop or kept by a stage, or leaked (a fuzz invariant: none
    /// once everything held has been released or given up).
    pub fn frames_in_use(&self) -> usize {
        self.pool.arena().frames() as usize - self.pool.available()
    }

    /// The next hops stages asked to resolve since the last call.
    pub fn requested(&self) -> Vec<IpAddr> {
        self.table.take_requests()
    }

    /// Teaches the table an adjacency (as the slow path would on an ARP
    /// answer).
    pub fn learn(&self, ip: IpAddr, mac: [u8; 6], port: PortId) {
        self.table.learn(ip, mac, port);
    }

    /// One frame arriving on `port` through `stage`: its verdict (`Next`
    /// if the stage left it alone), the metadata it left with, its bytes
    /// as it left.
    pub fn run(&mut self, stage: &mut dyn Stage, port: PortId, frame: &[u8]) -> (VerdictKind, Meta, Vec<u8>) {
        let (first, _) = self.run_all(stage, port, frame);
        first
    }

    /// The same, and every packet the stage added to the batch (packets
    /// it held and released, replicas), in batch order.
    #[allow(clippy::type_complexity)]
    pub fn run_all(
        &mut self,
        stage: &mut dyn Stage,
        port: PortId,
        frame: &[u8],
    ) -> ((VerdictKind, Meta, Vec<u8>), Vec<(VerdictKind, Meta, Vec<u8>)>) {
        let mut first = (VerdictKind::Next, Meta::default(), Vec::new());
        let mut added = Vec::new();
        for o in self.run_batch(stage, port, [frame]) {
            let got = (o.verdict, o.meta, o.data);
            if o.fed.is_some() { first = got } else { added.push(got) }
        }
        (first, added)
    }

    /// Frames arriving on `port` in one batch through `stage` (at most
    /// [`nfv_core::batch::MAX_BATCH`]): every packet that left, in batch
    /// order (finished packets first, as the worker dispatches them).
    pub fn run_batch<'f>(
        &mut self,
        stage: &mut dyn Stage,
        port: PortId,
        frames: impl IntoIterator<Item = &'f [u8]>,
    ) -> Vec<Outcome> {
        self.fed.clear();
        self.batch.set_rx_port(port);
        for frame in frames {
            let mut meta = Meta { port, ..Meta::default() };
            let _ = nfv_core::parse::classify(frame, &mut meta);
            let p = self.pool.packet_from(frame, meta).expect("a free frame for every frame fed");
            self.fed.push(p.tag());
            self.batch.push(p);
        }
        self.process(Some(stage));
        self.finish()
    }

    /// `stage`'s tick ([`Stage::tick`]): the packets it added, settled, in
    /// batch order.
    pub fn tick(&mut self, stage: &mut dyn Stage) -> Vec<(VerdictKind, Meta, Vec<u8>)> {
        self.fed.clear();
        self.adjacency.expire(&mut self.pool, self.now_ticks);
        self.adjacency.refresh();
        let mut ctx = StageCtx { pool: &mut self.pool, adjacency: &mut self.adjacency, now_ticks: self.now_ticks };
        stage.tick(&mut self.batch, &mut ctx);
        self.finish().into_iter().map(|o| (o.verdict, o.meta, o.data)).collect()
    }

    /// Runs the batch through `stage` (or through nothing, a benchmark's
    /// baseline) and settles its verdicts.
    fn process(&mut self, stage: Option<&mut dyn Stage>) {
        self.adjacency.expire(&mut self.pool, self.now_ticks);
        self.adjacency.refresh();
        if let Some(stage) = stage {
            let mut ctx = StageCtx { pool: &mut self.pool, adjacency: &mut self.adjacency, now_ticks: self.now_ticks };
            stage.process(&mut self.batch, &mut ctx);
        }
        let mut scratch = [0u64; 256];
        self.batch.settle(&mut scratch);
    }

    /// The settled batch's packets, its frames given back.
    fn finish(&mut self) -> Vec<Outcome> {
        let (fed, mut out) = (&self.fed, Vec::new());
        self.batch.finish_into(&mut self.pool, &mut self.adjacency, |p| {
            out.push(Outcome {
                fed: fed.iter().position(|t| *t == p.tag),
                verdict: p.verdict,
                meta: *p.meta,
                data: p.data.to_vec(),
            })
        });
        out
    }
}

/// Frames fed to a stage in rounds of one batch, for benchmarks: each
/// round copies the next frames (bytes and metadata as parsed once) into
/// fresh frames, runs the stage, or nothing for the baseline that a
/// stage's cost is measured against, and finishes the batch. Copying whole
/// frames each round restores whatever the stage rewrote.
pub struct Rounds {
    runner: FrameRunner,
    /// The frames, each one flow; a benchmark may rewrite them between
    /// rounds (new flows).
    pub frames: Vec<Vec<u8>>,
    metas: Vec<Meta>,
    /// Index of the next frame to feed.
    pub next: usize,
}

impl Rounds {
    /// `frames` arriving on `port`, parsed once (they must parse), seen by
    /// stages with these neighbours, at time 1 (see [`Rounds::set_now`]).
    /// The runner's ports own no subnet: a benchmark's next hops are all
    /// resolved, and asking for one would be a bug.
    pub fn new(
        frames: Vec<Vec<u8>>,
        port: PortId,
        neighbours: impl IntoIterator<Item = (IpAddr, [u8; 6], PortId)>,
    ) -> Self {
        let metas = frames
            .iter()
            .map(|f| {
                let mut meta = Meta { port, ..Meta::default() };
                nfv_core::parse::classify(f, &mut meta).expect("benchmark frames parse");
                meta
            })
            .collect();
        let mut runner = FrameRunner::with_ports(neighbours, 1024, LocalAddrs::default());
        runner.now_ticks = 1;
        runner.batch.set_rx_port(port);
        Self { runner, frames, metas, next: 0 }
    }

    /// The batches' "now" in cycle-counter ticks.
    pub fn set_now(&mut self, ticks: u64) {
        self.runner.now_ticks = ticks;
    }

    /// One round of `n` frames through `stage` (`None`: the baseline);
    /// returns how many packets `counted` accepts the verdict of.
    #[inline]
    pub fn round(
        &mut self,
        stage: Option<&mut dyn Stage>,
        n: usize,
        mut counted: impl FnMut(VerdictKind) -> bool,
    ) -> usize {
        let r = &mut self.runner;
        for i in 0..n {
            let at = (self.next + i) % self.frames.len();
            let p = r.pool.packet_from(&self.frames[at], self.metas[at]).expect("a free frame");
            r.batch.push(p);
        }
        self.next = (self.next + n) % self.frames.len();
        r.process(stage);
        let mut passed = 0;
        r.batch.finish_into(&mut r.pool, &mut r.adjacency, |p| passed += counted(p.verdict) as usize);
        passed
    }
}

impl Rounds {
    /// The arena a graph run by [`Rounds::round_graph`] is built on
    /// ([`nfv_core::graph::GraphBuilder::build`]).
    pub fn arena(&self) -> &Arc<nfv_core::frame::Arena> {
        self.runner.pool.arena()
    }

    /// One round of `n` frames through `graph` (built on
    /// [`Rounds::arena`]), from its entry chain on; returns how many
    /// packets `counted` accepts the outcome of.
    #[inline]
    pub fn round_graph(
        &mut self,
        graph: &mut nfv_core::graph::Graph,
        n: usize,
        mut counted: impl FnMut(VerdictKind) -> bool,
    ) -> usize {
        let r = &mut self.runner;
        let port = r.batch.rx_port();
        let entry = graph.entry_batch();
        entry.set_rx_port(port);
        for i in 0..n {
            let at = (self.next + i) % self.frames.len();
            entry.push(r.pool.packet_from(&self.frames[at], self.metas[at]).expect("a free frame"));
        }
        self.next = (self.next + n) % self.frames.len();
        let mut ctx = StageCtx { pool: &mut r.pool, adjacency: &mut r.adjacency, now_ticks: r.now_ticks };
        graph.run(&mut ctx);
        let mut passed = 0;
        graph.finish_into(&mut r.pool, &mut r.adjacency, |p, _| passed += counted(p.verdict) as usize);
        passed
    }
}

/// True when the test runs as root (loading BPF programs, namespaces).
/// Otherwise it says why and is skipped, except under
/// `NFV_REQUIRE_PRIV=1` (CI runs as root), where the test fails.
pub fn root_or_skip(test: &str) -> bool {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        return true;
    }
    if std::env::var("NFV_REQUIRE_PRIV").as_deref() == Ok("1") {
        panic!("{test}: needs root (NFV_REQUIRE_PRIV=1 makes this a failure)");
    }
    eprintln!("SKIPPED {test}: not root");
    false
}

/// True when every command of `needed` (a program and its arguments, such
/// as `["tshark", "--version"]`) runs and succeeds: a test using outside
/// tools (scapy, tshark) goes on. Otherwise it says why and is skipped,
/// except under `NFV_REQUIRE_PRIV=1` (CI, where `cargo xtask setup`
/// installed them), where the test fails.
pub fn tools_or_skip(test: &str, needed: &[&[&str]]) -> bool {
    let missing: Vec<String> = needed
        .iter()
        .filter(|cmd| !std::process::Command::new(cmd[0]).args(&cmd[1..]).output().is_ok_and(|o| o.status.success()))
        .map(|cmd| cmd.join(" "))
        .collect();
    if missing.is_empty() {
        return true;
    }
    if std::env::var("NFV_REQUIRE_PRIV").as_deref() == Ok("1") {
        panic!("{test}: needs {}: run cargo xtask setup", missing.join(", "));
    }
    eprintln!("SKIPPED {test}: {} failed (cargo xtask setup installs the tools)", missing.join(", "));
    false
}
