//! The load-balancer benchmark cases: an `lb` stage with one DSR VIP over
//! 16 backends, and TCP frames of chosen client flows to it.
#![allow(dead_code)]

use etherparse::PacketBuilder;
use nfv_core::{BuildCtx, StageRegistry, config};

#[path = "stage_case.rs"]
mod stage_case;
#[allow(unused_imports)]
pub use stage_case::{Case, FRAMES, new_flows, run};
const BACKENDS: u8 = 16;

/// A client flow's frame: client address and port from `flow`.
pub fn frame(flow: u32) -> Vec<u8> {
    let client = 0xc612_0000u32.wrapping_add(flow >> 4);
    let sport = 1024 + (flow & 0xf) as u16 * 4000;
    let mut f = Vec::new();
    PacketBuilder::ethernet2([2, 0, 0, 0, 0, 9], [2, 0, 0, 0, 1, 0])
        .ipv4(client.to_be_bytes(), [192, 0, 2, 10], 64)
        .tcp(sport, 80, 1, 1000)
        .ack(1)
        .write(&mut f, &[0; 6])
        .unwrap();
    f
}

/// An `lb` stage tracking up to `max_connections`, frames of `flows`;
/// `mode` "dsr" or "ipip".
pub fn case(max_connections: usize, flows: &[u32], mode: &str) -> Case {
    let backends: Vec<String> = (1..=BACKENDS).map(|i| format!("{{ addr = \"10.1.0.{i}\" }}")).collect();
    let src = format!(
        "[[ports]]\nname = \"c\"\nkind = \"generator\"\n\n[[ports]]\nname = \"b\"\nkind = \"generator\"\naddresses = [\"10.1.0.253/24\"]\n\n\
         [[chains]]\nname = \"x\"\nstages = [{{ kind = \"lb\", clients = [\"c\"], backends-port = \"b\", \
         source-address = \"10.1.0.254\", max-connections = {max_connections}, \
         vips = [{{ vip = \"192.0.2.10:80\", mode = \"{mode}\", backends = [{}] }}] }}]\n\n\
         [[workers]]\nrx = [\"c\", \"b\"]\nchain = \"x\"\n",
        backends.join(", ")
    );
    let mut r = StageRegistry::new();
    nfv_lb::register(&mut r);
    let cfg = config::load("bench.toml", &src, &r).unwrap_or_else(|e| panic!("{e}"));
    let macs = [[2, 0, 0, 0, 1, 0], [2, 0, 0, 0, 1, 1]];
    let ctx = BuildCtx { worker: 0, port_macs: &macs, headers_read_later: false, chain_rank: 0, chain_workers: 1 };
    let stage = cfg.chains[0].stages[0].builder.build(&ctx);
    let nb = (1..=BACKENDS).map(|i| (std::net::IpAddr::from([10, 1, 0, i]), [2, 0, 0, 0, 0xb, i], 1));
    stage_case::case_of(stage, flows.iter().map(|&f| frame(f)), 0, nb)
}

/// A stage tracking `conns` connections and frames of flows drawn at
/// random among them.
pub fn filled(conns: usize, mode: &str) -> Case {
    stage_case::filled(
        conns,
        |max, flows| case(max, flows, mode),
        |report| {
            let held: usize = report
                .split("connection table ")
                .nth(1)
                .and_then(|t| t.split_whitespace().next()?.parse().ok())
                .unwrap();
            // A bucket of three overflows now and then: about 2 % are evicted.
            assert!(held >= conns * 96 / 100, "{report}");
        },
    )
}
