//! The chain graph as configured: `then`, `use`, classifiers' branches,
//! and what `nfv check` refuses, each at its place (a loop, a chain no
//! packet reaches, a stage only packets from ports it ignores reach, a
//! `use` of nothing), plus `nfv graph`'s rendering.

use nfv_core::config;
use nfv_core::graph::End;

const PORTS: &str = r#"
[[ports]]
name = "a"
kind = "generator"

[[ports]]
name = "b"
kind = "generator"

[[ports]]
name = "out"
kind = "sink"
"#;

fn load(rest: &str) -> Result<config::Config, String> {
    config::load("g.toml", &format!("{PORTS}{rest}"), &nfv_pipelines::registry()).map_err(|e| e.render())
}

fn refused(rest: &str) -> String {
    match load(rest) {
        Ok(_) => panic!("accepted:\n{rest}"),
        Err(e) => e,
    }
}

const GRAPH: &str = r#"
[[chains]]
name = "entry"
stages = [{ kind = "classify", rules = [{ ingress = "a", chain = "from-a" }, { proto = "udp", dst-port = 53, chain = "dns" }], default = "rest" }]

[[chains]]
name = "from-a"
stages = [{ kind = "ttl-decrement", name = "ttl" }, { kind = "counter", name = "seen" }]
then = "tail"

[[chains]]
name = "dns"
stages = [{ kind = "macswap" }]
then = "ingress"

[[chains]]
name = "rest"
stages = [{ use = "ttl" }]
then = "tail"

[[chains]]
name = "tail"
stages = [{ use = "seen" }]
then = "out"

[[workers]]
rx = ["a", "b"]
chain = "entry"
"#;

#[test]
fn chains_reference_each_other_and_a_stage_may_sit_in_several() {
    let cfg = load(GRAPH).unwrap_or_else(|e| panic!("{e}"));
    let id = |n: &str| cfg.chains.iter().position(|c| c.name == n).unwrap();
    assert_eq!(cfg.chains[id("from-a")].then, End::Chain(id("tail") as u16));
    assert_eq!(cfg.chains[id("dns")].then, End::Ingress);
    assert_eq!(cfg.chains[id("tail")].then, End::Port(2));
    let ttl = &cfg.chains[id("from-a")].stages[0];
    let used = &cfg.chains[id("rest")].stages[0];
    assert_eq!((ttl.node, ttl.defines), (used.node, !used.defines), "one instance, defined once");
    assert_eq!(cfg.nodes().len(), 4, "classify, ttl, seen, macswap");
    assert_eq!(cfg.reachable(id("entry")).len(), 5);
    assert_eq!(cfg.summary(), "ok: 3 port(s), 5 chain(s) with 4 stage(s), 1 worker(s)");
}

#[test]
fn a_loop_is_refused_where_it_closes() {
    let out = refused(&GRAPH.replace(
        "name = \"tail\"\nstages = [{ use = \"seen\" }]\nthen = \"out\"",
        "name = \"tail\"\nstages = [{ use = \"seen\" }]\nthen = \"rest\"",
    ));
    assert!(out.contains("chains loop: rest -> tail -> rest"), "{out}");
    assert!(out.contains("this closes the loop"), "{out}");
}

#[test]
fn a_chain_nothing_reaches_is_refused() {
    let out = refused(&format!("{GRAPH}\n[[chains]]\nname = \"spare\"\nstages = [{{ kind = \"drop\" }}]\n"));
    assert!(out.contains("chain `spare` never sees a packet: no worker enters it and no chain leads to it"), "{out}");
    assert!(out.contains("g.toml:"), "{out}");
}

#[test]
fn uses_of_nothing_twice_or_ambiguously_are_refused() {
    let out = refused(&GRAPH.replace("{ use = \"ttl\" }", "{ use = \"tll\" }"));
    assert!(out.contains("unknown stage `tll`") && out.contains("did you mean `ttl`?"), "{out}");
    let out =
        refused(&GRAPH.replace("stages = [{ use = \"ttl\" }]", "stages = [{ use = \"ttl\" }, { use = \"ttl\" }]"));
    assert!(out.contains("stage `ttl` is listed twice in chain `rest`"), "{out}");
    let out = refused(&GRAPH.replace("{ kind = \"macswap\" }", "{ kind = \"macswap\", name = \"ttl\" }"));
    assert!(out.contains("stage `ttl` is defined in `from-a` and `dns`"), "{out}");
    let out = refused(&GRAPH.replace("{ use = \"ttl\" }", "{ use = \"ttl\", fast = true }"));
    assert!(out.contains("a `use` entry takes no other key"), "{out}");
}

#[test]
fn a_branch_or_then_to_nothing_is_refused() {
    let out = refused(&GRAPH.replace("chain = \"dns\" }", "chain = \"dnss\" }"));
    assert!(out.contains("unknown chain `dnss`"), "{out}");
    let out = refused(&GRAPH.replace("then = \"ingress\"", "then = \"ingres\""));
    assert!(out.contains("unknown chain or port `ingres`") && out.contains("did you mean `ingress`?"), "{out}");
    let both =
        format!("{}\n[[chains]]\nname = \"b\"\nstages = []\n", GRAPH.replace("then = \"ingress\"", "then = \"b\""));
    let out = refused(&both);
    assert!(out.contains("`b` names both a chain and a port"), "{out}");
}

#[test]
fn a_stage_only_packets_from_other_ports_reach_is_refused() {
    // The NAT acts on packets from a (inside) and b (outside); the
    // classifier sends it only packets from... nowhere it cares about.
    let nat = r#"
[[chains]]
name = "entry"
stages = [{ kind = "classify", rules = [{ ingress = "a", chain = "fw" }], default = "other" }]

[[chains]]
name = "fw"
stages = [{ kind = "counter" }]
then = "out"

[[chains]]
name = "other"
stages = [{ kind = "nat44", inside = ["a"], outside = "b", pool = ["198.51.100.10"] }]

[[workers]]
rx = ["a"]
chain = "entry"
"#;
    let out = refused(nat);
    assert!(out.contains("chain `other` never sees a packet: no port's packets can reach it"), "{out}");
    // Branching a's packets to the NAT and b's nowhere near it: it never
    // sees the outside.
    let out = refused(
        &nat.replace("{ ingress = \"a\", chain = \"fw\" }", "{ ingress = \"b\", chain = \"fw\" }")
            .replace("rx = [\"a\"]", "rx = [\"b\"]"),
    );
    assert!(
        out.contains("stage `nat44` acts on packets from `a`, `b`, but only packets from none reach chain `other`")
            || out.contains("chain `other` never sees a packet"),
        "{out}"
    );
    let lone = nat.replace("{ ingress = \"a\", chain = \"fw\" }", "{ ingress = \"out\", chain = \"fw\" }");
    let out = refused(&lone.replace("inside = [\"a\"], outside = \"b\"", "inside = [\"b\"], outside = \"out\""));
    assert!(
        out.contains("stage `nat44` acts on packets from `b`, `out`, but only packets from `a` reach chain `other`"),
        "{out}"
    );
    // Polling b too, the default branch brings b's packets: accepted.
    load(&nat.replace("rx = [\"a\"]", "rx = [\"a\", \"b\"]")).unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn the_graph_prints_as_text_and_as_dot() {
    let cfg = load(GRAPH).unwrap();
    let text = nfv_pipelines::graph_view::text(&cfg, None);
    assert!(text.contains("chain `entry`: classify   [entered by worker(s) 0 from a, b]"), "{text}");
    assert!(text.contains("-> branch to `from-a`") && text.contains("-> branch to `dns`"), "{text}");
    assert!(text.contains("chain `rest`: ttl (shared)") && text.contains("-> then to `tail`"), "{text}");
    assert!(text.contains("undecided out of `out`"), "{text}");
    let dot = nfv_pipelines::graph_view::dot(&cfg);
    assert!(dot.starts_with("digraph nfv {") && dot.trim_end().ends_with('}'), "{dot}");
    assert!(dot.contains("\"chain:entry\" -> \"chain:dns\" [label=\"branch\", style=dashed];"), "{dot}");
    assert!(dot.contains("\"port:a\" -> \"chain:entry\";"), "{dot}");
}

#[test]
fn graphviz_draws_the_dot_output() {
    if !nfv_testkit::tools_or_skip("graphviz_draws_the_dot_output", &[&["dot", "-V"]]) {
        return;
    }
    let dir = std::env::temp_dir().join(format!("nfv-dot-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for name in ["upf-acl-nat44.toml", "vtep-acl-nat44.toml", "quickstart.toml"] {
        let cfg = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs").join(name);
        let out =
            std::process::Command::new(env!("CARGO_BIN_EXE_nfv")).arg("graph").arg("--dot").arg(&cfg).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let dot_file = dir.join(format!("{name}.dot"));
        std::fs::write(&dot_file, &out.stdout).unwrap();
        let svg = std::process::Command::new("dot").args(["-Tsvg"]).arg(&dot_file).output().unwrap();
        let err = String::from_utf8_lossy(&svg.stderr);
        assert!(svg.status.success() && err.trim().is_empty(), "{name}: dot says: {err}");
        let svg = String::from_utf8_lossy(&svg.stdout);
        assert!(svg.contains("<svg") && svg.contains("chain:"), "{name}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
