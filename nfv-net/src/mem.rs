//! Memory helpers of the data path: transparent huge pages, prefetch.
//!
//! Big tables (a NAT's million sessions, ~80 MiB touched at random) and
//! frame arenas (every packet touches its frame) in transparent huge pages
//! where the kernel offers them (`madvise` mode): with 4 KiB pages every
//! lookup would also miss the TLB, as DPDK's hugepage mbuf pools avoid.
//! The advice is given before the memory is first written, so the first
//! touch already gets 2 MiB pages; without THP it changes nothing.

/// A vector of `n` copies of `value`, its memory advised as huge pages.
pub fn huge_vec<T: Clone>(n: usize, value: T) -> Vec<T> {
    let mut v: Vec<T> = Vec::with_capacity(n);
    advise_huge(v.as_mut_ptr().cast(), n * size_of::<T>());
    v.resize(n, value);
    v
}

/// Advises `len` bytes at `ptr` (not yet written) as huge pages; regions
/// under 2 MiB are left alone.
pub fn advise_huge(ptr: *mut u8, len: usize) {
    const PAGE: usize = 4096;
    if len < 2 << 20 {
        return;
    }
    let start = ptr as usize & !(PAGE - 1);
    let end = ptr as usize + len;
    // SAFETY: advice on pages of an allocation we own; it cannot change
    // their contents, and failure (no THP) is harmless.
    unsafe {
        libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_HUGEPAGE);
    }
}

/// Hints the CPU to start loading the cache line holding `x` (a batch
/// asks for its lookups' lines ahead of the lookups, so the misses overlap).
#[inline(always)]
pub fn prefetch<T>(x: &T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch of a valid address has no effect on memory.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>((x as *const T).cast())
    };
    #[cfg(not(target_arch = "x86_64"))]
    let _ = x;
}
