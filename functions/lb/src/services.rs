//! The services a load balancer offers: virtual IPs, their backends and
//! their Maglev lookup tables, as one value published to the workers
//! (built off the hot path, replaced whole when backends change).
//!
//! A VIP's backends keep their index for as long as the VIP exists: a
//! backend that goes away is marked removed, never reused, so a
//! connection remembered by index can tell its backend is gone (and is
//! rescheduled) rather than silently land on a newcomer; a drained one
//! keeps its index and its connections, and takes no new flow.

use crate::maglev::{self, Member, NO_BACKEND};
#[cfg(test)]
use nfv_net::wire::proto;

/// How packets reach a VIP's backends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Direct server return: the frame goes to the backend's MAC
    /// unchanged (the backend holds the VIP on a loopback and answers the
    /// client directly).
    Dsr,
    /// IP-in-IP (RFC 2003) to the backend, as Katran does; the backend
    /// decapsulates and answers the client directly.
    Ipip,
    /// Full NAT: the destination becomes the backend (the VIP's port),
    /// the source our source address and a port of ours; the backend
    /// answers us and we translate back (backends need no VIP, and see
    /// the load balancer as their client).
    Nat,
}

/// A backend's standing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Takes new flows by its weight.
    Active,
    /// Keeps its connections, takes no new flow.
    Drained,
    /// Gone: its connections are rescheduled.
    Removed,
}

/// One backend of a VIP.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backend {
    /// Its address.
    pub addr: u32,
    /// Relative weight among the VIP's backends.
    pub weight: u32,
    /// Active, drained or removed.
    pub state: State,
}

/// What the operator asks of one backend (configuration, backends file).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Wanted {
    /// Its address.
    pub addr: u32,
    /// Relative weight (0 drains it, as `drain`).
    pub weight: u32,
    /// Keep its connections, no new flows.
    pub drain: bool,
}

/// One virtual service.
#[derive(Clone, Debug)]
pub struct Vip {
    /// Its address.
    pub addr: u32,
    /// Its port.
    pub port: u16,
    /// TCP or UDP.
    pub proto: u8,
    /// How packets reach the backends.
    pub mode: Mode,
    /// Backends by stable index.
    pub backends: Vec<Backend>,
    /// Maglev table size (prime).
    pub size: u32,
    /// The Maglev table: a backend index per slot, or [`NO_BACKEND`].
    pub table: Vec<u16>,
}

impl Vip {
    /// A VIP with `wanted` backends and its table built.
    pub fn new(addr: u32, port: u16, proto: u8, mode: Mode, size: u32, wanted: &[Wanted]) -> Self {
        let mut v = Self { addr, port, proto, mode, backends: Vec::new(), size, table: Vec::new() };
        v.set_backends(wanted);
        v
    }

    /// This VIP with `wanted` as its backends: those already known keep
    /// their index (weight and drain updated), those not wanted are
    /// marked removed, new ones are appended; then the table is rebuilt.
    pub fn set_backends(&mut self, wanted: &[Wanted]) {
        for b in &mut self.backends {
            if !wanted.iter().any(|w| w.addr == b.addr) {
                b.state = State::Removed;
            }
        }
        for w in wanted {
            let state = if w.drain || w.weight == 0 { State::Drained } else { State::Active };
            match self.backends.iter_mut().find(|b| b.addr == w.addr) {
                Some(b) => (b.weight, b.state) = (w.weight, state),
                None => self.backends.push(Backend { addr: w.addr, weight: w.weight, state }),
            }
        }
        // Members: every backend not removed, named by address and the
        // VIP's port (the same on every load balancer), weighted; drained
        // ones with weight 0 (they take no slot).
        let live: Vec<usize> = (0..self.backends.len()).filter(|&i| self.backends[i].state != State::Removed).collect();
        let members: Vec<Member> = live
            .iter()
            .map(|&i| {
                let b = &self.backends[i];
                let name = [b.addr.to_be_bytes().as_slice(), &self.port.to_be_bytes()].concat();
                Member::named(&name, self.size, if b.state == State::Active { b.weight } else { 0 })
            })
            .collect();
        self.table = maglev::populate(&members, self.size)
            .into_iter()
            .map(|m| live.get(m as usize).map_or(NO_BACKEND, |&i| i as u16))
            .collect();
    }

    /// What its backends are, as the operator would ask for them again
    /// (removed ones left out).
    pub fn wanted(&self) -> Vec<Wanted> {
        self.backends
            .iter()
            .filter(|b| b.state != State::Removed)
            .map(|b| Wanted { addr: b.addr, weight: b.weight, drain: b.state == State::Drained })
            .collect()
    }

    /// `tcp 192.0.2.10:80`.
    pub fn name(&self) -> String {
        let proto = if self.proto == nfv_net::wire::proto::TCP { "tcp" } else { "udp" };
        format!("{proto} {}:{}", std::net::Ipv4Addr::from(self.addr), self.port)
    }

    /// The backend a new flow of hash `hash` goes to.
    #[inline(always)]
    pub fn pick(&self, hash: u32) -> Option<u16> {
        let b = self.table[maglev::slot(hash, self.size)];
        (b != NO_BACKEND).then_some(b)
    }
}

/// Every VIP of a stage, one version.
#[derive(Clone, Debug, Default)]
pub struct Services {
    /// The VIPs.
    pub vips: Vec<Vip>,
    /// Incremented by every update.
    pub version: u64,
}

impl Services {
    /// The VIP at (`proto`, `addr`, `port`).
    #[inline(always)]
    pub fn find(&self, proto: u8, addr: u32, port: u16) -> Option<usize> {
        self.vips.iter().position(|v| v.addr == addr && v.port == port && v.proto == proto)
    }

    /// True when `addr` is some VIP's address.
    #[inline(always)]
    pub fn is_vip_address(&self, addr: u32) -> bool {
        self.vips.iter().any(|v| v.addr == addr)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(last: u8, weight: u32) -> Wanted {
        Wanted { addr: 0x0a01_0000 | last as u32, weight, drain: false }
    }

    fn share(v: &Vip) -> Vec<usize> {
        let mut c = vec![0; v.backends.len()];
        for &b in &v.table {
            c[b as usize] += 1;
        }
        c
    }

    #[test]
    fn backends_keep_their_index_drained_take_no_slot_removed_are_never_reused() {
        let mut v = Vip::new(1, 80, proto::TCP, Mode::Dsr, 65537, &[w(1, 1), w(2, 1), w(3, 2)]);
        let c = share(&v);
        assert!((c[2] as f64 / 65537.0 - 0.5).abs() < 0.005, "{c:?}");
        v.set_backends(&[w(1, 1), Wanted { drain: true, ..w(2, 1) }, w(3, 2)]);
        assert_eq!(v.backends[1].state, State::Drained);
        assert_eq!(share(&v)[1], 0, "drained: no slot");
        v.set_backends(&[w(1, 1), w(3, 2), w(4, 1)]);
        assert_eq!(v.backends[1].state, State::Removed);
        assert_eq!(v.backends[3].addr, 0x0a01_0004, "a new backend is appended");
        assert_eq!(share(&v)[1], 0);
        v.set_backends(&[w(1, 1), w(2, 1), w(3, 2), w(4, 1)]);
        assert_eq!(v.backends[1].state, State::Active, "the same address comes back at its index");
        v.set_backends(&[]);
        assert_eq!(v.pick(12345), None, "no backend");
    }
}
