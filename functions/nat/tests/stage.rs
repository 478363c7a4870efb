//! The `nat44` stage on frames built by etherparse, its output decoded and
//! every checksum verified by etherparse: UDP, TCP and ping out and back,
//! port forwards, hairpinning, ICMP errors both ways, fragments, filtering,
//! and every drop named; bad parameters refused at their place.

use etherparse::{Icmpv4Type, NetSlice, PacketBuilder, SlicedPacket, TransportSlice};
use nfv_core::config::Config;
use nfv_core::packet::VerdictKind;
use nfv_core::{BuildCtx, Stage};
use nfv_testkit::{FrameRunner, two_port_config};

const IN_PORT: u16 = 0;
const OUT_PORT: u16 = 1;
const HOST_A: [u8; 4] = [10, 0, 0, 1];
const HOST_B: [u8; 4] = [10, 0, 0, 2];
const POOL: [u8; 4] = [198, 51, 100, 10];
const SERVER: [u8; 4] = [198, 51, 100, 2];
const FAR: [u8; 4] = [203, 0, 113, 7];
const MAC_A: [u8; 6] = [2, 0, 0, 0, 0, 0xa];
const MAC_B: [u8; 6] = [2, 0, 0, 0, 0, 0xb];
const MAC_GW: [u8; 6] = [2, 0, 0, 0, 0, 0xee];
const OUR_IN: [u8; 6] = [2, 0, 0, 0, 1, 0];
const OUR_OUT: [u8; 6] = [2, 0, 0, 0, 1, 1];

fn load(stage: &str) -> Result<Config, String> {
    two_port_config("nat.toml", ["in", "out"], stage, nfv_nat::register)
}

const NAT: &str = "{ kind = \"nat44\", inside = [\"in\"], outside = \"out\", pool = [\"198.51.100.10\"], \
                   outside-gateway = \"198.51.100.1\", inside-prefixes = [\"10.0.0.0/24\"], \
                   forwards = [{ proto = \"tcp\", outside = \"198.51.100.10:8080\", inside = \"10.0.0.2:80\" }] }";

/// The stage as the workers of one chain run it (one, unless a test
/// says), packets handed between them as the runtime would.
struct Nat {
    cfg: Config,
    stages: Vec<Box<dyn Stage>>,
    runner: FrameRunner,
}

impl Nat {
    fn new(stage: &str) -> Self {
        Self::with_workers(stage, 1)
    }

    fn with_workers(stage: &str, workers: usize) -> Self {
        let cfg = load(stage).unwrap_or_else(|e| panic!("{e}"));
        let macs = [OUR_IN, OUR_OUT];
        let stages = (0..workers)
            .map(|w| {
                let ctx = BuildCtx {
                    worker: w,
                    port_macs: &macs,
                    headers_read_later: false,
                    chain_rank: w,
                    chain_workers: workers,
                };
                cfg.chains[0].stages[0].builder.build(&ctx)
            })
            .collect();
        let ip = |a: [u8; 4]| std::net::IpAddr::from(a);
        let mut runner = FrameRunner::new([
            (ip(HOST_A), MAC_A, IN_PORT),
            (ip(HOST_B), MAC_B, IN_PORT),
            (ip([198, 51, 100, 1]), MAC_GW, OUT_PORT),
        ]);
        runner.set_port(IN_PORT, OUR_IN, &["10.0.0.254/24"]);
        runner.set_port(OUT_PORT, OUR_OUT, &["198.51.100.254/24"]);
        Self { cfg, stages, runner }
    }

    /// One frame through worker 0's stage: ("out:PORT" or the drop
    /// reason, the frame as it left).
    fn run(&mut self, port: u16, f: &[u8]) -> (String, Vec<u8>) {
        let (v, f, _) = self.run_at(0, port, f);
        (v, f)
    }

    /// One frame arriving at worker `w`, followed through handoffs: the
    /// verdict, the frame as it left, the workers that held it.
    fn run_at(&mut self, mut w: usize, mut port: u16, f: &[u8]) -> (String, Vec<u8>, Vec<usize>) {
        let mut f = f.to_vec();
        let mut path = vec![w];
        loop {
            let (v, out, next_port) = self.run_once(w, port, &f);
            match v {
                VerdictKind::Handoff { worker, .. } => {
                    assert!(path.len() < 3, "handed around: {path:?}");
                    (w, port, f) = (worker as usize, next_port, out);
                    path.push(w);
                }
                VerdictKind::Drop(r) => {
                    return (self.cfg.chains[0].stages[0].builder.drop_reasons()[r.0 as usize].into(), out, path);
                }
                VerdictKind::Out(p) => return (format!("out:{p}"), out, path),
                other => return (format!("{other:?}"), out, path),
            }
        }
    }

    /// One frame through worker `w`'s stage: its verdict, bytes, port.
    fn run_once(&mut self, w: usize, port: u16, f: &[u8]) -> (VerdictKind, Vec<u8>, u16) {
        let (v, meta, out) = self.runner.run(&mut *self.stages[w], port, f);
        (v, out, meta.port)
    }
}

fn udp(src: [u8; 4], sport: u16, dst: [u8; 4], dport: u16) -> Vec<u8> {
    let mut f = Vec::new();
    PacketBuilder::ethernet2(MAC_A, OUR_IN).ipv4(src, dst, 64).udp(sport, dport).write(&mut f, b"query").unwrap();
    f
}

fn tcp(src: [u8; 4], sport: u16, dst: [u8; 4], dport: u16, syn: bool) -> Vec<u8> {
    let mut f = Vec::new();
    let b = PacketBuilder::ethernet2(MAC_A, OUR_IN).ipv4(src, dst, 64).tcp(sport, dport, 1, 1000);
    let b = if syn { b.syn() } else { b.ack(1) };
    b.write(&mut f, b"x").unwrap();
    f
}

/// An ICMP port unreachable from `ip.0` to `ip.1` quoting `frame`'s IP
/// datagram.
fn port_unreachable(mac: ([u8; 6], [u8; 6]), ip: ([u8; 4], [u8; 4]), frame: &[u8]) -> Vec<u8> {
    let mut err = Vec::new();
    PacketBuilder::ethernet2(mac.0, mac.1)
        .ipv4(ip.0, ip.1, 64)
        .icmpv4(Icmpv4Type::DestinationUnreachable(etherparse::icmpv4::DestUnreachableHeader::Port))
        .write(&mut err, &frame[14..])
        .unwrap();
    err
}

/// (src, sport, dst, dport) of a frame, its checksums verified.
fn decode(f: &[u8]) -> ([u8; 4], u16, [u8; 4], u16) {
    let p = SlicedPacket::from_ethernet(f).unwrap();
    let Some(NetSlice::Ipv4(ip)) = &p.net else { panic!("not IPv4") };
    let h = ip.header().to_header();
    assert_eq!(h.header_checksum, h.calc_header_checksum(), "IP checksum");
    let (src, dst) = (h.source, h.destination);
    match &p.transport {
        Some(TransportSlice::Udp(u)) => {
            assert_eq!(u.checksum(), u.to_header().calc_checksum_ipv4(&h, u.payload()).unwrap(), "UDP checksum");
            (src, u.source_port(), dst, u.destination_port())
        }
        Some(TransportSlice::Tcp(t)) => {
            assert_eq!(t.checksum(), t.to_header().calc_checksum_ipv4(&h, t.payload()).unwrap(), "TCP checksum");
            (src, t.source_port(), dst, t.destination_port())
        }
        Some(TransportSlice::Icmpv4(i)) => {
            assert_eq!(i.checksum(), i.header().icmp_type.calc_checksum(i.payload()), "ICMP checksum");
            let id = match i.icmp_type() {
                Icmpv4Type::EchoRequest(e) | Icmpv4Type::EchoReply(e) => e.id,
                _ => 0,
            };
            (src, id, dst, 0)
        }
        _ => panic!("no transport"),
    }
}

#[test]
fn udp_goes_out_from_the_pool_and_the_answer_comes_back_to_the_host() {
    let mut n = Nat::new(NAT);
    let (v, f) = n.run(IN_PORT, &udp(HOST_A, 5000, SERVER, 53));
    assert_eq!(v, "out:1");
    assert_eq!(decode(&f), (POOL, 5000, SERVER, 53), "port preserved");
    assert_eq!((&f[0..6], &f[6..12]), (&MAC_GW[..], &OUR_OUT[..]), "to the gateway, from our outside MAC");
    let (v, f) = n.run(OUT_PORT, &udp(SERVER, 53, POOL, 5000));
    assert_eq!(v, "out:0");
    assert_eq!(decode(&f), (SERVER, 53, HOST_A, 5000));
    assert_eq!(&f[0..6], &MAC_A[..]);
    // Endpoint-independent: another server reaches the same mapping.
    let (v, f) = n.run(IN_PORT, &udp(HOST_A, 5000, FAR, 53));
    assert_eq!((v, decode(&f)), ("out:1".to_string(), (POOL, 5000, FAR, 53)));
    // Another host with the same port: another port, same parity.
    let (_, f) = n.run(IN_PORT, &udp(HOST_B, 5000, SERVER, 53));
    let (_, port, _, _) = decode(&f);
    assert!(port != 5000 && port.is_multiple_of(2), "{port}");
}

/// After a restart the neighbour table is empty and hosts whose caches
/// still hold our MAC never ARP for us: a port forward's server that only
/// receives is asked for (the SYN held meanwhile, then delivered), and a
/// remote reaching an inside host's endpoint-independent mapping finds the
/// host where its packets out came from, asking nobody.
#[test]
fn after_a_restart_nothing_waits_for_hosts_to_speak_first() {
    let mut n = Nat::new(NAT);
    n.runner = FrameRunner::new([(std::net::IpAddr::from([198, 51, 100, 1]), MAC_GW, OUT_PORT)]);
    n.runner.set_port(IN_PORT, OUR_IN, &["10.0.0.254/24"]);
    n.runner.set_port(OUT_PORT, OUR_OUT, &["198.51.100.254/24"]);
    let (v, _) = n.run(OUT_PORT, &tcp(FAR, 40000, POOL, 8080, true));
    assert_eq!(v, "Held", "the server is asked for, the SYN kept");
    assert_eq!(n.runner.requested(), vec![std::net::IpAddr::from(HOST_B)]);
    n.runner.learn(HOST_B.into(), MAC_B, IN_PORT);
    let out = n.runner.release();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].0, VerdictKind::Out(IN_PORT));
    assert_eq!((&out[0].2[0..6], &out[0].2[6..12]), (&MAC_B[..], &OUR_IN[..]), "to the server, from our MAC");
    assert_eq!(decode(&out[0].2), (FAR, 40000, HOST_B, 80));
    // STUN's filtering test: the host talks to SERVER; FAR answers on the
    // same mapping. Host A is in no table: its session told where it is.
    let (v, _) = n.run(IN_PORT, &udp(HOST_A, 5000, SERVER, 3478));
    assert_eq!(v, "out:1");
    let (v, f) = n.run(OUT_PORT, &udp(FAR, 3479, POOL, 5000));
    assert_eq!(v, "out:0", "endpoint-independent filtering, at once");
    assert_eq!((&f[0..6], decode(&f)), (&MAC_A[..], (FAR, 3479, HOST_A, 5000)));
    assert!(n.runner.requested().is_empty(), "nobody asked for");
}

#[test]
fn tcp_port_forwards_and_hairpinning() {
    let mut n = Nat::new(NAT);
    // The outside reaches the inside server through the forward.
    let (v, f) = n.run(OUT_PORT, &tcp(FAR, 40000, POOL, 8080, true));
    assert_eq!(v, "out:0");
    assert_eq!(decode(&f), (FAR, 40000, HOST_B, 80));
    assert_eq!(&f[0..6], &MAC_B[..]);
    let (_, f) = n.run(IN_PORT, &tcp(HOST_B, 80, FAR, 40000, false));
    assert_eq!(decode(&f), (POOL, 8080, FAR, 40000), "the server answers from the forward");
    // Host A reaches host B by the outside address: hairpinned, and B sees
    // A's outside endpoint as the source.
    let (v, f) = n.run(IN_PORT, &tcp(HOST_A, 41000, POOL, 8080, true));
    assert_eq!(v, "out:0");
    assert_eq!(decode(&f), (POOL, 41000, HOST_B, 80));
    let (v, f) = n.run(IN_PORT, &tcp(HOST_B, 80, POOL, 41000, false));
    assert_eq!(v, "out:0", "B's answer hairpins back to A");
    assert_eq!(decode(&f), (POOL, 8080, HOST_A, 41000));
    assert!(n.stages[0].report().unwrap().contains("hairpinned 2"), "{}", n.stages[0].report().unwrap());
}

#[test]
fn ping_is_translated_by_identifier() {
    let mut n = Nat::new(NAT);
    let mut req = Vec::new();
    PacketBuilder::ethernet2(MAC_A, OUR_IN)
        .ipv4(HOST_A, SERVER, 64)
        .icmpv4_echo_request(777, 1)
        .write(&mut req, b"hi")
        .unwrap();
    let (v, f) = n.run(IN_PORT, &req);
    assert_eq!((v.as_str(), decode(&f)), ("out:1", (POOL, 777, SERVER, 0)));
    let mut rep = Vec::new();
    PacketBuilder::ethernet2(MAC_GW, OUR_OUT)
        .ipv4(SERVER, POOL, 64)
        .icmpv4_echo_reply(777, 1)
        .write(&mut rep, b"hi")
        .unwrap();
    let (v, f) = n.run(OUT_PORT, &rep);
    assert_eq!((v.as_str(), decode(&f)), ("out:0", (SERVER, 777, HOST_A, 0)));
}

#[test]
fn icmp_errors_are_translated_both_ways_and_never_open_a_session() {
    let mut n = Nat::new(NAT);
    let (_, sent) = n.run(IN_PORT, &udp(HOST_A, 5000, SERVER, 33434));
    // The server's "port unreachable" quotes what it got: from the pool.
    let err = port_unreachable((MAC_GW, OUR_OUT), (SERVER, POOL), &sent);
    let (v, f) = n.run(OUT_PORT, &err);
    assert_eq!(v, "out:0");
    assert_eq!(decode(&f).2, HOST_A);
    let quoted = SlicedPacket::from_ip(&f[14 + 28..]).unwrap();
    let Some(NetSlice::Ipv4(ip)) = &quoted.net else { panic!() };
    assert_eq!(ip.header().source(), HOST_A, "the quoted datagram is the host's own");
    let Some(TransportSlice::Udp(u)) = &quoted.transport else { panic!() };
    assert_eq!(u.source_port(), 5000);
    // An error about a flow we never saw opens nothing.
    let (_, other) = (0, udp(POOL, 6000, SERVER, 53));
    let stray = port_unreachable((MAC_GW, OUR_OUT), (SERVER, POOL), &other);
    assert_eq!(n.run(OUT_PORT, &stray).0, "icmp-error-no-session");
    // An inside host's error about an inbound packet goes out translated.
    let (_, inbound) = n.run(OUT_PORT, &udp(SERVER, 53, POOL, 5000));
    let err = port_unreachable((MAC_A, OUR_IN), (HOST_A, SERVER), &inbound);
    let (v, f) = n.run(IN_PORT, &err);
    assert_eq!(v, "out:1");
    assert_eq!(decode(&f).0, POOL);
    let quoted = SlicedPacket::from_ip(&f[14 + 28..]).unwrap();
    let Some(NetSlice::Ipv4(ip)) = &quoted.net else { panic!() };
    assert_eq!(ip.header().destination(), POOL, "the quoted datagram as the server sent it");
}

#[test]
fn fragments_follow_their_first_or_are_dropped() {
    let mut n = Nat::new(NAT);
    // A 3000-byte UDP datagram in two fragments, by hand.
    let payload: Vec<u8> = (0..3000u32).map(|i| i as u8).collect();
    let mut whole = Vec::new();
    PacketBuilder::ethernet2(MAC_A, OUR_IN)
        .ipv4(HOST_A, SERVER, 64)
        .udp(7000, 9000)
        .write(&mut whole, &payload)
        .unwrap();
    let (first, second) = fragments(&whole);
    assert_eq!(n.run(IN_PORT, &second).0, "fragment-without-first", "before its first: nothing to go by");
    let (v1, f1) = n.run(IN_PORT, &first);
    let (v2, f2) = n.run(IN_PORT, &second);
    assert_eq!((v1.as_str(), v2.as_str()), ("out:1", "out:1"));
    assert_eq!(&f1[14 + 12..14 + 16], &POOL);
    assert_eq!(&f2[14 + 12..14 + 16], &POOL, "the later fragment gets the same source");
    let h = etherparse::Ipv4HeaderSlice::from_slice(&f2[14..]).unwrap().to_header();
    assert_eq!(h.header_checksum, h.calc_header_checksum());
    // Reassembled, the datagram's UDP checksum is right for the new source.
    let mut dgram = f1[14 + 20..].to_vec();
    dgram.extend_from_slice(&f2[14 + 20..]);
    let u = etherparse::UdpSlice::from_slice(&dgram).unwrap();
    let mut ph = h.clone();
    ph.fragment_offset = 0.try_into().unwrap();
    assert_eq!(u.checksum(), u.to_header().calc_checksum_ipv4(&ph, u.payload()).unwrap());
}

/// A frame's IP datagram in two fragments (1480 bytes, then the rest),
/// by hand.
fn fragments(whole: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let ip = &whole[14..];
    let split = 20 + 1480;
    let frag = |range: std::ops::Range<usize>, offset: u16, more: bool| {
        let mut h = ip[..20].to_vec();
        let len = (20 + range.len()) as u16;
        h[2..4].copy_from_slice(&len.to_be_bytes());
        h[4..6].copy_from_slice(&0x1234u16.to_be_bytes());
        let fo = (offset / 8) | if more { 0x2000 } else { 0 };
        h[6..8].copy_from_slice(&fo.to_be_bytes());
        h[10..12].copy_from_slice(&[0, 0]);
        let c = nfv_net::checksum::checksum(&h);
        h[10..12].copy_from_slice(&c.to_be_bytes());
        let mut f = whole[..14].to_vec();
        f.extend_from_slice(&h);
        f.extend_from_slice(&ip[range]);
        f
    };
    (frag(20..split, 0, true), frag(split..ip.len(), 1480, false))
}

/// Two workers, each packet arriving at either (the NIC's RSS knows
/// nothing of NAT state): every one is translated as one worker would,
/// handed at most once to the worker holding its state.
#[test]
fn two_workers_translate_as_one_whatever_worker_a_packet_reaches() {
    let mut n = Nat::with_workers(NAT, 2);
    let mut handoffs = 0;
    let mut hop = |path: Vec<usize>| handoffs += path.len() - 1;
    // Endpoint-independent across workers: one mapping for A's port 5000.
    let (v, f, path) = n.run_at(0, IN_PORT, &udp(HOST_A, 5000, SERVER, 53));
    let owner_a = *path.last().unwrap();
    hop(path);
    let (_, a_port, _, _) = decode(&f);
    assert_eq!((v.as_str(), decode(&f)), ("out:1", (POOL, a_port, SERVER, 53)));
    let (v, f, path) = n.run_at(1, IN_PORT, &udp(HOST_A, 5000, FAR, 53));
    hop(path);
    assert_eq!((v.as_str(), decode(&f)), ("out:1", (POOL, a_port, FAR, 53)), "the same mapping");
    let (_, f, path) = n.run_at(1, IN_PORT, &udp(HOST_B, 5000, SERVER, 53));
    hop(path);
    let (_, b_port, _, _) = decode(&f);
    assert_ne!(b_port, a_port, "B has its own mapping");
    for w in [0, 1] {
        let (v, f, path) = n.run_at(w, OUT_PORT, &udp(SERVER, 53, POOL, a_port));
        hop(path);
        assert_eq!((v.as_str(), decode(&f)), ("out:0", (SERVER, 53, HOST_A, 5000)), "answer reaching worker {w}");
        let (v, f, path) = n.run_at(w, OUT_PORT, &udp(SERVER, 53, POOL, b_port));
        hop(path);
        assert_eq!((v.as_str(), decode(&f)), ("out:0", (SERVER, 53, HOST_B, 5000)), "answer reaching worker {w}");
        // The port forward, its answer reaching the other worker.
        let far_port = 40000 + w as u16;
        let (v, f, path) = n.run_at(w, OUT_PORT, &tcp(FAR, far_port, POOL, 8080, true));
        hop(path);
        assert_eq!((v.as_str(), decode(&f)), ("out:0", (FAR, far_port, HOST_B, 80)));
        let (_, f, path) = n.run_at(1 - w, IN_PORT, &tcp(HOST_B, 80, FAR, far_port, false));
        hop(path);
        assert_eq!(decode(&f), (POOL, 8080, FAR, far_port), "the server answers from the forward");
        // Hairpinning A -> B by the forward, whatever worker A's packet
        // reaches: B sees A's outside endpoint.
        let (v, f, path) = n.run_at(w, IN_PORT, &tcp(HOST_A, 41000 + w as u16, POOL, 8080, true));
        hop(path);
        let (src, sport, dst, dport) = decode(&f);
        assert_eq!((v.as_str(), src, dst, dport), ("out:0", POOL, HOST_B, 80));
        let (v, f, path) = n.run_at(1 - w, IN_PORT, &tcp(HOST_B, 80, POOL, sport, false));
        hop(path);
        assert_eq!((v.as_str(), decode(&f)), ("out:0", (POOL, 8080, HOST_A, 41000 + w as u16)), "hairpinned back");
    }
    // The server's ICMP error about A's flow, reaching the worker that
    // does not hold it.
    let (_, sent, _) = n.run_at(owner_a, IN_PORT, &udp(HOST_A, 5000, SERVER, 33434));
    let err = port_unreachable((MAC_GW, OUR_OUT), (SERVER, POOL), &sent);
    let (v, f, path) = n.run_at(1 - owner_a, OUT_PORT, &err);
    assert_eq!((v.as_str(), decode(&f).2, path), ("out:0", HOST_A, vec![1 - owner_a, owner_a]));
    // A fragmented answer, both fragments reaching that worker: the
    // first is handed by its ports, the second follows it.
    let mut whole = Vec::new();
    PacketBuilder::ethernet2(MAC_GW, OUR_OUT)
        .ipv4(SERVER, POOL, 64)
        .udp(53, a_port)
        .write(&mut whole, &[7u8; 3000])
        .unwrap();
    let (first, second) = fragments(&whole);
    for (what, frag) in [("first", first), ("second", second)] {
        let (v, f, path) = n.run_at(1 - owner_a, OUT_PORT, &frag);
        assert_eq!((v.as_str(), path), ("out:0", vec![1 - owner_a, owner_a]), "{what} fragment");
        assert_eq!(&f[14 + 16..14 + 20], &HOST_A, "{what} fragment to A");
    }
    assert!(handoffs >= 8, "every flow met the worker without its state at least once: {handoffs}");
    let reports: String = n.stages.iter().filter_map(|s| s.report()).collect();
    assert!(reports.contains("handed-off"), "{reports}");
}

#[test]
fn filtering_and_every_drop_is_named() {
    let adf = NAT.replace("pool =", "filtering = \"address-dependent\", pool =");
    let mut n = Nat::new(&adf);
    n.run(IN_PORT, &udp(HOST_A, 5000, SERVER, 53));
    assert_eq!(n.run(OUT_PORT, &udp(FAR, 53, POOL, 5000)).0, "filtered", "never sent to FAR");
    assert_eq!(n.run(OUT_PORT, &udp(SERVER, 99, POOL, 5000)).0, "out:0", "same address, any port");
    assert_eq!(n.run(OUT_PORT, &udp(SERVER, 53, POOL, 6000)).0, "no-mapping");
    assert_eq!(n.run(OUT_PORT, &udp(SERVER, 53, [198, 51, 100, 99], 5000)).0, "not-our-address");
    assert_eq!(n.run(IN_PORT, &udp([10, 9, 9, 9], 5000, SERVER, 53)).0, "source-not-inside");
    let mut gre = Vec::new();
    PacketBuilder::ethernet2(MAC_A, OUR_IN)
        .ipv4(HOST_A, SERVER, 64)
        .write(&mut gre, etherparse::IpNumber(47), b"gre")
        .unwrap();
    assert_eq!(n.run(IN_PORT, &gre).0, "unsupported-protocol");
    let mut arp = udp(HOST_A, 1, SERVER, 2);
    arp[12..14].copy_from_slice(&[0x08, 0x06]);
    assert_eq!(n.run(IN_PORT, &arp).0, "not-ipv4");
    let mut ts = Vec::new();
    PacketBuilder::ethernet2(MAC_A, OUR_IN)
        .ipv4(HOST_A, SERVER, 64)
        .icmpv4(Icmpv4Type::TimestampRequest(etherparse::icmpv4::TimestampMessage {
            id: 1,
            seq: 1,
            originate_timestamp: 0,
            receive_timestamp: 0,
            transmit_timestamp: 0,
        }))
        .write(&mut ts, &[])
        .unwrap();
    assert_eq!(n.run(IN_PORT, &ts).0, "icmp-type-not-translated");
    let mut nb = Nat::new(&NAT.replace("outside-gateway = \"198.51.100.1\", ", ""));
    assert_eq!(nb.run(IN_PORT, &udp(HOST_A, 5000, FAR, 53)).0, "Refused(NoRoute)", "no gateway, FAR off every subnet");
    assert_eq!(n.run(IN_PORT, &udp(HOST_A, 68, [255; 4], 67)).0, "broadcast-or-multicast", "RFC 1812 5.3.5.1");
    assert_eq!(n.run(IN_PORT, &udp(HOST_A, 5353, [224, 0, 0, 251], 5353)).0, "broadcast-or-multicast");
    assert_eq!(n.run(IN_PORT, &udp(HOST_A, 5353, HOST_B, 9)).0, "destination-inside", "not the NAT's to translate");
}

#[test]
fn bad_parameters_are_refused_at_their_place() {
    let e = load(&NAT.replace("inside = [\"in\"]", "inside = [\"inn\"]")).unwrap_err();
    assert!(e.contains("no port named `inn`") && e.contains("known ports: in, out"), "{e}");
    let e = load(&NAT.replace("pool = [", "timeouts = { udp = 60 }, pool = [")).unwrap_err();
    assert!(e.contains("udp timeout 60 s is below the RFC minimum") && e.contains("RFC 4787 REQ-5"), "{e}");
    let e = load(&NAT.replace("\"198.51.100.10:8080\"", "\"198.51.100.10\"")).unwrap_err();
    assert!(e.contains("not address:port"), "{e}");
    let e = load(&NAT.replace("[\"198.51.100.10\"]", "[\"198.51.100.0/16\"]")).unwrap_err();
    assert!(e.contains("more than 1024 addresses"), "{e}");
    let e = load(&NAT.replace("outside = \"out\"", "outside = \"in\"")).unwrap_err();
    assert!(e.contains("`in` is the outside port"), "{e}");
    assert!(e.contains("nat.toml:"), "located: {e}");
}

/// `nfv ctl nat ...` on the running stage.
fn ctl(n: &Nat, words: &str) -> Result<nfv_core::live::Answer, String> {
    let live = n.cfg.chains[0].stages[0].builder.live().expect("nat44 changes live");
    live.command(&words.split_whitespace().collect::<Vec<_>>())
}

#[test]
fn port_forwards_are_added_and_deleted_on_two_running_workers() {
    let mut n = Nat::with_workers(NAT, 2);
    // Host A's dynamic mapping holds outside port 5000.
    let (_, f, _) = n.run_at(0, IN_PORT, &tcp(HOST_A, 5000, FAR, 443, true));
    let (src, a_port, _, _) = decode(&f);
    assert_eq!(src, POOL);
    let listed = ctl(&n, "forward list").unwrap();
    assert_eq!(listed.table.unwrap().1, [vec!["tcp".to_string(), "198.51.100.10:8080".into(), "10.0.0.2:80".into()]]);

    // A forward on that very port: the dynamic mapping ends, the forward
    // wins, on whichever worker the packet reaches.
    let added = ctl(&n, &format!("forward add tcp 198.51.100.10:{a_port} 10.0.0.2:22")).unwrap();
    assert_eq!(added.text, "forwards version 1: 2 port forwards\n");
    for w in 0..2 {
        let (v, f, _) = n.run_at(w, OUT_PORT, &tcp(FAR, 40000 + w as u16, POOL, a_port, true));
        assert_eq!((v.as_str(), decode(&f)), ("out:0", (FAR, 40000 + w as u16, HOST_B, 22)), "worker {w}");
    }
    let (v, _, _) = n.run_at(0, OUT_PORT, &tcp(FAR, 443, POOL, a_port, false));
    assert_eq!(v, "out:0", "host A's old flow on that port is the forward's now, to host B");

    // Deleted: the forward's sessions end and nothing comes in any more.
    ctl(&n, "forward delete tcp 198.51.100.10:8080").unwrap();
    for w in 0..2 {
        let (v, _, _) = n.run_at(w, OUT_PORT, &tcp(FAR, 41000, POOL, 8080, true));
        assert_eq!(v, "no-mapping", "worker {w}");
    }

    let refused = |w: &str| ctl(&n, w).unwrap_err();
    assert_eq!(
        refused(&format!("forward add tcp 198.51.100.10:{a_port} 10.0.0.3:22")),
        format!(
            "tcp 198.51.100.10:{a_port} -> 10.0.0.3:22 is forwarded twice (one forward per outside address and port)"
        )
    );
    assert!(refused("forward add tcp 198.51.100.10:9000 10.0.0.2:22").contains("forward to one inside endpoint"));
    assert!(
        refused("forward add tcp 198.51.100.99:80 10.0.0.9:80")
            .contains("198.51.100.99 is not an address nfv answers for outside")
    );
    assert!(refused("forward add sctp 198.51.100.10:80 10.0.0.9:80").starts_with("forward protocol `sctp`"));
    assert_eq!(refused("forward delete udp 198.51.100.10:8080"), "no udp forward from 198.51.100.10:8080");
    assert!(refused("forward flush").starts_with("usage: nat forward list"));
    assert!(ctl(&n, "forward list").unwrap().text.starts_with("forwards version 2: 1 port forwards"));
}

#[test]
fn a_reload_changes_the_forwards_and_refuses_a_new_pool_by_key() {
    let mut n = Nat::new(NAT);
    let r = nfv_testkit::reloader(&n.cfg, nfv_nat::register);
    let text = r.running().source.1.to_string();
    let file = std::env::temp_dir().join(format!("nfv-nat-reload-{}.toml", std::process::id()));
    std::fs::write(
        &file,
        text.replace("198.51.100.10:8080\", inside = \"10.0.0.2:80", "198.51.100.10:8081\", inside = \"10.0.0.2:80"),
    )
    .unwrap();
    let lines = r.reload(Some(&file)).unwrap();
    assert_eq!(lines[1], "stage `c/nat44`: forwards version 1: 1 port forwards", "{lines:?}");
    assert_eq!(n.run(OUT_PORT, &tcp(FAR, 40000, POOL, 8081, true)).0, "out:0");
    assert_eq!(n.run(OUT_PORT, &tcp(FAR, 40001, POOL, 8080, true)).0, "no-mapping");
    std::fs::write(&file, text.replace("pool = [\"198.51.100.10\"]", "pool = [\"198.51.100.11\"]")).unwrap();
    let lines = r.reload(Some(&file)).unwrap_err();
    assert_eq!(lines[0], "stage `c/nat44`: pool: [\"198.51.100.10\"] -> [\"198.51.100.11\"]");
    let _ = std::fs::remove_file(&file);
}
