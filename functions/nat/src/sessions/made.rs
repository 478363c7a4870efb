//! How a table is made, why it refuses a session, and what it counts.

use super::{Forward, Timeouts, WhenFull};

/// Why no session was made.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Refusal {
    /// The table is full and the policy is to refuse.
    TableFull,
    /// No free outside port on the inside address's pool address.
    PortsExhausted,
    /// Nothing is mapped at that outside address and port.
    NoMapping,
    /// Address-dependent filtering: the inside endpoint never sent there.
    Filtered,
}

/// Counters of the table's life.
#[derive(Clone, Copy, Debug, Default)]
pub struct TableStats {
    /// Sessions made.
    pub created: u64,
    /// Sessions that timed out.
    pub expired: u64,
    /// Sessions removed to make room (evict-oldest).
    pub evicted: u64,
    /// New sessions refused because the table was full (refuse).
    pub refused_full: u64,
    /// New mappings refused for want of a port.
    pub ports_exhausted: u64,
    /// Dynamic mappings made.
    pub mappings_created: u64,
    /// Sessions a port forward added while running ended (they held its
    /// inside or outside endpoint).
    pub forward_ended: u64,
}

/// How a table is made.
#[derive(Clone, Debug)]
pub struct TableConfig {
    /// Most sessions held.
    pub max_sessions: usize,
    /// Policy when full.
    pub when_full: WhenFull,
    /// Idle timeouts.
    pub timeouts: Timeouts,
    /// Pool addresses (host order).
    pub pool: Vec<u32>,
    /// Outside ports handed out.
    pub port_range: (u16, u16),
    /// This worker and how many share the pool.
    pub worker: u16,
    /// Workers sharing the pool.
    pub workers: u16,
    /// Port forwards.
    pub forwards: Vec<Forward>,
    /// Seed of the index hashes (random per table: remote endpoints are
    /// chosen by outsiders, who should not be able to aim at one bucket).
    pub seed: u64,
}
