//! `nsh-encap`: puts each packet on a service path (RFC 8300 2, RFC 7665
//! 2.2 "classification"): an outer Ethernet header (EtherType 0x894F,
//! addresses written by the forwarder that sends it) and an NSH header
//! with the configured SPI, SI and TTL, next protocol Ethernet, the
//! original frame inside. Context (RFC 8300 2.4, 2.5): MD type 1 carries
//! the tenant id in its first word and the ingress port in its second; MD
//! type 2 carries them as TLVs of the experimental class 0xFFF6 (type 1:
//! tenant, 4 octets; type 2: ingress port, 2 octets).

use std::sync::Arc;

use nfv_core::config::{Diagnostic, Params};
use nfv_core::{Batch, BuildCtx, BuildEnv, Stage, StageBuilder, StageCtx, StageFactory};
use nfv_net::wire::nsh::{self, Context, NshRepr};
use serde::Deserialize;

use crate::transport::Transport;

nfv_core::drop_reasons! {
    /// Why `nsh-encap` dropped a packet.
    pub enum EncapDrop {
        NoHeadroom => "no-headroom",
    }
}

/// The class of our context TLVs (IANA: 0xFFF6-0xFFFE experimental).
pub const TLV_CLASS: u16 = 0xfff6;
/// TLV type: the tenant id.
pub const TLV_TENANT: u8 = 1;
/// TLV type: the ingress port.
pub const TLV_INGRESS: u8 = 2;

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct EncapParams {
    spi: u32,
    #[serde(default = "max_si")]
    si: u8,
    #[serde(default = "ttl")]
    ttl: u8,
    #[serde(default = "one")]
    md_type: u8,
    #[serde(default)]
    tenant: u32,
    #[serde(default)]
    transport: Transport,
    /// Our VXLAN-GPE address: the packet is handed to this instance's
    /// forwarder, which addresses it to the next.
    #[serde(default)]
    local_ip: Option<std::net::Ipv4Addr>,
    #[serde(default)]
    vni: u32,
}

fn max_si() -> u8 {
    255
}
fn ttl() -> u8 {
    nsh::DEFAULT_TTL
}
fn one() -> u8 {
    1
}

/// Registers `nsh-encap`.
pub struct EncapFactory;

impl StageFactory for EncapFactory {
    fn kind(&self) -> &'static str {
        "nsh-encap"
    }

    fn summary(&self) -> &'static str {
        "put packets on a service path: NSH (RFC 8300) with SPI, SI and context (tenant, ingress port), over Ethernet"
    }

    fn configure(&self, params: &Params<'_>, _env: &BuildEnv<'_>) -> Result<Arc<dyn StageBuilder>, Vec<Diagnostic>> {
        let p: EncapParams = params.parse().map_err(|e| vec![e])?;
        let mut errors = Vec::new();
        if p.spi > 0xff_ffff {
            errors.push(params.error("spi", format!("SPI {} does not fit 24 bits", p.spi), "RFC 8300 2.3"));
        }
        if p.si == 0 {
            errors.push(params.error("si", "SI 0 ends a path before it starts", "expected 1..=255"));
        }
        if p.ttl == 0 || p.ttl > 63 {
            errors.push(params.error("ttl", format!("TTL {} is not 1..=63", p.ttl), "six bits, RFC 8300 2.2"));
        }
        if p.md_type != 1 && p.md_type != 2 {
            errors.push(params.error("md-type", format!("MD type {} is not 1 or 2", p.md_type), "RFC 8300 2.2"));
        }
        if p.transport == Transport::VxlanGpe && p.local_ip.is_none() {
            errors.push(
                params
                    .error("transport", "VXLAN-GPE needs local-ip", "no address")
                    .help("local-ip = \"192.168.100.1\": this instance's forwarder's"),
            );
        }
        if p.vni > 0xff_ffff {
            errors.push(params.error("vni", format!("VNI {} does not fit 24 bits", p.vni), "too big"));
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(Arc::new(EncapBuilder(Arc::new(p))))
    }
}

struct EncapBuilder(Arc<EncapParams>);

impl StageBuilder for EncapBuilder {
    fn drop_reasons(&self) -> &'static [&'static str] {
        EncapDrop::NAMES
    }

    fn reads_headers(&self) -> bool {
        false
    }

    fn build(&self, ctx: &BuildCtx<'_>) -> Box<dyn Stage> {
        let p = &self.0;
        // The header for ingress port 0; each packet's port is written in.
        let context = match p.md_type {
            1 => Context::Md1([p.tenant, 0, 0, 0]),
            _ => Context::Md2(vec![
                (TLV_CLASS, TLV_TENANT, p.tenant.to_be_bytes().to_vec()),
                (TLV_CLASS, TLV_INGRESS, vec![0, 0]),
            ]),
        };
        let repr = NshRepr { ttl: p.ttl, next_protocol: nsh::next::ETHERNET, spi: p.spi, si: p.si, context };
        let mut header = p.transport.template(p.vni);
        let outer = header.len();
        header.resize(outer + repr.header_len(), 0);
        repr.emit(&mut header[outer..]);
        // Where the ingress port goes: MD1's second word, MD2's second TLV.
        let port_at = outer + if p.md_type == 1 { 8 + 4 + 2 } else { 8 + 8 + 4 };
        let local = p.local_ip.map_or([0; 4], |a| a.octets());
        Box::new(Encap { header, port_at, transport: p.transport, local, reparse: ctx.headers_read_later })
    }
}

/// A worker's encapsulator: the headers prebuilt, the port filled in.
pub struct Encap {
    header: Vec<u8>,
    /// Offset of the 16-bit ingress port in `header`.
    port_at: usize,
    transport: Transport,
    local: [u8; 4],
    reparse: bool,
}

impl Stage for Encap {
    fn process(&mut self, batch: &mut Batch, _ctx: &mut StageCtx<'_>) {
        let n = self.header.len();
        for mut p in batch.iter_mut() {
            let port = p.meta().port;
            let Ok(d) = p.push_front(n) else {
                p.drop_with(EncapDrop::NoHeadroom);
                continue;
            };
            d[..n].copy_from_slice(&self.header);
            d[self.port_at..self.port_at + 2].copy_from_slice(&port.to_be_bytes());
            if self.transport == Transport::VxlanGpe {
                // Entropy for the underlay's ECMP: the flow's hash, when
                // known, picks the source port; to our own forwarder.
                let m = *p.meta();
                let sport = if m.flags & nfv_core::packet::flags::HASH_OK != 0 { m.hash as u16 } else { port };
                nfv_net::wire::set_ports(&mut p.data_mut()[34..], 49152 | (sport & 0x3fff), 0);
                self.transport.address(&mut p, self.local, self.local);
            }
            if self.reparse {
                // The outer Ethernet header was just written: it parses.
                let _ = p.reparse();
            }
        }
    }
}
