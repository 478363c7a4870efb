//! Per-worker flow state for `permit+reflect`: a flow a reflect rule
//! permitted is remembered, and packets of that flow in either direction
//! pass without classification, so the return traffic of an outbound
//! connection is allowed while unsolicited inbound traffic is not.
//!
//! A flow is keyed by its two endpoints in a fixed order (lower address and
//! port first), so one lookup finds it from either side; the entry
//! remembers which side opened it. TCP flows move through a small state
//! machine for their timeouts: opening (until the responder answers),
//! established, closing (after FIN or RST, RFC 9293 section 3.6). ICMP
//! echo is keyed by its identifier (RFC 792): a request (type 8) opens, a
//! reply (type 0) with the same identifier from the other side matches.
//! The table is bounded: when full, aged flows are swept (at most once per
//! tick of a second) and a new flow that still finds no room is refused
//! and counted; its packet still passes (the rule permitted it), its
//! replies will not. Both directions of a flow must reach the same worker
//! (symmetric RSS), as for every per-worker state.

use rustc_hash::FxHashMap;

/// One direction-independent flow identity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FlowKey {
    lo_addr: [u8; 16],
    hi_addr: [u8; 16],
    lo_port: u16,
    hi_port: u16,
    proto: u8,
}

/// The fields of a packet a flow is recognised by.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Endpoints {
    /// Source address (IPv4 as the last 4 bytes, the rest zero).
    pub src: [u8; 16],
    /// Destination address.
    pub dst: [u8; 16],
    /// Source port, or ICMP echo identifier on a request (0 on a reply).
    pub sport: u16,
    /// Destination port, or ICMP echo identifier on a reply (0 on a request).
    pub dport: u16,
    /// IP protocol.
    pub proto: u8,
}

impl Endpoints {
    /// The flow key, and whether this packet goes from the "low" endpoint.
    #[inline(always)]
    pub fn key(&self) -> (FlowKey, bool) {
        let from_lo = (self.src, self.sport) <= (self.dst, self.dport);
        let (lo, hi) = if from_lo {
            ((self.src, self.sport), (self.dst, self.dport))
        } else {
            ((self.dst, self.dport), (self.src, self.sport))
        };
        (FlowKey { lo_addr: lo.0, hi_addr: hi.0, lo_port: lo.1, hi_port: hi.1, proto: self.proto }, from_lo)
    }
}

/// Where a TCP flow is, for its timeout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TcpState {
    /// Opened, no answer from the responder yet.
    Opening,
    /// Both sides have sent.
    Established,
    /// A FIN or RST was seen.
    Closing,
}

#[derive(Clone, Copy, Debug)]
struct Flow {
    /// The side that opened the flow is the "low" endpoint.
    opener_is_lo: bool,
    state: TcpState,
    last_seen: u64,
}

/// Idle timeouts, in ticks.
#[derive(Clone, Copy, Debug)]
pub struct Timeouts {
    /// TCP, both sides have sent and no FIN/RST.
    pub tcp_established: u64,
    /// TCP opening or closing.
    pub tcp_transient: u64,
    /// UDP, ICMP echo and anything else.
    pub other: u64,
}

impl Timeouts {
    /// The idle timeout of a flow of `proto` in `state`.
    #[inline(always)]
    fn of(&self, proto: u8, state: TcpState) -> u64 {
        match (proto, state) {
            (6, TcpState::Established) => self.tcp_established,
            (6, _) => self.tcp_transient,
            _ => self.other,
        }
    }
}

/// Counters of the table's life.
#[derive(Clone, Copy, Debug, Default)]
pub struct FlowStats {
    /// Flows created.
    pub created: u64,
    /// Flows that timed out.
    pub expired: u64,
    /// New flows refused because the table was full.
    pub refused_full: u64,
    /// Packets passed by an existing flow.
    pub hits: u64,
}

/// One worker's reflect flows.
pub struct FlowTable {
    map: FxHashMap<FlowKey, Flow>,
    max: usize,
    timeouts: Timeouts,
    next_sweep: u64,
    sweep_every: u64,
    /// Counters.
    pub stats: FlowStats,
}

const TCP_FIN: u8 = 0x01;
const TCP_RST: u8 = 0x04;

impl FlowTable {
    /// A table of at most `max` flows, swept for aged ones at most every
    /// `sweep_every` ticks when full.
    pub fn new(max: usize, timeouts: Timeouts, sweep_every: u64) -> Self {
        let mut map = FxHashMap::default();
        map.reserve(max);
        Self { map, max, timeouts, next_sweep: 0, sweep_every, stats: FlowStats::default() }
    }

    /// True when the packet belongs to a live flow (which is refreshed
    /// and, for TCP, moved along by `tcp_flags`).
    #[inline]
    pub fn pass(&mut self, e: &Endpoints, tcp_flags: u8, now: u64) -> bool {
        let (key, from_lo) = e.key();
        let Some(f) = self.map.get_mut(&key) else { return false };
        if now.wrapping_sub(f.last_seen) >= self.timeouts.of(key.proto, f.state) {
            self.map.remove(&key);
            self.stats.expired += 1;
            return false;
        }
        f.last_seen = now;
        if key.proto == 6 {
            if tcp_flags & (TCP_FIN | TCP_RST) != 0 {
                f.state = TcpState::Closing;
            } else if f.state == TcpState::Opening && from_lo != f.opener_is_lo {
                f.state = TcpState::Established;
            }
        }
        self.stats.hits += 1;
        true
    }

    /// Remembers the flow of a packet a reflect rule permitted.
    #[inline]
    pub fn open(&mut self, e: &Endpoints, tcp_flags: u8, now: u64) {
        let (key, from_lo) = e.key();
        if self.map.contains_key(&key) {
            return;
        }
        if self.map.len() >= self.max {
            if now.wrapping_sub(self.next_sweep) < u64::MAX / 2 {
                self.expire(now);
                self.next_sweep = now.wrapping_add(self.sweep_every);
            }
            if self.map.len() >= self.max {
                self.stats.refused_full += 1;
                return;
            }
        }
        let state =
            if key.proto == 6 && tcp_flags & (TCP_FIN | TCP_RST) != 0 { TcpState::Closing } else { TcpState::Opening };
        self.map.insert(key, Flow { opener_is_lo: from_lo, state, last_seen: now });
        self.stats.created += 1;
    }

    /// Drops every flow past its timeout.
    pub fn expire(&mut self, now: u64) {
        let before = self.map.len();
        let t = self.timeouts;
        self.map.retain(|k, f| now.wrapping_sub(f.last_seen) < t.of(k.proto, f.state));
        self.stats.expired += (before - self.map.len()) as u64;
    }

    /// Flows held.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// True when no flow is held.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// The TCP state of the flow of `e`, if held (for tests and reports).
    pub fn tcp_state(&self, e: &Endpoints) -> Option<TcpState> {
        self.map.get(&e.key().0).map(|f| f.state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ep(src: u8, dst: u8, sport: u16, dport: u16, proto: u8) -> Endpoints {
        let a = |x: u8| {
            let mut v = [0; 16];
            v[15] = x;
            v
        };
        Endpoints { src: a(src), dst: a(dst), sport, dport, proto }
    }

    const T: Timeouts = Timeouts { tcp_established: 1000, tcp_transient: 100, other: 50 };

    #[test]
    fn replies_pass_unsolicited_do_not_and_tcp_moves_through_its_states() {
        let mut f = FlowTable::new(16, T, 10);
        let out = ep(1, 2, 40000, 80, 6);
        let back = ep(2, 1, 80, 40000, 6);
        assert!(!f.pass(&back, 0x12, 0), "nothing before the flow is opened");
        f.open(&out, 0x02, 0);
        assert_eq!(f.tcp_state(&out), Some(TcpState::Opening));
        assert!(f.pass(&out, 0x02, 1), "the opener's retransmission");
        assert_eq!(f.tcp_state(&out), Some(TcpState::Opening), "only the responder establishes");
        assert!(f.pass(&back, 0x12, 2));
        assert_eq!(f.tcp_state(&back), Some(TcpState::Established));
        assert!(!f.pass(&ep(2, 1, 80, 40001, 6), 0x02, 3), "another port of the same hosts");
        // Established: the long timeout.
        assert!(f.pass(&back, 0x10, 900));
        f.pass(&out, TCP_FIN, 901);
        assert_eq!(f.tcp_state(&out), Some(TcpState::Closing));
        assert!(!f.pass(&back, 0x10, 1002), "closing: the short timeout");
        assert_eq!(f.stats.expired, 1);
    }

    #[test]
    fn a_full_table_sweeps_then_refuses() {
        let mut f = FlowTable::new(2, T, 10);
        f.open(&ep(1, 2, 1, 53, 17), 0, 0);
        f.open(&ep(1, 2, 2, 53, 17), 0, 0);
        f.open(&ep(1, 2, 3, 53, 17), 0, 20);
        assert_eq!((f.len(), f.stats.refused_full), (2, 1), "both live: refused");
        f.open(&ep(1, 2, 3, 53, 17), 0, 25);
        assert_eq!(f.stats.refused_full, 2, "no second sweep before 10 ticks");
        f.open(&ep(1, 2, 3, 53, 17), 0, 60);
        assert_eq!((f.len(), f.stats.expired, f.stats.created), (1, 2, 3), "aged flows swept, the new one in");
    }
}
