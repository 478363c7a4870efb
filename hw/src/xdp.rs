//! The XDP engine: nfv's XDP program (`bpf/nfv.bpf.c`, compiled by clang
//! at build time and embedded) loaded with libbpf, its maps set from the
//! plan, and run on frames without a device (`BPF_PROG_TEST_RUN`) to prove
//! it forwards exactly as the workers would.

use std::ffi::CString;
use std::os::fd::RawFd;

use libbpf_sys as bpf;

/// The compiled program.
static OBJECT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/nfv.bpf.o"));

/// What the program does to the packets it keeps (`struct config`).
pub mod flags {
    /// Decrement the IPv4 TTL; expiring packets go up to the workers.
    pub const TTL: u32 = 1;
    /// Swap the Ethernet addresses.
    pub const MACSWAP: u32 = 2;
    /// Back out of the ingress port (`XDP_TX`).
    pub const BACK: u32 = 4;
    /// Forward the established flows of the `flows` map.
    pub const FLOWS: u32 = 8;
    /// Filter by the `acl_rules` (first match; deny drops).
    pub const ACL: u32 = 16;
}

/// An established flow as one direction's packets show it (`struct
/// flow_key`): addresses and ports as on the wire, padding zero (the map
/// compares every byte).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
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

/// What one direction of a flow becomes (`struct flow_val`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FlowValue {
    /// The new address, network order.
    pub addr: [u8; 4],
    /// The new port, network order.
    pub port: [u8; 2],
    /// 0: the source changes (inside to outside), 1: the destination,
    /// 2: nothing (only the Ethernet addresses).
    pub side: u8,
    pad: u8,
    /// Ethernet destination to send with.
    pub dmac: [u8; 6],
    /// Ethernet source to send with.
    pub smac: [u8; 6],
    /// Egress interface.
    pub ifindex: u32,
    pad2: u32,
    /// `bpf_ktime_get_ns` of the last packet forwarded here.
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
            pad: 0,
            dmac,
            smac,
            ifindex,
            pad2: 0,
            last_seen: 0,
        }
    }
}

/// An ACL rule as a prefix and port filter (`struct acl_rule`, IPv4):
/// addresses and masks as on the wire, ranges inclusive in host order.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AclRule {
    /// Source network and mask.
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

/// Most rules the program holds.
pub const ACL_MAX: usize = 256;

fn bytes_of<T: Copy>(v: &T) -> &[u8] {
    // SAFETY: T is a repr(C) struct of integers and byte arrays with its
    // padding written out as fields: every byte is initialised.
    unsafe { std::slice::from_raw_parts((v as *const T).cast(), std::mem::size_of::<T>()) }
}

/// XDP verdicts (`enum xdp_action`).
pub mod action {
    /// Dropped.
    pub const DROP: u32 = 1;
    /// To the kernel's stack.
    pub const PASS: u32 = 2;
    /// Back out of the ingress port.
    pub const TX: u32 = 3;
    /// Redirected (another port, or an AF_XDP socket).
    pub const REDIRECT: u32 = 4;
}

/// The loaded program and its maps.
pub struct Program {
    object: *mut bpf::bpf_object,
    prog: RawFd,
}

// SAFETY: the object is only used through libbpf calls on file
// descriptors, which any thread may make; it is freed once, on drop.
unsafe impl Send for Program {}

fn errno(what: &str, rc: i32) -> String {
    format!("{what}: {}", std::io::Error::from_raw_os_error(rc.abs()))
}

impl Program {
    /// Loads the program into the kernel (needs CAP_BPF, i.e. root).
    pub fn load() -> Result<Self, String> {
        let name = CString::new("nfv").expect("no NUL");
        let mut opts: bpf::bpf_object_open_opts = unsafe { std::mem::zeroed() };
        opts.sz = std::mem::size_of::<bpf::bpf_object_open_opts>() as _;
        opts.object_name = name.as_ptr();
        // SAFETY: the object bytes are static and outlive the object
        // (libbpf copies what it keeps); opts is initialised with its size.
        let object = unsafe { bpf::bpf_object__open_mem(OBJECT.as_ptr().cast(), OBJECT.len() as _, &opts) };
        if object.is_null() {
            return Err(errno("opening the XDP object", std::io::Error::last_os_error().raw_os_error().unwrap_or(0)));
        }
        // SAFETY: a valid object from open_mem.
        let rc = unsafe { bpf::bpf_object__load(object) };
        if rc != 0 {
            unsafe { bpf::bpf_object__close(object) };
            return Err(errno("loading the XDP program (root, or CAP_BPF and CAP_NET_ADMIN)", rc));
        }
        let pname = CString::new("nfv_xdp").expect("no NUL");
        // SAFETY: a loaded object; the name is NUL-terminated.
        let prog = unsafe { bpf::bpf_program__fd(bpf::bpf_object__find_program_by_name(object, pname.as_ptr())) };
        if prog < 0 {
            unsafe { bpf::bpf_object__close(object) };
            return Err("the XDP object has no nfv_xdp program".into());
        }
        Ok(Self { object, prog })
    }

    fn map(&self, name: &str) -> Result<RawFd, String> {
        let c = CString::new(name).expect("no NUL");
        // SAFETY: a loaded object; the name is NUL-terminated.
        let fd = unsafe { bpf::bpf_map__fd(bpf::bpf_object__find_map_by_name(self.object, c.as_ptr())) };
        if fd < 0 { Err(format!("no map `{name}` in the XDP object")) } else { Ok(fd) }
    }

    fn update(&self, map: &str, key: &[u8], value: &[u8]) -> Result<(), String> {
        let fd = self.map(map)?;
        // SAFETY: key and value are as long as the map's (checked by the
        // callers' types below); the kernel copies them.
        let rc =
            unsafe { bpf::bpf_map_update_elem(fd, key.as_ptr().cast(), value.as_ptr().cast(), bpf::BPF_ANY as u64) };
        if rc != 0 { Err(errno(&format!("updating map `{map}`"), rc)) } else { Ok(()) }
    }

    /// Sets what the program does to the packets it keeps ([`flags`]).
    pub fn set_flags(&self, f: u32) -> Result<(), String> {
        self.update("config", &0u32.to_ne_bytes(), &f.to_ne_bytes())
    }

    /// Cross-connects: what arrives on `from` (ifindex) leaves on `to`.
    pub fn patch(&self, from: u32, to: u32) -> Result<(), String> {
        self.update("patch", &from.to_ne_bytes(), &to.to_ne_bytes())
    }

    /// Loads an ACL: `rules` in order (at most [`ACL_MAX`]), the default
    /// action and the action for frames not IP (true: deny).
    pub fn acl(&self, rules: &[AclRule], default_deny: bool, non_ip_deny: bool) -> Result<(), String> {
        if rules.len() > ACL_MAX {
            return Err(format!("{} rules, the XDP filter holds {ACL_MAX}", rules.len()));
        }
        for (i, r) in rules.iter().enumerate() {
            self.update("acl_rules", &(i as u32).to_ne_bytes(), bytes_of(r))?;
        }
        let conf = [rules.len() as u32, u32::from(default_deny), u32::from(non_ip_deny)];
        let conf: Vec<u8> = conf.iter().flat_map(|v| v.to_ne_bytes()).collect();
        self.update("acl_conf", &0u32.to_ne_bytes(), &conf)
    }

    /// Installs (or replaces) one direction of a flow.
    pub fn flow_insert(&self, key: &FlowKey, value: &FlowValue) -> Result<(), String> {
        self.update("flows", bytes_of(key), bytes_of(value))
    }

    /// Removes one direction of a flow; false when it was not there.
    pub fn flow_remove(&self, key: &FlowKey) -> Result<bool, String> {
        let fd = self.map("flows")?;
        // SAFETY: the key is the map's key size.
        let rc = unsafe { bpf::bpf_map_delete_elem(fd, bytes_of(key).as_ptr().cast()) };
        match rc {
            0 => Ok(true),
            rc if rc.abs() == libc::ENOENT => Ok(false),
            rc => Err(errno("removing from map `flows`", rc)),
        }
    }

    /// One direction of a flow as the program last left it (its
    /// `last_seen` for the idle timers).
    pub fn flow_get(&self, key: &FlowKey) -> Result<Option<FlowValue>, String> {
        let fd = self.map("flows")?;
        let mut v = FlowValue::default();
        // SAFETY: key and value are the map's sizes; the kernel writes v.
        let rc =
            unsafe { bpf::bpf_map_lookup_elem(fd, bytes_of(key).as_ptr().cast(), (&mut v as *mut FlowValue).cast()) };
        match rc {
            0 => Ok(Some(v)),
            rc if rc.abs() == libc::ENOENT => Ok(None),
            rc => Err(errno("reading map `flows`", rc)),
        }
    }

    /// Runs the program once on `frame` (no device; `BPF_PROG_TEST_RUN`,
    /// root): its verdict and the frame as it left it.
    pub fn test_run(&self, frame: &[u8]) -> Result<(u32, Vec<u8>), String> {
        let mut out = vec![0u8; frame.len() + 256];
        let mut t: bpf::bpf_test_run_opts = unsafe { std::mem::zeroed() };
        t.sz = std::mem::size_of::<bpf::bpf_test_run_opts>() as _;
        t.data_in = frame.as_ptr().cast();
        t.data_size_in = frame.len() as u32;
        t.data_out = out.as_mut_ptr().cast();
        t.data_size_out = out.len() as u32;
        t.repeat = 1;
        // SAFETY: in and out buffers live across the call, their sizes set.
        let rc = unsafe { bpf::bpf_prog_test_run_opts(self.prog, &mut t) };
        if rc != 0 {
            return Err(errno("BPF_PROG_TEST_RUN", rc));
        }
        out.truncate(t.data_size_out as usize);
        Ok((t.retval, out))
    }
}

impl Drop for Program {
    fn drop(&mut self) {
        // SAFETY: the object from load, closed once.
        unsafe { bpf::bpf_object__close(self.object) };
    }
}
