//! Targets over what an operator or a peer hands nfv as text or messages:
//! the configuration loader, ACL rule files (ClassBench and TOML), PFCP
//! messages through the N4 endpoint, frames punted to the slow path.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use nfv_acl::rule::Action;
use nfv_acl::rules_file::RulesFile;
use nfv_core::neighbour::Neighbours;
use nfv_core::slowpath::{LocalAddrs, OwnedAddr, SlowPath};

use crate::frames::{checksums_verify, records};

/// The configuration loader: a configuration loads, or every problem is
/// reported, each located inside the file, and the report renders; the
/// same text always gets the same answer.
pub fn config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let r = nfv_pipelines::registry();
    let first = nfv_core::config::load("fuzz.toml", text, &r);
    match &first {
        Ok(_) => {}
        Err(report) => {
            assert!(!report.diagnostics.is_empty(), "refused without a reason");
            for d in &report.diagnostics {
                assert!(
                    d.span.start <= d.span.end && d.span.end <= text.len().max(1),
                    "{d:?} in {} octets",
                    text.len()
                );
                assert!(!d.message.is_empty());
            }
            let rendered = report.render();
            assert!(rendered.contains("error"), "{rendered}");
        }
    }
    let again = nfv_core::config::load("fuzz.toml", text, &r);
    assert_eq!(first.as_ref().err().map(|e| e.render()), again.as_ref().err().map(|e| e.render()), "deterministic");
}

/// ACL rule files, ClassBench (the first octet even) or TOML (odd): the
/// rules and their origins pair up, and a refusal names a line and
/// column inside the text.
pub fn acl_rules(data: &[u8]) {
    let Some((&kind, rest)) = data.split_first() else { return };
    let Ok(text) = std::str::from_utf8(rest) else { return };
    let path = if kind & 1 == 0 { "fuzz.classbench" } else { "fuzz.toml" };
    let file = RulesFile { path: path.into(), action: Action::Deny };
    let ports = ["in".to_string(), "out".to_string()];
    match file.parse(text, &ports) {
        Ok((rules, origins)) => assert_eq!(rules.len(), origins.len(), "an origin per rule"),
        Err(errors) => {
            assert!(!errors.is_empty(), "refused without a reason");
            let lines = text.lines().count().max(1);
            for e in &errors {
                assert!(e.line >= 1 && e.line <= lines + 1, "line {} of {lines}: {}", e.line, e.message);
                assert!(!e.message.is_empty());
            }
        }
    }
}

/// PFCP (TS 29.244) through the N4 endpoint, messages as length-prefixed
/// records from the SMF (port bit 0) or a stranger (1; `smf` names only
/// the SMF): each answer is a PFCP message of version 1 whose length
/// field is its length, bearing the request's sequence number; a
/// stranger gets no answer and is counted; and after anything, the
/// endpoint still answers a heartbeat.
pub fn pfcp(data: &[u8]) {
    use nfv_upf::pfcp::PfcpEndpoint;
    let mut n4 = PfcpEndpoint::bind("127.0.0.1:0".parse().unwrap(), Ipv4Addr::new(10, 10, 0, 1)).expect("a socket");
    let table = nfv_core::published::Published::new(nfv_upf::rules::Sessions::default());
    n4.serve_sessions(table, Vec::new(), (Ipv4Addr::new(10, 10, 0, 1), None), nfv_upf::usage::Usage::new(64));
    let smf: SocketAddr = "127.0.0.2:8805".parse().unwrap();
    let stranger: SocketAddr = "127.0.0.9:8805".parse().unwrap();
    n4.accept_only(vec![smf.ip()]);
    for r in records(data) {
        let m = &r.data;
        if r.port == 1 {
            let refused = n4.counters.refused_peers;
            assert_eq!(n4.answer(m, stranger), None, "a stranger is not answered");
            assert_eq!(n4.counters.refused_peers, refused + 1, "and is counted");
            continue;
        }
        let Some(a) = n4.answer(m, smf) else { continue };
        assert!(a.len() >= 8 && a[0] >> 5 == 1, "a PFCP answer: {a:02x?}");
        assert_eq!(u16::from_be_bytes([a[2], a[3]]) as usize + 4, a.len(), "its length field (7.2.2.4)");
        // 7.2.2.1: the sequence number follows the SEID when S is set.
        let seq = |h: &[u8]| {
            let at = if h[0] & 1 != 0 { 12 } else { 4 };
            h.get(at..at + 3).map(|s| [s[0], s[1], s[2]])
        };
        if m.len() >= 8 && m[0] >> 5 == 1 {
            assert_eq!(seq(&a), seq(m), "an answer bears its request's sequence number");
        }
    }
    let heartbeat = [0x20, 1, 0, 12, 0xff, 0xff, 0xf0, 0, 0, 96, 0, 4, 0xe8, 0x75, 0x8a, 0x00];
    let r = n4.answer(&heartbeat, smf).expect("a heartbeat answered after anything");
    assert_eq!(r[1], 2, "a Heartbeat Response");
}

/// The slow path's ARP, ND and ICMP handling (punted frames as records):
/// each frame gets one answer or is counted ignored, never both; every
/// answer is a frame a peer accepts (checksums by etherparse) out of the
/// port the frame came in on.
pub fn slowpath(data: &[u8]) {
    let owned = |a: &str, prefix: u8| OwnedAddr { addr: a.parse::<IpAddr>().unwrap(), prefix };
    let local = LocalAddrs {
        ports: vec![
            ([2, 0, 0, 0, 0xf, 0], vec![owned("10.0.0.254", 24), owned("fd00::1", 64)]),
            ([2, 0, 0, 0, 0xf, 1], vec![owned("198.51.100.254", 24), owned("2001:db8::1", 64)]),
        ],
    };
    let mut sp = SlowPath::new(local, Neighbours::new([]));
    let c = sp.counters.clone();
    let answers = || c.arp_replies.get() + c.echo_replies.get() + c.nd_adverts.get() + c.time_exceeded.get();
    for r in records(data) {
        let (before, ignored) = (answers(), c.ignored.get());
        let out = sp.handle(r.port, &r.data);
        assert!(out.len() <= 1, "one answer at most");
        match out.first() {
            Some(f) => {
                assert_eq!((answers(), c.ignored.get()), (before + 1, ignored), "an answer counted as one");
                assert_eq!(f.port, r.port, "answered where it came from");
                if let Err(e) = checksums_verify(&f.data) {
                    panic!("an answer a peer refuses: {e}: {:02x?}", f.data);
                }
            }
            None => assert_eq!((answers(), c.ignored.get()), (before, ignored + 1), "counted as ignored"),
        }
    }
}
