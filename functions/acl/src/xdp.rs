//! An ACL's rule set as nfv's XDP program filters by it
//! ([`nfv_core::offload::Filter`]): the IPv4 rules in order as prefixes,
//! port (ICMP type and code) ranges, protocol and TCP flags. A packet the
//! filter denies is dropped below the workers; one it permits goes on as
//! before (IPv6 and IPv4 with options go up to the workers' ACL, which
//! decides them as always). A rule set the filter cannot hold (a rule on
//! an ingress port, `permit-reflect`, more rules than it has room for)
//! gives none: the filter passes everything and the workers decide.

use std::net::IpAddr;

use nfv_core::offload::{FILTER_MAX, Filter, FilterRule};

use crate::rule::{Action, Family, Prefix, Rule};

/// The filter for `rules` with `default` and `non_ip` actions, if it can
/// hold them.
pub fn filter(rules: &[Rule], default: Action, non_ip: Action) -> Option<Filter> {
    let deny = |a: Action| match a {
        Action::Permit => Some(false),
        Action::Deny => Some(true),
        Action::PermitReflect => None,
    };
    let mut out = Vec::new();
    for r in rules {
        // Rules of IPv6 (or of both families at once, which match
        // nothing) never decide an IPv4 packet.
        if !matches!(r.family(), Some(Family::V4 | Family::Any)) {
            continue;
        }
        if r.ingress.is_some() {
            return None;
        }
        let (src, src_mask) = v4(r.src);
        let (dst, dst_mask) = v4(r.dst);
        out.push(FilterRule {
            src,
            src_mask,
            dst,
            dst_mask,
            sport: r.sport,
            dport: r.dport,
            proto: r.proto.0 & r.proto.1,
            proto_mask: r.proto.1,
            flags: r.tcp_flags.0 & r.tcp_flags.1,
            flags_mask: r.tcp_flags.1,
            action: u32::from(deny(r.action)?),
        });
    }
    (out.len() <= FILTER_MAX).then_some(())?;
    Some(Filter { up: false, rules: out, default_deny: deny(default)?, non_ip_deny: deny(non_ip)? })
}

/// An IPv4 prefix as network and mask, on the wire (any: zeros).
fn v4(p: Option<Prefix>) -> ([u8; 4], [u8; 4]) {
    match p {
        Some(Prefix { addr: IpAddr::V4(a), len }) => {
            let mask = if len == 0 { 0 } else { u32::MAX << (32 - len.min(32)) };
            ((u32::from(a) & mask).to_be_bytes(), mask.to_be_bytes())
        }
        _ => ([0; 4], [0; 4]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(src: Option<&str>, action: Action) -> Rule {
        let prefix = |s: &str| {
            let (a, l) = s.split_once('/').unwrap();
            Prefix { addr: a.parse().unwrap(), len: l.parse().unwrap() }
        };
        Rule { src: src.map(prefix), proto: (17, 0xff), dport: (53, 53), ..Rule::any(action) }
    }

    #[test]
    fn ipv4_rules_become_the_filter_and_what_it_cannot_hold_gives_none() {
        let rules = [
            rule(Some("10.1.2.3/16"), Action::Deny),
            rule(Some("2001:db8::/32"), Action::Deny),
            rule(None, Action::Permit),
        ];
        let f = filter(&rules, Action::Deny, Action::Permit).unwrap();
        assert!(!f.up && f.default_deny && !f.non_ip_deny);
        assert_eq!(f.rules.len(), 2, "the IPv6 rule never decides an IPv4 packet");
        let r = f.rules[0];
        assert_eq!((r.src, r.src_mask, r.action), ([10, 1, 0, 0], [255, 255, 0, 0], 1));
        assert_eq!((r.proto, r.proto_mask, r.dport, r.sport), (17, 0xff, (53, 53), (0, u16::MAX)));
        assert_eq!((f.rules[1].src_mask, f.rules[1].action), ([0; 4], 0));
        // An ingress port, a reflect rule or default, too many rules: none.
        let on_port = Rule { ingress: Some(1), ..rules[2] };
        assert!(filter(&[on_port], Action::Permit, Action::Permit).is_none());
        assert!(filter(&[rule(None, Action::PermitReflect)], Action::Deny, Action::Permit).is_none());
        assert!(filter(&rules, Action::PermitReflect, Action::Permit).is_none());
        let many = vec![rules[0]; FILTER_MAX + 1];
        assert!(filter(&many, Action::Permit, Action::Permit).is_none());
        assert!(filter(&many[..FILTER_MAX], Action::Permit, Action::Permit).is_some());
    }
}
