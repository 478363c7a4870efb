//! Hardware profiles (`hw-profiles/*.toml`, schema in its README): what a
//! NIC family can do for nfv (limits, AF_XDP and XDP features, steering,
//! offloads and whether AF_XDP can reach them), each fact with its source.
//! A port names one (`profile = "e810"`, or a file of this schema) and the
//! configuration is checked against it before anything starts.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::config::{AfXdpConfig, SteerOn, XdpMode};

/// The profiles shipped in `hw-profiles/`, by name.
pub const SHIPPED: &[(&str, &str)] = &[
    ("e810", include_str!("../../hw-profiles/e810.toml")),
    ("x710", include_str!("../../hw-profiles/x710.toml")),
    ("cx6dx", include_str!("../../hw-profiles/cx6dx.toml")),
    ("cx7", include_str!("../../hw-profiles/cx7.toml")),
    ("bluefield3", include_str!("../../hw-profiles/bluefield3.toml")),
    ("agilio", include_str!("../../hw-profiles/agilio.toml")),
    ("virtio", include_str!("../../hw-profiles/virtio.toml")),
    ("veth", include_str!("../../hw-profiles/veth.toml")),
    ("xdp-generic", include_str!("../../hw-profiles/xdp-generic.toml")),
];

/// A NIC family's profile.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Profile {
    /// What it is.
    pub identity: Identity,
    /// Queues, rings, RSS, MTU.
    pub limits: Limits,
    /// XDP and AF_XDP features.
    pub af_xdp: AfXdp,
    /// Steering to queues.
    pub steering: Steering,
    /// Offloads, and whether AF_XDP reaches them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub offloads: Vec<Offload>,
}

/// `[identity]`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Identity {
    /// The profile's name.
    pub name: String,
    /// The products it covers.
    pub description: String,
    /// Kernel drivers.
    pub drivers: Vec<String>,
    /// `vendor:device`, hex.
    pub pci_ids: Vec<String>,
    /// Where these come from.
    pub sources: Vec<String>,
}

/// How symmetric the device's RSS hash can be made.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum SymmetricRss {
    /// Not at all.
    None,
    /// ethtool `input_xfrm` `symmetric-xor`.
    Xor,
    /// ethtool `input_xfrm` `symmetric-or-xor`.
    OrXor,
    /// Symmetric by default.
    Always,
}

/// `[limits]`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Limits {
    /// Combined channels at most, when the family has a fixed bound.
    pub max_queues: Option<u32>,
    /// Descriptors per device ring, at least (when known).
    pub ring_min: Option<u32>,
    /// Descriptors per device ring, at most (when known).
    pub ring_max: Option<u32>,
    /// Ring sizes are a multiple of this (when known).
    pub ring_multiple: Option<u32>,
    /// RSS key length (0: no RSS).
    pub rss_key_bytes: u32,
    /// RSS indirection table entries.
    pub rss_table_entries: u32,
    /// Symmetric hashing.
    pub symmetric_rss: SymmetricRss,
    /// Largest MTU, when the family has one bound.
    pub mtu_max: Option<u32>,
    /// Largest frame a native XDP program takes without multi-buffer.
    pub xdp_frame_max: Option<u32>,
    /// Where these come from.
    pub sources: Vec<String>,
}

/// XDP RX metadata a program can read (kernel kfuncs).
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum RxMetadata {
    /// `bpf_xdp_metadata_rx_timestamp`.
    Timestamp,
    /// `bpf_xdp_metadata_rx_hash`.
    Hash,
    /// `bpf_xdp_metadata_rx_vlan_tag`.
    VlanTag,
}

/// AF_XDP TX metadata the device honours.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum TxMetadata {
    /// A transmit timestamp.
    Timestamp,
    /// Checksum offload.
    Checksum,
    /// Launch time.
    LaunchTime,
}

/// `[af-xdp]`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct AfXdp {
    /// XDP in the driver.
    pub native_xdp: bool,
    /// AF_XDP zero-copy.
    pub zero_copy: bool,
    /// XDP multi-buffer.
    pub multi_buffer: bool,
    /// Segments a zero-copy frame may span.
    pub zc_max_segs: u32,
    /// RX metadata kfuncs.
    pub rx_metadata: Vec<RxMetadata>,
    /// TX metadata.
    pub tx_metadata: Vec<TxMetadata>,
    /// Where these come from.
    pub sources: Vec<String>,
}

/// What steering or hashing on the GTP-U TEID needs.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum TeidSteering {
    /// Not possible.
    No,
    /// Built in.
    Native,
    /// A DDP package (Intel) must be loaded.
    DdpPackage,
    /// The flex parser (NVIDIA).
    FlexParser,
}

/// How traffic is steered on the VXLAN VNI.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum VniSteering {
    /// Not possible.
    No,
    /// An ntuple rule.
    Ntuple,
    /// A tc flower rule on the tunnel key.
    TcFlower,
}

/// `[steering]`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Steering {
    /// ethtool ntuple rules to a queue.
    pub ntuple: bool,
    /// Their flow types.
    pub ntuple_flow_types: Vec<String>,
    /// On the GTP-U TEID (absent: not known; the kernel does not say).
    pub gtpu_teid: Option<TeidSteering>,
    /// On the VXLAN VNI (absent: not known).
    pub vxlan_vni: Option<VniSteering>,
    /// Where these come from.
    pub sources: Vec<String>,
}

/// What an offload is.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum OffloadKind {
    /// Per packet, no state.
    Stateless,
    /// Keeps flow state (conntrack).
    Stateful,
    /// Puts packets on queues.
    Steering,
    /// Runs a program (XDP on the NIC, XDP in the driver).
    Program,
}

/// Who can use an offload.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Reach {
    /// An AF_XDP data path.
    AfXdp,
    /// Only the kernel's stack.
    KernelOnly,
}

/// `[[offloads]]`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Offload {
    /// Its name.
    pub name: String,
    /// What it is.
    pub kind: OffloadKind,
    /// Who can use it.
    pub reach: Reach,
    /// Where this comes from.
    pub sources: Vec<String>,
}

impl Profile {
    /// Reads a profile from `text` (named `file` in messages): the schema,
    /// and a source for every section.
    pub fn parse(file: &str, text: &str) -> Result<Self, String> {
        let p: Profile = toml::from_str(text).map_err(|e| format!("{file}: {}", e.to_string().trim()))?;
        let mut unsourced: Vec<&str> = [
            ("identity", &p.identity.sources),
            ("limits", &p.limits.sources),
            ("af-xdp", &p.af_xdp.sources),
            ("steering", &p.steering.sources),
        ]
        .into_iter()
        .filter(|(_, s)| s.is_empty())
        .map(|(n, _)| n)
        .collect();
        unsourced.extend(p.offloads.iter().filter(|o| o.sources.is_empty()).map(|o| o.name.as_str()));
        if !unsourced.is_empty() {
            return Err(format!(
                "{file}: no `sources` for {}: every fact says where it comes from",
                unsourced.join(", ")
            ));
        }
        if let (Some(lo), Some(hi)) = (p.limits.ring_min, p.limits.ring_max)
            && lo > hi
        {
            return Err(format!("{file}: ring-min {lo} above ring-max {hi}"));
        }
        if p.limits.ring_multiple == Some(0) {
            return Err(format!("{file}: ring-multiple 0"));
        }
        Ok(p)
    }

    /// The profile as a file of the schema (what `nfv hw probe` writes).
    pub fn to_toml(&self) -> String {
        toml::to_string(self).expect("a profile serialises")
    }

    /// The shipped profile `name`, or the profile file `name` (relative
    /// to `base`, the configuration's directory).
    pub fn resolve(name: &str, base: Option<&Path>) -> Result<Self, String> {
        if let Some((_, text)) = SHIPPED.iter().find(|(n, _)| *n == name) {
            return Self::parse(&format!("hw-profiles/{name}.toml"), text);
        }
        if !name.ends_with(".toml") {
            let known: Vec<&str> = SHIPPED.iter().map(|(n, _)| *n).collect();
            return Err(format!(
                "no hardware profile `{name}`; shipped: {} (or a path to a .toml file)",
                known.join(", ")
            ));
        }
        let path = match base {
            Some(b) if Path::new(name).is_relative() => b.join(name),
            _ => Path::new(name).to_path_buf(),
        };
        let text = std::fs::read_to_string(&path).map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
        Self::parse(&path.display().to_string(), &text)
    }

    /// What an AF_XDP port of `queues` queues configured as `a` asks that
    /// this device cannot do: (the key at fault, what is wrong, what to
    /// write instead), each.
    pub fn check_af_xdp(&self, a: &AfXdpConfig, queues: u16) -> Vec<(&'static str, String, String)> {
        let (name, l, x) = (&self.identity.name, &self.limits, &self.af_xdp);
        let mut refused = Vec::new();
        match a.mode {
            XdpMode::ZeroCopy if !x.zero_copy => refused.push((
                "mode",
                format!("profile `{name}`: no AF_XDP zero-copy on this device"),
                if x.native_xdp { "mode = \"driver\" (copy mode in the driver)" } else { "mode = \"skb\"" }.to_string(),
            )),
            XdpMode::Driver | XdpMode::ZeroCopy if !x.native_xdp => refused.push((
                "mode",
                format!("profile `{name}`: no XDP in the driver"),
                "mode = \"skb\" (generic XDP)".to_string(),
            )),
            _ => {}
        }
        if let Some(max) = l.max_queues.filter(|&m| u32::from(queues) > m) {
            refused.push((
                "queues",
                format!("profile `{name}`: {queues} queues, the device has at most {max}"),
                format!("queues = {max} or fewer"),
            ));
        }
        // The socket's rings (rx-ring, tx-ring) are the socket's, not the
        // device's descriptor rings (`ring-min`..`ring-max`, ethtool -G).
        let st = &self.steering;
        let unsteered = "remove `steer`: a stage whose state is per flow hands packets to the worker holding it";
        match (a.steer, st.gtpu_teid, st.vxlan_vni) {
            (Some(SteerOn::GtpuTeid), None | Some(TeidSteering::No), _) => refused.push((
                "steer",
                format!("profile `{name}`: the device cannot steer on the GTP-U TEID"),
                unsteered.to_string(),
            )),
            (Some(SteerOn::GtpuTeid), Some(TeidSteering::DdpPackage), _)
                if !a.ddp_package.as_deref().is_some_and(|p| p.eq_ignore_ascii_case("comms")) =>
            {
                refused.push((
                    "steer",
                    format!("profile `{name}`: steering on the GTP-U TEID needs the Comms DDP package"),
                    "load it (ice: ice_comms-*.pkg as /lib/firmware/updates/intel/ice/ddp/ice.pkg, then reload \
                     the driver; `devlink dev info` shows fw.app.name ICE COMMS Package) and say so with \
                     ddp-package = \"comms\""
                        .to_string(),
                ))
            }
            (Some(SteerOn::VxlanVni), _, None | Some(VniSteering::No)) => refused.push((
                "steer",
                format!("profile `{name}`: the device cannot steer on the VXLAN VNI"),
                unsteered.to_string(),
            )),
            _ => {}
        }
        refused
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shipped_profile_reads_and_names_itself() {
        for (name, text) in SHIPPED {
            let p = Profile::parse(name, text).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(&p.identity.name, name, "the file's name is its profile's");
            assert!(p.identity.pci_ids.iter().all(|id| id.len() == 9 && id.as_bytes()[4] == b':'), "{name}");
        }
        let line = SHIPPED[0]
            .1
            .lines()
            .find(|l| l.starts_with("sources = [\"linux drivers/net/ethernet/intel/ice/ice_devids"))
            .unwrap();
        let unsourced = SHIPPED[0].1.replacen(line, "sources = []", 1);
        assert_eq!(
            Profile::parse("x.toml", &unsourced).unwrap_err(),
            "x.toml: no `sources` for identity: every fact says where it comes from"
        );
    }

    #[test]
    fn a_port_asking_what_its_device_cannot_do_is_refused_by_key() {
        let veth = Profile::resolve("veth", None).unwrap();
        let a: AfXdpConfig = toml::from_str("interface = \"d0\"\nmode = \"zero-copy\"").unwrap();
        let refused = veth.check_af_xdp(&a, 17);
        assert_eq!(refused.len(), 1, "{refused:?}");
        assert_eq!(refused[0].1, "profile `veth`: no AF_XDP zero-copy on this device");
        assert_eq!(refused[0].2, "mode = \"driver\" (copy mode in the driver)");
        let e810 = Profile::resolve("e810", None).unwrap();
        assert!(e810.check_af_xdp(&a, 17).is_empty());
        let x710 = Profile::resolve("x710", None).unwrap();
        assert_eq!(x710.check_af_xdp(&a, 65)[0].1, "profile `x710`: 65 queues, the device has at most 64");
        let generic = Profile::resolve("xdp-generic", None).unwrap();
        let driver: AfXdpConfig = toml::from_str("interface = \"d0\"\nmode = \"driver\"").unwrap();
        assert_eq!(generic.check_af_xdp(&driver, 1)[0].2, "mode = \"skb\" (generic XDP)");
        assert!(
            Profile::resolve("e820", None).unwrap_err().starts_with("no hardware profile `e820`; shipped: e810, x710")
        );
    }
}
