//! VTEP cost per packet: VXLAN and Geneve, encap and decap, IPv4 and IPv6
//! underlay, 64- and 1400-byte inner frames. One batch of 64 per
//! iteration through the `vtep` stage alone (frames built once; each
//! iteration resets the descriptors, so encapsulation always starts from
//! the inner frame). `baseline` is the same loop without the stage;
//! `checksum/N` sums 64 frames of N bytes, the part of the IPv6 cases
//! that grows with the frame.

mod vtep_case;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use vtep_case::{case, run};

fn vtep(c: &mut Criterion) {
    let mut g = c.benchmark_group("vtep");
    g.throughput(Throughput::Elements(64));
    g.warm_up_time(std::time::Duration::from_millis(500));
    g.measurement_time(std::time::Duration::from_secs(2));
    let mut base = case(false, false, true, 64);
    g.bench_function("baseline", |b| b.iter(|| run(&mut base, false)));
    // What the IPv6 cases cannot avoid: the UDP checksum over every inner
    // frame (RFC 8200 section 8.1), 64 frames per iteration like the rest.
    for len in [64usize, 1400] {
        let frames: Vec<Vec<u8>> = (0..64).map(|i| (0..len).map(|b| (b * 7 + i) as u8).collect()).collect();
        g.bench_function(format!("checksum/{len}"), |b| {
            b.iter(|| frames.iter().fold(0u32, |acc, f| acc ^ nfv_net::checksum::sum(std::hint::black_box(f), 0)))
        });
    }
    for geneve in [false, true] {
        for v6 in [false, true] {
            for encap in [true, false] {
                for len in [64, 1400] {
                    let name = format!(
                        "{}/{}/{}/{len}",
                        if encap { "encap" } else { "decap" },
                        if geneve { "geneve" } else { "vxlan" },
                        if v6 { "ipv6" } else { "ipv4" }
                    );
                    let mut c = case(geneve, v6, encap, len);
                    assert_eq!(run(&mut c, true), 64, "{name}: every packet forwarded");
                    g.bench_function(name, |b| b.iter(|| run(&mut c, true)));
                }
            }
        }
    }
    // IPv6 with zero UDP checksums (RFC 6935): what the checksum costs.
    for encap in [true, false] {
        for len in [64, 1400] {
            let name = format!("{}/vxlan/ipv6-zero-csum/{len}", if encap { "encap" } else { "decap" });
            let mut c = vtep_case::case_with(false, true, encap, len, true);
            assert_eq!(run(&mut c, true), 64, "{name}: every packet forwarded");
            g.bench_function(name, |b| b.iter(|| run(&mut c, true)));
        }
    }
    g.finish();
}

criterion_group!(benches, vtep);
criterion_main!(benches);
