//! `sff` and `nsh-return`: the service function forwarder (RFC 7665
//! 2.2, RFC 8300 4) and the return of its proxy (RFC 7665 4.6).
//!
//! An NSH packet (over Ethernet or VXLAN-GPE, [`crate::transport`]) is forwarded by its (SPI, SI): its TTL
//! decremented first, once per forwarder, and the packet dropped at 0
//! (RFC 8300 2.2), dropped at SI 0 (2.3); to the next forwarder (its outer Ethernet addresses
//! written by the adjacency: resolved by ARP on the forwarder's ports),
//! to a function of this instance, or out of the path (the inner packet
//! goes on). A function here is NSH-unaware: the forwarder takes the
//! outer Ethernet and NSH headers off and keeps them in the headroom,
//! with a 3-octet mark (magic, L3 offset, NSH length in words) between
//! them and the inner frame; `nsh-return`, at the end of the function's
//! chain, finds the mark, puts the headers back, decrements the SI on the
//! function's behalf (RFC 8300 2.3) and forwards. A function that writes
//! into the headroom (an encapsulating one) destroys the mark: its
//! packets are dropped as `proxy-header-lost`, never sent with a wrong
//! header.

use std::net::IpAddr;
use std::sync::Arc;

use nfv_core::adjacency::{Adjacency, Derived};
use nfv_core::config::{Diagnostic, Params};
use nfv_core::live::{Apply, Live, fixed, same};
use nfv_core::packet::flags;
use nfv_core::published::{Published, Snapshot};
use nfv_core::{Batch, BuildCtx, BuildEnv, ChainId, PacketMut, PortId, Stage, StageBuilder, StageCtx, StageFactory};
use nfv_net::wire::EthernetFrame;
use nfv_net::wire::nsh::{self, NshPacket};
use serde::Deserialize;
use toml::Spanned;

use crate::paths::{self, Hop, PathParams, PathTable};
use crate::transport::Transport;

nfv_core::drop_reasons! {
    /// Why a forwarder dropped a packet.
    pub enum SffDrop {
        Malformed => "malformed-nsh",
        TtlExpired => "nsh-ttl-expired",
        SiZero => "si-zero",
        NoPath => "no-path",
        ProxyUnsupported => "proxy-not-ethernet",
        ProxyHeaderLost => "proxy-header-lost",
        LocalAfterReturn => "local-after-return",
    }
}

/// The mark between kept headers and the inner frame.
const MARK: u8 = 0x4e;
/// Its length.
const MARK_LEN: usize = 3;

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct SffParams {
    ports: Vec<String>,
    #[serde(default)]
    transport: Transport,
    #[serde(default)]
    local_ip: Option<std::net::Ipv4Addr>,
    #[serde(default)]
    paths: Vec<Spanned<PathParams>>,
    #[serde(default)]
    paths_file: Option<String>,
}

/// What the forwarder's instances and its return share.
pub struct SffShared {
    /// Ports the next forwarders are on.
    ports: Vec<PortId>,
    transport: Transport,
    /// Our VXLAN-GPE address.
    local: [u8; 4],
    /// The path table, replaced by a reload (the paths file changed).
    table: Arc<Published<PathTable>>,
    file: Option<String>,
    /// The chains the paths name (all a file may name later).
    chains: Vec<(String, ChainId)>,
}

/// Registers `sff`.
pub struct SffFactory;

impl StageFactory for SffFactory {
    fn kind(&self) -> &'static str {
        "sff"
    }

    fn summary(&self) -> &'static str {
        "service function forwarder: NSH packets by (SPI, SI) to the next forwarder, a local function (proxied) or out of the path"
    }

    fn configure(&self, params: &Params<'_>, env: &BuildEnv<'_>) -> Result<Arc<dyn StageBuilder>, Vec<Diagnostic>> {
        let p: SffParams = params.parse().map_err(|e| vec![e])?;
        let mut errors = Vec::new();
        let mut ports = Vec::new();
        for name in &p.ports {
            match env.port_id(name) {
                Some(id) => ports.push(id),
                None => errors.push(
                    params
                        .error("ports", format!("unknown port `{name}`"), "no such port")
                        .help(format!("known ports: {}", env.ports.join(", "))),
                ),
            }
        }
        if p.transport == Transport::VxlanGpe && p.local_ip.is_none() {
            errors.push(
                params
                    .error("transport", "VXLAN-GPE needs local-ip", "no address")
                    .help("local-ip = \"192.168.100.1\": an address of one of `ports`"),
            );
        }
        if p.ports.is_empty() {
            errors.push(
                params.error("ports", "no ports", "the forwarder's next hops are on these").help("ports = [\"d1\"]"),
            );
        }
        let chain = |name: &str| {
            env.chain_id(name).ok_or_else(|| format!("unknown chain `{name}`; known chains: {}", env.chains.join(", ")))
        };
        let inline: Vec<PathParams> = p.paths.iter().map(|s| s.get_ref().clone()).collect();
        let table = match paths::build(&inline, &chain) {
            Ok(t) => Some(t),
            Err(es) => {
                for (i, message) in es {
                    errors.push(Diagnostic::new(p.paths[i].span(), message, "in this path").help(paths::PATH_HELP));
                }
                None
            }
        };
        let file = p.paths_file.as_deref().map(|f| env.path(f));
        let from_file = match &file {
            None => Some(PathTable::default()),
            Some(f) => match std::fs::read_to_string(f)
                .map_err(|e| {
                    vec![nfv_core::filewatch::FileError {
                        line: 0,
                        column: 0,
                        message: format!("cannot read `{f}`: {e}"),
                        help: String::new(),
                    }]
                })
                .and_then(|text| paths::read_file(&text, &chain))
            {
                Ok(t) => Some(t),
                Err(es) => {
                    for e in es {
                        errors.push(params.error("paths-file", e.located(f), "in this file").help(paths::PATH_HELP));
                    }
                    None
                }
            },
        };
        let (Some(table), Some(from_file)) = (table, from_file) else { return Err(errors) };
        let table = match paths::merge(table, from_file) {
            Ok(t) => t,
            Err(e) => {
                errors.push(params.error("paths-file", e, "with the inline paths"));
                return Err(errors);
            }
        };
        if table.is_empty() {
            errors.push(params.error("paths", "no paths", "nothing to forward by").help(paths::PATH_HELP));
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        let chains = table.chains().into_iter().map(|c| (env.chains[c as usize].clone(), c)).collect();
        if p.transport == Transport::VxlanGpe && table.remotes().iter().any(|r| r.is_ipv6()) {
            errors.push(params.error("paths", "VXLAN-GPE next hops are IPv4 here", "an IPv6 next hop"));
            return Err(errors);
        }
        let local = p.local_ip.map_or([0; 4], |a| a.octets());
        let shared = SffShared { ports, transport: p.transport, local, table: Published::new(table), file, chains };
        Ok(Arc::new(SffBuilder(Arc::new(shared))))
    }
}

/// The forwarder as configured.
pub struct SffBuilder(Arc<SffShared>);

impl StageBuilder for SffBuilder {
    fn drop_reasons(&self) -> &'static [&'static str] {
        SffDrop::NAMES
    }

    fn wanted_neighbours(&self) -> Vec<IpAddr> {
        self.0.table.load().remotes()
    }

    fn branches(&self) -> Vec<(ChainId, Option<Vec<PortId>>)> {
        self.0.chains.iter().map(|(_, c)| (*c, None)).collect()
    }

    fn build(&self, ctx: &BuildCtx<'_>) -> Box<dyn Stage> {
        Box::new(Sff { fwd: Forwarder::new(self.0.clone(), ctx) })
    }

    fn live(&self) -> Option<&dyn Live> {
        Some(self)
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

/// The paths (inline and from the paths file) change live; the ports,
/// transport and address do not, nor the chains the paths lead to (the
/// graph's edges: a reload naming another is refused as a chain change).
impl Live for SffBuilder {
    fn files(&self) -> Vec<std::path::PathBuf> {
        self.0.file.iter().map(Into::into).collect()
    }

    fn prepare(&self, next: &dyn StageBuilder, _: nfv_core::live::Written<'_>) -> Result<Option<Apply>, Vec<String>> {
        let (a, b) = (&*self.0, &*same::<SffBuilder>(next)?.0);
        let refused: Vec<String> = [
            fixed("ports", &a.ports, &b.ports),
            fixed("transport", &a.transport, &b.transport),
            fixed("local-ip", &a.local, &b.local),
        ]
        .into_iter()
        .flatten()
        .collect();
        if !refused.is_empty() {
            return Err(refused);
        }
        let old = a.table.load();
        let mut table = PathTable::clone(&b.table.load());
        table.version = old.version;
        if table == *old {
            return Ok(None);
        }
        table.version += 1;
        let live = a.table.clone();
        Ok(Some(Box::new(move || {
            let line = format!("{} paths, version {}", table.len(), table.version);
            live.publish(table);
            line
        })))
    }

    fn version(&self) -> (&'static str, u64) {
        ("paths", self.0.table.load().version)
    }

    fn summary(&self) -> String {
        let t = self.0.table.load();
        format!("{} paths, version {}", t.len(), t.version)
    }

    fn reclaim(&self) {
        self.0.table.reclaim();
    }
}

/// A next forwarder and, when resolved, its (MAC, port).
type Way = (IpAddr, Option<([u8; 6], PortId)>);

/// A worker's forwarding: the path table as of this batch, and the next
/// forwarders' Ethernet addresses as of the neighbour table's version.
struct Forwarder {
    shared: Arc<SffShared>,
    table: Snapshot<PathTable>,
    /// The table's next forwarders, written without a neighbour lookup
    /// per packet.
    ways: Derived<Vec<Way>>,
    macs: Vec<[u8; 6]>,
    reparse: bool,
}

impl Forwarder {
    fn new(shared: Arc<SffShared>, ctx: &BuildCtx<'_>) -> Self {
        Self {
            table: Snapshot::new(shared.table.clone()),
            shared,
            ways: Derived::new(Vec::new()),
            macs: ctx.port_macs.to_vec(),
            reparse: ctx.headers_read_later,
        }
    }

    /// Takes up a new path table and neighbour table, once a batch.
    #[inline]
    fn refresh(&mut self, adj: &Adjacency) {
        self.table.refresh();
        let (table, ports) = (&self.table, &self.shared.ports);
        self.ways.refresh(adj, self.table.generation(), |ways, adj| {
            ways.clear();
            for hop in table.remotes() {
                let found = ports.iter().find_map(|&p| adj.lookup(&hop, p).map(|m| (m, p)));
                ways.push((hop, found));
            }
        });
    }

    /// Sends `p` to next forwarder `hop`: by its cached MAC when resolved
    /// and nothing waits for it, else through the adjacency.
    #[inline]
    fn send(&self, p: &mut PacketMut<'_>, hop: IpAddr, ctx: &mut StageCtx<'_>) {
        let known = self.ways.get().iter().find(|w| w.0 == hop).and_then(|w| w.1);
        match known {
            Some((mac, port)) if !ctx.adjacency.waits_for(&hop) && p.len() >= 14 => {
                EthernetFrame::new_unchecked(p.data_mut()).set_addrs(mac, self.macs[port as usize]);
                p.send_to(port);
            }
            _ => ctx.adjacency.send(p, &self.shared.ports, hop),
        }
    }

    /// Forwards the NSH packet whose NSH header is at `at`; `returned`:
    /// it comes back from a proxied function (it may not go to another).
    #[inline]
    fn forward(&self, p: &mut PacketMut<'_>, at: usize, ctx: &mut StageCtx<'_>, returned: bool) -> Result<(), SffDrop> {
        let d = p.data_mut();
        let mut h =
            NshPacket::new_checked(d.get_mut(at..).ok_or(SffDrop::Malformed)?).map_err(|_| SffDrop::Malformed)?;
        let f = h.header();
        // RFC 8300 2.2: each forwarder decrements the TTL before its lookup
        // (0 becomes 63) and forwards nothing at 0; a packet back from a
        // function here is still at this forwarder.
        if !returned {
            let ttl = if f.ttl == 0 { 63 } else { f.ttl - 1 };
            if ttl == 0 {
                return Err(SffDrop::TtlExpired);
            }
            h.set_ttl(ttl);
        }
        let (spi, si, len, next) = (f.spi, f.si, f.len, f.next_protocol);
        // RFC 8300 2.3: SI 0 is the end of every path.
        if si == 0 {
            return Err(SffDrop::SiZero);
        }
        match self.table.get(spi, si).ok_or(SffDrop::NoPath)? {
            Hop::Remote(hop) => {
                if self.shared.transport == Transport::VxlanGpe
                    && let IpAddr::V4(dst) = hop
                {
                    self.shared.transport.address(p, self.shared.local, dst.octets());
                }
                self.send(p, hop, ctx)
            }
            Hop::Local(_) if returned => return Err(SffDrop::LocalAfterReturn),
            Hop::Local(chain) => {
                if next != nsh::next::ETHERNET {
                    return Err(SffDrop::ProxyUnsupported);
                }
                self.proxy(p, at, len)?;
                p.goto(chain);
            }
            Hop::End(chain) => {
                self.end(p, at + len, next)?;
                if let Some(c) = chain {
                    p.goto(c);
                }
            }
        }
        Ok(())
    }

    /// Takes the outer Ethernet and NSH headers (`at + len` octets) off
    /// for a function that does not know NSH, keeping them in the
    /// headroom behind the mark.
    fn proxy(&self, p: &mut PacketMut<'_>, at: usize, len: usize) -> Result<(), SffDrop> {
        let total = at + len;
        if at > u8::MAX as usize || p.len() < total + 14 {
            return Err(SffDrop::ProxyUnsupported);
        }
        let d = p.push_front(MARK_LEN).map_err(|_| SffDrop::ProxyUnsupported)?;
        d.copy_within(MARK_LEN..MARK_LEN + total, 0);
        d[total..total + MARK_LEN].copy_from_slice(&[MARK, at as u8, (len / 4) as u8]);
        p.pull_front(total + MARK_LEN).map_err(|_| SffDrop::Malformed)?;
        p.reparse().map_err(|_| SffDrop::Malformed)?;
        p.meta_mut().flags |= flags::NSH_PROXIED;
        Ok(())
    }

    /// The path ends: the packet after the NSH header (at `inner`) goes on
    /// as an Ethernet frame (an IP packet keeps the outer Ethernet
    /// addresses and gets its EtherType).
    fn end(&self, p: &mut PacketMut<'_>, inner: usize, next: u8) -> Result<(), SffDrop> {
        let et = match next {
            nsh::next::ETHERNET => None,
            nsh::next::IPV4 => Some(nfv_net::wire::ethertype::IPV4),
            nsh::next::IPV6 => Some(nfv_net::wire::ethertype::IPV6),
            _ => return Err(SffDrop::ProxyUnsupported),
        };
        match et {
            None => p.pull_front(inner).map_err(|_| SffDrop::Malformed)?,
            Some(et) => {
                let macs: [u8; 12] = p.data()[..12].try_into().map_err(|_| SffDrop::Malformed)?;
                p.pull_front(inner - 14).map_err(|_| SffDrop::Malformed)?;
                let d = p.data_mut();
                d[..12].copy_from_slice(&macs);
                d[12..14].copy_from_slice(&et.to_be_bytes());
            }
        }
        if self.reparse {
            p.reparse().map_err(|_| SffDrop::Malformed)?;
        }
        Ok(())
    }
}

/// A worker's forwarder.
pub struct Sff {
    fwd: Forwarder,
}

impl Stage for Sff {
    fn process(&mut self, batch: &mut Batch, ctx: &mut StageCtx<'_>) {
        self.fwd.refresh(ctx.adjacency);
        let (transport, local) = (self.fwd.shared.transport, self.fwd.shared.local);
        for mut p in batch.iter_mut() {
            let Some(at) = transport.nsh_at(&p, local) else { continue };
            if let Err(r) = self.fwd.forward(&mut p, at, ctx, false) {
                p.drop_with(r);
            }
        }
    }

    fn report(&self) -> Option<String> {
        let t = &self.fwd.table;
        Some(format!("  paths {} (version {})\n", t.len(), t.version))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReturnParams {
    sff: String,
}

/// Registers `nsh-return`.
pub struct ReturnFactory;

impl StageFactory for ReturnFactory {
    fn kind(&self) -> &'static str {
        "nsh-return"
    }

    fn summary(&self) -> &'static str {
        "end of a proxied function's chain: NSH put back, SI decremented, forwarded by the named sff's paths"
    }

    fn configure(&self, params: &Params<'_>, env: &BuildEnv<'_>) -> Result<Arc<dyn StageBuilder>, Vec<Diagnostic>> {
        let p: ReturnParams = params.parse().map_err(|e| vec![e])?;
        let sff = env.stage(&p.sff).and_then(|b| b.as_any().downcast_ref::<SffBuilder>()).ok_or_else(|| {
            vec![
                params
                    .error("sff", format!("no `sff` stage named `{}` above", p.sff), "unknown forwarder")
                    .help("define the forwarder first ({ kind = \"sff\", name = \"sff\", ... }) and name it here"),
            ]
        })?;
        Ok(Arc::new(ReturnBuilder(sff.0.clone())))
    }
}

struct ReturnBuilder(Arc<SffShared>);

impl StageBuilder for ReturnBuilder {
    fn drop_reasons(&self) -> &'static [&'static str] {
        SffDrop::NAMES
    }

    fn reads_headers(&self) -> bool {
        false
    }

    fn build(&self, ctx: &BuildCtx<'_>) -> Box<dyn Stage> {
        Box::new(Return { fwd: Forwarder::new(self.0.clone(), ctx) })
    }
}

/// A worker's proxy return.
pub struct Return {
    fwd: Forwarder,
}

impl Return {
    /// Puts the kept headers back in front of the frame; returns where the
    /// NSH header is. The packet is parsed again only for a later stage
    /// that reads headers (forwarding reads the NSH header at its offset).
    fn restore(p: &mut PacketMut<'_>, reparse: bool) -> Result<usize, SffDrop> {
        let lost = SffDrop::ProxyHeaderLost;
        let d = p.push_front(MARK_LEN).map_err(|_| lost)?;
        let [mark, at, words] = [d[0], d[1], d[2]];
        let (at, len) = (at as usize, words as usize * 4);
        if mark != MARK || len < nsh::BASE_LEN {
            return Err(lost);
        }
        let total = at + len;
        let d = p.push_front(total).map_err(|_| lost)?;
        d.copy_within(0..total, MARK_LEN);
        p.pull_front(MARK_LEN).map_err(|_| lost)?;
        let d = p.data_mut();
        let mut h = NshPacket::new_checked(&mut d[at..]).map_err(|_| lost)?;
        if h.header_len() != len {
            return Err(lost);
        }
        // RFC 8300 2.3: the function (here its proxy) decrements the SI.
        h.set_si(h.si().saturating_sub(1));
        p.meta_mut().flags &= !flags::NSH_PROXIED;
        if reparse {
            p.reparse().map_err(|_| lost)?;
        }
        Ok(at)
    }
}

impl Stage for Return {
    fn process(&mut self, batch: &mut Batch, ctx: &mut StageCtx<'_>) {
        self.fwd.refresh(ctx.adjacency);
        for mut p in batch.iter_mut() {
            if p.meta().flags & flags::NSH_PROXIED == 0 {
                continue;
            }
            let r = Self::restore(&mut p, self.fwd.reparse).and_then(|at| self.fwd.forward(&mut p, at, ctx, true));
            if let Err(r) = r {
                p.drop_with(r);
            }
        }
    }
}
