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
