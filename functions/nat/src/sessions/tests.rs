//! The table on its own: mappings, filtering, timeouts, eviction, and a
//! random walk checked against its invariants.

use super::tcp::TCP_ACK;
use super::*;

const IN1: u32 = 0x0a00_0001;
const IN2: u32 = 0x0a00_0002;
const POOL: u32 = 0xc633_640a;
const REM: u32 = 0xc633_6402;
const REM2: u32 = 0xc633_6403;

fn tu(proto: u8, addr: u32, port: u16, rem_addr: u32, rem_port: u16) -> Tuple {
    Tuple { proto, addr, port, rem_addr, rem_port }
}

fn table(max: usize, when_full: WhenFull) -> NatTable {
    NatTable::new(&TableConfig {
        max_sessions: max,
        when_full,
        timeouts: Timeouts::default(),
        pool: vec![POOL],
        port_range: (1024, 65535),
        worker: 0,
        workers: 1,
        forwards: vec![(proto::TCP, IN2, 80, POOL, 8080)],
        seed: 7,
    })
}

#[test]
fn mappings_are_endpoint_independent_and_preserve_ports() {
    let mut t = table(100, WhenFull::Refuse);
    let a = t.open_outbound(&tu(proto::UDP, IN1, 5000, REM, 53), 0).unwrap();
    let b = t.open_outbound(&tu(proto::UDP, IN1, 5000, REM2, 53), 0).unwrap();
    let (sa, sb) = (*t.session(a), *t.session(b));
    assert_eq!((sa.out_addr, sa.out_port), (POOL, 5000), "port preserved");
    assert_eq!((sb.out_addr, sb.out_port), (sa.out_addr, sa.out_port), "same mapping for another remote");
    assert_eq!(t.find_inside(&tu(proto::UDP, IN1, 5000, REM2, 53)), Some(b));
    assert_eq!(t.find_outside(&tu(proto::UDP, POOL, 5000, REM, 53)), Some(a));
    // Another inside host with the same port gets another port, same parity.
    let c = t.open_outbound(&tu(proto::UDP, IN2, 5000, REM, 53), 0).unwrap();
    let sc = *t.session(c);
    assert!(sc.out_port != 5000 && sc.out_port.is_multiple_of(2), "{}", sc.out_port);
    assert_eq!(t.stats.mappings_created, 2);
}

#[test]
fn filtering_decides_who_may_come_in_and_forwards_let_anyone() {
    let mut t = table(100, WhenFull::Refuse);
    t.open_outbound(&tu(proto::UDP, IN1, 5000, REM, 53), 0).unwrap();
    let adf = Filtering::AddressDependent;
    assert_eq!(t.open_inbound(&tu(proto::UDP, POOL, 5000, REM2, 9), 0, adf), Err(Refusal::Filtered));
    assert!(t.open_inbound(&tu(proto::UDP, POOL, 5000, REM, 9999), 0, adf).is_ok(), "same address, other port");
    assert!(t.open_inbound(&tu(proto::UDP, POOL, 5000, REM2, 9), 0, Filtering::EndpointIndependent).is_ok());
    assert_eq!(t.open_inbound(&tu(proto::UDP, POOL, 6000, REM, 9), 0, adf), Err(Refusal::NoMapping));
    let f = t.open_inbound(&tu(proto::TCP, POOL, 8080, REM2, 40000), 0, adf).unwrap();
    assert_eq!((t.session(f).in_addr, t.session(f).in_port), (IN2, 80), "a port forward");
    // The forwarded server's own outbound flows use its static mapping.
    let o = t.open_outbound(&tu(proto::TCP, IN2, 80, REM, 443), 0).unwrap();
    assert_eq!(t.session(o).out_port, 8080);
}

#[test]
fn tcp_state_picks_the_timeout_and_sessions_expire_in_order() {
    let mut t = table(100, WhenFull::Refuse);
    let s = t.open_outbound(&tu(proto::TCP, IN1, 40000, REM, 80), 0).unwrap();
    let u = t.open_outbound(&tu(proto::UDP, IN1, 5000, REM, 53), 0).unwrap();
    assert_eq!(t.session(s).class, Class::TcpTransitory);
    t.refresh(s, 10, TCP_SYN | TCP_ACK, false);
    assert_eq!(t.session(s).class, Class::TcpEstablished);
    // UDP expires at 300 s, established TCP lives on.
    assert_eq!(t.expire(299, 100), 0);
    assert_eq!(t.expire(300, 100), 1);
    assert_eq!(t.find_inside(&tu(proto::UDP, IN1, 5000, REM, 53)), None);
    assert!(t.find_outside(&tu(proto::UDP, POOL, 5000, REM, 53)).is_none());
    let _ = u;
    // FIN both ways: transitory, 240 s from the last packet.
    t.refresh(s, 400, TCP_FIN | TCP_ACK, true);
    assert_eq!(t.session(s).class, Class::TcpEstablished, "half closed");
    t.refresh(s, 401, TCP_FIN | TCP_ACK, false);
    assert_eq!(t.session(s).class, Class::TcpTransitory);
    assert_eq!(t.expire(640, 100), 0);
    assert_eq!(t.expire(641, 100), 1);
    assert!(t.is_empty());
    assert_eq!(t.stats.expired, 2);
    // The mappings went with their last sessions: the ports are free again.
    let again = t.open_outbound(&tu(proto::TCP, IN1, 40000, REM, 80), 700).unwrap();
    assert_eq!(t.session(again).out_port, 40000);
    // A RST closes at once into transitory.
    t.refresh(again, 701, TCP_SYN | TCP_ACK, false);
    t.refresh(again, 702, TCP_RST, true);
    assert_eq!(t.session(again).class, Class::TcpTransitory);
}

#[test]
fn a_full_table_evicts_the_least_recently_active_or_refuses() {
    let mut t = table(3, WhenFull::EvictOldest);
    let a = t.open_outbound(&tu(proto::UDP, IN1, 1, REM, 53), 0).unwrap();
    let _b = t.open_outbound(&tu(proto::UDP, IN1, 2, REM, 53), 1).unwrap();
    let _c = t.open_outbound(&tu(proto::UDP, IN1, 3, REM, 53), 2).unwrap();
    t.refresh(a, 3, 0, true);
    t.open_outbound(&tu(proto::UDP, IN1, 4, REM, 53), 4).unwrap();
    assert_eq!(t.len(), 3);
    assert!(t.find_inside(&tu(proto::UDP, IN1, 1, REM, 53)).is_some(), "refreshed: kept");
    assert!(t.find_inside(&tu(proto::UDP, IN1, 2, REM, 53)).is_none(), "the oldest went");
    assert_eq!(t.stats.evicted, 1);
    let mut r = table(2, WhenFull::Refuse);
    r.open_outbound(&tu(proto::UDP, IN1, 1, REM, 53), 0).unwrap();
    r.open_outbound(&tu(proto::UDP, IN1, 2, REM, 53), 0).unwrap();
    assert_eq!(r.open_outbound(&tu(proto::UDP, IN1, 3, REM, 53), 0), Err(Refusal::TableFull));
    assert_eq!(r.stats.refused_full, 1);
    // Past the UDP timeout the expired ones make room first.
    assert!(r.open_outbound(&tu(proto::UDP, IN1, 3, REM, 53), 300).is_ok());
    assert_eq!(r.stats.expired, 2, "one expiry pass took both");
}

/// Random opens, packets and clock steps on a small table: every live
/// session is found from both sides, removed ones from neither, no
/// two live mappings share an outside endpoint, an inside endpoint
/// always has one outside endpoint, the bound holds.
#[test]
fn random_traffic_keeps_the_table_consistent() {
    let mut rng = fastrand::Rng::with_seed(11);
    for when_full in [WhenFull::EvictOldest, WhenFull::Refuse] {
        let mut t = table(64, when_full);
        let mut now = 0;
        for _ in 0..20_000 {
            let p = [proto::TCP, proto::UDP, proto::ICMP][rng.usize(0..3)];
            let (inside, port) = ([IN1, IN2][rng.usize(0..2)], rng.u16(1000..1040));
            let (rem, rport) = ([REM, REM2][rng.usize(0..2)], rng.u16(0..4));
            match rng.u8(0..10) {
                0..=4 => {
                    if t.find_inside(&tu(p, inside, port, rem, rport)).is_none() {
                        let _ = t.open_outbound(&tu(p, inside, port, rem, rport), now);
                    }
                }
                5 => {
                    let oport = rng.u16(1000..1040);
                    if t.find_outside(&tu(p, POOL, oport, rem, rport)).is_none() {
                        let _ = t.open_inbound(&tu(p, POOL, oport, rem, rport), now, Filtering::EndpointIndependent);
                    }
                }
                6..=7 => {
                    if let Some(s) = t.find_inside(&tu(p, inside, port, rem, rport)) {
                        t.refresh(s, now, rng.u8(..), rng.bool());
                    }
                }
                8 => now += rng.u32(0..100),
                9 if rng.u8(0..8) == 0 => {
                    // A forward added or removed while running, on ports
                    // dynamic mappings use too.
                    let f = (p, inside, port, POOL, rng.u16(1000..1040));
                    if rng.bool() && t.find_mapping_outside(f.0, f.3, f.4).is_none_or(|m| !t.mapping(m).fixed) {
                        t.add_forward(f);
                    } else {
                        t.remove_forward(f);
                    }
                }
                _ => {
                    t.expire(now, 8);
                }
            }
            assert!(t.len() <= 64);
            let live: Vec<Session> = t.dump().map(|(s, _)| *s).collect();
            assert_eq!(live.len(), t.len());
            let (mut outside, mut inside) = (std::collections::HashMap::new(), std::collections::HashMap::new());
            for s in &live {
                let m = inside.insert((s.proto, s.in_addr, s.in_port), (s.out_addr, s.out_port));
                assert!(m.is_none_or(|m| m == (s.out_addr, s.out_port)), "mapping not endpoint-independent: {s:?}");
                let id = t
                    .find_inside(&Tuple {
                        proto: s.proto,
                        addr: s.in_addr,
                        port: s.in_port,
                        rem_addr: s.rem_addr,
                        rem_port: s.rem_port,
                    })
                    .expect("by inside");
                assert_eq!(
                    t.find_outside(&Tuple {
                        proto: s.proto,
                        addr: s.out_addr,
                        port: s.out_port,
                        rem_addr: s.rem_addr,
                        rem_port: s.rem_port
                    }),
                    Some(id)
                );
                let prev = outside.insert((s.proto, s.out_addr, s.out_port), (s.in_addr, s.in_port));
                assert!(prev.is_none_or(|p| p == (s.in_addr, s.in_port)), "outside endpoint shared: {s:?}");
            }
        }
        assert!(t.stats.created > 1000 && t.stats.expired > 0, "{:?}", t.stats);
    }
}
