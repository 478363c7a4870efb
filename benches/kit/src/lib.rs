//! `nfv bench`'s measuring core, apart from any device so it is tested
//! against simulated DUTs and crafted sequences: the throughput search
//! ([`search`]: RFC 2544 section 26.1's binary search with a final
//! verification trial, for several loss goals at once as MLRsearch does),
//! per-flow sequence accounting ([`sequence`]: loss, duplicates, reorder
//! after RFC 4737) and latency ([`latency`]: hdrhistogram percentiles and
//! delay variation after RFC 5481), and what the generator sends
//! ([`traffic`]: RFC 2544 frame sizes and IMIX, RFC 4814 flows, the
//! payload stamp), and what a run leaves ([`results`]: the environment
//! and the rows, as JSON and CSV).

pub mod bed;
pub mod cases;
pub mod engine;
pub mod latency;
pub mod report;
pub mod results;
pub mod run;
pub mod search;
pub mod sequence;
pub mod traffic;
