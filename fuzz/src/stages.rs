//! Targets that run arbitrary frames through a network function's stage,
//! in batches as a worker would, with its tables carried from batch to
//! batch within one input (sessions opened by one frame are used by the
//! next). Every input starts from a freshly built stage, so a finding
//! replays from its input alone.
//!
//! Invariants, per batch: every packet fed leaves at most once (none
//! twice); a drop names one of the stage's reasons; a packet sent goes
//! out of a configured port, with a length a frame holds, and when what
//! was fed had every checksum right (etherparse's, through tunnels), so
//! has what leaves. Per input: once time has run on and held packets have
//! been released or given up, every frame is back in the pool (a leaked
//! frame is a port that wedges a million packets later).

use std::net::IpAddr;

use nfv_core::frame::MAX_DATA;
use nfv_core::packet::{Meta, PortId, VerdictKind};
use nfv_core::{BuildCtx, Stage, StageRegistry};
use nfv_testkit::FrameRunner;

use crate::frames::{Record, checksums_verify, ip_whole, records};

/// Ticks per unit of a record's clock advance: about a tenth of a second
/// at the cycle counter's usual rate, so inputs reach idle timeouts.
const TICKS_PER_STEP: u64 = 1 << 28;
/// Packets per batch at most (a worker's default batch).
const BATCH: usize = 32;

/// A stage ready to be fed.
pub struct Harness {
    routes_ip: bool,
    stage: Box<dyn Stage>,
    reasons: &'static [&'static str],
    runner: FrameRunner,
}

/// What a function's target is built from.
pub struct Setup {
    /// The stage as an inline TOML table.
    pub stage: &'static str,
    /// Port names (ids 0 and 1).
    pub ports: [&'static str; 2],
    /// Adds the stage's kind.
    pub register: fn(&mut StageRegistry),
    /// Next hops the neighbour table knows.
    pub neighbours: &'static [(&'static str, PortId)],
    /// Each port's subnets (next hops on-link there are asked for).
    pub subnets: [&'static [&'static str]; 2],
    /// The stage sends IP packets by L3 decisions (a router, a NAT), so
    /// every IP packet it sends is whole, whatever it was fed; a bridge
    /// (the VTEP) forwards whatever frame a tenant sent.
    pub routes_ip: bool,
}

const MACS: [[u8; 6]; 2] = [[2, 0, 0, 0, 0xf, 0], [2, 0, 0, 0, 0xf, 1]];

impl Harness {
    /// Builds the stage of `s` as worker 0 of one.
    pub fn new(s: &Setup) -> Self {
        let cfg = nfv_testkit::two_port_config("fuzz.toml", s.ports, s.stage, s.register)
            .unwrap_or_else(|e| panic!("the fuzz configuration loads: {e}"));
        let builder = &cfg.chains[0].stages[0].builder;
        let ctx = BuildCtx { worker: 0, port_macs: &MACS, headers_read_later: true, chain_rank: 0, chain_workers: 1 };
        let stage = builder.build(&ctx);
        let neighbours = s.neighbours.iter().enumerate().map(|(i, (ip, port))| {
            let ip: IpAddr = ip.parse().expect("a neighbour's address");
            (ip, [2, 0, 0, 0, 0xe, i as u8], *port)
        });
        let mut runner = FrameRunner::with_frames(neighbours, 1024);
        for (port, subnets) in s.subnets.iter().enumerate() {
            runner.set_port(port as PortId, MACS[port], subnets);
        }
        Self { routes_ip: s.routes_ip, stage, reasons: builder.drop_reasons(), runner }
    }

    /// Feeds `data`'s records (see [`records`]) in batches of one port
    /// each, checking every batch, then lets time run out and checks
    /// that no frame is lost.
    pub fn run(&mut self, data: &[u8]) {
        let recs: Vec<Record> = records(data)
            .into_iter()
            .filter(|r| nfv_core::parse::classify(&r.data, &mut Meta::default()).is_ok())
            .collect();
        let mut i = 0;
        while i < recs.len() {
            let port = recs[i].port;
            let n = recs[i..].iter().take(BATCH).take_while(|r| r.port == port).count();
            let batch = &recs[i..i + n];
            self.runner.now_ticks += batch.iter().map(|r| r.advance as u64).sum::<u64>() * TICKS_PER_STEP;
            self.batch(port, batch);
            i += n;
        }
        // Time runs on: what waits for a next hop is released or given
        // up, the stage's own timers fire.
        for _ in 0..3 {
            self.runner.now_ticks += 600 * TICKS_PER_STEP;
            let released = self.runner.release();
            self.check(&released.into_iter().map(|(v, m, d)| (None, v, m, d)).collect::<Vec<_>>(), &[]);
            let ticked = self.runner.tick(&mut *self.stage);
            self.check(&ticked.into_iter().map(|(v, m, d)| (None, v, m, d)).collect::<Vec<_>>(), &[]);
            self.runner.expire();
        }
        assert_eq!(self.runner.frames_in_use(), 0, "every frame is back in the pool once nothing is held");
    }

    fn batch(&mut self, port: u16, batch: &[Record]) {
        let valid: Vec<bool> = batch.iter().map(|r| checksums_verify(&r.data).is_ok()).collect();
        let out = self.runner.run_batch(&mut *self.stage, port, batch.iter().map(|r| &r.data[..]));
        let out: Vec<_> = out.into_iter().map(|o| (o.fed, o.verdict, o.meta, o.data)).collect();
        self.check(&out, &valid);
    }

    /// The per-packet invariants over what left a batch fed `valid.len()`
    /// frames (`valid[i]`: frame i's checksums were right).
    #[allow(clippy::type_complexity)]
    fn check(&self, out: &[(Option<usize>, VerdictKind, Meta, Vec<u8>)], valid: &[bool]) {
        let mut seen = vec![false; valid.len()];
        for (fed, verdict, _, data) in out {
            if let Some(i) = *fed {
                assert!(!seen[i], "packet {i} left twice");
                seen[i] = true;
            }
            match *verdict {
                VerdictKind::Drop(r) => {
                    assert!((r.0 as usize) < self.reasons.len(), "drop reason {} of {}", r.0, self.reasons.len())
                }
                VerdictKind::Out(p) => {
                    assert!(p < 2, "out of port {p}, not one configured");
                    assert!(data.len() >= 14 && data.len() <= MAX_DATA, "a {}-octet frame sent", data.len());
                    if self.routes_ip
                        && let Err(e) = ip_whole(data)
                    {
                        panic!("an IP packet sent cut short (fed {fed:?}): {e}: {data:02x?}");
                    }
                    let from_valid = match fed {
                        Some(i) => valid[*i],
                        None => valid.iter().all(|v| *v),
                    };
                    if from_valid && let Err(e) = checksums_verify(data) {
                        panic!("a well-formed packet (fed {fed:?}) left with {e}: {data:02x?}");
                    }
                }
                _ => {}
            }
        }
    }
}

/// NAT44 (RFC 3022, RFC 4787 endpoint-independent mapping) with a small
/// pool, port range and session table: floods reach their limits, and a
/// stage builds in microseconds (a fresh one per input).
pub const NAT: Setup = Setup {
    stage: "{ kind = \"nat44\", inside = [\"in\"], outside = \"out\", pool = [\"198.51.100.10\", \"198.51.100.11\"], \
            outside-gateway = \"198.51.100.1\", max-sessions = 256, port-range = \"1024-1279\", fragments = 64 }",
    ports: ["in", "out"],
    register: nfv_nat::register,
    neighbours: &[("198.51.100.1", 1)],
    subnets: [&["10.0.0.254/8"], &["198.51.100.10/24"]],
    routes_ip: true,
};

/// The load balancer: a TCP VIP (DSR), a UDP VIP over IP-in-IP and a NAT
/// mode VIP, with small Maglev tables (the least prime over 100 entries a
/// backend) and a small connection table.
pub const LB: Setup = Setup {
    stage: "{ kind = \"lb\", clients = [\"c\"], backends-port = \"b\", source-address = \"10.1.0.1\", max-connections = 256, \
            vips = [{ vip = \"192.0.2.10:80\", table-size = 307, backends = [{ addr = \"10.1.0.2\" }, { addr = \"10.1.0.3\", weight = 2 }] }, \
                    { vip = \"192.0.2.10:53\", proto = \"udp\", mode = \"ipip\", table-size = 211, backends = [{ addr = \"10.1.0.4\" }, { addr = \"10.1.0.5\" }] }, \
                    { vip = \"192.0.2.10:8080\", mode = \"nat\", table-size = 101, backends = [{ addr = \"10.1.0.6\" }] }] }",
    ports: ["c", "b"],
    register: nfv_lb::register,
    neighbours: &[
        ("10.1.0.2", 1),
        ("10.1.0.3", 1),
        ("10.1.0.4", 1),
        ("10.1.0.5", 1),
        ("10.1.0.6", 1),
        ("203.0.113.1", 0),
    ],
    subnets: [&["203.0.113.254/24"], &["10.1.0.1/24"]],
    routes_ip: true,
};

/// A VXLAN VTEP: the underlay on port 0, one bridge domain's hosts on 1.
pub const VTEP: Setup = Setup {
    stage: "{ kind = \"vtep\", underlay = \"up\", local-ip = \"192.0.2.1\", \
            bridge-domains = [{ vni = 100, ports = [\"host\"], flood = [\"192.0.2.2\", \"192.0.2.3\"] }] }",
    ports: ["up", "host"],
    register: nfv_vtep::register,
    neighbours: &[("192.0.2.2", 0), ("192.0.2.3", 0)],
    subnets: [&["192.0.2.1/24"], &[]],
    routes_ip: false,
};

/// A Geneve VTEP (RFC 8926) sending an option of its own, knowing one
/// critical option, with a small FDB so MAC floods reach its limit, and
/// ARP suppression.
pub const GENEVE: Setup = Setup {
    stage: "{ kind = \"vtep\", underlay = \"up\", local-ip = \"192.0.2.1\", protocol = \"geneve\", fdb-size = 64, \
            arp-suppression = true, geneve-options = [{ class = 0x0102, type = 0x80, data = \"0a0b0c0d\" }], \
            known-geneve-options = [{ class = 0x0102, type = 0x80 }], \
            bridge-domains = [{ vni = 100, ports = [\"host\"], flood = [\"192.0.2.2\", \"192.0.2.3\"] }] }",
    ports: ["up", "host"],
    register: nfv_vtep::register,
    neighbours: &[("192.0.2.2", 0), ("192.0.2.3", 0)],
    subnets: [&["192.0.2.1/24"], &[]],
    routes_ip: false,
};

/// A UPF with one static session (N3 on port 0, N6 on port 1).
pub const UPF: Setup = Setup {
    stage: "{ kind = \"upf\", n3 = \"n3\", n3-address = \"10.10.0.1\", n6 = \"n6\", n6-gateway = \"198.51.100.1\", \
            sessions = [{ seid = 1, ue = \"10.45.0.7\", uplink-teid = 4660, gnb = \"10.10.0.2\", downlink-teid = 43981, qfi = 5 }] }",
    ports: ["n3", "n6"],
    register: nfv_upf::register,
    neighbours: &[("10.10.0.2", 0), ("198.51.100.1", 1)],
    subnets: [&["10.10.0.1/24"], &["198.51.100.254/24"]],
    routes_ip: true,
};

/// A stateful ACL: inline rules of each kind (prefixes, port ranges, TCP
/// flags, an ingress port, reflexive permits for established flows).
pub const ACL: Setup = Setup {
    stage: "{ kind = \"acl\", default = \"deny\", rules = [\
            { action = \"deny\", proto = \"tcp\", dst-port = \"23\" }, \
            { action = \"permit-reflect\", ingress = \"in\", src = \"10.0.0.0/8\" }, \
            { action = \"permit\", proto = \"udp\", dst-port = \"53\", dst = \"192.0.2.0/24\" }, \
            { action = \"deny\", proto = \"tcp\", tcp-flags = [\"syn\", \"!ack\"], ingress = \"out\" }, \
            { action = \"permit\", src = \"2001:db8::/32\", proto = \"icmpv6\" }, \
            { action = \"permit\", proto = \"tcp\", src-port = \"1024-65535\", dst-port = \"443\" }] }",
    ports: ["in", "out"],
    register: nfv_acl::register,
    neighbours: &[],
    subnets: [&[], &[]],
    routes_ip: true,
};

/// Runs `data` through a fresh instance of `setup`'s stage.
pub fn run(setup: &Setup, data: &[u8]) {
    Harness::new(setup).run(data);
}
