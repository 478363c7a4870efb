//! ClassBench rule and trace files (Taylor and Turner, "ClassBench: A
//! Packet Classification Benchmark", 2005), the format `dpdk-test-acl`
//! reads too.
//!
//! A rule line: `@SRC/LEN DST/LEN SPORT_LO : SPORT_HI DPORT_LO : DPORT_HI
//! PROTO/MASK FLAGS/MASK`. The last column is ClassBench's generic 16-bit
//! flags field, not TCP flags (values such as 0x1000/0x1000 fit no TCP
//! header); like `dpdk-test-acl` we read it and do not match on it. Rule
//! order is priority: the first line wins.
//!
//! A trace line: `SRC DST SPORT DPORT PROTO FLAGS RULE` in decimal; RULE is
//! the (0-based) rule the header was generated from, not always the first
//! match.

use std::net::{IpAddr, Ipv4Addr};

use crate::rule::{Action, Prefix, Rule};

/// A line that is not what the format says, located for the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// 1-based line.
    pub line: usize,
    /// 1-based column where the bad field starts.
    pub column: usize,
    /// What is wrong and what was expected.
    pub message: String,
}

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}: {}", self.line, self.column, self.message)
    }
}

impl std::error::Error for ParseError {}

/// Whitespace-separated fields of a line, with their 1-based columns.
fn fields(line: &str) -> impl Iterator<Item = (usize, &str)> {
    line.split_ascii_whitespace().map(move |f| (f.as_ptr() as usize - line.as_ptr() as usize + 1, f))
}

/// Parses a ClassBench rule file; every rule gets `action`. Every bad
/// line is reported (its first problem), not only the first.
pub fn parse_rules(text: &str, action: Action) -> Result<Vec<Rule>, Vec<ParseError>> {
    let (mut rules, mut errors) = (Vec::new(), Vec::new());
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match parse_rule(n + 1, line, action) {
            Ok(r) => rules.push(r),
            Err(e) => errors.push(e),
        }
    }
    if errors.is_empty() { Ok(rules) } else { Err(errors) }
}

/// Line `n` (1-based) of a ClassBench rule file.
fn parse_rule(n: usize, line: &str, action: Action) -> Result<Rule, ParseError> {
    {
        let err = |column: usize, message: String| ParseError { line: n, column, message };
        let f: Vec<(usize, &str)> = fields(line).collect();
        if f.len() < 9 {
            return Err(err(
                1,
                format!(
                    "{} fields, a ClassBench rule has 9 or 10: @SRC/LEN DST/LEN SPORT_LO : SPORT_HI DPORT_LO : DPORT_HI PROTO/MASK [FLAGS/MASK]",
                    f.len()
                ),
            ));
        }
        let Some(src) = f[0].1.strip_prefix('@') else {
            return Err(err(f[0].0, "a rule starts with '@'".into()));
        };
        let prefix = |(col, s): (usize, &str)| -> Result<Option<Prefix>, ParseError> {
            let (a, l) = s.split_once('/').ok_or_else(|| err(col, format!("'{s}': expected ADDRESS/LEN")))?;
            let addr: Ipv4Addr = a.parse().map_err(|_| err(col, format!("'{a}' is not an IPv4 address")))?;
            let len: u8 =
                l.parse().ok().filter(|&l| l <= 32).ok_or_else(|| err(col, format!("'{l}': prefix length 0-32")))?;
            Ok((len > 0).then_some(Prefix { addr: IpAddr::V4(addr), len }))
        };
        let port = |(col, s): (usize, &str)| -> Result<u16, ParseError> {
            s.parse().map_err(|_| err(col, format!("'{s}' is not a port (0-65535)")))
        };
        let colon = |(col, s): (usize, &str)| -> Result<(), ParseError> {
            if s == ":" { Ok(()) } else { Err(err(col, format!("'{s}': expected ':' between port bounds"))) }
        };
        let range = |lo: (usize, &str), c, hi| -> Result<(u16, u16), ParseError> {
            colon(c)?;
            let (l, h) = (port(lo)?, port(hi)?);
            if l > h {
                return Err(err(lo.0, format!("port range {l} : {h} is empty")));
            }
            Ok((l, h))
        };
        let hex = |col: usize, s: &str| -> Result<u32, ParseError> {
            let digits = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")).unwrap_or(s);
            u32::from_str_radix(digits, 16).map_err(|_| err(col, format!("'{s}' is not a hex number")))
        };
        let (pcol, p) = f[8];
        let (pv, pm) = p.split_once('/').ok_or_else(|| err(pcol, format!("'{p}': expected PROTO/MASK")))?;
        let (pv, pm) = (hex(pcol, pv)?, hex(pcol, pm)?);
        if pv > 0xff || pm > 0xff {
            return Err(err(pcol, format!("'{p}': protocol and mask are 8 bits")));
        }
        if let Some(&(col, fl)) = f.get(9) {
            let (v, m) = fl.split_once('/').ok_or_else(|| err(col, format!("'{fl}': expected FLAGS/MASK")))?;
            hex(col, v)?;
            hex(col, m)?;
        }
        Ok(Rule {
            src: prefix((f[0].0 + 1, src))?,
            dst: prefix(f[1])?,
            sport: range(f[2], f[3], f[4])?,
            dport: range(f[5], f[6], f[7])?,
            proto: (pv as u8, pm as u8),
            tcp_flags: (0, 0),
            ingress: None,
            action,
        })
    }
}

/// One header of a trace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TraceEntry {
    /// Source address.
    pub src: u32,
    /// Destination address.
    pub dst: u32,
    /// Source port.
    pub sport: u16,
    /// Destination port.
    pub dport: u16,
    /// Protocol.
    pub proto: u8,
    /// The rule (0-based, as the files number them) the generator made
    /// this header from.
    pub generated_from: u32,
}

/// Parses a ClassBench trace file.
pub fn parse_trace(text: &str) -> Result<Vec<TraceEntry>, ParseError> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let f: Vec<(usize, &str)> = fields(line).collect();
        let err = |column: usize, message: String| ParseError { line: n + 1, column, message };
        if f.len() < 7 {
            return Err(err(
                1,
                format!("{} fields, a trace line has 7: SRC DST SPORT DPORT PROTO FLAGS RULE", f.len()),
            ));
        }
        let num = |i: usize, max: u64| -> Result<u64, ParseError> {
            let (col, s) = f[i];
            s.parse::<u64>().ok().filter(|&v| v <= max).ok_or_else(|| err(col, format!("'{s}': expected 0-{max}")))
        };
        out.push(TraceEntry {
            src: num(0, u32::MAX as u64)? as u32,
            dst: num(1, u32::MAX as u64)? as u32,
            sport: num(2, u16::MAX as u64)? as u16,
            dport: num(3, u16::MAX as u64)? as u16,
            proto: num(4, u8::MAX as u64)? as u8,
            generated_from: num(6, u32::MAX as u64)? as u32,
        });
    }
    Ok(out)
}

/// A trace for a rule set that has none: a header inside every rule (its
/// first match may be an earlier rule) followed by a random header, for
/// every rule; the same `seed` gives the same trace.
pub fn generate_trace(rules: &[Rule], seed: u64) -> Vec<TraceEntry> {
    // xorshift64*: no dependency for a few random numbers.
    let mut state = seed.max(1);
    let mut next = move || {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        (state.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 32) as u32
    };
    let mut out = Vec::with_capacity(2 * rules.len());
    for (i, r) in rules.iter().enumerate() {
        let b = r.v4_box();
        let mut pick = |d: usize| b.lo[d].wrapping_add(((next() as u64 * (b.width[d] as u64 + 1)) >> 32) as u32);
        let (src, dst, sport, dport, proto) = (pick(0), pick(1), pick(2), pick(3), pick(4));
        out.push(TraceEntry {
            src,
            dst,
            sport: sport as u16,
            dport: dport as u16,
            proto: proto as u8,
            generated_from: i as u32,
        });
        let proto = [6, 17, 1, next() as u8][next() as usize % 4];
        out.push(TraceEntry {
            src: next(),
            dst: next(),
            sport: next() as u16,
            dport: next() as u16,
            proto,
            generated_from: u32::MAX,
        });
    }
    out
}

/// A trace in the file format (`dpdk-test-acl --tracef` reads it).
pub fn format_trace(trace: &[TraceEntry]) -> String {
    trace
        .iter()
        .map(|t| format!("{}\t{}\t{}\t{}\t{}\t0\t{}\n", t.src, t.dst, t.sport, t.dport, t.proto, t.generated_from))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULE: &str = "@10.0.0.0/8\t192.0.2.1/32\t0 : 65535\t80 : 80\t0x06/0xFF\t0x0000/0x0000\t\n";

    #[test]
    fn reads_a_rule_and_a_trace_line() {
        let r = parse_rules(RULE, Action::Deny).unwrap();
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].src, Some(Prefix { addr: "10.0.0.0".parse().unwrap(), len: 8 }));
        assert_eq!((r[0].sport, r[0].dport, r[0].proto), ((0, 65535), (80, 80), (6, 0xff)));
        let t = parse_trace("167772161\t3221225985\t1024\t80\t6\t0\t0\n").unwrap();
        assert_eq!((t[0].src, t[0].dport, t[0].generated_from), (0x0a00_0001, 80, 0));
    }

    #[test]
    fn bad_lines_are_located_and_explained() {
        let e = parse_rules(
            &format!("{RULE}@10.0.0.0/8\t192.0.2.1/33\t0 : 65535\t80 : 80\t0x06/0xFF\n{RULE}@10.0.0.0/8\t0.0.0.0/0\t0 : 65535\t90 : 80\t0x06/0xFF\n"),
            Action::Deny,
        )
        .unwrap_err();
        assert_eq!(e.len(), 2, "every bad line: {e:?}");
        assert_eq!((e[0].line, e[0].column), (2, 13));
        assert!(e[0].message.contains("prefix length 0-32"), "{}", e[0]);
        assert_eq!(e[1].line, 4);
        assert!(e[1].message.contains("90 : 80 is empty"), "{}", e[1]);
        let e = parse_trace("1 2 3 70000 6 0 1\n").unwrap_err();
        assert_eq!((e.line, e.column), (1, 7));
        assert!(e.message.contains("0-65535"), "{e}");
    }
}
