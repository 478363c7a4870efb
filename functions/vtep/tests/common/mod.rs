//! Shared by the VTEP tests: a `vtep` stage built from TOML, a one-batch
//! runner, and frames built by etherparse.
#![allow(dead_code)]

use std::net::IpAddr;

use etherparse::PacketBuilder;
use nfv_core::config::{self, Config};
use nfv_core::packet::VerdictKind;
use nfv_core::{BuildCtx, Stage, StageRegistry};
use nfv_testkit::FrameRunner;

pub const HOST_A: [u8; 6] = [2, 0, 0, 0, 0, 0xa1];
pub const HOST_B: [u8; 6] = [2, 0, 0, 0, 0, 0xb2];
pub const REMOTE_HOST: [u8; 6] = [2, 0, 0, 0, 0, 0xc3];
pub const REMOTE_VTEP_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0xee];
pub const UNDERLAY_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0x01];

/// Ports: 0 = underlay, 1 = host0, 2 = host1.
pub fn vtep(extra: &str, v6: bool) -> (Config, Box<dyn Stage>) {
    let (local, remote, other) =
        if v6 { ("2001:db8::1", "2001:db8::2", "2001:db8::3") } else { ("192.0.2.1", "192.0.2.2", "192.0.2.3") };
    let plen = if v6 { 64 } else { 24 };
    let src = format!(
        "[[ports]]\nname = \"up\"\nkind = \"generator\"\naddresses = [\"{local}/{plen}\"]\n\n[[ports]]\nname = \"host0\"\nkind = \"sink\"\n\n\
         [[ports]]\nname = \"host1\"\nkind = \"sink\"\n\n\
         [[chains]]\nname = \"c\"\nstages = [{{ kind = \"vtep\", underlay = \"up\", local-ip = \"{local}\", \
         bridge-domains = [{{ vni = 100, ports = [\"host0\", \"host1\"], flood = [\"{remote}\", \"{other}\"] }}] {extra} }}]\n\n\
         [[workers]]\nrx = [\"up\"]\nchain = \"c\"\n"
    );
    let mut r = StageRegistry::new();
    nfv_vtep::register(&mut r);
    let cfg = config::load("t.toml", &src, &r).unwrap_or_else(|e| panic!("{e}"));
    let macs = [UNDERLAY_MAC, [2, 0, 0, 0, 1, 1], [2, 0, 0, 0, 1, 2]];
    let stage = cfg.chains[0].stages[0].builder.build(&BuildCtx {
        worker: 0,
        port_macs: &macs,
        headers_read_later: true,
        chain_rank: 0,
        chain_workers: 1,
    });
    (cfg, stage)
}

pub fn remote_ip(v6: bool) -> IpAddr {
    if v6 { "2001:db8::2".parse().unwrap() } else { "192.0.2.2".parse().unwrap() }
}

/// Runs frames received on `port` through the stage; returns (bytes, verdict).
pub fn run(stage: &mut dyn Stage, port: u16, frames: &[Vec<u8>], v6: bool) -> Vec<(Vec<u8>, VerdictKind)> {
    run_with_meta(stage, port, frames, v6).into_iter().map(|(b, v, _)| (b, v)).collect()
}

/// [`run`], also returning each packet's metadata as the stage left it.
pub fn run_with_meta(
    stage: &mut dyn Stage,
    port: u16,
    frames: &[Vec<u8>],
    v6: bool,
) -> Vec<(Vec<u8>, VerdictKind, nfv_core::Meta)> {
    let mut runner = FrameRunner::new([(remote_ip(v6), REMOTE_VTEP_MAC, 0)]);
    runner.now_ticks = 1_000;
    let out = runner.run_batch(stage, port, frames.iter().map(|f| &f[..]));
    out.into_iter().map(|o| (o.data, o.verdict, o.meta)).collect()
}

pub fn inner(dst: [u8; 6], src: [u8; 6]) -> Vec<u8> {
    let mut f = Vec::new();
    PacketBuilder::ethernet2(src, dst)
        .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
        .udp(1234, 80)
        .write(&mut f, b"hello")
        .unwrap();
    f
}

/// A tunnel packet from the remote VTEP to us, built by etherparse.
pub fn tunnelled(vni: u32, inner: &[u8], v6: bool, geneve: Option<&[u8]>) -> Vec<u8> {
    let mut payload = match geneve {
        None => vec![0x08, 0, 0, 0, (vni >> 16) as u8, (vni >> 8) as u8, vni as u8, 0],
        Some(opts) => {
            let mut h = vec![(opts.len() / 4) as u8, 0, 0x65, 0x58, (vni >> 16) as u8, (vni >> 8) as u8, vni as u8, 0];
            h.extend_from_slice(opts);
            h
        }
    };
    payload.extend_from_slice(inner);
    let port = if geneve.is_some() { 6081 } else { 4789 };
    let b = PacketBuilder::ethernet2(REMOTE_VTEP_MAC, UNDERLAY_MAC);
    let mut f = Vec::new();
    if v6 {
        let s: std::net::Ipv6Addr = "2001:db8::2".parse().unwrap();
        let d: std::net::Ipv6Addr = "2001:db8::1".parse().unwrap();
        b.ipv6(s.octets(), d.octets(), 64).udp(50000, port).write(&mut f, &payload).unwrap();
    } else {
        b.ipv4([192, 0, 2, 2], [192, 0, 2, 1], 64).udp(50000, port).write(&mut f, &payload).unwrap();
    }
    f
}

/// Bytes from a hex string (what the scapy helpers print).
pub fn unhex(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}
