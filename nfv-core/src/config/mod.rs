//! Configuration: the TOML schema, its validation with located errors, and
//! the validated [`Config`] the runtime is built from.
//!
//! Loading never stops at the first problem: syntax errors, every section
//! item, every stage's parameters and every cross-reference are checked,
//! and all problems are reported with file:line:column and a caret.

mod chains;
mod diag;
mod graph;
mod load;
mod schema;

pub use diag::{Diagnostic, Report};
pub use load::{Params, load, load_as_file, load_file};
pub use schema::{
    AfXdpConfig, ChainSpec, Config, DEFAULT_LISTEN, DEFAULT_SOCKET, InterfaceRef, ManagementSpec, NeighbourSpec,
    OffloadMode, PcapConfig, PortKind, PortSpec, RunSection, StageSpec, SteerOn, UmemSharing, WorkerSpec, XdpMode,
};

/// The embedded default configuration (`nfv run` with no file): the
/// in-memory generator through a real chain into a sink.
pub const QUICKSTART: &str = include_str!("../../../configs/quickstart.toml");

/// Parses an IPv4 address or prefix, `a.b.c.d` or `a.b.c.d/len`, into
/// (network, mask) in host order (the address alone is a /32).
pub fn ipv4_prefix(s: &str) -> Option<(u32, u32)> {
    let (a, len) = match s.split_once('/') {
        Some((a, l)) => (a, l.parse::<u32>().ok().filter(|&l| l <= 32)?),
        None => (s, 32),
    };
    let a = u32::from(a.parse::<std::net::Ipv4Addr>().ok()?);
    let mask = u32::MAX.checked_shl(32 - len).unwrap_or(0);
    Some((a & mask, mask))
}

/// Parses an IPv4 endpoint, `a.b.c.d:port`, into (address, port) in
/// host order.
pub fn ipv4_endpoint(s: &str) -> Option<(u32, u16)> {
    let (a, p) = s.rsplit_once(':')?;
    Some((u32::from(a.parse::<std::net::Ipv4Addr>().ok()?), p.parse().ok()?))
}

/// The MAC of port `index` when the configuration gives none (and it
/// has no interface to take one from): locally administered, unique per
/// port.
pub fn default_port_mac(index: usize) -> [u8; 6] {
    [0x02, 0x6e, 0x66, 0x76, 0x00, index as u8 + 1]
}

/// `aa:bb:cc:dd:ee:ff`, as [`parse_mac`] reads it.
pub fn mac_text(mac: &[u8; 6]) -> String {
    mac.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":")
}

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
