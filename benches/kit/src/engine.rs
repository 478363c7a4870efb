//! The generator and receiver every trial runs, in one thread of one
//! process: nfv's XDP generator (`nfv_hw::blast`, `BPF_PROG_TEST_RUN` in
//! live-frames mode) sends stamped frames out of the generator's
//! interface at a paced rate, and the receiver (`nfv_hw::receiver`, XDP
//! on the interface the device under test sends to) hands each stamped
//! frame's flow, sequence number and latency back through a ring buffer.
//! Send and arrival times are both the kernel's monotonic clock.
//!
//! Why XDP and not an AF_XDP socket on each end: on veth AF_XDP works in
//! copy mode only, about 0.8 Mpps for any path (../shared/TESTBED.md),
//! less than the devices under test forward; the live-frames generator
//! offers about twice that, and the XDP receiver costs no copy.
//!
//! Pacing: the generator's program paces itself to the kernel's clock
//! (a frame not yet due is not sent), so a trial is one long system call
//! in this thread while another drains the ring buffer and, once the
//! trial's time is up and its frames are out, ends the call with a signal.
//! A rate the generator cannot keep up with (a veth's receive work runs
//! inline with it) shows as an offered rate below the asked one: the
//! generator's limit, which the search reports as such.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use nfv_hw::blast::Generator;
use nfv_hw::receiver::{Counts, Receiver};

use crate::latency::{Latency, Summary};
use crate::search::{Trial, Trials};
use crate::sequence::Accounts;

/// What one trial measured, beyond its [`Trial`].
#[derive(Clone, Debug)]
pub struct Outcome {
    /// Sent, received, the rates.
    pub trial: Trial,
    /// Packets never received (over the flows' sequence numbers).
    pub lost: u64,
    /// Packets received more than once.
    pub duplicates: u64,
    /// Packets received after a later one of their flow (RFC 4737).
    pub reordered: u64,
    /// Latency of the packets received.
    pub latency: Summary,
    /// The receiver's counters (`unrecorded` > 0: the per-flow figures
    /// miss that many packets).
    pub counts: Counts,
}

/// A generator and a receiver, loaded.
pub struct Engine {
    generator: Generator,
    receiver: Receiver,
    flows: usize,
    /// How long to wait for stragglers after the last frame is sent.
    pub settle: Duration,
}

/// CLOCK_MONOTONIC in nanoseconds: the clock the programs stamp with.
fn monotonic_ns() -> u64 {
    let mut t = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: a valid timespec to write.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut t) };
    t.tv_sec as u64 * 1_000_000_000 + t.tv_nsec as u64
}

/// The signal that ends a paced generator's call.
const STOP: libc::c_int = libc::SIGUSR2;

extern "C" fn nothing(_: libc::c_int) {}

/// Installs a handler for [`STOP`] that does nothing, without
/// `SA_RESTART`: the generator's system call returns EINTR.
fn install_stop() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // SAFETY: a zeroed sigaction with a handler that does nothing
        // (async-signal-safe).
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = nothing as extern "C" fn(libc::c_int) as usize;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(STOP, &sa, std::ptr::null_mut());
        }
    });
}

impl Engine {
    /// Drives `generator` (measuring `flows` flows) and `receiver`.
    pub fn new(generator: Generator, receiver: Receiver, flows: usize) -> Self {
        install_stop();
        Self { generator, receiver, flows: flows.max(1), settle: Duration::from_millis(20) }
    }

    /// Sends with `generator` from now on (other frames, other traffic).
    pub fn set_generator(&mut self, generator: Generator) {
        self.generator = generator;
    }

    /// Receives with `receiver` from now on; the one it replaces.
    pub fn set_receiver(&mut self, receiver: Receiver) -> Receiver {
        std::mem::replace(&mut self.receiver, receiver)
    }

    /// One trial: `rate` frames per second for `seconds`.
    pub fn measure(&mut self, rate: f64, seconds: f64) -> Result<Outcome, String> {
        let total = (rate * seconds).max(1.0) as u64;
        self.generator.pace(rate, total)?;
        self.receiver.restart()?;
        let mut accounts = Accounts::default();
        let mut latency = Latency::new();
        let mut take = |r: &nfv_hw::receiver::Record| {
            accounts.arrive(r.flow as usize, u64::from(r.seq));
            latency.record(0, r.latency_ns);
        };
        let done = AtomicBool::new(false);
        // SAFETY: no preconditions.
        let me = unsafe { libc::pthread_self() };
        let (generator, receiver, settle) = (&self.generator, &mut self.receiver, self.settle);
        let watched = std::thread::scope(|s| {
            let watcher = s.spawn(|| -> Result<(), String> {
                // The trial's time from the generator's first frame (its
                // call takes a few milliseconds to begin): what it could
                // not send by then it did not offer (its rate says so).
                let started = Instant::now();
                loop {
                    std::thread::sleep(Duration::from_millis(2));
                    receiver.drain(&mut take);
                    let first = generator.pacing()?.start_ns;
                    let over = if first == 0 {
                        started.elapsed().as_secs_f64() > seconds + 1.0
                    } else {
                        monotonic_ns().saturating_sub(first) as f64 >= seconds * 1e9
                    };
                    if over {
                        break;
                    }
                }
                // Interrupt until the call has returned (a signal sent
                // before it began would be lost).
                while !done.load(Ordering::Acquire) {
                    // SAFETY: `me` is the scope's owner, alive until the
                    // scope ends.
                    unsafe { libc::pthread_kill(me, STOP) };
                    std::thread::sleep(Duration::from_millis(5));
                }
                // Stragglers: until the count stops moving.
                let mut last = u64::MAX;
                for _ in 0..10 {
                    std::thread::sleep(settle);
                    receiver.drain(&mut take);
                    let now = receiver.counts()?.stamped;
                    if now == last {
                        break;
                    }
                    last = now;
                }
                receiver.drain(&mut take);
                Ok(())
            });
            let sent = generator.send_paced();
            done.store(true, Ordering::Release);
            let watched = watcher.join().map_err(|_| "the trial's watcher panicked".to_string())?;
            sent.and(watched)
        });
        watched?;
        let counts = self.receiver.counts()?;
        let pacing = self.generator.pacing()?;
        let sent = pacing.sent;
        let flows = self.flows as u64;
        let per_flow = |f: usize| sent / flows + u64::from((f as u64) < sent % flows);
        let (lost, duplicates, reordered) = accounts.totals(per_flow, self.flows);
        // Distinct packets received: the stamped count less duplicates.
        let received = counts.stamped.saturating_sub(duplicates).min(sent);
        Ok(Outcome {
            trial: Trial { asked: rate, offered: pacing.offered().min(rate * 1.001), sent, received },
            lost: if counts.unrecorded == 0 { lost } else { sent - received },
            duplicates,
            reordered,
            latency: latency.summary(),
            counts,
        })
    }
}

/// The search's view: trials, each remembered with its outcome.
pub struct Searching<'a> {
    /// The engine.
    pub engine: &'a mut Engine,
    /// Every trial's outcome, in order; an error ends the search (its
    /// trials then report nothing sent).
    pub outcomes: Vec<Outcome>,
    /// The first error met.
    pub error: Option<String>,
}

impl Trials for Searching<'_> {
    fn trial(&mut self, rate: f64, seconds: f64) -> Trial {
        if self.error.is_some() {
            return Trial { asked: rate, offered: 0.0, sent: 0, received: 0 };
        }
        match self.engine.measure(rate, seconds) {
            Ok(o) => {
                let t = o.trial;
                self.outcomes.push(o);
                t
            }
            Err(e) => {
                self.error = Some(e);
                Trial { asked: rate, offered: 0.0, sent: 0, received: 0 }
            }
        }
    }
}
