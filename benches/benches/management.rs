//! What operating a running nfv costs its workers: the chain loop (the
//! generator through `ttl-decrement, macswap` into the sink, 64 packets a
//! poll) on its own, with the management plane serving and a client
//! scraping `/metrics` every 100 ms, and with packet tracing armed for a
//! stage no packet reaches (so every batch takes the tracing copy of the
//! loop, and nothing is recorded).
//!
//! Besides criterion's figures for each, the three loops are run in
//! interleaved rounds (drift and turbo hit all alike) and the median of
//! the per-round ratios to the plain loop is printed: the figure the
//! management plane is held to (within 1 %). The cost of one latency
//! record per batch is `--bench latency`'s.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use nfv_core::config::ManagementSpec;
use nfv_core::worker::Worker;

mod loop_case;

/// A worker of the loop through `ttl-decrement, macswap`, and what its
/// management plane reads.
fn build() -> (Worker, nfv_mgmt::State) {
    let cfg = loop_case::config("{ kind = \"ttl-decrement\" }, { kind = \"macswap\" }");
    let rt = loop_case::runtime(&cfg);
    let state = nfv_mgmt::State::new(
        rt.telemetry.clone(),
        rt.status.clone(),
        rt.slow_counters.clone(),
        rt.trace.clone(),
        nfv_pipelines::reloader(&cfg, rt.neighbours.clone()),
    );
    (rt.into_workers().remove(0), state)
}

/// `GET /metrics` every 100 ms until `stop`; scrapes made.
fn scraper(addr: std::net::SocketAddr, stop: Arc<AtomicBool>, scrapes: Arc<AtomicU64>) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            // A bench-side client: one request per connection, read to
            // the end (the server closes after an HTTP/1.0 answer).
            if let Ok(mut s) = TcpStream::connect(addr) {
                let _ = s.write_all(b"GET /metrics HTTP/1.0\r\n\r\n");
                let mut body = Vec::new();
                if s.read_to_end(&mut body).is_ok() && body.starts_with(b"HTTP/1.") {
                    scrapes.fetch_add(1, Ordering::Relaxed);
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    })
}

/// Ticks of `polls` polls of `w`.
fn timed(w: &mut Worker, polls: usize) -> f64 {
    let t0 = Instant::now();
    for _ in 0..polls {
        assert_eq!(w.poll_once(), 64);
    }
    t0.elapsed().as_secs_f64()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn management(c: &mut Criterion) {
    let (mut plain, _) = build();
    let (mut managed, state) = build();
    let spec = ManagementSpec {
        listen: Some("127.0.0.1:0".parse().unwrap()),
        listen_explicit: true,
        socket: None,
        socket_explicit: false,
    };
    let mgmt = nfv_mgmt::start(&spec, state).unwrap();
    let (stop, scrapes) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicU64::new(0)));
    let client = scraper(mgmt.http_addr.unwrap(), stop.clone(), scrapes.clone());
    let (mut traced, tstate) = build();
    // Armed for a stage no packet of this graph reaches.
    tstate.trace_control().arm(u32::MAX, Some("nowhere".into()));

    let mut g = c.benchmark_group("management");
    g.throughput(Throughput::Elements(64));
    g.bench_function("plain", |b| b.iter(|| assert_eq!(plain.poll_once(), 64)));
    g.bench_function("scraped-every-100ms", |b| b.iter(|| assert_eq!(managed.poll_once(), 64)));
    g.bench_function("trace-armed-matching-nothing", |b| b.iter(|| assert_eq!(traced.poll_once(), 64)));
    g.finish();

    // Interleaved rounds of 20000 polls (about 0.1 s each).
    let (mut scraped, mut tracing) = (Vec::new(), Vec::new());
    for _ in 0..25 {
        let base = timed(&mut plain, 20_000);
        scraped.push(timed(&mut managed, 20_000) / base);
        tracing.push(timed(&mut traced, 20_000) / timed(&mut plain, 20_000));
    }
    stop.store(true, Ordering::Relaxed);
    let _ = client.join();
    let n = scrapes.load(Ordering::Relaxed);
    assert!(n > 0, "the scraper got answers");
    println!(
        "management/ratio: scraped every 100 ms ({n} scrapes) {:.4} of the plain loop; tracing armed, matching nothing {:.4}",
        median(scraped),
        median(tracing)
    );
    drop(mgmt);
}

criterion_group!(benches, management);
criterion_main!(benches);
