//! A cheap cycle counter for per-stage cost (VPP's "clocks per packet").
//!
//! `rdtsc` on x86_64, the virtual counter on aarch64, a monotonic clock
//! elsewhere. [`ticks_per_ns`] calibrates it once so tables can show both.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Current counter value. Not serialising: good for averages over batches.
#[inline(always)]
pub fn now() -> u64 {
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: rdtsc has no preconditions on x86_64.
        unsafe { core::arch::x86_64::_rdtsc() }
    }
    #[cfg(target_arch = "aarch64")]
    {
        let v: u64;
        // SAFETY: reading the virtual counter is allowed at EL0 on Linux.
        unsafe { core::arch::asm!("mrs {}, cntvct_el0", out(reg) v) };
        v
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        static START: OnceLock<Instant> = OnceLock::new();
        START.get_or_init(Instant::now).elapsed().as_nanos() as u64
    }
}

/// Counter ticks per nanosecond, measured once over 20 ms.
pub fn ticks_per_ns() -> f64 {
    static RATE: OnceLock<f64> = OnceLock::new();
    *RATE.get_or_init(|| {
        let t0 = Instant::now();
        let c0 = now();
        std::thread::sleep(Duration::from_millis(20));
        let c1 = now();
        let ns = t0.elapsed().as_nanos() as f64;
        ((c1.wrapping_sub(c0)) as f64 / ns).max(1e-6)
    })
}

/// Counter ticks per second.
#[inline]
pub fn ticks_per_sec() -> f64 {
    ticks_per_ns() * 1e9
}

/// The ticks of `secs` seconds: the timeouts, ageing times and limits
/// stages keep in ticks. The one conversion from seconds.
#[inline]
pub fn ticks(secs: f64) -> u64 {
    (secs * ticks_per_sec()) as u64
}

/// Whole seconds at counter value `t`: the clock of tables that stamp
/// their entries in seconds (NAT sessions, LB connections). The one
/// conversion to seconds.
#[inline]
pub fn secs(t: u64) -> u32 {
    (t as f64 / ticks_per_sec()) as u32
}

/// At most `limit` events a second by the cycle counter: the rate limits
/// of ICMP errors (RFC 1812 4.3.2.8), refusals and GTP-U Error
/// Indications. One writer, no lock, no system call: fit for a worker.
#[derive(Clone, Copy, Debug)]
pub struct PerSecond {
    limit: u32,
    left: u32,
    since: u64,
    second: u64,
}

impl PerSecond {
    /// A limiter of `limit` events a second, the first second's whole.
    pub fn new(limit: u32) -> Self {
        Self { limit, left: limit, since: 0, second: (ticks_per_ns() * 1e9) as u64 }
    }

    /// True (and counted) when one more event fits the second that
    /// started last at or before `now` (counter ticks).
    #[inline]
    pub fn allow(&mut self, now: u64) -> bool {
        if now.wrapping_sub(self.since) >= self.second {
            (self.left, self.since) = (self.limit, now);
        }
        if self.left == 0 {
            return false;
        }
        self.left -= 1;
        true
    }
}
