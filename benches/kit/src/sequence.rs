//! Loss, duplicates and reorder per flow, from the sequence numbers the
//! generator writes into each payload (per flow, from 0). Reorder follows
//! RFC 4737 section 3.3: a packet is reordered when its number is below
//! the next expected one (the highest seen plus one), and counted once;
//! a number seen before is a duplicate, not a reorder.

/// One flow's account.
#[derive(Clone, Debug, Default)]
pub struct FlowAccount {
    /// Numbers seen, a bit each.
    seen: Vec<u64>,
    next_expected: u64,
    /// Distinct packets received.
    pub received: u64,
    /// Packets received again.
    pub duplicates: u64,
    /// Packets that came after a higher-numbered one (RFC 4737).
    pub reordered: u64,
    /// The largest distance back a reordered packet came from.
    pub max_reorder_extent: u64,
}

impl FlowAccount {
    /// Accounts a packet numbered `seq`.
    pub fn arrive(&mut self, seq: u64) {
        let (word, bit) = ((seq / 64) as usize, seq % 64);
        if word >= self.seen.len() {
            self.seen.resize(word + 1, 0);
        }
        if self.seen[word] & (1 << bit) != 0 {
            self.duplicates += 1;
            return;
        }
        self.seen[word] |= 1 << bit;
        self.received += 1;
        if seq < self.next_expected {
            self.reordered += 1;
            self.max_reorder_extent = self.max_reorder_extent.max(self.next_expected - 1 - seq);
        } else {
            self.next_expected = seq + 1;
        }
    }

    /// Packets of the `sent` the flow sent that never came.
    pub fn lost(&self, sent: u64) -> u64 {
        sent.saturating_sub(self.received)
    }
}

/// Every flow's account.
#[derive(Clone, Debug, Default)]
pub struct Accounts {
    flows: Vec<FlowAccount>,
}

impl Accounts {
    /// Accounts a packet of `flow` numbered `seq`.
    pub fn arrive(&mut self, flow: usize, seq: u64) {
        if flow >= self.flows.len() {
            self.flows.resize_with(flow + 1, FlowAccount::default);
        }
        self.flows[flow].arrive(seq);
    }

    /// Totals over the flows, given what each sent: (lost, duplicates,
    /// reordered).
    pub fn totals(&self, sent: impl Fn(usize) -> u64, flows: usize) -> (u64, u64, u64) {
        let empty = FlowAccount::default();
        (0..flows).fold((0, 0, 0), |(l, d, r), f| {
            let a = self.flows.get(f).unwrap_or(&empty);
            (l + a.lost(sent(f)), d + a.duplicates, r + a.reordered)
        })
    }

    /// One flow's account.
    pub fn flow(&self, f: usize) -> Option<&FlowAccount> {
        self.flows.get(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crafted_sequences_count_as_rfc_4737_says() {
        let mut a = FlowAccount::default();
        // 0 1 2 5 3 4 6 6 9: 3 and 4 came after 5 (reordered, extent 2
        // and 1), 6 twice (a duplicate), 7 and 8 lost.
        for s in [0, 1, 2, 5, 3, 4, 6, 6, 9] {
            a.arrive(s);
        }
        assert_eq!((a.received, a.duplicates, a.reordered, a.max_reorder_extent), (8, 1, 2, 2));
        assert_eq!(a.lost(10), 2);
        // In order: nothing.
        let mut b = FlowAccount::default();
        (0..1000).for_each(|s| b.arrive(s));
        assert_eq!((b.received, b.duplicates, b.reordered, b.lost(1000)), (1000, 0, 0, 0));
        // Two flows interleaved stay apart.
        let mut all = Accounts::default();
        for s in 0..100 {
            all.arrive(0, s);
            all.arrive(3, 99 - s);
        }
        assert_eq!(all.totals(|_| 100, 4), (200, 0, 99), "flows 1 and 2 lost all; flow 3 came backwards");
        assert_eq!(all.flow(3).unwrap().max_reorder_extent, 99, "0 came after 99");
    }
}
