//! The XDP engine forwards exactly as the workers would: frames run
//! through the software stages (`ttl-decrement`, `macswap`) and through
//! the XDP program configured for the same chain (`BPF_PROG_TEST_RUN`,
//! no device) leave byte for byte the same; what the program cannot
//! decide (an expiring TTL, a frame that is not IPv4) goes up to the
//! workers untouched.
#![cfg(feature = "xdp")]

use etherparse::PacketBuilder;
use nfv_core::BuildCtx;
use nfv_core::packet::VerdictKind;
use nfv_hw::xdp::{Program, action, flags};
use nfv_testkit::{FrameRunner, root_or_skip, two_port_config};

fn udp(ttl: u8, payload: usize) -> Vec<u8> {
    let mut f = Vec::new();
    PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
        .ipv4([10, 0, 0, 1], [198, 51, 100, 7], ttl)
        .udp(4000, 53)
        .write(&mut f, &vec![0x5a; payload])
        .unwrap();
    f
}

/// The chain in software: the verdict of the last stage and the bytes.
fn software(frame: &[u8]) -> (VerdictKind, Vec<u8>) {
    let cfg = two_port_config(
        "t.toml",
        ["a", "b"],
        "{ kind = \"ttl-decrement\" }, { kind = \"macswap\" }",
        nfv_basic::register,
    )
    .unwrap();
    let macs = [[2, 0, 0, 0, 0, 0xa], [2, 0, 0, 0, 0, 0xb]];
    let ctx = BuildCtx { worker: 0, port_macs: &macs, headers_read_later: true, chain_rank: 0, chain_workers: 1 };
    let mut runner = FrameRunner::new([]);
    let mut bytes = frame.to_vec();
    let mut verdict = VerdictKind::Next;
    for s in &cfg.chains[0].stages {
        let (v, _, out) = runner.run(&mut *s.builder.build(&ctx), 0, &bytes);
        (verdict, bytes) = (v, out);
        if v != VerdictKind::Next {
            break;
        }
    }
    (verdict, bytes)
}

#[test]
fn ttl_and_macswap_in_xdp_leave_the_bytes_the_workers_would() {
    if !root_or_skip("ttl_and_macswap_in_xdp_leave_the_bytes_the_workers_would") {
        return;
    }
    let p = Program::load().unwrap();
    p.set_flags(flags::TTL | flags::MACSWAP | flags::BACK).unwrap();
    for (ttl, len) in [(64, 18), (2, 0), (255, 1400), (128, 1)] {
        let f = udp(ttl, len);
        let (v, sw) = software(&f);
        assert_eq!(v, VerdictKind::Next, "the workers pass it on");
        let (verdict, out) = p.test_run(&f).unwrap();
        assert_eq!(verdict, action::TX, "decided in XDP, back out");
        assert_eq!(out, sw, "byte for byte as the workers leave it (ttl {ttl}, {len} octets)");
    }
    // What the program leaves to the workers goes up untouched.
    let expiring = udp(1, 18);
    assert_ne!(software(&expiring).0, VerdictKind::Next, "the workers answer it (time exceeded)");
    let mut arp = udp(64, 18);
    arp[12..14].copy_from_slice(&[0x08, 0x06]);
    for f in [expiring, arp] {
        let (verdict, out) = p.test_run(&f).unwrap();
        assert_eq!((verdict, out), (action::PASS, f), "up to the workers (no socket here: pass)");
    }
    // Off: everything goes up.
    p.set_flags(0).unwrap();
    assert_eq!(p.test_run(&udp(64, 18)).unwrap().0, action::PASS);
}

mod nat {
    use super::*;
    use nfv_core::offload::{EngineTask, MemoryEngine};
    use nfv_hw::xdp::FlowKey;
    use std::sync::Arc;

    const HOST: [u8; 4] = [10, 0, 0, 1];
    const FAR: [u8; 4] = [203, 0, 113, 7];
    const POOL: [u8; 4] = [198, 51, 100, 10];
    const MAC_HOST: [u8; 6] = [2, 0, 0, 0, 0, 0xa];
    const MAC_GW: [u8; 6] = [2, 0, 0, 0, 0, 0xee];
    const OUR: [[u8; 6]; 2] = [[2, 0, 0, 0, 1, 0], [2, 0, 0, 0, 1, 1]];
    /// The ports' interfaces: none of the test's (the program redirects,
    /// it does not TX).
    const EGRESS: [u32; 2] = [0xfff0, 0xfff1];

    /// The software stage, installing its flows through an offloader
    /// into an engine in memory (as the runtime would into the program).
    struct Sw {
        stage: Box<dyn nfv_core::Stage>,
        runner: FrameRunner,
        task: EngineTask,
        engine: Arc<MemoryEngine>,
    }

    impl Sw {
        fn new() -> Self {
            let stage = "{ kind = \"nat44\", inside = [\"in\"], outside = \"out\", pool = [\"198.51.100.10\"], \
                         outside-gateway = \"198.51.100.1\", inside-prefixes = [\"10.0.0.0/24\"] }";
            let cfg = two_port_config("nat.toml", ["in", "out"], stage, nfv_nat::register).unwrap();
            let ctx =
                BuildCtx { worker: 0, port_macs: &OUR, headers_read_later: false, chain_rank: 0, chain_workers: 1 };
            let ip = |a: [u8; 4]| std::net::IpAddr::from(a);
            let mut runner = FrameRunner::new([(ip(HOST), MAC_HOST, 0), (ip([198, 51, 100, 1]), MAC_GW, 1)]);
            runner.set_port(0, OUR[0], &["10.0.0.254/24"]);
            runner.set_port(1, OUR[1], &["198.51.100.254/24"]);
            let mut stage = cfg.chains[0].stages[0].builder.build(&ctx);
            let engine = Arc::new(MemoryEngine::default());
            let mut task = EngineTask::new(engine.clone(), Arc::from(EGRESS));
            assert!(stage.take_offload(task.offloader()));
            Self { stage, runner, task, engine }
        }

        fn run(&mut self, port: u16, f: &[u8]) -> Vec<u8> {
            let (v, _, out) = self.runner.run(&mut *self.stage, port, f);
            assert!(matches!(v, VerdictKind::Out(_)), "the workers forward it: {v:?}");
            out
        }

        /// What the stage installed so far, into the program.
        fn sync(&mut self, x: &Program) -> usize {
            self.task.step();
            let flows = self.engine.flows();
            for (k, v) in &flows {
                x.flow_insert(k, v).unwrap();
            }
            flows.len()
        }
    }

    fn frame(proto: u8, src: ([u8; 4], u16), dst: ([u8; 4], u16), tcp_flags: u8, payload: &[u8]) -> Vec<u8> {
        let mut f = Vec::new();
        let b = PacketBuilder::ethernet2([2, 0, 0, 0, 9, 9], [2, 0, 0, 0, 1, 0]).ipv4(src.0, dst.0, 64);
        if proto == 17 {
            b.udp(src.1, dst.1).write(&mut f, payload).unwrap();
        } else {
            let mut t = b.tcp(src.1, dst.1, 1000, 64000);
            if tcp_flags & 0x02 != 0 {
                t = t.syn();
            }
            if tcp_flags & 0x10 != 0 {
                t = t.ack(77);
            }
            t.write(&mut f, payload).unwrap();
        }
        f
    }

    /// The translated source or destination of `out`: (address, port).
    fn endpoint(out: &[u8], src: bool) -> (u32, u16) {
        let (a, p) = if src { (26, 34) } else { (30, 36) };
        (u32::from_be_bytes(out[a..a + 4].try_into().unwrap()), u16::from_be_bytes([out[p], out[p + 1]]))
    }

    #[test]
    fn established_sessions_in_xdp_leave_the_bytes_the_workers_would() {
        if !root_or_skip("established_sessions_in_xdp_leave_the_bytes_the_workers_would") {
            return;
        }
        let x = Program::load().unwrap();
        x.set_flags(flags::FLOWS).unwrap();
        let mut sw = Sw::new();
        for proto in [17u8, 6] {
            let sport = if proto == 17 { 5000 } else { 5001 };
            // The first packet opens the session in the workers (and a
            // TCP connection is established by both SYNs).
            let first = frame(proto, (HOST, sport), (FAR, 443), 0x02, b"");
            assert_eq!(x.test_run(&first).unwrap().0, action::PASS, "no session below yet: up");
            let opened = sw.run(0, &first);
            let (pool, port) = endpoint(&opened, true);
            assert_eq!(pool, u32::from_be_bytes(POOL));
            if proto == 6 {
                assert_eq!(sw.sync(&x), 2, "the UDP flow's two directions; a half-open connection: nothing");
                // The SYN-ACK establishes it (RFC 7857 section 2.1): its
                // direction goes below as it leaves.
                sw.run(1, &frame(6, (FAR, 443), (POOL, port), 0x12, b""));
                assert_eq!(sw.sync(&x), 3);
            }
            // The next ones, both ways, installed by the stage as it
            // translated them, then in XDP as in the workers.
            let out = frame(proto, (HOST, sport), (FAR, 443), 0x10, b"established data");
            let sw_out = sw.run(0, &out);
            sw.sync(&x);
            let (verdict, xdp_out) = x.test_run(&out).unwrap();
            assert_eq!((verdict, &xdp_out), (action::REDIRECT, &sw_out), "outbound, proto {proto}");
            let back = frame(proto, (FAR, 443), (POOL, port), 0x10, b"answer");
            let sw_back = sw.run(1, &back);
            sw.sync(&x);
            let (verdict, xdp_back) = x.test_run(&back).unwrap();
            assert_eq!((verdict, &xdp_back), (action::REDIRECT, &sw_back), "inbound, proto {proto}");
            let key = FlowKey::new(proto, u32::from_be_bytes(FAR), 443, u32::from_be_bytes(POOL), port);
            assert!(x.flow_get(&key).unwrap().unwrap().last_seen > 0, "activity for the idle timer");
            if proto == 6 {
                // State changes stay with the workers.
                let fin = frame(6, (HOST, sport), (FAR, 443), 0x11, b"");
                let mut fin_bytes = fin.clone();
                fin_bytes[14 + 20 + 13] |= 0x01;
                assert_eq!(x.test_run(&fin_bytes).unwrap().0, action::PASS, "FIN goes up");
            }
        }
        // A UDP datagram without a checksum keeps none.
        let mut nosum = frame(17, (HOST, 5000), (FAR, 443), 0, b"no checksum");
        nosum[14 + 20 + 6..14 + 20 + 8].copy_from_slice(&[0, 0]);
        let sw_out = sw.run(0, &nosum);
        assert_eq!(x.test_run(&nosum).unwrap().1, sw_out);
        assert_eq!(&sw_out[14 + 20 + 6..14 + 20 + 8], &[0, 0]);
        // Removed: up again.
        let key = FlowKey::new(17, u32::from_be_bytes(HOST), 5000, u32::from_be_bytes(FAR), 443);
        assert!(x.flow_remove(&key).unwrap());
        assert_eq!(x.test_run(&nosum).unwrap().0, action::PASS);
    }
}

mod lb {
    use super::*;
    use nfv_core::offload::{EngineTask, MemoryEngine};
    use std::sync::Arc;

    const CLIENT: [u8; 4] = [203, 0, 113, 7];
    const VIP: [u8; 4] = [192, 0, 2, 10];
    const OUR: [[u8; 6]; 2] = [[2, 0, 0, 0, 1, 0], [2, 0, 0, 0, 1, 1]];

    /// The software lb stage for `mode`'s VIP (backends 10.1.0.2 and
    /// .3 on port 1), installing through an engine in memory, its runner
    /// (the client and backends resolved), and the program set to forward
    /// flows.
    struct Bed {
        sw: Box<dyn nfv_core::Stage>,
        runner: FrameRunner,
        task: EngineTask,
        engine: Arc<MemoryEngine>,
        x: Program,
    }

    impl Bed {
        fn new(mode: &str) -> Self {
            let stage = format!(
                "{{ kind = \"lb\", clients = [\"c\"], backends-port = \"b\", source-address = \"10.1.0.1\", \
                 vips = [{{ vip = \"192.0.2.10:80\", mode = \"{mode}\", \
                 backends = [{{ addr = \"10.1.0.2\" }}, {{ addr = \"10.1.0.3\" }}] }}] }}"
            );
            let cfg = two_port_config("lb.toml", ["c", "b"], &stage, nfv_lb::register).unwrap();
            let ctx =
                BuildCtx { worker: 0, port_macs: &OUR, headers_read_later: false, chain_rank: 0, chain_workers: 1 };
            let mut sw = cfg.chains[0].stages[0].builder.build(&ctx);
            let engine = Arc::new(MemoryEngine::default());
            let mut task = EngineTask::new(engine.clone(), Arc::from(vec![0xfff0, 0xfff1]));
            assert!(sw.take_offload(task.offloader()));
            let ip = |a: [u8; 4]| std::net::IpAddr::from(a);
            let mut runner = FrameRunner::new([
                (ip([10, 1, 0, 2]), [2, 0, 0, 0, 0xb, 2], 1),
                (ip([10, 1, 0, 3]), [2, 0, 0, 0, 0xb, 3], 1),
                (ip(CLIENT), [2, 0, 0, 0, 0, 0xc], 0),
            ]);
            runner.set_port(0, OUR[0], &["203.0.113.1/24"]);
            runner.set_port(1, OUR[1], &["10.1.0.1/24"]);
            let x = Program::load().unwrap();
            x.set_flags(flags::FLOWS).unwrap();
            Self { sw, runner, task, engine, x }
        }

        /// The workers' verdict and bytes for `frame` arriving on `port`.
        fn run(&mut self, port: u16, frame: &[u8]) -> (VerdictKind, Vec<u8>) {
            let (v, _, out) = self.runner.run(&mut *self.sw, port, frame);
            (v, out)
        }

        /// What the stage installed so far, into the program.
        fn sync(&mut self) {
            self.task.step();
            for (k, v) in self.engine.flows() {
                self.x.flow_insert(&k, &v).unwrap();
            }
        }
    }

    #[test]
    fn direct_server_return_connections_in_xdp_leave_the_bytes_the_workers_would() {
        if !root_or_skip("direct_server_return_connections_in_xdp_leave_the_bytes_the_workers_would") {
            return;
        }
        let mut bed = Bed::new("dsr");
        for sport in [40000u16, 40001, 40002] {
            let seg = |syn: bool, payload: &[u8]| {
                let mut f = Vec::new();
                let b = PacketBuilder::ethernet2([2, 0, 0, 0, 0, 0xc], OUR[0])
                    .ipv4(CLIENT, VIP, 64)
                    .tcp(sport, 80, 1, 1000);
                let b = if syn { b.syn() } else { b.ack(5) };
                b.write(&mut f, payload).unwrap();
                f
            };
            let (v, _) = bed.run(0, &seg(true, b""));
            assert!(matches!(v, VerdictKind::Out(1)), "the connection opens in the workers");
            let data = seg(false, b"GET / HTTP/1.1\r\n\r\n");
            let (v, sw_out) = bed.run(0, &data);
            assert!(matches!(v, VerdictKind::Out(1)));
            bed.sync();
            let (verdict, xdp_out) = bed.x.test_run(&data).unwrap();
            assert_eq!((verdict, &xdp_out), (action::REDIRECT, &sw_out), "client port {sport}");
            assert_eq!(&xdp_out[12..], &data[12..], "DSR: the packet unchanged past the Ethernet addresses");
        }
    }

    #[test]
    fn nat_mode_connections_in_xdp_leave_the_bytes_the_workers_would_both_ways() {
        if !root_or_skip("nat_mode_connections_in_xdp_leave_the_bytes_the_workers_would_both_ways") {
            return;
        }
        let mut bed = Bed::new("nat");
        let tcp = |src: ([u8; 4], u16), dst: ([u8; 4], u16), syn: bool, payload: &[u8]| {
            let mut f = Vec::new();
            let b = PacketBuilder::ethernet2([2, 0, 0, 0, 0, 0x9], OUR[0])
                .ipv4(src.0, dst.0, 64)
                .tcp(src.1, dst.1, 1, 1000);
            let b = if syn { b.syn() } else { b.ack(5) };
            b.write(&mut f, payload).unwrap();
            f
        };
        for sport in [40000u16, 40001] {
            let (v, syn_out) = bed.run(0, &tcp((CLIENT, sport), (VIP, 80), true, b""));
            assert!(matches!(v, VerdictKind::Out(1)), "the connection opens in the workers");
            // Our end toward the backend, as the workers chose it.
            let nat_port = u16::from_be_bytes([syn_out[34], syn_out[35]]);
            let data = tcp((CLIENT, sport), (VIP, 80), false, b"GET / HTTP/1.1\r\n\r\n");
            let (v, sw_out) = bed.run(0, &data);
            assert!(matches!(v, VerdictKind::Out(1)));
            let answer = tcp(([10, 1, 0, 2], 80), ([10, 1, 0, 1], nat_port), false, b"HTTP/1.1 200 OK\r\n\r\n");
            let (v, sw_back) = bed.run(1, &answer);
            assert!(matches!(v, VerdictKind::Out(0)), "the answer goes back to the client: {v:?}");
            bed.sync();
            let (verdict, xdp_out) = bed.x.test_run(&data).unwrap();
            assert_eq!((verdict, &xdp_out), (action::REDIRECT, &sw_out), "to the backend, client port {sport}");
            let (verdict, xdp_back) = bed.x.test_run(&answer).unwrap();
            assert_eq!((verdict, &xdp_back), (action::REDIRECT, &sw_back), "back to the client, client port {sport}");
        }
        assert_eq!(bed.engine.flows().len(), 4, "both directions of both connections");
    }

    #[test]
    fn ip_in_ip_connections_in_xdp_leave_the_bytes_the_workers_would() {
        if !root_or_skip("ip_in_ip_connections_in_xdp_leave_the_bytes_the_workers_would") {
            return;
        }
        let mut bed = Bed::new("ipip");
        // Small segments (the frame padded to 60 octets: the outer length
        // covers the padding, as the workers write it), a TOS and DF to copy.
        for (sport, payload, tos) in [(40000u16, &b""[..], 0u8), (40001, &b"GET / HTTP/1.1\r\n\r\n"[..], 0x2e << 2)] {
            let seg = |syn: bool| {
                let mut f = Vec::new();
                let mut ip = etherparse::Ipv4Header::new(0, 64, etherparse::IpNumber::TCP, CLIENT, VIP).unwrap();
                ip.dscp = etherparse::IpDscp::try_new(tos >> 2).unwrap();
                ip.dont_fragment = true;
                let b = PacketBuilder::ethernet2([2, 0, 0, 0, 0, 0xc], OUR[0])
                    .ip(etherparse::IpHeaders::Ipv4(ip, Default::default()))
                    .tcp(sport, 80, 1, 1000);
                let b = if syn { b.syn() } else { b.ack(5) };
                b.write(&mut f, payload).unwrap();
                f.resize(f.len().max(60), 0);
                f
            };
            let (v, _) = bed.run(0, &seg(true));
            assert!(matches!(v, VerdictKind::Out(1)), "the connection opens in the workers");
            let data = seg(false);
            let (v, sw_out) = bed.run(0, &data);
            assert!(matches!(v, VerdictKind::Out(1)));
            bed.sync();
            let (verdict, xdp_out) = bed.x.test_run(&data).unwrap();
            assert_eq!((verdict, &xdp_out), (action::REDIRECT, &sw_out), "client port {sport}");
            assert_eq!(xdp_out[14 + 9], 4, "IP-in-IP");
        }
    }
}

mod acl {
    use super::*;
    use nfv_hw::xdp::AclRule;

    /// Rules in the configuration's words and as the filter holds them.
    const RULES: &str = "{ action = \"deny\", proto = \"tcp\", dst-port = 23 },\
        { action = \"permit\", src = \"10.0.0.0/8\", proto = \"udp\", dst-port = \"1024-65535\" },\
        { action = \"deny\", proto = \"tcp\", tcp-flags = [\"syn\", \"!ack\"], dst-port = \"0-1023\" },\
        { action = \"deny\", proto = \"icmp\", src-port = 8 },\
        { action = \"deny\", dst = \"198.51.100.0/24\" }";

    fn filter() -> Vec<AclRule> {
        let any = AclRule { sport: (0, u16::MAX), dport: (0, u16::MAX), ..AclRule::default() };
        vec![
            AclRule { proto: 6, proto_mask: 0xff, dport: (23, 23), action: 1, ..any },
            AclRule {
                src: [10, 0, 0, 0],
                src_mask: [255, 0, 0, 0],
                proto: 17,
                proto_mask: 0xff,
                dport: (1024, 65535),
                ..any
            },
            AclRule { proto: 6, proto_mask: 0xff, flags: 0x02, flags_mask: 0x12, dport: (0, 1023), action: 1, ..any },
            AclRule { proto: 1, proto_mask: 0xff, sport: (8, 8), action: 1, ..any },
            AclRule { dst: [198, 51, 100, 0], dst_mask: [255, 255, 255, 0], action: 1, ..any },
        ]
    }

    fn packets() -> Vec<Vec<u8>> {
        let b = || PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2]);
        let mut v = Vec::new();
        for (src, dst, dport, syn, ack) in [
            ([10, 1, 2, 3], [192, 0, 2, 1], 23u16, false, true),
            ([10, 1, 2, 3], [192, 0, 2, 1], 80, true, false),
            ([10, 1, 2, 3], [192, 0, 2, 1], 80, true, true),
            ([172, 16, 0, 1], [198, 51, 100, 9], 443, false, true),
            ([172, 16, 0, 1], [192, 0, 2, 9], 443, false, true),
        ] {
            let mut f = Vec::new();
            let t = b().ipv4(src, dst, 64).tcp(40000, dport, 1, 1000);
            let t = if syn { t.syn() } else { t };
            let t = if ack { t.ack(1) } else { t };
            t.write(&mut f, b"x").unwrap();
            v.push(f);
        }
        for (src, dport) in [([10, 9, 9, 9], 5353u16), ([11, 9, 9, 9], 5353), ([10, 9, 9, 9], 53)] {
            let mut f = Vec::new();
            b().ipv4(src, [192, 0, 2, 1], 64).udp(40000, dport).write(&mut f, b"q").unwrap();
            v.push(f);
        }
        for echo in [true, false] {
            let mut f = Vec::new();
            let i = b().ipv4([10, 0, 0, 1], [192, 0, 2, 1], 64);
            if echo { i.icmpv4_echo_request(7, 1) } else { i.icmpv4_echo_reply(7, 1) }.write(&mut f, b"ping").unwrap();
            v.push(f);
        }
        v
    }

    #[test]
    fn acl_rules_as_an_xdp_filter_decide_every_packet_as_the_workers_do() {
        if !root_or_skip("acl_rules_as_an_xdp_filter_decide_every_packet_as_the_workers_do") {
            return;
        }
        let x = Program::load().unwrap();
        x.set_flags(flags::ACL | flags::BACK).unwrap();
        for default_deny in [false, true] {
            let default = if default_deny { "deny" } else { "permit" };
            let stage = format!("{{ kind = \"acl\", default = \"{default}\", rules = [{RULES}] }}");
            let cfg = two_port_config("acl.toml", ["a", "b"], &stage, nfv_acl::register).unwrap();
            let macs = [[2, 0, 0, 0, 0, 0xa], [2, 0, 0, 0, 0, 0xb]];
            let ctx =
                BuildCtx { worker: 0, port_macs: &macs, headers_read_later: false, chain_rank: 0, chain_workers: 1 };
            let mut sw = cfg.chains[0].stages[0].builder.build(&ctx);
            // The filter the stage hands the engine (at its first batch),
            // as written out above, into the program.
            let engine = std::sync::Arc::new(nfv_core::offload::MemoryEngine::default());
            let mut task = nfv_core::offload::EngineTask::new(engine.clone(), std::sync::Arc::from(vec![1, 2]));
            assert!(sw.take_offload(task.offloader()));
            let mut runner = FrameRunner::new([]);
            runner.run(&mut *sw, 0, &packets()[0]);
            task.step();
            let given = engine.filter().expect("the stage gave its filter");
            assert_eq!(
                (given.rules.as_slice(), given.default_deny, given.up),
                (filter().as_slice(), default_deny, false)
            );
            x.acl(&given.rules, given.default_deny, given.non_ip_deny).unwrap();
            for (i, f) in packets().iter().enumerate() {
                let (v, _, _) = runner.run(&mut *sw, 0, f);
                let (verdict, out) = x.test_run(f).unwrap();
                let want = if matches!(v, VerdictKind::Drop(_)) { action::DROP } else { action::TX };
                assert_eq!(verdict, want, "packet {i} (default {default}): the workers say {v:?}");
                if verdict == action::TX {
                    assert_eq!(&out, f, "permitted untouched");
                }
            }
        }
    }
}

mod vtep {
    use super::*;
    use nfv_core::offload::{EngineTask, MemoryEngine};
    use nfv_hw::xdp::{L2Key, VtepConf};
    use std::sync::Arc;

    const HOST: [u8; 6] = [2, 0, 0, 0, 0, 0xa1];
    const FAR_HOST: [u8; 6] = [2, 0, 0, 0, 0, 0xc3];
    const FAR_VTEP_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0xee];
    const OUR: [[u8; 6]; 2] = [[2, 0, 0, 0, 1, 0], [2, 0, 0, 0, 1, 1]];
    const LOCAL: [u8; 4] = [192, 0, 2, 1];
    const FAR: [u8; 4] = [192, 0, 2, 2];

    /// An inner IPv4 frame from `src` to `dst` (MACs), UDP or TCP.
    fn inner(src: [u8; 6], dst: [u8; 6], tcp: bool, payload: &[u8]) -> Vec<u8> {
        let mut f = Vec::new();
        let b = PacketBuilder::ethernet2(src, dst).ipv4([10, 9, 0, 1], [10, 9, 0, 2], 64);
        if tcp {
            b.tcp(40000, 80, 7, 1000).ack(1).write(&mut f, payload).unwrap();
        } else {
            b.udp(5000, 53).write(&mut f, payload).unwrap();
        }
        f
    }

    /// `frame` in VXLAN (VNI 100) from the far VTEP to us, UDP checksum 0.
    fn tunnel(frame: &[u8]) -> Vec<u8> {
        let mut payload = vec![0x08, 0, 0, 0, 0, 0, 100, 0];
        payload.extend_from_slice(frame);
        let mut f = Vec::new();
        PacketBuilder::ethernet2(FAR_VTEP_MAC, OUR[1])
            .ipv4(FAR, LOCAL, 64)
            .udp(49152, 4789)
            .write(&mut f, &payload)
            .unwrap();
        f[40..42].copy_from_slice(&[0, 0]);
        f
    }

    #[test]
    fn known_unicast_in_xdp_leaves_the_bytes_the_workers_would() {
        if !root_or_skip("known_unicast_in_xdp_leaves_the_bytes_the_workers_would") {
            return;
        }
        let stage = "{ kind = \"vtep\", underlay = \"b\", local-ip = \"192.0.2.1\", \
                     bridge-domains = [{ vni = 100, ports = [\"a\"], flood = [\"192.0.2.2\"] }] }";
        let cfg = two_port_config("vtep.toml", ["a", "b"], stage, nfv_vtep::register).unwrap();
        let ctx = BuildCtx { worker: 0, port_macs: &OUR, headers_read_later: false, chain_rank: 0, chain_workers: 1 };
        let mut sw = cfg.chains[0].stages[0].builder.build(&ctx);
        let lo = unsafe { libc::if_nametoindex(c"lo".as_ptr()) };
        // The access port is the loopback, where BPF_PROG_TEST_RUN runs
        // the program; the underlay a device of no test (a redirect).
        const UNDERLAY: u32 = 0xfff1;
        let engine = Arc::new(MemoryEngine::default());
        let mut task = EngineTask::new(engine.clone(), Arc::from(vec![lo, UNDERLAY]));
        assert!(sw.take_offload(task.offloader()));
        let mut runner = FrameRunner::new([(std::net::IpAddr::from(FAR), FAR_VTEP_MAC, 1)]);
        runner.set_port(0, OUR[0], &[]);
        runner.set_port(1, OUR[1], &["192.0.2.1/24"]);
        let x = Program::load().unwrap();
        let sync = |task: &mut EngineTask| {
            task.step();
            for (k, v) in engine.l2() {
                x.l2_insert(&k, &v).unwrap();
            }
        };
        // The far host speaks first (flooded: nothing to install), then
        // ours answers (the far host is known: encapsulated), then the
        // far host again (ours is known: decapsulated to its port).
        let (v, _, _) = runner.run(&mut *sw, 1, &tunnel(&inner(FAR_HOST, HOST, false, b"who")));
        assert!(matches!(v, VerdictKind::Out(0)), "{v:?}");
        sync(&mut task);
        assert!(engine.l2().is_empty(), "a flood installs nothing");
        let (vtep, ifindex) = engine.vtep().expect("the stage gave its VTEP");
        assert_eq!(
            (vtep.underlay, vtep.ports.as_slice(), ifindex.as_slice()),
            (1, &[(0, 100)][..], &[lo, UNDERLAY][..])
        );
        for tcp in [false, true] {
            let out = inner(HOST, FAR_HOST, tcp, b"answer from here");
            let (v, _, sw_out) = runner.run(&mut *sw, 0, &out);
            assert!(matches!(v, VerdictKind::Out(1)), "encapsulated by the workers: {v:?}");
            let back = tunnel(&inner(FAR_HOST, HOST, tcp, b"and back"));
            let (v, _, sw_back) = runner.run(&mut *sw, 1, &back);
            assert!(matches!(v, VerdictKind::Out(0)), "decapsulated by the workers: {v:?}");
            sync(&mut task);
            let l2 = engine.l2();
            assert_eq!(l2.len(), 2, "both MACs: {l2:?}");
            assert_eq!(l2[&L2Key::new(100, HOST)].ifindex, lo);
            assert_eq!(
                (l2[&L2Key::new(100, FAR_HOST)].remote, l2[&L2Key::new(100, FAR_HOST)].hop_mac),
                (FAR, FAR_VTEP_MAC)
            );
            // Encapsulation: from the access port (the loopback, VNI 100).
            let mut conf: VtepConf = vtep.conf;
            conf.underlay = UNDERLAY;
            x.vtep(&conf).unwrap();
            x.configure_vni(lo, flags::VTEP, 0, 100).unwrap();
            let (verdict, xdp_out) = x.test_run(&out).unwrap();
            assert_eq!((verdict, &xdp_out), (action::REDIRECT, &sw_out), "encapsulation, tcp {tcp}");
            // Decapsulation: from the underlay (the loopback now).
            conf.underlay = lo;
            x.vtep(&conf).unwrap();
            let (verdict, xdp_back) = x.test_run(&back).unwrap();
            assert_eq!((verdict, &xdp_back), (action::REDIRECT, &sw_back), "decapsulation, tcp {tcp}");
        }
        // What XDP cannot decide goes up untouched: an unknown inner
        // destination, a group address, a tunnel with a UDP checksum.
        for f in [
            tunnel(&inner(FAR_HOST, [2, 0, 0, 0, 0, 0x99], false, b"x")),
            tunnel(&inner(FAR_HOST, [0xff; 6], false, b"x")),
            {
                let mut t = tunnel(&inner(FAR_HOST, HOST, false, b"x"));
                t[40] = 1;
                t
            },
        ] {
            assert_eq!(x.test_run(&f).unwrap(), (action::PASS, f.clone()));
        }
    }
}

/// The engine reads every installed entry's activity in a few batched
/// system calls, as many entries as were installed, flows and MACs alike.
#[test]
fn the_engine_reads_all_activity_in_batches() {
    if !root_or_skip("the_engine_reads_all_activity_in_batches") {
        return;
    }
    use nfv_core::offload::{Engine as _, Entry, Key};
    use nfv_hw::xdp::{Engine, FlowKey, FlowValue, L2Key, L2Value};
    let e = Engine::load().unwrap();
    for i in 0..3000u32 {
        e.insert(&Entry::Flow(FlowKey::new(17, i, 1, 2, 3), FlowValue::default())).unwrap();
    }
    e.insert(&Entry::L2(L2Key::new(100, [2, 0, 0, 0, 0, 1]), L2Value::local())).unwrap();
    let seen = e.activity().unwrap();
    assert_eq!(seen.len(), 3001);
    assert_eq!(seen.iter().filter(|(k, _)| matches!(k, Key::L2(_))).count(), 1);
    assert!(e.remove(&Key::Flow(FlowKey::new(17, 7, 1, 2, 3))).unwrap());
    assert_eq!(e.activity().unwrap().len(), 3000);
}
