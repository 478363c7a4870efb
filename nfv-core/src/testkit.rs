//! Driving a stage by hand, one frame at a time, for the network
//! functions' tests: a chain of one stage between two ports, configured
//! from TOML like any other (so parameters are checked as in a real run),
//! and a runner that classifies a frame, runs it through a stage, settles
//! the verdict and gives back the frame as it left.

use std::net::IpAddr;
use std::sync::Arc;

use crate::adjacency::Adjacency;
use crate::config::{self, Config};
use crate::frame::{Arena, FramePool, HEADROOM};
use crate::neighbour::Neighbours;
use crate::packet::{Meta, PktDesc, PortId, VerdictKind};
use crate::slowpath::{LocalAddrs, OwnedAddr};
use crate::{Batch, Stage, StageCtx, StageRegistry};

/// A configuration of two generator ports named `ports` and one chain of
/// `stage` (an inline TOML table) polled on both, loaded as `file` with
/// the stage kinds `register` adds; errors rendered.
pub fn two_port_config(
    file: &str,
    ports: [&str; 2],
    stage: &str,
    register: impl FnOnce(&mut StageRegistry),
) -> Result<Config, String> {
    let [a, b] = ports;
    let src = format!(
        "[[ports]]\nname = \"{a}\"\nkind = \"generator\"\n\n[[ports]]\nname = \"{b}\"\nkind = \"generator\"\n\n\
         [[chains]]\nname = \"c\"\nstages = [{stage}]\n\n[[workers]]\nrx = [\"{a}\", \"{b}\"]\nchain = \"c\"\n"
    );
    let mut r = StageRegistry::new();
    register(&mut r);
    config::load(file, &src, &r).map_err(|e| e.render())
}

/// Frames, a neighbour table and a clock for running stages by hand.
pub struct FrameRunner {
    pool: FramePool,
    table: Arc<Neighbours>,
    ports: LocalAddrs,
    adjacency: Adjacency,
    /// The batch's "now" in cycle-counter ticks.
    pub now_ticks: u64,
}

impl FrameRunner {
    /// A runner whose stages see these (address, MAC, port) neighbours,
    /// on ports with the MACs a configuration gives ports without one,
    /// every address on-link on every port (see [`FrameRunner::set_port`]).
    pub fn new(neighbours: impl IntoIterator<Item = (IpAddr, [u8; 6], PortId)>) -> Self {
        let table = Neighbours::new(neighbours);
        let anywhere = vec![
            OwnedAddr { addr: IpAddr::from([0, 0, 0, 0]), prefix: 0 },
            OwnedAddr { addr: IpAddr::from([0u16; 8]), prefix: 0 },
        ];
        let ports = LocalAddrs { ports: (0..16).map(|i| (config::default_port_mac(i), anywhere.clone())).collect() };
        Self {
            pool: FramePool::new(Arena::heap(256)),
            adjacency: Adjacency::new(table.clone(), Arc::new(ports.clone())),
            ports,
            table,
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
        let mut tx: Vec<Vec<PktDesc>> = (0..16).map(|_| Vec::new()).collect();
        self.adjacency.release(&mut self.pool, &mut tx);
        let mut out = Vec::new();
        for d in tx.into_iter().flatten() {
            out.push((d.verdict.kind(), d.meta, self.pool.frame(d.frame)[d.data_range()].to_vec()));
            self.pool.free(d.frame);
        }
        out
    }

    /// Held packets given up on at `now_ticks` (dropped, frames freed);
    /// true while packets are still held.
    pub fn expire(&mut self) -> bool {
        self.adjacency.expire(&mut self.pool, self.now_ticks);
        self.adjacency.holds()
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
    /// if the stage left it alone), the metadata it left with (a stage
    /// handing it off may have changed its port), its bytes as it left.
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
        let mut batch = Batch::new(self.pool.arena().clone(), 64);
        let id = self.pool.alloc().expect("a free frame");
        self.pool.frame_mut(id)[HEADROOM..HEADROOM + frame.len()].copy_from_slice(frame);
        let mut d = PktDesc::new(id, frame.len() as u16, port);
        let _ = crate::parse::classify(frame, &mut d.meta);
        batch.push(d);
        self.adjacency.expire(&mut self.pool, self.now_ticks);
        self.adjacency.refresh();
        let mut ctx = StageCtx { pool: &mut self.pool, adjacency: &mut self.adjacency, now_ticks: self.now_ticks };
        stage.process(&mut batch, &mut ctx);
        let (mut first, mut added) = ((VerdictKind::Next, Meta::default(), Vec::new()), Vec::new());
        for (frame, got) in self.settle_and_free(&mut batch) {
            if frame == id { first = got } else { added.push(got) }
        }
        (first, added)
    }
}

impl FrameRunner {
    /// `stage`'s tick ([`Stage::tick`]): the packets it added, settled, in
    /// batch order.
    pub fn tick(&mut self, stage: &mut dyn Stage) -> Vec<(VerdictKind, Meta, Vec<u8>)> {
        let mut batch = Batch::new(self.pool.arena().clone(), 64);
        self.adjacency.expire(&mut self.pool, self.now_ticks);
        self.adjacency.refresh();
        let mut ctx = StageCtx { pool: &mut self.pool, adjacency: &mut self.adjacency, now_ticks: self.now_ticks };
        stage.tick(&mut batch, &mut ctx);
        self.settle_and_free(&mut batch).into_iter().map(|(_, got)| got).collect()
    }

    /// The batch's packets settled, drained and their frames freed: (frame,
    /// (verdict, metadata, bytes)) in batch order.
    #[allow(clippy::type_complexity)]
    fn settle_and_free(&mut self, batch: &mut Batch) -> Vec<(crate::frame::FrameId, (VerdictKind, Meta, Vec<u8>))> {
        let mut scratch = [0u64; 64];
        batch.settle(&mut scratch);
        let mut all = Vec::new();
        let pool = &self.pool;
        batch.drain(|d| all.push((d.frame, (d.verdict.kind(), d.meta, pool.frame(d.frame)[d.data_range()].to_vec()))));
        for (f, (v, _, _)) in &all {
            // A held frame is the adjacency's until released.
            if *v != VerdictKind::Held {
                self.pool.free(*f);
            }
        }
        all
    }
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
