//! `lb`: an L4 load balancer in the manner of Maglev and Katran: virtual
//! IPs (address, port, protocol) spread over weighted backends.
//!
//! [`maglev`] builds the lookup tables.

#![warn(missing_docs)]

pub mod maglev;
