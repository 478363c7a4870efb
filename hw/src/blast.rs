//! nfv's XDP traffic generator (`bpf/gen.bpf.c`): a frame sent out of an
//! interface millions of times a second by `BPF_PROG_TEST_RUN` in
//! live-frames mode (the way the kernel's own xdp-trafficgen works, which
//! fails on this kernel), each copy with the next flow's source address
//! and port. It offers more than an AF_XDP generator can (copy-mode TX
//! costs an skb per frame), enough to load an XDP data path on veth.
//! [`Sink`] is its other end: an XDP program dropping all it receives.
//!
//! Given a [`Measure`], the same program generates what `nfv bench`
//! measures with: flows from a table, frame sizes from a mix, and in each
//! frame a stamp ([`crate::receiver`] reads it at the far end).

use etherparse::PacketBuilder;
use libbpf_sys as bpf;

use crate::xdp::{Program, errno};

/// Octets of the bench stamp (nfv-bench's `traffic::Stamp`).
pub const STAMP_LEN: usize = 16;

static OBJECT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/gen.bpf.o"));

/// Octets of headers the program writes again before each send (`HEAD`;
/// `HEAD_LONG` for a tunnel's frames).
const HEAD: usize = 42;
const HEAD_LONG: usize = 64;

/// Frames per run of the program (one system call).
pub const PER_CALL: u32 = 1 << 16;

/// What to send.
#[derive(Clone, Debug)]
pub struct Traffic {
    /// Ethernet source and destination.
    pub src_mac: [u8; 6],
    /// Ethernet destination (the device under test).
    pub dst_mac: [u8; 6],
    /// IPv4 source: its low 16 bits count from 1 through `addrs` values.
    pub src: [u8; 4],
    /// IPv4 destination and UDP port.
    pub dst: ([u8; 4], u16),
    /// Frame size without the FCS (at least 60: 42 octets of headers).
    pub frame_size: usize,
    /// Source ports used (from 1024).
    pub ports: u32,
    /// Source addresses used.
    pub addrs: u32,
    /// Carry a UDP packet in a GTP-U G-PDU (TS 29.281 5.1) of this TEID
    /// (`dst` is then the UPF's N3 address and port 2152): from the UE
    /// (the inner source) to the data network's address and port.
    pub gtpu: Option<Gtpu>,
    /// Stamped, measurable traffic (`ports` and `addrs` are then unused).
    pub measure: Option<Measure>,
}

/// What makes [`Traffic`] measurable: packet n belongs to flow n % flows
/// and carries the stamp (magic, flow, n / flows, the send time).
#[derive(Clone, Debug, Default)]
pub struct Measure {
    /// Each flow's UDP source and destination ports (RFC 4814 4.5: the
    /// caller makes them pseudo-random); at most [`FLOWS_MAX`].
    pub flows: Vec<(u16, u16)>,
    /// Whether the flow's destination port replaces the template's (a
    /// load balancer's VIP port must stay).
    pub vary_dport: bool,
    /// Frame lengths without FCS to cycle through (a mix), at most
    /// [`SIZES_MAX`]; empty: `frame_size` for all.
    pub sizes: Vec<u16>,
}

/// A measuring run's pacing and progress (`struct gen_state`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pacing {
    /// Frames sent.
    pub sent: u64,
    /// The first one's send time (ns, CLOCK_MONOTONIC; 0: none yet).
    pub start_ns: u64,
    /// The last one's.
    pub last_ns: u64,
    /// Picoseconds between frames.
    pub interval_ps: u64,
    /// Frames to send.
    pub total: u64,
}

impl Pacing {
    fn bytes(&self) -> Vec<u8> {
        [self.sent, self.start_ns, self.last_ns, self.interval_ps, self.total]
            .iter()
            .flat_map(|v| v.to_ne_bytes())
            .collect()
    }

    /// The rate offered: frames over the time from the first to the last
    /// (what was asked when the generator kept up).
    pub fn offered(&self) -> f64 {
        let span = self.last_ns.saturating_sub(self.start_ns) as f64 / 1e9;
        if self.sent < 2 || span <= 0.0 { 0.0 } else { (self.sent - 1) as f64 / span }
    }
}

/// Flows a [`Measure`] may have (`gen_flows`).
pub const FLOWS_MAX: usize = 65536;
/// Sizes a [`Measure`]'s mix may have.
pub const SIZES_MAX: usize = 64;

/// Where the stamp sits in a frame [`Traffic`] describes: the innermost
/// UDP payload (after a G-PDU's inner IPv4 and UDP headers).
pub fn stamp_offset(gtpu: bool) -> u32 {
    if gtpu { 42 + 8 + 28 } else { 42 }
}

/// The G-PDU [`Traffic`] may carry.
#[derive(Clone, Copy, Debug)]
pub struct Gtpu {
    /// The UPF's TEID.
    pub teid: u32,
    /// The inner source.
    pub ue: [u8; 4],
    /// The inner destination and UDP port.
    pub data_network: ([u8; 4], u16),
}

impl Traffic {
    /// The template frame (UDP checksum 0: none, RFC 768).
    pub fn frame(&self) -> Vec<u8> {
        // A mix's frames are cut from its largest.
        let size = self
            .measure
            .as_ref()
            .and_then(|m| m.sizes.iter().max())
            .map_or(self.frame_size, |&s| s as usize)
            .max(self.frame_size);
        let mut payload = vec![0u8; size.max(60) - 42];
        if let Some(g) = self.gtpu {
            // A G-PDU header without optional fields, then the inner
            // packet (its UDP checksum 0 too).
            let inner_len = size.max(HEAD_LONG + 14) - 42 - 8;
            let mut inner = Vec::with_capacity(inner_len);
            PacketBuilder::ipv4(g.ue, g.data_network.0, 64)
                .udp(40000, g.data_network.1)
                .write(&mut inner, &vec![0u8; inner_len - 28])
                .expect("a packet to a Vec");
            inner[26..28].copy_from_slice(&[0, 0]);
            payload = [0x30, 0xff].to_vec();
            payload.extend((inner.len() as u16).to_be_bytes());
            payload.extend(g.teid.to_be_bytes());
            payload.extend(inner);
        }
        let mut f = Vec::with_capacity(size);
        PacketBuilder::ethernet2(self.src_mac, self.dst_mac)
            .ipv4(self.src, self.dst.0, 64)
            .udp(1024, self.dst.1)
            .write(&mut f, &payload)
            .expect("a frame to a Vec");
        f[40..42].copy_from_slice(&[0, 0]);
        f
    }
}

/// The loaded generator, sending out of one interface.
pub struct Generator {
    program: Program,
    frame: Vec<u8>,
}

impl Generator {
    /// Loads it to send `traffic` out of interface `ifindex` (root).
    pub fn load(ifindex: u32, traffic: &Traffic) -> Result<Self, String> {
        if traffic.ports == 0 || traffic.addrs == 0 {
            return Err("ports and addresses must be at least 1".into());
        }
        let program = Program::open(OBJECT, "nfv_gen")?;
        let frame = traffic.frame();
        let long = u32::from(traffic.gtpu.is_some());
        let mut conf: Vec<u8> =
            [ifindex, traffic.ports, traffic.addrs, long].iter().flat_map(|v| v.to_ne_bytes()).collect();
        conf.extend_from_slice(&frame[..if long == 1 { HEAD_LONG } else { HEAD }]);
        conf.resize(16 + HEAD_LONG, 0);
        let m = traffic.measure.clone().unwrap_or_default();
        if m.flows.len() > FLOWS_MAX || m.sizes.len() > SIZES_MAX {
            return Err(format!("at most {FLOWS_MAX} flows and {SIZES_MAX} sizes"));
        }
        let least = (stamp_offset(long == 1) as usize + STAMP_LEN).max(if long == 1 { HEAD_LONG + 14 } else { 60 });
        if let Some(&s) = m.sizes.iter().find(|&&s| (s as usize) < least) {
            return Err(format!("a {s}-octet frame cannot carry the headers and the stamp ({least} at least)"));
        }
        if traffic.measure.is_some() && frame.len() < least {
            return Err(format!(
                "{}-octet frames cannot carry the headers and the stamp ({least} at least)",
                frame.len()
            ));
        }
        let stamp_off = if m.flows.is_empty() { 0 } else { stamp_offset(long == 1) };
        for v in [m.flows.len() as u32, stamp_off, u32::from(m.vary_dport), m.sizes.len() as u32] {
            conf.extend_from_slice(&v.to_ne_bytes());
        }
        let mut sizes = m.sizes.clone();
        sizes.resize(SIZES_MAX, 0);
        conf.extend(sizes.iter().flat_map(|s| s.to_ne_bytes()));
        program.update("gen_conf", &0u32.to_ne_bytes(), &conf)?;
        for (i, (s, d)) in m.flows.iter().enumerate() {
            let v = [s.to_be_bytes(), d.to_be_bytes()].concat();
            program.update("gen_flows", &(i as u32).to_ne_bytes(), &v)?;
        }
        Ok(Self { program, frame })
    }

    /// Runs the program once on the template without a device
    /// (`BPF_PROG_TEST_RUN`): its verdict and the frame it would send
    /// (measuring, it counts as sent if due). For tests.
    pub fn run_once(&self) -> Result<(u32, Vec<u8>), String> {
        self.program.test_run(&self.frame)
    }

    /// Measuring: the next [`Self::send_paced`] sends `total` frames at
    /// `rate` per second (0: as fast as it can), the flows' sequence
    /// numbers from 0 again.
    pub fn pace(&self, rate: f64, total: u64) -> Result<(), String> {
        let interval_ps = if rate > 0.0 { (1e12 / rate) as u64 } else { 0 };
        let state = Pacing { total, interval_ps, ..Pacing::default() };
        self.program.update("gen_state", &0u32.to_ne_bytes(), &state.bytes())
    }

    /// Measuring: what the paced run has sent so far.
    pub fn pacing(&self) -> Result<Pacing, String> {
        let v: Option<[u64; 5]> = self.program.get("gen_state", &0u32)?;
        let [sent, start_ns, last_ns, interval_ps, total] = v.unwrap_or_default();
        Ok(Pacing { sent, start_ns, last_ns, interval_ps, total })
    }

    /// Measuring: runs the program until interrupted by a signal (the
    /// caller's other thread, once the trial is over; a handler must be
    /// installed without `SA_RESTART`), sending as [`Self::pace`] said.
    pub fn send_paced(&self) -> Result<(), String> {
        match self.send_n(i32::MAX as u32) {
            Err(e) if e.ends_with(&std::io::Error::from_raw_os_error(libc::EINTR).to_string()) => Ok(()),
            r => r,
        }
    }

    /// Sends [`PER_CALL`] frames (returns when they are handed to the
    /// device; a full device drops, as any generator's would).
    pub fn send(&self) -> Result<(), String> {
        self.send_n(PER_CALL)
    }

    /// Sends `n` frames in one system call (the device's receive work on
    /// a veth runs inline, in batches of 64).
    pub fn send_n(&self, n: u32) -> Result<(), String> {
        let mut frame = self.frame.clone();
        let mut t: bpf::bpf_test_run_opts = unsafe { std::mem::zeroed() };
        t.sz = std::mem::size_of::<bpf::bpf_test_run_opts>() as _;
        t.data_in = frame.as_mut_ptr().cast();
        t.data_size_in = frame.len() as u32;
        t.repeat = n as i32;
        t.flags = bpf::BPF_F_TEST_XDP_LIVE_FRAMES;
        t.batch_size = 64;
        // SAFETY: the input buffer lives across the call, its size set;
        // live frames write nothing back.
        let rc = unsafe { bpf::bpf_prog_test_run_opts(self.program.prog, &mut t) };
        if rc != 0 { Err(errno("BPF_PROG_TEST_RUN (live frames)", rc)) } else { Ok(()) }
    }
}

/// An XDP program on an interface dropping everything it receives (what
/// arrives still counts in the interface's rx counters), detached on drop.
pub struct Sink {
    _attached: Attached,
}

impl Sink {
    /// Attaches the sink to `ifindex` (native XDP; root).
    pub fn attach(ifindex: u32) -> Result<Self, String> {
        Attached::new(ifindex, "nfv_sink").map(|a| Self { _attached: a })
    }
}

/// One of this object's programs attached to an interface in native
/// mode, detached on drop.
pub(crate) struct Attached {
    pub(crate) program: Program,
    ifindex: u32,
}

impl Attached {
    /// Loads `prog` and attaches it to `ifindex` (root).
    pub(crate) fn new(ifindex: u32, prog: &str) -> Result<Self, String> {
        let program = Program::open(OBJECT, prog)?;
        // SAFETY: a loaded program's fd; no options.
        let rc =
            unsafe { bpf::bpf_xdp_attach(ifindex as i32, program.prog, bpf::XDP_FLAGS_DRV_MODE, std::ptr::null()) };
        if rc != 0 {
            return Err(errno(&format!("attaching {prog}"), rc));
        }
        Ok(Self { program, ifindex })
    }
}

impl Drop for Attached {
    fn drop(&mut self) {
        // SAFETY: detaches what attach attached.
        unsafe { bpf::bpf_xdp_detach(self.ifindex as i32, bpf::XDP_FLAGS_DRV_MODE, std::ptr::null()) };
    }
}
