//! The XDP engine: nfv's XDP program (`bpf/nfv.bpf.c`, compiled by clang
//! at build time and embedded) loaded with libbpf, its maps set from the
//! plan, and run on frames without a device (`BPF_PROG_TEST_RUN`) to prove
//! it forwards exactly as the workers would.

use std::collections::HashMap;
use std::ffi::CString;
use std::os::fd::RawFd;
use std::sync::Mutex;

use nfv_core::config::XdpMode;
use nfv_core::offload::PortProgram;

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
    /// A VXLAN VTEP's known unicast.
    pub const VTEP: u32 = 64;
    /// A UPF's plain sessions.
    pub const UPF: u32 = 128;
    /// Back out of the ingress port by a redirect to it rather than
    /// `XDP_TX` (veth: see the program).
    pub const TX_BY_REDIRECT: u32 = 32;
}

pub use nfv_core::offload::{
    Entry, FlowKey, FlowValue, Key, L2Key, L2Value, UpfConf, UpfDownlink, UpfUplink, UsageCounts, VtepConf,
};

pub use nfv_core::offload::{FILTER_MAX as ACL_MAX, FilterRule as AclRule};

/// `acl_conf`: the second rule set is in use.
const ACL_SECOND: u32 = 1 << 16;
/// `acl_conf`: every packet goes up (a rule set the filter cannot hold).
const ACL_UP: u32 = 1 << 19;

/// Socket slots per port in the program's socket map (queues 0..64).
pub const XSKS_PER_PORT: u32 = 64;
/// Ports one program serves.
pub const PORTS_MAX: u32 = 16;

/// The loopback's interface index: `BPF_PROG_TEST_RUN` runs a program as
/// if the frame arrived there.
fn loopback() -> u32 {
    // SAFETY: a NUL-terminated name.
    unsafe { libc::if_nametoindex(c"lo".as_ptr()) }
}

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
    pub(crate) prog: RawFd,
}

// SAFETY: the object is only used through libbpf calls on file
// descriptors, which any thread may make; it is freed once, on drop.
unsafe impl Send for Program {}
// SAFETY: `&self` methods only read the object (finding a map by name)
// and make system calls on file descriptors, which the kernel serialises.
unsafe impl Sync for Program {}

pub(crate) fn errno(what: &str, rc: i32) -> String {
    format!("{what}: {}", std::io::Error::from_raw_os_error(rc.abs()))
}

impl Program {
    /// Loads the program into the kernel (needs CAP_BPF, i.e. root).
    pub fn load() -> Result<Self, String> {
        Self::open(OBJECT, "nfv_xdp")
    }

    /// Loads program `prog` of BPF object `object` (one of this crate's).
    pub(crate) fn open(object: &'static [u8], prog: &str) -> Result<Self, String> {
        let name = CString::new("nfv").expect("no NUL");
        let mut opts: bpf::bpf_object_open_opts = unsafe { std::mem::zeroed() };
        opts.sz = std::mem::size_of::<bpf::bpf_object_open_opts>() as _;
        opts.object_name = name.as_ptr();
        // SAFETY: the object bytes are static and outlive the object
        // (libbpf copies what it keeps); opts is initialised with its size.
        let obj = unsafe { bpf::bpf_object__open_mem(object.as_ptr().cast(), object.len() as _, &opts) };
        if obj.is_null() {
            return Err(errno("opening the XDP object", std::io::Error::last_os_error().raw_os_error().unwrap_or(0)));
        }
        // SAFETY: a valid object from open_mem.
        let rc = unsafe { bpf::bpf_object__load(obj) };
        if rc != 0 {
            unsafe { bpf::bpf_object__close(obj) };
            return Err(errno("loading the XDP program (root, or CAP_BPF and CAP_NET_ADMIN)", rc));
        }
        let pname = CString::new(prog).expect("no NUL");
        // SAFETY: a loaded object; the name is NUL-terminated.
        let fd = unsafe { bpf::bpf_program__fd(bpf::bpf_object__find_program_by_name(obj, pname.as_ptr())) };
        if fd < 0 {
            unsafe { bpf::bpf_object__close(obj) };
            return Err(format!("the XDP object has no {prog} program"));
        }
        Ok(Self { object: obj, prog: fd })
    }

    pub(crate) fn map(&self, name: &str) -> Result<RawFd, String> {
        let c = CString::new(name).expect("no NUL");
        // SAFETY: a loaded object; the name is NUL-terminated.
        let fd = unsafe { bpf::bpf_map__fd(bpf::bpf_object__find_map_by_name(self.object, c.as_ptr())) };
        if fd < 0 { Err(format!("no map `{name}` in the XDP object")) } else { Ok(fd) }
    }

    pub(crate) fn update(&self, map: &str, key: &[u8], value: &[u8]) -> Result<(), String> {
        let fd = self.map(map)?;
        // SAFETY: key and value are as long as the map's (checked by the
        // callers' types below); the kernel copies them.
        let rc =
            unsafe { bpf::bpf_map_update_elem(fd, key.as_ptr().cast(), value.as_ptr().cast(), bpf::BPF_ANY as u64) };
        if rc != 0 { Err(errno(&format!("updating map `{map}`"), rc)) } else { Ok(()) }
    }

    /// Sets what the program does on port `ifindex` ([`flags`]) and where
    /// its sockets start in the socket map (`slot` times
    /// [`XSKS_PER_PORT`]).
    pub fn configure(&self, ifindex: u32, f: u32, slot: u32) -> Result<(), String> {
        self.configure_vni(ifindex, f, slot, 0)
    }

    /// As [`Self::configure`], for a VTEP's access port in `vni`.
    pub fn configure_vni(&self, ifindex: u32, f: u32, slot: u32, vni: u32) -> Result<(), String> {
        let conf = [f, slot * XSKS_PER_PORT, vni, 0];
        let conf: Vec<u8> = conf.iter().flat_map(|v| v.to_ne_bytes()).collect();
        self.update("config", &ifindex.to_ne_bytes(), &conf)
    }

    /// What the program does on port `ifindex` now ([`flags`]).
    pub fn port_flags(&self, ifindex: u32) -> Result<u32, String> {
        let fd = self.map("config")?;
        let mut conf = [0u32; 4];
        // SAFETY: key and value are the map's sizes; the kernel writes conf.
        let rc = unsafe { bpf::bpf_map_lookup_elem(fd, (&ifindex as *const u32).cast(), conf.as_mut_ptr().cast()) };
        if rc != 0 { Err(errno("reading map `config`", rc)) } else { Ok(conf[0]) }
    }

    /// Sets the VXLAN VTEP the program serves.
    pub fn vtep(&self, conf: &VtepConf) -> Result<(), String> {
        self.update("vtep_conf", &0u32.to_ne_bytes(), bytes_of(conf))
    }

    /// Installs (or replaces) a VTEP's MAC.
    pub fn l2_insert(&self, key: &L2Key, value: &L2Value) -> Result<(), String> {
        self.update("l2", bytes_of(key), bytes_of(value))
    }

    /// A VTEP's MAC as the program last left it.
    pub fn l2_get(&self, key: &L2Key) -> Result<Option<L2Value>, String> {
        self.get("l2", key)
    }

    /// Sets the UPF the program serves: N3 on interface `n3`, G-PDUs to
    /// `n3_address` (host order).
    pub fn upf(&self, n3_address: u32, n3: u32) -> Result<(), String> {
        let conf = [u32::from_ne_bytes(n3_address.to_be_bytes()), n3];
        self.update("upf_conf", &0u32.to_ne_bytes(), bytes_of(&conf))
    }

    /// What the program counted into URR slot `slot`.
    pub fn usage(&self, slot: u32) -> Result<UsageCounts, String> {
        Ok(self.get("upf_usage", &slot)?.unwrap_or_default())
    }

    /// Every (key, value) of hash map `map`, read in batches of 1024.
    pub(crate) fn dump<K: Copy + Default, V: Copy + Default>(&self, map: &str) -> Result<Vec<(K, V)>, String> {
        const BATCH: usize = 1024;
        let fd = self.map(map)?;
        let mut out = Vec::new();
        let (mut keys, mut values) = (vec![K::default(); BATCH], vec![V::default(); BATCH]);
        let (mut token, mut next) = (0u32, 0u32);
        let mut first = true;
        loop {
            let mut count = BATCH as u32;
            let mut opts: bpf::bpf_map_batch_opts = unsafe { std::mem::zeroed() };
            opts.sz = std::mem::size_of::<bpf::bpf_map_batch_opts>() as _;
            // SAFETY: keys and values hold `count` entries of the map's
            // sizes (K and V are its key and value types); the batch
            // tokens are the u32 a hash map uses.
            let rc = unsafe {
                bpf::bpf_map_lookup_batch(
                    fd,
                    if first { std::ptr::null_mut() } else { (&mut token as *mut u32).cast() },
                    (&mut next as *mut u32).cast(),
                    keys.as_mut_ptr().cast(),
                    values.as_mut_ptr().cast(),
                    &mut count,
                    &opts,
                )
            };
            out.extend(keys.iter().copied().zip(values.iter().copied()).take(count as usize));
            match rc {
                0 => {}
                rc if rc.abs() == libc::ENOENT => return Ok(out),
                rc => return Err(errno(&format!("reading map `{map}` in batches"), rc)),
            }
            token = next;
            first = false;
        }
    }

    /// Deletes `key` from `map`; false when it was not there.
    pub(crate) fn delete(&self, map: &str, key: &[u8]) -> Result<bool, String> {
        let fd = self.map(map)?;
        // SAFETY: the key is the map's key size (the callers' types).
        let rc = unsafe { bpf::bpf_map_delete_elem(fd, key.as_ptr().cast()) };
        match rc {
            0 => Ok(true),
            rc if rc.abs() == libc::ENOENT => Ok(false),
            rc => Err(errno(&format!("removing from map `{map}`"), rc)),
        }
    }

    /// Sets what the program does on the port `BPF_PROG_TEST_RUN` runs it
    /// on (the loopback, [`Program::test_run`]).
    pub fn set_flags(&self, f: u32) -> Result<(), String> {
        self.configure(loopback(), f, 0)
    }

    /// Sends what goes up on port slot `slot`, queue `queue` to AF_XDP
    /// socket `fd`.
    pub fn add_socket(&self, slot: u32, queue: u32, fd: RawFd) -> Result<(), String> {
        if queue >= XSKS_PER_PORT {
            return Err(format!("queue {queue}: the XDP program serves queues 0..{XSKS_PER_PORT}"));
        }
        self.update("xsks", &(slot * XSKS_PER_PORT + queue).to_ne_bytes(), &(fd as u32).to_ne_bytes())
    }

    /// Packets forwarded in XDP and packets sent up, over every CPU.
    pub fn counts(&self) -> [u64; 2] {
        let Ok(fd) = self.map("counts") else { return [0, 0] };
        // SAFETY: no arguments.
        let cpus = unsafe { bpf::libbpf_num_possible_cpus() }.max(1) as usize;
        let mut out = [0u64; 2];
        let mut per_cpu = vec![0u64; cpus];
        for (i, o) in out.iter_mut().enumerate() {
            // SAFETY: a per-CPU array's value is one u64 per possible CPU.
            let rc = unsafe {
                bpf::bpf_map_lookup_elem(fd, (&(i as u32) as *const u32).cast(), per_cpu.as_mut_ptr().cast())
            };
            if rc == 0 {
                *o = per_cpu.iter().sum();
            }
        }
        out
    }

    /// Cross-connects: what arrives on `from` (ifindex) leaves on `to`.
    pub fn patch(&self, from: u32, to: u32) -> Result<(), String> {
        self.update("patch", &from.to_ne_bytes(), &to.to_ne_bytes())
    }

    /// Loads an ACL: `rules` in order (at most [`ACL_MAX`]), the default
    /// action and the action for frames not IP (true: deny). Written into
    /// the rule set not in use, then switched to in one store.
    pub fn acl(&self, rules: &[AclRule], default_deny: bool, non_ip_deny: bool) -> Result<(), String> {
        if rules.len() > ACL_MAX {
            return Err(format!("{} rules, the XDP filter holds {ACL_MAX}", rules.len()));
        }
        let fd = self.map("acl_conf")?;
        let mut now = 0u32;
        // SAFETY: key and value are the map's sizes; the kernel writes now.
        unsafe { bpf::bpf_map_lookup_elem(fd, (&0u32 as *const u32).cast(), (&mut now as *mut u32).cast()) };
        let second = now & ACL_SECOND == 0;
        let base = if second { ACL_MAX as u32 } else { 0 };
        for (i, r) in rules.iter().enumerate() {
            self.update("acl_rules", &(base + i as u32).to_ne_bytes(), bytes_of(r))?;
        }
        let word = rules.len() as u32
            | if second { ACL_SECOND } else { 0 }
            | if default_deny { 1 << 17 } else { 0 }
            | if non_ip_deny { 1 << 18 } else { 0 };
        self.update("acl_conf", &0u32.to_ne_bytes(), &word.to_ne_bytes())
    }

    /// Installs (or replaces) one direction of a flow.
    pub fn flow_insert(&self, key: &FlowKey, value: &FlowValue) -> Result<(), String> {
        self.update("flows", bytes_of(key), bytes_of(value))
    }

    /// Removes one direction of a flow; false when it was not there.
    pub fn flow_remove(&self, key: &FlowKey) -> Result<bool, String> {
        self.delete("flows", bytes_of(key))
    }

    /// One direction of a flow as the program last left it (its
    /// `last_seen` for the idle timers).
    pub fn flow_get(&self, key: &FlowKey) -> Result<Option<FlowValue>, String> {
        self.get("flows", key)
    }

    /// `key`'s value in `map` (`None`: not there). `K` and `V` are the
    /// map's key and value types (repr(C) twins).
    pub(crate) fn get<K: Copy, V: Copy + Default>(&self, map: &str, key: &K) -> Result<Option<V>, String> {
        let fd = self.map(map)?;
        let mut v = V::default();
        // SAFETY: key and value are the map's sizes (the callers' types);
        // the kernel writes v.
        let rc = unsafe { bpf::bpf_map_lookup_elem(fd, bytes_of(key).as_ptr().cast(), (&mut v as *mut V).cast()) };
        match rc {
            0 => Ok(Some(v)),
            rc if rc.abs() == libc::ENOENT => Ok(None),
            rc => Err(errno(&format!("reading map `{map}`"), rc)),
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

/// The engine the runtime drives ([`nfv_core::offload::Engine`]): one
/// program attached to every AF_XDP port of the run, detached when the
/// run ends.
pub struct Engine {
    program: Program,
    /// Attached ports: interface index -> (slot, XDP attach flags).
    ports: Mutex<HashMap<u32, (u32, u32)>>,
}

impl Engine {
    /// Loads the program (root, or CAP_BPF and CAP_NET_ADMIN).
    pub fn load() -> Result<Self, String> {
        Ok(Self { program: Program::load()?, ports: Mutex::new(HashMap::new()) })
    }

    /// The program, for what the engine trait does not cover (an ACL).
    pub fn program(&self) -> &Program {
        &self.program
    }
}

fn program_flags(p: PortProgram) -> u32 {
    let mut f = 0;
    let steps = [
        (p.acl, flags::ACL),
        (p.vtep, flags::VTEP),
        (p.ttl, flags::TTL),
        (p.flows, flags::FLOWS),
        (p.macswap, flags::MACSWAP),
        (p.back, flags::BACK),
        (p.upf, flags::UPF),
    ];
    for (on, bit) in steps {
        if on {
            f |= bit;
        }
    }
    f
}

impl nfv_core::offload::Engine for Engine {
    fn attach(&self, ifindex: u32, mode: XdpMode, program: PortProgram, peer: u32) -> Result<(bool, String), String> {
        let mut ports = self.ports.lock().unwrap_or_else(|e| e.into_inner());
        let how = |m: u32| {
            let driver = m == bpf::XDP_FLAGS_DRV_MODE;
            let at = if driver { "driver" } else { "generic (skb)" };
            (driver, format!("nfv XDP program in {at} mode, doing {}", program.describe()))
        };
        if let Some(&(_, m)) = ports.get(&ifindex) {
            return Ok(how(m));
        }
        let slot = ports.len() as u32;
        if slot >= PORTS_MAX {
            return Err(format!("the XDP program serves {PORTS_MAX} ports"));
        }
        let mut f = program_flags(program);
        let mut name = [0 as libc::c_char; libc::IF_NAMESIZE];
        // SAFETY: a buffer of IF_NAMESIZE, as the call needs.
        if !unsafe { libc::if_indextoname(ifindex, name.as_mut_ptr()) }.is_null() {
            // SAFETY: if_indextoname wrote a NUL-terminated name.
            let name = unsafe { std::ffi::CStr::from_ptr(name.as_ptr()) }.to_string_lossy();
            if crate::probe::driver(&name).as_deref() == Some("veth") {
                f |= flags::TX_BY_REDIRECT;
            }
        }
        self.program.configure(ifindex, f, slot)?;
        if program.patch && peer != 0 {
            self.program.patch(ifindex, peer)?;
        }
        let attempts: &[u32] = match mode {
            XdpMode::Skb => &[bpf::XDP_FLAGS_SKB_MODE],
            XdpMode::Driver | XdpMode::ZeroCopy => &[bpf::XDP_FLAGS_DRV_MODE],
            XdpMode::Auto => &[bpf::XDP_FLAGS_DRV_MODE, bpf::XDP_FLAGS_SKB_MODE],
        };
        let mut refused = Vec::new();
        for &m in attempts {
            // Never replaces a program someone else attached.
            let f = m | bpf::XDP_FLAGS_UPDATE_IF_NOEXIST;
            // SAFETY: a loaded program's fd; no options.
            let rc = unsafe { bpf::bpf_xdp_attach(ifindex as i32, self.program.prog, f, std::ptr::null()) };
            if rc == 0 {
                ports.insert(ifindex, (slot, m));
                return Ok(how(m));
            }
            let e = std::io::Error::from_raw_os_error(rc.abs());
            refused.push(if rc.abs() == libc::EBUSY {
                format!("another XDP program is attached (`ip link set dev IFACE xdp off` removes it): {e}")
            } else {
                e.to_string()
            });
        }
        Err(format!("cannot attach the XDP program to ifindex {ifindex}: {}", refused.join("; ")))
    }

    fn add_socket(&self, ifindex: u32, queue: u32, fd: RawFd) -> Result<(), String> {
        let ports = self.ports.lock().unwrap_or_else(|e| e.into_inner());
        let &(slot, _) = ports.get(&ifindex).ok_or_else(|| format!("ifindex {ifindex} has no program attached"))?;
        self.program.add_socket(slot, queue, fd)
    }

    fn insert(&self, e: &Entry) -> Result<(), String> {
        match e {
            Entry::Flow(k, v) => self.program.flow_insert(k, v),
            Entry::L2(k, v) => self.program.l2_insert(k, v),
            Entry::Uplink(t, v) => self.program.update("upf_up", &t.to_be_bytes(), bytes_of(v)),
            Entry::Downlink(u, v) => self.program.update("upf_down", &u.to_be_bytes(), bytes_of(v)),
        }
    }

    fn remove(&self, key: &Key) -> Result<bool, String> {
        match key {
            Key::Flow(k) => self.program.flow_remove(k),
            Key::L2(k) => self.program.delete("l2", bytes_of(k)),
            Key::Teid(t) => self.program.delete("upf_up", &t.to_be_bytes()),
            Key::Ue(u) => self.program.delete("upf_down", &u.to_be_bytes()),
        }
    }

    fn last_seen(&self, key: &Key) -> Result<Option<u64>, String> {
        Ok(match key {
            Key::Flow(k) => self.program.flow_get(k)?.map(|v| v.last_seen),
            Key::L2(k) => self.program.l2_get(k)?.map(|v| v.last_seen),
            Key::Teid(t) => self.program.get::<_, UpfUplink>("upf_up", &t.to_be_bytes())?.map(|_| 0),
            Key::Ue(u) => self.program.get::<_, UpfDownlink>("upf_down", &u.to_be_bytes())?.map(|_| 0),
        })
    }

    fn activity(&self) -> Result<Vec<(Key, u64)>, String> {
        let flows = self.program.dump::<FlowKey, FlowValue>("flows")?;
        let l2 = self.program.dump::<L2Key, L2Value>("l2")?;
        Ok(flows
            .into_iter()
            .map(|(k, v)| (Key::Flow(k), v.last_seen))
            .chain(l2.into_iter().map(|(k, v)| (Key::L2(k), v.last_seen)))
            .collect())
    }

    fn set_vtep(&self, v: &nfv_core::offload::Vtep, ifindex: &[u32]) -> Result<(), String> {
        let at = |p: u16| ifindex.get(p as usize).copied().filter(|&i| i != 0);
        let mut conf = v.conf;
        conf.underlay = at(v.underlay).ok_or("the VTEP's underlay is not a device")?;
        self.program.vtep(&conf)?;
        let ports = self.ports.lock().unwrap_or_else(|e| e.into_inner());
        for &(p, vni) in &v.ports {
            let ifx = at(p).ok_or("a VTEP access port is not a device")?;
            let &(slot, _) = ports.get(&ifx).ok_or("a VTEP access port has no program attached")?;
            let flags = self.program.port_flags(ifx)?;
            self.program.configure_vni(ifx, flags, slot, vni)?;
        }
        Ok(())
    }

    fn set_upf(&self, u: &UpfConf, ifindex: &[u32]) -> Result<(), String> {
        let n3 = ifindex.get(u.n3 as usize).copied().filter(|&i| i != 0).ok_or("the UPF's N3 port is not a device")?;
        self.program.upf(u.n3_address, n3)
    }

    fn usage(&self, slot: u32) -> Result<UsageCounts, String> {
        self.program.usage(slot)
    }

    fn set_filter(&self, f: &nfv_core::offload::Filter) -> Result<(), String> {
        if f.up {
            return self.program.update("acl_conf", &0u32.to_ne_bytes(), &ACL_UP.to_ne_bytes());
        }
        self.program.acl(&f.rules, f.default_deny, f.non_ip_deny)
    }

    fn stats(&self) -> nfv_core::offload::EngineStats {
        let [forwarded, up] = self.program.counts();
        let mut info: bpf::bpf_prog_info = unsafe { std::mem::zeroed() };
        let mut len = std::mem::size_of::<bpf::bpf_prog_info>() as u32;
        // SAFETY: info is as long as len says; the kernel fills it.
        let rc = unsafe { bpf::bpf_prog_get_info_by_fd(self.program.prog, &mut info, &mut len) };
        let (runs, run_ns) = if rc == 0 { (info.run_cnt, info.run_time_ns) } else { (0, 0) };
        nfv_core::offload::EngineStats { forwarded, up, runs, run_ns }
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        let ports = self.ports.get_mut().unwrap_or_else(|e| e.into_inner());
        for (&ifindex, &(_, mode)) in ports.iter() {
            // SAFETY: detaches what this engine attached, in the same mode.
            unsafe { bpf::bpf_xdp_detach(ifindex as i32, mode, std::ptr::null()) };
        }
    }
}
