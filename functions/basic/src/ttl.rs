//! `ttl-decrement`: what a router does to every forwarded packet.
//! IPv4 TTL (RFC 791, RFC 1812 section 5.3.1) with the header checksum
//! updated incrementally (RFC 1624 eqn. 3); IPv6 hop limit (RFC 8200
//! section 3, no checksum). A packet that would leave with 0 is dropped,
//! or, with `time-exceeded = true`, an IPv4 one is handed to the slow path,
//! which answers the sender with ICMP time exceeded (RFC 792, RFC 1812
//! section 4.3.2, rate-limited): traceroute then sees this hop.
//! Non-IP frames pass untouched; IP packets whose header is malformed are
//! dropped, since no TTL can be trusted there.

use nfv_core::packet::flags;
use nfv_core::{Batch, Stage, StageCtx};
use nfv_net::checksum;
use nfv_net::wire::{Ipv4Packet, Ipv6Packet, ethertype};

nfv_core::drop_reasons! {
    /// Drop reasons of the TTL stage.
    pub enum TtlDrop {
        Expired => "ttl-expired",
        HopLimitExpired => "hop-limit-expired",
        MalformedIp => "malformed-ip",
    }
}

/// The TTL-decrement stage.
#[derive(Clone, Copy, Default)]
pub struct TtlDecrement {
    /// Expired IPv4 packets go to the slow path for an ICMP time exceeded.
    pub time_exceeded: bool,
}

/// `{ kind = "ttl-decrement", time-exceeded = true }`.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct TtlParams {
    #[serde(default)]
    time_exceeded: bool,
}

/// Registers `ttl-decrement`.
pub struct TtlFactory;

impl nfv_core::StageFactory for TtlFactory {
    fn kind(&self) -> &'static str {
        "ttl-decrement"
    }

    fn summary(&self) -> &'static str {
        "decrement IPv4 TTL / IPv6 hop limit, RFC 1624 checksum update; on expiry drop, or answer ICMP time exceeded"
    }

    fn configure(
        &self,
        params: &nfv_core::config::Params<'_>,
        _env: &nfv_core::BuildEnv<'_>,
    ) -> Result<std::sync::Arc<dyn nfv_core::StageBuilder>, Vec<nfv_core::config::Diagnostic>> {
        let p: TtlParams = params.parse().map_err(|e| vec![e])?;
        Ok(std::sync::Arc::new(TtlDecrement { time_exceeded: p.time_exceeded }))
    }
}

impl nfv_core::StageBuilder for TtlDecrement {
    fn drop_reasons(&self) -> &'static [&'static str] {
        TtlDrop::NAMES
    }

    fn offers(&self) -> Vec<nfv_core::plan::Offer> {
        nfv_core::plan::Offer::complete(
            "decrement the TTL or hop limit",
            nfv_core::plan::Place::Xdp,
            "expiring packets (ICMP time exceeded)",
        )
    }

    fn build(&self, _ctx: &nfv_core::BuildCtx<'_>) -> Box<dyn Stage> {
        Box::new(*self)
    }
}

impl Stage for TtlDecrement {
    fn process(&mut self, batch: &mut Batch, _ctx: &mut StageCtx<'_>) {
        for mut p in batch.iter_mut() {
            let m = *p.meta();
            let ip4 = m.ethertype == ethertype::IPV4;
            if !ip4 && m.ethertype != ethertype::IPV6 {
                continue;
            }
            if m.flags & flags::L3_OK == 0 {
                p.drop_with(TtlDrop::MalformedIp);
                continue;
            }
            let l3 = m.l3_off as usize;
            if ip4 {
                let mut ip = Ipv4Packet::new_unchecked(&mut p.data_mut()[l3..]);
                let ttl = ip.ttl();
                if ttl <= 1 {
                    if self.time_exceeded {
                        p.punt();
                    } else {
                        p.drop_with(TtlDrop::Expired);
                    }
                    continue;
                }
                // TTL shares a 16-bit word with the protocol field: the
                // checksum follows by RFC 1624's update (RFC 1812 5.3.1).
                let old = u16::from_be_bytes([ttl, ip.protocol()]);
                let new = u16::from_be_bytes([ttl - 1, ip.protocol()]);
                ip.set_ttl(ttl - 1);
                ip.set_checksum(checksum::update16(ip.checksum(), old, new));
            } else {
                let mut ip = Ipv6Packet::new_unchecked(&mut p.data_mut()[l3..]);
                let hl = ip.hop_limit();
                if hl <= 1 {
                    p.drop_with(TtlDrop::HopLimitExpired);
                    continue;
                }
                ip.set_hop_limit(hl - 1);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil;
    use etherparse::{PacketBuilder, SlicedPacket};
    use nfv_core::packet::{DropReason, VerdictKind};

    fn v4(ttl: u8) -> Vec<u8> {
        let mut f = Vec::new();
        PacketBuilder::ethernet2([1; 6], [2; 6])
            .ipv4([10, 0, 0, 1], [10, 0, 0, 2], ttl)
            .udp(1, 2)
            .write(&mut f, b"x")
            .unwrap();
        f
    }

    #[test]
    fn ipv4_checksum_stays_valid_per_etherparse() {
        for ttl in [2u8, 64, 128, 255] {
            let out = testutil::run(&mut TtlDecrement::default(), &[v4(ttl)]);
            let sliced = SlicedPacket::from_ethernet(&out[0].0).unwrap();
            let Some(etherparse::NetSlice::Ipv4(ip)) = sliced.net else { panic!("not ipv4") };
            let h = ip.header().to_header();
            assert_eq!(h.time_to_live, ttl - 1);
            assert_eq!(h.header_checksum, h.calc_header_checksum(), "ttl {ttl}");
        }
    }

    #[test]
    fn expiry_is_dropped_with_a_reason() {
        let mut f6 = Vec::new();
        PacketBuilder::ethernet2([1; 6], [2; 6]).ipv6([1; 16], [2; 16], 1).udp(1, 2).write(&mut f6, b"x").unwrap();
        let mut arp = vec![0xff; 12];
        arp.extend_from_slice(&[0x08, 0x06]);
        arp.resize(60, 0);
        let out = testutil::run(&mut TtlDecrement::default(), &[v4(1), v4(0), f6, arp]);
        let expired = VerdictKind::Drop(DropReason(TtlDrop::Expired as u8));
        assert_eq!(out[0].1, expired);
        assert_eq!(out[1].1, expired);
        assert_eq!(out[2].1, VerdictKind::Drop(DropReason(TtlDrop::HopLimitExpired as u8)));
        assert_eq!(out[3].1, VerdictKind::Next, "non-IP passes");
    }

    #[test]
    fn ipv6_hop_limit_decrements() {
        let mut f6 = Vec::new();
        PacketBuilder::ethernet2([1; 6], [2; 6])
            .ipv6([1; 16], [2; 16], 64)
            .tcp(1, 2, 3, 4)
            .write(&mut f6, b"x")
            .unwrap();
        let out = testutil::run(&mut TtlDecrement::default(), &[f6]);
        let sliced = SlicedPacket::from_ethernet(&out[0].0).unwrap();
        let Some(etherparse::NetSlice::Ipv6(ip)) = sliced.net else { panic!("not ipv6") };
        assert_eq!(ip.header().hop_limit(), 63);
    }
}
