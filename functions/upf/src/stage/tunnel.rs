//! The way toward gNBs (N3): the next hop and its MAC, the outer
//! Ethernet/IP/UDP headers of a tunnel (TS 29.281 4.4), G-PDUs into a
//! session's tunnel and End Markers into the tunnels left (7.3.2).

use std::net::{IpAddr, Ipv4Addr};

use nfv_core::packet::Meta;
use nfv_core::{Batch, PacketMut, StageCtx};
use nfv_net::wire::{ethertype, proto};

use super::{UpfDrop, UpfStage};
use crate::gtpu::{self, pdu_type};

impl UpfStage {
    /// The next hop toward gNB `peer` on N3: the N3 gateway when one is
    /// configured (IPv4), else the gNB itself.
    #[inline]
    pub(super) fn n3_hop(&self, peer: IpAddr) -> IpAddr {
        match (peer, self.upf.n3_gateway) {
            (IpAddr::V4(_), Some(g)) => IpAddr::V4(Ipv4Addr::from(g)),
            _ => peer,
        }
    }

    /// The MAC of the next hop toward gNB `peer` (see [`Self::n3_hop`]),
    /// when resolved: a map filled as gNBs are met, emptied when the
    /// neighbour table changes.
    #[inline]
    pub(super) fn peer_mac(&mut self, peer: IpAddr, ctx: &StageCtx<'_>) -> Option<[u8; 6]> {
        let known = match peer {
            IpAddr::V4(a) => self.peer_macs.get(&a.to_bits()),
            IpAddr::V6(a) => self.peer_macs6.get(&a.octets()),
        };
        if let Some(m) = known {
            return Some(*m);
        }
        let mac = ctx.adjacency.lookup(&self.n3_hop(peer), self.upf.n3)?;
        match peer {
            IpAddr::V4(a) => self.peer_macs.insert(a.to_bits(), mac),
            IpAddr::V6(a) => self.peer_macs6.insert(a.octets(), mac),
        };
        Some(mac)
    }

    /// Puts the packet (an Ethernet frame of an IPv4 packet) in the
    /// tunnel (`teid`, `peer`): GTP-U (a PDU Session Container when a QFI
    /// is given) over UDP over IPv4 or IPv6 (the peer's family), and sends
    /// it out N3.
    #[inline]
    pub(super) fn encapsulate(
        &mut self,
        p: &mut PacketMut<'_>,
        ctx: &mut StageCtx<'_>,
        teid: u32,
        peer: IpAddr,
        qfi: Option<u8>,
    ) -> Result<(), UpfDrop> {
        let n3 = self.upf.n3;
        let mac = self.peer_mac(peer, ctx);
        let session = qfi.map(|q| (pdu_type::DOWNLINK, q));
        let inner_len = p.len() - 14;
        let g = gtpu::gpdu_header_len(session.is_some());
        let ip_len = match peer {
            IpAddr::V4(_) => 20,
            IpAddr::V6(_) => 40,
        };
        if peer.is_ipv6() && self.upf.n3_address6.is_none() {
            return Err(UpfDrop::NoAdjacency);
        }
        // The new headers take the old Ethernet header's place and more.
        let d = p.push_front(ip_len + 8 + g).map_err(|_| UpfDrop::Malformed)?;
        let at = self.tunnel_headers(d, mac.unwrap_or_default(), peer, g + inner_len);
        gtpu::write_gpdu(&mut d[at..], teid, inner_len, session);
        if peer.is_ipv6() {
            let c = nfv_net::checksum::udp_checksum(&d[14..54], false, &d[54..]);
            d[60..62].copy_from_slice(&c.to_be_bytes());
        }
        // Finished here: no stage reads its headers again, none re-parsed.
        match mac {
            Some(_) => p.send_to(n3),
            // At set-up and after a handover: held until the gNB answers.
            None => ctx.adjacency.hold(p, &[n3], self.n3_hop(peer)).map_err(|_| UpfDrop::NoAdjacency)?,
        }
        self.counters.downlink += 1;
        Ok(())
    }

    /// End Markers (TS 29.281 7.3.2) into the tunnels the SMF switched
    /// away from asking for them (SNDEM), since this worker last sent
    /// some: each follows this worker's last G-PDU into the old tunnel (it
    /// forwards into the new one from the version that switched).
    #[cold]
    #[inline(never)]
    pub(super) fn send_end_markers(&mut self, batch: &mut Batch, ctx: &mut StageCtx<'_>) {
        let sessions = self.sessions.arc().clone();
        let start = batch.len();
        let since = self.ended_through;
        for &(_, old) in sessions.end_markers.iter().filter(|(v, _)| *v > since) {
            if old.peer.is_ipv6() && self.upf.n3_address6.is_none() {
                self.counters.end_markers_unsent += 1;
                continue;
            }
            let mac = self.peer_mac(old.peer, ctx);
            let meta = Meta { port: self.upf.n3, ..Meta::default() };
            let packet = ctx.pool.build_packet(meta, |frame| {
                let at = self.tunnel_headers(frame, mac.unwrap_or_default(), old.peer, gtpu::HEADER_LEN);
                gtpu::write_end_marker(&mut frame[at..], old.teid);
                let len = at + gtpu::HEADER_LEN;
                if old.peer.is_ipv6() {
                    let c = nfv_net::checksum::udp_checksum(&frame[14..54], false, &frame[54..len]);
                    frame[60..62].copy_from_slice(&c.to_be_bytes());
                }
                len
            });
            let Some(packet) = packet else {
                self.counters.end_markers_unsent += 1;
                continue;
            };
            batch.push(packet);
            self.counters.end_markers += 1;
        }
        self.ended_through = sessions.version;
        for mut p in batch.iter_mut().skip(start) {
            // To the old gNB as written (an unresolved one is waited for).
            let d = p.data();
            let peer = match u16::from_be_bytes([d[12], d[13]]) {
                ethertype::IPV4 => IpAddr::from(<[u8; 4]>::try_from(&d[30..34]).expect("written above")),
                _ => IpAddr::from(<[u8; 16]>::try_from(&d[38..54]).expect("written above")),
            };
            let hop = self.n3_hop(peer);
            if ctx.adjacency.send(&mut p, &[self.upf.n3], hop).is_err() {
                self.counters.end_markers -= 1;
                self.counters.end_markers_unsent += 1;
                p.drop_with(UpfDrop::NoAdjacency);
            }
        }
    }
}

impl UpfStage {
    /// Writes, at the start of `d`, the Ethernet (to `mac`), IP (ours to
    /// `peer`, of its family) and UDP (2152 both ways) headers of a GTP-U
    /// message of `gtp` octets; returns where the GTP-U message starts.
    /// Over IPv6 the UDP checksum is left to the caller, once the message
    /// is written.
    #[inline]
    pub(super) fn tunnel_headers(&self, d: &mut [u8], mac: [u8; 6], peer: IpAddr, gtp: usize) -> usize {
        let n3 = self.upf.n3;
        d[0..6].copy_from_slice(&mac);
        d[6..12].copy_from_slice(&self.macs[n3 as usize]);
        let udp_len = (8 + gtp) as u16;
        let u = match peer {
            IpAddr::V4(a) => {
                d[12..14].copy_from_slice(&ethertype::IPV4.to_be_bytes());
                let ip = &mut d[14..34];
                let (total, dst) = (20 + udp_len, a.to_bits());
                ip.copy_from_slice(&[0x45, 0, 0, 0, 0, 0, 0, 0, 64, proto::UDP, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
                ip[2..4].copy_from_slice(&total.to_be_bytes());
                ip[12..16].copy_from_slice(&self.upf.n3_address.to_be_bytes());
                ip[16..20].copy_from_slice(&a.octets());
                // The header sum from its constant part (version, TTL,
                // protocol, our address) and what varies, not the 20 octets.
                let acc = self.ip_sum + total as u32 + (dst >> 16) + (dst & 0xffff);
                ip[10..12].copy_from_slice(&(!nfv_net::checksum::fold(acc)).to_be_bytes());
                34
            }
            IpAddr::V6(a) => {
                d[12..14].copy_from_slice(&ethertype::IPV6.to_be_bytes());
                let ip = &mut d[14..54];
                ip[0..4].copy_from_slice(&[0x60, 0, 0, 0]);
                ip[4..6].copy_from_slice(&udp_len.to_be_bytes());
                ip[6] = proto::UDP;
                ip[7] = 64;
                ip[8..24].copy_from_slice(&self.upf.n3_address6.unwrap_or_default());
                ip[24..40].copy_from_slice(&a.octets());
                54
            }
        };
        d[u..u + 2].copy_from_slice(&gtpu::PORT.to_be_bytes());
        d[u + 2..u + 4].copy_from_slice(&gtpu::PORT.to_be_bytes());
        d[u + 4..u + 6].copy_from_slice(&udp_len.to_be_bytes());
        // No UDP checksum over IPv4 (RFC 768); over IPv6 the caller's.
        d[u + 6..u + 8].copy_from_slice(&[0, 0]);
        u + 8
    }
}
