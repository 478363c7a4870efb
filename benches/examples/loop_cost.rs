//! Drives one worker's loop (generator -> chain -> sink) for N batches of
//! 64 with a chain named on the command line, for instruction counting
//! under callgrind (`benches/loop-cost.sh`): instructions are repeatable
//! where wall time on a shared VM is not.
//!
//! usage: loop_cost CASE BATCHES   (CASE: empty, 1-noop, 5-noop, macswap, ttl+macswap)

use nfv_core::config;
use nfv_core::runtime::{Runtime, SlowPathMode};

/// The chain of each benchmark case, as TOML stage entries.
pub fn stages(case: &str) -> Option<String> {
    let noop = r#"{ kind = "counter" }"#;
    Some(match case {
        "empty" => String::new(),
        "1-noop" => noop.to_string(),
        "5-noop" => [noop; 5].join(", "),
        "macswap" => r#"{ kind = "macswap" }"#.to_string(),
        "ttl+macswap" => r#"{ kind = "ttl-decrement" }, { kind = "macswap" }"#.to_string(),
        _ => return None,
    })
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(case), Some(n)) = (args.get(1), args.get(2).and_then(|n| n.parse::<u64>().ok())) else {
        eprintln!("usage: loop_cost CASE BATCHES");
        std::process::exit(2);
    };
    let stages = stages(case).unwrap_or_else(|| panic!("unknown case {case}"));
    let src = format!(
        "[[ports]]\nname = \"gen\"\nkind = \"generator\"\nflows = 1024\n\n[[ports]]\nname = \"sink\"\nkind = \"sink\"\n\n\
         [[chains]]\nname = \"c\"\nstages = [{stages}]\nthen = \"sink\"\n\n[[workers]]\nrx = [\"gen\"]\nchain = \"c\"\n"
    );
    let cfg = config::load("loop.toml", &src, &nfv_pipelines::registry()).unwrap_or_else(|r| panic!("{r}"));
    let mut w = Runtime::build(&cfg, SlowPathMode::Inline).unwrap().into_workers().remove(0);
    let mut total = 0;
    for _ in 0..n {
        total += w.poll_once();
    }
    assert_eq!(total as u64, 64 * n);
}
