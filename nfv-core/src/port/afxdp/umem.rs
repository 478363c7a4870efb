//! UMEM: the worker's frame arena, registered with the kernel.
//!
//! One anonymous mmap per worker holds every frame the worker uses, for
//! every port: AF_XDP sockets on several interfaces share it
//! (`XDP_SHARED_UMEM`), so a frame received on one port is transmitted on
//! another without a copy. Where the kernel refuses to share (two devices
//! bound in different modes), the same memory is registered a second time
//! as its own UMEM: frame indices stay valid across both, still no copy.

use std::io;
use std::ptr::NonNull;
use std::sync::{Arc, Mutex};

use libxdp_sys::{xsk_umem, xsk_umem_config};

use super::ring::{ConsRing, ProdRing};
use crate::frame::{Arena, FRAME_SIZE, HEADROOM};

/// The mmap'ed memory behind a worker's arena.
pub struct UmemArea {
    base: NonNull<u8>,
    len: usize,
    /// Bytes mapped (a hugetlb mapping is whole pages).
    mapped: usize,
    /// In huge pages of the node's pool (`MAP_HUGETLB`): a pod's
    /// `hugepages-2Mi` request, rather than transparent huge pages.
    pub hugetlb: bool,
}

// SAFETY: plain memory; frames are handed between threads only through the
// frame ownership protocol of `crate::frame`.
unsafe impl Send for UmemArea {}
unsafe impl Sync for UmemArea {}

impl UmemArea {
    /// Maps and pre-faults `frames` frames of zeroed memory, in
    /// transparent huge pages where the kernel offers them (every packet
    /// touches its frame: with 4 KiB pages a worker's 8 MiB of frames
    /// would span 2048 TLB entries; DPDK puts its mbufs in hugepages for
    /// the same reason). The mapping is aligned to 2 MiB so whole huge
    /// pages fit; pages are faulted in before the kernel pins them.
    pub fn new(frames: u32) -> io::Result<Arc<Self>> {
        const HUGE: usize = 2 << 20;
        let len = frames as usize * FRAME_SIZE;
        if let Some(area) = Self::hugetlb(len) {
            return Ok(area);
        }
        let span = len + HUGE;
        // SAFETY: anonymous private mapping, no file; checked below.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                span,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let start = p as usize;
        let aligned = start.next_multiple_of(HUGE);
        // SAFETY: unmaps the unaligned head and the tail beyond `len`,
        // both inside the mapping just made and never handed out.
        unsafe {
            if aligned > start {
                libc::munmap(p, aligned - start);
            }
            let end = aligned + len;
            if start + span > end {
                libc::munmap(end as *mut libc::c_void, start + span - end);
            }
        }
        let base = NonNull::new(aligned as *mut u8).ok_or_else(|| io::Error::other("mmap returned null"))?;
        nfv_net::mem::advise_huge(base.as_ptr(), len);
        // Fault every page in now (what MAP_POPULATE did): one write per
        // 4 KiB, so with THP one fault per 2 MiB.
        for off in (0..len).step_by(4096) {
            // SAFETY: inside the mapping, which nothing else uses yet.
            unsafe { base.as_ptr().add(off).write_volatile(0) };
        }
        Ok(Arc::new(Self { base, len, mapped: len, hugetlb: false }))
    }

    /// The area in huge pages of the node's pool (2 MiB, `MAP_HUGETLB`),
    /// when enough are free: what a pod's `hugepages-2Mi` request gives
    /// it (the hugetlb cgroup bounds it), as DPDK's mbuf pools use them.
    /// `None`: none free, or the kernel refused; transparent huge pages
    /// then.
    fn hugetlb(len: usize) -> Option<Arc<Self>> {
        const HUGE: usize = 2 << 20;
        let mapped = len.next_multiple_of(HUGE);
        let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
        let field =
            |k: &str| meminfo.lines().find_map(|l| l.strip_prefix(k)?.split_whitespace().next()?.parse::<usize>().ok());
        let (free, size_kib) = (field("HugePages_Free:")?, field("Hugepagesize:")?);
        if size_kib * 1024 != HUGE || free * HUGE < mapped {
            return None;
        }
        // SAFETY: an anonymous private mapping of whole huge pages, no
        // file; checked below.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                mapped,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_HUGETLB,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return None;
        }
        let base = NonNull::new(p as *mut u8)?;
        for off in (0..mapped).step_by(HUGE) {
            // SAFETY: inside the mapping, which nothing else uses yet.
            unsafe { base.as_ptr().add(off).write_volatile(0) };
        }
        Some(Arc::new(Self { base, len, mapped, hugetlb: true }))
    }

    /// The arena view the worker's pool and batches use. The arena keeps
    /// the mapping alive. Crate-private and taken once per area: two
    /// arenas over one mapping would let two pools hand out one frame.
    pub(crate) fn arena(self: &Arc<Self>) -> Arc<Arena> {
        let frames = (self.len / FRAME_SIZE) as u32;
        // SAFETY: `base` maps `frames * FRAME_SIZE` writable bytes, kept
        // alive by the Arc moved into the arena; the kernel touches a frame
        // only while it sits in one of our rings.
        unsafe { Arena::from_raw(self.base, frames, Box::new(self.clone())) }
    }

    /// Size in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True for a zero-sized area.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl Drop for UmemArea {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly what `new` mapped; no reference outlives
        // the last Arc.
        unsafe { libc::munmap(self.base.as_ptr() as *mut libc::c_void, self.mapped) };
    }
}

/// One registration of a [`UmemArea`] with the kernel (`XDP_UMEM_REG`),
/// with the fill and completion rings libxdp created for it. Sockets keep
/// it alive; the last one to go deletes it.
pub struct UmemReg {
    pub(super) ptr: NonNull<xsk_umem>,
    /// The rings made at registration, taken by the first socket.
    pub(super) first_rings: Mutex<Option<(ProdRing, ConsRing)>>,
    /// Serialises libxdp calls on this UMEM (socket create and delete).
    pub(super) lock: Mutex<()>,
    _area: Arc<UmemArea>,
}

// SAFETY: libxdp calls on the UMEM are serialised by `lock`.
unsafe impl Send for UmemReg {}
unsafe impl Sync for UmemReg {}

impl UmemReg {
    /// Registers `area`. `fill` and `comp` size the rings every socket on
    /// this registration gets.
    pub fn register(area: &Arc<UmemArea>, fill: u32, comp: u32) -> io::Result<Arc<Self>> {
        let mut fq = ProdRing::unmapped();
        let mut cq = ConsRing::unmapped();
        let cfg = xsk_umem_config {
            fill_size: fill,
            comp_size: comp,
            frame_size: FRAME_SIZE as u32,
            // The kernel places data at XDP_PACKET_HEADROOM (256) plus this;
            // 256 is already our HEADROOM.
            frame_headroom: (HEADROOM - libxdp_sys::XDP_PACKET_HEADROOM as usize) as u32,
            flags: 0,
        };
        let mut ptr = std::ptr::null_mut();
        // SAFETY: `area` is a live mapping of `len` bytes; the ring structs
        // are boxed so their addresses, which libxdp keeps, do not move.
        let err = unsafe {
            libxdp_sys::xsk_umem__create(
                &mut ptr,
                area.base.as_ptr() as *mut libc::c_void,
                area.len as u64,
                &mut *fq.r,
                &mut *cq.r,
                &cfg,
            )
        };
        if err != 0 {
            return Err(io::Error::from_raw_os_error(-err));
        }
        let ptr = NonNull::new(ptr).ok_or_else(|| io::Error::other("xsk_umem__create returned null"))?;
        if !fq.is_mapped() || !cq.is_mapped() {
            return Err(io::Error::other("UMEM fill/completion rings were not mapped"));
        }
        Ok(Arc::new(Self { ptr, first_rings: Mutex::new(Some((fq, cq))), lock: Mutex::new(()), _area: area.clone() }))
    }
}

impl Drop for UmemReg {
    fn drop(&mut self) {
        // Every socket holds an Arc, so none is left: delete cannot be busy.
        // SAFETY: ptr came from xsk_umem__create and is deleted once.
        unsafe { libxdp_sys::xsk_umem__delete(self.ptr.as_ptr()) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meminfo(key: &str) -> usize {
        let m = std::fs::read_to_string("/proc/meminfo").unwrap();
        m.lines().find_map(|l| l.strip_prefix(key)?.split_whitespace().next()?.parse().ok()).unwrap_or(0)
    }

    /// With huge pages in the node's pool (a pod's `hugepages-2Mi`), the
    /// frames take them; without, transparent huge pages.
    #[test]
    fn frames_take_the_pools_huge_pages_when_there_are_enough() {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("SKIPPED frames_take_the_pools_huge_pages: not root (the pool is a sysctl)");
            return;
        }
        let sysctl = "/proc/sys/vm/nr_hugepages";
        let before = std::fs::read_to_string(sysctl).unwrap();
        let pages: usize = before.trim().parse().unwrap();
        let free = meminfo("HugePages_Free:");
        std::fs::write(sysctl, (pages + 4).to_string()).unwrap();
        let area = UmemArea::new(4096).unwrap();
        let taken = free + 4 - meminfo("HugePages_Free:");
        let second = UmemArea::new(4096);
        std::fs::write(sysctl, before.trim()).unwrap();
        assert!(area.hugetlb && area.len() == 8 << 20, "8 MiB of frames in huge pages");
        assert_eq!(taken, 4, "four 2 MiB pages");
        assert!(!second.unwrap().hugetlb, "the pool is empty: transparent huge pages");
    }
}
