//! Next-hop resolution: the next hops to keep resolved (configured) and
//! those workers ask for (a packet waits), one ARP request or Neighbor
//! Solicitation each, and the unreachability detection of what was
//! learned.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use smoltcp::wire::{ArpOperation, EthernetAddress};

use super::{BROADCAST, SlowFrame, SlowPath, arp_frame, neighbor_solicit};
use crate::neighbour::{NeighbourTable, Origin};
use crate::packet::PortId;

/// Neighbour unreachability detection, after RFC 4861 7.3 (and what
/// Linux's ARP does for IPv4): a learned adjacency not confirmed (by an
/// ARP or ND message from it) for `STALE_AFTER` is probed once a second
/// (with the request that first resolved it: broadcast ARP, a
/// solicited-node NS);
/// after `PROBES` probes unanswered it is removed, so that packets for it
/// wait and ask again instead of going to a MAC that is gone.
pub(super) const STALE_AFTER: Duration = Duration::from_secs(5);
pub(super) const PROBES: u8 = 3;

impl SlowPath {
    /// Asks for `ip` to be resolved and kept resolved (a dynamic
    /// `[[neighbours]]` entry). Returns false if no port is on-link for it.
    pub fn want(&mut self, ip: IpAddr) -> bool {
        match self.on_link_port(&ip) {
            Some(p) => {
                self.wanted.insert(ip, p);
                true
            }
            None => false,
        }
    }

    pub(super) fn on_link_port(&self, ip: &IpAddr) -> Option<PortId> {
        self.local.on_link_port(ip)
    }

    pub(super) fn source_for(&self, port: PortId, ip: &IpAddr) -> Option<IpAddr> {
        let (_, addrs) = self.local.ports.get(port as usize)?;
        addrs.iter().find(|a| a.on_link(ip)).map(|a| a.addr)
    }

    /// Takes up the next hops workers asked for at run time
    /// ([`crate::neighbour::NeighbourTable::request`], a packet waiting
    /// for each): one request each now, at most one a second however many
    /// workers ask; true when some are due. Not kept resolved: a worker
    /// asks again while packets wait.
    pub fn adopt_requests(&mut self) -> bool {
        let now = Instant::now();
        self.asked.retain(|_, (_, at, _)| now.duration_since(*at) < Duration::from_secs(10));
        let mut any = false;
        for ip in self.neighbours.take_requests() {
            if self.wanted.contains_key(&ip) {
                continue;
            }
            let Some(port) = self.on_link_port(&ip) else { continue };
            match self.asked.get_mut(&ip) {
                // Workers ask again each second: half of that apart, so a
                // worker's own repeat is never taken for another's.
                Some((_, at, _)) if now.duration_since(*at) < Duration::from_millis(500) => {}
                _ => {
                    self.asked.insert(ip, (port, now, true));
                    any = true;
                }
            }
        }
        any
    }

    /// Requests (ARP / NS) for next hops asked for whose request is due,
    /// and with `wanted`, for the next hops to keep resolved that are not
    /// in the table (once a second).
    pub fn resolution_requests(&mut self, wanted: bool) -> Vec<SlowFrame> {
        let snap = self.neighbours.snapshot();
        let due = self.asked.iter_mut().filter_map(|(ip, (port, _, due))| std::mem::take(due).then_some((*ip, *port)));
        let mut hops: Vec<(IpAddr, PortId)> = due.collect();
        if wanted {
            hops.extend(self.wanted.iter().map(|(ip, port)| (*ip, *port)));
            hops.retain(|(ip, _)| snap.lookup(ip).is_none());
            hops.extend(self.probe_stale(&snap));
        } else {
            hops.retain(|(ip, _)| snap.lookup(ip).is_none());
        }
        let mut out = Vec::new();
        for (ip, port) in hops {
            let Some(src) = self.source_for(port, &ip) else { continue };
            let mac = EthernetAddress(self.local.mac(port));
            let frame = match (src, ip) {
                (IpAddr::V4(s), IpAddr::V4(t)) => arp_frame(ArpOperation::Request, mac, s, BROADCAST, t, BROADCAST),
                (IpAddr::V6(s), IpAddr::V6(t)) => neighbor_solicit(mac, s, t),
                _ => continue,
            };
            self.counters.resolutions_sent.add(1);
            out.push(SlowFrame { port, data: frame });
        }
        out
    }

    /// Records what `ip`'s host told of itself (ARP, ND) and confirms it
    /// reachable.
    pub(super) fn learn(&mut self, ip: IpAddr, mac: EthernetAddress, port: PortId) {
        if !mac.is_unicast() {
            return;
        }
        if self.neighbours.learn(ip, mac.0, port) {
            self.counters.learned.add(1);
        }
        self.confirmed.insert(ip, (Instant::now(), 0));
    }

    /// Probes for learned neighbours gone quiet, and the removal of those
    /// that answered none (see [`STALE_AFTER`]): the next hops to probe.
    fn probe_stale(&mut self, snap: &NeighbourTable) -> Vec<(IpAddr, PortId)> {
        let now = Instant::now();
        let mut probe = Vec::new();
        for (ip, n) in snap.entries() {
            if n.origin != Origin::Learned {
                continue;
            }
            let (at, probes) = self.confirmed.entry(ip).or_insert((now, 0));
            if now.duration_since(*at) < STALE_AFTER {
                continue;
            }
            if *probes < PROBES {
                *probes += 1;
                probe.push((ip, n.port));
            } else {
                self.confirmed.remove(&ip);
                if self.neighbours.remove(ip) {
                    self.counters.neighbours_lost.add(1);
                }
            }
        }
        self.confirmed.retain(|ip, _| snap.lookup(ip).is_some());
        probe
    }
}
