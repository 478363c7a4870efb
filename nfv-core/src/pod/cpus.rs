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
    // SAFETY: a zeroed set is valid; the kernel fills it.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: the set's size as the call needs; pid 0: this thread.
    if unsafe { libc::sched_getaffinity(0, size_of::<libc::cpu_set_t>(), &mut set) } != 0 {
        return Vec::new();
    }
    // SAFETY: CPU_ISSET reads the set within its size.
    (0..libc::CPU_SETSIZE as usize).filter(|&c| unsafe { libc::CPU_ISSET(c, &set) }).collect()
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
}
