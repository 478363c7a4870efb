//! The VTEP data path: decapsulation of tunnel packets from the underlay,
//! switching and encapsulation of frames from local ports, head-end
//! replication for flooding. One instance per worker, with its own FDB.

mod offload;
mod report;

use std::net::IpAddr;
use std::sync::Arc;

use nfv_core::adjacency::{Adjacency, Derived};
use nfv_core::packet::{NewPacket, PacketMut, flags};
use nfv_core::published::Snapshot;
use nfv_core::reject;
use nfv_core::{Batch, PortId, Stage, StageCtx};
use nfv_net::tunnel::{Encap, OuterHeader, OuterSpec, PerPacket};
use nfv_net::wire::{
    ArpPacket, EthernetFrame, Ipv4Packet, Ipv6Packet, arp, ethernet, ethertype, icmp, ipv4, ipv6, proto,
};
use rustc_hash::FxHashMap;

use crate::config::{StaticDest, Statics, Vtep};
use crate::fdb::{Dest, Fdb, Learned, RemoteId};
use crate::outer::parse_tunnel_packet;
use crate::wire::HeaderError;

nfv_core::drop_reasons! {
    /// Why the VTEP dropped a packet.
    pub enum VtepDrop {
        WrongDestination => "not-our-vtep-address",
        UnknownVni => "unknown-vni",
        NoVniFlag => "i-flag-missing",
        Truncated => "truncated",
        BadOptionLength => "bad-option-length",
        UnknownCriticalOption => "unknown-critical-option",
        BadVersion => "bad-geneve-version",
        NotEthernet => "not-ethernet-payload",
        InnerVlan => "inner-vlan-not-allowed",
        OuterFragment => "outer-fragment",
        BadUdpChecksum => "bad-udp-checksum",
        ZeroUdp6Checksum => "zero-udp6-checksum",
        SplitHorizon => "split-horizon",
        SamePort => "same-port",
        TooBig => "too-big-for-underlay",
        NoReplica => "replica-no-frame",
        NoTarget => "no-flood-target",
        GeneveControl => "geneve-control-packet",
    }
}

impl From<HeaderError> for VtepDrop {
    fn from(e: HeaderError) -> Self {
        match e {
            HeaderError::Truncated => VtepDrop::Truncated,
            HeaderError::NoVniFlag => VtepDrop::NoVniFlag,
            HeaderError::BadVersion => VtepDrop::BadVersion,
            HeaderError::BadOptionLength => VtepDrop::BadOptionLength,
            HeaderError::UnknownCriticalOption => VtepDrop::UnknownCriticalOption,
            HeaderError::NotEthernet => VtepDrop::NotEthernet,
            HeaderError::Control => VtepDrop::GeneveControl,
        }
    }
}

/// Where one copy of a packet goes.
#[derive(Clone, Copy, Debug)]
enum Target {
    Port(PortId),
    Remote(RemoteId),
}

/// Remote VTEPs a worker knows at most (configured plus learned); beyond
/// it, new VTEPs are not learned and their hosts' traffic floods.
const MAX_REMOTES: usize = 4096;

/// Counters shown in the end-of-run report.
#[derive(Default)]
struct Stats {
    replicas_refused: u64,
    arp_suppressed: u64,
    too_big_replies: u64,
    encapsulated: u64,
    decapsulated: u64,
    flooded: u64,
    replicas: u64,
}

/// The outer headers toward one remote VTEP and VNI, built once: per
/// packet only lengths, the source port and checksums change.
struct Template {
    /// Outer Ethernet, IP, UDP and tunnel headers, with the sums that
    /// complete them per packet (over IPv6 the UDP checksum then reads
    /// only the inner frame, not the headers just written).
    outer: OuterHeader,
    /// False when the next hop was unresolved as it was built (its
    /// Ethernet destination is zero): packets through it wait for the
    /// next hop ([`nfv_core::adjacency`]); the template is built again
    /// when the neighbour table changes.
    resolved: bool,
}

/// The header templates toward remotes built so far, by (remote, VNI).
#[derive(Default)]
struct Templates {
    list: Vec<Template>,
    index: FxHashMap<(RemoteId, u32), usize>,
    /// Last one used: bulk traffic goes to one VTEP and VNI.
    last: Option<(RemoteId, u32, usize)>,
}

impl Templates {
    fn clear(&mut self) {
        self.list.clear();
        self.index.clear();
        self.last = None;
    }
}

/// One worker's VTEP.
pub struct VtepStage {
    /// Parse the decapsulated frame fully (a later stage reads headers, or
    /// inner VLAN tags are allowed); otherwise only its EtherType and L3
    /// offset are set, which is all this stage needs.
    pub reparse_inner: bool,
    v: Arc<Vtep>,
    underlay_mac: [u8; 6],
    /// Every port's MAC (frames to a bridge port's own are not bridged).
    pub own_macs: Vec<[u8; 6]>,
    fdb: Fdb,
    /// Outer source MAC of each remote VTEP we decapsulated from: the
    /// adjacency for replies when the neighbour table has none yet.
    remote_macs: FxHashMap<IpAddr, [u8; 6]>,
    last_remote: Option<(IpAddr, [u8; 6], Option<RemoteId>)>,
    /// Remote VTEP addresses by [`RemoteId`], and the way back.
    remotes: Vec<IpAddr>,
    remote_ids: FxHashMap<IpAddr, RemoteId>,
    /// Flood list of each bridge domain, as remote ids.
    flood: Vec<Vec<RemoteId>>,
    /// The static FDB entries and flood lists in use.
    statics: Snapshot<Statics>,
    /// Header templates toward remotes, rebuilt when the neighbour table
    /// changes.
    templates: Derived<Templates>,
    /// Last VNI decapsulated and its bridge domain.
    last_vni: Option<(u32, usize)>,
    /// Last destination looked up in this batch: bulk traffic repeats it.
    last_dst: Option<(u32, [u8; 6], Dest)>,
    /// Last source learned in this batch.
    last_src: Option<(u32, [u8; 6], Dest)>,
    /// Copies made while flooding, applied after the pass over the batch.
    replicas: Vec<(NewPacket, Target, u32)>,
    /// Where each replica pushed this batch goes, in push order.
    replica_targets: Vec<(Target, u32)>,
    targets: Vec<Target>,
    /// A second in counter ticks.
    second: u64,
    stats: Stats,
    last_now: u64,
    /// When aged entries were last swept out (lookups also drop them).
    last_sweep: u64,
    /// Inner IPv4 address -> MAC per VNI, snooped from ARP, for
    /// suppression; bounded like the FDB and forgotten with it.
    arp_table: FxHashMap<(u32, [u8; 4]), ([u8; 6], u64)>,
    /// With the FDB in nfv's XDP program: the neighbour table version its
    /// remote entries were made with.
    offload_adj: u64,
}

/// Most copies one batch may add (the batch reserves room for them).
const MAX_REPLICAS: usize = nfv_core::batch::MAX_BATCH;
/// Touches from nfv's XDP program taken per tick at most.
const TOUCHES_PER_TICK: usize = 256;

impl VtepStage {
    /// An instance sending from `underlay_mac`.
    pub fn new(v: Arc<Vtep>, underlay_mac: [u8; 6]) -> Self {
        let fdb = Fdb::new(v.fdb_size, nfv_core::cycles::ticks(v.fdb_ageing));
        let mut s = Self {
            reparse_inner: true,
            v: v.clone(),
            underlay_mac,
            own_macs: Vec::new(),
            fdb,
            remote_macs: FxHashMap::default(),
            remotes: Vec::new(),
            remote_ids: FxHashMap::default(),
            flood: Vec::new(),
            statics: Snapshot::new(v.statics.clone()),
            last_remote: None,
            templates: Derived::new(Templates::default()),
            last_vni: None,
            last_dst: None,
            last_src: None,
            replicas: Vec::with_capacity(MAX_REPLICAS),
            replica_targets: Vec::with_capacity(MAX_REPLICAS),
            targets: Vec::with_capacity(16),
            second: nfv_core::cycles::ticks(1.0),
            stats: Stats::default(),
            last_now: 0,
            last_sweep: 0,
            arp_table: FxHashMap::default(),
            offload_adj: u64::MAX,
        };
        s.take_statics();
        s
    }

    /// Takes the static FDB entries and flood lists in use: at the start,
    /// and between batches when a new version was published.
    #[cold]
    fn take_statics(&mut self) {
        let st = self.statics.arc().clone();
        self.flood = st.flood.iter().map(|list| list.iter().filter_map(|&ip| self.intern(ip)).collect()).collect();
        self.fdb.clear_statics();
        for &(vni, mac, dest) in &st.macs {
            let dest = match dest {
                StaticDest::Local(p) => Some(Dest::Local(p)),
                StaticDest::Remote(ip) => self.intern(ip).map(Dest::Remote),
            };
            if let Some(d) = dest {
                self.fdb.add_static(vni, mac, d);
            }
        }
    }

    /// The id of remote VTEP `ip`, given one on first sight (None when the
    /// table of remotes is full).
    fn intern(&mut self, ip: IpAddr) -> Option<RemoteId> {
        if let Some(&id) = self.remote_ids.get(&ip) {
            return Some(id);
        }
        if self.remotes.len() >= MAX_REMOTES {
            return None;
        }
        self.remotes.push(ip);
        let id = (self.remotes.len() - 1) as RemoteId;
        self.remote_ids.insert(ip, id);
        Some(id)
    }

    /// Decapsulates one packet from the underlay; returns its VNI's bridge
    /// domain, or leaves the packet alone (`Ok(None)`) when it is not
    /// tunnel traffic for our port.
    #[inline]
    fn decap(&mut self, p: &mut PacketMut<'_>, now: u64) -> Result<Option<usize>, VtepDrop> {
        let v = &*self.v;
        let known = &v.known_options;
        let accept0 = v.accept_zero_udp6_checksum;
        let Some(t) =
            parse_tunnel_packet(p.data(), p.meta(), v.tunnel, v.udp_port, Some(v.local_ip), accept0, |c, k| {
                known.contains(&(c, k))
            })?
        else {
            return Ok(None);
        };
        let bd = match self.last_vni {
            Some((vni, bd)) if vni == t.vni => bd,
            _ => {
                let bd = *v.vni_domain.get(&t.vni).ok_or(VtepDrop::UnknownVni)?;
                self.last_vni = Some((t.vni, bd));
                bd
            }
        };
        let d = p.data();
        if !v.allow_inner_vlan
            && matches!(u16::from_be_bytes([d[t.inner.start + 12], d[t.inner.start + 13]]), 0x8100 | 0x88a8)
        {
            return Err(VtepDrop::InnerVlan);
        }
        let outer_src_mac: [u8; 6] = d[6..12].try_into().unwrap();
        let remote = match self.last_remote {
            Some((ip, mac, id)) if ip == t.src && mac == outer_src_mac => id,
            _ => {
                // Remote VTEPs are remembered only when learning from them:
                // spoofed sources cannot fill the tables otherwise.
                let id = if self.v.learn { self.intern(t.src) } else { self.remote_ids.get(&t.src).copied() };
                self.last_remote = Some((t.src, outer_src_mac, id));
                if self.v.gateway.is_none()
                    && id.is_some()
                    && self.remote_macs.insert(t.src, outer_src_mac) != Some(outer_src_mac)
                {
                    // A new or moved remote VTEP: headers built for it are
                    // stale, and so is XDP's copy of them.
                    self.templates.get_mut().clear();
                    self.fdb.withdraw_remotes();
                }
                id
            }
        };
        p.pull_front(t.inner.start).map_err(|_| VtepDrop::Truncated)?;
        p.set_len(t.inner.len()).map_err(|_| VtepDrop::Truncated)?;
        if self.reparse_inner {
            p.reparse().map_err(|_| VtepDrop::Truncated)?;
        } else {
            let (d, meta) = p.data_and_meta_mut();
            // Untagged (inner VLAN was refused above): what later code here
            // reads, and flags that say nothing more was parsed.
            meta.ethertype = u16::from_be_bytes([d[12], d[13]]);
            meta.l3_off = 14;
            meta.l4_off = 0;
            meta.l4_proto = 0;
            meta.flags &= flags::TRACE | flags::CSUM_OFFLOAD;
        }
        if self.v.learn
            && let Some(id) = remote
        {
            let smac: [u8; 6] = p.data()[6..12].try_into().unwrap();
            self.learn(self.v.domains[bd].vni, smac, Dest::Remote(id), now);
        }
        self.stats.decapsulated += 1;
        Ok(Some(bd))
    }

    /// Learns `mac` at `dest` unless the previous packet of the batch just
    /// did the same.
    #[inline(always)]
    fn learn(&mut self, vni: u32, mac: [u8; 6], dest: Dest, now: u64) {
        if mac[0] & 1 != 0 || self.last_src == Some((vni, mac, dest)) {
            return;
        }
        self.last_src = Some((vni, mac, dest));
        if matches!(self.fdb.learn(vni, &mac, dest, now), Learned::Moved) {
            self.last_dst = None;
        }
    }

    /// Where an inner frame in bridge domain `bd` goes: one target
    /// (`Ok(Some)`), or a flood whose targets are in `self.targets`.
    /// `from_overlay`: it came out of a tunnel (split horizon applies).
    #[inline(always)]
    fn targets_for(
        &mut self,
        p: &PacketMut<'_>,
        bd: usize,
        ingress: Option<PortId>,
        now: u64,
    ) -> Result<Option<Target>, VtepDrop> {
        let dmac: [u8; 6] = p.data()[..6].try_into().unwrap();
        let dom = &self.v.domains[bd];
        let known = match self.last_dst {
            Some((vni, mac, dest)) if vni == dom.vni && mac == dmac => Some(dest),
            _ if dmac[0] & 1 != 0 => None,
            _ => {
                let found = self.fdb.lookup(dom.vni, &dmac, now);
                self.last_dst = found.map(|d| (dom.vni, dmac, d));
                found
            }
        };
        match known {
            Some(Dest::Local(q)) if Some(q) == ingress => return Err(VtepDrop::SamePort),
            Some(Dest::Local(q)) => return Ok(Some(Target::Port(q))),
            Some(Dest::Remote(_)) if ingress.is_none() => return Err(VtepDrop::SplitHorizon),
            Some(Dest::Remote(ip)) => return Ok(Some(Target::Remote(ip))),
            None => {
                self.stats.flooded += 1;
                self.targets.clear();
                self.targets.extend(dom.ports.iter().filter(|&&q| Some(q) != ingress).map(|&q| Target::Port(q)));
                if ingress.is_some() {
                    let remotes = &self.flood[bd];
                    // Every copy toward a remote VTEP would be too big for the
                    // underlay alike: one attempt stands for them all, so the
                    // sender gets one ICMP answer and one drop is counted.
                    let fits = p.len() + self.v.overhead() - 14 <= self.v.mtu as usize;
                    let remotes = if fits { &remotes[..] } else { &remotes[..remotes.len().min(1)] };
                    self.targets.extend(remotes.iter().map(|&id| Target::Remote(id)));
                }
            }
        }
        if self.targets.is_empty() { Err(VtepDrop::NoTarget) } else { Ok(None) }
    }

    /// Copies the packet for every target but the first (head-end
    /// replication); the copies are finished after the pass.
    #[inline]
    fn replicate(&mut self, p: &PacketMut<'_>, vni: u32, ctx: &mut StageCtx<'_>) -> Result<(), VtepDrop> {
        for &t in &self.targets[1..] {
            if self.replicas.len() >= MAX_REPLICAS {
                return Err(VtepDrop::NoReplica);
            }
            let Some(copy) = ctx.pool.packet_from(p.data(), *p.meta()) else { return Err(VtepDrop::NoReplica) };
            self.replicas.push((copy, t, vni));
            self.stats.replicas += 1;
        }
        Ok(())
    }

    /// Sends the packet to `t`: out of a local port, or encapsulated
    /// toward a remote VTEP.
    #[inline(always)]
    fn deliver(&mut self, p: &mut PacketMut<'_>, t: Target, vni: u32, ctx: &mut StageCtx<'_>) {
        match t {
            Target::Port(q) => p.send_to(q),
            Target::Remote(ip) => match self.encap(p, ip, vni, ctx.adjacency) {
                Ok(true) if !ctx.adjacency.holds() => p.send_to(self.v.underlay),
                // Unresolved, or resolved (its MAC came from its tunnel
                // packets) while packets still wait for it: behind them.
                Ok(resolved) => {
                    let hop = self.v.next_hop(self.remotes[ip as usize]);
                    if resolved && !ctx.adjacency.waits_for(&hop) {
                        p.send_to(self.v.underlay);
                    } else {
                        ctx.adjacency.hold(p, &[self.v.underlay], hop);
                    }
                }
                Err(VtepDrop::TooBig) if self.too_big_reply(p) => {
                    self.stats.too_big_replies += 1;
                    let port = p.meta().port;
                    p.send_to(port);
                }
                Err(r) => p.drop_with(r),
            },
        }
    }

    /// The header template toward `remote` for `vni`, built on first use
    /// and whenever the neighbour table changed. The next hop's MAC is the
    /// table's, else the one tunnel packets from it came from.
    fn template(&mut self, remote: RemoteId, vni: u32, adj: &Adjacency) -> &Template {
        let t = self.templates.refresh(adj, 0, |t, _| t.clear());
        if let Some((r, v, i)) = t.last
            && r == remote
            && v == vni
        {
            return &t.list[i];
        }
        let i = match t.index.get(&(remote, vni)) {
            Some(&i) => i,
            None => {
                let ip = self.remotes[remote as usize];
                let hop = self.v.next_hop(ip);
                let dmac = adj.lookup(&hop, self.v.underlay).or_else(|| self.remote_macs.get(&hop).copied());
                t.list.push(build_template(&self.v, self.underlay_mac, dmac, ip, vni));
                t.index.insert((remote, vni), t.list.len() - 1);
                t.list.len() - 1
            }
        };
        t.last = Some((remote, vni, i));
        &t.list[i]
    }

    /// Puts the outer Ethernet, IP, UDP and tunnel headers in front of the
    /// inner frame (RFC 7348 section 5, RFC 8926 section 3); false when
    /// the next hop is unresolved (the Ethernet destination left zero).
    #[inline(always)]
    fn encap(&mut self, p: &mut PacketMut<'_>, remote: RemoteId, vni: u32, adj: &Adjacency) -> Result<bool, VtepDrop> {
        let inner_len = p.len();
        let (mtu, (lo, hi), v4) = (self.v.mtu as usize, self.v.src_ports, self.v.local_ip.is_ipv4());
        // RFC 7348 section 5: source port from a hash of the inner frame,
        // so underlay ECMP spreads flows.
        let hash = entropy(p);
        // Into [lo, hi] by multiply-shift (no division).
        let sport = lo + ((hash as u64 * (hi - lo) as u64 + hash as u64) >> 32) as u16;
        // RFC 7348 section 5: the UDP checksum SHOULD be 0 on IPv4; over
        // IPv6 it is computed unless `zero-udp6-checksum-tx` (RFC 6935 5).
        let per_packet = PerPacket { sport, udp6_checksum: !self.v.zero_udp6_checksum_tx, ..PerPacket::default() };
        let t = self.template(remote, vni, adj);
        let total = t.outer.len();
        let ip_len = total - ethernet::HEADER_LEN + inner_len;
        if ip_len > mtu {
            return Err(VtepDrop::TooBig);
        }
        let h = p.push_front(total).map_err(|_| VtepDrop::TooBig)?;
        t.outer.write(h, per_packet);
        let resolved = t.resolved;
        // Later stages (an underlay ACL, a mirror) see the outer packet.
        let ip_hdr = if v4 { ipv4::HEADER_LEN } else { ipv6::HEADER_LEN };
        let m = p.meta_mut();
        m.ethertype = if v4 { ethertype::IPV4 } else { ethertype::IPV6 };
        m.l3_off = ethernet::HEADER_LEN as u16;
        m.l4_off = (ethernet::HEADER_LEN + ip_hdr) as u16;
        m.l4_proto = proto::UDP;
        m.flags = (m.flags & (flags::TRACE | flags::CSUM_OFFLOAD)) | flags::L3_OK | flags::L4_OK;
        self.stats.encapsulated += 1;
        Ok(resolved)
    }
}

impl VtepStage {
    /// Turns a packet too big for the tunnel into the ICMP answer its
    /// sender needs to lower its path MTU, when the configuration gives a
    /// source address: RFC 792 / RFC 1191 "fragmentation needed and DF
    /// set" (type 3 code 4, next-hop MTU) for IPv4 packets with DF, RFC
    /// 4443 section 3.2 "packet too big" for IPv6. The answer quotes as much
    /// of the packet as fits in 576 (IPv4, RFC 1812 section 4.3.2.3) or
    /// 1280 (IPv6) bytes and goes back out of the port it came in on.
    fn too_big_reply(&self, p: &mut PacketMut<'_>) -> bool {
        let m = *p.meta();
        if m.flags & flags::L3_OK == 0 {
            return false;
        }
        // The largest inner IP packet that fits: the underlay MTU less the
        // outer IP, UDP and tunnel headers and the inner Ethernet header
        // (1500 -> 1450 for VXLAN over IPv4, as the kernel's vxlan MTU).
        let l3 = m.l3_off as usize;
        // VLAN tags travel inside the tunnel too.
        let inner_mtu = (self.v.mtu as usize).saturating_sub(self.v.overhead() + (l3 - 14)) as u32;
        let d = p.data();
        if !reject::may_answer_with_icmp_error(d, &m) {
            return false;
        }
        // From the address the sender sent to: the VTEP's bridge port.
        let our_mac = EthernetFrame::new_unchecked(d).dst_addr();
        match m.ethertype {
            ethertype::IPV4 => {
                let Some(from) = self.v.too_big_v4 else { return false };
                if Ipv4Packet::new_unchecked(&d[l3..]).frag_field() & ipv4::DONT_FRAG == 0 {
                    return false; // DF clear: the sender allows fragmentation; we still do not fragment
                }
                let u = reject::Unreachable {
                    code: reject::code::FRAGMENTATION_NEEDED,
                    from: Some(from.octets()),
                    mtu: inner_mtu as u16,
                    quote: 576 - 28,
                };
                reject::icmp_unreachable(p, u, our_mac).is_ok()
            }
            ethertype::IPV6 => {
                let Some(from) = self.v.too_big_v6 else { return false };
                // RFC 4443 3.2: Packet Too Big, the MTU in the four octets.
                let too_big = (icmp::v6::PACKET_TOO_BIG, 0, inner_mtu);
                reject::icmp6_error(p, too_big, from.octets(), our_mac).is_ok()
            }
            _ => false,
        }
    }
}

impl VtepStage {
    /// ARP suppression (RFC 826 packets inside the overlay): learns every
    /// sender's address, and turns a request from a local port for an
    /// address already known into the reply, sent back out of that port.
    /// Returns true when the packet was answered.
    fn arp(&mut self, p: &mut PacketMut<'_>, vni: u32, local: Option<PortId>, now: u64) -> bool {
        let l3 = p.meta().l3_off as usize;
        let Some(a) = p.data().get(l3..).and_then(|a| ArpPacket::new_checked(a).ok()) else { return false };
        let (op, smac, sip, tip) = (a.operation(), a.sender_mac(), a.sender_ip(), a.target_ip());
        if sip != [0; 4]
            && smac[0] & 1 == 0
            && (self.arp_table.len() < self.v.fdb_size || self.arp_table.contains_key(&(vni, sip)))
        {
            self.arp_table.insert((vni, sip), (smac, now));
        }
        let (Some(port), arp::REQUEST) = (local, op) else { return false };
        let Some(&(mac, _)) = self.arp_table.get(&(vni, tip)) else { return false };
        if mac == smac {
            return false; // a host probing its own address (duplicate detection)
        }
        let d = p.data_mut();
        EthernetFrame::new_unchecked(&mut *d).set_addrs(smac, mac);
        ArpPacket::new_checked(&mut d[l3..]).expect("checked above").make_reply(mac);
        self.stats.arp_suppressed += 1;
        p.send_to(port);
        true
    }
}

/// Outer Ethernet + IP + UDP + tunnel header toward `remote`, with lengths,
/// source port and checksums left zero.
fn build_template(v: &Vtep, smac: [u8; 6], dmac: Option<[u8; 6]>, remote: IpAddr, vni: u32) -> Template {
    let mut tunnel = vec![0u8; v.tunnel.header_len(v.geneve_options.len())];
    v.tunnel.emit(&mut tunnel, vni, &v.geneve_options);
    let spec = OuterSpec {
        eth: (dmac.unwrap_or_default(), smac),
        src: v.local_ip,
        dst: remote,
        ttl: v.ttl,
        // Never fragmented on the way (RFC 7348 4.3: the underlay's MTU
        // is ours to respect).
        frag: ipv4::DONT_FRAG,
        encap: Encap::Udp { dport: v.udp_port, tunnel: &tunnel },
    };
    let outer = OuterHeader::new(&spec).expect("configuration keeps one address family");
    Template { outer, resolved: dmac.is_some() }
}

/// A hash of the inner flow for the outer source port: the addresses and
/// ports the input stage located (RFC 7348 section 5 asks for "a hash of
/// fields from the inner packet"); it need not be symmetric, so it is
/// cheaper than the flow hash used for steering.
#[inline(always)]
fn entropy(p: &PacketMut<'_>) -> u32 {
    let (d, m) = (p.data(), p.meta());
    let word = |at: usize| d.get(at..at + 4).map_or(0, |w| u32::from_be_bytes([w[0], w[1], w[2], w[3]]));
    let (a, b, c) = if m.flags & flags::L3_OK == 0 {
        // Not IP: the Ethernet addresses stand in.
        (word(0), word(4), word(8))
    } else {
        let l3 = &d[m.l3_off as usize..];
        // IPv4's addresses, or the low words of IPv6's.
        let low = |a: [u8; 16]| u32::from_be_bytes([a[12], a[13], a[14], a[15]]);
        let (sa, da) = if m.ethertype == ethertype::IPV4 {
            let ip = Ipv4Packet::new_unchecked(l3);
            (ip.src(), ip.dst())
        } else {
            let ip = Ipv6Packet::new_unchecked(l3);
            (low(ip.src_addr()), low(ip.dst_addr()))
        };
        let ports = if m.flags & flags::L4_OK != 0 { word(m.l4_off as usize) } else { 0 };
        (sa, da, ports ^ m.l4_proto as u32)
    };
    let h = (a.wrapping_mul(0x9e37_79b1) ^ b.rotate_left(16) ^ c).wrapping_mul(0x85eb_ca6b);
    h ^ (h >> 15)
}

impl Stage for VtepStage {
    fn process(&mut self, batch: &mut Batch, ctx: &mut StageCtx<'_>) {
        if batch.is_empty() {
            return;
        }
        if self.statics.refresh() {
            self.take_statics();
        }
        let ingress = batch.rx_port();
        let now = ctx.now_ticks;
        self.last_now = now;
        // The last-hit caches live for one batch.
        self.last_dst = None;
        self.last_src = None;
        // Once a second, forget addresses that went quiet, so the table and
        // its dump hold only live ones.
        if now.wrapping_sub(self.last_sweep) > self.second {
            self.last_sweep = now;
            self.fdb.expire(now);
            let ageing = nfv_core::cycles::ticks(self.v.fdb_ageing);
            self.arp_table.retain(|_, (_, seen)| now.wrapping_sub(*seen) < ageing);
        }
        let from_underlay = ingress == self.v.underlay;
        let local_bd = self.v.port_domain.get(ingress as usize).copied().flatten();
        if !from_underlay && local_bd.is_none() {
            return;
        }
        for mut p in batch.iter_mut() {
            let bd = if from_underlay {
                match self.decap(&mut p, now) {
                    Ok(Some(bd)) => bd,
                    Ok(None) => continue,
                    Err(r) => {
                        p.drop_with(r);
                        continue;
                    }
                }
            } else {
                let bd = local_bd.expect("checked above");
                if p.len() < 14 {
                    continue;
                }
                // A frame to the bridge port's own MAC is for this box's
                // L3 (an address of the port), not for the bridge: a
                // bridge forwards no frame addressed to itself.
                if self.own_macs.get(ingress as usize).is_some_and(|m| p.data()[..6] == m[..]) {
                    continue;
                }
                if self.v.learn {
                    let smac: [u8; 6] = p.data()[6..12].try_into().unwrap();
                    self.learn(self.v.domains[bd].vni, smac, Dest::Local(ingress), now);
                }
                bd
            };
            let vni = self.v.domains[bd].vni;
            let port = (!from_underlay).then_some(ingress);
            if self.v.arp_suppression && p.meta().ethertype == ethertype::ARP && self.arp(&mut p, vni, port, now) {
                continue;
            }
            let t = match self.targets_for(&p, bd, port, now) {
                Ok(Some(t)) if self.fdb.offload().is_some() => {
                    let macs: ([u8; 6], [u8; 6]) =
                        (p.data()[..6].try_into().unwrap(), p.data()[6..12].try_into().unwrap());
                    let len = p.len();
                    self.deliver(&mut p, t, vni, ctx);
                    self.offer(&p, t, vni, port, macs, len);
                    continue;
                }
                Ok(Some(t)) => t,
                Ok(None) => {
                    // Copies that cannot be made are counted; the original
                    // still goes to the first target.
                    if self.targets.len() > 1 && self.replicate(&p, vni, ctx).is_err() {
                        self.stats.replicas_refused += 1;
                    }
                    self.targets[0]
                }
                Err(r) => {
                    p.drop_with(r);
                    continue;
                }
            };
            self.deliver(&mut p, t, vni, ctx);
        }
        if self.replicas.is_empty() {
            return;
        }
        let start = batch.len();
        let mut targets = std::mem::take(&mut self.replica_targets);
        for (copy, t, vni) in self.replicas.drain(..) {
            batch.push(copy);
            targets.push((t, vni));
        }
        for (mut p, &(t, vni)) in batch.iter_mut().skip(start).zip(targets.iter()) {
            self.deliver(&mut p, t, vni, ctx);
        }
        targets.clear();
        self.replica_targets = targets;
    }

    fn tick(&mut self, _batch: &mut Batch, ctx: &mut StageCtx<'_>) {
        if self.fdb.offload().is_none() {
            return;
        }
        // With known unicast in XDP the workers may see none of it: the
        // program's activity keeps entries alive, ageing runs here too,
        // and a changed neighbour table takes the remote entries back.
        let now = ctx.now_ticks;
        // New static entries replace the old ones (and their copies in
        // XDP) now, not at the next packet the workers see.
        if self.statics.refresh() {
            self.take_statics();
        }
        for _ in 0..TOUCHES_PER_TICK {
            let Some(nfv_core::offload::Key::L2(k)) = self.fdb.offload_mut().and_then(|o| o.touched()) else { break };
            self.fdb.touch(k.vni, &k.mac, now);
        }
        if ctx.adjacency.version() != self.offload_adj {
            self.offload_adj = ctx.adjacency.version();
            self.fdb.withdraw_remotes();
        }
        if now.wrapping_sub(self.last_sweep) > self.second {
            self.last_sweep = now;
            self.fdb.expire(now);
        }
    }

    fn take_offload(&mut self, mut o: nfv_core::offload::Offloader) -> bool {
        let IpAddr::V4(local) = self.v.local_ip else { return false };
        if self.v.tunnel != crate::wire::Tunnel::Vxlan {
            return false;
        }
        let v = &self.v;
        let conf =
            nfv_core::offload::VtepConf::new(local.into(), self.underlay_mac, v.udp_port, v.src_ports, v.mtu, v.ttl);
        let ports = v.domains.iter().flat_map(|d| d.ports.iter().map(|&p| (p, d.vni))).collect();
        if !o.set_vtep(nfv_core::offload::Vtep { conf, underlay: v.underlay, ports }) {
            return false;
        }
        self.fdb.set_offload(o);
        true
    }

    fn tables(&self) -> &'static [&'static str] {
        &["fdb", "arp-suppression"]
    }

    fn sample(&self, out: &mut [nfv_core::Occupancy]) {
        let bound = self.v.fdb_size as u64;
        out[0] = nfv_core::Occupancy { entries: self.fdb.len() as u64, capacity: bound };
        let arp = if self.v.arp_suppression { bound } else { 0 };
        out[1] = nfv_core::Occupancy { entries: self.arp_table.len() as u64, capacity: arp };
    }

    fn report(&self) -> Option<String> {
        self.render_report()
    }
}
