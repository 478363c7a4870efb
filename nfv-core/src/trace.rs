//! Packet tracing (VPP's `trace add`): the next N packets received (or
//! entering a named stage) are followed through the graph; at each stage
//! the worker records what the stage decided and the headers as they are
//! now, and the management plane shows them per packet.
//!
//! Off, it costs a worker one relaxed load per received batch (the
//! armed count, on a line nobody writes). Armed, a traced packet carries
//! [`crate::packet::flags::TRACE`]; the graph looks for traced packets
//! only in batches that hold one, and records go to a bounded lock-free
//! queue (full: the record is counted as lost, never waited for).

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use crossbeam::queue::ArrayQueue;
use nfv_net::wire::{EthernetFrame, Ipv4Packet, Ipv6Packet, TcpPacket, UdpPacket, ethertype, proto};

use crate::config::mac_text;
use crate::packet::{Meta, PktDesc, VerdictKind, flags};

/// One step of one traced packet.
#[derive(Clone, Debug)]
pub struct TraceRecord {
    /// The packet's number, in the order tracing picked packets.
    pub packet: u32,
    /// The worker that recorded it.
    pub worker: usize,
    /// Where: `rx PORT`, a stage's name, or `tx`.
    pub at: String,
    /// What happened there and the headers after it.
    pub what: String,
    /// The packet's bytes, when capturing (`nfv ctl capture`).
    pub bytes: Option<Vec<u8>>,
}

/// Records the management plane has not taken yet, at most.
pub const TRACE_QUEUE: usize = 4096;

/// What `nfv ctl trace` arms, shared by every worker.
pub struct TraceControl {
    /// Packets still to pick.
    remaining: AtomicU32,
    /// Pick packets entering this stage (by name) instead of received
    /// ones; set before `remaining`.
    stage: std::sync::Mutex<Option<String>>,
    /// One more at each arming: a worker reads `stage` (a lock) only
    /// when this moved, never per batch.
    armings: AtomicU32,
    /// Numbers given to picked packets.
    next: AtomicU32,
    /// The records.
    pub records: ArrayQueue<TraceRecord>,
    /// Records dropped because the queue was full.
    pub lost: AtomicU64,
    /// Capturing: picked packets' bytes are recorded, and they are not
    /// followed.
    capture: std::sync::atomic::AtomicBool,
}

impl Default for TraceControl {
    fn default() -> Self {
        Self {
            remaining: AtomicU32::new(0),
            stage: std::sync::Mutex::new(None),
            armings: AtomicU32::new(0),
            next: AtomicU32::new(0),
            records: ArrayQueue::new(TRACE_QUEUE),
            lost: AtomicU64::new(0),
            capture: std::sync::atomic::AtomicBool::new(false),
        }
    }
}

impl TraceControl {
    /// A control shared by a run's workers.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Arms tracing of the next `n` packets, received or (with `stage`)
    /// entering that stage.
    pub fn arm(&self, n: u32, stage: Option<String>) {
        *self.stage.lock().expect("trace stage") = stage;
        self.capture.store(false, Ordering::Relaxed);
        self.armings.fetch_add(1, Ordering::Release);
        self.remaining.store(n, Ordering::Release);
    }

    /// Arms capturing the next `n` packets entering `stage` (their bytes,
    /// as they enter it; they are not followed further).
    pub fn arm_capture(&self, n: u32, stage: String) {
        *self.stage.lock().expect("trace stage") = Some(stage);
        self.capture.store(true, Ordering::Relaxed);
        self.armings.fetch_add(1, Ordering::Release);
        self.remaining.store(n, Ordering::Release);
    }

    /// Disarms.
    pub fn clear(&self) {
        self.remaining.store(0, Ordering::Release);
    }

    /// Packets still to pick.
    pub fn remaining(&self) -> u32 {
        self.remaining.load(Ordering::Relaxed)
    }

    /// True when packets are to be picked at `at` (`None`: on receive).
    /// The one load a worker pays per batch when tracing is off.
    #[inline(always)]
    pub(crate) fn armed(&self) -> bool {
        self.remaining.load(Ordering::Relaxed) > 0
    }

    /// Takes up to `want` packets to pick; returns how many, and the
    /// number of the first.
    pub(crate) fn take(&self, want: u32) -> (u32, u32) {
        let mut got = 0;
        let _ = self.remaining.fetch_update(Ordering::AcqRel, Ordering::Relaxed, |r| {
            got = r.min(want);
            Some(r - got)
        });
        (got, self.next.fetch_add(got, Ordering::Relaxed))
    }

    /// Queues a record (counted as lost when the queue is full).
    pub(crate) fn record(&self, r: TraceRecord) {
        if self.records.push(r).is_err() {
            self.lost.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// A worker's tracer: the control, and the numbers of the traced packets
/// it holds, by frame.
pub(crate) struct Tracer {
    pub(crate) control: Arc<TraceControl>,
    pub(crate) worker: usize,
    /// The stage packets are picked at (`None`: on receive), as of
    /// arming number `armed_as`.
    picks: Option<String>,
    armed_as: u32,
    numbers: Vec<(u32, u32)>,
    /// Port and chain names, to say where a packet goes.
    ports: Vec<String>,
    chains: Vec<String>,
}

impl Tracer {
    pub(crate) fn new(control: Arc<TraceControl>, worker: usize, ports: Vec<String>, chains: Vec<String>) -> Self {
        Self { control, worker, picks: None, armed_as: 0, numbers: Vec::new(), ports, chains }
    }

    /// True when tracing is armed and picks at stage `name` (or on
    /// receive, `None`): two loads and a name compare, the stage read
    /// again only after an arming.
    #[inline]
    pub(crate) fn picks_at(&mut self, name: Option<&str>) -> bool {
        if !self.control.armed() {
            return false;
        }
        let armings = self.control.armings.load(Ordering::Acquire);
        if armings != self.armed_as {
            self.rearmed(armings);
        }
        self.picks.as_deref() == name
    }

    #[cold]
    fn rearmed(&mut self, armings: u32) {
        self.armed_as = armings;
        self.picks = self.control.stage.lock().expect("trace stage").clone();
    }

    /// Picks up to the armed count of `descs` not traced yet, marks them
    /// and records where they were picked (`at`) with their headers.
    pub(crate) fn pick<'b>(&mut self, descs: &mut [PktDesc], at: &str, bytes: impl Fn(&PktDesc) -> &'b [u8]) -> bool {
        let candidates = descs.iter().filter(|d| d.meta.flags & flags::TRACE == 0).count() as u32;
        let (n, first) = self.control.take(candidates);
        let capture = self.control.capture.load(Ordering::Relaxed);
        for (k, d) in descs.iter_mut().filter(|d| d.meta.flags & flags::TRACE == 0).take(n as usize).enumerate() {
            let number = first + k as u32;
            let data = bytes(d);
            let what = format!("picked: {}", describe(data, &d.meta));
            let at = at.to_string();
            if capture {
                let bytes = Some(data.to_vec());
                self.control.record(TraceRecord { packet: number, worker: self.worker, at, what, bytes });
                continue;
            }
            d.meta.flags |= flags::TRACE;
            self.numbers.retain(|x| x.0 != d.frame);
            if self.numbers.len() >= TRACE_QUEUE {
                // One that left unseen; never a growing list.
                self.numbers.remove(0);
            }
            self.numbers.push((d.frame, number));
            self.control.record(TraceRecord { packet: number, worker: self.worker, at, what, bytes: None });
        }
        n > 0
    }

    /// Records what stage `at` did to traced packet `d`.
    pub(crate) fn step(&mut self, d: &PktDesc, at: &str, verdict: VerdictKind, data: &[u8]) {
        let Some(&(_, number)) = self.numbers.iter().find(|x| x.0 == d.frame) else { return };
        let name = |v: &[String], i: usize| v.get(i).cloned().unwrap_or_else(|| i.to_string());
        let what = match verdict {
            VerdictKind::Next => format!("next: {}", describe(data, &d.meta)),
            VerdictKind::Out(p) => format!("egress {}: {}", name(&self.ports, p as usize), describe(data, &d.meta)),
            VerdictKind::Held => format!("egress via a next hop: {}", describe(data, &d.meta)),
            VerdictKind::Goto(c) => format!("to chain {}: {}", name(&self.chains, c as usize), describe(data, &d.meta)),
            other => format!("{other:?}"),
        };
        self.control.record(TraceRecord { packet: number, worker: self.worker, at: at.to_string(), what, bytes: None });
    }

    /// Records `what` for traced packet `d` at `at`.
    fn note(&mut self, d: &PktDesc, at: &str, what: String) {
        let Some(&(_, number)) = self.numbers.iter().find(|x| x.0 == d.frame) else { return };
        self.control.record(TraceRecord { packet: number, worker: self.worker, at: at.to_string(), what, bytes: None });
    }

    /// Forgets a packet that left (its frame will carry another).
    pub(crate) fn done(&mut self, frame: u32) {
        self.numbers.retain(|x| x.0 != frame);
    }

    /// True while traced packets are in this worker's graph.
    #[inline]
    pub(crate) fn in_flight(&self) -> bool {
        !self.numbers.is_empty()
    }
}

/// Where a stage's traced packets may be after it: what was finished and
/// what was sent to other chains before it ran.
pub(crate) struct Seen {
    done: usize,
    sent: Vec<(crate::packet::ChainId, usize)>,
}

fn traced(d: &PktDesc) -> bool {
    d.meta.flags & flags::TRACE != 0
}

/// Before stage `name` runs over `batch`: picks packets entering it if
/// tracing is armed for this stage; notes where its results will be, if
/// a traced packet enters it (else `None`: nothing to record after it).
/// Inline up to the common answer: armed elsewhere, nothing in flight.
#[inline(always)]
pub(crate) fn before_stage(t: &mut Tracer, name: &str, batch: &mut crate::Batch) -> Option<Seen> {
    if !t.in_flight() && !t.picks_at(Some(name)) {
        return None;
    }
    before_stage_slow(t, name, batch)
}

#[cold]
fn before_stage_slow(t: &mut Tracer, name: &str, batch: &mut crate::Batch) -> Option<Seen> {
    if t.picks_at(Some(name)) {
        let mut descs = std::mem::take(batch.active_mut());
        t.pick(&mut descs, name, |d| batch.bytes_of(d));
        *batch.active_mut() = descs;
    }
    // No packet of this worker traced: none in the batch either.
    if !t.in_flight() || !batch.active().iter().any(traced) {
        return None;
    }
    Some(Seen { done: batch.done().len(), sent: batch.outboxes().map(|(c, o)| (c, o.len())).collect() })
}

/// After stage `name` ran and its verdicts were settled: a step for each
/// traced packet it kept, finished or sent to another chain.
#[cold]
pub(crate) fn after_stage(t: &mut Tracer, name: &str, reasons: &[&str], batch: &crate::Batch, seen: Seen) {
    for d in batch.active().iter().filter(|d| traced(d)) {
        t.step(d, name, d.outcome(), batch.bytes_of(d));
    }
    for d in batch.done()[seen.done..].iter().filter(|d| traced(d)) {
        match d.outcome() {
            VerdictKind::Drop(r) => {
                let reason = reasons.get(r.0 as usize).copied().unwrap_or("?");
                t.note(d, name, format!("drop: {reason}"));
            }
            v => t.step(d, name, v, batch.bytes_of(d)),
        }
        t.done(d.frame);
    }
    for (c, o) in batch.outboxes() {
        let from = seen.sent.iter().find(|x| x.0 == c).map_or(0, |x| x.1);
        for d in o[from.min(o.len())..].iter().filter(|d| traced(d)) {
            t.step(d, name, VerdictKind::Goto(c), batch.bytes_of(d));
        }
    }
}

/// At the end of the graph, for the packets still in chain `chain`'s
/// batch: where each traced one goes.
#[cold]
pub(crate) fn at_end(t: &mut Tracer, chain: &str, batch: &crate::Batch, end: crate::graph::End) {
    use crate::graph::End;
    // Armed, nothing picked yet: nothing to say, and no name to format.
    if !t.in_flight() {
        return;
    }
    let at = format!("end of {chain}");
    for d in batch.done().iter().chain(batch.active()).filter(|d| traced(d)) {
        match (d.outcome(), end) {
            // Nobody decided: the chain's end does.
            (VerdictKind::Next, End::Drop) => t.note(d, &at, "undecided: dropped (unhandled)".into()),
            (VerdictKind::Next, End::Ingress) => t.note(d, &at, "undecided: back out its ingress port".into()),
            (VerdictKind::Next, End::Port(p)) => {
                let port = t.ports.get(p as usize).cloned().unwrap_or_else(|| p.to_string());
                t.note(d, &at, format!("undecided: out {port} (then)"))
            }
            (v, _) => t.step(d, &at, v, batch.bytes_of(d)),
        }
        t.done(d.frame);
    }
}

/// One line of a packet's headers as parsed (`meta`): Ethernet, IP, the
/// L4 ports or ICMP, as tcpdump would show them.
pub fn describe(data: &[u8], meta: &Meta) -> String {
    let mut s = String::new();
    if data.len() < 14 {
        return format!("{} octets, truncated", data.len());
    }
    let eth = EthernetFrame::new_unchecked(data);
    let _ = write!(s, "{} > {}", mac_text(&eth.src_addr()), mac_text(&eth.dst_addr()));
    if meta.flags & flags::L3_OK == 0 {
        let _ = write!(s, " ethertype {:#06x}, {} octets", eth.ethertype(), data.len());
        return s;
    }
    let l3 = &data[meta.l3_off as usize..];
    let (src, dst, extra) = match meta.ethertype {
        ethertype::IPV4 => {
            let ip = Ipv4Packet::new_unchecked(l3);
            let (a, b) = (std::net::Ipv4Addr::from(ip.src_addr()), std::net::Ipv4Addr::from(ip.dst_addr()));
            (a.to_string(), b.to_string(), format!("ttl {} len {}", ip.ttl(), ip.total_len()))
        }
        _ => {
            let ip = Ipv6Packet::new_unchecked(l3);
            let (a, b) = (std::net::Ipv6Addr::from(ip.src_addr()), std::net::Ipv6Addr::from(ip.dst_addr()));
            (a.to_string(), b.to_string(), format!("hlim {} plen {}", ip.hop_limit(), ip.payload_len()))
        }
    };
    let l4 = (meta.flags & flags::L4_OK != 0).then(|| &data[meta.l4_off as usize..]);
    match (meta.l4_proto, l4) {
        (proto::TCP, Some(t)) if t.len() >= 14 => {
            let t = TcpPacket::new_unchecked(t);
            let _ = write!(s, ", {src}:{} > {dst}:{} tcp flags {:#04x}", t.src_port(), t.dst_port(), t.flags());
        }
        (proto::UDP, Some(u)) if u.len() >= 8 => {
            let u = UdpPacket::new_unchecked(u);
            let _ = write!(s, ", {src}:{} > {dst}:{} udp", u.src_port(), u.dst_port());
        }
        (p, _) => {
            let _ = write!(s, ", {src} > {dst} proto {p}");
        }
    }
    let _ = write!(s, ", {extra}");
    s
}
