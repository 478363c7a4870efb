//! The VTEP benchmark cases, shared by the criterion bench and the
//! callgrind example: a `vtep` stage from TOML and 64 frames to push
//! through it (fresh copies each round, so encapsulation always
//! starts from the inner frame).
#![allow(dead_code)]

use etherparse::PacketBuilder;
use nfv_core::packet::VerdictKind;
use nfv_core::{BuildCtx, Stage, StageRegistry, config};
use nfv_testkit::Rounds;

const HOST: [u8; 6] = [2, 0, 0, 0, 0, 0xa1];
const REMOTE_HOST: [u8; 6] = [2, 0, 0, 0, 0, 0xc3];
const REMOTE_VTEP_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0xee];

pub struct Case {
    stage: Box<dyn Stage>,
    rounds: Rounds,
}

pub fn case(geneve: bool, v6: bool, encap: bool, inner_len: usize) -> Case {
    case_with(geneve, v6, encap, inner_len, false)
}

/// [`case`]; `zero_udp6`: zero UDP checksums over IPv6 both ways (RFC 6935).
pub fn case_with(geneve: bool, v6: bool, encap: bool, inner_len: usize, zero_udp6: bool) -> Case {
    let zero = if zero_udp6 { "accept-zero-udp6-checksum = true, zero-udp6-checksum-tx = true," } else { "" };
    let (local, remote) = if v6 { ("2001:db8::1", "2001:db8::2") } else { ("192.0.2.1", "192.0.2.2") };
    let proto = if geneve { "geneve" } else { "vxlan" };
    let plen = if v6 { 64 } else { 24 };
    let src = format!(
        "[[ports]]\nname = \"up\"\nkind = \"generator\"\naddresses = [\"{local}/{plen}\"]\n\n[[ports]]\nname = \"host0\"\nkind = \"sink\"\n\n\
         [[chains]]\nname = \"c\"\nstages = [{{ kind = \"vtep\", underlay = \"up\", local-ip = \"{local}\", \
         protocol = \"{proto}\", learn = false, {zero} bridge-domains = [{{ vni = 100, ports = [\"host0\"] }}], \
         static-macs = [{{ vni = 100, mac = \"02:00:00:00:00:c3\", remote = \"{remote}\" }}, \
         {{ vni = 100, mac = \"02:00:00:00:00:a1\", port = \"host0\" }}] }}]\n\n\
         [[workers]]\nrx = [\"up\"]\nchain = \"c\"\n"
    );
    let mut r = StageRegistry::new();
    nfv_vtep::register(&mut r);
    let cfg = config::load("bench.toml", &src, &r).unwrap_or_else(|e| panic!("{e}"));
    let macs = [[2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 1, 1]];
    let stage = cfg.chains[0].stages[0].builder.build(&BuildCtx {
        worker: 0,
        port_macs: &macs,
        headers_read_later: false,
        chain_rank: 0,
        chain_workers: 1,
    });
    let remote_ip: std::net::IpAddr = remote.parse().unwrap();
    // The inner frame: UDP/IPv4 of `inner_len` bytes.
    let mut inner = Vec::new();
    let payload = vec![0x5a; inner_len - 14 - 20 - 8];
    let (dst, src) = if encap { (REMOTE_HOST, HOST) } else { (HOST, REMOTE_HOST) };
    PacketBuilder::ethernet2(src, dst)
        .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
        .udp(1000, 2000)
        .write(&mut inner, &payload)
        .unwrap();
    let frame = if encap {
        inner
    } else {
        let port = if geneve { 6081 } else { 4789 };
        let mut t = if geneve { vec![0, 0, 0x65, 0x58, 0, 0, 100, 0] } else { vec![0x08, 0, 0, 0, 0, 0, 100, 0] };
        t.extend_from_slice(&inner);
        let b = PacketBuilder::ethernet2(REMOTE_VTEP_MAC, macs[0]);
        let mut f = Vec::new();
        if v6 {
            let s: std::net::Ipv6Addr = remote.parse().unwrap();
            let d: std::net::Ipv6Addr = local.parse().unwrap();
            b.ipv6(s.octets(), d.octets(), 64).udp(50000, port).write(&mut f, &t).unwrap();
            if zero_udp6 {
                f[60..62].copy_from_slice(&[0, 0]);
            }
        } else {
            b.ipv4([192, 0, 2, 2], [192, 0, 2, 1], 64).udp(50000, port).write(&mut f, &t).unwrap();
            // What VXLAN senders do on IPv4 (RFC 7348 section 5): no checksum.
            f[40..42].copy_from_slice(&[0, 0]);
        }
        f
    };
    let port = if encap { 1 } else { 0 };
    let mut rounds = Rounds::new(vec![frame; 64], port, [(remote_ip, REMOTE_VTEP_MAC, 0)]);
    rounds.set_now(0);
    Case { stage, rounds }
}

pub fn run(c: &mut Case, with_stage: bool) -> usize {
    let stage = with_stage.then_some(&mut *c.stage as &mut dyn Stage);
    c.rounds.round(stage, 64, |v| matches!(v, VerdictKind::Out(_)))
}
