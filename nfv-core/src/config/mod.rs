//! Configuration: the TOML schema, its validation with located errors, and
//! the validated [`Config`] the runtime is built from.
//!
//! Loading never stops at the first problem: syntax errors, every section
//! item, every stage's parameters and every cross-reference are checked,
//! and all problems are reported with file:line:column and a caret.

mod diag;
mod load;
mod schema;

pub use diag::{Diagnostic, Report};
pub use load::{Params, load};
pub use schema::{
    AfXdpConfig, ChainSpec, Config, NeighbourSpec, PcapConfig, PortKind, PortSpec, RunSection, StageSpec, UmemSharing,
    WorkerSpec, XdpMode,
};

/// The embedded default configuration (`nfv run` with no file): the
/// in-memory generator through a real chain into a sink.
pub const QUICKSTART: &str = include_str!("../../../configs/quickstart.toml");

/// Parses `aa:bb:cc:dd:ee:ff`.
pub fn parse_mac(s: &str) -> Result<[u8; 6], String> {
    let parts: Vec<&str> = s.split(':').collect();
    let bad = || format!("`{s}` is not a MAC address; expected six hex bytes like 02:00:00:00:00:01");
    if parts.len() != 6 {
        return Err(bad());
    }
    let mut mac = [0u8; 6];
    for (m, p) in mac.iter_mut().zip(parts) {
        if p.len() != 2 {
            return Err(bad());
        }
        *m = u8::from_str_radix(p, 16).map_err(|_| bad())?;
    }
    Ok(mac)
}
