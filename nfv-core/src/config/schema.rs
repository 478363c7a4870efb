//! The TOML schema (raw, as deserialised) and the validated specification.

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;

use serde::Deserialize;

use crate::batch::DEFAULT_BATCH;
use crate::graph::End;
use crate::packet::PortId;
use crate::port::generator::GeneratorConfig;
use crate::slowpath::{LocalAddrs, OwnedAddr};
use crate::stage::StageBuilder;

/// `[run]`: how the run behaves.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct RunSection {
    /// Packets per burst (1..=256).
    pub batch_size: usize,
    /// Seconds to run; 0 runs until every source is exhausted or a signal.
    pub duration: f64,
    /// Seconds between live stats lines; 0 disables them.
    pub stats_interval: f64,
    /// Frames in each worker's pool (each 2048 bytes).
    pub frames_per_worker: u32,
    /// Whether what the plan places in XDP runs there (`nfv plan`).
    pub offload: OffloadMode,
}

/// `[run] offload`: nfv's XDP program on the AF_XDP ports doing what the
/// plan placed below the workers, or libxdp's program sending every
/// packet up.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OffloadMode {
    /// As planned (the default).
    #[default]
    Xdp,
    /// Everything in the workers.
    Off,
}

impl Default for RunSection {
    fn default() -> Self {
        Self {
            batch_size: DEFAULT_BATCH,
            duration: 0.0,
            stats_interval: 1.0,
            frames_per_worker: 4096,
            offload: OffloadMode::Xdp,
        }
    }
}

/// `[management]` as written: where the management plane listens.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub(crate) struct ManagementSection {
    pub listen: String,
    pub socket: String,
}

/// The HTTP address the management plane serves on unless told otherwise
/// (9464: the Prometheus exporter port of OpenTelemetry's default).
pub const DEFAULT_LISTEN: &str = "127.0.0.1:9464";
/// The `nfv ctl` socket unless told otherwise.
pub const DEFAULT_SOCKET: &str = "/run/nfv/nfv.sock";

impl Default for ManagementSection {
    fn default() -> Self {
        Self { listen: DEFAULT_LISTEN.into(), socket: DEFAULT_SOCKET.into() }
    }
}

/// Where the management plane serves: metrics and probes over HTTP, `nfv
/// ctl` over a UNIX socket. Each is `None` when turned off (`"off"`);
/// `explicit` says the file named it, so failing to take it is an error
/// rather than a note (the defaults may be taken by another instance).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ManagementSpec {
    /// HTTP address (`/metrics`, `/livez`, `/readyz`, `/startupz`).
    pub listen: Option<std::net::SocketAddr>,
    /// True when the file set `listen`.
    pub listen_explicit: bool,
    /// The `nfv ctl` socket (created mode 0600).
    pub socket: Option<std::path::PathBuf>,
    /// True when the file set `socket`.
    pub socket_explicit: bool,
}

impl Default for ManagementSpec {
    fn default() -> Self {
        Self {
            listen: DEFAULT_LISTEN.parse().ok(),
            listen_explicit: false,
            socket: Some(DEFAULT_SOCKET.into()),
            socket_explicit: false,
        }
    }
}

/// Fields every `[[ports]]` entry has.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct PortCommon {
    pub name: String,
    #[allow(dead_code)] // read through the split table, kept for the field list
    pub kind: String,
    #[serde(default = "one")]
    pub queues: u16,
    #[serde(default)]
    pub mac: Option<String>,
    #[serde(default)]
    pub addresses: Vec<String>,
    /// A hardware profile (`hw-profiles/NAME.toml`, or a file).
    #[serde(default)]
    pub profile: Option<String>,
}

fn one() -> u16 {
    1
}

/// Keys of [`PortCommon`], split off before kind-specific parameters.
pub(crate) const PORT_COMMON_KEYS: &[&str] = &["name", "kind", "queues", "mac", "addresses", "profile"];

/// `kind = "pcap"` parameters.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct PcapConfig {
    /// Capture to replay (pcap or pcapng).
    pub input: Option<PathBuf>,
    /// Capture to write what the port transmits to.
    pub output: Option<PathBuf>,
    /// Set by `nfv replay` instead of `output`: the one file every port
    /// records into.
    #[serde(skip)]
    pub recorder: Option<crate::port::pcap::Recorder>,
}

/// `kind = "sink"` takes no parameters.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SinkConfig {}

/// How an AF_XDP socket binds (`mode = ...`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum XdpMode {
    /// Zero-copy, else driver-mode copy, else generic (skb) copy.
    #[default]
    Auto,
    /// Zero-copy only (the NIC DMAs into the UMEM).
    ZeroCopy,
    /// XDP in the driver, frames copied into the UMEM.
    Driver,
    /// Generic XDP on the skb path: works on any device, slowest.
    Skb,
}

/// `kind = "af-xdp"` parameters.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct AfXdpConfig {
    /// The interface as written: a kernel interface name, or what the
    /// pod was handed (`{ network = "sriov-n3" }`, `{ resource =
    /// "intel.com/sriov_n3" }`, found at load by [`crate::pod`]).
    #[serde(rename = "interface")]
    pub written: InterfaceRef,
    /// The kernel interface name (written, or found in the pod).
    #[serde(skip)]
    pub interface: String,
    /// How a pod's device was matched, for `nfv check --pod` and the log.
    #[serde(skip)]
    pub found: Option<String>,
    /// Bind mode.
    #[serde(default)]
    pub mode: XdpMode,
    /// Busy-poll budget in microseconds (`SO_BUSY_POLL`); 0 leaves the
    /// device's NAPI to softirq.
    #[serde(default)]
    pub busy_poll_us: u32,
    /// rx ring descriptors (power of two).
    #[serde(default = "ring_default")]
    pub rx_ring: u32,
    /// tx ring descriptors (power of two).
    #[serde(default = "ring_default")]
    pub tx_ring: u32,
    /// Fill ring entries (power of two): frames lent to the kernel to
    /// receive into.
    #[serde(default = "ring_default")]
    pub fill_ring: u32,
    /// Completion ring entries (power of two).
    #[serde(default = "ring_default")]
    pub comp_ring: u32,
    /// `shared`: one UMEM registration for all of a worker's AF_XDP ports
    /// (`XDP_SHARED_UMEM`); `separate`: this port registers the worker's
    /// frame memory on its own. Either way frames move between ports
    /// without a copy.
    #[serde(default)]
    pub umem: UmemSharing,
    /// The tunnel field the device is to steer on so that each inner
    /// flow reaches one queue (`steer = "gtpu-teid"` for a UPF's N3,
    /// `"vxlan-vni"` for a VTEP's underlay): checked against the port's
    /// profile, shown in the plan.
    #[serde(default)]
    pub steer: Option<SteerOn>,
    /// The DDP package loaded on an Intel device, as the operator states
    /// it (`ddp-package = "comms"`): E810 and X710 parse GTP-U only with
    /// the Comms package.
    #[serde(default)]
    pub ddp_package: Option<String>,
    /// The AF_XDP device plugin's socket (in a pod, its default is
    /// `/tmp/afxdp_dp/IFACE/afxdp.sock`): its CNI attached the XDP program
    /// and its server hands the program's XSK map over this socket, so
    /// nfv loads and attaches nothing on this port (and needs no
    /// CAP_BPF, CAP_PERFMON or CAP_NET_ADMIN for it); every packet goes up
    /// to the workers.
    #[serde(default)]
    pub xsk_map_socket: Option<std::path::PathBuf>,
}

/// A port's `interface`: a name, or a device of the pod.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InterfaceRef {
    /// A kernel interface name.
    Name(String),
    /// What the pod was handed.
    Pod(crate::pod::PodDevice),
}

impl Default for InterfaceRef {
    fn default() -> Self {
        Self::Name(String::new())
    }
}

impl<'de> Deserialize<'de> for InterfaceRef {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = InterfaceRef;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an interface name, or { network = \"NAME\" } or { resource = \"VENDOR/NAME\" }")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<InterfaceRef, E> {
                Ok(InterfaceRef::Name(v.to_string()))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, m: A) -> Result<InterfaceRef, A::Error> {
                let d = crate::pod::PodDevice::deserialize(serde::de::value::MapAccessDeserializer::new(m))?;
                d.validate().map_err(serde::de::Error::custom)?;
                Ok(InterfaceRef::Pod(d))
            }
        }
        d.deserialize_any(V)
    }
}

/// What a port's device steers on (`steer = ...`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SteerOn {
    /// The GTP-U TEID (3GPP TS 29.281 section 5.1).
    GtpuTeid,
    /// The VXLAN VNI (RFC 7348 section 5).
    VxlanVni,
}

fn ring_default() -> u32 {
    2048
}

impl AfXdpConfig {
    /// Checks ring sizes; returns (key, message) on error.
    pub(crate) fn validate(&self) -> Result<(), (&'static str, String)> {
        for (key, v) in [
            ("rx-ring", self.rx_ring),
            ("tx-ring", self.tx_ring),
            ("fill-ring", self.fill_ring),
            ("comp-ring", self.comp_ring),
        ] {
            if !v.is_power_of_two() || !(64..=16384).contains(&v) {
                return Err((key, format!("{key} must be a power of two from 64 to 16384, not {v}")));
            }
        }
        if self.written == InterfaceRef::Name(String::new()) {
            return Err(("interface", "interface name is empty".into()));
        }
        Ok(())
    }
}

/// How a port's UMEM is registered; see [`AfXdpConfig::umem`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum UmemSharing {
    /// Share the worker's registration.
    #[default]
    Shared,
    /// Register the worker's memory again for this port.
    Separate,
}

/// A port backend with its parameters.
#[derive(Clone, Debug)]
pub enum PortKind {
    /// In-memory traffic generator.
    Generator(GeneratorConfig),
    /// Counts and frees.
    Sink,
    /// Capture file in/out.
    Pcap(PcapConfig),
    /// AF_XDP socket per queue on a kernel interface.
    AfXdp(AfXdpConfig),
}

/// Port kinds this build knows.
pub(crate) const PORT_KINDS: &[&str] = &["af-xdp", "generator", "pcap", "sink"];

/// A validated port.
#[derive(Clone, Debug)]
pub struct PortSpec {
    /// Name.
    pub name: String,
    /// Backend.
    pub kind: PortKind,
    /// Queue count.
    pub queues: u16,
    /// MAC address (configured; else the interface's for AF_XDP, a
    /// locally administered one from the index for the others).
    pub mac: [u8; 6],
    /// True when `mac` was written in the configuration.
    pub mac_configured: bool,
    /// Owned addresses with prefix lengths.
    pub addresses: Vec<OwnedAddr>,
    /// The device's hardware profile, when the port names one (checked
    /// against what the port asks of it).
    pub profile: Option<Arc<crate::hwprofile::Profile>>,
}

/// `[[workers]]` as written.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct WorkerDef {
    #[serde(default)]
    pub core: Option<usize>,
    pub rx: Vec<toml::Spanned<String>>,
    pub chain: toml::Spanned<String>,
    /// Where `then` used to be; refused with a pointer to it.
    #[serde(default)]
    pub tx: Option<toml::Spanned<String>>,
}

/// A validated worker.
#[derive(Clone, Debug)]
pub struct WorkerSpec {
    /// Core to pin to, if any.
    pub core: Option<usize>,
    /// (port, queue) pairs to poll.
    pub rx: Vec<(PortId, u16)>,
    /// Its entry chain, an index into [`Config::chains`]: what it
    /// receives starts there.
    pub chain: usize,
}

/// A validated stage, as a chain lists it.
#[derive(Clone)]
pub struct StageSpec {
    /// Display name (`name`, or the kind).
    pub name: String,
    /// Kind.
    pub kind: String,
    /// Builds per-worker instances.
    pub builder: Arc<dyn StageBuilder>,
    /// Its parameters as written (without `kind` and `name`), compared
    /// by a reload to tell what changed.
    pub params: toml::Value,
    /// Which stage instance this is: a stage listed in several chains
    /// (`use = "NAME"`) is one instance per worker, one state.
    pub node: usize,
    /// True where it is defined (its `kind` written), false where a chain
    /// uses it by name: the defining chain is where its tick's packets go
    /// on ([`crate::Stage::tick`]).
    pub defines: bool,
}

impl std::fmt::Debug for StageSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StageSpec")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("node", &self.node)
            .finish()
    }
}

/// A validated chain.
#[derive(Clone, Debug)]
pub struct ChainSpec {
    /// Name.
    pub name: String,
    /// Stages in order (the input stage is added by the runtime).
    pub stages: Vec<StageSpec>,
    /// Where the packets still in it after its last stage go (`then`).
    pub then: End,
}

/// `[[neighbours]]` as written.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct NeighbourDef {
    pub ip: IpAddr,
    #[serde(default)]
    pub mac: Option<String>,
    pub port: toml::Spanned<String>,
}

/// A validated neighbour: static with a MAC, resolved by ARP/ND without.
#[derive(Clone, Debug)]
pub struct NeighbourSpec {
    /// Next-hop address.
    pub ip: IpAddr,
    /// Fixed MAC, or `None` to resolve.
    pub mac: Option<[u8; 6]>,
    /// Port it is reached through.
    pub port: PortId,
}

/// A configuration that passed every check.
#[derive(Clone, Debug)]
pub struct Config {
    /// The file it was read from and its text, as loaded (`nfv ctl show
    /// config`).
    pub source: (String, Arc<str>),
    /// `[run]`.
    pub run: RunSection,
    /// `[management]`.
    pub management: ManagementSpec,
    /// Ports, indexed by [`PortId`].
    pub ports: Vec<PortSpec>,
    /// Chains.
    pub chains: Vec<ChainSpec>,
    /// Workers.
    pub workers: Vec<WorkerSpec>,
    /// Neighbours.
    pub neighbours: Vec<NeighbourSpec>,
}

impl Config {
    /// One line on what it describes (`nfv check`, `nfv ctl show config`).
    pub fn summary(&self) -> String {
        format!(
            "ok: {} port(s), {} chain(s) with {} stage(s), {} worker(s)",
            self.ports.len(),
            self.chains.len(),
            self.nodes().len(),
            self.workers.len()
        )
    }

    /// Port names in id order.
    pub fn port_names(&self) -> Vec<String> {
        self.ports.iter().map(|p| p.name.clone()).collect()
    }

    /// Every stage instance once (where it is defined), in node order.
    pub fn nodes(&self) -> Vec<(usize, &StageSpec)> {
        let mut v: Vec<(usize, &StageSpec)> = self
            .chains
            .iter()
            .enumerate()
            .flat_map(|(c, ch)| ch.stages.iter().filter(|s| s.defines).map(move |s| (c, s)))
            .collect();
        v.sort_by_key(|(_, s)| s.node);
        v
    }

    /// The chains chain `c` sends packets to: its stages' branches and
    /// the chain it ends in.
    pub fn successors(&self, c: usize) -> Vec<usize> {
        let ch = &self.chains[c];
        let mut v: Vec<usize> = ch.stages.iter().flat_map(|s| s.builder.branches()).map(|(t, _)| t as usize).collect();
        if let End::Chain(t) = ch.then {
            v.push(t as usize);
        }
        v.sort_unstable();
        v.dedup();
        v
    }

    /// The chains a packet entering at `entry` may run through, `entry`
    /// first (the graph is checked free of loops).
    pub fn reachable(&self, entry: usize) -> Vec<usize> {
        let mut seen = vec![false; self.chains.len()];
        let mut order = vec![entry];
        seen[entry] = true;
        let mut i = 0;
        while i < order.len() {
            for t in self.successors(order[i]) {
                if !std::mem::replace(&mut seen[t], true) {
                    order.push(t);
                }
            }
            i += 1;
        }
        order
    }

    /// The stages a packet entering at `entry` may meet.
    pub fn reachable_stages(&self, entry: usize) -> Vec<&StageSpec> {
        let mut v: Vec<&StageSpec> = self.reachable(entry).into_iter().flat_map(|c| &self.chains[c].stages).collect();
        v.sort_by_key(|s| s.node);
        v.dedup_by_key(|s| s.node);
        v
    }

    /// Every port's MAC and addresses: its configured ones, and those the
    /// stages its packets may meet own (host routes): what the slow path
    /// answers for and where next hops can be asked for.
    pub fn local_addrs(&self) -> LocalAddrs {
        let mut ports: Vec<([u8; 6], Vec<OwnedAddr>)> =
            self.ports.iter().map(|p| (p.mac, p.addresses.clone())).collect();
        for w in &self.workers {
            let owned: Vec<IpAddr> =
                self.reachable_stages(w.chain).iter().flat_map(|s| s.builder.owned_addresses()).collect();
            for (pid, _) in &w.rx {
                let list = &mut ports[*pid as usize].1;
                for ip in &owned {
                    if !list.iter().any(|o| o.addr == *ip) {
                        list.push(OwnedAddr { addr: *ip, prefix: if ip.is_ipv4() { 32 } else { 128 } });
                    }
                }
            }
        }
        LocalAddrs { ports }
    }
}
