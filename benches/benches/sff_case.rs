//! The service function forwarder's benchmark case, shared by the
//! criterion bench and the callgrind example: NSH packets (MD type 1,
//! over Ethernet, a 64-octet frame inside) on a path whose next index is
//! the next forwarder, resolved: TTL decremented, (SPI, SI) looked up
//! among 64 paths, the outer Ethernet addresses written.
#![allow(dead_code)]

use nfv_core::{BuildCtx, StageRegistry, config};
use nfv_net::wire::nsh::{self, Context, NshRepr};

#[path = "stage_case.rs"]
mod stage_case;
pub use stage_case::{Case, run};

fn frame(spi: u32) -> Vec<u8> {
    let mut f = vec![0u8; 14];
    f[0..6].copy_from_slice(&[2, 0, 0, 0, 1, 1]);
    f[6..12].copy_from_slice(&[2, 0, 0, 0, 0, 9]);
    f[12..14].copy_from_slice(&nsh::ETHERTYPE.to_be_bytes());
    let r = NshRepr { ttl: 63, next_protocol: nsh::next::ETHERNET, spi, si: 255, context: Context::Md1([7, 0, 0, 0]) };
    let mut h = vec![0u8; r.header_len()];
    r.emit(&mut h);
    f.extend_from_slice(&h);
    // The inner frame: 60 octets of IPv4/UDP.
    let mut inner = vec![0u8; 60];
    inner[12..14].copy_from_slice(&[8, 0]);
    inner[14] = 0x45;
    f.extend_from_slice(&inner);
    f
}

/// 64 paths (SPI 1..=64, SI 255) to one next forwarder, frames on all.
pub fn case() -> Case {
    let paths: Vec<String> =
        (1..=64).map(|spi| format!("{{ spi = {spi}, si = 255, next-hop = \"192.168.100.3\" }}")).collect();
    let src = format!(
        "[[ports]]\nname = \"d1\"\nkind = \"generator\"\naddresses = [\"192.168.100.1/24\"]\n\n\
         [[chains]]\nname = \"c\"\nstages = [{{ kind = \"sff\", ports = [\"d1\"], paths = [{}] }}]\n\n\
         [[workers]]\nrx = [\"d1\"]\nchain = \"c\"\n",
        paths.join(", ")
    );
    let mut r = StageRegistry::new();
    nfv_sfc::register(&mut r);
    let cfg = config::load("sff.toml", &src, &r).unwrap_or_else(|e| panic!("{e}"));
    let macs = [[2, 0, 0, 0, 1, 1]];
    let ctx = BuildCtx { worker: 0, port_macs: &macs, headers_read_later: false, chain_rank: 0, chain_workers: 1 };
    let stage = cfg.chains[0].stages[0].builder.build(&ctx);
    let hop: std::net::IpAddr = "192.168.100.3".parse().unwrap();
    stage_case::case_of(stage, (1..=64).map(frame), 0, [(hop, [2, 0, 0, 0, 0, 3], 0)])
}
