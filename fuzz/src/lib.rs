//! Coverage-guided fuzz targets for every parser and stage nfv runs on
//! what arrives from the network or an operator, each asserting the
//! invariants its code promises (see `fuzz/README.md` for how to run them
//! and what each checks).
//!
//! A target is a plain function of the input bytes, so the libFuzzer
//! driver (`src/bin/nfv-fuzz.rs`, built by `cargo xtask fuzz` with
//! coverage instrumentation on stable Rust), the regression tests
//! (`tests/regressions.rs`, every finding kept) and the seed corpora share
//! one definition.

#![warn(missing_docs)]

pub mod files;
pub mod frames;
pub mod headers;
pub mod seeds;
pub mod stages;

/// A fuzz target: its name, what it covers, the function.
pub struct Target {
    /// Its name (`cargo xtask fuzz NAME`).
    pub name: &'static str,
    /// What it feeds, to what.
    pub about: &'static str,
    /// Runs one input; panics when an invariant breaks.
    pub run: fn(&[u8]),
    /// The longest input worth trying.
    pub max_len: usize,
}

/// Every target.
pub const TARGETS: &[Target] = &[
    Target { name: "input", about: "the input parser against etherparse", run: headers::input, max_len: 2048 },
    Target { name: "wire", about: "nfv-net's header views", run: headers::wire, max_len: 256 },
    Target { name: "tunnel", about: "VXLAN, Geneve and NSH headers", run: headers::tunnel, max_len: 512 },
    Target { name: "gtpu", about: "GTP-U headers and extension headers", run: headers::gtpu, max_len: 512 },
    Target { name: "config", about: "the configuration loader, every stage kind", run: files::config, max_len: 8192 },
    Target { name: "acl-rules", about: "ACL rule files, ClassBench and TOML", run: files::acl_rules, max_len: 8192 },
    Target { name: "pfcp", about: "PFCP messages through the N4 endpoint", run: files::pfcp, max_len: 8192 },
    Target { name: "slowpath", about: "ARP, ND and ICMP in the slow path", run: files::slowpath, max_len: 8192 },
    Target { name: "nat", about: "the NAT44 stage", run: |d| stages::run(&stages::NAT, d), max_len: 16384 },
    Target { name: "lb", about: "the load balancer stage", run: |d| stages::run(&stages::LB, d), max_len: 16384 },
    Target { name: "vtep", about: "the VXLAN VTEP stage", run: |d| stages::run(&stages::VTEP, d), max_len: 16384 },
    Target {
        name: "geneve",
        about: "the Geneve VTEP stage, options and a small FDB",
        run: |d| stages::run(&stages::GENEVE, d),
        max_len: 16384,
    },
    Target { name: "upf", about: "the UPF stage", run: |d| stages::run(&stages::UPF, d), max_len: 16384 },
    Target { name: "acl", about: "the ACL stage", run: |d| stages::run(&stages::ACL, d), max_len: 16384 },
];

/// The target named `name`.
pub fn target(name: &str) -> Option<&'static Target> {
    TARGETS.iter().find(|t| t.name == name)
}
