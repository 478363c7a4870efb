//! Random rule sets over every kind of field (IPv4 and IPv6 prefixes, port
//! ranges, protocol masks that are and are not prefixes, TCP flag masks,
//! ingress ports): the trees answer what the linear scan answers, for keys
//! inside rules, on their edges, just outside them, and anywhere.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use nfv_acl::classify::linear::Linear;
use nfv_acl::classify::split::{SplitForest, SplitParams};
use nfv_acl::classify::{FieldBox, Key};
use nfv_acl::rule::{Action, Prefix, Rule, partition_v4, partition_v6, v4_key, v6_key};

fn prefix(rng: &mut fastrand::Rng, v6: bool) -> Option<Prefix> {
    if rng.u8(..4) == 0 {
        return None;
    }
    // A few base addresses, so prefixes nest and overlap.
    let base = rng.u8(..4);
    if v6 {
        let mut a = [0x20, 0x01, 0x0d, 0xb8, base, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        rng.fill(&mut a[5..]);
        Some(Prefix { addr: IpAddr::V6(Ipv6Addr::from(a)), len: rng.u8(0..=128) })
    } else {
        let a = u32::from_be_bytes([10, base, 0, 0]) | rng.u32(..) >> 16;
        Some(Prefix { addr: IpAddr::V4(Ipv4Addr::from(a)), len: rng.u8(0..=32) })
    }
}

fn ports(rng: &mut fastrand::Rng) -> (u16, u16) {
    match rng.u8(..4) {
        0 => (0, u16::MAX),
        1 => {
            let p = [53, 80, 443, 1024][rng.usize(..4)];
            (p, p)
        }
        _ => {
            let a = rng.u16(..2048);
            (a, a + rng.u16(..2048))
        }
    }
}

fn rule(rng: &mut fastrand::Rng, v6: bool) -> Rule {
    let proto = match rng.u8(..5) {
        0 | 1 => (0, 0),
        2 => (6, 0xff),
        3 => (17, 0xff),
        // 0x0f is not a prefix mask: matched on the extra word.
        _ => (rng.u8(..), [0xf0, 0x0f, 0x01][rng.usize(..3)]),
    };
    Rule {
        src: prefix(rng, v6),
        dst: prefix(rng, v6),
        sport: ports(rng),
        dport: ports(rng),
        proto,
        tcp_flags: if rng.u8(..4) == 0 { (rng.u8(..) & 0x12, 0x12) } else { (0, 0) },
        ingress: (rng.u8(..4) == 0).then(|| rng.u16(..3)),
        action: Action::Permit,
    }
}

/// Keys near each rule's box (inside, on its edges, one past them) and
/// random ones, in every dimension.
fn keys<const D: usize>(rng: &mut fastrand::Rng, boxes: &[FieldBox<D>], n: usize) -> Vec<Key<D>> {
    let mut out = Vec::new();
    for _ in 0..n {
        let b = &boxes[rng.usize(..boxes.len())];
        let mut dims = [0u32; D];
        for (d, v) in dims.iter_mut().enumerate() {
            *v = match rng.u8(..6) {
                0 => b.lo[d],
                1 => b.hi(d),
                2 => b.lo[d].wrapping_sub(1),
                3 => b.hi(d).wrapping_add(1),
                4 => rng.u32(..),
                _ => b.lo[d] + rng.u32(0..=b.width[d]),
            };
        }
        // Ports, protocol and ingress stay in their natural widths.
        for (d, max) in [(D - 4, 0xffff), (D - 3, 0xffff), (D - 2, 0xff), (D - 1, 0xffff)] {
            dims[d] &= max;
        }
        let extra = dims[D - 2] << 8 | rng.u32(..256);
        out.push(Key { dims, extra });
    }
    out
}

type Partition<const D: usize> = fn(&FieldBox<D>) -> (usize, Option<usize>);

fn check<const D: usize>(boxes: Vec<FieldBox<D>>, part: Partition<D>, rng: &mut fastrand::Rng) {
    let keys = keys(rng, &boxes, 10_000);
    let linear = Linear::new(boxes.clone());
    let want: Vec<Option<u32>> = keys.iter().map(|k| linear.classify(k)).collect();
    for (leaf_size, cut_bits) in [(1, 0), (4, 12), (8, 0), (8, 6), (8, 12), (32, 4)] {
        let params = SplitParams { leaf_size, cut_bits, ..SplitParams::default() };
        let forest = SplitForest::build(boxes.clone(), part, params);
        // The batch path (AVX2 where the CPU has it) and the portable one.
        let mut batch = vec![0; keys.len()];
        forest.classify_batch(&keys, &mut batch);
        let mut portable = vec![0; keys.len()];
        forest.classify_batch_portable(&keys, &mut portable);
        for (i, k) in keys.iter().enumerate() {
            assert_eq!(forest.classify(k), want[i], "key {k:?}, {params:?}");
            assert_eq!(batch[i], want[i].unwrap_or(nfv_acl::classify::NO_MATCH), "batch, key {k:?}");
            assert_eq!(portable[i], batch[i], "portable batch, key {k:?}");
        }
    }
}

#[test]
fn ipv4_trees_agree_with_the_linear_scan() {
    let mut rng = fastrand::Rng::with_seed(1);
    for n in [1, 10, 300, 2000] {
        let rules: Vec<Rule> = (0..n).map(|_| rule(&mut rng, false)).collect();
        check(rules.iter().map(|r| r.v4_box()).collect(), partition_v4, &mut rng);
    }
}

#[test]
fn ipv6_trees_agree_with_the_linear_scan() {
    let mut rng = fastrand::Rng::with_seed(2);
    for n in [1, 10, 300, 2000] {
        let rules: Vec<Rule> = (0..n).map(|_| rule(&mut rng, true)).collect();
        check(rules.iter().map(|r| r.v6_box()).collect(), partition_v6, &mut rng);
    }
}

/// The keys the rule model builds put each field where the boxes expect it.
#[test]
fn rule_boxes_hold_the_packets_they_describe() {
    let r = Rule {
        src: Some(Prefix { addr: "10.1.0.0".parse().unwrap(), len: 16 }),
        dst: Some(Prefix { addr: "192.0.2.7".parse().unwrap(), len: 32 }),
        sport: (1024, 65535),
        dport: (443, 443),
        proto: (6, 0xff),
        tcp_flags: (0x02, 0x12),
        ingress: Some(1),
        action: Action::Permit,
    };
    let b = r.v4_box();
    let syn = v4_key(0x0a01_0203, 0xc000_0207, 40000, 443, 6, 0x02, 1);
    assert!(b.matches(&syn));
    assert!(!b.matches(&v4_key(0x0a01_0203, 0xc000_0207, 40000, 443, 6, 0x12, 1)), "SYN+ACK is not SYN alone");
    assert!(!b.matches(&v4_key(0x0a02_0203, 0xc000_0207, 40000, 443, 6, 0x02, 1)), "outside 10.1/16");
    assert!(!b.matches(&v4_key(0x0a01_0203, 0xc000_0207, 40000, 443, 6, 0x02, 2)), "other ingress port");
    assert!(!b.matches(&v4_key(0x0a01_0203, 0xc000_0207, 1023, 443, 6, 0x02, 1)), "below the port range");
    let r6 = Rule {
        src: Some(Prefix { addr: "2001:db8:1::".parse().unwrap(), len: 48 }),
        dst: None,
        proto: (17, 0xff),
        tcp_flags: (0, 0),
        ..r
    };
    let b6 = r6.v6_box();
    let a: Ipv6Addr = "2001:db8:1:ffff::9".parse().unwrap();
    let other: Ipv6Addr = "2001:db8:2::9".parse().unwrap();
    let any: Ipv6Addr = "fe80::1".parse().unwrap();
    assert!(b6.matches(&v6_key(a.octets(), any.octets(), 5000, 443, 17, 0, 1)));
    assert!(!b6.matches(&v6_key(other.octets(), any.octets(), 5000, 443, 17, 0, 1)));
}
