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
use nfv_net::wire::{ethertype, proto};

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
    match m.ethertype {
        // RFC 826: the target protocol address sits at offset 24.
        ethertype::ARP => d
            .get(l3 + 24..l3 + 28)
            .is_some_and(|t| local.owns(m.port, IpAddr::V4(Ipv4Addr::new(t[0], t[1], t[2], t[3])))),
        ethertype::IPV4 if m.flags & flags::L4_OK != 0 && m.l4_proto == proto::ICMP => {
            let dst = Ipv4Addr::new(d[l3 + 16], d[l3 + 17], d[l3 + 18], d[l3 + 19]);
            d[m.l4_off as usize] == 8 && local.owns(m.port, IpAddr::V4(dst))
        }
        ethertype::IPV6 if m.flags & flags::L4_OK != 0 && m.l4_proto == proto::ICMPV6 => {
            let dst = v6(&d[l3 + 24..l3 + 40]);
            let l4 = m.l4_off as usize;
            match d[l4] {
                128 => local.owns(m.port, IpAddr::V6(dst)),
                // NS: the target address follows the 8-byte header (RFC 4861 4.3).
                135 => d.get(l4 + 8..l4 + 24).is_some_and(|t| local.owns(m.port, IpAddr::V6(v6(t)))),
                136 => dst.is_multicast() || local.owns(m.port, IpAddr::V6(dst)),
                _ => false,
            }
        }
        _ => false,
    }
}

fn v6(b: &[u8]) -> Ipv6Addr {
    let a: [u8; 16] = b.try_into().expect("16 bytes");
    Ipv6Addr::from(a)
}
