//! The `upf` stage with a static session, against scapy (an independent
//! GTP-U implementation, `scapy.contrib.gtp`): scapy's uplink G-PDU
//! (PDU Session Container, QFI 9) comes out on N6 as the inner packet
//! scapy put in; our downlink G-PDU decodes in scapy to the session's
//! TEID and QFI around the packet sent; scapy's Echo Request is answered;
//! every drop named; bad parameters located.

mod common;

use common::*;
use etherparse::{NetSlice, SlicedPacket};
use nfv_core::packet::VerdictKind;
use nfv_testkit::two_port_config;

const UPF: &str = "{ kind = \"upf\", n3 = \"n3\", n3-address = \"10.10.0.1\", n6 = \"n6\", n6-gateway = \"198.51.100.1\", \
                   sessions = [{ seid = 1, ue = \"10.45.0.7\", uplink-teid = 4660, gnb = \"10.10.0.2\", downlink-teid = 43981, qfi = 5 }] }";

// By scapy 2.5 (IP and UDP included): an uplink G-PDU, TEID 0x1234, PDU
// Session Container UL QFI 9, inner UDP 10.45.0.7:4000 -> 198.51.100.9:53;
// an Echo Request, sequence 7.
const UL: &str = "4500004a000100004011668c0a0a00020a0a0001086808680036bd3934ff00260000123400000085011009004500001e000100004011465e0a2d0007c63364090fa00035000a532b6869";
const ECHO: &str = "4500002800010000401166ae0a0a00020a0a0001086808680014a8d3320100040000000000070000";

#[test]
fn scapys_uplink_comes_out_on_n6_as_the_inner_packet() {
    let mut u = Upf::new(UPF);
    let ul = unhex(UL);
    let (v, out) = u.run(N3, &eth(OUR_N3, GNB_MAC, &ul));
    assert_eq!(v, "out:1");
    assert_eq!((&out[0..6], &out[6..12], &out[12..14]), (&GW_MAC[..], &OUR_N6[..], &[8u8, 0][..]));
    assert_eq!(&out[14..], &ul[44..], "the inner packet scapy put in, untouched");
}

#[test]
fn our_downlink_decodes_in_scapy_to_the_sessions_tunnel_and_qfi() {
    let mut u = Upf::new(UPF);
    let f = to_ue([10, 45, 0, 7], 4000, b"answer");
    let (v, out) = u.run(N6, &f);
    assert_eq!((v.as_str(), &out[0..6], &out[6..12]), ("out:0", &GNB_MAC[..], &OUR_N3[..]));
    let p = SlicedPacket::from_ethernet(&out).unwrap();
    let Some(NetSlice::Ipv4(ip)) = &p.net else { panic!() };
    let h = ip.header().to_header();
    assert_eq!(h.header_checksum, h.calc_header_checksum(), "outer IP checksum");
    assert_eq!((h.source, h.destination), ([10, 10, 0, 1], [10, 10, 0, 2]));
    let Some(got) = scapy_reads(
        &out,
        "p[UDP].dport, p[GTP_U_Header].teid, p[GTP_U_Header].gtp_type, p[GTPPDUSessionContainer].type, p[GTPPDUSessionContainer].QFI, bytes(p[GTPPDUSessionContainer].payload).hex()",
    ) else {
        return;
    };
    assert_eq!(got, format!("2152 43981 255 0 5 {}", hex(&f[14..])), "port, TEID, G-PDU, DL, QFI, inner packet");
}

#[test]
fn scapys_echo_request_is_answered() {
    let mut u = Upf::new(UPF);
    let echo = unhex(ECHO);
    let (v, out) = u.run(N3, &eth(OUR_N3, GNB_MAC, &echo));
    assert_eq!((v.as_str(), &out[0..6]), ("out:0", &GNB_MAC[..]));
    let p = SlicedPacket::from_ethernet(&out).unwrap();
    let Some(NetSlice::Ipv4(ip)) = &p.net else { panic!() };
    let h = ip.header().to_header();
    assert_eq!(h.header_checksum, h.calc_header_checksum());
    assert_eq!((h.source, h.destination), ([10, 10, 0, 1], [10, 10, 0, 2]), "back to the sender");
    let Some(got) = scapy_reads(
        &out,
        "p[GTP_U_Header].gtp_type, p[GTP_U_Header].seq, p[GTPEchoResponse].IE_list[0].ietype, p[GTPEchoResponse].IE_list[0].restart_counter",
    ) else {
        return;
    };
    assert_eq!(got, "2 7 14 0", "Echo Response, the request's sequence, Recovery 0");
}

/// A static session's downlink MBR (a QER's, TS 29.244 5.4.5): a
/// tenth of a second's worth (three full frames at least) passes at
/// once, then the rate: 80 kbit/s is 10,000 bytes a second.
#[test]
fn a_maximum_bit_rate_holds_the_downlink_to_its_rate() {
    let mut u = Upf::new(&UPF.replace("qfi = 5 }", "qfi = 5, mbr-dl = 80 }"));
    let f = to_ue([10, 45, 0, 7], 4000, &[0; 972]);
    assert_eq!(f.len() - 14, 1000, "1000-byte packets");
    let ticks_per_sec = nfv_core::cycles::ticks_per_ns() * 1e9;
    let passed = |u: &mut Upf, at_secs: f64, n: usize| {
        u.runner.now_ticks = (at_secs * ticks_per_sec) as u64 + 1;
        (0..n).filter(|_| u.run(N6, &f).0 == "out:0").count()
    };
    assert_eq!(passed(&mut u, 1.0, 10), 3, "the burst: 3000 bytes");
    // (Times a hair past the even ones: tick counts are whole.)
    assert_eq!(passed(&mut u, 1.2001, 10), 2, "0.2 s later: 2000 bytes more");
    assert_eq!(passed(&mut u, 11.2001, 10), 3, "10 s idle: the burst again, not 100,000 bytes");
    let sent: usize = (1..=50).map(|i| passed(&mut u, 11.2001 + i as f64 * 0.1001, 5)).sum();
    assert_eq!(sent, 50, "5 s at 10,000 bytes a second: 50 packets of 1000");
    assert!(u.run(N6, &f).0 == "mbr-exceeded");
}

/// A short downlink frame's Ethernet padding stays out of the tunnel (it
/// is not the UE's packet, nor its usage).
#[test]
fn ethernet_padding_is_not_tunnelled() {
    let mut u = Upf::new(UPF);
    let mut f = to_ue([10, 45, 0, 7], 4000, b"");
    assert_eq!(f.len(), 14 + 28);
    f.resize(60, 0);
    let (v, out) = u.run(N6, &f);
    assert_eq!(v, "out:0");
    // IPv4 20 + UDP 8 + GTP-U with its PDU Session Container 16 + 28.
    assert_eq!((out.len(), u16::from_be_bytes([out[16], out[17]])), (14 + 72, 72));
    assert_eq!(&out[14 + 44..], &f[14..42], "the UE's packet, no more");
}

/// A G-PDU for a TEID we do not know gets an Error Indication (TS 29.281
/// 7.3.1) back to its sender, as scapy reads it: TEID Data I names the
/// tunnel, the GTP-U peer address is ours.
#[test]
fn an_unknown_tunnel_gets_an_error_indication() {
    let mut u = Upf::new(UPF);
    let mut f = eth(OUR_N3, GNB_MAC, &unhex(UL));
    f[14 + 28 + 4..14 + 28 + 8].copy_from_slice(&0x0bad_beefu32.to_be_bytes());
    // From another source port (its UDP checksum cleared: optional over
    // IPv4): the Error Indication still goes to port 2152 (TS 29.281
    // 4.4.2.4).
    f[14 + 20..14 + 22].copy_from_slice(&40000u16.to_be_bytes());
    f[14 + 26..14 + 28].copy_from_slice(&[0, 0]);
    let (v, out) = u.run(N3, &f);
    assert_eq!((v.as_str(), &out[0..6]), ("out:0", &GNB_MAC[..]));
    let p = SlicedPacket::from_ethernet(&out).unwrap();
    let Some(NetSlice::Ipv4(ip)) = &p.net else { panic!() };
    let h = ip.header().to_header();
    assert_eq!(h.header_checksum, h.calc_header_checksum());
    assert_eq!((h.source, h.destination), ([10, 10, 0, 1], [10, 10, 0, 2]));
    let Some(got) = scapy_reads(
        &out,
        "p[UDP].sport, p[UDP].dport, p[GTP_U_Header].gtp_type, p[GTP_U_Header].teid, hex(p[IE_TEIDI].TEIDI), \
         p[IE_GSNAddress].ipv4_address",
    ) else {
        return;
    };
    assert_eq!(
        got, "2152 2152 26 0 0xbadbeef 10.10.0.1",
        "Error Indication to port 2152, TEID Data I, GTP-U peer address"
    );
    assert!(u.stage.report().unwrap().contains("error-indications 1"));
}

/// scapy's frame of expression `expr` (None after saying why, when scapy
/// is missing outside CI).
fn scapy_frame(expr: &str) -> Option<Vec<u8>> {
    let zero = [0u8; 14];
    scapy_reads(&zero, &format!("({expr}).build().hex()")).map(|h| unhex(&h))
}

/// The UPF with an IPv6 underlay (our N3 address fd00::1), its session's
/// gNB at fd00::2.
fn upf6() -> Upf {
    Upf::new(
        &UPF.replace("n6 = \"n6\"", "n3-address6 = \"fd00::1\", n6 = \"n6\"").replace("\"10.10.0.2\"", "\"fd00::2\""),
    )
}

/// GTP-U over IPv6 (the underlay TS 29.281 4.3 allows), against scapy:
/// its uplink G-PDU over IPv6 comes out on N6 as the inner packet; our
/// downlink goes out over IPv6 to the gNB with a valid UDP checksum (RFC
/// 8200 8.1), the session's TEID and QFI; its Echo Request over IPv6 is
/// answered over IPv6; an unknown TEID's Error Indication names our IPv6
/// address.
#[test]
fn gtpu_over_ipv6_both_ways_against_scapy_reads() {
    const ETH: &str = "Ether(dst='02:00:00:00:03:03', src='02:00:00:00:00:9b')";
    const OUTER: &str = "IPv6(src='fd00::2', dst='fd00::1') / UDP(sport=2152, dport=2152)";
    let mut u = upf6();
    let inner = "IP(src='10.45.0.7', dst='198.51.100.9') / UDP(sport=4000, dport=53) / b'over six'";
    let expr = format!(
        "{ETH} / {OUTER} / GTP_U_Header(teid=4660, next_ex=0x85) / GTPPDUSessionContainer(type=1, QFI=9) / {inner}"
    );
    let Some(ul) = scapy_frame(&expr) else { return };
    let (v, out) = u.run(N3, &ul);
    assert_eq!(v, "out:1");
    assert_eq!(&out[14..], &ul[ul.len() - (out.len() - 14)..], "the inner packet scapy put in");
    assert_eq!(&out[14 + 12..14 + 16], &[10, 45, 0, 7]);

    let down = to_ue([10, 45, 0, 7], 4000, b"answer");
    let (v, out) = u.run(N6, &down);
    assert_eq!((v.as_str(), &out[0..6], &out[12..14]), ("out:0", &GNB_MAC[..], &[0x86u8, 0xdd][..]));
    let got = scapy_reads(
        &out,
        "p[IPv6].src, p[IPv6].dst, p[UDP].dport, p[GTP_U_Header].teid, p[GTPPDUSessionContainer].QFI, \
         bytes(p[GTPPDUSessionContainer].payload).hex(), (lambda c: (setattr(p[UDP], 'chksum', None), \
         Ether(bytes(p))[UDP].chksum == c)[1])(p[UDP].chksum)",
    );
    let want = format!("fd00::1 fd00::2 2152 43981 5 {} True", hex(&down[14..]));
    assert_eq!(got.unwrap(), want, "addresses, port, TEID, QFI, the packet sent, the UDP checksum over IPv6");

    let echo =
        scapy_frame(&format!("{ETH} / {OUTER} / GTP_U_Header(gtp_type=1, S=1, seq=9) / GTPEchoRequest()")).unwrap();
    let (v, out) = u.run(N3, &echo);
    assert_eq!(v, "out:0");
    let got = scapy_reads(
        &out,
        "p[IPv6].src, p[IPv6].dst, p[GTP_U_Header].gtp_type, p[GTP_U_Header].seq,         (lambda c: (setattr(p[UDP], 'chksum', None), Ether(bytes(p))[UDP].chksum == c)[1])(p[UDP].chksum)",
    );
    assert_eq!(got.as_deref(), Some("fd00::1 fd00::2 2 9 True"), "Echo Response over IPv6");

    let stale = format!("{ETH} / {OUTER} / GTP_U_Header(teid=0xbadbeef) / {inner}");
    let (v, out) = u.run(N3, &scapy_frame(&stale).unwrap());
    assert_eq!(v, "out:0");
    let got = scapy_reads(
        &out,
        "p[GTP_U_Header].gtp_type, hex(p[IE_TEIDI].TEIDI), p[IE_GSNAddress].ipv6_address,         (lambda c: (setattr(p[UDP], 'chksum', None), Ether(bytes(p))[UDP].chksum == c)[1])(p[UDP].chksum)",
    );
    assert_eq!(got.as_deref(), Some("26 0xbadbeef fd00::1 True"), "Error Indication over IPv6");
}

/// An IPv6 PDU session (TS 23.501 5.8.2.2: the UE's /64): scapy's
/// G-PDU carrying IPv6 from the UE's prefix comes out on N6 as that IPv6
/// packet; from another prefix it matches no PDR; IPv6 from the data
/// network to the prefix goes into the session's tunnel, as scapy reads
/// it; to another prefix it is an unknown UE.
#[test]
fn an_ipv6_pdu_session_both_ways_against_scapy() {
    let mut u = Upf::new(&UPF.replace("ue = \"10.45.0.7\",", "ue = \"10.45.0.7\", ue6 = \"2001:db8:45:7::1\","));
    let gpdu = |src: &str| {
        format!(
            "Ether(dst='02:00:00:00:03:03', src='02:00:00:00:00:9b') / IP(src='10.10.0.2', dst='10.10.0.1') / \
             UDP(sport=2152, dport=2152) / GTP_U_Header(teid=4660, next_ex=0x85) / GTPPDUSessionContainer(type=1, QFI=9) / \
             IPv6(src='{src}', dst='2001:db8::53') / UDP(sport=4000, dport=53) / b'six'"
        )
    };
    let Some(ul) = scapy_frame(&gpdu("2001:db8:45:7::1")) else { return };
    let (v, out) = u.run(N3, &ul);
    assert_eq!((v.as_str(), &out[12..14]), ("out:1", &[0x86u8, 0xdd][..]), "IPv6 out on N6");
    assert_eq!(&out[14..], &ul[ul.len() - (out.len() - 14)..], "the inner packet scapy put in");
    assert_eq!(out.len() - 14, 40 + 8 + 3);
    assert_eq!(u.run(N3, &scapy_frame(&gpdu("2001:db8:99::1")).unwrap()).0, "no-pdr", "not the UE's prefix");

    let down = |dst: &str| {
        scapy_frame(&format!(
            "Ether(dst='02:00:00:00:06:06', src='02:00:00:00:00:66') / IPv6(src='2001:db8::53', dst='{dst}') / \
             UDP(sport=53, dport=4000) / b'answer6'"
        ))
        .unwrap()
    };
    let (v, out) = u.run(N6, &down("2001:db8:45:7::1"));
    assert_eq!(v, "out:0");
    let got = scapy_reads(
        &out,
        "p[GTP_U_Header].teid, p[GTPPDUSessionContainer].QFI, p[GTPPDUSessionContainer].payload.dst, \
         bytes(p[GTPPDUSessionContainer].payload[UDP].payload)",
    );
    assert_eq!(got.as_deref(), Some("43981 5 2001:db8:45:7::1 b'answer6'"), "TEID, QFI, the IPv6 packet");
    assert_eq!(u.run(N6, &down("2001:db8:46::1")).0, "unknown-ue");
}

/// A gNB the neighbour table lacks (at set-up, right after a handover):
/// the downlink is held, not lost, and the gNB asked for once; resolved,
/// the held packets leave first, in order, to its MAC. Behind an N3
/// gateway, an off-link gNB's tunnel goes to the gateway's MAC.
#[test]
fn an_unresolved_gnb_is_asked_for_and_an_n3_gateway_carries_off_link_ones() {
    let down = |b: &[u8]| to_ue([10, 45, 0, 7], 4000, b);
    let mut u = Upf::new(&UPF.replace("gnb = \"10.10.0.2\"", "gnb = \"10.10.0.3\""));
    u.runner.now_ticks = 1;
    assert_eq!(u.run(N6, &down(b"1")).0, "Held");
    assert_eq!(u.run(N6, &down(b"2")).0, "Held");
    assert_eq!(u.runner.requested(), vec![std::net::IpAddr::from([10, 10, 0, 3])], "asked once");
    assert!(u.runner.release().is_empty(), "nothing resolved yet");
    let other_gnb = [2, 0, 0, 0, 0, 0x9c];
    u.runner.learn([10, 10, 0, 3].into(), other_gnb, N3);
    let released = u.runner.release();
    let seen: Vec<_> =
        released.iter().map(|(v, _, f)| (*v, f[0..6].to_vec(), f[30..34].to_vec(), f[f.len() - 1])).collect();
    let one = |b: u8| (VerdictKind::Out(N3), other_gnb.to_vec(), vec![10, 10, 0, 3], b);
    assert_eq!(seen, vec![one(b'1'), one(b'2')], "both, in order, into the tunnel to the gNB's MAC");
    let (v, out) = u.run(N6, &down(b"3"));
    assert_eq!((v.as_str(), &out[0..6], &out[30..34]), ("out:0", &other_gnb[..], &[10u8, 10, 0, 3][..]));
    let routed = UPF.replace("gnb = \"10.10.0.2\"", "gnb = \"10.20.0.9\"");
    let routed = routed.replace("n6-gateway", "n3-gateway = \"10.10.0.2\", n6-gateway");
    // The gateway is the next hop kept resolved, not the off-link gNB
    // (which no port's subnet holds: asking for it would refuse the run).
    let cfg = two_port_config("upf.toml", ["n3", "n6"], &routed, nfv_upf::register).unwrap();
    let wanted = cfg.chains[0].stages[0].builder.wanted_neighbours();
    assert!(wanted.contains(&[10, 10, 0, 2].into()) && !wanted.contains(&[10, 20, 0, 9].into()), "{wanted:?}");
    let mut u = Upf::new(&routed);
    let (v, out) = u.run(N6, &down(b"x"));
    assert_eq!(
        (v.as_str(), &out[0..6], &out[30..34]),
        ("out:0", &GNB_MAC[..], &[10u8, 20, 0, 9][..]),
        "to the gateway"
    );
    assert!(u.runner.requested().is_empty());
}

#[test]
fn drops_are_named() {
    let mut u = Upf::new(UPF);
    let ul = unhex(UL);
    let mut other_teid = eth(OUR_N3, GNB_MAC, &ul);
    other_teid[14 + 28 + 7] = 0x99;
    // 100 Error Indications a second, then drops.
    u.runner.now_ticks = 1;
    for _ in 0..100 {
        assert_eq!(u.run(N3, &other_teid).0, "out:0");
    }
    assert_eq!(u.run(N3, &other_teid).0, "unknown-teid");
    let mut bad = eth(OUR_N3, GNB_MAC, &ul);
    bad[14 + 28] = 0x54;
    assert_eq!(u.run(N3, &bad).0, "malformed-gtpu");
    let mut elsewhere = eth(OUR_N3, GNB_MAC, &ul);
    elsewhere[14 + 22..14 + 24].copy_from_slice(&2153u16.to_be_bytes());
    assert_eq!(u.run(N3, &elsewhere).0, "not-gtpu");
    let mut end = eth(OUR_N3, GNB_MAC, &ul);
    end[14 + 29] = 254;
    assert_eq!(u.run(N3, &end).0, "end-marker");
    let f = to_ue([10, 45, 0, 8], 4000, b"x");
    assert_eq!(u.run(N6, &f).0, "unknown-ue");
    let mut arp = f.clone();
    arp[12..14].copy_from_slice(&[8, 6]);
    assert_eq!(u.run(N6, &arp).0, "not-ipv4");
    assert!(u.stage.report().unwrap().contains("sessions 1"));
}

#[test]
fn bad_parameters_are_refused_at_their_place() {
    let e = two_port_config("upf.toml", ["n3", "n6"], &UPF.replace("n6 = \"n6\"", "n6 = \"n3\""), nfv_upf::register)
        .unwrap_err();
    assert!(e.contains("N3 and N6 are one port") && e.contains("upf.toml:"), "{e}");
    let twice = UPF.replace(
        "qfi = 5 }]",
        "qfi = 5 }, { seid = 2, ue = \"10.45.0.9\", uplink-teid = 4660, gnb = \"10.10.0.2\", downlink-teid = 1 }]",
    );
    let e = two_port_config("upf.toml", ["n3", "n6"], &twice, nfv_upf::register).unwrap_err();
    assert!(e.contains("TEID 0x1234 twice"), "{e}");
    let e =
        two_port_config("upf.toml", ["n3", "n6"], &UPF.replace("qfi = 5", "qfi = 64"), nfv_upf::register).unwrap_err();
    assert!(e.contains("QFI above 63"), "{e}");
}

#[test]
fn a_reload_replaces_the_static_sessions_of_a_upf_without_n4_and_refuses_with_n4() {
    let cfg = Upf::config(UPF);
    let mut u = Upf::of(&cfg);
    let r = nfv_testkit::reloader(&cfg, nfv_upf::register);
    let file = std::env::temp_dir().join(format!("nfv-upf-reload-{}.toml", std::process::id()));
    let text = r.running().source.1.to_string();
    // The UE moves to downlink TEID 0xbeef.
    std::fs::write(&file, text.replace("downlink-teid = 43981", "downlink-teid = 48879")).unwrap();
    let lines = r.reload(Some(&file)).unwrap();
    assert_eq!(lines[1], "stage `c/upf`: sessions version 1: 1 static sessions", "{lines:?}");
    let (v, out) = u.run(N6, &to_ue([10, 45, 0, 7], 4000, b"answer"));
    assert_eq!(v, "out:0");
    assert_eq!(&out[14 + 20 + 8 + 4..14 + 20 + 8 + 8], &0xbeef_u32.to_be_bytes(), "the new downlink TEID");
    std::fs::write(&file, text.replace("n6-gateway = \"198.51.100.1\"", "n6-gateway = \"198.51.100.2\"")).unwrap();
    assert_eq!(
        r.reload(Some(&file)).unwrap_err()[0],
        "stage `c/upf`: n6-gateway: \"198.51.100.1\" -> \"198.51.100.2\""
    );

    let with_n4 = UPF.replace("n6-gateway", "n4 = \"127.0.0.1:0\", n6-gateway");
    let cfg = Upf::config(&with_n4);
    let r = nfv_testkit::reloader(&cfg, nfv_upf::register);
    let text = r.running().source.1.to_string();
    std::fs::write(&file, text.replace("downlink-teid = 43981", "downlink-teid = 48879")).unwrap();
    let lines = r.reload(Some(&file)).unwrap_err();
    assert!(
        lines[0].starts_with("stage `c/upf`: sessions: static sessions change live only without `n4`"),
        "{lines:?}"
    );
    let _ = std::fs::remove_file(&file);
}
