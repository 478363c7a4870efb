//! Service data flow filters: the Flow Description of a PFCP SDF Filter
//! (TS 29.244 section 8.2.5), an IPFilterRule (RFC 6733 section 4.3.3):
//!
//! ```text
//! permit out 17 from 198.51.100.0/24 1000-2000 to assigned 53
//! permit out ip from any to assigned
//! ```
//!
//! The rule is written for downlink traffic: "from" is the remote end (the
//! data network), "to" the UE ("assigned": the UE's own address). An
//! uplink packet matches with its source and destination swapped (TS
//! 29.244 section 5.2.1A). Only `permit out` rules are used by PFCP.

/// A parsed filter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SdfFilter {
    /// IP protocol, or any.
    pub proto: Option<u8>,
    /// The remote end: (network, mask).
    pub remote: (u32, u32),
    /// Remote port ranges; empty: any.
    pub remote_ports: Vec<(u16, u16)>,
    /// The UE end: `None` for "assigned" (the UE's address), else
    /// (network, mask).
    pub ue: Option<(u32, u32)>,
    /// UE port ranges; empty: any.
    pub ue_ports: Vec<(u16, u16)>,
}

/// One packet's fields as a filter sees them (downlink orientation).
#[derive(Clone, Copy, Debug, Default)]
pub struct FlowView {
    /// IP protocol (IPv6: the first next header).
    pub proto: u8,
    /// The data network's address (IPv4; 0 for IPv6) and port.
    pub remote: (u32, u16),
    /// The UE's address (IPv4; 0 for IPv6) and port.
    pub ue: (u32, u16),
    /// An IPv6 packet's UE /64 prefix (its upper 64 bits); `None` for
    /// IPv4.
    pub ue6: Option<u64>,
}

fn in_ranges(ranges: &[(u16, u16)], p: u16) -> bool {
    ranges.is_empty() || ranges.iter().any(|&(lo, hi)| (lo..=hi).contains(&p))
}

impl SdfFilter {
    /// True when the packet matches (ports only checked for TCP and UDP).
    #[inline]
    pub fn matches(&self, f: &FlowView) -> bool {
        // IPv4 addresses in the filter do not match an IPv6 packet; "any"
        // and "assigned" do.
        if f.ue6.is_some() && (self.remote.1 != 0 || self.ue.is_some_and(|(_, m)| m != 0)) {
            return false;
        }
        if self.proto.is_some_and(|p| p != f.proto) || f.remote.0 & self.remote.1 != self.remote.0 {
            return false;
        }
        if self.ue.is_some_and(|(net, mask)| f.ue.0 & mask != net) {
            return false;
        }
        let ports = matches!(f.proto, 6 | 17);
        !ports || (in_ranges(&self.remote_ports, f.remote.1) && in_ranges(&self.ue_ports, f.ue.1))
    }
}

/// `a.b.c.d[/len]` or `any` as (network, mask).
fn address(s: &str) -> Result<(u32, u32), String> {
    if s == "any" {
        return Ok((0, 0));
    }
    nfv_core::config::ipv4_prefix(s).ok_or(format!("`{s}` is not an IPv4 address or prefix (prefix length 0 to 32)"))
}

/// Port ranges `80`, `1000-2000`, `80,443` (comma-separated).
fn ports(s: &str) -> Option<Vec<(u16, u16)>> {
    s.split(',')
        .map(|r| match r.split_once('-') {
            Some((a, b)) => Some((a.parse().ok()?, b.parse().ok()?)).filter(|(a, b)| a <= b),
            None => r.parse().ok().map(|p| (p, p)),
        })
        .collect()
}

/// Parses a Flow Description; the error says what is wrong.
pub fn parse(s: &str) -> Result<SdfFilter, String> {
    let mut w = s.split_whitespace().peekable();
    let mut next = |what: &str| w.next().ok_or(format!("`{s}`: {what} missing"));
    if next("action")? != "permit" {
        return Err(format!("`{s}`: only `permit` rules"));
    }
    if next("direction")? != "out" {
        return Err(format!("`{s}`: only `out` rules (TS 29.244 section 5.2.1A)"));
    }
    let proto = match next("protocol")? {
        "ip" => None,
        p => Some(p.parse::<u8>().map_err(|_| format!("`{s}`: protocol `{p}` is not `ip` or a number"))?),
    };
    if next("from")? != "from" {
        return Err(format!("`{s}`: `from` expected after the protocol"));
    }
    let remote = address(next("source")?)?;
    let mut rest: Vec<&str> = w.collect();
    let mut remote_ports = Vec::new();
    if rest.first().is_some_and(|t| *t != "to") {
        remote_ports = ports(rest[0]).ok_or(format!("`{s}`: bad ports `{}`", rest[0]))?;
        rest.remove(0);
    }
    if rest.first() != Some(&"to") {
        return Err(format!("`{s}`: `to` expected"));
    }
    let ue = match rest.get(1) {
        Some(&"assigned") => None,
        Some(a) => Some(address(a)?),
        None => return Err(format!("`{s}`: destination missing")),
    };
    let ue_ports = match rest.get(2) {
        Some(p) => ports(p).ok_or(format!("`{s}`: bad ports `{p}`"))?,
        None => Vec::new(),
    };
    if rest.len() > 3 {
        return Err(format!("`{s}`: options after the destination are not supported"));
    }
    Ok(SdfFilter { proto, remote, remote_ports, ue, ue_ports })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(proto: u8, remote: [u8; 4], rport: u16, ue: [u8; 4], uport: u16) -> FlowView {
        FlowView { proto, remote: (u32::from_be_bytes(remote), rport), ue: (u32::from_be_bytes(ue), uport), ue6: None }
    }

    #[test]
    fn parses_and_matches_the_forms_smfs_send() {
        let any = parse("permit out ip from any to assigned").unwrap();
        assert!(any.matches(&view(1, [8, 8, 8, 8], 0, [10, 45, 0, 7], 0)));
        let dns = parse("permit out 17 from 198.51.100.0/24 53 to assigned 1024-65535").unwrap();
        assert!(dns.matches(&view(17, [198, 51, 100, 9], 53, [10, 45, 0, 7], 4000)));
        assert!(!dns.matches(&view(6, [198, 51, 100, 9], 53, [10, 45, 0, 7], 4000)), "protocol");
        assert!(!dns.matches(&view(17, [198, 51, 101, 9], 53, [10, 45, 0, 7], 4000)), "remote prefix");
        assert!(!dns.matches(&view(17, [198, 51, 100, 9], 54, [10, 45, 0, 7], 4000)), "remote port");
        assert!(!dns.matches(&view(17, [198, 51, 100, 9], 53, [10, 45, 0, 7], 80)), "UE port");
        let web = parse("permit out 6 from 203.0.113.5 80,443 to 10.45.0.0/16").unwrap();
        assert!(web.matches(&view(6, [203, 0, 113, 5], 443, [10, 45, 9, 9], 50000)));
        assert!(!web.matches(&view(6, [203, 0, 113, 5], 8080, [10, 45, 9, 9], 50000)));
        assert!(!web.matches(&view(6, [203, 0, 113, 5], 80, [10, 46, 0, 1], 50000)));
    }

    #[test]
    fn bad_filters_say_what_is_wrong() {
        for (s, want) in [
            ("deny out ip from any to assigned", "only `permit`"),
            ("permit in ip from any to assigned", "only `out`"),
            ("permit out tcp from any to assigned", "protocol `tcp`"),
            ("permit out ip from 10.0.0.0/33 to assigned", "prefix length"),
            ("permit out ip from any 99999 to assigned", "bad ports"),
            ("permit out ip from any", "`to` expected"),
            ("permit out ip from any to", "destination missing"),
            ("permit out", "protocol missing"),
        ] {
            let e = parse(s).unwrap_err();
            assert!(e.contains(want), "{s}: {e}");
        }
    }
}
