//! The input stage every chain starts with: parse once into metadata, drop
//! what is not even Ethernet, and punt what the slow path must answer
//! (ARP and ND for our addresses, pings to our addresses).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use crate::batch::Batch;
use crate::packet::{PacketMut, flags};
use crate::parse::{self, ParseError};
use crate::slowpath::LocalAddrs;
use crate::stage::{Stage, StageCtx};
use nfv_net::wire::{ArpPacket, IcmpPacket, Ipv4Packet, Ipv6Packet, ethertype, icmp, proto};

crate::drop_reasons! {
    /// Drop reasons of the input stage.
    pub enum InputDrop {
        Runt => "runt-frame",
        TruncatedVlan => "truncated-vlan",
    }
}

/// Name the input stage shows in tables.
pub const INPUT_STAGE: &str = "input";

/// The input stage.
pub struct Input {
    local: Arc<LocalAddrs>,
}

impl Input {
    /// An input stage punting for the addresses in `local`.
    pub fn new(local: Arc<LocalAddrs>) -> Self {
        Self { local }
    }
}

impl Stage for Input {
    fn process(&mut self, batch: &mut Batch, _ctx: &mut StageCtx<'_>) {
        // A batch comes from one rx port: ask once whether it owns addresses.
        let Some(first) = batch.active().first() else { return };
        let owns = self.local.has_any(first.meta.port);
        for mut p in batch.iter_mut() {
            let (data, meta) = p.data_and_meta_mut();
            match parse::classify(data, meta) {
                Ok(()) => {
                    if owns && is_for_slow_path(&p, &self.local) {
                        p.punt();
                    }
                }
                Err(ParseError::Runt) => p.drop_with(InputDrop::Runt),
                Err(ParseError::TruncatedVlan) => p.drop_with(InputDrop::TruncatedVlan),
            }
        }
    }
}

fn is_for_slow_path(p: &PacketMut<'_>, local: &LocalAddrs) -> bool {
    let m = p.meta();
    let d = p.data();
    let l3 = m.l3_off as usize;
    let l4 = m.l4_off as usize;
    match m.ethertype {
        // RFC 826: an Ethernet/IPv4 ARP packet for one of our addresses
        // (any other hardware or protocol: the first six octets say so;
        // those, and ones cut short, were asked of nobody here).
        ethertype::ARP => d
            .get(l3..)
            .and_then(ArpPacket::target_ip_of)
            .is_some_and(|t| local.owns(m.port, IpAddr::V4(Ipv4Addr::from(t)))),
        ethertype::IPV4 if m.flags & flags::L4_OK != 0 && m.l4_proto == proto::ICMP => {
            let dst = Ipv4Addr::from(Ipv4Packet::new_unchecked(&d[l3..]).dst_addr());
            IcmpPacket::new_unchecked(&d[l4..]).msg_type() == icmp::v4::ECHO_REQUEST
                && local.owns(m.port, IpAddr::V4(dst))
        }
        ethertype::IPV6 if m.flags & flags::L4_OK != 0 && m.l4_proto == proto::ICMPV6 => {
            let dst = Ipv6Addr::from(Ipv6Packet::new_unchecked(&d[l3..]).dst_addr());
            let msg = IcmpPacket::new_unchecked(&d[l4..]);
            match msg.msg_type() {
                icmp::v6::ECHO_REQUEST => local.owns(m.port, IpAddr::V6(dst)),
                // NS: the target address follows the 8-byte header (RFC 4861 4.3).
                icmp::v6::NEIGHBOR_SOLICIT => msg
                    .payload()
                    .first_chunk::<16>()
                    .is_some_and(|t| local.owns(m.port, IpAddr::V6(Ipv6Addr::from(*t)))),
                icmp::v6::NEIGHBOR_ADVERT => dst.is_multicast() || local.owns(m.port, IpAddr::V6(dst)),
                _ => false,
            }
        }
        _ => false,
    }
}
