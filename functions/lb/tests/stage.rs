//! The `lb` stage on frames built by etherparse, its output decoded by
//! etherparse: DSR and IP-in-IP forwarding, spread by weight, connections
//! kept across backend changes (added, drained, removed through the
//! backends file), ICMP "fragmentation needed" to the flow's backend, the
//! backends' answers routed back, every drop named, bad parameters
//! refused at their place.

use std::collections::HashMap;

use etherparse::{IpNumber, NetSlice, PacketBuilder, SlicedPacket, TransportSlice};
use nfv_core::config::Config;
use nfv_core::packet::VerdictKind;
use nfv_core::reload::Reloader;
use nfv_core::{BuildCtx, Stage};
use nfv_testkit::{FrameRunner, two_port_config};

const CLIENT_PORT: u16 = 0;
const BACKEND_PORT: u16 = 1;
const VIP: [u8; 4] = [192, 0, 2, 10];
const CLIENT: [u8; 4] = [203, 0, 113, 7];
const OUR_C: [u8; 6] = [2, 0, 0, 0, 1, 0];
const OUR_B: [u8; 6] = [2, 0, 0, 0, 1, 1];
const MAC_CLIENT: [u8; 6] = [2, 0, 0, 0, 0, 0xc];

fn backend(last: u8) -> [u8; 4] {
    [10, 1, 0, last]
}

fn backend_mac(last: u8) -> [u8; 6] {
    [2, 0, 0, 0, 0xb, last]
}

fn load(stage: &str) -> Result<Config, String> {
    two_port_config("lb.toml", ["c", "b"], stage, nfv_lb::register)
}

fn lb_params(backends_file: &str) -> String {
    format!(
        "{{ kind = \"lb\", clients = [\"c\"], backends-port = \"b\", source-address = \"10.1.0.1\", {backends_file} \
         vips = [{{ vip = \"192.0.2.10:80\", backends = [{{ addr = \"10.1.0.2\" }}, {{ addr = \"10.1.0.3\", weight = 2 }}] }}, \
                 {{ vip = \"192.0.2.10:53\", proto = \"udp\", mode = \"ipip\", backends = [{{ addr = \"10.1.0.4\" }}, {{ addr = \"10.1.0.5\" }}] }}, \
                 {{ vip = \"192.0.2.10:8080\", mode = \"nat\", backends = [{{ addr = \"10.1.0.6\" }}] }}] }}"
    )
}

struct Lb {
    cfg: Config,
    stage: Box<dyn Stage>,
    runner: FrameRunner,
}

impl Lb {
    fn new(stage: &str) -> Self {
        let cfg = load(stage).unwrap_or_else(|e| panic!("{e}"));
        let macs = [OUR_C, OUR_B];
        let ctx = BuildCtx { worker: 0, port_macs: &macs, headers_read_later: false, chain_rank: 0, chain_workers: 1 };
        let stage = cfg.chains[0].stages[0].builder.build(&ctx);
        let ip = |a: [u8; 4]| std::net::IpAddr::from(a);
        let mut entries: Vec<_> = (2..=6).map(|l| (ip(backend(l)), backend_mac(l), BACKEND_PORT)).collect();
        entries.push((ip(CLIENT), MAC_CLIENT, CLIENT_PORT));
        let mut runner = FrameRunner::new(entries);
        runner.set_port(CLIENT_PORT, OUR_C, &["203.0.113.1/24"]);
        runner.set_port(BACKEND_PORT, OUR_B, &["10.1.0.1/24"]);
        Self { cfg, stage, runner }
    }

    /// One frame through the stage: ("out:PORT" or the drop reason, the
    /// frame as it left).
    fn run(&mut self, port: u16, f: &[u8]) -> (String, Vec<u8>) {
        let (v, _, out) = self.runner.run(&mut *self.stage, port, f);
        let verdict = match v {
            VerdictKind::Drop(r) => self.cfg.chains[0].stages[0].builder.drop_reasons()[r.0 as usize].to_string(),
            VerdictKind::Out(p) => format!("out:{p}"),
            other => format!("{other:?}"),
        };
        (verdict, out)
    }

    /// The backend (last address byte) a DSR frame went to.
    fn dsr_backend(&mut self, f: &[u8]) -> u8 {
        let (v, out) = self.run(CLIENT_PORT, f);
        assert_eq!(v, "out:1");
        assert_eq!(&out[6..12], &OUR_B, "from our MAC on the backends' port");
        assert_eq!(&out[12..], &f[12..], "DSR leaves the packet as it was");
        assert_eq!(&out[0..5], &backend_mac(0)[0..5]);
        out[5]
    }
}

fn tcp(src_port: u16, dport: u16, syn: bool) -> Vec<u8> {
    let mut f = Vec::new();
    let b = PacketBuilder::ethernet2(MAC_CLIENT, OUR_C).ipv4(CLIENT, VIP, 64).tcp(src_port, dport, 1, 1000);
    let b = if syn { b.syn() } else { b.ack(1) };
    b.write(&mut f, b"GET / HTTP/1.0\r\n\r\n").unwrap();
    f
}

/// A SYN from `client`: a connection opening.
fn tcp_from(client: [u8; 4], src_port: u16) -> Vec<u8> {
    let mut f = Vec::new();
    PacketBuilder::ethernet2(MAC_CLIENT, OUR_C)
        .ipv4(client, VIP, 64)
        .tcp(src_port, 80, 1, 1000)
        .syn()
        .write(&mut f, &[])
        .unwrap();
    f
}

/// The same flow's next segment (ACK, data): the connection established.
fn established(syn: &[u8]) -> Vec<u8> {
    let mut f = syn.to_vec();
    f[14 + 20 + 13] = 0x18; // PSH, ACK
    f
}

#[test]
fn dsr_sends_each_flow_to_one_backend_spread_by_weight() {
    let mut lb = Lb::new(&lb_params(""));
    let first = lb.dsr_backend(&tcp(40000, 80, true));
    for _ in 0..5 {
        assert_eq!(lb.dsr_backend(&tcp(40000, 80, false)), first, "a flow keeps its backend");
    }
    let mut count = HashMap::new();
    for i in 0..30_000u32 {
        let client = [198, 18, (i >> 8) as u8, i as u8];
        *count.entry(lb.dsr_backend(&tcp_from(client, 1024 + (i % 50000) as u16))).or_insert(0) += 1;
    }
    let share = count[&3] as f64 / 30_000.0;
    assert!((share - 2.0 / 3.0).abs() < 0.02, "weight 2 of 3: {share} ({count:?})");
    let report = lb.stage.report().unwrap();
    assert!(report.contains("created 30001") && report.contains("weight 2 Active"), "{report}");
}

#[test]
fn ipip_wraps_the_packet_for_the_backend() {
    let mut lb = Lb::new(&lb_params(""));
    let mut f = Vec::new();
    PacketBuilder::ethernet2(MAC_CLIENT, OUR_C).ipv4(CLIENT, VIP, 64).udp(5353, 53).write(&mut f, b"query").unwrap();
    let (v, out) = lb.run(CLIENT_PORT, &f);
    assert_eq!(v, "out:1");
    let p = SlicedPacket::from_ethernet(&out).unwrap();
    let Some(NetSlice::Ipv4(outer)) = &p.net else { panic!("not IPv4") };
    let h = outer.header().to_header();
    assert_eq!(h.header_checksum, h.calc_header_checksum(), "outer checksum");
    assert_eq!((h.protocol, h.source, h.time_to_live), (IpNumber::IPV4, [10, 1, 0, 1], 64));
    assert!(h.destination == backend(4) || h.destination == backend(5));
    assert_eq!(&out[0..6], &backend_mac(h.destination[3]), "to the backend's MAC");
    assert_eq!(outer.payload().payload, &f[14..], "the inner datagram as the client sent it");
    assert_eq!(h.total_len as usize, f.len() - 14 + 20);
}

#[test]
fn backend_changes_keep_connections_and_move_only_a_removed_backends_flows() {
    let dir = std::env::temp_dir().join(format!("nfv-lb-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("backends.toml");
    let write = |backends: &str| {
        std::fs::write(&file, format!("[[vips]]\nvip = \"192.0.2.10:80\"\nbackends = [{backends}]\n")).unwrap();
    };
    write("{ addr = \"10.1.0.2\" }, { addr = \"10.1.0.3\" }, { addr = \"10.1.0.6\" }");
    let params = lb_params(&format!("backends-file = \"{}\",", file.display()));
    let mut lb = Lb::new(&params);
    let task = nfv_testkit::reloader(&lb.cfg, nfv_lb::register);
    let syns: Vec<Vec<u8>> = (0..3000u32).map(|i| tcp_from([198, 18, (i >> 8) as u8, i as u8], 2000)).collect();
    let before: Vec<u8> = syns.iter().map(|f| lb.dsr_backend(f)).collect();
    let flows: Vec<Vec<u8>> = syns.iter().map(|f| established(f)).collect();
    assert_eq!(flows.iter().map(|f| lb.dsr_backend(f)).collect::<Vec<_>>(), before, "established on their backends");
    assert!([2, 3, 6].iter().all(|b| before.contains(b)), "the file's backends, not the configuration's");
    let poll = |task: &Reloader| {
        // A new stamp: same length files written within a second differ
        // in mtime only, so wait a little.
        std::thread::sleep(std::time::Duration::from_millis(20));
        task.poll()
    };

    // Drain 10.1.0.3, add 10.1.0.5: every connection keeps its backend.
    write(
        "{ addr = \"10.1.0.2\" }, { addr = \"10.1.0.3\", drain = true }, { addr = \"10.1.0.6\" }, { addr = \"10.1.0.5\" }",
    );
    assert_eq!(
        task.summaries(),
        [
            "c/lb: backends version 0: tcp 192.0.2.10:80 3 active; udp 192.0.2.10:53 2 active; tcp 192.0.2.10:8080 1 active"
        ],
        "what runs is told first"
    );
    let lines = poll(&task);
    assert!(lines[0].ends_with("backends.toml changed: reloading lb.toml"), "{lines:?}");
    assert!(lines[2].ends_with("backends version 1: tcp 192.0.2.10:80 3 active, 1 draining; udp 192.0.2.10:53 2 active; tcp 192.0.2.10:8080 1 active"), "{lines:?}");
    let after: Vec<u8> = flows.iter().map(|f| lb.dsr_backend(f)).collect();
    assert_eq!(after, before, "established connections stay where they are");
    let fresh: Vec<u8> =
        (0..3000u32).map(|i| lb.dsr_backend(&tcp_from([198, 19, (i >> 8) as u8, i as u8], 2000))).collect();
    assert!(!fresh.contains(&3), "a drained backend takes no new flow");
    assert!(fresh.contains(&5), "the new backend takes new flows");
    // New connections from client ports used a moment ago (their entries
    // live): scheduled anew, none to the drained backend; the entry takes
    // the new backend, so the connection stays there.
    let reused: Vec<u8> = syns.iter().map(|f| lb.dsr_backend(f)).collect();
    assert!(!reused.contains(&3) && before.contains(&3), "a SYN from a reused port skips the drained backend");
    assert_eq!(flows.iter().map(|f| lb.dsr_backend(f)).collect::<Vec<_>>(), reused, "and keeps its new backend");
    let opened = |lb: &Lb| lb.stage.report().unwrap().lines().find(|l| l.contains("forwarded")).unwrap().to_string();
    assert!(opened(&lb).contains("connections 9000 "), "3000 + 3000 fresh + 3000 reused: {}", opened(&lb));
    // Those that stayed established on the drained backend carry on: back
    // to the connections as they were, then established packets only.
    let back: Vec<u8> = syns.iter().map(|f| lb.dsr_backend(&established(f))).collect();
    assert_eq!(back, reused);

    // Remove 10.1.0.6: only its connections move.
    write("{ addr = \"10.1.0.2\" }, { addr = \"10.1.0.3\", drain = true }, { addr = \"10.1.0.5\" }");
    poll(&task);
    let moved: Vec<u8> = flows.iter().map(|f| lb.dsr_backend(f)).collect();
    for (b, a) in reused.iter().zip(&moved) {
        if *b == 6 {
            assert!(*a == 2 || *a == 5, "a removed backend's flow moves to an active one, not {a}");
        } else {
            assert_eq!(a, b, "other flows stay");
        }
    }
    assert!(lb.stage.report().unwrap().contains("rescheduled"), "counted");

    // A broken file is refused, every problem located, and the running
    // backends kept.
    std::fs::write(
        &file,
        "[[vips]]\nvip = \"192.0.2.10:81\"\nbackends = []\n\n[[vips]]\nvip = \"192.0.2.10:80\"\n\
         backends = [{ addr = \"10.1.0.300\" }, { addr = \"10.1.0.2\", wieght = 2 }]\n\n[[vips]]\nvip = \"192.0.2.10:53\"\nproto = \"sctp\"\nbackends = []\n",
    )
    .unwrap();
    let lines = poll(&task);
    let located = |at: &str, what: &str| lines.iter().any(|l| l.contains(at) && l.contains(what));
    assert!(located("backends.toml:1:1", "not a configured VIP"), "{lines:?}");
    assert!(located("backends.toml:7:22", "invalid IPv4 address"), "{lines:?}");
    assert!(located("backends.toml:7:59", "unknown field `wieght`"), "{lines:?}");
    assert!(located("backends.toml:9:1", "protocol `sctp`"), "{lines:?}");
    assert!(lines.last().unwrap().contains("reload refused"), "{lines:?}");
    assert_eq!(flows.iter().map(|f| lb.dsr_backend(f)).collect::<Vec<_>>(), moved);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A router's "fragmentation needed" to the VIP, quoting what the client
/// was sent from VIP:`vip_port` to its `client_port` (a 1400-byte TCP
/// segment; the IP header and 8 bytes quoted, RFC 792).
fn too_big(vip_port: u16, client_port: u16) -> Vec<u8> {
    let mut sent = Vec::new();
    PacketBuilder::ethernet2(OUR_C, MAC_CLIENT)
        .ipv4(VIP, CLIENT, 64)
        .tcp(vip_port, client_port, 1, 1000)
        .ack(1)
        .write(&mut sent, &[0; 1400])
        .unwrap();
    let mut icmp = Vec::new();
    PacketBuilder::ethernet2(MAC_CLIENT, OUR_C)
        .ipv4([203, 0, 113, 1], VIP, 64)
        .icmpv4(etherparse::Icmpv4Type::DestinationUnreachable(
            etherparse::icmpv4::DestUnreachableHeader::FragmentationNeeded { next_hop_mtu: 1280 },
        ))
        .write(&mut icmp, &sent[14..14 + 28])
        .unwrap();
    icmp
}

/// (src, sport, dst, dport) of a TCP frame, its checksums verified by
/// etherparse.
fn tcp_endpoints(f: &[u8]) -> ([u8; 4], u16, [u8; 4], u16) {
    let p = SlicedPacket::from_ethernet(f).unwrap();
    let Some(NetSlice::Ipv4(ip)) = &p.net else { panic!("not IPv4") };
    let h = ip.header().to_header();
    assert_eq!(h.header_checksum, h.calc_header_checksum(), "IP checksum");
    let Some(etherparse::TransportSlice::Tcp(t)) = &p.transport else { panic!("not TCP") };
    assert_eq!(t.checksum(), t.to_header().calc_checksum_ipv4(&h, t.payload()).unwrap(), "TCP checksum");
    (h.source, t.source_port(), h.destination, t.destination_port())
}

#[test]
fn nat_mode_translates_both_ways_and_answers_only_from_the_connections_backend() {
    let mut lb = Lb::new(&lb_params(""));
    let (v, out) = lb.run(CLIENT_PORT, &tcp(40000, 8080, true));
    assert_eq!((v.as_str(), &out[0..6], &out[6..12]), ("out:1", &backend_mac(6)[..], &OUR_B[..]));
    let (src, port, dst, dport) = tcp_endpoints(&out);
    assert_eq!((src, dst, dport), ([10, 1, 0, 1], backend(6), 8080), "from us to the backend");
    assert_eq!(port, 40000, "the client's port kept when free");
    let answer = |from: [u8; 4], to_port: u16| {
        let mut f = Vec::new();
        PacketBuilder::ethernet2(backend_mac(6), OUR_B)
            .ipv4(from, [10, 1, 0, 1], 64)
            .tcp(8080, to_port, 1, 1000)
            .syn()
            .ack(2)
            .write(&mut f, b"hi")
            .unwrap();
        f
    };
    let (v, back) = lb.run(BACKEND_PORT, &answer(backend(6), port));
    assert_eq!((v.as_str(), &back[0..6]), ("out:0", &MAC_CLIENT[..]));
    assert_eq!(tcp_endpoints(&back), (VIP, 8080, CLIENT, 40000), "from the VIP to the client");
    assert_eq!(lb.run(BACKEND_PORT, &answer(backend(5), port)).0, "no-connection", "not the connection's backend");
    assert_eq!(lb.run(BACKEND_PORT, &answer(backend(6), port + 1)).0, "no-connection", "no connection there");
    // The same client port from another client: another port of ours.
    let mut other = tcp(40000, 8080, true);
    other[14 + 12..14 + 16].copy_from_slice(&[203, 0, 113, 8]);
    let c = nfv_net::checksum::checksum(&{
        let mut h = other[14..34].to_vec();
        h[10..12].copy_from_slice(&[0, 0]);
        h
    });
    other[14 + 10..14 + 12].copy_from_slice(&c.to_be_bytes());
    let (_, out2) = lb.run(CLIENT_PORT, &other);
    assert_ne!(out2[14 + 20..14 + 22], out[14 + 20..14 + 22], "two connections, two ports");
}

/// NAT mode: a router's "fragmentation needed" about what the client got
/// (VIP -> client) reaches the backend as about what it sent (backend ->
/// our address and port), every checksum right (etherparse).
#[test]
fn fragmentation_needed_is_translated_for_a_nat_backend() {
    let mut lb = Lb::new(&lb_params(""));
    let (_, out) = lb.run(CLIENT_PORT, &tcp(40002, 8080, true));
    let (_, port, _, _) = tcp_endpoints(&out);
    let (v, got) = lb.run(CLIENT_PORT, &too_big(8080, 40002));
    assert_eq!((v.as_str(), &got[0..6]), ("out:1", &backend_mac(6)[..]));
    let p = SlicedPacket::from_ethernet(&got).unwrap();
    let Some(NetSlice::Ipv4(ip)) = &p.net else { panic!() };
    let h = ip.header().to_header();
    assert_eq!(h.header_checksum, h.calc_header_checksum());
    assert_eq!(h.destination, backend(6), "to the backend");
    let Some(etherparse::TransportSlice::Icmpv4(i)) = &p.transport else { panic!() };
    assert_eq!(i.checksum(), i.header().icmp_type.calc_checksum(i.payload()), "ICMP checksum");
    let q = etherparse::Ipv4HeaderSlice::from_slice(i.payload()).unwrap().to_header();
    assert_eq!(q.header_checksum, q.calc_header_checksum(), "quoted IP checksum");
    assert_eq!((q.source, q.destination), (backend(6), [10, 1, 0, 1]), "what the backend sent");
    let ports = &i.payload()[20..24];
    assert_eq!(ports, [&8080u16.to_be_bytes()[..], &port.to_be_bytes()[..]].concat(), "its ports");
    assert!(lb.stage.report().unwrap().contains("icmp-too-big 1"));
}

#[test]
fn fragmentation_needed_reaches_the_backend_of_the_flow() {
    let mut lb = Lb::new(&lb_params(""));
    let b = lb.dsr_backend(&tcp(40001, 80, true));
    let (v, out) = lb.run(CLIENT_PORT, &too_big(80, 40001));
    assert_eq!((v.as_str(), out[5]), ("out:1", b), "to the flow's backend");
    assert!(lb.stage.report().unwrap().contains("icmp-too-big 1"));
}

/// A VIP with no backend is what kube-proxy calls a Service without
/// endpoints: clients are refused at once (a TCP reset, ICMP port
/// unreachable for UDP), counted, and the run says so at its start.
#[test]
fn a_vip_without_backends_refuses_connections() {
    let mut lb = Lb::new(
        &lb_params("")
            .replace("backends = [{ addr = \"10.1.0.2\" }, { addr = \"10.1.0.3\", weight = 2 }]", "backends = []"),
    );
    let (v, out) = lb.run(CLIENT_PORT, &tcp(40000, 80, true));
    assert_eq!(v, "out:0", "back to the client");
    let p = SlicedPacket::from_ethernet(&out).unwrap();
    let Some(TransportSlice::Tcp(t)) = &p.transport else { panic!("{p:?}") };
    // RFC 9293 3.10.7.1: ACK = SEG.SEQ (1) + SEG.LEN (the SYN and 18 octets).
    assert!(t.rst() && t.ack() && t.acknowledgment_number() == 20 && t.source_port() == 80, "{t:?}");
    assert_eq!((&out[0..6], &out[6..12]), (&MAC_CLIENT[..], &OUR_C[..]));
    let mut udp = Vec::new();
    PacketBuilder::ethernet2(MAC_CLIENT, OUR_C).ipv4(CLIENT, VIP, 64).udp(5353, 53).write(&mut udp, b"q").unwrap();
    assert_eq!(lb.run(CLIENT_PORT, &udp).0, "out:1", "the UDP VIP has backends");
    let report = lb.stage.report().unwrap();
    assert!(report.contains("rejected 1"), "{report}");
    let lines = nfv_testkit::reloader(&lb.cfg, nfv_lb::register).summaries();
    assert!(
        lines[0].contains("tcp 192.0.2.10:80 no active backend (0 draining): new connections refused with a TCP reset"),
        "the start tells: {lines:?}"
    );
}

#[test]
fn answers_from_backends_go_back_to_the_client_and_drops_are_named() {
    let mut lb = Lb::new(&lb_params(""));
    let mut answer = Vec::new();
    PacketBuilder::ethernet2(backend_mac(2), OUR_B)
        .ipv4(VIP, CLIENT, 64)
        .tcp(80, 40000, 1, 1000)
        .ack(1)
        .write(&mut answer, b"ok")
        .unwrap();
    let (v, out) = lb.run(BACKEND_PORT, &answer);
    assert_eq!((v.as_str(), &out[0..6], &out[6..12]), ("out:0", &MAC_CLIENT[..], &OUR_C[..]));
    let mut elsewhere = answer.clone();
    elsewhere[14 + 16..14 + 20].copy_from_slice(&[198, 51, 100, 99]);
    assert_eq!(lb.run(BACKEND_PORT, &elsewhere).0, "Refused(NoRoute)", "no route to the client");
    assert_eq!(lb.run(CLIENT_PORT, &tcp(40000, 8081, true)).0, "not-a-vip");
    let mut frag = tcp(40000, 80, true);
    frag[14 + 6] = 0x20; // more fragments
    let c = nfv_net::checksum::checksum(&{
        let mut h = frag[14..34].to_vec();
        h[10..12].copy_from_slice(&[0, 0]);
        h
    });
    frag[14 + 10..14 + 12].copy_from_slice(&c.to_be_bytes());
    assert_eq!(lb.run(CLIENT_PORT, &frag).0, "fragment");
    let mut arp = tcp(1, 80, true);
    arp[12..14].copy_from_slice(&[0x08, 0x06]);
    assert_eq!(lb.run(CLIENT_PORT, &arp).0, "not-ipv4");
    let mut drained = Lb::new(&lb_params("").replace(
        "{ addr = \"10.1.0.2\" }, { addr = \"10.1.0.3\", weight = 2 }",
        "{ addr = \"10.1.0.2\", drain = true }",
    ));
    assert_eq!(drained.run(CLIENT_PORT, &tcp(40000, 80, true)).0, "out:0", "refused: its only backend drains");
    let mut rst = tcp(40000, 80, false);
    rst[14 + 20 + 13] = 0x04;
    assert_eq!(drained.run(CLIENT_PORT, &rst).0, "no-backend", "a reset is not answered");
}

#[test]
fn bad_parameters_are_refused_at_their_place() {
    let p = lb_params("");
    let e = load(&p.replace("clients = [\"c\"]", "clients = [\"x\"]")).unwrap_err();
    assert!(e.contains("no port named `x`") && e.contains("lb.toml:"), "{e}");
    let e = load(&p.replace("mode = \"ipip\"", "mode = \"gre\"")).unwrap_err();
    assert!(e.contains("forwarding mode `gre`"), "{e}");
    let e = load(&p.replace("source-address = \"10.1.0.1\", ", "")).unwrap_err();
    assert!(e.contains("no source address is set"), "{e}");
    let e = load(&p.replace("vip = \"192.0.2.10:80\",", "vip = \"192.0.2.10:80\", table-size = 65536,")).unwrap_err();
    assert!(e.contains("table size 65536") && e.contains("a prime"), "{e}");
    let e = load(&p.replace("\"192.0.2.10:53\"", "\"192.0.2.10\"")).unwrap_err();
    assert!(e.contains("not address:port"), "{e}");
    let e = load(&lb_params("backends-file = \"/nonexistent/backends.toml\",")).unwrap_err();
    assert!(e.contains("cannot read `/nonexistent/backends.toml`"), "{e}");
}

/// `nfv ctl lb ...` on the running stage.
fn ctl(lb: &Lb, words: &str) -> Result<nfv_core::live::Answer, String> {
    let live = lb.cfg.chains[0].stages[0].builder.live().expect("lb changes live");
    live.command(&words.split_whitespace().collect::<Vec<_>>())
}

#[test]
fn backends_are_listed_weighted_drained_added_and_removed_over_ctl_connections_kept() {
    let mut lb = Lb::new(&lb_params(""));
    let listed = ctl(&lb, "list").unwrap();
    let rows: Vec<String> = listed.table.unwrap().1.iter().map(|r| r.join(" ")).collect();
    assert_eq!(listed.text, "backends version 0\n");
    assert_eq!(rows[0], "tcp 192.0.2.10:80 dsr 10.1.0.2 1 active 33.3%");
    assert_eq!(rows[1], "tcp 192.0.2.10:80 dsr 10.1.0.3 2 active 66.7%");
    assert_eq!(rows[2], "udp 192.0.2.10:53 ipip 10.1.0.4 1 active 50.0%");
    let syns: Vec<Vec<u8>> = (0..2000u32).map(|i| tcp_from([198, 18, (i >> 8) as u8, i as u8], 2000)).collect();
    let before: Vec<u8> = syns.iter().map(|f| lb.dsr_backend(f)).collect();
    let flows: Vec<Vec<u8>> = syns.iter().map(|f| established(f)).collect();

    // Drain .3 and add .6: established connections stay, new ones avoid .3.
    let drained = ctl(&lb, "drain 192.0.2.10:80 10.1.0.3").unwrap();
    assert!(
        drained.text.starts_with("backends version 1: tcp 192.0.2.10:80 1 active, 1 draining;"),
        "{}",
        drained.text
    );
    ctl(&lb, "add 192.0.2.10:80 10.1.0.6 3").unwrap();
    assert_eq!(flows.iter().map(|f| lb.dsr_backend(f)).collect::<Vec<_>>(), before, "connections kept");
    let fresh: Vec<u8> =
        (0..2000u32).map(|i| lb.dsr_backend(&tcp_from([198, 19, (i >> 8) as u8, i as u8], 2000))).collect();
    assert!(!fresh.contains(&3) && fresh.contains(&6) && fresh.contains(&2));
    let six = fresh.iter().filter(|&&b| b == 6).count() as f64 / 2000.0;
    assert!((six - 0.75).abs() < 0.05, "weight 3 against 1: {six}");
    // Weight 0 drains too; a weight brings a drained backend back.
    ctl(&lb, "weight 192.0.2.10:80 10.1.0.3 1").unwrap();
    let rows: Vec<String> = ctl(&lb, "list").unwrap().table.unwrap().1.iter().map(|r| r.join(" ")).collect();
    assert!(rows.contains(&"tcp 192.0.2.10:80 dsr 10.1.0.3 1 active 20.0%".to_string()), "{rows:?}");
    // Removing .2 moves only its flows.
    ctl(&lb, "remove 192.0.2.10:80 10.1.0.2").unwrap();
    let after: Vec<u8> = flows.iter().map(|f| lb.dsr_backend(f)).collect();
    for (b, a) in before.iter().zip(&after) {
        if *b == 2 { assert_ne!(*a, 2) } else { assert_eq!(a, b, "other flows stay") }
    }

    let refused = |w: &str| ctl(&lb, w).unwrap_err();
    assert_eq!(refused("drain 192.0.2.10:80 10.1.0.9"), "tcp 192.0.2.10:80 has no backend 10.1.0.9");
    assert_eq!(refused("add 192.0.2.10:80 10.1.0.6"), "tcp 192.0.2.10:80 already has 10.1.0.6");
    assert!(
        refused("drain 192.0.2.10:81 10.1.0.3")
            .starts_with("no VIP 192.0.2.10:81; configured: tcp 192.0.2.10:80, udp 192.0.2.10:53")
    );
    assert_eq!(refused("drain sctp/192.0.2.10:80 10.1.0.3"), "`sctp/192.0.2.10:80`: the protocol is tcp or udp");
    assert_eq!(refused("weight 192.0.2.10:80 10.1.0.3 heavy"), "`heavy` is not a weight (0, 1, 2, ...)");
    assert!(refused("drain 192.0.2.10:80 ten").starts_with("`ten` is not an IPv4 address"));
    assert!(refused("flush").starts_with("usage: lb list | lb weight"));
    assert!(ctl(&lb, "list").unwrap().text.starts_with("backends version 4"), "refusals publish nothing");
    let udp = ctl(&lb, "drain udp/192.0.2.10:53 10.1.0.4").unwrap();
    assert!(udp.text.contains("udp 192.0.2.10:53 1 active, 1 draining"), "{}", udp.text);
}
