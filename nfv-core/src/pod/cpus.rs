//! The CPUs and huge pages the pod has: the affinity the process started
//! with (read before any thread pins itself) and the cgroup's cpuset (the
//! kubelet's CPU manager, static policy, gives a Guaranteed pod's
//! container with integer CPUs those CPUs alone), the huge pages of the
//! node and the hugetlbfs mounts the pod has.

use std::path::Path;

/// A CPU list as the kernel writes it (`0-3,8,10-11`).
pub fn parse_list(s: &str) -> Result<Vec<usize>, String> {
    let mut out = Vec::new();
    for part in s.trim().split(',').filter(|p| !p.is_empty()) {
        let num = |n: &str| n.trim().parse::<usize>().map_err(|_| format!("`{s}` is not a CPU list"));
        match part.split_once('-') {
            Some((a, b)) => out.extend(num(a)?..=num(b)?),
            None => out.push(num(part)?),
        }
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

/// `cpus` as a CPU list (`0-3,8`).
pub fn format_list(cpus: &[usize]) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut i = 0;
    while i < cpus.len() {
        let mut j = i;
        while j + 1 < cpus.len() && cpus[j + 1] == cpus[j] + 1 {
            j += 1;
        }
        parts.push(if j == i { cpus[i].to_string() } else { format!("{}-{}", cpus[i], cpus[j]) });
        i = j + 1;
    }
    parts.join(",")
}

/// The CPUs this process may run on now (its affinity).
pub fn affinity() -> Vec<usize> {
    core_affinity::get_core_ids().map(|ids| ids.into_iter().map(|c| c.id).collect()).unwrap_or_default()
}

/// Pins the calling thread to `cpus` (threads it starts inherit them).
pub fn pin_current(cpus: &[usize]) -> Result<(), String> {
    // SAFETY: a zeroed set is valid; CPU_SET writes within it.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    for &c in cpus {
        // SAFETY: as above.
        unsafe { libc::CPU_SET(c, &mut set) };
    }
    // SAFETY: the set's size as the call needs; pid 0: this thread.
    match unsafe { libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &set) } {
        0 => Ok(()),
        _ => Err(format!("cannot run on CPUs {}: {}", format_list(cpus), std::io::Error::last_os_error())),
    }
}

/// The cgroup v2 cpuset of this process (`cpuset.cpus.effective` of its
/// cgroup under `cgroup_root`, its path from `proc_root/self/cgroup`).
pub fn cgroup_cpuset(proc_root: &Path, cgroup_root: &Path) -> Option<Vec<usize>> {
    let own = std::fs::read_to_string(proc_root.join("self/cgroup")).ok()?;
    let path = own.lines().find_map(|l| l.strip_prefix("0::"))?;
    let file = cgroup_root.join(path.trim_start_matches('/')).join("cpuset.cpus.effective");
    parse_list(&std::fs::read_to_string(file).ok()?).ok()
}

/// Huge pages: the node's default size and count, and the hugetlbfs
/// mounts the pod has (an `emptyDir` with `medium: HugePages`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HugePages {
    /// `Hugepagesize` in KiB.
    pub size_kib: u64,
    /// `HugePages_Total`.
    pub total: u64,
    /// `HugePages_Free`.
    pub free: u64,
    /// hugetlbfs mount points.
    pub mounts: Vec<String>,
}

/// Reads [`HugePages`] from `proc_root` (`meminfo`, `self/mounts`).
pub fn huge_pages(proc_root: &Path) -> HugePages {
    let mut h = HugePages::default();
    let meminfo = std::fs::read_to_string(proc_root.join("meminfo")).unwrap_or_default();
    for l in meminfo.lines() {
        let mut w = l.split_whitespace();
        let (Some(k), Some(v)) = (w.next(), w.next().and_then(|v| v.parse().ok())) else { continue };
        match k {
            "HugePages_Total:" => h.total = v,
            "HugePages_Free:" => h.free = v,
            "Hugepagesize:" => h.size_kib = v,
            _ => {}
        }
    }
    let mounts = std::fs::read_to_string(proc_root.join("self/mounts")).unwrap_or_default();
    h.mounts = mounts
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() > 2 && f[2] == "hugetlbfs").then(|| f[1].to_string())
        })
        .collect();
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists_read_and_write_as_the_kernel_does() {
        assert_eq!(parse_list("0-3,8,10-11\n").unwrap(), [0, 1, 2, 3, 8, 10, 11]);
        assert_eq!(format_list(&[0, 1, 2, 3, 8, 10, 11]), "0-3,8,10-11");
        assert_eq!(parse_list("").unwrap(), Vec::<usize>::new());
        assert!(parse_list("0-x").is_err());
        assert!(!affinity().is_empty(), "this process runs somewhere");
    }

    #[test]
    fn workers_get_cpus_of_their_own_and_housekeeping_the_one_left() {
        let p = place(&[None, None], &[4, 5, 6]).unwrap();
        assert_eq!((p.workers, p.housekeeping, p.notes.len()), (vec![5, 6], vec![4], 0));
        let p = place(&[Some(6), None], &[4, 5, 6]).unwrap();
        assert_eq!((p.workers, p.housekeeping), (vec![6, 5], vec![4]), "a named core is kept");
        let p = place(&[None, None], &[4, 5]).unwrap();
        assert_eq!((p.workers, p.housekeeping.clone()), (vec![4, 5], vec![4, 5]));
        assert!(p.notes[0].contains("request one CPU more"), "{:?}", p.notes);
        let p = place(&[None], &[2, 3, 4, 5]).unwrap();
        assert_eq!((p.workers, p.housekeeping), (vec![3], vec![2, 4, 5]));
        assert!(place(&[Some(9)], &[4, 5]).unwrap_err().contains("core 9 is not among the pod's CPUs (4-5)"));
        assert!(place(&[None, None, None], &[4, 5]).unwrap_err().contains("request 4 integer CPUs"));
        assert!(place(&[Some(4), Some(4)], &[4, 5]).unwrap_err().contains("two workers on CPU 4"));
    }
}

/// Where the workers and everything else run in a pod: each worker on a
/// CPU of its own, and the management plane, control tasks and slow path
/// on the CPUs left (housekeeping).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Placement {
    /// Each worker's CPU.
    pub workers: Vec<usize>,
    /// The CPUs of every other thread.
    pub housekeeping: Vec<usize>,
    /// What the placement had to settle for.
    pub notes: Vec<String>,
}

/// Places workers whose configuration names a core (`written[i]`) there,
/// the others on the pod's `cpus` in order, keeping the first CPU no
/// worker names for housekeeping when there are more CPUs than workers
/// (under the CPU manager's static policy every CPU of a Guaranteed
/// container is exclusive: one more than the workers is the shared one).
/// Refused: a core the pod lacks, two workers on one CPU, more workers
/// than CPUs.
pub fn place(written: &[Option<usize>], cpus: &[usize]) -> Result<Placement, String> {
    let list = format_list(cpus);
    for (i, c) in written.iter().enumerate() {
        if let Some(c) = c.filter(|c| !cpus.contains(c)) {
            return Err(format!(
                "worker {i}: core {c} is not among the pod's CPUs ({list}): name one of them, or leave `core` out \
                 and nfv places the worker"
            ));
        }
    }
    if written.len() > cpus.len() {
        return Err(format!(
            "{} workers need a CPU each, the pod has {} ({list}): request {} integer CPUs (Guaranteed QoS) or run \
             fewer workers",
            written.len(),
            cpus.len(),
            written.len() + 1
        ));
    }
    let named: Vec<usize> = written.iter().flatten().copied().collect();
    let mut free = cpus.iter().copied().filter(|c| !named.contains(c));
    let housekeeping = if cpus.len() > written.len() { free.next() } else { None };
    let mut workers = Vec::with_capacity(written.len());
    for (i, c) in written.iter().enumerate() {
        let c = match c {
            Some(c) => *c,
            None => free.next().ok_or_else(|| format!("worker {i}: no CPU left of the pod's {list}"))?,
        };
        if workers.contains(&c) {
            return Err(format!("two workers on CPU {c}: a poll-mode worker needs a CPU of its own"));
        }
        workers.push(c);
    }
    let mut notes = Vec::new();
    let housekeeping = match housekeeping {
        Some(h) => {
            // Whatever no worker took is housekeeping's too.
            let mut v: Vec<usize> = cpus.iter().copied().filter(|c| !workers.contains(c)).collect();
            v.sort_unstable();
            debug_assert!(v.contains(&h));
            v
        }
        None => {
            notes.push(format!(
                "every CPU of the pod ({list}) runs a worker: the management plane and control tasks share them \
                 (request one CPU more than workers)"
            ));
            cpus.to_vec()
        }
    };
    Ok(Placement { workers, housekeeping, notes })
}
