//! One worker's NAT state: mappings and sessions, bounded, with no
//! allocation after creation.
//!
//! A *mapping* binds an inside endpoint (protocol, address, port) to an
//! outside one. Mappings are endpoint-independent (RFC 4787 REQ-1, RFC 5382
//! REQ-1): every session of an inside endpoint, whatever its remote, uses
//! the same outside address and port, and an inside address always gets
//! the same pool address ("paired", REQ-2). A dynamic mapping lives while
//! it has sessions; static ones (port forwards) always.
//!
//! A *session* is a mapping plus one remote endpoint: it holds the idle
//! timer and, for TCP, the state that picks the timeout (RFC 7857 section
//! 2: transitory until both sides have sent SYN, established, transitory
//! again after FIN both ways or a RST). Each timeout class has its own
//! list in order of last activity, so the head of each list is the next to
//! expire and expiry costs nothing per session; a session moves to its
//! list's tail at most once a second (the clock's grain), which keeps the
//! hit path from touching neighbours' cache lines on every packet.
//!
//! Sessions are found from either side through two [`FlowIndex`]es: by
//! (protocol, inside address, inside port, remote address, remote port)
//! for packets going out, by the same with the outside address and port
//! for packets coming in. ICMP query sessions use the echo identifier as
//! the port and 0 as the remote port.

use nfv_net::flowindex::FlowIndex;
use nfv_net::mem::prefetch;
use nfv_net::portmap::PortMap;

mod forwards;
mod made;
mod offload;
mod tcp;

pub use made::{Refusal, TableConfig, TableStats};

use tcp::{SYN_IN, SYN_OUT, TCP_FIN, TCP_RST, TCP_SYN, tcp_bits, tcp_class};

/// No session / mapping / list link.
pub const NONE: u32 = u32::MAX;

/// Protocols with sessions.
pub mod proto {
    /// ICMP (queries: echo, by identifier).
    pub const ICMP: u8 = 1;
    /// TCP.
    pub const TCP: u8 = 6;
    /// UDP.
    pub const UDP: u8 = 17;
}

/// A port forward (a static mapping): protocol, inside address, inside
/// port, outside address, outside port (host order).
pub type Forward = (u8, u32, u16, u32, u16);

/// Most port forwards a NAT holds (the mapping table keeps room for them
/// beside the dynamic ones).
pub const MAX_FORWARDS: usize = 4096;

/// Index of a protocol's port maps.
fn proto_slot(p: u8) -> usize {
    match p {
        proto::TCP => 0,
        proto::UDP => 1,
        _ => 2,
    }
}

/// Timeout classes; each has its own activity-ordered list.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(u8)]
pub enum Class {
    /// UDP.
    Udp = 0,
    /// TCP opening or closing.
    TcpTransitory = 1,
    /// TCP with SYNs seen both ways and not closing.
    TcpEstablished = 2,
    /// ICMP queries.
    Icmp = 3,
}

const CLASSES: usize = 4;

impl Class {
    fn name(self) -> &'static str {
        match self {
            Class::Udp => "udp",
            Class::TcpTransitory => "tcp-transitory",
            Class::TcpEstablished => "tcp-established",
            Class::Icmp => "icmp",
        }
    }
}

/// Idle timeouts, seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// UDP: RFC 4787 REQ-5 asks for at least 120 s, recommends 300 s.
    pub udp: u32,
    /// TCP established: RFC 5382 REQ-5, at least 2 h 4 min (7440 s).
    pub tcp_established: u32,
    /// TCP opening or closing: RFC 5382 REQ-5, 4 min (240 s).
    pub tcp_transitory: u32,
    /// ICMP query: RFC 5508 REQ-1, at least 60 s.
    pub icmp: u32,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self { udp: 300, tcp_established: 7440, tcp_transitory: 240, icmp: 60 }
    }
}

/// What to do with a new session when the table is full.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum WhenFull {
    /// Remove the least recently active session (after the expired ones).
    EvictOldest,
    /// Refuse the new flow (its packet is dropped and counted).
    Refuse,
}

/// Whether a remote may send to a mapping without a session to it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Filtering {
    /// Anyone may (RFC 4787 section 5, endpoint-independent filtering).
    EndpointIndependent,
    /// Only an address the inside endpoint has sent to (address-dependent
    /// filtering, RFC 4787 REQ-8's recommendation when transparency is not
    /// the goal).
    AddressDependent,
}

/// A packet's flow as one side of the NAT sees it: the local endpoint
/// (inside address and port going out, outside address and port coming
/// in) and the remote one. ICMP queries: the echo identifier as the local
/// port, remote port 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tuple {
    /// Protocol.
    pub proto: u8,
    /// Local address.
    pub addr: u32,
    /// Local port.
    pub port: u16,
    /// Remote address.
    pub rem_addr: u32,
    /// Remote port.
    pub rem_port: u16,
}

/// One session: one cache line (aligned), so a lookup that reaches it
/// misses once at most.
#[derive(Clone, Copy, Debug)]
#[repr(C, align(64))]
pub struct Session {
    /// Protocol.
    pub proto: u8,
    class: Class,
    tcp: u8,
    /// Inside address (host order).
    pub in_addr: u32,
    /// Outside (pool) address.
    pub out_addr: u32,
    /// Remote address.
    pub rem_addr: u32,
    /// Inside port or echo identifier.
    pub in_port: u16,
    /// Outside port or identifier.
    pub out_port: u16,
    /// Remote port (0 for ICMP).
    pub rem_port: u16,
    /// Last activity, seconds.
    pub last_seen: u32,
    /// The inside host's MAC and port, from its last packet out: the way
    /// back to it without a neighbour lookup (zero when unknown: a session
    /// opened from outside).
    pub host_mac: [u8; 6],
    /// Inside port the host was seen on.
    pub host_port: u16,
    /// Directions installed in the XDP engine ([`offload`]).
    offloaded: u8,
    prev: u32,
    next: u32,
    mapping: u32,
    map_prev: u32,
    map_next: u32,
}

/// One mapping.
#[derive(Clone, Copy, Debug)]
pub struct Mapping {
    /// Protocol.
    pub proto: u8,
    /// Static (a port forward): never removed, open to any remote.
    pub fixed: bool,
    /// Inside address.
    pub in_addr: u32,
    /// Outside address.
    pub out_addr: u32,
    /// Inside port.
    pub in_port: u16,
    /// Outside port.
    pub out_port: u16,
    sessions: u32,
    first: u32,
}

/// One worker's mappings and sessions.
pub struct NatTable {
    sessions: Vec<Session>,
    free_session: u32,
    len: usize,
    max: usize,
    by_inside: FlowIndex,
    by_outside: FlowIndex,
    mappings: Vec<Mapping>,
    free_mapping: u32,
    mapping_by_inside: FlowIndex,
    mapping_by_outside: FlowIndex,
    /// (head, tail) of each class's list, least recently active first.
    lists: [(u32, u32); CLASSES],
    timeouts: [u32; CLASSES],
    when_full: WhenFull,
    pool: Vec<u32>,
    ports: Vec<[PortMap; 3]>,
    seed: u64,
    /// Counters.
    pub stats: TableStats,
    /// The XDP engine's flows, when the plan placed them there.
    offload: Option<nfv_core::offload::Offloader>,
}

/// Domains of the four indexes, mixed into their hashes.
const D_IN: u64 = 0x1;
const D_OUT: u64 = 0x2;
const D_MAP_IN: u64 = 0x3;
const D_MAP_OUT: u64 = 0x4;

impl NatTable {
    /// A table with everything allocated up front (see [`Self::bytes`]).
    pub fn new(cfg: &TableConfig) -> Self {
        let max = cfg.max_sessions.max(1);
        let maps = max + MAX_FORWARDS;
        let empty_session = Session {
            proto: 0,
            class: Class::Udp,
            tcp: 0,
            in_addr: 0,
            out_addr: 0,
            rem_addr: 0,
            in_port: 0,
            out_port: 0,
            rem_port: 0,
            last_seen: 0,
            host_mac: [0; 6],
            host_port: 0,
            offloaded: 0,
            prev: NONE,
            next: NONE,
            mapping: NONE,
            map_prev: NONE,
            map_next: NONE,
        };
        let mut sessions = nfv_net::mem::huge_vec(max, empty_session);
        for (i, s) in sessions.iter_mut().enumerate() {
            s.next = if i + 1 < max { i as u32 + 1 } else { NONE };
        }
        let empty_mapping = Mapping {
            proto: 0,
            fixed: false,
            in_addr: 0,
            out_addr: 0,
            in_port: 0,
            out_port: 0,
            sessions: 0,
            first: NONE,
        };
        let mut mappings = nfv_net::mem::huge_vec(maps, empty_mapping);
        for (i, m) in mappings.iter_mut().enumerate() {
            m.first = if i + 1 < maps { i as u32 + 1 } else { NONE };
        }
        let (lo, hi) = cfg.port_range;
        // ICMP identifiers are not ports: the whole 16-bit space (but 0),
        // so that most echo identifiers pass unchanged.
        let ports = cfg
            .pool
            .iter()
            .map(|_| {
                std::array::from_fn(|slot| {
                    let (lo, hi) = if slot == proto_slot(proto::ICMP) { (1, u16::MAX) } else { (lo, hi) };
                    PortMap::new(lo, hi, cfg.worker, cfg.workers)
                })
            })
            .collect();
        let t = cfg.timeouts;
        let mut table = Self {
            sessions,
            free_session: 0,
            len: 0,
            max,
            by_inside: FlowIndex::with_capacity(max),
            by_outside: FlowIndex::with_capacity(max),
            mappings,
            free_mapping: 0,
            mapping_by_inside: FlowIndex::with_capacity(maps),
            mapping_by_outside: FlowIndex::with_capacity(maps),
            lists: [(NONE, NONE); CLASSES],
            timeouts: [t.udp, t.tcp_transitory, t.tcp_established, t.icmp],
            when_full: cfg.when_full,
            pool: cfg.pool.clone(),
            ports,
            seed: cfg.seed,
            stats: TableStats::default(),
            offload: None,
        };
        for &f in &cfg.forwards {
            table.add_forward(f);
        }
        table
    }

    /// Sessions held.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when no session is held.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Most sessions held.
    pub fn capacity(&self) -> usize {
        self.max
    }

    /// Bytes allocated (fixed at creation).
    pub fn bytes(&self) -> usize {
        self.sessions.len() * size_of::<Session>()
            + self.mappings.len() * size_of::<Mapping>()
            + self.by_inside.bytes()
            + self.by_outside.bytes()
            + self.mapping_by_inside.bytes()
            + self.mapping_by_outside.bytes()
            + self.ports.len() * 3 * 8192
    }

    #[inline(always)]
    fn hash(&self, domain: u64, p: u8, a: u32, ap: u16, b: u32, bp: u16) -> u64 {
        // Two multiply-xorshift rounds over the 13 key bytes and the seed.
        let x = ((a as u64) << 32 | b as u64) ^ self.seed;
        let y = (ap as u64) << 40 | (bp as u64) << 24 | (p as u64) << 8 | domain;
        let mut h = (x ^ y.rotate_left(17)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        h ^= h >> 29;
        h = (h ^ y).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        h ^ (h >> 32)
    }

    /// Hash of a packet going out (`t` from the inside), for
    /// [`Self::prefetch_inside`] and [`Self::find_inside_hashed`].
    #[inline(always)]
    pub fn inside_hash(&self, t: &Tuple) -> u64 {
        self.hash(D_IN, t.proto, t.addr, t.port, t.rem_addr, t.rem_port)
    }

    /// Hash of a packet coming in (`t` from the outside).
    #[inline(always)]
    pub fn outside_hash(&self, t: &Tuple) -> u64 {
        self.hash(D_OUT, t.proto, t.addr, t.port, t.rem_addr, t.rem_port)
    }

    /// Starts loading the index line for an outgoing packet's hash.
    #[inline(always)]
    pub fn prefetch_inside(&self, hash: u64) {
        self.by_inside.prefetch(hash);
    }

    /// Starts loading the index line for an incoming packet's hash.
    #[inline(always)]
    pub fn prefetch_outside(&self, hash: u64) {
        self.by_outside.prefetch(hash);
    }

    /// Starts loading the session an outgoing packet's hash most likely
    /// names (call once its index line is in: after [`Self::prefetch_inside`]).
    #[inline(always)]
    pub fn prefetch_session_inside(&self, hash: u64) {
        if let Some(i) = self.by_inside.candidate(hash) {
            prefetch(&self.sessions[i as usize]);
        }
    }

    /// [`Self::prefetch_session_inside`] for an incoming packet.
    #[inline(always)]
    pub fn prefetch_session_outside(&self, hash: u64) {
        if let Some(i) = self.by_outside.candidate(hash) {
            prefetch(&self.sessions[i as usize]);
        }
    }

    /// The session of a packet going out.
    #[inline]
    pub fn find_inside(&self, t: &Tuple) -> Option<u32> {
        self.find_inside_hashed(self.inside_hash(t), t)
    }

    /// [`Self::find_inside`] with the hash already computed.
    #[inline]
    pub fn find_inside_hashed(&self, hash: u64, t: &Tuple) -> Option<u32> {
        self.by_inside.find(hash, |i| {
            let s = &self.sessions[i as usize];
            s.in_addr == t.addr
                && s.rem_addr == t.rem_addr
                && s.in_port == t.port
                && s.rem_port == t.rem_port
                && s.proto == t.proto
        })
    }

    /// The session of a packet coming in.
    #[inline]
    pub fn find_outside(&self, t: &Tuple) -> Option<u32> {
        self.find_outside_hashed(self.outside_hash(t), t)
    }

    /// [`Self::find_outside`] with the hash already computed.
    #[inline]
    pub fn find_outside_hashed(&self, hash: u64, t: &Tuple) -> Option<u32> {
        self.by_outside.find(hash, |i| {
            let s = &self.sessions[i as usize];
            s.out_addr == t.addr
                && s.rem_addr == t.rem_addr
                && s.out_port == t.port
                && s.rem_port == t.rem_port
                && s.proto == t.proto
        })
    }

    /// The mapping at an outside endpoint (dynamic or a port forward).
    pub fn find_mapping_outside(&self, p: u8, out_addr: u32, out_port: u16) -> Option<u32> {
        let h = self.hash(D_MAP_OUT, p, out_addr, out_port, 0, 0);
        self.mapping_by_outside.find(h, |i| {
            let m = &self.mappings[i as usize];
            m.out_addr == out_addr && m.out_port == out_port && m.proto == p
        })
    }

    fn find_mapping_inside(&self, p: u8, in_addr: u32, in_port: u16) -> Option<u32> {
        let h = self.hash(D_MAP_IN, p, in_addr, in_port, 0, 0);
        self.mapping_by_inside.find(h, |i| {
            let m = &self.mappings[i as usize];
            m.in_addr == in_addr && m.in_port == in_port && m.proto == p
        })
    }

    /// A session by number.
    #[inline(always)]
    pub fn session(&self, id: u32) -> &Session {
        &self.sessions[id as usize]
    }

    /// A mapping by number.
    pub fn mapping(&self, id: u32) -> &Mapping {
        &self.mappings[id as usize]
    }

    /// Remembers where the inside host of session `id` is (from a packet
    /// it sent).
    #[inline(always)]
    pub fn set_host(&mut self, id: u32, mac: [u8; 6], port: u16) {
        let s = &mut self.sessions[id as usize];
        if s.host_mac != mac || s.host_port != port {
            (s.host_mac, s.host_port) = (mac, port);
            if s.offloaded & offload::INBOUND != 0 {
                self.withdraw(id, offload::INBOUND);
            }
        }
    }

    /// Records a packet of session `id` at `now` (seconds): its idle timer
    /// restarts and TCP flags move its state. `outbound`: the packet goes
    /// from inside to outside. Most packets change nothing that needs
    /// work (same second, no state-changing flag): that test is inlined.
    #[inline(always)]
    pub fn refresh(&mut self, id: u32, now: u32, tcp_flags: u8, outbound: bool) {
        let s = &self.sessions[id as usize];
        const STATE_FLAGS: u8 = TCP_SYN | TCP_FIN | TCP_RST;
        if s.last_seen == now && (s.proto != proto::TCP || tcp_flags & STATE_FLAGS == 0) {
            return;
        }
        self.refresh_slow(id, now, tcp_flags, outbound);
    }

    #[inline(never)]
    fn refresh_slow(&mut self, id: u32, now: u32, tcp_flags: u8, outbound: bool) {
        let s = &mut self.sessions[id as usize];
        let mut class = s.class;
        if s.proto == proto::TCP {
            let before = s.tcp;
            s.tcp = tcp_bits(s.tcp, tcp_flags, outbound);
            if s.tcp != before {
                class = tcp_class(s.tcp);
            }
        }
        if class != s.class && s.offloaded != 0 {
            // Closing (or opening again): the workers see every packet
            // from here on.
            self.withdraw(id, offload::BOTH);
        }
        let s = &mut self.sessions[id as usize];
        if class == s.class && s.last_seen == now {
            return;
        }
        s.last_seen = now;
        let old = s.class;
        self.unlink(id, old);
        self.sessions[id as usize].class = class;
        self.link_tail(id, class);
    }

    fn unlink(&mut self, id: u32, class: Class) {
        let (prev, next) = {
            let s = &self.sessions[id as usize];
            (s.prev, s.next)
        };
        let list = &mut self.lists[class as usize];
        if prev == NONE {
            list.0 = next;
        } else {
            self.sessions[prev as usize].next = next;
        }
        if next == NONE {
            list.1 = prev;
        } else {
            self.sessions[next as usize].prev = prev;
        }
    }

    fn link_tail(&mut self, id: u32, class: Class) {
        let tail = self.lists[class as usize].1;
        {
            let s = &mut self.sessions[id as usize];
            s.prev = tail;
            s.next = NONE;
        }
        if tail == NONE {
            self.lists[class as usize].0 = id;
        } else {
            self.sessions[tail as usize].next = id;
        }
        self.lists[class as usize].1 = id;
    }

    /// Removes up to `budget` sessions idle past their timeout at `now`;
    /// returns how many. Each list's head is its oldest, so this stops at
    /// the first live one.
    pub fn expire(&mut self, now: u32, budget: usize) -> usize {
        let mut n = 0;
        for c in 0..CLASSES {
            while n < budget {
                let head = self.lists[c].0;
                if head == NONE || self.sessions[head as usize].last_seen.saturating_add(self.timeouts[c]) > now {
                    break;
                }
                self.remove(head);
                self.stats.expired += 1;
                n += 1;
            }
        }
        n
    }

    /// Room for one more session: expired ones go first, then by policy.
    fn make_room(&mut self, now: u32) -> Result<(), Refusal> {
        if self.len < self.max {
            return Ok(());
        }
        if self.expire(now, 16) > 0 {
            return Ok(());
        }
        match self.when_full {
            WhenFull::Refuse => {
                self.stats.refused_full += 1;
                Err(Refusal::TableFull)
            }
            WhenFull::EvictOldest => {
                let oldest = (0..CLASSES)
                    .map(|c| self.lists[c].0)
                    .filter(|&h| h != NONE)
                    .min_by_key(|&h| self.sessions[h as usize].last_seen)
                    .expect("a full table has sessions");
                self.remove(oldest);
                self.stats.evicted += 1;
                Ok(())
            }
        }
    }

    fn add_mapping(&mut self, p: u8, in_addr: u32, in_port: u16, out_addr: u32, out_port: u16, fixed: bool) -> u32 {
        let id = self.free_mapping;
        assert!(id != NONE, "mappings are bounded by sessions plus MAX_FORWARDS");
        self.free_mapping = self.mappings[id as usize].first;
        self.mappings[id as usize] =
            Mapping { proto: p, fixed, in_addr, out_addr, in_port, out_port, sessions: 0, first: NONE };
        let hi = self.hash(D_MAP_IN, p, in_addr, in_port, 0, 0);
        let ho = self.hash(D_MAP_OUT, p, out_addr, out_port, 0, 0);
        self.mapping_by_inside.insert(hi, id);
        self.mapping_by_outside.insert(ho, id);
        id
    }

    fn remove_mapping(&mut self, id: u32) {
        let m = self.mappings[id as usize];
        let hi = self.hash(D_MAP_IN, m.proto, m.in_addr, m.in_port, 0, 0);
        let ho = self.hash(D_MAP_OUT, m.proto, m.out_addr, m.out_port, 0, 0);
        self.mapping_by_inside.remove(hi, id);
        self.mapping_by_outside.remove(ho, id);
        // A forward's port is this worker's only when its share holds it.
        if let Some(i) = self.pool.iter().position(|&a| a == m.out_addr)
            && self.ports[i][proto_slot(m.proto)].owns(m.out_port)
        {
            self.ports[i][proto_slot(m.proto)].release(m.out_port);
        }
        self.mappings[id as usize].first = self.free_mapping;
        self.free_mapping = id;
    }

    /// A session for a packet going out from an inside endpoint that has
    /// none to this remote: through the endpoint's mapping, made if needed
    /// (pool address paired with the inside address, port preserved or
    /// of the same parity).
    pub fn open_outbound(&mut self, t: &Tuple, now: u32) -> Result<u32, Refusal> {
        let (p, in_addr, in_port) = (t.proto, t.addr, t.port);
        self.make_room(now)?;
        let mapping = match self.find_mapping_inside(p, in_addr, in_port) {
            Some(m) => m,
            None => {
                // Paired pooling (RFC 4787 REQ-2): one pool address per
                // inside address, chosen by a hash of it.
                let at = (self.hash(0, 0, in_addr, 0, 0, 0) % self.pool.len().max(1) as u64) as usize;
                let Some(map) = self.ports.get_mut(at) else { return Err(Refusal::PortsExhausted) };
                let Some(out_port) = map[proto_slot(p)].allocate(in_port) else {
                    self.stats.ports_exhausted += 1;
                    return Err(Refusal::PortsExhausted);
                };
                self.stats.mappings_created += 1;
                let out_addr = self.pool[at];
                self.add_mapping(p, in_addr, in_port, out_addr, out_port, false)
            }
        };
        Ok(self.add_session(mapping, t.rem_addr, t.rem_port, now, SYN_OUT))
    }

    /// A session for a packet coming in to an outside endpoint with no
    /// session for this remote: allowed by a port forward, or by the
    /// filtering policy on a dynamic mapping.
    pub fn open_inbound(&mut self, t: &Tuple, now: u32, filtering: Filtering) -> Result<u32, Refusal> {
        let (p, out_addr, out_port, rem_addr, rem_port) = (t.proto, t.addr, t.port, t.rem_addr, t.rem_port);
        let mapping = self.find_mapping_outside(p, out_addr, out_port).ok_or(Refusal::NoMapping)?;
        let m = self.mappings[mapping as usize];
        if !m.fixed && filtering == Filtering::AddressDependent && !self.has_remote(mapping, rem_addr) {
            return Err(Refusal::Filtered);
        }
        self.make_room(now)?;
        // Room may have been made by removing this very mapping's last
        // session: look it up again.
        let mapping = match self.find_mapping_outside(p, out_addr, out_port) {
            Some(m) => m,
            None => return Err(Refusal::NoMapping),
        };
        Ok(self.add_session(mapping, rem_addr, rem_port, now, SYN_IN))
    }

    fn has_remote(&self, mapping: u32, rem_addr: u32) -> bool {
        let mut s = self.mappings[mapping as usize].first;
        while s != NONE {
            if self.sessions[s as usize].rem_addr == rem_addr {
                return true;
            }
            s = self.sessions[s as usize].map_next;
        }
        false
    }

    fn add_session(&mut self, mapping: u32, rem_addr: u32, rem_port: u16, now: u32, opened_by: u8) -> u32 {
        let id = self.free_session;
        debug_assert!(id != NONE && self.len < self.max);
        self.free_session = self.sessions[id as usize].next;
        let m = &mut self.mappings[mapping as usize];
        let (tcp, class) = match m.proto {
            proto::TCP => (opened_by, Class::TcpTransitory),
            proto::UDP => (0, Class::Udp),
            _ => (0, Class::Icmp),
        };
        let first = m.first;
        m.first = id;
        m.sessions += 1;
        let m = *m;
        // The mapping's other sessions know where its inside host is (its
        // packets out came from there): a session a remote opens on an
        // endpoint-independent mapping reaches the host at once.
        let (mut host_mac, mut host_port) = ([0; 6], 0);
        if first != NONE {
            let f = &mut self.sessions[first as usize];
            f.map_prev = id;
            (host_mac, host_port) = (f.host_mac, f.host_port);
        }
        self.sessions[id as usize] = Session {
            proto: m.proto,
            class,
            tcp,
            in_addr: m.in_addr,
            out_addr: m.out_addr,
            rem_addr,
            in_port: m.in_port,
            out_port: m.out_port,
            rem_port,
            last_seen: now,
            host_mac,
            host_port,
            offloaded: 0,
            prev: NONE,
            next: NONE,
            mapping,
            map_prev: NONE,
            map_next: first,
        };
        self.link_tail(id, class);
        let hi = self.hash(D_IN, m.proto, m.in_addr, m.in_port, rem_addr, rem_port);
        let ho = self.hash(D_OUT, m.proto, m.out_addr, m.out_port, rem_addr, rem_port);
        self.by_inside.insert(hi, id);
        self.by_outside.insert(ho, id);
        self.len += 1;
        self.stats.created += 1;
        id
    }

    /// Removes session `id` (and its mapping when it was the last of a
    /// dynamic one, giving the port back).
    pub fn remove(&mut self, id: u32) {
        if self.sessions[id as usize].offloaded != 0 {
            self.withdraw(id, offload::BOTH);
        }
        let s = self.sessions[id as usize];
        self.unlink(id, s.class);
        self.by_inside.remove(self.hash(D_IN, s.proto, s.in_addr, s.in_port, s.rem_addr, s.rem_port), id);
        self.by_outside.remove(self.hash(D_OUT, s.proto, s.out_addr, s.out_port, s.rem_addr, s.rem_port), id);
        if s.map_prev == NONE {
            self.mappings[s.mapping as usize].first = s.map_next;
        } else {
            self.sessions[s.map_prev as usize].map_next = s.map_next;
        }
        if s.map_next != NONE {
            self.sessions[s.map_next as usize].map_prev = s.map_prev;
        }
        let m = &mut self.mappings[s.mapping as usize];
        m.sessions -= 1;
        if m.sessions == 0 && !m.fixed {
            self.remove_mapping(s.mapping);
        }
        let slot = &mut self.sessions[id as usize];
        slot.mapping = NONE;
        slot.next = self.free_session;
        self.free_session = id;
        self.len -= 1;
    }

    /// Every live session with its timeout class, for dumps.
    pub fn dump(&self) -> impl Iterator<Item = (&Session, &'static str)> {
        self.sessions.iter().filter(|s| s.mapping != NONE).map(|s| (s, s.class.name()))
    }

    /// Sessions per timeout class (`udp`, `tcp-transitory`, ...).
    pub fn class_counts(&self) -> [(&'static str, usize); CLASSES] {
        let mut n = [0; CLASSES];
        for s in self.sessions.iter().filter(|s| s.mapping != NONE) {
            n[s.class as usize] += 1;
        }
        [Class::Udp, Class::TcpTransitory, Class::TcpEstablished, Class::Icmp].map(|c| (c.name(), n[c as usize]))
    }
}

#[cfg(test)]
mod tests;
