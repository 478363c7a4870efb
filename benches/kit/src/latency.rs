//! Latency through the DUT from the timestamps in the payloads (written
//! by the generator, read by the receiver: one process, one clock), in an
//! `hdrhistogram` of nanoseconds: min, p50, p90, p99, p99.9, max, and the
//! delay variation of RFC 5481 section 4.2 (PDV: a quantile less the
//! minimum).

use hdrhistogram::Histogram;

/// One load level's latencies.
pub struct Latency {
    h: Histogram<u64>,
}

/// What a report shows of a [`Latency`], in nanoseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize)]
pub struct Summary {
    /// Samples.
    pub count: u64,
    /// Minimum.
    pub min: u64,
    /// Median.
    pub p50: u64,
    /// 90th percentile.
    pub p90: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p999: u64,
    /// Maximum.
    pub max: u64,
    /// PDV at the 99th percentile (p99 - min, RFC 5481 4.2).
    pub pdv99: u64,
}

impl Default for Latency {
    fn default() -> Self {
        Self::new()
    }
}

impl Latency {
    /// Up to 10 s, three significant digits.
    pub fn new() -> Self {
        Self { h: Histogram::new_with_bounds(1, 10_000_000_000, 3).expect("valid bounds") }
    }

    /// A packet sent at `sent` and received at `received` (ns, one
    /// clock); a receive time before the send (impossible on one clock) is
    /// not recorded.
    pub fn record(&mut self, sent: u64, received: u64) {
        if let Some(d) = received.checked_sub(sent) {
            let _ = self.h.record(d.max(1));
        }
    }

    /// Adds another's samples (each receiver thread keeps its own).
    pub fn add(&mut self, other: &Latency) {
        let _ = self.h.add(&other.h);
    }

    /// The figures.
    pub fn summary(&self) -> Summary {
        if self.h.is_empty() {
            return Summary::default();
        }
        let q = |p: f64| self.h.value_at_quantile(p);
        let min = self.h.min();
        Summary {
            count: self.h.len(),
            min,
            p50: q(0.5),
            p90: q(0.9),
            p99: q(0.99),
            p999: q(0.999),
            max: self.h.max(),
            pdv99: q(0.99) - min,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_and_delay_variation_of_a_known_distribution() {
        let mut a = Latency::new();
        let mut b = Latency::new();
        // 1..=1000 us, one each, split between two receivers.
        for us in 1..=1000u64 {
            let l = if us % 2 == 0 { &mut a } else { &mut b };
            l.record(1_000_000, 1_000_000 + us * 1000);
        }
        a.record(5, 4);
        a.add(&b);
        let s = a.summary();
        let near = |v: u64, want: u64| v.abs_diff(want) * 1000 <= want;
        assert_eq!(s.count, 1000, "the impossible sample left out");
        assert!(near(s.min, 1_000) && near(s.max, 1_000_000), "{s:?}");
        assert!(near(s.p50, 500_000) && near(s.p90, 900_000) && near(s.p99, 990_000) && near(s.p999, 999_000), "{s:?}");
        assert_eq!(s.pdv99, s.p99 - s.min);
        assert_eq!(Latency::new().summary(), Summary::default());
    }
}
