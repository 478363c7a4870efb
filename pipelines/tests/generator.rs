//! The in-memory generator emits what it claims, checked by etherparse
//! (an independent decoder): sizes, protocols, encapsulations, RFC 4814
//! address/port ranges, and valid checksums at every layer. And the
//! threaded runtime accounts for every generated packet across workers.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use etherparse::{NetSlice, SlicedPacket, TransportSlice};
use nfv_core::config;
use nfv_core::runtime::{Runtime, SlowPathMode};
use pcap_file::pcap::PcapReader;

fn generate(params: &str, out: &Path) -> Vec<Vec<u8>> {
    let src = format!(
        r#"
[[ports]]
name = "gen"
kind = "generator"
count = 96
flows = 32
{params}

[[ports]]
name = "cap"
kind = "pcap"
output = "{}"

[[chains]]
name = "pass"
stages = [{{ kind = "counter" }}]
then = "cap"

[[workers]]
rx = ["gen"]
chain = "pass"
"#,
        out.display()
    );
    let cfg = config::load("gen.toml", &src, &nfv_pipelines::registry()).unwrap_or_else(|r| panic!("{r}"));
    let report = Runtime::build(&cfg, SlowPathMode::Inline).unwrap().run_inline();
    assert_eq!(report.telemetry.total_tx(), 96);
    let mut r = PcapReader::new(std::fs::File::open(out).unwrap()).unwrap();
    let mut v = Vec::new();
    while let Some(p) = r.next_packet() {
        v.push(p.unwrap().data.into_owned());
    }
    v
}

/// Checks IP and L4 checksums of an (inner) IP packet with etherparse.
fn check_ip(bytes: &[u8], what: &str) -> (u8, u16, u16) {
    let p = SlicedPacket::from_ip(bytes).unwrap_or_else(|e| panic!("{what}: {e:?}"));
    let (src6, dst6, src4, dst4) = match &p.net {
        Some(NetSlice::Ipv4(ip)) => {
            let h = ip.header().to_header();
            assert_eq!(h.header_checksum, h.calc_header_checksum(), "{what}: IPv4 header checksum");
            let (s, d) = (ip.header().source(), ip.header().destination());
            assert_eq!(&s[..2], &[198, 18], "{what}: RFC 2544 benchmark source range");
            assert_eq!(&d[..2], &[198, 19]);
            (None, None, Some(s), Some(d))
        }
        Some(NetSlice::Ipv6(ip)) => {
            let (s, d) = (ip.header().source(), ip.header().destination());
            assert_eq!(&s[..4], &[0x20, 0x01, 0, 2], "{what}: RFC 5180 benchmark range");
            (Some(s), Some(d), None, None)
        }
        _ => panic!("{what}: not IP"),
    };
    match &p.transport {
        Some(TransportSlice::Udp(u)) => {
            let h = u.to_header();
            let c = match (src4, dst4) {
                (Some(s), Some(d)) => h.calc_checksum_ipv4_raw(s, d, u.payload()).unwrap(),
                _ => h.calc_checksum_ipv6_raw(src6.unwrap(), dst6.unwrap(), u.payload()).unwrap(),
            };
            assert_eq!(h.checksum, c, "{what}: UDP checksum");
            (17, h.source_port, h.destination_port)
        }
        Some(TransportSlice::Tcp(t)) => {
            let h = t.to_header();
            let c = match (src4, dst4) {
                (Some(s), Some(d)) => h.calc_checksum_ipv4_raw(s, d, t.payload()).unwrap(),
                _ => h.calc_checksum_ipv6_raw(src6.unwrap(), dst6.unwrap(), t.payload()).unwrap(),
            };
            assert_eq!(h.checksum, c, "{what}: TCP checksum");
            (6, h.source_port, h.destination_port)
        }
        Some(TransportSlice::Icmpv4(i)) => {
            let h = etherparse::Icmpv4Header::from_slice(i.slice()).unwrap().0;
            assert_eq!(h.checksum, h.icmp_type.calc_checksum(i.payload()), "{what}: ICMP checksum");
            (1, 0, 0)
        }
        Some(TransportSlice::Icmpv6(i)) => {
            let h = etherparse::Icmpv6Header::from_slice(i.slice()).unwrap().0;
            assert_eq!(h.checksum, h.icmp_type.calc_checksum(src6.unwrap(), dst6.unwrap(), i.payload()).unwrap());
            (58, 0, 0)
        }
        other => panic!("{what}: transport {other:?}"),
    }
}

#[test]
fn plain_traffic_is_valid_for_every_protocol_and_version() {
    let dir = std::env::temp_dir().join(format!("nfv-gen-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for v in [4, 6] {
        for proto in ["udp", "tcp", "icmp"] {
            for size in ["64", "1518", "\"imix\""] {
                let what = format!("ipv{v} {proto} {size}");
                let frames = generate(
                    &format!("ip-version = {v}\nprotocol = \"{proto}\"\nframe-size = {size}"),
                    &dir.join("o.pcap"),
                );
                let mut flows = std::collections::HashSet::new();
                for f in &frames {
                    let eth = etherparse::Ethernet2Header::from_slice(f).unwrap().0;
                    let (p, sp, dp) = check_ip(&f[14..], &what);
                    if matches!(p, 6 | 17) {
                        assert!(sp >= 1024 && (1..=49151).contains(&dp), "{what}: RFC 4814 port ranges {sp} {dp}");
                    }
                    let addrs = if v == 4 { &f[26..34] } else { &f[22..54] };
                    flows.insert((
                        addrs.to_vec(),
                        sp,
                        dp,
                        if p == 1 || p == 58 { f[14 + if v == 4 { 24 } else { 44 }] } else { 0 },
                    ));
                    assert_eq!(eth.destination, [2, 0, 0, 0, 0, 2]);
                }
                assert_eq!(flows.len(), 32, "{what}: distinct flows");
                let sizes: Vec<usize> = frames.iter().map(|f| f.len() + 4).collect();
                match size {
                    "64" if v == 4 => assert!(sizes.iter().all(|&s| s == 64), "{what}: {sizes:?}"),
                    "1518" => assert!(sizes.iter().all(|&s| s == 1518), "{what}"),
                    "\"imix\"" => {
                        let small = sizes.iter().filter(|&&s| s <= 90).count();
                        let big = sizes.iter().filter(|&&s| s == 1518).count();
                        assert_eq!((small, big), (56, 8), "{what}: 7:4:1 over 96 packets");
                    }
                    _ => {}
                }
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn vxlan_and_gtpu_encapsulated_traffic_decodes() {
    let dir = std::env::temp_dir().join(format!("nfv-gen-encap-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for f in generate("encap = \"vxlan\"\nvni = 4242", &dir.join("v.pcap")) {
        let outer = SlicedPacket::from_ethernet(&f).unwrap();
        let Some(NetSlice::Ipv4(ip)) = &outer.net else { panic!("outer IPv4") };
        let h = ip.header().to_header();
        assert_eq!(h.header_checksum, h.calc_header_checksum());
        assert!(h.dont_fragment);
        let Some(TransportSlice::Udp(u)) = &outer.transport else { panic!("outer UDP") };
        assert_eq!(u.destination_port(), 4789);
        assert!(u.source_port() >= 49152, "RFC 7348 source port range");
        let vx = u.payload();
        assert_eq!(vx[0], 0x08, "I flag");
        assert_eq!(u32::from_be_bytes([0, vx[4], vx[5], vx[6]]), 4242);
        check_ip(&vx[8 + 14..], "vxlan inner");
    }
    for f in generate("encap = \"gtpu\"\nprotocol = \"tcp\"", &dir.join("g.pcap")) {
        let outer = SlicedPacket::from_ethernet(&f).unwrap();
        let Some(TransportSlice::Udp(u)) = &outer.transport else { panic!("outer UDP") };
        assert_eq!(u.destination_port(), 2152);
        let g = u.payload();
        assert_eq!((g[0], g[1]), (0x30, 0xff), "GTPv1 G-PDU");
        assert_eq!(u16::from_be_bytes([g[2], g[3]]) as usize, g.len() - 8, "GTP length");
        check_ip(&g[8..], "gtpu inner");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn two_threaded_workers_account_for_every_packet() {
    let src = r#"
[run]
stats-interval = 0.0

[[ports]]
name = "gen"
kind = "generator"
queues = 2
count = 200000
addresses = ["192.0.2.1/24"]

[[ports]]
name = "sink"
kind = "sink"

[[chains]]
name = "c"
stages = [{ kind = "ttl-decrement" }, { kind = "macswap" }]
then = "sink"

[[workers]]
rx = ["gen:0"]
chain = "c"

[[workers]]
rx = ["gen:1"]
chain = "c"
"#;
    let cfg = config::load("two.toml", src, &nfv_pipelines::registry()).unwrap();
    let r = nfv_pipelines::run(&cfg, Arc::new(AtomicBool::new(false)), None, false).unwrap();
    assert_eq!(r.telemetry.total_rx(), 400_000);
    assert_eq!(r.telemetry.total_tx(), 400_000);
    let per_worker: Vec<u64> = r.telemetry.stages.iter().map(|c| c[0].pkts_in.get()).collect();
    assert_eq!(per_worker, vec![200_000, 200_000]);
}

/// A test stage: a packet arriving from port 0 is handed to the next
/// worker of the chain, taken there as arriving on port 1; one arriving
/// on port 1 (so, handed over) goes on, stamped with the rank of the
/// worker that took it.
struct PassOn {
    rank: usize,
    workers: usize,
}

impl nfv_core::Stage for PassOn {
    fn process(&mut self, batch: &mut nfv_core::Batch, _ctx: &mut nfv_core::StageCtx<'_>) {
        for mut p in batch.iter_mut() {
            if p.meta().port == 0 {
                p.meta_mut().port = 1;
                p.hand_off((self.rank + 1) % self.workers);
            } else {
                p.data_mut()[0] = self.rank as u8;
            }
        }
    }
}

struct PassOnFactory;

impl nfv_core::StageFactory for PassOnFactory {
    fn kind(&self) -> &'static str {
        "pass-on"
    }
    fn summary(&self) -> &'static str {
        "test: hands every packet to the next worker"
    }
    fn configure(
        &self,
        _params: &config::Params<'_>,
        _env: &nfv_core::BuildEnv<'_>,
    ) -> Result<Arc<dyn nfv_core::StageBuilder>, Vec<config::Diagnostic>> {
        Ok(Arc::new(PassOnFactory))
    }
}

impl nfv_core::StageBuilder for PassOnFactory {
    fn drop_reasons(&self) -> &'static [&'static str] {
        &[]
    }
    fn hands_off(&self) -> bool {
        true
    }
    fn build(&self, ctx: &nfv_core::BuildCtx<'_>) -> Box<dyn nfv_core::Stage> {
        Box::new(PassOn { rank: ctx.chain_rank, workers: ctx.chain_workers })
    }
}

/// Two workers, each handing every packet it receives to the other:
/// threaded and inline, every packet arrives, once, on the other worker,
/// after the stages before the handing one (run once) and through the
/// stages after it.
#[test]
fn handed_off_packets_reach_the_other_worker_and_finish_its_chain() {
    let dir = std::env::temp_dir().join(format!("nfv-handoff-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for threaded in [true, false] {
        let out = dir.join(format!("out-{threaded}.pcap"));
        let src = format!(
            r#"
[run]
stats-interval = 0.0

[[ports]]
name = "gen"
kind = "generator"
queues = 2
count = {count}
frame-size = 64

[[ports]]
name = "cap"
kind = "pcap"
output = "{out}"

[[chains]]
name = "c"
stages = [{{ kind = "counter" }}, {{ kind = "pass-on" }}, {{ kind = "ttl-decrement" }}]
then = "cap"

[[workers]]
rx = ["gen:0"]
chain = "c"

[[workers]]
rx = ["gen:1"]
chain = "c"
"#,
            count = if threaded { 100_000 } else { 3000 },
            out = out.display()
        );
        let count: u64 = if threaded { 100_000 } else { 3000 };
        let mut registry = nfv_pipelines::registry();
        registry.register(Box::new(PassOnFactory));
        let cfg = config::load("handoff.toml", &src, &registry).unwrap_or_else(|r| panic!("{r}"));
        let rt = Runtime::build(&cfg, SlowPathMode::Inline).unwrap();
        let r = if threaded { rt.run(Arc::new(AtomicBool::new(false)), |_, _| {}) } else { rt.run_inline() };
        let what = if threaded { "threaded" } else { "inline" };
        let get = |w: usize, name: &str| {
            let c = r.telemetry.stages[w].iter().find(|s| s.name == name).unwrap_or_else(|| panic!("{name}"));
            (c.pkts_in.get(), c.pkts_out.get(), c.drops.iter().map(|d| d.get()).collect::<Vec<_>>())
        };
        let full = |w: usize| get(w, "dispatch").2[nfv_core::worker::DispatchDrop::HandoffFull as usize];
        // Threaded, a worker's inbox may overflow (the generator outruns
        // the receiver, which does twice the work): counted, never lost.
        let lost = full(0) + full(1);
        if !threaded {
            assert_eq!(lost, 0, "inline: nothing overflows");
        }
        assert_eq!(r.telemetry.total_tx() + lost, 2 * count, "{what}: every packet sent once, or counted");
        let taken = [get(0, "handoff-rx").0, get(1, "handoff-rx").0];
        for (w, &took) in taken.iter().enumerate() {
            let other = 1 - w;
            assert_eq!(took, count - full(other), "{what}: worker {w} took what the other handed it");
            assert_eq!(get(w, "counter").0, count, "{what}: worker {w}: stages before the handoff ran once");
            assert_eq!(get(w, "pass-on").0, count + took, "{what}: worker {w}: its own and the other's");
            assert_eq!(get(w, "pass-on").1, count, "{what}: worker {w} handed its own on");
            assert_eq!(get(w, "ttl-decrement").0, took, "{what}: worker {w} finished the other's");
            let drops = get(w, "dispatch").2;
            assert_eq!(drops.iter().sum::<u64>(), full(w), "{what}: worker {w}: no other drop {drops:?}");
        }
        // Each worker writes its own capture: worker 0's holds what worker
        // 1 handed it, stamped 0 by worker 0's stage, and the other way.
        for (w, file) in [(0u8, out.clone()), (1, out.with_extension("w1.pcap"))] {
            let mut r = PcapReader::new(std::fs::File::open(&file).unwrap()).unwrap();
            let mut n = 0;
            while let Some(p) = r.next_packet() {
                let p = p.unwrap();
                assert_eq!(p.data[0], w, "{what}: a packet sent by worker {w} was taken by worker {w}");
                let ip = SlicedPacket::from_ethernet(&p.data).unwrap();
                let Some(NetSlice::Ipv4(ip)) = ip.net else { panic!("{what}: not IPv4") };
                assert_eq!(ip.header().ttl(), 63, "{what}: the stage after the handoff ran once");
                n += 1;
            }
            assert_eq!(n, taken[w as usize], "{what}: worker {w}'s capture");
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// `dst`: every flow to one endpoint (a VIP), flows told apart by source.
#[test]
fn a_fixed_destination_is_every_flows_destination() {
    let dir = std::env::temp_dir().join(format!("nfv-gen-dst-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let frames = generate("dst = \"192.0.2.10:53\"", &dir.join("dst.pcap"));
    let mut sources = std::collections::HashSet::new();
    for f in &frames {
        let p = SlicedPacket::from_ethernet(f).unwrap();
        let Some(NetSlice::Ipv4(ip)) = &p.net else { panic!("not IPv4") };
        let h = ip.header().to_header();
        assert_eq!(h.header_checksum, h.calc_header_checksum());
        let Some(TransportSlice::Udp(u)) = &p.transport else { panic!("not UDP") };
        assert_eq!(u.checksum(), u.to_header().calc_checksum_ipv4(&h, u.payload()).unwrap());
        assert_eq!((h.destination, u.destination_port()), ([192, 0, 2, 10], 53));
        sources.insert((h.source, u.source_port()));
    }
    assert_eq!(sources.len(), 32, "32 flows, by source address and port");
    let err = config::load(
        "bad.toml",
        "[[ports]]\nname = \"g\"\nkind = \"generator\"\ndst = \"192.0.2.10\"\n",
        &nfv_pipelines::registry(),
    );
    assert!(err.is_err_and(|r| r.render().contains("a.b.c.d:port")));
    let _ = std::fs::remove_dir_all(&dir);
}
