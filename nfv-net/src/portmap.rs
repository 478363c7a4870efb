//! Ports of one translated address and protocol (a NAT's pool address, a
//! load balancer's source address): a bitmap of the 65,536 ports (8 KiB),
//! of which each worker owns its share, so two workers never hand out the
//! same (address, port), and return traffic can be steered to the worker
//! that owns its port. RFC 4787 REQ-3 and RFC 5382 REQ-?:
//! the inside port is kept when it is free (port preservation), else a port
//! of the same parity is taken (RTP/RTCP pairs stay even/odd), next-fit
//! from where the last search ended.

/// Ports are shared out between workers in blocks of this many.
pub const BLOCK: u16 = 64;

/// The worker (of `workers`) whose share holds `port`, of a range
/// starting at `lo`: blocks of [`BLOCK`] dealt out in turn.
#[inline(always)]
pub fn block_owner(port: u16, lo: u16, workers: u16) -> u16 {
    ((port - lo) / BLOCK) % workers
}

/// Free/used outside ports for one (address, protocol).
pub struct PortMap {
    used: Vec<u64>,
    /// Lowest and highest port handed out.
    lo: u16,
    hi: u16,
    /// This worker's blocks: `(port - lo) / BLOCK % workers == worker`.
    worker: u16,
    workers: u16,
    /// Next-fit cursor (a word index).
    cursor: usize,
    free: u32,
}

impl PortMap {
    /// Ports `lo..=hi`, this worker's share of them.
    pub fn new(lo: u16, hi: u16, worker: u16, workers: u16) -> Self {
        let mut m = Self { used: vec![u64::MAX; 1024], lo, hi, worker, workers: workers.max(1), cursor: 0, free: 0 };
        for p in lo..=hi {
            if m.owns(p) {
                m.used[p as usize / 64] &= !(1u64 << (p % 64));
                m.free += 1;
            }
        }
        m.cursor = lo as usize / 64;
        m
    }

    /// True when `port` is in range and this worker's.
    pub fn owns(&self, port: u16) -> bool {
        port >= self.lo && port <= self.hi && block_owner(port, self.lo, self.workers) == self.worker
    }

    /// Ports this worker can still hand out.
    pub fn free(&self) -> u32 {
        self.free
    }

    fn is_used(&self, port: u16) -> bool {
        self.used[port as usize / 64] & (1u64 << (port % 64)) != 0
    }

    /// Marks `port` used (a static mapping's); false if it was not free.
    pub fn take(&mut self, port: u16) -> bool {
        if self.is_used(port) {
            return false;
        }
        self.used[port as usize / 64] |= 1u64 << (port % 64);
        self.free -= 1;
        true
    }

    /// A free port: `want` itself if free, else one of the same parity,
    /// else any; `None` when this worker has none left.
    pub fn allocate(&mut self, want: u16) -> Option<u16> {
        if self.free == 0 {
            return None;
        }
        if self.take(want) {
            return Some(want);
        }
        let parity = if want.is_multiple_of(2) { 0x5555_5555_5555_5555u64 } else { 0xaaaa_aaaa_aaaa_aaaa };
        for mask in [parity, u64::MAX] {
            for i in 0..self.used.len() {
                let w = (self.cursor + i) % self.used.len();
                let free = !self.used[w] & mask;
                if free != 0 {
                    let port = (w * 64) as u16 + free.trailing_zeros() as u16;
                    self.cursor = w;
                    self.take(port);
                    return Some(port);
                }
            }
        }
        None
    }

    /// Gives `port` back.
    pub fn release(&mut self, port: u16) {
        debug_assert!(self.is_used(port) && self.owns(port));
        self.used[port as usize / 64] &= !(1u64 << (port % 64));
        self.free += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preserves_the_port_then_its_parity_and_never_gives_a_port_twice() {
        let mut m = PortMap::new(1024, 65535, 0, 1);
        assert_eq!(m.allocate(5000), Some(5000));
        let p = m.allocate(5000).unwrap();
        assert!(p != 5000 && p.is_multiple_of(2), "{p}");
        let q = m.allocate(5001).unwrap();
        assert!(!q.is_multiple_of(2));
        let r = m.allocate(80).unwrap();
        assert!(r >= 1024 && r.is_multiple_of(2), "below the range: a free even port in it, not {r}");
        let mut seen = std::collections::HashSet::from([5000, p, q, r]);
        while let Some(x) = m.allocate(7) {
            assert!(seen.insert(x), "port {x} twice");
        }
        assert_eq!(seen.len(), 65535 - 1024 + 1);
        m.release(4000);
        assert_eq!(m.allocate(9), Some(4000), "odd wanted, only an even left");
    }

    #[test]
    fn workers_own_disjoint_blocks_covering_the_range() {
        let maps: Vec<PortMap> = (0..3).map(|w| PortMap::new(1024, 65535, w, 3)).collect();
        for p in 0..=65535u16 {
            let owners = maps.iter().filter(|m| m.owns(p)).count();
            assert_eq!(owners, (p >= 1024) as usize, "port {p}");
        }
        assert_eq!(maps.iter().map(|m| m.free()).sum::<u32>(), 65535 - 1024 + 1);
        let mut m1 = PortMap::new(1024, 65535, 1, 3);
        let p = m1.allocate(1024).unwrap();
        assert!(m1.owns(p) && p != 1024);
    }
}
