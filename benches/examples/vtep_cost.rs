//! Instructions per packet of the `vtep` stage (callgrind,
//! `benches/vtep-cost.sh`): one batch of 64 through the stage per round,
//! only `stage_pass` counted. Repeatable where wall time on a shared VM is
//! not; the per-case setup is the criterion bench's (`benches/vtep.rs`).
//!
//! usage: vtep_cost encap|decap vxlan|geneve ipv4|ipv6 64|1400 ROUNDS

#[path = "../benches/vtep_case.rs"]
mod vtep_case;

#[inline(never)]
fn stage_pass(c: &mut vtep_case::Case) -> usize {
    vtep_case::run(c, true)
}

fn main() {
    let a: Vec<String> = std::env::args().collect();
    if a.len() != 6 {
        eprintln!("usage: vtep_cost encap|decap vxlan|geneve ipv4|ipv6 64|1400 ROUNDS");
        std::process::exit(2);
    }
    let mut c = vtep_case::case(a[2] == "geneve", a[3] == "ipv6", a[1] == "encap", a[4].parse().unwrap());
    let rounds: u64 = a[5].parse().unwrap();
    for _ in 0..rounds {
        assert_eq!(stage_pass(&mut c), 64);
    }
}
