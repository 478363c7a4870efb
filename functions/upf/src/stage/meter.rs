//! QER enforcement (TS 29.244 5.4.5): a worker's token buckets for the
//! gates and maximum bit rates of its sessions' PDRs.

use super::UpfDrop;
use crate::rules::Limit;

/// One worker's token bucket for a rate-limited PDR (its QER's maximum
/// bit rate): bytes available, refilled at the rate, holding at most a
/// tenth of a second's worth (two full frames at least).
#[derive(Clone, Copy, Debug, Default)]
struct Bucket {
    /// Bytes available (fractions kept: a slow rate earns them).
    tokens: f64,
    at: u64,
}

/// One worker's QER enforcement: a token bucket per rate-limited PDR,
/// numbered by the sessions version they were made for.
#[derive(Debug, Default)]
pub(super) struct Meter {
    buckets: Vec<Bucket>,
    /// The bucket numbering (sessions' `bucket_epoch`) they are for.
    of: u64,
    /// The batch's time (cycle-counter ticks).
    pub(super) now: u64,
    ticks_per_sec: f64,
}

impl Meter {
    /// No buckets yet, for no numbering.
    pub(super) fn new() -> Self {
        Self { of: u64::MAX, ticks_per_sec: nfv_core::cycles::ticks_per_sec(), ..Self::default() }
    }

    /// Buckets for `n` limits numbered in `epoch`: kept across versions
    /// (a session's buckets keep their numbers while it lives; a new or
    /// changed one's are new numbers, fresh buckets), all afresh when the
    /// numbering is redone.
    pub(super) fn renew(&mut self, epoch: u64, n: usize) {
        if self.of != epoch {
            self.of = epoch;
            self.buckets.clear();
        }
        if self.buckets.len() < n {
            self.buckets.resize(n, Bucket::default());
        }
    }

    /// Lets a packet of `len` octets through bucket `b` (a QER's gate and
    /// MBR, TS 29.244 5.4.5), or says why not.
    #[inline]
    pub(super) fn admit(&mut self, limits: &[Limit], b: u32, len: usize) -> Result<(), UpfDrop> {
        if b == crate::rules::NO_BUCKET {
            return Ok(());
        }
        let l = limits[b as usize];
        if !l.open {
            return Err(UpfDrop::GateClosed);
        }
        if l.bytes_per_sec == 0 {
            return Ok(());
        }
        let cap = (l.bytes_per_sec / 10).max(3000) as f64;
        let now = self.now;
        let bucket = &mut self.buckets[b as usize];
        if bucket.at == 0 {
            *bucket = Bucket { tokens: cap, at: now };
        }
        let earned = now.saturating_sub(bucket.at) as f64 * l.bytes_per_sec as f64 / self.ticks_per_sec;
        bucket.tokens = (bucket.tokens + earned).min(cap);
        bucket.at = now;
        if bucket.tokens < len as f64 {
            return Err(UpfDrop::MbrExceeded);
        }
        bucket.tokens -= len as f64;
        Ok(())
    }
}
