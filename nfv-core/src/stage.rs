//! The stage trait (a network function's per-batch work), how stages are
//! configured from TOML, and the registry of stage kinds.

use std::net::IpAddr;
use std::sync::Arc;

use crate::adjacency::Adjacency;
use crate::batch::Batch;
use crate::config::{Diagnostic, Params};
use crate::frame::FramePool;
use crate::packet::{ChainId, PortId};

/// What a stage may use besides the batch.
pub struct StageCtx<'a> {
    /// The worker's frame pool, for stages that create packets (replication,
    /// replies) or free frames.
    pub pool: &'a mut FramePool,
    /// Next hops: the neighbour table as of this batch, and where packets
    /// to unresolved next hops wait ([`Adjacency::send`]).
    pub adjacency: &'a mut Adjacency,
    /// Cycle counter at the start of the batch, a cheap "now".
    pub now_ticks: u64,
}

impl StageCtx<'_> {
    /// The batch's "now" in whole seconds ([`crate::cycles::secs`]).
    #[inline]
    pub fn now_secs(&self) -> u32 {
        crate::cycles::secs(self.now_ticks)
    }
}

/// One network function instance, owned by one worker.
///
/// `process` runs over every packet still in the chain and may finish a
/// packet (`drop_with`, `punt`, `goto` another chain, `hand_off`) or
/// decide its egress (`send_to`, the adjacency's `send`); every packet
/// not finished goes on to the next stage, which may decide again. It
/// must not allocate, lock or make system calls: it runs once per batch
/// on the hot path.
pub trait Stage: Send {
    /// Processes the batch in place.
    fn process(&mut self, batch: &mut Batch, ctx: &mut StageCtx<'_>);

    /// State worth showing when the run ends (a forwarding database, table
    /// occupancy), printed under the stage's name; `None` for nothing.
    fn report(&self) -> Option<String> {
        None
    }

    /// The tables this instance keeps (`sessions`, `fdb`...): what
    /// [`Stage::sample`] reports, in this order; none by default.
    fn tables(&self) -> &'static [&'static str] {
        &[]
    }

    /// About every 100 ms between batches, on the worker: entries in and
    /// capacity of each table of [`Stage::tables`] into `out` (as long as
    /// that list), and whatever else the management plane reads from the
    /// instance published (counts kept in plain memory on the hot path,
    /// copied out here). No allocation, lock or system call.
    fn sample(&self, _out: &mut [Occupancy]) {}

    /// Called about once a millisecond with an empty batch, whether
    /// traffic flows or not: the stage may add packets of its own (held
    /// packets released, signalling such as GTP-U End Markers); they go
    /// through the stages after it and out like received ones. The same
    /// rules as `process`: no allocation, lock or system call.
    fn tick(&mut self, _batch: &mut Batch, _ctx: &mut StageCtx<'_>) {}

    /// Takes the way to install its established flows below the workers,
    /// given when the plan placed them in XDP. False: this stage installs
    /// nothing (its flows stay in the workers).
    fn take_offload(&mut self, _offload: crate::offload::Offloader) -> bool {
        false
    }
}

/// How full a table is: entries now, and the most it holds (0: no bound).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Occupancy {
    /// Entries now.
    pub entries: u64,
    /// Most entries it holds; 0 when unbounded.
    pub capacity: u64,
}

/// A validated stage configuration, able to build per-worker instances.
pub trait StageBuilder: Send + Sync {
    /// Names of the drop reasons the stage's `DropReason`s index.
    fn drop_reasons(&self) -> &'static [&'static str];

    /// False when the stage looks only at descriptors and the ingress port,
    /// never at packet bytes or parsed headers. A chain made only of such
    /// stages, on ports that own no address, runs without the input stage
    /// (like testpmd's io mode): nobody would read what it parses.
    fn reads_headers(&self) -> bool {
        true
    }

    /// Addresses this stage answers for (VTEP underlay, NAT pool, VIPs...):
    /// the slow path replies to ARP/ND and ping for them.
    fn owned_addresses(&self) -> Vec<IpAddr> {
        Vec::new()
    }

    /// Next hops the stage sends to (remote VTEPs, backends): the slow path
    /// resolves and keeps them in the neighbour table, like `[[neighbours]]`
    /// entries without a MAC.
    fn wanted_neighbours(&self) -> Vec<IpAddr> {
        Vec::new()
    }

    /// True when instances may hand packets to another worker running
    /// the same stage ([`crate::PacketMut::hand_off`]): the runtime then
    /// gives those workers handoff inboxes.
    fn hands_off(&self) -> bool {
        false
    }

    /// The chains the stage may send packets to
    /// ([`crate::PacketMut::goto`]), each with the ports packets sent
    /// there may have arrived on (`None`: any that reach the stage). The
    /// configuration checks the graph these edges make: no loops, no
    /// chain nobody reaches, no stage that never sees its ports' packets.
    fn branches(&self) -> Vec<(ChainId, Option<Vec<PortId>>)> {
        Vec::new()
    }

    /// The ports whose packets the stage acts on (a NAT's inside and
    /// outside, a VTEP's underlay and bridge ports), `None` for any: a
    /// stage that only packets from other ports can reach would pass
    /// everything untouched, and the configuration is refused.
    fn ingress_ports(&self) -> Option<Vec<PortId>> {
        None
    }

    /// Tables the workers' instances share (a UPF's sessions, held by the
    /// control side): name and occupancy, read by the management plane
    /// when it is asked. Per-worker tables are [`Stage::sample`]'s.
    fn shared_tables(&self) -> Vec<(&'static str, Occupancy)> {
        Vec::new()
    }

    /// The work the stage could hand below the AF_XDP workers (to XDP or
    /// the NIC): `nfv plan` places it ([`crate::plan`]). None by default:
    /// the stage runs in the workers, and so does every stage after it.
    fn offers(&self) -> Vec<crate::plan::Offer> {
        Vec::new()
    }

    /// A fresh instance for one worker (each worker owns its state).
    fn build(&self, ctx: &BuildCtx<'_>) -> Box<dyn Stage>;

    /// Work the stage needs done off the hot path while it runs (watch a
    /// rules file, rebuild and publish a table); the runtime polls it
    /// about once a second on a control thread. `None` for nothing.
    fn control_task(&self) -> Option<Box<dyn ControlTask>> {
        None
    }

    /// What of the stage can change while it runs (tables, rule sets,
    /// backends), and how a reload changes it; `None`: nothing, a reload
    /// that changes its parameters is refused.
    fn live(&self) -> Option<&dyn crate::live::Live> {
        None
    }

    /// The builder as `Any`, for a stage that names another to share its
    /// state ([`BuildEnv::stage`]) and must know its type.
    fn as_any(&self) -> &dyn std::any::Any {
        &()
    }
}

/// Periodic control-side work of a stage, run off the hot path.
pub trait ControlTask: Send {
    /// Does what is due; returns lines worth telling the operator (a
    /// reload, a refused update and why).
    fn poll(&mut self) -> Vec<String>;

    /// How often to poll: a file watch once a second, a protocol endpoint
    /// (PFCP) often enough to answer promptly.
    fn period(&self) -> std::time::Duration {
        std::time::Duration::from_secs(1)
    }
}

/// What a stage instance learns when it is built on a worker.
pub struct BuildCtx<'a> {
    /// Worker index.
    pub worker: usize,
    /// MAC address of every port, indexed by [`PortId`] (the interface's
    /// own for AF_XDP ports configured without one).
    pub port_macs: &'a [[u8; 6]],
    /// Whether a stage a packet may meet after this one reads headers: a
    /// stage that rewrites packets (a decapsulation) re-parses them only
    /// when someone will read the result.
    pub headers_read_later: bool,
    /// This worker's rank among the workers running this stage, and how
    /// many they are: stages that share out a resource between their
    /// instances (NAT ports) split it by these.
    pub chain_rank: usize,
    /// Workers running this stage (at least 1).
    pub chain_workers: usize,
}

/// Facts about the configuration a stage may need while validating.
pub struct BuildEnv<'a> {
    /// Port names, indexed by [`PortId`].
    pub ports: &'a [String],
    /// Chain names, indexed by [`ChainId`].
    pub chains: &'a [String],
    /// The configuration file's directory: relative file names in it
    /// (captures, rules and backends files) are relative to it.
    pub base: Option<&'a std::path::Path>,
    /// The stages defined above this one in the file, by name: a stage
    /// may name one to share its state (the NSH proxy's return, its
    /// forwarder's path table).
    pub defined: &'a [(String, Arc<dyn StageBuilder>)],
}

impl BuildEnv<'_> {
    /// Resolves a port name.
    pub fn port_id(&self, name: &str) -> Option<PortId> {
        self.ports.iter().position(|p| p == name).map(|i| i as PortId)
    }

    /// Resolves a chain name.
    pub fn chain_id(&self, name: &str) -> Option<ChainId> {
        self.chains.iter().position(|c| c == name).map(|i| i as ChainId)
    }

    /// The stage defined above under `name`, if one is.
    pub fn stage(&self, name: &str) -> Option<&Arc<dyn StageBuilder>> {
        self.defined.iter().find(|(n, _)| n == name).map(|(_, b)| b)
    }

    /// A file name as written in the configuration, relative to its
    /// directory (absolute names stay as they are).
    pub fn path(&self, name: &str) -> String {
        match self.base {
            Some(b) if std::path::Path::new(name).is_relative() => b.join(name).display().to_string(),
            _ => name.to_string(),
        }
    }
}

/// A kind of stage as named in TOML (`kind = "macswap"`).
pub trait StageFactory: Send + Sync {
    /// The `kind` string.
    fn kind(&self) -> &'static str;

    /// One line for `nfv stages` and error messages.
    fn summary(&self) -> &'static str;

    /// Checks `params` (everything in the stage's table except `kind` and
    /// `name`) and returns a builder, or every problem found, each located.
    fn configure(&self, params: &Params<'_>, env: &BuildEnv<'_>) -> Result<Arc<dyn StageBuilder>, Vec<Diagnostic>>;
}

/// The stage kinds a binary knows.
#[derive(Default)]
pub struct StageRegistry {
    factories: Vec<Box<dyn StageFactory>>,
}

impl StageRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a kind; a later registration of the same kind replaces it.
    pub fn register(&mut self, f: Box<dyn StageFactory>) {
        self.factories.retain(|g| g.kind() != f.kind());
        self.factories.push(f);
    }

    /// Looks a kind up.
    pub fn get(&self, kind: &str) -> Option<&dyn StageFactory> {
        self.factories.iter().find(|f| f.kind() == kind).map(|f| f.as_ref())
    }

    /// All kinds, sorted.
    pub fn kinds(&self) -> Vec<&'static str> {
        let mut k: Vec<_> = self.factories.iter().map(|f| f.kind()).collect();
        k.sort_unstable();
        k
    }

    /// (kind, summary) of all kinds, sorted.
    pub fn describe(&self) -> Vec<(&'static str, &'static str)> {
        let mut k: Vec<_> = self.factories.iter().map(|f| (f.kind(), f.summary())).collect();
        k.sort_unstable();
        k
    }
}
