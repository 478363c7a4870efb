//! The throughput search: the highest offered rate whose loss ratio stays
//! within a goal (0 for the no-drop rate, RFC 2544 section 26.1; 0.5 % for
//! the partial-drop rate CSIT reports), found by binary search between a
//! floor and the line rate until the interval is narrower than the
//! resolution asked, then confirmed by a final verification trial (a
//! failed one moves the upper bound down and the search goes on). Several
//! goals share trials, as MLRsearch's do: each trial's result narrows
//! every goal's interval at once. Before halving, a goal with no passing
//! rate yet tries the rate the DUT forwarded when it failed (MLRsearch's
//! initial phase: a DUT that loses at the line rate usually forwards
//! close to its capacity), which saves most of the halvings from the
//! floor; with no passing rate, it steps down from the lowest failing
//! one (a failed verification's included) by a few resolutions, doubling
//! each time, rather than halving toward the floor; and from a passing
//! rate far below the lowest failing one, it steps up the same way rather
//! than halving from the top.
//!
//! A trial reports what the generator really offered: a rate it could
//! not offer is the generator's limit, not the DUT's, and a result at it
//! says so ([`GoalResult::generator_limited`]).

/// What one trial measured.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Trial {
    /// The rate asked, packets per second.
    pub asked: f64,
    /// The rate the generator offered (sent / duration).
    pub offered: f64,
    /// Packets sent.
    pub sent: u64,
    /// Packets received back.
    pub received: u64,
}

impl Trial {
    /// Lost packets over sent.
    pub fn loss_ratio(&self) -> f64 {
        if self.sent == 0 { 0.0 } else { self.sent.saturating_sub(self.received) as f64 / self.sent as f64 }
    }

    /// Whether the generator offered what was asked (within 1 %).
    pub fn offered_as_asked(&self) -> bool {
        self.offered >= 0.99 * self.asked
    }
}

/// Runs trials: a DUT behind a generator, or a simulation.
pub trait Trials {
    /// One trial at `rate` packets per second for `seconds`.
    fn trial(&mut self, rate: f64, seconds: f64) -> Trial;
}

/// What to search.
#[derive(Clone, Debug)]
pub struct Search {
    /// Loss-ratio goals (0.0: no drop; 0.005: partial drop).
    pub goals: Vec<f64>,
    /// The highest rate to try (the line rate), packets per second.
    pub max_rate: f64,
    /// The lowest rate to try.
    pub min_rate: f64,
    /// Stop when the interval is this narrow, relative to its upper bound
    /// (0.005: 0.5 %).
    pub resolution: f64,
    /// Seconds per search trial.
    pub trial_seconds: f64,
    /// Seconds of the final verification trial.
    pub verify_seconds: f64,
    /// Trials at most (a DUT whose loss is not monotonic could otherwise
    /// keep the search going).
    pub max_trials: usize,
}

/// One goal's result.
#[derive(Clone, Debug, PartialEq)]
pub struct GoalResult {
    /// The loss-ratio goal.
    pub goal: f64,
    /// The highest rate found within the goal (0: not even the floor).
    pub rate: f64,
    /// The lowest rate found over it, if any (the interval's top).
    pub over: Option<f64>,
    /// The final verification trial passed at `rate`.
    pub verified: bool,
    /// The rate is where the generator stopped, not where the DUT began
    /// to lose: the DUT forwarded all the generator could offer.
    pub generator_limited: bool,
}

/// Runs the search with `t`; every trial in order, and each goal's result.
pub fn run(s: &Search, t: &mut dyn Trials) -> (Vec<GoalResult>, Vec<Trial>) {
    let mut trials: Vec<Trial> = Vec::new();
    // Per goal: highest passing rate, lowest failing rate.
    let mut lo: Vec<Option<f64>> = vec![None; s.goals.len()];
    let mut hi: Vec<Option<f64>> = vec![None; s.goals.len()];
    let mut verified = vec![false; s.goals.len()];
    // Per goal: the rate forwarded by its lowest failing trial, not yet
    // tried.
    let mut hint: Vec<Option<f64>> = vec![None; s.goals.len()];
    // Per goal: the next step up from a passing rate, relative.
    let mut step: Vec<f64> = vec![4.0 * s.resolution; s.goals.len()];
    // Per goal: the next step down from the lowest failing rate.
    let mut down: Vec<f64> = vec![4.0 * s.resolution; s.goals.len()];
    // Per goal: every rate that passed (a failure below a pass takes the
    // pass's place as the interval's bottom from the passes under it).
    let mut passes: Vec<Vec<f64>> = vec![Vec::new(); s.goals.len()];
    let best_below = |p: &[f64], h: f64| p.iter().copied().filter(|&r| r < h).max_by(f64::total_cmp);
    let mut ceiling = s.max_rate;
    let record = |tr: &Trial,
                  lo: &mut Vec<Option<f64>>,
                  hi: &mut Vec<Option<f64>>,
                  hint: &mut Vec<Option<f64>>,
                  passes: &mut Vec<Vec<f64>>,
                  ceiling: f64| {
        // A trial counts at the rate really offered (never above the ceiling).
        let rate = tr.offered.min(tr.asked).min(ceiling);
        for (g, goal) in s.goals.iter().enumerate() {
            if tr.loss_ratio() <= *goal {
                passes[g].push(rate);
                if lo[g].is_none_or(|l| rate > l) && hi[g].is_none_or(|h| rate < h) {
                    lo[g] = Some(rate);
                }
            } else if hi[g].is_none_or(|h| rate < h) {
                hi[g] = Some(rate);
                let forwarded = rate * (1.0 - tr.loss_ratio()) * (1.0 + goal);
                hint[g] = (forwarded > s.min_rate && forwarded < rate * (1.0 - s.resolution)).then_some(forwarded);
                // A pass above a failure is noise: the failure wins.
                if lo[g].is_some_and(|l| l >= rate) {
                    lo[g] = best_below(&passes[g], rate);
                }
            }
        }
    };
    // First the line rate: what the generator can offer at all.
    let first = t.trial(s.max_rate, s.trial_seconds);
    if !first.offered_as_asked() {
        ceiling = first.offered;
    }
    record(&first, &mut lo, &mut hi, &mut hint, &mut passes, ceiling);
    trials.push(first);
    loop {
        if trials.len() >= s.max_trials {
            break;
        }
        // The goal whose interval is widest (relative) goes next.
        let width = |g: usize| {
            let top = hi[g].unwrap_or(ceiling);
            let bottom = lo[g].unwrap_or(s.min_rate);
            if hi[g].is_none() && lo[g].is_some() { 0.0 } else { (top - bottom) / top }
        };
        let next = (0..s.goals.len()).filter(|&g| !verified[g]).max_by(|&a, &b| width(a).total_cmp(&width(b)));
        let Some(g) = next else { break };
        if width(g) > s.resolution {
            let top = hi[g].unwrap_or(ceiling);
            let bottom = lo[g].unwrap_or(s.min_rate);
            let rate = match hint[g].take() {
                Some(h) if lo[g].is_none() => h,
                _ if lo[g].is_none() && bottom >= top => s.min_rate,
                _ if lo[g].is_none() && top * (1.0 - down[g]) > (top + bottom) / 2.0 => {
                    let r = top * (1.0 - down[g]);
                    down[g] *= 2.0;
                    r
                }
                _ if lo[g].is_some() && bottom * (1.0 + step[g]) < (top + bottom) / 2.0 => {
                    let r = bottom * (1.0 + step[g]);
                    step[g] *= 2.0;
                    r
                }
                _ => (top + bottom) / 2.0,
            };
            let tr = t.trial(rate, s.trial_seconds);
            record(&tr, &mut lo, &mut hi, &mut hint, &mut passes, ceiling);
            trials.push(tr);
            continue;
        }
        // Narrow enough: verify the goal's rate with a longer trial.
        let Some(rate) = lo[g] else {
            verified[g] = true;
            continue;
        };
        let tr = t.trial(rate, s.verify_seconds);
        let pass = tr.loss_ratio() <= s.goals[g];
        record(&tr, &mut lo, &mut hi, &mut hint, &mut passes, ceiling);
        trials.push(tr);
        if pass {
            verified[g] = true;
        } else {
            // RFC 2544 26.1: the rate fails; search below it, from a
            // pass at least two resolutions under it (a noisy DUT
            // passes and fails at the same rate: crawling down through
            // passes a hair apart would spend the trials on verifications).
            hi[g] = Some(rate);
            lo[g] = best_below(&passes[g], rate * (1.0 - 2.0 * s.resolution));
        }
    }
    // Out of trials: the best pass under the lowest failure stands,
    // unverified.
    let results = s
        .goals
        .iter()
        .enumerate()
        .map(|(g, &goal)| {
            let rate = lo[g].or_else(|| best_below(&passes[g], hi[g].unwrap_or(f64::INFINITY))).unwrap_or(0.0);
            GoalResult {
                goal,
                rate,
                over: hi[g],
                verified: verified[g] && lo[g].is_some_and(|l| l == rate),
                generator_limited: hi[g].is_none() && rate >= 0.99 * ceiling && ceiling < s.max_rate,
            }
        })
        .collect();
    (results, trials)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A DUT that forwards `capacity` packets per second and loses the
    /// rest, behind a generator that offers `generator` at most.
    struct Sim {
        capacity: f64,
        generator: f64,
    }

    impl Trials for Sim {
        fn trial(&mut self, rate: f64, seconds: f64) -> Trial {
            let offered = rate.min(self.generator);
            let sent = (offered * seconds) as u64;
            let forwarded = (offered.min(self.capacity) * seconds) as u64;
            Trial { asked: rate, offered, sent, received: forwarded }
        }
    }

    fn search() -> Search {
        Search {
            goals: vec![0.0, 0.005],
            max_rate: 14_880_952.0,
            min_rate: 10_000.0,
            resolution: 0.005,
            trial_seconds: 1.0,
            verify_seconds: 10.0,
            max_trials: 60,
        }
    }

    #[test]
    fn the_knee_is_found_within_the_resolution_for_both_goals() {
        for capacity in [812_345.0, 3_000_000.0, 50_000.0] {
            let mut sim = Sim { capacity, generator: f64::MAX };
            let (r, trials) = run(&search(), &mut sim);
            let ndr = &r[0];
            assert!(
                ndr.verified && ndr.rate <= capacity && ndr.rate >= capacity * (1.0 - 0.005),
                "{capacity}: {ndr:?}"
            );
            // Partial drop: up to 0.5 % lost, capacity / (1 - 0.005) at most.
            let pdr = &r[1];
            let knee = capacity / (1.0 - 0.005);
            assert!(pdr.verified && pdr.rate <= knee && pdr.rate >= knee * (1.0 - 0.005), "{capacity}: {pdr:?}");
            assert!(!ndr.generator_limited && !pdr.generator_limited);
            assert!(trials.len() < 20, "{} trials", trials.len());
            assert_eq!(
                trials.iter().filter(|t| t.sent > 0 && t.sent == (t.offered * 10.0) as u64).count(),
                2,
                "two verifications"
            );
        }
    }

    #[test]
    fn a_dut_faster_than_the_generator_is_reported_as_the_generator_limit() {
        let mut sim = Sim { capacity: 5e6, generator: 1.2e6 };
        let (r, _) = run(&search(), &mut sim);
        for g in &r {
            assert!(g.generator_limited && (g.rate - 1.2e6).abs() < 1.0, "{g:?}");
        }
    }

    #[test]
    fn a_failed_verification_moves_the_search_down() {
        // Loses one packet now and then at any rate: the 10 s verification
        // of the no-drop rate is likelier to meet it than a 1 s trial.
        struct Flaky(u32);
        impl Trials for Flaky {
            fn trial(&mut self, rate: f64, seconds: f64) -> Trial {
                let sent = (rate * seconds) as u64;
                let capacity = 1e6;
                let mut received = (rate.min(capacity) * seconds) as u64;
                // The first verification loses one packet.
                if seconds > 5.0 && self.0 == 0 {
                    self.0 += 1;
                    received -= 1;
                }
                Trial { asked: rate, offered: rate, sent, received }
            }
        }
        let s = Search { goals: vec![0.0], ..search() };
        let (r, trials) = run(&s, &mut Flaky(0));
        let verifications: Vec<&Trial> = trials.iter().filter(|t| t.sent as f64 >= t.offered * 9.0).collect();
        assert_eq!(verifications.len(), 2, "failed once, then verified lower");
        assert!(verifications[1].asked < verifications[0].asked);
        assert!(r[0].verified && r[0].rate < verifications[0].asked);
    }

    #[test]
    fn a_noisy_knee_still_gives_a_rate_under_it_never_nothing() {
        // Below 80 % of its capacity the DUT loses nothing; between 80
        // and 100 % it loses a packet in 40 % of the trials (a shared
        // VM); above, what it cannot forward. The search must keep a rate
        // near the knee (the passes under a failure), not fall to the
        // floor or report nothing.
        struct Noisy {
            capacity: f64,
            rng: fastrand::Rng,
        }
        impl Trials for Noisy {
            fn trial(&mut self, rate: f64, seconds: f64) -> Trial {
                let sent = (rate * seconds) as u64;
                let mut received = (rate.min(self.capacity) * seconds) as u64;
                if rate > 0.8 * self.capacity && received == sent && self.rng.f64() < 0.4 {
                    received -= 1;
                }
                Trial { asked: rate, offered: rate, sent, received }
            }
        }
        for seed in 0..40 {
            let capacity = 800_000.0;
            let s = Search { max_trials: 24, ..search() };
            let (r, trials) = run(&s, &mut Noisy { capacity, rng: fastrand::Rng::with_seed(seed) });
            assert!(trials.len() <= 24);
            let ndr = &r[0];
            assert!(ndr.rate > 0.6 * capacity && ndr.rate <= capacity, "seed {seed}: {ndr:?}");
            // Out of trials early: still the best pass under the failures.
            let s = Search { max_trials: 8, ..search() };
            let (r, _) = run(&s, &mut Noisy { capacity, rng: fastrand::Rng::with_seed(seed) });
            assert!(r[0].rate > 0.5 * capacity && r[0].rate <= capacity, "seed {seed}, 8 trials: {:?}", r[0]);
        }
    }

    #[test]
    fn a_rate_no_verification_confirms_is_reported_unverified_not_as_nothing() {
        // Short trials pass up to the capacity; every longer one loses a
        // packet (a DUT that hiccups every second).
        struct Hiccups;
        impl Trials for Hiccups {
            fn trial(&mut self, rate: f64, seconds: f64) -> Trial {
                let sent = (rate * seconds) as u64;
                let mut received = (rate.min(700_000.0) * seconds) as u64;
                if seconds > 5.0 && received == sent {
                    received -= 1;
                }
                Trial { asked: rate, offered: rate, sent, received }
            }
        }
        for max_trials in 7..=20 {
            let s = Search { goals: vec![0.0], max_trials, ..search() };
            let (r, _) = run(&s, &mut Hiccups);
            assert!(!r[0].verified && r[0].rate > 300_000.0 && r[0].rate <= 700_000.0, "{max_trials}: {:?}", r[0]);
        }
    }

    #[test]
    fn loss_ratio_and_offered() {
        let t = Trial { asked: 100.0, offered: 98.0, sent: 1000, received: 995 };
        assert_eq!(t.loss_ratio(), 0.005);
        assert!(!t.offered_as_asked());
    }
}
