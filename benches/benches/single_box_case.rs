//! The single-box graph (configs/sfc/single-box.toml) against the same
//! functions as separate linear chains, shared by the criterion bench and
//! the callgrind example: G-PDUs of the static session, VXLAN from the
//! remote VTEP and plain TCP from a host, arriving on the access port;
//! the graph is fed a third of each, each linear chain (UPF alone, VTEP
//! alone, ACL then NAT44) only its own kind.
#![allow(dead_code)]

use etherparse::PacketBuilder;
use nfv_core::graph::Graph;
use nfv_core::packet::VerdictKind;
use nfv_core::{config, runtime};
use nfv_testkit::Rounds;

const SINGLE_BOX: &str = include_str!("../../configs/sfc/single-box.toml");

/// Which traffic.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Kind {
    Gtpu,
    Vxlan,
    Plain,
}

fn udp(src: [u8; 4], sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::new();
    PacketBuilder::ethernet2([2, 0, 0, 0, 0, 9], config::default_port_mac(0))
        .ipv4(src, [10, 10, 0, 1], 64)
        .udp(sport, dport)
        .write(&mut f, payload)
        .unwrap();
    f
}

/// Flow `i` of `kind`.
pub fn frame(kind: Kind, i: u16) -> Vec<u8> {
    let mut inner = Vec::new();
    let eth = PacketBuilder::ethernet2([2, 0, 0, 0, 0xa, 1], [2, 0, 0, 0, 0xa, 0xfe]);
    match kind {
        Kind::Plain => {
            let mut f = Vec::new();
            PacketBuilder::ethernet2([2, 0, 0, 0, 0, 9], config::default_port_mac(0))
                .ipv4([10, 10, 0, 4], [203, 0, 113, 5], 64)
                .tcp(10000 + i, 80, 1, 1000)
                .write(&mut f, &[0; 6])
                .unwrap();
            f
        }
        Kind::Gtpu => {
            // TS 29.281 5.1: a G-PDU to TEID 4660 carrying the UE's UDP.
            eth.ipv4([10, 45, 0, 7], [203, 0, 113, 5], 64).udp(10000 + i, 53).write(&mut inner, &[0; 8]).unwrap();
            let ip = &inner[14..];
            let mut g = vec![0x30, 255, 0, ip.len() as u8, 0, 0, 0x12, 0x34];
            g[2..4].copy_from_slice(&(ip.len() as u16).to_be_bytes());
            g.extend_from_slice(ip);
            udp([10, 10, 0, 2], 2152, 2152, &g)
        }
        Kind::Vxlan => {
            // RFC 7348 5: VNI 100, an inner frame for the overlay.
            eth.ipv4([10, 20, 0, 1], [10, 20, 0, 2], 64).udp(10000 + i, 9).write(&mut inner, &[0; 8]).unwrap();
            let mut v = vec![0x08, 0, 0, 0, 0, 0, 100, 0];
            v.extend_from_slice(&inner);
            udp([10, 10, 0, 3], 50000 + i, 4789, &v)
        }
    }
}

/// A graph and its frames.
pub struct Case {
    pub graph: Graph,
    pub rounds: Rounds,
}

/// The single-box configuration's graph, or one of its chains alone as a
/// linear chain (`mobile`, `overlay`, `edge`: the others removed), fed
/// `kinds` in turn; its ports generators instead of AF_XDP.
pub fn case(linear: Option<&str>, kinds: &[Kind]) -> Case {
    let mut doc: toml::Table = SINGLE_BOX.parse().expect("the shipped configuration parses");
    for p in doc["ports"].as_array_mut().unwrap() {
        let p = p.as_table_mut().unwrap();
        p.insert("kind".into(), "generator".into());
        p.remove("interface");
    }
    if let Some(c) = linear {
        doc["chains"].as_array_mut().unwrap().retain(|ch| ch["name"].as_str() == Some(c));
        doc["workers"].as_array_mut().unwrap()[0].as_table_mut().unwrap().insert("chain".into(), c.into());
    }
    let text = toml::to_string(&doc).unwrap();
    let cfg = config::load("single-box.toml", &text, &nfv_pipelines::registry()).unwrap_or_else(|e| panic!("{e}"));
    let frames: Vec<Vec<u8>> = (0..1024u16).map(|i| frame(kinds[i as usize % kinds.len()], i)).collect();
    let gw: std::net::IpAddr = "198.51.100.2".parse().unwrap();
    let rounds = Rounds::new(frames, 0, [(gw, [2, 0, 0, 0, 0, 0xee], 1)]);
    let graph = runtime::worker_graph(&cfg, 0, rounds.arena());
    Case { graph, rounds }
}

/// One batch of 64 through the graph; returns the packets that left with
/// an egress.
pub fn run(c: &mut Case) -> usize {
    c.rounds.round_graph(&mut c.graph, 64, |v| matches!(v, VerdictKind::Out(_)))
}
