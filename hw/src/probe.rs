//! Probing a network interface: what the running kernel reports of it,
//! as a hardware profile. Sources: the `netdev` generic netlink family
//! (`DEV_GET`: xdp-features, xdp-zc-max-segs, xdp-rx-metadata-features,
//! xsk-features; Documentation/netlink/specs/netdev.yaml), ethtool over
//! netlink (`CHANNELS_GET`, `RINGS_GET`, `RSS_GET`, `FEATURES_GET`;
//! Documentation/networking/ethtool-netlink.rst), and sysfs for the PCI
//! id. What the kernel does not say (GTP-U or VNI steering) is left out.

use nfv_core::hwprofile::{AfXdp, Identity, Limits, Profile, RxMetadata, Steering, SymmetricRss, TxMetadata};

use crate::genl::{Attr, Attrs, Genl, Refused};

/// `netdev` family: `NETDEV_CMD_DEV_GET` and its attributes.
mod netdev {
    pub const DEV_GET: u8 = 1;
    pub const IFINDEX: u16 = 1;
    pub const XDP_FEATURES: u16 = 3;
    pub const XDP_ZC_MAX_SEGS: u16 = 4;
    pub const XDP_RX_METADATA: u16 = 5;
    pub const XSK_FEATURES: u16 = 6;
    // `xdp-act` flags.
    pub const BASIC: u64 = 1;
    pub const XSK_ZEROCOPY: u64 = 8;
    pub const RX_SG: u64 = 32;
}

/// ethtool family messages and attributes (ETHTOOL_MSG_*, ETHTOOL_A_*).
mod ethtool {
    pub const HEADER: u16 = 1;
    pub const HEADER_DEV_INDEX: u16 = 1;
    pub const FEATURES_GET: u8 = 11;
    pub const FEATURES_HW: u16 = 2;
    pub const BITSET_BITS: u16 = 3;
    pub const BITS_BIT: u16 = 1;
    pub const BIT_NAME: u16 = 2;
    pub const BIT_VALUE: u16 = 3;
    pub const RINGS_GET: u8 = 15;
    pub const RINGS_RX_MAX: u16 = 2;
    pub const RINGS_TX_MAX: u16 = 5;
    pub const CHANNELS_GET: u8 = 17;
    pub const CHANNELS_RX_MAX: u16 = 2;
    pub const CHANNELS_TX_MAX: u16 = 3;
    pub const CHANNELS_COMBINED_MAX: u16 = 5;
    pub const CHANNELS_COMBINED_COUNT: u16 = 9;
    pub const RSS_GET: u8 = 38;
    pub const RSS_INDIR: u16 = 4;
    pub const RSS_HKEY: u16 = 5;
    pub const RSS_INPUT_XFRM: u16 = 6;
    // RXH_XFRM_* (include/uapi/linux/ethtool.h).
    pub const SYM_XOR: u32 = 1;
    pub const SYM_OR_XOR: u32 = 2;
}

/// What the kernel said of one interface.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Probe {
    /// Interface name.
    pub ifname: String,
    /// Its index.
    pub ifindex: u32,
    /// Its driver (`ethtool -i`).
    pub driver: Option<String>,
    /// `vendor:device`, from sysfs.
    pub pci_id: Option<String>,
    /// `xdp-features` (`None`: the kernel has no netdev family).
    pub xdp_features: Option<u64>,
    /// `xdp-zc-max-segs`.
    pub zc_max_segs: u32,
    /// `xdp-rx-metadata-features`.
    pub rx_metadata: u64,
    /// `xsk-features`.
    pub xsk_features: u64,
    /// Channels: combined max and count, rx max, tx max (`None`: not
    /// reported by the driver).
    pub channels: Option<(u32, u32, u32, u32)>,
    /// Ring maxima: rx, tx.
    pub rings: Option<(u32, u32)>,
    /// RSS: key octets, indirection entries, input transform bits.
    pub rss: Option<(u32, u32, u32)>,
    /// Hardware features (ethtool `-k` names) the device has.
    pub features: Vec<String>,
}

fn optional(r: Result<Vec<Attrs>, Refused>) -> Result<Option<Attrs>, String> {
    match r {
        Ok(mut a) if !a.is_empty() => Ok(Some(a.remove(0))),
        Ok(_) => Ok(None),
        // The driver does not implement it, or the device has none.
        Err(Refused::Errno(libc::EOPNOTSUPP | libc::ENODEV | libc::EINVAL)) => Ok(None),
        Err(e) => Err(e.to_string()),
    }
}

/// `struct ethtool_drvinfo` (include/uapi/linux/ethtool.h).
#[repr(C)]
struct DrvInfo {
    cmd: u32,
    driver: [u8; 32],
    version: [u8; 32],
    fw_version: [u8; 32],
    bus_info: [u8; 32],
    erom_version: [u8; 32],
    reserved2: [u8; 12],
    counts: [u32; 5],
}

/// The driver's name, as `ethtool -i` gets it: the SIOCETHTOOL
/// ETHTOOL_GDRVINFO ioctl (there is no netlink request for it).
pub(crate) fn driver(ifname: &str) -> Option<String> {
    const ETHTOOL_GDRVINFO: u32 = 0x3;
    const SIOCETHTOOL: libc::c_ulong = 0x8946;
    let mut info = DrvInfo {
        cmd: ETHTOOL_GDRVINFO,
        driver: [0; 32],
        version: [0; 32],
        fw_version: [0; 32],
        bus_info: [0; 32],
        erom_version: [0; 32],
        reserved2: [0; 12],
        counts: [0; 5],
    };
    // SAFETY: a zeroed ifreq with the name copied in (shorter than
    // IFNAMSIZ, checked) and ifr_data pointing at `info`, which outlives
    // the call; the socket is closed after it.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_DGRAM, 0);
        if fd < 0 {
            return None;
        }
        let mut req: libc::ifreq = std::mem::zeroed();
        let name = ifname.as_bytes();
        if name.len() >= req.ifr_name.len() {
            libc::close(fd);
            return None;
        }
        for (d, s) in req.ifr_name.iter_mut().zip(name) {
            *d = *s as libc::c_char;
        }
        req.ifr_ifru.ifru_data = (&mut info as *mut DrvInfo).cast();
        let rc = libc::ioctl(fd, SIOCETHTOOL, &mut req);
        libc::close(fd);
        if rc != 0 {
            return None;
        }
    }
    let end = info.driver.iter().position(|&b| b == 0).unwrap_or(info.driver.len());
    Some(String::from_utf8_lossy(&info.driver[..end]).into_owned()).filter(|d| !d.is_empty())
}

/// The driver and PCI id of `ifname` (the ioctl `ethtool -i` uses, and
/// sysfs for the PCI id).
fn identity(ifname: &str) -> (Option<String>, Option<String>) {
    let dev = std::path::Path::new("/sys/class/net").join(ifname).join("device");
    let hex = |f: &str| {
        let s = std::fs::read_to_string(dev.join(f)).ok()?;
        Some(s.trim().trim_start_matches("0x").to_string())
    };
    let pci = match (hex("vendor"), hex("device")) {
        (Some(v), Some(d)) => Some(format!("{v}:{d}")),
        _ => None,
    };
    (driver(ifname), pci)
}

/// Asks the kernel about `ifname`.
pub fn probe(ifname: &str) -> Result<Probe, String> {
    let c = std::ffi::CString::new(ifname).map_err(|_| format!("`{ifname}` is not an interface name"))?;
    // SAFETY: a NUL-terminated name; the call only reads it.
    let ifindex = unsafe { libc::if_nametoindex(c.as_ptr()) };
    if ifindex == 0 {
        return Err(format!("no interface `{ifname}` here: {}", std::io::Error::last_os_error()));
    }
    let (driver, pci_id) = identity(ifname);
    let mut p = Probe { ifname: ifname.into(), ifindex, driver, pci_id, ..Probe::default() };
    let mut nl = Genl::new()?;
    if let Some(id) = nl.family("netdev")? {
        let dev = optional(nl.request(id, netdev::DEV_GET, 1, vec![Attr::u32(netdev::IFINDEX, ifindex)], false))?;
        if let Some(a) = dev {
            p.xdp_features = a.u64(netdev::XDP_FEATURES);
            p.zc_max_segs = a.u32(netdev::XDP_ZC_MAX_SEGS).unwrap_or(1);
            p.rx_metadata = a.u64(netdev::XDP_RX_METADATA).unwrap_or(0);
            p.xsk_features = a.u64(netdev::XSK_FEATURES).unwrap_or(0);
        }
    }
    let Some(eth) = nl.family("ethtool")? else { return Ok(p) };
    let header = || vec![Attr::nested(ethtool::HEADER, &[Attr::u32(ethtool::HEADER_DEV_INDEX, ifindex)])];
    if let Some(a) = optional(nl.request(eth, ethtool::CHANNELS_GET, 1, header(), false))? {
        let g = |k| a.u32(k).unwrap_or(0);
        p.channels = Some((
            g(ethtool::CHANNELS_COMBINED_MAX),
            g(ethtool::CHANNELS_COMBINED_COUNT),
            g(ethtool::CHANNELS_RX_MAX),
            g(ethtool::CHANNELS_TX_MAX),
        ));
    }
    if let Some(a) = optional(nl.request(eth, ethtool::RINGS_GET, 1, header(), false))? {
        p.rings = Some((a.u32(ethtool::RINGS_RX_MAX).unwrap_or(0), a.u32(ethtool::RINGS_TX_MAX).unwrap_or(0)));
    }
    if let Some(a) = optional(nl.request(eth, ethtool::RSS_GET, 1, header(), false))? {
        let key = a.get(ethtool::RSS_HKEY).map_or(0, |k| k.len() as u32);
        let table = a.get(ethtool::RSS_INDIR).map_or(0, |t| (t.len() / 4) as u32);
        p.rss = Some((key, table, a.u32(ethtool::RSS_INPUT_XFRM).unwrap_or(0)));
    }
    if let Some(a) = optional(nl.request(eth, ethtool::FEATURES_GET, 1, header(), false))? {
        // The hardware bitset, verbose: each bit a nest with its name.
        if let Some(bits) = a.nested(ethtool::FEATURES_HW).and_then(|hw| hw.nested(ethtool::BITSET_BITS)) {
            // Every bit is listed; a set one carries the VALUE flag.
            for bit in bits.each_nested(ethtool::BITS_BIT).iter().filter(|b| b.get(ethtool::BIT_VALUE).is_some()) {
                if let Some(name) = bit.get(ethtool::BIT_NAME) {
                    p.features.push(String::from_utf8_lossy(name).trim_end_matches('\0').to_string());
                }
            }
        }
    }
    Ok(p)
}

impl Probe {
    /// The profile this probe describes (named `IFNAME-probed`).
    pub fn profile(&self) -> Profile {
        let src = |what: &str| vec![format!("probed from the running kernel: {what}")];
        let x = self.xdp_features.unwrap_or(0);
        let has = |bits: u64, bit: u64| bits & bit != 0;
        let rx_metadata = [(1, RxMetadata::Timestamp), (2, RxMetadata::Hash), (4, RxMetadata::VlanTag)]
            .into_iter()
            .filter(|(b, _)| has(self.rx_metadata, *b))
            .map(|(_, m)| m)
            .collect();
        let tx_metadata = [(1, TxMetadata::Timestamp), (2, TxMetadata::Checksum), (4, TxMetadata::LaunchTime)]
            .into_iter()
            .filter(|(b, _)| has(self.xsk_features, *b))
            .map(|(_, m)| m)
            .collect();
        let (key, table, xfrm) = self.rss.unwrap_or((0, 0, 0));
        let ntuple = self.features.iter().any(|f| f == "rx-ntuple-filter");
        Profile {
            identity: Identity {
                name: format!("{}-probed", self.ifname),
                description: format!("{} as the running kernel reports it", self.ifname),
                drivers: self.driver.iter().cloned().collect(),
                pci_ids: self.pci_id.iter().cloned().collect(),
                sources: src("ETHTOOL_GDRVINFO (driver), sysfs /sys/class/net/IFACE/device (vendor, device)"),
            },
            limits: Limits {
                max_queues: self.channels.map(|(combined, _, rx, tx)| combined.max(rx.min(tx))).filter(|&n| n > 0),
                ring_min: None,
                ring_max: self.rings.map(|(rx, tx)| rx.min(tx)).filter(|&n| n > 0),
                ring_multiple: None,
                rss_key_bytes: key,
                rss_table_entries: table,
                symmetric_rss: if xfrm & ethtool::SYM_XOR != 0 {
                    SymmetricRss::Xor
                } else if xfrm & ethtool::SYM_OR_XOR != 0 {
                    SymmetricRss::OrXor
                } else {
                    SymmetricRss::None
                },
                mtu_max: None,
                xdp_frame_max: None,
                sources: src("ethtool netlink CHANNELS_GET, RINGS_GET, RSS_GET"),
            },
            af_xdp: AfXdp {
                native_xdp: has(x, netdev::BASIC),
                zero_copy: has(x, netdev::XSK_ZEROCOPY),
                multi_buffer: has(x, netdev::RX_SG),
                zc_max_segs: self.zc_max_segs.max(1),
                rx_metadata,
                tx_metadata,
                sources: src(
                    "netdev netlink DEV_GET (xdp-features, xdp-zc-max-segs, xdp-rx-metadata-features, xsk-features)",
                ),
            },
            steering: Steering {
                ntuple,
                ntuple_flow_types: Vec::new(),
                gtpu_teid: None,
                vxlan_vni: None,
                sources: src("ethtool netlink FEATURES_GET (rx-ntuple-filter)"),
            },
            offloads: Vec::new(),
        }
    }

    /// Where `declared` (a port's profile) claims more than this probe
    /// found: one line each (what the plan then falls back to).
    pub fn disagreements(&self, declared: &Profile) -> Vec<String> {
        let found = self.profile();
        let (d, f) = (&declared.af_xdp, &found.af_xdp);
        let name = &declared.identity.name;
        let mut v = Vec::new();
        let mut claim = |what: &str, says: bool, has: bool| {
            if says && !has {
                v.push(format!("profile `{name}` says {what}; {} has none (running without it)", self.ifname));
            }
        };
        claim("native XDP", d.native_xdp, f.native_xdp);
        claim("AF_XDP zero-copy", d.zero_copy, f.zero_copy);
        claim("XDP multi-buffer", d.multi_buffer, f.multi_buffer);
        claim("ntuple steering", declared.steering.ntuple, found.steering.ntuple);
        for m in d.rx_metadata.iter().filter(|m| !f.rx_metadata.contains(m)) {
            v.push(format!("profile `{name}` says RX metadata {m:?}; {} does not offer it", self.ifname));
        }
        if let (Some(want), Some(has)) = (declared.limits.max_queues, found.limits.max_queues)
            && has < want
        {
            v.push(format!("profile `{name}` says {want} queues; {} has {has}", self.ifname));
        }
        v
    }
}
