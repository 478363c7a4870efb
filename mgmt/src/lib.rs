//! The management plane of a running `nfv`, on threads of its own (never
//! a worker's): Prometheus metrics and health probes over HTTP
//! (`tiny_http`; `/metrics`, `/livez`, `/readyz`, `/startupz`), and the
//! `nfv ctl` socket. It only reads what the workers write (their
//! single-writer counters and heartbeats) and the run's status, so a
//! scrape costs a worker nothing.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

use nfv_core::config::ManagementSpec;
use nfv_core::reload::Reloader;
use nfv_core::slowpath::SlowPathCounters;
use nfv_core::status::RunStatus;
use nfv_core::telemetry::Telemetry;

pub mod ctl;
mod http;
mod latency;
mod metrics;
pub mod probes;
mod show;
mod tables;
mod trace;

/// What the management plane reads.
#[derive(Clone)]
pub struct State {
    /// Every worker's counters and heartbeat.
    pub telemetry: Telemetry,
    /// The run's phase and the next hops it needs.
    pub status: Arc<RunStatus>,
    /// The slow path's counters.
    pub slow: Arc<SlowPathCounters>,
    /// Seconds a worker may go without polling before `/livez` calls it
    /// wedged.
    pub live_bound: f64,
    /// Latency histograms collected from the workers.
    latency: Arc<latency::Latencies>,
    /// Packet tracing: the workers' control and the records taken.
    trace: Arc<nfv_core::trace::TraceControl>,
    traces: Arc<trace::Traces>,
    /// The configuration running, and how it changes.
    reloader: Arc<Reloader>,
}

impl State {
    /// What the management plane of a run reads.
    pub fn new(
        telemetry: Telemetry,
        status: Arc<RunStatus>,
        slow: Arc<SlowPathCounters>,
        trace: Arc<nfv_core::trace::TraceControl>,
        reloader: Arc<Reloader>,
    ) -> Self {
        Self {
            telemetry,
            status,
            slow,
            live_bound: LIVE_BOUND,
            latency: Arc::default(),
            trace,
            traces: Arc::default(),
            reloader,
        }
    }
}

impl State {
    /// Packet tracing's control (benchmarks arm it directly).
    pub fn trace_control(&self) -> &Arc<nfv_core::trace::TraceControl> {
        &self.trace
    }
}

impl std::fmt::Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("State").field("workers", &self.telemetry.workers.len()).finish_non_exhaustive()
    }
}

/// The liveness bound unless configured: a worker polls every few
/// microseconds when busy and sleeps at most a millisecond when idle.
pub const LIVE_BOUND: f64 = 1.0;

/// The running management plane; dropping it stops its threads and
/// removes its socket.
pub struct Management {
    stop: Arc<AtomicBool>,
    http: Option<(Arc<tiny_http::Server>, JoinHandle<()>)>,
    ctl: Option<(PathBuf, JoinHandle<()>)>,
    sampler: Option<JoinHandle<()>>,
    /// The HTTP address it serves on.
    pub http_addr: Option<SocketAddr>,
    /// What it could not take and went on without (a default address or
    /// socket another instance holds), one line each.
    pub notes: Vec<String>,
}

/// Starts what `spec` asks for. An address or socket the file named that
/// cannot be taken is an error; a default one is a note (another nfv may
/// hold it: `[management]` names another).
pub fn start(spec: &ManagementSpec, state: State) -> Result<Management, String> {
    let stop = Arc::new(AtomicBool::new(false));
    let samples = Arc::new(show::Samples::default());
    let mut m =
        Management { stop: stop.clone(), http: None, ctl: None, sampler: None, http_addr: None, notes: Vec::new() };
    if let Some(addr) = spec.listen {
        match tiny_http::Server::http(addr) {
            Ok(server) => {
                let server = Arc::new(server);
                m.http_addr = server.server_addr().to_ip();
                let (srv, st) = (server.clone(), state.clone());
                let h = spawn("nfv-mgmt-http", move || http::serve(&srv, &st));
                m.http = Some((server, h));
            }
            Err(e) if !spec.listen_explicit => m.notes.push(format!(
                "management: cannot listen on {addr} ({e}); no metrics or probes (set [management] listen)"
            )),
            Err(e) => return Err(format!("[management] listen = \"{addr}\": {e}")),
        }
    }
    if let Some(path) = &spec.socket {
        match ctl::bind(path) {
            Ok(l) => {
                let (st, sm, sp) = (state.clone(), samples.clone(), stop.clone());
                let h = spawn("nfv-mgmt-ctl", move || ctl::serve(l, st, sm, sp));
                m.ctl = Some((path.clone(), h));
            }
            Err(e) if !spec.socket_explicit => {
                m.notes.push(format!("management: {e}; no `nfv ctl` (set [management] socket)"))
            }
            Err(e) => return Err(format!("[management] socket: {e}")),
        }
    }
    if m.ctl.is_some() || m.http.is_some() {
        let sp = stop.clone();
        m.sampler = Some(spawn("nfv-mgmt-sample", move || {
            // Latency every hand-over period, rates every sample period.
            let per = (show::SAMPLE_EVERY.as_millis() / nfv_core::latency::HAND_EVERY.as_millis()).max(1);
            let mut n = 0u128;
            while !sp.load(Ordering::Relaxed) {
                state.latency.collect(&state.telemetry);
                state.traces.collect(&state.trace);
                if n.is_multiple_of(per) {
                    samples.sample(&state);
                }
                n += 1;
                std::thread::park_timeout(nfv_core::latency::HAND_EVERY);
            }
        }));
    }
    Ok(m)
}

fn spawn(name: &str, f: impl FnOnce() + Send + 'static) -> JoinHandle<()> {
    std::thread::Builder::new().name(name.into()).spawn(f).expect("spawn a management thread")
}

impl Drop for Management {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some((server, h)) = self.http.take() {
            server.unblock();
            let _ = h.join();
        }
        if let Some((path, h)) = self.ctl.take() {
            // Wakes the accepting thread, which then sees `stop`.
            let _ = std::os::unix::net::UnixStream::connect(&path);
            let _ = h.join();
            let _ = std::fs::remove_file(&path);
        }
        if let Some(h) = self.sampler.take() {
            h.thread().unpark();
            let _ = h.join();
        }
    }
}
