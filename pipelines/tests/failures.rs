//! Failures handled without wedging, live on AF_XDP (root): a worker
//! whose stage panics is named with its stage, the other workers stop,
//! the run returns (the `nfv` binary then exits 70), its sockets and XDP
//! programs are released as it unwinds, and the next run on the same
//! interfaces starts and forwards.
#![cfg(feature = "af-xdp")]

mod common;

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use common::testbed::{TestBed, privileged};
use nfv_core::config::{self, Diagnostic, Params};
use nfv_core::runtime::{Runtime, SlowPathMode};
use nfv_core::stage::{BuildCtx, BuildEnv, Stage, StageBuilder, StageCtx, StageFactory};

/// `boom`: panics on its first batch that holds a packet.
struct Boom;
struct BoomBuilder;
struct BoomStage;

impl Stage for BoomStage {
    fn process(&mut self, batch: &mut nfv_core::Batch, _: &mut StageCtx<'_>) {
        assert!(batch.is_empty(), "boom: a packet arrived");
    }
}

impl StageBuilder for BoomBuilder {
    fn drop_reasons(&self) -> &'static [&'static str] {
        &[]
    }
    fn build(&self, _: &BuildCtx<'_>) -> Box<dyn Stage> {
        Box::new(BoomStage)
    }
}

impl StageFactory for Boom {
    fn kind(&self) -> &'static str {
        "boom"
    }
    fn summary(&self) -> &'static str {
        "panics when a packet arrives (tests)"
    }
    fn configure(&self, _: &Params<'_>, _: &BuildEnv<'_>) -> Result<Arc<dyn StageBuilder>, Vec<Diagnostic>> {
        Ok(Arc::new(BoomBuilder))
    }
}

fn config(stages: &str) -> config::Config {
    let src = format!(
        "[run]\nstats-interval = 0\noffload = \"off\"\n\n\
         [[ports]]\nname = \"d0\"\nkind = \"af-xdp\"\ninterface = \"d0\"\n\n\
         [[ports]]\nname = \"d1\"\nkind = \"af-xdp\"\ninterface = \"d1\"\n\n\
         [[chains]]\nname = \"xc\"\nstages = [{stages}{{ kind = \"l2-patch\", pairs = [[\"d0\", \"d1\"]] }}]\n\n\
         [[workers]]\ncore = 1\nrx = [\"d0\", \"d1\"]\nchain = \"xc\"\n"
    );
    let mut r = nfv_pipelines::registry();
    r.register(Box::new(Boom));
    config::load("failures.toml", &src, &r).unwrap_or_else(|e| panic!("{}", e.render()))
}

fn xdp_attached(bed: &TestBed) -> bool {
    let out = bed.exec("dut", &["ip", "-d", "link", "show"]);
    out.contains("prog/xdp") || out.contains(" xdp")
}

#[test]
fn a_panicking_stage_ends_the_run_naming_it_and_releases_its_interfaces_for_the_next() {
    if !privileged("a_panicking_stage_ends_the_run_naming_it_and_releases_its_interfaces_for_the_next") {
        return;
    }
    let bed = TestBed::up("line", 1);
    let boom = config("{ kind = \"boom\" }, ");
    let (report, took) = {
        let pinger = bed.prefix.clone();
        let ping = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            let ns = format!("{pinger}-gen");
            let _ = std::process::Command::new("ip")
                .args(["netns", "exec", &ns, "ping", "-c", "3", "-i", "0.2", "-W", "1", "10.0.0.2"])
                .output();
        });
        let r = bed.in_ns("dut", move || {
            let rt = Runtime::build(&boom, SlowPathMode::Thread).expect("starts");
            let t = Instant::now();
            (rt.run(Arc::new(AtomicBool::new(false)), |_, _| {}), t.elapsed())
        });
        ping.join().unwrap();
        r
    };
    assert!(took < Duration::from_secs(10), "the run ended by itself: {took:?}");
    let f = &report.failures;
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!(f[0].stage.as_deref(), Some("boom"), "{}", f[0]);
    assert!(f[0].message.contains("boom: a packet arrived"), "{}", f[0]);
    assert!(!xdp_attached(&bed), "no XDP program left behind:\n{}", bed.exec("dut", &["ip", "-d", "link", "show"]));

    // The next run binds the same queues and forwards.
    let plain = config("");
    let run = bed.spawn_in_ns("dut", move || {
        let mut rt = Runtime::build(&plain, SlowPathMode::Thread).expect("restarts on the same interfaces");
        rt.set_duration(Some(Duration::from_secs(3)));
        rt.run(Arc::new(AtomicBool::new(false)), |_, _| {})
    });
    std::thread::sleep(Duration::from_millis(500));
    assert!(xdp_attached(&bed), "a running nfv's program shows (so its absence above meant something)");
    let ping = bed.exec_output("gen", &["ping", "-c", "3", "-i", "0.2", "-W", "1", "10.0.0.2"]);
    let report = run.join().unwrap();
    assert!(report.failures.is_empty());
    assert!(ping.status.success(), "ping through the restarted run: {}", String::from_utf8_lossy(&ping.stdout));
}

/// SIGTERM under load (a UDP flood through the cross-connect): workers
/// stop, drain what they hold, close their sockets, and the process exits
/// cleanly with its report, within the bound the docs give (1 s; the
/// kubelet allows 30).
#[test]
fn sigterm_under_load_drains_and_exits_within_a_second() {
    if !privileged("sigterm_under_load_drains_and_exits_within_a_second") {
        return;
    }
    let bed = TestBed::up("line", 1);
    let src = "[run]\nstats-interval = 0\noffload = \"off\"\n\n\
               [[ports]]\nname = \"d0\"\nkind = \"af-xdp\"\ninterface = \"d0\"\n\n\
               [[ports]]\nname = \"d1\"\nkind = \"af-xdp\"\ninterface = \"d1\"\n\n\
               [[chains]]\nname = \"xc\"\nstages = [{ kind = \"l2-patch\", pairs = [[\"d0\", \"d1\"]] }]\n\n\
               [[workers]]\ncore = 1\nrx = [\"d0\", \"d1\"]\nchain = \"xc\"\n";
    let dut = bed.start_nfv(src, 2);
    let dst: std::net::SocketAddr = ([10, 0, 0, 2], 9).into();
    let flood = bed.spawn_in_ns("gen", move || common::testbed::send_udp(dst, 400_000, 8, 18));
    std::thread::sleep(Duration::from_millis(300));
    let t = Instant::now();
    let (status, report) = dut.terminate();
    let took = t.elapsed();
    eprintln!("SIGTERM to exit under load: {took:?}");
    flood.join().unwrap();
    assert!(status.success(), "a clean exit: {status:?}\n{report}");
    assert!(took < Duration::from_secs(1), "SIGTERM to exit: {took:?}");
    assert!(report.contains("rx") && report.contains("d0"), "the report printed: {report}");
    assert!(!xdp_attached(&bed), "sockets and programs released");
}
