//! nfv's XDP traffic generator (`bpf/gen.bpf.c`): a frame sent out of an
//! interface millions of times a second by `BPF_PROG_TEST_RUN` in
//! live-frames mode (the way the kernel's own xdp-trafficgen works, which
//! fails on this kernel), each copy with the next flow's source address
//! and port. It offers more than an AF_XDP generator can (copy-mode TX
//! costs an skb per frame), enough to load an XDP data path on veth.
//! [`Sink`] is its other end: an XDP program dropping all it receives.

use etherparse::PacketBuilder;
use libbpf_sys as bpf;

use crate::xdp::{Program, errno};

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
        let mut payload = vec![0u8; self.frame_size.max(60) - 42];
        if let Some(g) = self.gtpu {
            // A G-PDU header without optional fields, then the inner
            // packet (its UDP checksum 0 too).
            let inner_len = self.frame_size.max(HEAD_LONG + 14) - 42 - 8;
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
        let mut f = Vec::with_capacity(self.frame_size);
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
        program.update("gen_conf", &0u32.to_ne_bytes(), &conf)?;
        Ok(Self { program, frame })
    }

    /// Sends [`PER_CALL`] frames (returns when they are handed to the
    /// device; a full device drops, as any generator's would).
    pub fn send(&self) -> Result<(), String> {
        let mut frame = self.frame.clone();
        let mut t: bpf::bpf_test_run_opts = unsafe { std::mem::zeroed() };
        t.sz = std::mem::size_of::<bpf::bpf_test_run_opts>() as _;
        t.data_in = frame.as_mut_ptr().cast();
        t.data_size_in = frame.len() as u32;
        t.repeat = PER_CALL as i32;
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
    _program: Program,
    ifindex: u32,
}

impl Sink {
    /// Attaches the sink to `ifindex` (native XDP; root).
    pub fn attach(ifindex: u32) -> Result<Self, String> {
        let program = Program::open(OBJECT, "nfv_sink")?;
        // SAFETY: a loaded program's fd; no options.
        let rc =
            unsafe { bpf::bpf_xdp_attach(ifindex as i32, program.prog, bpf::XDP_FLAGS_DRV_MODE, std::ptr::null()) };
        if rc != 0 {
            return Err(errno("attaching the sink", rc));
        }
        Ok(Self { _program: program, ifindex })
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        // SAFETY: detaches what attach attached.
        unsafe { bpf::bpf_xdp_detach(self.ifindex as i32, bpf::XDP_FLAGS_DRV_MODE, std::ptr::null()) };
    }
}
