//! The way toward gNBs (N3): the next hop and its MAC, the outer
//! Ethernet/IP/UDP headers of a tunnel (TS 29.281 4.4), G-PDUs into a
//! session's tunnel and End Markers into the tunnels left (7.3.2).

use std::net::{IpAddr, Ipv4Addr};

use nfv_core::packet::{EgressKind, Meta};
use nfv_core::{Batch, PacketMut, StageCtx};
use nfv_net::tunnel::{Encap, OuterHeader, OuterSpec, PerPacket};
use nfv_net::wire::{EthernetFrame, Ipv4Packet, Ipv6Packet, ethernet, ethertype};

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

    /// The outer headers toward gNB `peer` (see [`Self::n3_hop`] for its
    /// next hop): built as gNBs are met, forgotten when the neighbour
    /// table changes; `None` for an IPv6 gNB without an N3 IPv6 address.
    #[inline]
    pub(super) fn peer(&mut self, peer: IpAddr, ctx: &StageCtx<'_>) -> Option<&Peer> {
        let hop = self.n3_hop(peer);
        let (n3, upf) = (self.upf.n3, &self.upf);
        let our_mac = self.macs[n3 as usize];
        let build = |src: IpAddr| {
            let mac = ctx.adjacency.lookup(&hop, n3);
            let spec = OuterSpec {
                eth: (mac.unwrap_or_default(), our_mac),
                src,
                dst: peer,
                ttl: 64,
                frag: 0,
                // TS 29.281 4.4.2.3: G-PDUs and End Markers from and to
                // port 2152; the GTP-U header is each packet's own.
                encap: Encap::Udp { dport: gtpu::PORT, tunnel: &[] },
            };
            Peer { outer: OuterHeader::new(&spec).expect("one family"), resolved: mac.is_some() }
        };
        Some(match peer {
            IpAddr::V4(a) => self
                .ways
                .get_mut()
                .peers
                .entry(a.to_bits())
                .or_insert_with(|| build(IpAddr::V4(Ipv4Addr::from(upf.n3_address)))),
            IpAddr::V6(a) => {
                let ours = upf.n3_address6?;
                self.ways.get_mut().peers6.entry(a.octets()).or_insert_with(|| build(IpAddr::from(ours)))
            }
        })
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
        let (n3, reparse) = (self.upf.n3, self.reparse);
        let session = qfi.map(|q| (pdu_type::DOWNLINK, q));
        let inner_len = p.len() - ethernet::HEADER_LEN;
        let g = gtpu::gpdu_header_len(session.is_some());
        let t = self.peer(peer, ctx).ok_or(UpfDrop::NoAdjacency)?;
        // The new headers take the old Ethernet header's place and more.
        let at = t.outer.len();
        let d = p.push_front(at - ethernet::HEADER_LEN + g).map_err(|_| UpfDrop::Malformed)?;
        gtpu::write_gpdu(&mut d[at..], teid, inner_len, session);
        t.outer.write(d, TUNNEL);
        if reparse {
            p.reparse().map_err(|_| UpfDrop::Malformed)?;
        }
        match t.resolved {
            true => p.send_to(n3),
            // At set-up and after a handover: held until the gNB answers.
            false => ctx.adjacency.hold(p, &[n3], self.n3_hop(peer)),
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
            let meta = Meta { port: self.upf.n3, ..Meta::default() };
            let Some(t) = self.peer(old.peer, ctx) else { continue };
            let packet = ctx.pool.build_packet(meta, |frame| {
                let len = t.outer.len() + gtpu::HEADER_LEN;
                gtpu::write_end_marker(&mut frame[t.outer.len()..len], old.teid);
                t.outer.write(&mut frame[..len], TUNNEL);
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
            let ip = &d[ethernet::HEADER_LEN..];
            let peer = match EthernetFrame::new_unchecked(d).ethertype() {
                ethertype::IPV4 => IpAddr::from(Ipv4Packet::new_unchecked(ip).dst_addr()),
                _ => IpAddr::from(Ipv6Packet::new_unchecked(ip).dst_addr()),
            };
            let hop = self.n3_hop(peer);
            ctx.adjacency.send(&mut p, &[self.upf.n3], hop);
            // Refused (no route to the old gNB): the adjacency drops and
            // counts it when the graph ends.
            if matches!(p.egress().kind(), EgressKind::Refused(_)) {
                self.counters.end_markers -= 1;
                self.counters.end_markers_unsent += 1;
            }
        }
    }
}

/// The outer headers toward one gNB, and whether its next hop was
/// resolved when they were built (else its Ethernet destination is zero
/// and packets wait for it).
pub(super) struct Peer {
    pub(super) outer: OuterHeader,
    pub(super) resolved: bool,
}

/// What every GTP-U packet's outer headers take: port 2152 both ways, no
/// UDP checksum over IPv4 (RFC 768), one over IPv6 (RFC 8200 8.1).
pub(super) const TUNNEL: PerPacket = PerPacket { sport: gtpu::PORT, tos: 0, frag: 0, udp6_checksum: true };
