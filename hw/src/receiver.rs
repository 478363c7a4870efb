//! `nfv bench`'s receiving end (`nfv_bench_rx` in `bpf/gen.bpf.c`): an
//! XDP program on the interface the device under test sends to, finding
//! the generator's stamp at one of a few offsets, counting the frames
//! (per CPU) and handing each one's flow, sequence number and latency
//! (its arrival less its send time, both from the kernel's monotonic
//! clock) to user space through a BPF ring buffer, which is read here
//! without a system call per frame.

use std::os::raw::{c_int, c_void};

use libbpf_sys as bpf;

use crate::blast::Attached;
use crate::xdp::errno;

/// Where the receiver looks for a stamp, at most this many offsets.
pub const OFFSETS_MAX: usize = 4;

/// One frame received (`struct rx_record`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Record {
    /// The flow's index.
    pub flow: u32,
    /// Its sequence number (low 32 bits).
    pub seq: u32,
    /// Arrival less send time, nanoseconds.
    pub latency_ns: u64,
}

/// The receiver's counters since the last [`Receiver::restart`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Stamped frames received.
    pub stamped: u64,
    /// Frames without a stamp where one was looked for.
    pub foreign: u64,
    /// Stamped frames the ring buffer had no room to record (counted, but
    /// missing from the per-flow accounting).
    pub unrecorded: u64,
}

/// The attached receiver and its ring buffer.
pub struct Receiver {
    attached: Attached,
    ring: *mut bpf::ring_buffer,
    /// Where the ring buffer's callback puts records (boxed: its address
    /// is the callback's context, which must not move with the receiver).
    #[allow(clippy::box_collection)]
    records: Box<Vec<Record>>,
}

// SAFETY: the ring buffer is only used through `&mut self`.
unsafe impl Send for Receiver {}

unsafe extern "C" fn collect(ctx: *mut c_void, data: *mut c_void, size: bpf::size_t) -> c_int {
    if size as usize >= std::mem::size_of::<Record>() {
        // SAFETY: ctx is the receiver's boxed Vec (alive while the ring
        // buffer is); data holds a record of at least its size.
        unsafe { (*(ctx as *mut Vec<Record>)).push(std::ptr::read_unaligned(data as *const Record)) };
    }
    0
}

impl Receiver {
    /// Attaches the receiver to `ifindex` (root), looking for stamps at
    /// `offsets` (from the frame's start) in that order.
    pub fn attach(ifindex: u32, offsets: &[u32]) -> Result<Self, String> {
        if offsets.is_empty() || offsets.len() > OFFSETS_MAX || offsets.iter().any(|&o| o == 0 || o > 256) {
            return Err(format!("1 to {OFFSETS_MAX} stamp offsets, each 1..=256"));
        }
        let attached = Attached::new(ifindex, "nfv_bench_rx")?;
        let mut conf = [0u32; OFFSETS_MAX];
        conf[..offsets.len()].copy_from_slice(offsets);
        let conf: Vec<u8> = conf.iter().flat_map(|o| o.to_ne_bytes()).collect();
        attached.program.update("rx_conf", &0u32.to_ne_bytes(), &conf)?;
        let mut records = Box::new(Vec::with_capacity(1 << 16));
        let fd = attached.program.map("rx_records")?;
        // SAFETY: the map is a ring buffer; the context outlives the ring
        // buffer (both dropped with self, the ring buffer first).
        let ring = unsafe {
            bpf::ring_buffer__new(fd, Some(collect), (&mut *records as *mut Vec<Record>).cast(), std::ptr::null())
        };
        if ring.is_null() {
            return Err(errno(
                "opening the receiver's ring buffer",
                std::io::Error::last_os_error().raw_os_error().unwrap_or(0),
            ));
        }
        let mut r = Self { attached, ring, records };
        r.restart()?;
        Ok(r)
    }

    /// Zeroes the counters and discards what the ring buffer holds.
    pub fn restart(&mut self) -> Result<(), String> {
        self.drain(|_| {});
        let zeros = vec![0u8; 8 * cpus()];
        for k in 0u32..3 {
            self.attached.program.update("rx_counts", &k.to_ne_bytes(), &zeros)?;
        }
        Ok(())
    }

    /// The counters, summed over the CPUs.
    pub fn counts(&self) -> Result<Counts, String> {
        let fd = self.attached.program.map("rx_counts")?;
        let mut sum = [0u64; 3];
        let mut per_cpu = vec![0u64; cpus()];
        for (k, s) in sum.iter_mut().enumerate() {
            // SAFETY: a per-CPU array of u64: one value per possible CPU.
            let rc = unsafe {
                bpf::bpf_map_lookup_elem(fd, (&(k as u32) as *const u32).cast(), per_cpu.as_mut_ptr().cast())
            };
            if rc != 0 {
                return Err(errno("reading the receiver's counters", rc));
            }
            *s = per_cpu.iter().sum();
        }
        Ok(Counts { stamped: sum[0], foreign: sum[1], unrecorded: sum[2] })
    }

    /// Hands every record the ring buffer holds to `f`, oldest first.
    pub fn drain(&mut self, mut f: impl FnMut(&Record)) -> usize {
        // SAFETY: a ring buffer from ring_buffer__new; its callback pushes
        // into self.records, which nothing else borrows meanwhile.
        unsafe { bpf::ring_buffer__consume(self.ring) };
        let n = self.records.len();
        self.records.iter().for_each(&mut f);
        self.records.clear();
        n
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        // SAFETY: from ring_buffer__new, freed once, before its context.
        unsafe { bpf::ring_buffer__free(self.ring) };
    }
}

fn cpus() -> usize {
    // SAFETY: no arguments.
    let n = unsafe { bpf::libbpf_num_possible_cpus() };
    n.max(1) as usize
}
