//! The reference classifier: every rule in priority order, first match
//! wins. Kept for tests (it is obviously right), never used on packets.

use super::{FieldBox, Key};

/// Rules scanned in order.
pub struct Linear<const D: usize> {
    rules: Vec<FieldBox<D>>,
}

impl<const D: usize> Linear<D> {
    /// Rule `i` of `rules` has priority `i` (0 first).
    pub fn new(rules: Vec<FieldBox<D>>) -> Self {
        Self { rules }
    }

    /// The first rule holding `k`.
    pub fn classify(&self, k: &Key<D>) -> Option<u32> {
        self.rules.iter().position(|r| r.matches(k)).map(|i| i as u32)
    }
}
