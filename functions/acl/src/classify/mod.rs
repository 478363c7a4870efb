//! First-match classification of keys against boxes.
//!
//! A rule, for the classifier, is a box: an inclusive range in each of `D`
//! dimensions of 32 bits (an IPv4 prefix is one range, an IPv6 prefix four,
//! one per 32-bit word; ports, protocol and ingress port one each), plus a
//! masked match on one extra word for what is not a range (TCP flags, a
//! protocol mask that is not a prefix). Rules are numbered by priority:
//! rule 0 wins over rule 1. The answer to a key is the lowest-numbered
//! rule that contains it.
//!
//! [`linear::Linear`] is the reference (a scan, obviously right);
//! [`split::SplitForest`] is the fast one.

pub mod linear;
pub mod split;

/// One rule as a box: `key[d] - lo[d] <= width[d]` (wrapping) in every
/// dimension, and `extra & mask == value`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FieldBox<const D: usize> {
    /// Lowest value in each dimension.
    pub lo: [u32; D],
    /// `hi - lo` in each dimension: one compare per dimension.
    pub width: [u32; D],
    /// Bits of the extra word this rule looks at.
    pub mask: u32,
    /// Their wanted value.
    pub value: u32,
}

impl<const D: usize> FieldBox<D> {
    /// The box of inclusive ranges `lo[d]..=hi[d]`, without extra match.
    pub fn new(lo: [u32; D], hi: [u32; D]) -> Self {
        let mut width = [0; D];
        for d in 0..D {
            assert!(lo[d] <= hi[d], "empty range in dimension {d}");
            width[d] = hi[d] - lo[d];
        }
        Self { lo, width, mask: 0, value: 0 }
    }

    /// Highest value in dimension `d`.
    #[inline(always)]
    pub fn hi(&self, d: usize) -> u32 {
        self.lo[d] + self.width[d]
    }

    /// Does the box hold `k`? Branch-free over the dimensions.
    #[inline(always)]
    pub fn matches(&self, k: &Key<D>) -> bool {
        let mut ok = (k.extra & self.mask) == self.value;
        for d in 0..D {
            ok &= k.dims[d].wrapping_sub(self.lo[d]) <= self.width[d];
        }
        ok
    }
}

/// What is classified: one value per dimension and the extra word.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Key<const D: usize> {
    /// The value in each dimension.
    pub dims: [u32; D],
    /// Matched under each rule's mask.
    pub extra: u32,
}

/// "No rule matched" in batch results.
pub const NO_MATCH: u32 = u32::MAX;
