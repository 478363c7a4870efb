//! The `acl` stage on frames built by etherparse: first match wins, the
//! default action, TCP flags, ingress ports, IPv6, ICMP type/code, and
//! non-IP frames; every drop named. Bad rules are refused with the rule's
//! file:line:column.

mod common;

use common::{acl, load, run, tcp};
use etherparse::PacketBuilder;

fn udp6(dst_last: u8, dport: u16) -> Vec<u8> {
    let mut f = Vec::new();
    let mut dst = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    dst[15] = dst_last;
    PacketBuilder::ethernet2([2, 0, 0, 0, 0, 9], [2, 0, 0, 0, 0, 1])
        .ipv6([0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1], dst, 64)
        .udp(5000, dport)
        .write(&mut f, b"x")
        .unwrap();
    f
}

const RULES: &str = r#"stages = [{ kind = "acl", default = "deny", rules = [
    { action = "deny", src = "10.0.0.66", proto = "tcp" },
    { action = "permit", src = "10.0.0.0/8", proto = "tcp", dst-port = "80" },
    { action = "deny", proto = "tcp", tcp-flags = ["syn", "!ack"], ingress = "in1" },
    { action = "permit", proto = "tcp", ingress = "in1" },
    { action = "permit", dst = "2001:db8::/64", proto = "udp", dst-port = "5000-5010" },
    { action = "permit", proto = "icmp", src-port = 8 },
] }]
"#;

#[test]
fn first_match_wins_and_the_rest_takes_the_default() {
    let (cfg, mut s) = acl(RULES);
    let frames = [
        tcp([10, 0, 0, 1], [192, 0, 2, 1], 80, true, false),  // rule 1
        tcp([10, 0, 0, 66], [192, 0, 2, 1], 80, true, false), // rule 0 first
        tcp([10, 0, 0, 1], [192, 0, 2, 1], 81, true, false),  // no rule for in0
        tcp([11, 0, 0, 1], [192, 0, 2, 1], 80, true, false),  // outside 10/8
    ];
    assert_eq!(run(&cfg, s.as_mut(), 0, &frames), ["pass", "denied-by-rule", "default-deny", "default-deny"]);
    // Ingress in1: a bare SYN is denied, SYN+ACK and ACK pass.
    let frames = [
        tcp([11, 0, 0, 1], [192, 0, 2, 1], 22, true, false),
        tcp([11, 0, 0, 1], [192, 0, 2, 1], 22, true, true),
        tcp([11, 0, 0, 1], [192, 0, 2, 1], 22, false, true),
    ];
    assert_eq!(run(&cfg, s.as_mut(), 1, &frames), ["denied-by-rule", "pass", "pass"]);
    // IPv6: prefix and port range.
    let frames = [udp6(5, 5000), udp6(5, 5011), udp6(5, 4999)];
    assert_eq!(run(&cfg, s.as_mut(), 0, &frames), ["pass", "default-deny", "default-deny"]);
    // ICMP echo request (type 8) passes, echo reply (type 0) does not.
    let icmp = |t: etherparse::Icmpv4Type| {
        let mut f = Vec::new();
        PacketBuilder::ethernet2([2; 6], [3; 6])
            .ipv4([1, 1, 1, 1], [2, 2, 2, 2], 64)
            .icmpv4(t)
            .write(&mut f, b"p")
            .unwrap();
        f
    };
    let echo = etherparse::IcmpEchoHeader { id: 1, seq: 1 };
    let frames = [icmp(etherparse::Icmpv4Type::EchoRequest(echo)), icmp(etherparse::Icmpv4Type::EchoReply(echo))];
    assert_eq!(run(&cfg, s.as_mut(), 0, &frames), ["pass", "default-deny"]);
    // ARP passes by default (non-ip = "permit").
    let mut arp = vec![0xff; 6];
    arp.extend_from_slice(&[2, 0, 0, 0, 0, 9, 0x08, 0x06]);
    arp.extend_from_slice(&[0, 1, 8, 0, 6, 4, 0, 1, 2, 0, 0, 0, 0, 9, 10, 0, 0, 1, 0, 0, 0, 0, 0, 0, 10, 0, 0, 2]);
    assert_eq!(run(&cfg, s.as_mut(), 0, &[arp]), ["pass"]);
    let report = s.report().unwrap();
    assert!(report.contains("rule rules[1] Permit: 1 packets"), "{report}");
    assert!(report.contains("default Deny: 5 packets"), "{report}");
    assert!(report.contains("rule rules[5] Permit: 1 packets"), "{report}");
}

#[test]
fn bad_rules_are_refused_at_their_place_with_a_fix() {
    let bad = RULES.replace("src = \"10.0.0.0/8\"", "src = \"10.0.0.0/33\"");
    let e = load(&bad).unwrap_err();
    assert!(e.contains("prefix length 33 is past 32"), "{e}");
    assert!(e.contains("acl.toml:18:5"), "the second rule's line:\n{e}");
    let e = load(&RULES.replace(
        "ingress = \"in1\" },\n    { action = \"permit\", proto",
        "ingress = \"in9\" },\n    { action = \"permit\", proto",
    ))
    .unwrap_err();
    assert!(e.contains("no port named `in9`") && e.contains("known ports: in0, in1, out"), "{e}");
    let e = load(&RULES.replace("tcp-flags = [\"syn\", \"!ack\"]", "tcp-flags = [\"sin\"]")).unwrap_err();
    assert!(e.contains("unknown TCP flag `sin`"), "{e}");
    let e = load(&RULES.replace(
        "action = \"permit\", src = \"10.0.0.0/8\", proto = \"tcp\",",
        "action = \"permit\", src = \"10.0.0.0/8\",",
    ))
    .unwrap_err();
    assert!(e.contains("`dst-port` without a protocol that has ports"), "{e}");
    let e = load(&RULES.replace("action = \"deny\", src = \"10.0.0.66\"", "action = \"drop\", src = \"10.0.0.66\""))
        .unwrap_err();
    assert!(e.contains("unknown variant `drop`"), "{e}");
}

#[test]
fn a_classbench_rules_file_loads_after_the_toml_rules() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/classbench/acl1_1k");
    let stage = format!(
        "stages = [{{ kind = \"acl\", default = \"permit\", rules-file = \"{}\", rules-file-action = \"deny\" }}]\n",
        path.display()
    );
    let (cfg, mut s) = acl(&stage);
    // The trace's first line (rule 261 of the file) is denied.
    let f = {
        let mut f = Vec::new();
        PacketBuilder::ethernet2([2; 6], [3; 6])
            .ipv4(1923697128u32.to_be_bytes(), 2273746465u32.to_be_bytes(), 64)
            .tcp(0, 1221, 1, 1000)
            .write(&mut f, &[])
            .unwrap();
        f
    };
    assert_eq!(run(&cfg, s.as_mut(), 0, &[f]), ["denied-by-rule"]);
    assert!(s.report().unwrap().contains("acl1_1k:262 Deny: 1 packets"));
    let e = load("stages = [{ kind = \"acl\", rules-file = \"/nonexistent\" }]\n").unwrap_err();
    assert!(e.contains("cannot read `/nonexistent`"), "{e}");
}

fn packet(
    src: [u8; 4],
    dst: [u8; 4],
    l4: impl FnOnce(etherparse::PacketBuilderStep<etherparse::IpHeaders>) -> Vec<u8>,
) -> Vec<u8> {
    l4(PacketBuilder::ethernet2([2, 0, 0, 0, 0, 9], [2, 0, 0, 0, 0, 1]).ipv4(src, dst, 64))
}

#[test]
fn permit_reflect_lets_replies_back_and_nothing_else() {
    let (cfg, mut s) = acl(
        "stages = [{ kind = \"acl\", default = \"deny\", rules = [{ action = \"permit-reflect\", ingress = \"in0\" }] }]\n",
    );
    let (inside, outside) = ([10, 0, 0, 1], [10, 0, 0, 2]);
    let tcp = |src, dst, sport, dport, flags: &str| {
        packet(src, dst, |b| {
            let mut t = b.tcp(sport, dport, 1, 1000);
            if flags.contains('S') {
                t = t.syn();
            }
            if flags.contains('A') {
                t = t.ack(1);
            }
            let mut f = Vec::new();
            t.write(&mut f, &[]).unwrap();
            f
        })
    };
    let udp = |src, dst, sport, dport| {
        packet(src, dst, |b| {
            let mut f = Vec::new();
            b.udp(sport, dport).write(&mut f, b"q").unwrap();
            f
        })
    };
    let echo = |src, dst, request: bool, id| {
        packet(src, dst, |b| {
            let h = etherparse::IcmpEchoHeader { id, seq: 1 };
            let t = if request { etherparse::Icmpv4Type::EchoRequest(h) } else { etherparse::Icmpv4Type::EchoReply(h) };
            let mut f = Vec::new();
            b.icmpv4(t).write(&mut f, b"p").unwrap();
            f
        })
    };
    // Outbound from in0: TCP SYN, UDP, ping.
    let out = [tcp(inside, outside, 40000, 80, "S"), udp(inside, outside, 5000, 53), echo(inside, outside, true, 7)];
    assert_eq!(run(&cfg, s.as_mut(), 0, &out), ["pass", "pass", "pass"]);
    // Their replies on in1 pass; unsolicited traffic on in1 does not.
    let back = [
        tcp(outside, inside, 80, 40000, "SA"),
        udp(outside, inside, 53, 5000),
        echo(outside, inside, false, 7),
        tcp(outside, inside, 81, 40000, "SA"),
        tcp(outside, inside, 40000, 22, "S"),
        udp(outside, inside, 53, 5001),
        echo(outside, inside, false, 8),
        echo(outside, inside, true, 7),
    ];
    let got = run(&cfg, s.as_mut(), 1, &back);
    assert_eq!(got[..3], ["pass", "pass", "pass"]);
    assert!(got[3..].iter().all(|v| v == "default-deny"), "{got:?}");
    let report = s.report().unwrap();
    assert!(
        report.contains("reflect flows 3 (created 3 expired 0 refused-full 0), packets passed by a flow 3"),
        "{report}"
    );
}
