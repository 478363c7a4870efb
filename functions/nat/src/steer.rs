//! Which worker of the chain holds a packet's NAT state, when several run
//! it (each worker has its own sessions and its own share of the ports).
//!
//! - An inside address belongs to one worker, by a hash of the address:
//!   all its mappings are made there, which endpoint-independent mapping
//!   needs (RFC 4787 REQ-1: one mapping per inside endpoint, whatever the
//!   remote; flows of one host spread by the NIC's 5-tuple RSS would
//!   otherwise get one mapping per worker). Its outside ports come from
//!   that worker's blocks.
//! - An outside (address, port) belongs to the worker whose block holds
//!   the port ([`nfv_net::portmap::block_owner`]); a port forward's, to the
//!   worker of its inside address, where the forwarded server's replies
//!   are steered.
//!
//! A packet that lands elsewhere (the NIC's RSS knows nothing of this) is
//! handed to its owner through nfv-core's handoff inboxes: what VPP's
//! NAT44-ED does with its in2out and out2in handoff nodes. On a NIC with
//! flow steering, rules that send each port block to its worker's queue
//! spare the handoff; the result is the same.

#[cfg(doc)]
use crate::config::Nat;
use crate::sessions::{Forward, proto};
use nfv_net::portmap::block_owner;

/// Outside ports (any protocol) some port forward uses: one bit each.
const PORT_WORDS: usize = 65536 / 64;

/// One worker's view of who owns what.
pub struct Steering {
    /// This worker's rank among the chain's workers.
    pub rank: u16,
    /// The chain's workers.
    pub workers: u16,
    port_range: (u16, u16),
    forward_ports: Box<[u64; PORT_WORDS]>,
    /// (protocol, outside address, outside port, inside address).
    forwards: Vec<(u8, u32, u16, u32)>,
}

impl Steering {
    /// The steering for worker `rank` of `workers`, of a NAT handing
    /// out `port_range` with these port forwards (as [`Nat::forwards`]).
    pub fn new(port_range: (u16, u16), forwards: &[Forward], rank: usize, workers: usize) -> Self {
        let mut forward_ports = Box::new([0u64; PORT_WORDS]);
        for &(_, _, _, _, port) in forwards {
            forward_ports[port as usize / 64] |= 1 << (port % 64);
        }
        Self {
            rank: rank as u16,
            workers: workers.max(1) as u16,
            port_range,
            forward_ports,
            forwards: forwards
                .iter()
                .map(|&(p, in_addr, _, out_addr, out_port)| (p, out_addr, out_port, in_addr))
                .collect(),
        }
    }

    /// True when one worker runs the chain: nothing to steer.
    #[inline(always)]
    pub fn single(&self) -> bool {
        self.workers == 1
    }

    /// The worker holding inside address `addr`'s mappings.
    #[inline(always)]
    pub fn inside_owner(&self, addr: u32) -> u16 {
        // Fibonacci hashing: consecutive addresses spread evenly.
        ((addr.wrapping_mul(0x9e37_79b1) >> 16) % self.workers as u32) as u16
    }

    /// The worker holding outside endpoint (`p`, `addr`, `port`)'s mapping
    /// (a port forward's, or the block owner's); this worker for a port
    /// no mapping can have (it is dropped here).
    #[inline(always)]
    pub fn outside_owner(&self, p: u8, addr: u32, port: u16) -> u16 {
        if self.forward_ports[port as usize / 64] & (1 << (port % 64)) != 0
            && let Some(f) = self.forwards.iter().find(|f| (f.0, f.1, f.2) == (p, addr, port))
        {
            return self.inside_owner(f.3);
        }
        // ICMP identifiers use the whole range (see `sessions`).
        let (lo, hi) = if p == proto::ICMP { (1, u16::MAX) } else { self.port_range };
        if port < lo || port > hi {
            return self.rank;
        }
        block_owner(port, lo, self.workers)
    }

    /// `owner` when it is another worker.
    #[inline(always)]
    pub fn elsewhere(&self, owner: u16) -> Option<usize> {
        (owner != self.rank).then_some(owner as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nfv_net::portmap::PortMap;

    #[test]
    fn outside_ports_are_steered_to_the_worker_that_hands_them_out() {
        for workers in 1..=4u16 {
            let steer: Vec<Steering> =
                (0..workers).map(|w| Steering::new((1024, 65535), &[], w as usize, workers as usize)).collect();
            for w in 0..workers {
                let mut udp = PortMap::new(1024, 65535, w, workers);
                let mut icmp = PortMap::new(1, 65535, w, workers);
                for want in [1024, 5000, 5001, 65535] {
                    let p = udp.allocate(want).unwrap();
                    assert!(steer.iter().all(|s| s.outside_owner(proto::UDP, 7, p) == w), "udp {p}");
                    let id = icmp.allocate(want).unwrap();
                    assert!(steer.iter().all(|s| s.outside_owner(proto::ICMP, 7, id) == w), "icmp {id}");
                }
            }
            assert_eq!(steer[0].outside_owner(proto::UDP, 7, 80), 0, "below the range: dropped where it is");
        }
    }

    #[test]
    fn inside_addresses_spread_and_forwards_follow_their_inside_address() {
        let s = Steering::new((1024, 65535), &[(proto::TCP, 0x0a00_0002, 80, 7, 8080)], 1, 4);
        let mut per = [0; 4];
        for a in 0x0a00_0000u32..0x0a00_0400 {
            per[s.inside_owner(a) as usize] += 1;
        }
        assert!(per.iter().all(|&n| (200..=312).contains(&n)), "{per:?}");
        assert_eq!(s.outside_owner(proto::TCP, 7, 8080), s.inside_owner(0x0a00_0002));
        assert_eq!(s.outside_owner(proto::UDP, 7, 8080), block_owner(8080, 1024, 4), "another protocol");
        assert_eq!(s.elsewhere(1), None);
        assert_eq!(s.elsewhere(3), Some(3));
    }
}
