//! Instructions per packet of the `vtep` stage (callgrind,
//! `benches/vtep-cost.sh`): one batch of 64 through the stage per round,
//! only `stage_pass` counted. Repeatable where wall time on a shared VM is
//! not; the per-case setup is the criterion bench's (`benches/vtep.rs`).
//!
//! usage: vtep_cost encap|decap vxlan|geneve ipv4|ipv6 64|1400 ROUNDS [baseline]
//! (`baseline`: the same frames through the same loop without the stage,
//! to subtract: the harness copies each frame in, so its cost follows the
//! frame's size)

#[path = "../benches/vtep_case.rs"]
mod vtep_case;

#[inline(never)]
fn stage_pass(c: &mut vtep_case::Case, with_stage: bool) -> usize {
    vtep_case::run(c, with_stage)
}

fn main() {
    let a: Vec<String> = std::env::args().collect();
    if !(6..=7).contains(&a.len()) {
        eprintln!("usage: vtep_cost encap|decap vxlan|geneve ipv4|ipv6 64|1400 ROUNDS [baseline]");
        std::process::exit(2);
    }
    let baseline = a.get(6).is_some_and(|b| b == "baseline");
    let mut c = vtep_case::case(a[2] == "geneve", a[3] == "ipv6", a[1] != "decap", a[4].parse().unwrap());
    let rounds: u64 = a[5].parse().unwrap();
    for _ in 0..rounds {
        let n = stage_pass(&mut c, !baseline);
        assert_eq!(n, if baseline { 0 } else { 64 });
    }
}
