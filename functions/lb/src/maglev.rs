//! Maglev consistent hashing (Eisenbud et al., "Maglev: A Fast and
//! Reliable Software Network Load Balancer", NSDI 2016, section 3.4).
//!
//! Each backend has a preference list over the `M` slots of the lookup
//! table (M prime): `permutation[j] = (offset + j * skip) mod M`, with
//! `offset = h1(name) mod M` and `skip = h2(name) mod (M - 1) + 1`, so
//! every list is a permutation of the slots. The table is filled in
//! rounds: in turn, each backend takes the first slot of its list not yet
//! taken (the paper's Pseudocode 1). A flow goes to `table[hash mod M]`.
//!
//! With equal weights every backend takes one slot per round, so slot
//! counts differ by at most one (balance), and a backend's slots depend
//! little on the others (minimal disruption: removing one of N backends
//! remaps its 1/N of the slots and a small fraction of the rest; the
//! connection table keeps established flows where they are regardless).
//! Weights change how often a backend takes a turn (section 3.4: "changing
//! the relative frequency of the backends' turns"): in round r a backend
//! of weight w takes a turn while it holds fewer than r * w / w_max slots,
//! so its share is w / sum(w) to within a slot. Weight 0 (drained) takes
//! no slot: no new flow goes there.
//!
//! Names hash with FNV-1a and a fixed finalizer, not with a process-random
//! hasher: every load balancer (and every restart) builds the same table
//! from the same backends, which is what lets a flow survive a change of
//! load balancer.

/// A lookup table slot with no backend (every weight is 0).
pub const NO_BACKEND: u16 = u16::MAX;

/// The default table size (the paper's: a prime well above 100 times the
/// backend count keeps the shares within 1 %).
pub const DEFAULT_SIZE: u32 = 65537;

/// One backend as the table sees it: its preference list and weight.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Member {
    /// First slot of its preference list.
    pub offset: u32,
    /// Step through the slots (1..M).
    pub skip: u32,
    /// Relative weight; 0 takes no slot.
    pub weight: u32,
}

/// FNV-1a over `bytes` from `basis`, then a splitmix64 finalizer (FNV
/// alone leaves the low bits of short keys poorly mixed).
fn hash(bytes: &[u8], basis: u64) -> u64 {
    let mut h = basis;
    for &b in bytes {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

impl Member {
    /// The member named `name` (a backend's address and port, say) in a
    /// table of `m` slots.
    pub fn named(name: &[u8], m: u32, weight: u32) -> Self {
        let offset = (hash(name, 0xcbf2_9ce4_8422_2325) % m as u64) as u32;
        let skip = (hash(name, 0x6c62_272e_07bb_0142) % (m as u64 - 1)) as u32 + 1;
        Self { offset, skip, weight }
    }
}

/// True for a prime `m` (table sizes are checked once, at configuration).
pub fn is_prime(m: u32) -> bool {
    m >= 2 && (2..).take_while(|d| d * d <= m).all(|d| !m.is_multiple_of(d))
}

/// The lookup table of `m` slots (prime, larger than the member count)
/// for `members`: each slot holds a member's index, or [`NO_BACKEND`]
/// when no member has a weight.
pub fn populate(members: &[Member], m: u32) -> Vec<u16> {
    debug_assert!(is_prime(m) && members.len() < m as usize && members.len() < NO_BACKEND as usize);
    let mut table = vec![NO_BACKEND; m as usize];
    let w_max = members.iter().map(|b| b.weight as u64).max().unwrap_or(0);
    if w_max == 0 {
        return table;
    }
    // Position in each member's preference list, and slots taken.
    let mut next = vec![0u64; members.len()];
    let mut held = vec![0u64; members.len()];
    let mut filled = 0;
    for round in 1u64.. {
        for (i, b) in members.iter().enumerate() {
            // Weighted turns: fewer than round * w / w_max slots so far.
            if held[i] * w_max >= round * b.weight as u64 {
                continue;
            }
            let slot = loop {
                let c = ((b.offset as u64 + next[i] * b.skip as u64) % m as u64) as usize;
                next[i] += 1;
                if table[c] == NO_BACKEND {
                    break c;
                }
            };
            table[slot] = i as u16;
            held[i] += 1;
            filled += 1;
            if filled == m as usize {
                return table;
            }
        }
    }
    unreachable!("every round fills at least one slot")
}

/// The slot of a flow hash in a table of `m` slots: multiply-shift
/// (Lemire's fast range), uniform without a division.
#[inline(always)]
pub fn slot(hash: u32, m: u32) -> usize {
    ((hash as u64 * m as u64) >> 32) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(table: &[u16], n: usize) -> Vec<usize> {
        let mut c = vec![0; n];
        for &e in table {
            c[e as usize] += 1;
        }
        c
    }

    /// The paper's Table 1: M = 7, B0 (offset 3, skip 4), B1 (0, 2), B2
    /// (3, 1); then B1 removed. (The issue counts the backends from 1:
    /// its "B2" is the paper's B1.)
    #[test]
    fn reproduces_the_papers_table_1() {
        let b0 = Member { offset: 3, skip: 4, weight: 1 };
        let b1 = Member { offset: 0, skip: 2, weight: 1 };
        let b2 = Member { offset: 3, skip: 1, weight: 1 };
        assert_eq!(populate(&[b0, b1, b2], 7), vec![1, 0, 1, 0, 2, 2, 0], "before: B1 B0 B1 B0 B2 B2 B0");
        // Without B1 (indices: 0 = B0, 1 = B2).
        assert_eq!(populate(&[b0, b2], 7), vec![0, 0, 0, 0, 1, 1, 1], "after: B0 B0 B0 B0 B2 B2 B2");
    }

    #[test]
    fn four_hundred_equal_backends_differ_by_at_most_one_slot() {
        let members: Vec<Member> =
            (0..400).map(|i| Member::named(format!("10.1.{}.{}:80", i / 256, i % 256).as_bytes(), 65537, 1)).collect();
        let c = counts(&populate(&members, 65537), 400);
        let (lo, hi) = (c.iter().min().unwrap(), c.iter().max().unwrap());
        assert!(hi - lo <= 1, "{lo}..{hi}");
        assert_eq!(c.iter().sum::<usize>(), 65537);
    }

    #[test]
    fn weighted_shares_are_proportional_within_one_percent_and_weight_0_takes_nothing() {
        let weights = [1u32, 2, 3, 4, 10, 0, 7];
        let members: Vec<Member> = weights
            .iter()
            .enumerate()
            .map(|(i, &w)| Member::named(format!("backend-{i}").as_bytes(), 65537, w))
            .collect();
        let c = counts(&populate(&members, 65537), weights.len());
        let total: u32 = weights.iter().sum();
        for (i, &w) in weights.iter().enumerate() {
            let share = c[i] as f64 / 65537.0;
            let want = w as f64 / total as f64;
            assert!((share - want).abs() <= 0.01 * want.max(1e-9), "backend {i}: {share} vs {want}");
        }
        assert_eq!(c[5], 0, "drained");
        assert!(populate(&[Member { weight: 0, ..members[0] }], 7).iter().all(|&e| e == NO_BACKEND));
    }

    /// Removing one of N backends: its slots (1/N of the table) go to the
    /// others; of the others' slots, only a small fraction moves (Maglev
    /// trades a little disruption for exact balance; the connection table
    /// keeps established flows regardless).
    #[test]
    fn removing_one_of_n_remaps_its_share_and_little_else() {
        for n in [10usize, 100] {
            let names: Vec<String> = (0..n).map(|i| format!("10.2.0.{i}:8080")).collect();
            let all: Vec<Member> = names.iter().map(|s| Member::named(s.as_bytes(), 65537, 1)).collect();
            let before = populate(&all, 65537);
            let gone = n / 3;
            let rest: Vec<Member> = all.iter().enumerate().filter(|&(i, _)| i != gone).map(|(_, m)| *m).collect();
            let after = populate(&rest, 65537);
            let renumber = |i: u16| if (i as usize) < gone { i } else { i + 1 };
            let (mut own, mut others_moved, mut others) = (0, 0, 0);
            for (b, a) in before.iter().zip(&after) {
                if *b as usize == gone {
                    own += 1;
                    assert_ne!(renumber(*a) as usize, gone);
                } else {
                    others += 1;
                    others_moved += (renumber(*a) != *b) as usize;
                }
            }
            let share = own as f64 / 65537.0;
            assert!((share - 1.0 / n as f64).abs() < 0.2 / n as f64, "n {n}: its share {share}");
            let moved = others_moved as f64 / others as f64;
            eprintln!(
                "n {n}: removed backend held {own} slots; {others_moved} of the others' {others} moved ({:.2} %)",
                100.0 * moved
            );
            assert!(moved < 0.02, "n {n}: {:.2} % of the other backends' slots moved", 100.0 * moved);
        }
    }

    #[test]
    fn the_slot_of_a_hash_covers_the_table_evenly() {
        let m = 65537;
        let mut c = vec![0u32; m as usize];
        for i in 0..(m * 16) {
            c[slot((i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) as u32 ^ i, m)] += 1;
        }
        assert!(c.iter().all(|&n| n > 0));
        assert!(is_prime(65537) && is_prime(7) && !is_prime(65536) && !is_prime(1));
    }
}
