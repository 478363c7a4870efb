//! Instructions per packet of the `nat44` hit path (callgrind,
//! `benches/nat-cost.sh`): one batch of 64 established-flow packets through
//! the stage per round, only `stage_pass` counted. Repeatable where wall
//! time on a shared VM is not; cache misses are the criterion bench's
//! business (`benches/nat.rs`), this counts the work.
//!
//! usage: nat_cost hit|baseline SESSIONS ROUNDS

#[path = "../benches/nat_case.rs"]
mod nat_case;

#[inline(never)]
fn stage_pass(c: &mut nat_case::Case, with_stage: bool) -> usize {
    nat_case::run(c, with_stage)
}

fn main() {
    let a: Vec<String> = std::env::args().collect();
    if a.len() != 4 {
        eprintln!("usage: nat_cost hit|baseline SESSIONS ROUNDS");
        std::process::exit(2);
    }
    let with_stage = a[1] == "hit";
    let mut c = nat_case::filled(a[2].parse().unwrap());
    let rounds: u64 = a[3].parse().unwrap();
    for _ in 0..rounds {
        let n = stage_pass(&mut c, with_stage);
        assert!(n == 64 || !with_stage);
    }
}
