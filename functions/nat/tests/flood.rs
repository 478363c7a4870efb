//! A flood of new flows against a session table of a million: the table
//! fills to its bound and stays there (its memory is allocated once), the
//! overflow is counted (evicted or refused, by policy), and established
//! flows that keep talking keep their mappings throughout.

use nfv_core::BuildCtx;
use nfv_core::packet::VerdictKind;
use nfv_testkit::FrameRunner;

const MAX: usize = 1_000_000;
/// New flows, in batches of 64.
const FLOOD: u32 = 1_500_032;
const ESTABLISHED: u32 = 100;

/// A UDP frame from 10.x.y.z:port to 198.51.100.2:53, UDP checksum 0
/// (none), so patching the source needs only the IP checksum.
fn frame(src: u32, sport: u16) -> Vec<u8> {
    let mut f = vec![0u8; 14 + 20 + 8 + 18];
    f[12..14].copy_from_slice(&[0x08, 0x00]);
    let ip = &mut f[14..34];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&((20 + 8 + 18) as u16).to_be_bytes());
    ip[8] = 64;
    ip[9] = 17;
    ip[12..16].copy_from_slice(&src.to_be_bytes());
    ip[16..20].copy_from_slice(&[198, 51, 100, 2]);
    let c = nfv_net::checksum::checksum(ip);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    f[34..36].copy_from_slice(&sport.to_be_bytes());
    f[36..38].copy_from_slice(&53u16.to_be_bytes());
    f[38..40].copy_from_slice(&((8 + 18) as u16).to_be_bytes());
    f
}

struct Rig {
    stage: Box<dyn nfv_core::Stage>,
    runner: FrameRunner,
    ticks_per_sec: f64,
}

impl Rig {
    fn new(when_full: &str) -> Self {
        let stage = format!(
            "{{ kind = \"nat44\", inside = [\"in\"], outside = \"out\", pool = [\"198.51.100.64/27\"], \
             outside-gateway = \"198.51.100.1\", max-sessions = {MAX}, when-full = \"{when_full}\" }}"
        );
        let cfg = nfv_testkit::two_port_config("flood.toml", ["in", "out"], &stage, nfv_nat::register)
            .unwrap_or_else(|e| panic!("{e}"));
        let macs = [[2, 0, 0, 0, 1, 0], [2, 0, 0, 0, 1, 1]];
        let ctx = BuildCtx { worker: 0, port_macs: &macs, headers_read_later: false, chain_rank: 0, chain_workers: 1 };
        let stage = cfg.chains[0].stages[0].builder.build(&ctx);
        let gw: std::net::IpAddr = "198.51.100.1".parse().unwrap();
        Self {
            stage,
            runner: FrameRunner::new([(gw, [2, 0, 0, 0, 0, 0xee], 1)]),
            ticks_per_sec: nfv_core::cycles::ticks_per_ns() * 1e9,
        }
    }

    /// Frames through the stage at second `now`; returns their outside
    /// source ports (None: dropped).
    fn send(&mut self, frames: &[Vec<u8>], now: u32) -> Vec<Option<u16>> {
        self.runner.now_ticks = (now as f64 * self.ticks_per_sec) as u64 + 1;
        let mut ports = vec![None; frames.len()];
        for o in self.runner.run_batch(&mut *self.stage, 0, frames.iter().map(|f| &f[..])) {
            if o.verdict == VerdictKind::Out(1) {
                ports[o.fed.expect("the NAT adds no packet")] = Some(u16::from_be_bytes([o.data[34], o.data[35]]));
            }
        }
        ports
    }
}

/// Resident memory of this process.
fn rss_kib() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap();
    s.lines().find_map(|l| l.strip_prefix("VmRSS:")).and_then(|v| v.split_whitespace().next()?.parse().ok()).unwrap()
}

fn counter(report: &str, name: &str) -> u64 {
    report.split(&format!("{name} ")).nth(1).and_then(|t| t.split_whitespace().next()?.parse().ok()).unwrap()
}

fn flood(when_full: &str) -> String {
    let mut rig = Rig::new(when_full);
    // Established flows first; remember their outside ports.
    let est: Vec<Vec<u8>> = (0..ESTABLISHED).map(|i| frame(0x0a01_0000 + i, 40000)).collect();
    let ports: Vec<Option<u16>> = est.chunks(64).flat_map(|c| rig.send(c, 0)).collect();
    assert!(ports.iter().all(|p| p.is_some()));
    let mib = |r: &str| r.split('(').nth(1).and_then(|t| t.split(')').next()).unwrap_or_default().to_string();
    let before = mib(&rig.stage.report().unwrap());
    let rss_before = rss_kib();
    let mut template = frame(0x0a80_0000, 1024);
    let mut now = 0;
    for n in (0..FLOOD).step_by(64) {
        if n % 100_000 < 64 {
            now += 1;
            // The established flows talk every second: same mapping.
            let again: Vec<Option<u16>> = est.chunks(64).flat_map(|c| rig.send(c, now)).collect();
            assert_eq!(again, ports, "established flows keep their mappings at flood packet {n}");
        }
        let frames: Vec<Vec<u8>> = (n..n + 64)
            .map(|k| {
                // New inside endpoint per packet: 10.128.0.0/9, any port.
                let src = 0x0a80_0000 | (k >> 4);
                template[26..30].copy_from_slice(&src.to_be_bytes());
                template[24..26].copy_from_slice(&[0, 0]);
                let c = nfv_net::checksum::checksum(&template[14..34]);
                template[24..26].copy_from_slice(&c.to_be_bytes());
                template[34..36].copy_from_slice(&(1024 + (k & 0xf) as u16 * 64).to_be_bytes());
                template.clone()
            })
            .collect();
        rig.send(&frames, now);
    }
    let report = rig.stage.report().unwrap();
    assert_eq!(counter(&report, "sessions"), MAX as u64, "full, not over: {report}");
    assert_eq!(mib(&report), before, "the table's memory is what it was before the flood");
    let grew = rss_kib().saturating_sub(rss_before);
    assert!(grew < 16 * 1024, "the process grew by {grew} KiB during the flood");
    let again: Vec<Option<u16>> = est.chunks(64).flat_map(|c| rig.send(c, now)).collect();
    assert_eq!(again, ports, "established flows still pass");
    report
}

/// One test for both policies, one after the other: the resident memory
/// check must not see the other's table.
#[test]
fn a_flood_past_a_million_sessions_is_evicted_or_refused_and_counted_and_established_flows_live_on() {
    let report = flood("evict-oldest");
    let overflow = (FLOOD as u64 + ESTABLISHED as u64) - MAX as u64;
    assert_eq!(counter(&report, "evicted"), overflow, "{report}");
    assert!(report.contains("refused-full 0"), "{report}");
    let report = flood("refuse");
    let overflow = (FLOOD as u64 + ESTABLISHED as u64) - MAX as u64;
    assert_eq!(counter(&report, "refused-full"), overflow, "{report}");
    assert!(report.contains("evicted 0"), "{report}");
}
