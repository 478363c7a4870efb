//! `upf` cost per packet, with 1k and 100k static sessions: uplink (a
//! G-PDU with a PDU Session Container: GTP-U read, session by TEID, PDR
//! by precedence, outer headers removed) and downlink (session by UE
//! address, PDR, GTP-U/UDP/IPv4 and a PDU Session Container put on), 64
//! packets per batch from sessions drawn at random. Each iteration first
//! restores the header octets the stage rewrote; `baseline` is that alone.

#[path = "stage_case.rs"]
mod stage_case;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use etherparse::PacketBuilder;
use nfv_core::{BuildCtx, StageRegistry, config};
use stage_case::{Case, FRAMES, case_restoring, run};

const N3_MAC: [u8; 6] = [2, 0, 0, 0, 3, 3];
const N6_MAC: [u8; 6] = [2, 0, 0, 0, 6, 6];

fn ue(i: u32) -> [u8; 4] {
    (0x0a2d_0000 + i).to_be_bytes()
}

/// A `upf` stage with `n` sessions: UE 10.45.x.y, uplink TEID 1000 + i,
/// downlink TEID 500000 + i, all behind one gNB, QFI 9.
fn stage(n: u32) -> Box<dyn nfv_core::Stage> {
    let sessions: Vec<String> = (0..n)
        .map(|i| {
            let u = ue(i);
            format!(
                "{{ seid = {i}, ue = \"{}.{}.{}.{}\", uplink-teid = {}, gnb = \"10.10.0.2\", downlink-teid = {}, qfi = 9 }}",
                u[0],
                u[1],
                u[2],
                u[3],
                1000 + i,
                500_000 + i
            )
        })
        .collect();
    let src = format!(
        "[[ports]]\nname = \"n3\"\nkind = \"generator\"\n\n[[ports]]\nname = \"n6\"\nkind = \"generator\"\n\n\
         [[chains]]\nname = \"c\"\nstages = [{{ kind = \"upf\", n3 = \"n3\", n3-address = \"10.10.0.1\", n6 = \"n6\", \
         n6-gateway = \"198.51.100.1\", sessions = [{}] }}]\n\n[[workers]]\nrx = [\"n3\", \"n6\"]\nchain = \"c\"\n",
        sessions.join(", ")
    );
    let mut r = StageRegistry::new();
    nfv_upf::register(&mut r);
    let cfg = config::load("bench.toml", &src, &r).unwrap_or_else(|e| panic!("{e}"));
    let macs = [N3_MAC, N6_MAC];
    let ctx = BuildCtx { worker: 0, port_macs: &macs, headers_read_later: false, chain_rank: 0, chain_workers: 1 };
    cfg.chains[0].stages[0].builder.build(&ctx)
}

fn neighbours() -> [(std::net::IpAddr, [u8; 6], u16); 2] {
    [([10, 10, 0, 2].into(), [2, 0, 0, 0, 0, 0x9b], 0), ([198, 51, 100, 1].into(), [2, 0, 0, 0, 0, 0x66], 1)]
}

fn uplink(n: u32, picks: &[u32]) -> Case {
    let frames = picks.iter().map(|&i| {
        let mut inner = Vec::new();
        PacketBuilder::ipv4(ue(i), [198, 51, 100, 9], 64).udp(4000, 53).write(&mut inner, &[0; 18]).unwrap();
        let mut g = [0u8; 16];
        nfv_upf::gtpu::write_gpdu(&mut g, 1000 + i, inner.len(), Some((nfv_upf::gtpu::pdu_type::UPLINK, 9)));
        let mut f = Vec::new();
        PacketBuilder::ethernet2([2, 0, 0, 0, 0, 0x9b], N3_MAC)
            .ipv4([10, 10, 0, 2], [10, 10, 0, 1], 64)
            .udp(2152, 2152)
            .write(&mut f, &[&g[..], &inner].concat())
            .unwrap();
        f
    });
    case_restoring(stage(n), frames, 0, neighbours(), 14 + 20 + 8 + 16)
}

fn downlink(n: u32, picks: &[u32]) -> Case {
    let frames = picks.iter().map(|&i| {
        let mut f = Vec::new();
        PacketBuilder::ethernet2([2, 0, 0, 0, 0, 0x66], N6_MAC)
            .ipv4([198, 51, 100, 9], ue(i), 64)
            .udp(53, 4000)
            .write(&mut f, &[0; 18])
            .unwrap();
        f
    });
    case_restoring(stage(n), frames, 1, neighbours(), 42)
}

fn upf(c: &mut Criterion) {
    let mut g = c.benchmark_group("upf");
    g.throughput(Throughput::Elements(64));
    g.warm_up_time(std::time::Duration::from_millis(500));
    g.measurement_time(std::time::Duration::from_secs(2));
    let mut base = downlink(1, &[0; 64]);
    g.bench_function("baseline", |b| b.iter(|| run(&mut base, false)));
    for n in [1_000u32, 100_000] {
        let mut rng = fastrand::Rng::with_seed(3);
        let picks: Vec<u32> = (0..FRAMES.min(n as usize * 4)).map(|_| rng.u32(0..n)).collect();
        let mut up = uplink(n, &picks);
        assert_eq!(run(&mut up, true), 64, "uplink packets pass");
        g.bench_with_input(BenchmarkId::new("uplink", n), &n, |b, _| b.iter(|| run(&mut up, true)));
        let mut down = downlink(n, &picks);
        assert_eq!(run(&mut down, true), 64, "downlink packets pass");
        g.bench_with_input(BenchmarkId::new("downlink", n), &n, |b, _| b.iter(|| run(&mut down, true)));
    }
    g.finish();
}

criterion_group!(benches, upf);
criterion_main!(benches);
