//! The program's tables as the workers fill them: repr(C) twins of the
//! BPF structs (`hw/bpf/nfv.bpf.c`), padding written out so every byte is
//! initialised (the kernel's hash maps compare keys byte for byte).

use crate::packet::PortId;

/// An established flow as one direction's packets show it (the program's
/// `struct flow_key`): addresses and ports as on the wire, padding zero
/// (the map compares every byte).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct FlowKey {
    /// Source address, network order.
    pub src: [u8; 4],
    /// Destination address, network order.
    pub dst: [u8; 4],
    /// Source port, network order.
    pub sport: [u8; 2],
    /// Destination port, network order.
    pub dport: [u8; 2],
    /// IP protocol.
    pub proto: u8,
    pad: [u8; 3],
}

impl FlowKey {
    /// The key of packets from `src:sport` to `dst:dport` (host order).
    pub fn new(proto: u8, src: u32, sport: u16, dst: u32, dport: u16) -> Self {
        Self {
            src: src.to_be_bytes(),
            dst: dst.to_be_bytes(),
            sport: sport.to_be_bytes(),
            dport: dport.to_be_bytes(),
            proto,
            pad: [0; 3],
        }
    }
}

/// What one direction of a flow becomes (the program's `struct
/// flow_val`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FlowValue {
    /// The new address, network order.
    pub addr: [u8; 4],
    /// The new port, network order.
    pub port: [u8; 2],
    /// 0: the source changes (inside to outside), 1: the destination,
    /// 2: nothing (only the Ethernet addresses), 3: both (the source to
    /// `addr:port`, the destination to `addr2:port2`), 4: an IP-in-IP
    /// tunnel from `addr2` to `addr`.
    pub side: u8,
    pad: u8,
    /// Ethernet destination to send with.
    pub dmac: [u8; 6],
    /// Ethernet source to send with.
    pub smac: [u8; 6],
    /// Egress interface.
    pub ifindex: u32,
    /// The new destination address when both change, network order.
    pub addr2: [u8; 4],
    /// The new destination port when both change, network order.
    pub port2: [u8; 2],
    pad2: [u8; 2],
    /// `bpf_ktime_get_coarse_ns` of the last packet forwarded here.
    pub last_seen: u64,
}

impl FlowValue {
    /// Forward unchanged but for the Ethernet addresses (a direct server
    /// return backend), from `smac` to `dmac` out of `ifindex`.
    pub fn forward(dmac: [u8; 6], smac: [u8; 6], ifindex: u32) -> Self {
        Self { side: 2, dmac, smac, ifindex, ..Self::default() }
    }

    /// Translate the source (`outbound`) or the destination to
    /// `addr:port` (host order), sending from `smac` to `dmac` out of
    /// `ifindex`.
    pub fn new(outbound: bool, addr: u32, port: u16, dmac: [u8; 6], smac: [u8; 6], ifindex: u32) -> Self {
        Self {
            addr: addr.to_be_bytes(),
            port: port.to_be_bytes(),
            side: u8::from(!outbound),
            dmac,
            smac,
            ifindex,
            ..Self::default()
        }
    }

    /// Put in an IP-in-IP tunnel (RFC 2003) from `src` to `dst` (host
    /// order; a load balancer's IP-in-IP mode), sending from `smac` to
    /// `dmac` out of `ifindex`.
    pub fn ipip(src: u32, dst: u32, dmac: [u8; 6], smac: [u8; 6], ifindex: u32) -> Self {
        Self { addr: dst.to_be_bytes(), side: 4, addr2: src.to_be_bytes(), dmac, smac, ifindex, ..Self::default() }
    }

    /// Translate both ends: the source to `src`, the destination to `dst`
    /// (host order; a load balancer's NAT mode), sending from `smac` to
    /// `dmac` out of `ifindex`.
    pub fn both(src: (u32, u16), dst: (u32, u16), dmac: [u8; 6], smac: [u8; 6], ifindex: u32) -> Self {
        Self {
            addr: src.0.to_be_bytes(),
            port: src.1.to_be_bytes(),
            side: 3,
            addr2: dst.0.to_be_bytes(),
            port2: dst.1.to_be_bytes(),
            dmac,
            smac,
            ifindex,
            ..Self::default()
        }
    }
}

/// An ACL rule as the XDP program's prefix and port filter holds it (its
/// `struct acl_rule`, IPv4): addresses and masks as on the wire, ranges
/// inclusive in host order (ICMP: type and code).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FilterRule {
    /// Source network.
    pub src: [u8; 4],
    /// Source mask.
    pub src_mask: [u8; 4],
    /// Destination network.
    pub dst: [u8; 4],
    /// Destination mask.
    pub dst_mask: [u8; 4],
    /// Source port (ICMP type) range.
    pub sport: (u16, u16),
    /// Destination port (ICMP code) range.
    pub dport: (u16, u16),
    /// Protocol value.
    pub proto: u8,
    /// Protocol mask (0: any).
    pub proto_mask: u8,
    /// TCP flags value.
    pub flags: u8,
    /// TCP flags mask.
    pub flags_mask: u8,
    /// 0 permit, 1 deny.
    pub action: u32,
}

/// Most rules the XDP filter holds.
pub const FILTER_MAX: usize = 256;

/// A first-match filter for IPv4 (an ACL whose rules the program can
/// hold): what it denies is dropped in XDP, what it permits goes on
/// (IPv6 and IPv4 with options go up to the workers' ACL).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Filter {
    /// The rule set is one the filter cannot hold: every packet goes up
    /// to the workers (nothing after the ACL may act on a packet in XDP
    /// that the workers' ACL has not decided).
    pub up: bool,
    /// The rules, in order (at most [`FILTER_MAX`]).
    pub rules: Vec<FilterRule>,
    /// No rule matched: drop.
    pub default_deny: bool,
    /// Frames that are neither IPv4 nor IPv6: drop.
    pub non_ip_deny: bool,
}

impl Filter {
    /// Sends everything up (what the filter holds while a rule set it
    /// cannot express is in force: the workers' ACL decides).
    pub fn up() -> Self {
        Self { up: true, ..Self::default() }
    }
}

/// A VTEP's forwarding-database entry key (the program's `struct
/// l2_key`): the VNI and an inner MAC address.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct L2Key {
    /// VNI (24 bits).
    pub vni: u32,
    /// MAC address.
    pub mac: [u8; 6],
    pad: [u8; 2],
}

impl L2Key {
    /// The key of `mac` in `vni`.
    pub fn new(vni: u32, mac: [u8; 6]) -> Self {
        Self { vni, mac, pad: [0; 2] }
    }
}

/// Where a VTEP's MAC lives (the program's `struct l2_val`): behind a
/// local port, or behind a remote VTEP reached through a next hop.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct L2Value {
    /// Local port's interface (0: remote; filled in from the port).
    pub ifindex: u32,
    /// Remote VTEP's IPv4 address, network order (0: local).
    pub remote: [u8; 4],
    /// The next hop's Ethernet address toward the remote VTEP.
    pub hop_mac: [u8; 6],
    pad: [u8; 2],
    /// `bpf_ktime_get_coarse_ns` of the last packet to or from it.
    pub last_seen: u64,
}

impl L2Value {
    /// Behind a local port (its interface filled in by the offloader).
    pub fn local() -> Self {
        Self::default()
    }

    /// Behind remote VTEP `ip` (host order), through next hop `hop_mac`.
    pub fn remote(ip: u32, hop_mac: [u8; 6]) -> Self {
        Self { remote: ip.to_be_bytes(), hop_mac, ..Self::default() }
    }
}

/// A VXLAN VTEP as the program needs it (its `struct vtep_conf`): one
/// per program.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VtepConf {
    /// Local VTEP address (IPv4, network order).
    pub local_ip: [u8; 4],
    /// The underlay port's interface (filled in by the offloader).
    pub underlay: u32,
    /// The underlay port's MAC (outer source).
    pub underlay_mac: [u8; 6],
    /// UDP destination port (4789).
    pub dport: u16,
    /// Outer UDP source ports, inclusive (RFC 7348 section 5).
    pub sport_lo: u16,
    /// See `sport_lo`.
    pub sport_hi: u16,
    /// Underlay MTU: an outer packet larger goes up (too big).
    pub mtu: u16,
    /// Outer TTL.
    pub ttl: u8,
    pad: u8,
}

impl VtepConf {
    /// A VTEP at IPv4 `local_ip` (host order) whose underlay port has
    /// `underlay_mac`, sending to UDP `dport` from `sports`, an outer
    /// packet at most `mtu` long, with `ttl`.
    pub fn new(local_ip: u32, underlay_mac: [u8; 6], dport: u16, sports: (u16, u16), mtu: u16, ttl: u8) -> Self {
        Self {
            local_ip: local_ip.to_be_bytes(),
            underlay: 0,
            underlay_mac,
            dport,
            sport_lo: sports.0,
            sport_hi: sports.1,
            mtu,
            ttl,
            pad: 0,
        }
    }
}

/// A VTEP handed to the engine: its configuration and its access ports'
/// VNIs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Vtep {
    /// What the outer headers carry.
    pub conf: VtepConf,
    /// The underlay port.
    pub underlay: PortId,
    /// Access ports and their bridge domain's VNI.
    pub ports: Vec<(PortId, u32)>,
}

/// URR counter slots the program keeps (its `upf_usage` array): a
/// session whose URR's slot is at or past this stays in the workers.
pub const USAGE_SLOTS: u32 = 131_072;

/// A UPF session's uplink as the program forwards it (its `struct
/// upf_up`, keyed by the TEID as on the wire): G-PDUs from the UE's
/// address decapsulated and sent to N6.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UpfUplink {
    /// The inner source the PDR requires, network order (0: any).
    pub ue: [u8; 4],
    /// The PDR's URR's counter slot (`u32::MAX`: none).
    pub urr: u32,
    /// Ethernet destination (the N6 gateway).
    pub dmac: [u8; 6],
    /// Ethernet source (the N6 port).
    pub smac: [u8; 6],
    /// The N6 port's interface (filled in by the offloader).
    pub ifindex: u32,
}

/// Octets of a GTP-U tunnel's outer headers over IPv4 (Ethernet, IPv4,
/// UDP), as [`UpfDownlink::outer`] holds them.
pub const GTPU_OUTER_LEN: usize = 42;

/// A UPF session's downlink as the program forwards it (its `struct
/// upf_down`, keyed by the UE address as on the wire): packets put in
/// the gNB's tunnel, sent to N3.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UpfDownlink {
    /// The outer Ethernet, IPv4 and UDP headers exactly as the workers
    /// write them for an empty payload (the program sets the lengths and
    /// the IPv4 checksum).
    pub outer: [u8; GTPU_OUTER_LEN],
    /// The QFI of the PDU Session Container (0xff: none).
    pub qfi: u8,
    pad: u8,
    /// The gNB's TEID, network order.
    pub teid: [u8; 4],
    /// The PDR's URR's counter slot (`u32::MAX`: none).
    pub urr: u32,
    /// The N3 port's interface (filled in by the offloader).
    pub ifindex: u32,
}

impl UpfDownlink {
    /// Into tunnel `teid` with `outer` headers, a PDU Session Container
    /// with `qfi` unless 0xff, counted into URR slot `urr`.
    pub fn new(outer: [u8; GTPU_OUTER_LEN], teid: u32, qfi: u8, urr: u32) -> Self {
        Self { outer, qfi, pad: 0, teid: teid.to_be_bytes(), urr, ifindex: 0 }
    }
}

impl Default for UpfDownlink {
    fn default() -> Self {
        Self::new([0; GTPU_OUTER_LEN], 0, 0xff, u32::MAX)
    }
}

/// A UPF as the program needs it (its `struct upf_conf`): which port is
/// N3 and the address G-PDUs come to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UpfConf {
    /// The N3 port.
    pub n3: PortId,
    /// The N3 (GTP-U) address, host order.
    pub n3_address: u32,
}

/// One URR slot's counts in the program (its `struct upf_usage`),
/// T-PDU octets as the workers count them (TS 29.244 8.2.40).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UsageCounts {
    /// Uplink octets.
    pub ul_bytes: u64,
    /// Uplink packets.
    pub ul_packets: u64,
    /// Downlink octets.
    pub dl_bytes: u64,
    /// Downlink packets.
    pub dl_packets: u64,
}

/// An entry's key in one of the program's tables.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Key {
    /// A flow ([`FlowKey`]).
    Flow(FlowKey),
    /// A VTEP's MAC ([`L2Key`]).
    L2(L2Key),
    /// A UPF session's uplink by TEID (host order).
    Teid(u32),
    /// A UPF session's downlink by UE address (host order).
    Ue(u32),
}

impl Key {
    /// Whether the program keeps the entry's `last_seen` (UPF sessions
    /// have no idle timer: their entries keep none).
    pub fn has_activity(&self) -> bool {
        matches!(self, Key::Flow(_) | Key::L2(_))
    }
}

/// An entry to install in one of the program's tables.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Entry {
    /// A flow.
    Flow(FlowKey, FlowValue),
    /// A VTEP's MAC.
    L2(L2Key, L2Value),
    /// A UPF session's uplink by TEID (host order).
    Uplink(u32, UpfUplink),
    /// A UPF session's downlink by UE address (host order).
    Downlink(u32, UpfDownlink),
}

impl Entry {
    /// Its key.
    pub fn key(&self) -> Key {
        match self {
            Entry::Flow(k, _) => Key::Flow(*k),
            Entry::L2(k, _) => Key::L2(*k),
            Entry::Uplink(t, _) => Key::Teid(*t),
            Entry::Downlink(u, _) => Key::Ue(*u),
        }
    }
}
