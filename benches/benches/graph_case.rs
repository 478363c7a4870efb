//! The chain-graph benchmark cases, shared by the criterion bench and the
//! callgrind example: a classifier splitting a batch of 64 three ways
//! into chains of their own, against the same rounds into a graph whose
//! entry chain is empty. [`Split::Ports`] reads the packets' destination
//! ports (UDP to 53, TCP to 80, the rest: a header read per packet);
//! [`Split::Proto`] splits on the IP protocol the descriptor already
//! holds (UDP, TCP, the rest), so it measures the split itself.
#![allow(dead_code)]

use etherparse::PacketBuilder;
use nfv_core::graph::{End, Graph};
use nfv_core::packet::VerdictKind;
use nfv_core::{BuildCtx, StageRegistry, config};
use nfv_testkit::Rounds;

/// A graph and the frames fed to it.
pub struct GraphCase {
    pub graph: Graph,
    pub rounds: Rounds,
}

/// UDP to 53, TCP to 80 and ICMP echo requests, in turn: a third for
/// each branch of either classifier.
fn frames() -> Vec<Vec<u8>> {
    (0..96u32)
        .map(|i| {
            let b = PacketBuilder::ethernet2([2, 0, 0, 0, 0, 9], [2, 0, 0, 0, 1, 0]).ipv4(
                [10, 0, (i >> 8) as u8, i as u8],
                [198, 51, 100, 2],
                64,
            );
            let mut f = Vec::new();
            match i % 3 {
                0 => b.udp(4000 + i as u16, 53).write(&mut f, &[0; 18]),
                1 => b.tcp(4000 + i as u16, 80, 1, 1000).write(&mut f, &[0; 6]),
                _ => b.icmpv4_echo_request(1, i as u16).write(&mut f, &[0; 18]),
            }
            .unwrap();
            f
        })
        .collect()
}

/// Which classifier splits the batch.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Split {
    /// None: the entry chain is empty (the rounds' own cost).
    Baseline,
    /// By protocol and destination port.
    Ports,
    /// By protocol alone.
    Proto,
}

const PORTS: &str =
    r#"{ proto = "udp", dst-port = 53, chain = "dns" }, { proto = "tcp", dst-port = 80, chain = "web" }"#;
const PROTO: &str = r#"{ proto = "udp", chain = "dns" }, { proto = "tcp", chain = "web" }"#;

const SPLIT: &str = r#"
[[ports]]
name = "in"
kind = "generator"

[[chains]]
name = "entry"
stages = [{ kind = "classify", rules = [RULES], default = "rest" }]

[[chains]]
name = "dns"
stages = []

[[chains]]
name = "web"
stages = []

[[chains]]
name = "rest"
stages = []

[[workers]]
rx = ["in"]
chain = "entry"
"#;

/// The classifier's three-way split, or its entry chain left empty.
pub fn case(split: Split) -> GraphCase {
    let mut r = StageRegistry::new();
    nfv_basic::register(&mut r);
    let text = SPLIT.replace("RULES", if split == Split::Proto { PROTO } else { PORTS });
    let cfg = config::load("graph.toml", &text, &r).unwrap_or_else(|e| panic!("{e}"));
    let rounds = Rounds::new(frames(), 0, []);
    let mut b = Graph::builder();
    let mut entry = Vec::new();
    if split != Split::Baseline {
        let spec = &cfg.chains[0].stages[0];
        let ctx = BuildCtx {
            worker: 0,
            port_macs: &[[2, 0, 0, 0, 1, 0]],
            headers_read_later: false,
            chain_rank: 0,
            chain_workers: 1,
        };
        let branches = spec.builder.branches().into_iter().map(|(c, _)| c).collect();
        entry.push(b.node("classify", &[], spec.builder.build(&ctx), branches, (0, 0)));
    }
    b.chain("entry", entry, End::Drop);
    for name in ["dns", "web", "rest"] {
        b.chain(name, Vec::new(), End::Drop);
    }
    let graph = b.build(0, rounds.arena(), 64);
    GraphCase { graph, rounds }
}

/// One batch of 64 through the graph; returns the packets that reached a
/// chain's end.
pub fn run(c: &mut GraphCase) -> usize {
    c.rounds.round_graph(&mut c.graph, 64, |v| v == VerdictKind::Next)
}
