//! A bad configuration is rejected with every problem located
//! (file:line:column, the line, a caret) and a hint; nothing starts.

use nfv_core::config;

fn check(src: &str) -> String {
    match config::load("bad.toml", src, &nfv_pipelines::registry()) {
        Ok(_) => panic!("accepted a bad config:\n{src}"),
        Err(r) => r.render(),
    }
}

const GOOD: &str = r#"
[[ports]]
name = "gen0"
kind = "generator"

[[ports]]
name = "out0"
kind = "sink"

[[chains]]
name = "main"
stages = [{ kind = "macswap" }]
then = "out0"

[[workers]]
rx = ["gen0"]
chain = "main"
"#;

#[test]
fn good_config_and_shipped_configs_load() {
    config::load("good.toml", GOOD, &nfv_pipelines::registry()).unwrap();
    nfv_pipelines::load(None).expect("embedded quickstart");
    let dir = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../configs"));
    let sfc = dir.join("sfc");
    for path in [dir, sfc.as_path()].into_iter().flat_map(|d| std::fs::read_dir(d).unwrap().map(|e| e.unwrap().path()))
    {
        if path.extension().is_some_and(|e| e == "toml") && !path.to_string_lossy().ends_with("-paths.toml") {
            nfv_pipelines::load(Some(&path)).unwrap_or_else(|e| panic!("{}:\n{e}", path.display()));
        }
    }
}

#[test]
fn unknown_key_is_located_with_the_expected_keys() {
    let out = check(&GOOD.replace("kind = \"sink\"", "kind = \"sink\"\nqueus = 2"));
    assert!(out.contains("unknown field `queus`"), "{out}");
    assert!(out.contains("bad.toml:9:1"), "{out}");
    assert!(out.contains("^^^^^"), "caret under the key:\n{out}");
}

#[test]
fn wrong_type_names_what_was_expected() {
    let out = check(&GOOD.replace("kind = \"generator\"", "kind = \"generator\"\nflows = \"many\""));
    assert!(out.contains("invalid type: string \"many\", expected u32"), "{out}");
    assert!(out.contains("bad.toml:5:9"), "{out}");
}

#[test]
fn unknown_stage_lists_known_kinds_and_suggests() {
    let out = check(&GOOD.replace("macswap\" }", "macswp\" }"));
    assert!(out.contains("unknown stage kind `macswp`"), "{out}");
    assert!(out.contains("did you mean `macswap`?"), "{out}");
    assert!(
        out.contains("acl, classify, counter, drop, l2-patch, lb, macswap, nat44, nsh-encap, nsh-return, sff, stall, ttl-decrement, upf, vtep"),
        "{out}"
    );
    assert!(out.contains("bad.toml:12:20"), "{out}");
}

#[test]
fn missing_port_is_reported_where_it_is_used() {
    let out = check(&GOOD.replace("then = \"out0\"", "then = \"out1\""));
    assert!(out.contains("unknown chain or port `out1`"), "{out}");
    assert!(out.contains("ingress, main, gen0, out0"), "{out}");
    assert!(out.contains("bad.toml:13:8"), "{out}");
}

#[test]
fn every_error_is_reported_at_once_and_fits_a_screen() {
    let src = GOOD
        .replace("then = \"out0\"", "then = \"nope\"")
        .replace("macswap\" }", "macswap\", speed = 3 }")
        .replace("chain = \"main\"", "chain = \"mian\"");
    let out = check(&src);
    for needle in [
        "unknown chain or port `nope`",
        "unknown field `speed`",
        "unknown chain `mian`",
        "3 errors found, nothing started",
    ] {
        assert!(out.contains(needle), "missing {needle:?} in:\n{out}");
    }
    assert!(out.lines().count() < 50, "one screen:\n{out}");
}

#[test]
fn syntax_errors_and_unknown_sections_are_located() {
    let out = check("[[ports]\nname = 1");
    assert!(out.contains("bad.toml:1:"), "{out}");
    let out = check(&format!("{GOOD}\n[wokers]\n"));
    assert!(out.contains("unknown section `wokers`") && out.contains("did you mean `workers`?"), "{out}");
}

#[test]
fn queue_and_value_ranges_are_checked() {
    let out = check(&GOOD.replace("rx = [\"gen0\"]", "rx = [\"gen0:3\"]"));
    assert!(out.contains("queue 3 does not exist"), "{out}");
    let out = check(&GOOD.replace("kind = \"generator\"", "kind = \"generator\"\nframe-size = 9000"));
    assert!(out.contains("9000 is outside 64..=1518"), "{out}");
    let out = check(&GOOD.replace("kind = \"sink\"", "kind = \"sink\"\naddresses = [\"10.0.0.300/24\"]"));
    assert!(out.contains("`10.0.0.300` is not an IP address"), "{out}");
    let out = check(&GOOD.replace("rx = [\"gen0\"]", "rx = [\"out0\"]"));
    assert!(out.contains("is a sink and cannot receive"), "{out}");
}

#[test]
fn af_xdp_port_and_patch_errors_name_the_fix() {
    let cfg = "[[ports]]\nname = \"a\"\nkind = \"af-xdp\"\ninterface = \"eth0\"\nrx-ring = 1000\nmode = \"fast\"\n\n\
               [[ports]]\nname = \"b\"\nkind = \"af-xdp\"\ninterface = \"eth1\"\n\n\
               [[chains]]\nname = \"c\"\nstages = [{ kind = \"l2-patch\", pairs = [[\"a\", \"c\"]] }]\n\n\
               [[workers]]\nrx = [\"a\"]\nchain = \"c\"\n";
    let out = check(cfg);
    assert!(out.contains("unknown variant `fast`, expected one of `auto`, `zero-copy`, `driver`, `skb`"), "{out}");
    assert!(out.contains("no port named `c`") && out.contains("known ports: a, b"), "{out}");
    let out = check(&cfg.replace("mode = \"fast\"\n", ""));
    assert!(out.contains("rx-ring must be a power of two from 64 to 16384, not 1000"), "{out}");
    assert!(out.contains("bad.toml:5:11"), "{out}");
}

#[test]
fn af_xdp_interfaces_and_queues_are_not_shared() {
    let cfg = "[[ports]]\nname = \"a\"\nkind = \"af-xdp\"\ninterface = \"eth0\"\nqueues = 2\n\n\
               [[ports]]\nname = \"b\"\nkind = \"af-xdp\"\ninterface = \"eth0\"\n\n\
               [[chains]]\nname = \"c\"\nstages = []\n\n\
               [[workers]]\nrx = [\"a:0\", \"a:1\"]\nchain = \"c\"\n";
    let out = check(cfg);
    assert!(out.contains("interface `eth0` is used by ports `a` and `b`"), "{out}");
    assert!(out.contains("this worker already polls queue 0 of `a`"), "{out}");
    assert!(out.contains("bad.toml:17:14"), "{out}");
}

#[test]
fn then_ingress_is_the_only_reserved_name_tx_moved_and_a_jumbo_mtu_is_refused() {
    use nfv_core::graph::End;
    let mut cfg =
        config::load("good.toml", &GOOD.replace("then = \"out0\"", "then = \"ingress\""), &nfv_pipelines::registry())
            .expect("then = \"ingress\" sends packets back out of their port");
    assert_eq!(cfg.chains[0].then, End::Ingress);
    cfg = config::load("good.toml", &GOOD.replace("then = \"out0\"\n", ""), &nfv_pipelines::registry()).unwrap();
    assert_eq!(cfg.chains[0].then, End::Drop, "no then: undecided packets are dropped");
    let out = check(&GOOD.replace("name = \"out0\"", "name = \"ingress\""));
    assert!(out.contains("`ingress` cannot name a port"), "{out}");
    let out = check(&GOOD.replace("chain = \"main\"", "chain = \"main\"\ntx = \"out0\""));
    assert!(out.contains("`tx` moved to the chain"), "{out}");
    assert!(out.contains("write then = \"out0\" in [[chains]] name = \"main\""), "{out}");
    // Frames are 2 KiB: a tunnel MTU a frame cannot carry is refused.
    let vtep = GOOD.replace(
        "stages = [{ kind = \"macswap\" }]",
        "stages = [{ kind = \"vtep\", underlay = \"gen0\", local-ip = \"192.0.2.1\", mtu = 9000, \
         bridge-domains = [{ vni = 1, ports = [\"out0\"] }] }]",
    );
    let out = check(&vtep);
    assert!(out.contains("underlay MTU 9000 does not fit a frame: frames hold 1792 octets of data"), "{out}");
    assert!(out.contains("at most mtu = 1778") && out.contains("bad.toml:12:77"), "{out}");
    config::load("ok.toml", &vtep.replace("mtu = 9000", "mtu = 1778"), &nfv_pipelines::registry()).unwrap();
}

#[test]
fn next_hops_on_no_ports_subnet_are_refused_where_they_are_named() {
    // A neighbour to resolve and a NAT's gateway, and no port with an
    // address: nobody could ask for them. `nfv run` refused this only when
    // it built the runtime; now loading does, as `nfv check`.
    let nat = "stages = [{ kind = \"nat44\", inside = [\"gen0\"], outside = \"out0\", \
               pool = [\"198.51.100.10\"], outside-gateway = \"198.51.100.1\" }]";
    let cfg = GOOD.replace("stages = [{ kind = \"macswap\" }]", nat)
        + "\n[[neighbours]]\nip = \"10.9.9.9\"\nport = \"gen0\"\n";
    let out = check(&cfg);
    assert!(out.contains("next hop 198.51.100.1 of this stage is not on any port's subnet"), "{out}");
    assert!(out.contains("bad.toml:12:11"), "at the stage:\n{out}");
    assert!(out.contains("neighbour 10.9.9.9 is not on any port's subnet"), "{out}");
    assert!(out.contains("give port `gen0` an address on its subnet, or give the neighbour a static mac"), "{out}");
    assert!(out.contains("bad.toml:19:1"), "at the neighbour:\n{out}");
    // Addresses on their subnets, and the same next hops load.
    let fixed = cfg
        .replace("kind = \"generator\"", "kind = \"generator\"\naddresses = [\"10.9.9.1/24\"]")
        .replace("kind = \"sink\"", "kind = \"sink\"\naddresses = [\"198.51.100.2/24\"]");
    config::load("ok.toml", &fixed, &nfv_pipelines::registry()).unwrap_or_else(|e| panic!("{}", e.render()));
}

#[test]
fn a_port_asking_its_hardware_profile_for_what_the_device_cannot_do_is_refused_where_it_asks() {
    let afxdp = |extra: &str| {
        GOOD.replace(
            "name = \"gen0\"\nkind = \"generator\"",
            &format!("name = \"gen0\"\nkind = \"af-xdp\"\ninterface = \"eth0\"\n{extra}"),
        )
    };
    let out = check(&afxdp("profile = \"veth\"\nmode = \"zero-copy\""));
    assert!(out.contains("profile `veth`: no AF_XDP zero-copy on this device"), "{out}");
    assert!(out.contains("bad.toml:7:8") && out.contains("mode = \"driver\" (copy mode in the driver)"), "{out}");
    let out = check(&afxdp("profile = \"x710\"\nqueues = 65"));
    assert!(out.contains("65 queues, the device has at most 64") && out.contains("bad.toml:7:10"), "{out}");
    let out = check(&afxdp("profile = \"e820\""));
    assert!(out.contains("no hardware profile `e820`; shipped: e810, x710, cx6dx, cx7, bluefield3"), "{out}");
    let out = check(&GOOD.replace("kind = \"sink\"", "kind = \"sink\"\nprofile = \"e810\""));
    assert!(out.contains("a hardware profile describes an AF_XDP port's device"), "{out}");
    let ok = afxdp("profile = \"e810\"\nmode = \"zero-copy\"\nqueues = 4");
    config::load("good.toml", &ok, &nfv_pipelines::registry()).unwrap();
    // Steering on a tunnel field: a device that cannot, and an Intel one
    // without the DDP package that parses GTP-U.
    let out = check(&afxdp("profile = \"virtio\"\nsteer = \"gtpu-teid\""));
    assert!(out.contains("profile `virtio`: the device cannot steer on the GTP-U TEID"), "{out}");
    assert!(out.contains("remove `steer`"), "{out}");
    let out = check(&afxdp("profile = \"e810\"\nsteer = \"gtpu-teid\""));
    assert!(out.contains("steering on the GTP-U TEID needs the Comms DDP package"), "{out}");
    assert!(out.contains("bad.toml:7:9") && out.contains("ddp-package = \"comms\""), "{out}");
    let out = check(&afxdp("profile = \"veth\"\nsteer = \"vxlan-vni\""));
    assert!(out.contains("the device cannot steer on the VXLAN VNI"), "{out}");
    for ok in [
        "profile = \"e810\"\nsteer = \"gtpu-teid\"\nddp-package = \"comms\"",
        "profile = \"cx7\"\nsteer = \"gtpu-teid\"",
        "profile = \"e810\"\nsteer = \"vxlan-vni\"",
    ] {
        config::load("good.toml", &afxdp(ok), &nfv_pipelines::registry()).unwrap_or_else(|e| panic!("{}", e.render()));
    }
}
