//! ACL rules as the operator writes them, and their boxes for the
//! classifier ([`crate::classify`]).
//!
//! Dimensions of an IPv4 key: source, destination, source port,
//! destination port, protocol, ingress port ([`V4_DIMS`]). IPv6 keys have
//! the addresses as four 32-bit words each ([`V6_DIMS`]): a prefix is then
//! exact in its leading words, a range in one, and any value in the rest,
//! still a box. The extra word holds `protocol << 8 | tcp flags` for masked
//! matches that are not ranges.

use std::net::IpAddr;

use nfv_core::PortId;

use crate::classify::{FieldBox, Key};

/// Dimensions of an IPv4 key.
pub const V4_DIMS: usize = 6;
/// Dimensions of an IPv6 key.
pub const V6_DIMS: usize = 12;

/// What a matching packet gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    /// Passes.
    Permit,
    /// Dropped and counted.
    Deny,
    /// Passes, and its flow's return traffic passes too (per-flow state
    /// with timeouts), whatever the rules say about it.
    PermitReflect,
}

/// An address prefix.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Prefix {
    /// Network address (bits past `len` ignored).
    pub addr: IpAddr,
    /// Prefix length.
    pub len: u8,
}

/// Which address family a rule applies to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    /// IPv4 only.
    V4,
    /// IPv6 only.
    V6,
    /// Both (no address given).
    Any,
}

/// One ACL rule; the first matching rule's action applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Rule {
    /// Source prefix; `None`: any.
    pub src: Option<Prefix>,
    /// Destination prefix; `None`: any.
    pub dst: Option<Prefix>,
    /// Source port range (inclusive).
    pub sport: (u16, u16),
    /// Destination port range (inclusive).
    pub dport: (u16, u16),
    /// Protocol value and mask (mask 0: any).
    pub proto: (u8, u8),
    /// TCP flags value and mask (mask 0: any).
    pub tcp_flags: (u8, u8),
    /// Ingress port; `None`: any.
    pub ingress: Option<PortId>,
    /// What a match does.
    pub action: Action,
}

impl Rule {
    /// A rule matching everything.
    pub fn any(action: Action) -> Self {
        Self {
            src: None,
            dst: None,
            sport: (0, u16::MAX),
            dport: (0, u16::MAX),
            proto: (0, 0),
            tcp_flags: (0, 0),
            ingress: None,
            action,
        }
    }

    /// The family this rule applies to (`None` when source and destination
    /// disagree, which configuration refuses).
    pub fn family(&self) -> Option<Family> {
        let fam = |p: &Option<Prefix>| p.map(|p| if p.addr.is_ipv4() { Family::V4 } else { Family::V6 });
        match (fam(&self.src), fam(&self.dst)) {
            (None, None) => Some(Family::Any),
            (Some(f), None) | (None, Some(f)) => Some(f),
            (Some(a), Some(b)) if a == b => Some(a),
            _ => None,
        }
    }

    /// The rule's box over IPv4 keys.
    pub fn v4_box(&self) -> FieldBox<V4_DIMS> {
        let (mut lo, mut hi) = ([0; V4_DIMS], [0; V4_DIMS]);
        (lo[0], hi[0]) = v4_range(&self.src);
        (lo[1], hi[1]) = v4_range(&self.dst);
        self.common(lo, hi, 2)
    }

    /// The rule's box over IPv6 keys.
    pub fn v6_box(&self) -> FieldBox<V6_DIMS> {
        let (mut lo, mut hi) = ([0; V6_DIMS], [0; V6_DIMS]);
        for (at, p) in [(0, &self.src), (4, &self.dst)] {
            let (l, h) = v6_ranges(p);
            lo[at..at + 4].copy_from_slice(&l);
            hi[at..at + 4].copy_from_slice(&h);
        }
        self.common(lo, hi, 8)
    }

    /// Ports, protocol, ingress from dimension `at` on, and the extra word.
    fn common<const D: usize>(&self, mut lo: [u32; D], mut hi: [u32; D], at: usize) -> FieldBox<D> {
        (lo[at], hi[at]) = (self.sport.0 as u32, self.sport.1 as u32);
        (lo[at + 1], hi[at + 1]) = (self.dport.0 as u32, self.dport.1 as u32);
        let (pv, pm) = self.proto;
        // A mask of leading ones is a range; any other mask is matched on
        // the extra word.
        let prefix_mask = pm.leading_ones() + pm.trailing_zeros() == 8;
        (lo[at + 2], hi[at + 2]) =
            if prefix_mask { ((pv & pm) as u32, (pv & pm | !pm) as u32) } else { (0, u8::MAX as u32) };
        (lo[at + 3], hi[at + 3]) = match self.ingress {
            Some(p) => (p as u32, p as u32),
            None => (0, PortId::MAX as u32),
        };
        let mut b = FieldBox::new(lo, hi);
        let (fv, fm) = self.tcp_flags;
        b.mask = fm as u32;
        b.value = (fv & fm) as u32;
        if !prefix_mask {
            b.mask |= (pm as u32) << 8;
            b.value |= ((pv & pm) as u32) << 8;
        }
        b
    }
}

/// The IPv4 key of source/destination words and the common fields.
#[inline(always)]
pub fn v4_key(src: u32, dst: u32, sport: u16, dport: u16, proto: u8, tcp_flags: u8, ingress: PortId) -> Key<V4_DIMS> {
    Key {
        dims: [src, dst, sport as u32, dport as u32, proto as u32, ingress as u32],
        extra: (proto as u32) << 8 | tcp_flags as u32,
    }
}

/// The IPv6 key.
#[inline(always)]
pub fn v6_key(
    src: [u8; 16],
    dst: [u8; 16],
    sport: u16,
    dport: u16,
    proto: u8,
    flags: u8,
    port: PortId,
) -> Key<V6_DIMS> {
    let w = |a: &[u8; 16], i: usize| u32::from_be_bytes([a[4 * i], a[4 * i + 1], a[4 * i + 2], a[4 * i + 3]]);
    Key {
        dims: [
            w(&src, 0),
            w(&src, 1),
            w(&src, 2),
            w(&src, 3),
            w(&dst, 0),
            w(&dst, 1),
            w(&dst, 2),
            w(&dst, 3),
            sport as u32,
            dport as u32,
            proto as u32,
            port as u32,
        ],
        extra: (proto as u32) << 8 | flags as u32,
    }
}

/// The range of addresses an IPv4 prefix covers.
fn v4_range(p: &Option<Prefix>) -> (u32, u32) {
    match p {
        Some(Prefix { addr: IpAddr::V4(a), len }) => word_range(u32::from(*a), *len as u32),
        _ => (0, u32::MAX),
    }
}

/// The range of each 32-bit word an IPv6 prefix covers.
fn v6_ranges(p: &Option<Prefix>) -> ([u32; 4], [u32; 4]) {
    let (mut lo, mut hi) = ([0; 4], [u32::MAX; 4]);
    if let Some(Prefix { addr: IpAddr::V6(a), len }) = p {
        let a = a.octets();
        for i in 0..4 {
            let word = u32::from_be_bytes([a[4 * i], a[4 * i + 1], a[4 * i + 2], a[4 * i + 3]]);
            let bits = (*len as u32).saturating_sub(32 * i as u32).min(32);
            (lo[i], hi[i]) = word_range(word, bits);
        }
    }
    (lo, hi)
}

/// The values whose leading `bits` equal `word`'s.
fn word_range(word: u32, bits: u32) -> (u32, u32) {
    if bits == 0 {
        return (0, u32::MAX);
    }
    let mask = u32::MAX << (32 - bits);
    (word & mask, word & mask | !mask)
}

/// Partition of an IPv4 rule for [`crate::classify::split::SplitForest`]:
/// 0 when the source is narrow (a prefix of 16 bits or more), else 1 when
/// the destination is, else 2. A tree then splits on addresses its rules
/// are narrow in, without copying wide ones into every leaf. (Measured on
/// ClassBench 10k sets against one tree and against four partitions, by
/// narrowness of source and destination: 3 trees was fastest at ~1 MiB;
/// one tree took 10-24 MiB.)
pub fn partition_v4(b: &FieldBox<V4_DIMS>) -> (usize, Option<usize>) {
    const NARROW: u32 = 1 << 16;
    narrowest(b.width[0] < NARROW, b.width[1] < NARROW, [0, 1])
}

/// [`partition_v4`] for IPv6 rules: narrow is a prefix of 64 bits or more
/// (the first two words exact).
pub fn partition_v6(b: &FieldBox<V6_DIMS>) -> (usize, Option<usize>) {
    let narrow = |at: usize| b.width[at] == 0 && b.width[at + 1] == 0;
    narrowest(narrow(0), narrow(4), [0, 4])
}

/// The partition, and the dimension its tree is first cut on (the first
/// word of the narrow address, `dims` gives source's and destination's).
fn narrowest(src_narrow: bool, dst_narrow: bool, dims: [usize; 2]) -> (usize, Option<usize>) {
    if src_narrow {
        (0, Some(dims[0]))
    } else if dst_narrow {
        (1, Some(dims[1]))
    } else {
        (2, None)
    }
}
