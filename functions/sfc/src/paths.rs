//! The path table of a service function forwarder: for each (SPI, SI) of
//! a service path (RFC 8300 2.3), where the packet goes next (RFC 7665
//! 2.2): to the next forwarder, to a service function of this instance,
//! or out of the path. Written inline (`paths = [...]`) and in a file
//! (`paths-file`) that a control task watches: a changed file is checked
//! whole, and published for the workers' next batch, or refused whole
//! with every problem at its line and column while the running table
//! stays.
//!
//! ```toml
//! paths = [
//!     { spi = 10, si = 255, chain = "fw" },               # a function here (proxied)
//!     { spi = 10, si = 254, next-hop = "192.168.1.3" },  # the next forwarder
//!     { spi = 10, si = 253, end = true, chain = "out" }, # the path ends here
//! ]
//! ```

use std::net::IpAddr;

use nfv_core::ChainId;
use nfv_core::filewatch::{FileError, entries, entry, line_column};
use serde::Deserialize;

/// What to write in a path entry.
pub const PATH_HELP: &str = "{ spi = 10, si = 255, next-hop = \"192.168.1.3\" } or { spi = 10, si = 255, chain = \"fw\" } or { spi = 10, si = 254, end = true }";

/// One entry as written.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct PathParams {
    spi: u32,
    si: u8,
    #[serde(default)]
    next_hop: Option<IpAddr>,
    #[serde(default)]
    chain: Option<String>,
    #[serde(default)]
    end: bool,
}

/// Where a packet at one (SPI, SI) goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hop {
    /// To the next forwarder, at this address.
    Remote(IpAddr),
    /// To a service function of this instance: this chain, NSH-unaware
    /// (the forwarder proxies: RFC 7665 4.6).
    Local(ChainId),
    /// The path ends here: the inner packet goes on, in the forwarder's
    /// chain or in this one.
    End(Option<ChainId>),
}

/// The table: entries sorted by (SPI, SI), and an open-addressing index
/// over them (a multiplicative hash of the 32-bit key, linear probing, at
/// most half full): a lookup is a multiply, a shift and a compare or two.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PathTable {
    entries: Vec<(u32, Hop)>,
    /// Slots: an index into `entries` plus one, 0 for empty.
    slots: Vec<u16>,
    shift: u32,
    /// Replaced this many times.
    pub version: u64,
}

fn key(spi: u32, si: u8) -> u32 {
    spi << 8 | si as u32
}

impl PathTable {
    /// A table of `entries` (sorted by key, keys distinct).
    fn new(entries: Vec<(u32, Hop)>) -> Self {
        let cap = (2 * entries.len()).next_power_of_two().max(8);
        let shift = 32 - cap.trailing_zeros();
        let mut slots = vec![0u16; cap];
        for (i, (k, _)) in entries.iter().enumerate() {
            let mut at = (k.wrapping_mul(0x9e37_79b1) >> shift) as usize;
            while slots[at] != 0 {
                at = (at + 1) & (cap - 1);
            }
            slots[at] = i as u16 + 1;
        }
        Self { entries, slots, shift, version: 0 }
    }

    /// Where a packet at (`spi`, `si`) goes.
    #[inline]
    pub fn get(&self, spi: u32, si: u8) -> Option<Hop> {
        let k = key(spi, si);
        let mask = self.slots.len().wrapping_sub(1);
        let mut at = (k.wrapping_mul(0x9e37_79b1) >> self.shift) as usize & mask;
        loop {
            let i = *self.slots.get(at)? as usize;
            let (ek, hop) = *self.entries.get(i.checked_sub(1)?)?;
            if ek == k {
                return Some(hop);
            }
            at = (at + 1) & mask;
        }
    }

    /// Entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True without entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Every chain an entry sends packets to.
    pub fn chains(&self) -> Vec<ChainId> {
        let mut v: Vec<ChainId> = self
            .entries
            .iter()
            .filter_map(|(_, h)| match h {
                Hop::Local(c) | Hop::End(Some(c)) => Some(*c),
                _ => None,
            })
            .collect();
        v.sort_unstable();
        v.dedup();
        v
    }

    /// Every next forwarder.
    pub fn remotes(&self) -> Vec<IpAddr> {
        let mut v: Vec<IpAddr> =
            self.entries.iter().filter_map(|(_, h)| if let Hop::Remote(a) = h { Some(*a) } else { None }).collect();
        v.sort_unstable();
        v.dedup();
        v
    }
}

/// Builds a table from entries; `chain` resolves a chain name (`Err`: the
/// names it knows). Every problem comes back with the entry's index.
pub fn build(
    params: &[PathParams],
    chain: &dyn Fn(&str) -> Result<ChainId, String>,
) -> Result<PathTable, Vec<(usize, String)>> {
    let mut errors = Vec::new();
    let mut entries: Vec<(u32, Hop)> = Vec::new();
    for (i, p) in params.iter().enumerate() {
        if p.spi > 0xff_ffff {
            errors.push((i, format!("SPI {} does not fit 24 bits (RFC 8300 2.3)", p.spi)));
            continue;
        }
        if p.si == 0 {
            errors.push((i, "SI 0 ends every path: a packet there is dropped (RFC 8300 2.3)".into()));
            continue;
        }
        let hop = match (p.next_hop, &p.chain, p.end) {
            (Some(a), None, false) => Ok(Hop::Remote(a)),
            (None, Some(c), false) => chain(c).map(Hop::Local),
            (None, c, true) => c.as_deref().map(chain).transpose().map(Hop::End),
            _ => Err("an entry says one of: next-hop, chain (a function here), end (with an optional chain)".into()),
        };
        match hop {
            Ok(_) if entries.iter().any(|(k, _)| *k == key(p.spi, p.si)) => {
                errors.push((i, format!("(SPI {}, SI {}) is listed twice", p.spi, p.si)));
            }
            Ok(h) => entries.push((key(p.spi, p.si), h)),
            Err(e) => errors.push((i, e)),
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    entries.sort_unstable_by_key(|e| e.0);
    if entries.len() >= u16::MAX as usize {
        return Err(vec![(params.len() - 1, format!("more than {} paths", u16::MAX - 1))]);
    }
    Ok(PathTable::new(entries))
}

/// The inline paths and a file's together; `Err` says which (SPI, SI)
/// both have, or that there are too many.
pub fn merge(inline: PathTable, file: PathTable) -> Result<PathTable, String> {
    let mut entries = inline.entries;
    for (k, h) in file.entries {
        if entries.iter().any(|(i, _)| *i == k) {
            return Err(format!("(SPI {}, SI {}) is in the file and inline", k >> 8, k & 0xff));
        }
        entries.push((k, h));
    }
    if entries.len() >= u16::MAX as usize {
        return Err(format!("more than {} paths", u16::MAX - 1));
    }
    entries.sort_unstable_by_key(|e| e.0);
    Ok(PathTable::new(entries))
}

/// Reads a paths file (`paths = [...]`), every problem located.
pub fn read_file(text: &str, chain: &dyn Fn(&str) -> Result<ChainId, String>) -> Result<PathTable, Vec<FileError>> {
    let items = entries(text, "paths", PATH_HELP)?;
    let mut params = Vec::new();
    let mut errors = Vec::new();
    for item in &items {
        match entry::<PathParams>(text, item, PATH_HELP) {
            Ok(p) => params.push(p),
            Err(e) => errors.push(e),
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    build(&params, chain).map_err(|es| {
        es.into_iter()
            .map(|(i, message)| {
                let (line, column) = line_column(text, items[i].span().start);
                FileError { line, column, message, help: PATH_HELP.into() }
            })
            .collect()
    })
}
