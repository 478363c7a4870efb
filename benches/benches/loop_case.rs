//! The worker loop benchmarks run: the in-memory generator (64-byte
//! frames, 1024 flows) through one chain of `stages` into a sink, built
//! as a run builds it (the slow path inline). Shared by `--bench chain`
//! and `--bench management`.

use nfv_core::config::{self, Config};
use nfv_core::runtime::{Runtime, SlowPathMode};

/// The configuration of the loop with `stages` (inline TOML tables).
pub fn config(stages: &str) -> Config {
    let src = format!(
        r#"
[[ports]]
name = "gen"
kind = "generator"
flows = 1024
frame-size = 64

[[ports]]
name = "sink"
kind = "sink"

[[chains]]
name = "c"
stages = [{stages}]
then = "sink"

[[workers]]
rx = ["gen"]
chain = "c"
"#
    );
    config::load("bench.toml", &src, &nfv_pipelines::registry()).unwrap_or_else(|r| panic!("{r}"))
}

/// Its runtime, built.
pub fn runtime(cfg: &Config) -> Runtime {
    Runtime::build(cfg, SlowPathMode::Inline).unwrap()
}
