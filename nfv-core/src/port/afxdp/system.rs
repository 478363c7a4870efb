//! What AF_XDP needs from the host before a socket can be made: bpffs for
//! libxdp's pinned programs, a memlock limit large enough for the UMEM,
//! and no XDP program left behind by a crashed run.

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::sync::OnceLock;

/// Where libxdp looks for bpffs.
const BPFFS: &str = "/sys/fs/bpf";
/// `statfs` magic of bpffs (linux/magic.h).
const BPF_FS_MAGIC: i64 = 0xcafe4a11;
/// Names of the programs an nfv run attaches: libxdp's built-in AF_XDP
/// redirect program, and nfv's own XDP engine (`nfv-hw`).
const OUR_PROGRAMS: [&str; 2] = ["xsk_def_prog", "nfv_xdp"];

/// Prepares the process once: raises the memlock limit as far as allowed
/// and mounts bpffs when it is missing and we may. Returns notes for the
/// startup report on the first call only (never fails: libxdp works
/// without bpffs, loading its program without the multi-program
/// dispatcher).
pub fn prepare() -> Vec<String> {
    static DONE: OnceLock<()> = OnceLock::new();
    let mut notes = Vec::new();
    DONE.get_or_init(|| {
        quiet_libraries();
        raise_memlock(&mut notes);
        mount_bpffs(&mut notes);
    });
    notes
}

/// libbpf and libxdp print warnings to stderr for things this module
/// handles and reports itself (no dispatcher without bpffs, BTF sections
/// they skip). `NFV_XDP_DEBUG=1` keeps their output.
fn quiet_libraries() {
    if std::env::var_os("NFV_XDP_DEBUG").is_some() {
        return;
    }
    unsafe extern "C" fn quiet_xdp(
        _: libxdp_sys::libxdp_print_level,
        _: *const libc::c_char,
        _: *mut libxdp_sys::__va_list_tag,
    ) -> libc::c_int {
        0
    }
    unsafe extern "C" fn quiet_bpf(
        _: libbpf_sys::libbpf_print_level,
        _: *const libc::c_char,
        _: *mut libbpf_sys::__va_list_tag,
    ) -> libc::c_int {
        0
    }
    // SAFETY: installs callbacks that ignore their arguments.
    unsafe {
        libxdp_sys::libxdp_set_print(Some(quiet_xdp));
        libbpf_sys::libbpf_set_print(Some(quiet_bpf));
    }
}

fn raise_memlock(notes: &mut Vec<String>) {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: plain syscalls on a local struct.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut lim) != 0 || lim.rlim_cur == libc::RLIM_INFINITY {
            return;
        }
        let want = libc::rlimit { rlim_cur: libc::RLIM_INFINITY, rlim_max: libc::RLIM_INFINITY };
        if libc::setrlimit(libc::RLIMIT_MEMLOCK, &want) == 0 {
            return;
        }
        let soft = libc::rlimit { rlim_cur: lim.rlim_max, rlim_max: lim.rlim_max };
        libc::setrlimit(libc::RLIMIT_MEMLOCK, &soft);
    }
    // CAP_IPC_LOCK (root's, or given) lifts the limit for UMEM pinning.
    if !caps::has_cap(None, caps::CapSet::Effective, caps::Capability::CAP_IPC_LOCK).unwrap_or(false) {
        notes.push(format!(
            "memlock limit is {} KiB and may not be raised: a UMEM larger than that fails with ENOBUFS \
             (run as root, give CAP_IPC_LOCK, or raise `ulimit -l`)",
            lim.rlim_max / 1024
        ));
    }
}

fn mount_bpffs(notes: &mut Vec<String>) {
    let path = CString::new(BPFFS).expect("no NUL");
    // SAFETY: statfs into a zeroed local struct.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statfs(path.as_ptr(), &mut st) } == 0 && st.f_type as i64 == BPF_FS_MAGIC {
        return;
    }
    let fstype = CString::new("bpf").expect("no NUL");
    // SAFETY: mount(2) with valid C strings; fails cleanly without privilege.
    let rc = unsafe { libc::mount(fstype.as_ptr(), path.as_ptr(), fstype.as_ptr(), 0, std::ptr::null()) };
    if rc == 0 {
        notes.push(format!("mounted bpffs on {BPFFS}"));
    } else {
        notes.push(format!(
            "no bpffs on {BPFFS} ({}): libxdp loads its program without the multi-program dispatcher",
            io::Error::last_os_error()
        ));
    }
}

/// Exclusive claim on an interface by this process, held for the life of
/// its sockets. An flock dies with its process, `kill -9` included, so a
/// lock we can take while libxdp's socket program is attached proves no
/// nfv uses that program: it was left by a run that no longer exists, or
/// belongs to another AF_XDP application (testpmd's PMD loads the same
/// program), which must not share an interface with nfv anyway.
pub struct InterfaceLock {
    _file: File,
}

impl InterfaceLock {
    /// Locks `ifname` in this network namespace, then detaches a stale
    /// libxdp socket program from it. `Ok(Some(note))` says what was
    /// cleaned up.
    pub fn acquire(ifname: &str, ifindex: u32, detach_stale: bool) -> io::Result<(Self, Option<String>)> {
        // /run/nfv where this user may write there (root; a pod's
        // emptyDir), else the temporary directory (a non-root user).
        let name = format!("xdp-{}-{ifname}.lock", netns_id());
        let open = |p: &PathBuf| std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(p);
        let run = PathBuf::from("/run/nfv").join(&name);
        let (path, file) = match std::fs::create_dir_all("/run/nfv").and_then(|_| open(&run)) {
            Ok(f) => (run, f),
            Err(_) => {
                let tmp = std::env::temp_dir().join(&name);
                let f = open(&tmp)?;
                (tmp, f)
            }
        };
        // SAFETY: flock on a file we own.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            return Err(io::Error::new(
                io::ErrorKind::AddrInUse,
                format!("interface {ifname} is in use by another nfv process (lock {})", path.display()),
            ));
        }
        let note = if detach_stale { detach_stale_program(ifindex)? } else { None };
        Ok((Self { _file: file }, note))
    }
}

/// Identifies the network namespace (interface names are per namespace).
fn netns_id() -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self/ns/net").map(|m| m.ino()).unwrap_or(0)
}

/// Detaches libxdp's socket program or nfv's XDP engine if that is all
/// that is attached (what a killed nfv leaves: the program, and for
/// libxdp's a reference count that never drops to zero). Anything else
/// attached is left alone.
fn detach_stale_program(ifindex: u32) -> io::Result<Option<String>> {
    // SAFETY: libxdp returns an owned multiprog (or an error pointer) that
    // is closed below; names are NUL-terminated strings it owns.
    unsafe {
        let mp = libxdp_sys::xdp_multiprog__get_from_ifindex(ifindex as i32);
        if mp.is_null() || libxdp_sys::libxdp_get_error(mp as *const libc::c_void) != 0 {
            return Ok(None);
        }
        let mut names = Vec::new();
        if libxdp_sys::xdp_multiprog__is_legacy(mp) {
            let p = libxdp_sys::xdp_multiprog__main_prog(mp);
            if !p.is_null() {
                names.push(prog_name(p));
            }
        } else {
            let mut p = libxdp_sys::xdp_multiprog__next_prog(std::ptr::null(), mp);
            while !p.is_null() {
                names.push(prog_name(p));
                p = libxdp_sys::xdp_multiprog__next_prog(p, mp);
            }
        }
        let stale = !names.is_empty() && names.iter().all(|n| OUR_PROGRAMS.contains(&n.as_str()));
        let result = if stale {
            let rc = libxdp_sys::xdp_multiprog__detach(mp);
            if rc != 0 {
                Err(io::Error::other(format!(
                    "a stale {} is attached to ifindex {ifindex} and could not be detached: {}",
                    names.join(", "),
                    io::Error::from_raw_os_error(-rc)
                )))
            } else {
                Ok(Some(format!("detached {} left by an earlier run", names.join(", "))))
            }
        } else {
            Ok(None)
        };
        libxdp_sys::xdp_multiprog__close(mp);
        result
    }
}

/// # Safety
/// `p` must be a live libxdp program.
unsafe fn prog_name(p: *mut libxdp_sys::xdp_program) -> String {
    // SAFETY: libxdp returns a NUL-terminated name owned by the program.
    unsafe {
        let n = libxdp_sys::xdp_program__name(p);
        if n.is_null() { String::new() } else { std::ffi::CStr::from_ptr(n).to_string_lossy().into_owned() }
    }
}
