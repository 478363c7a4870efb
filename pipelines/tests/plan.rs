//! `nfv plan` for every configuration shipped in `configs/` against every
//! hardware profile shipped in `hw-profiles/` (each given to all of the
//! configuration's AF_XDP ports), and without one: the output is compared
//! with `tests/plans/CONFIG.txt`. `NFV_UPDATE_PLANS=1` rewrites them after
//! a deliberate change (review the diff).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use nfv_core::config::PortKind;
use nfv_core::hwprofile::{Profile, SHIPPED};

fn configs() -> Vec<PathBuf> {
    let dir = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../configs"));
    let mut v: Vec<PathBuf> = [dir.to_path_buf(), dir.join("sfc")]
        .iter()
        .flat_map(|d| std::fs::read_dir(d).unwrap().map(|e| e.unwrap().path()))
        .filter(|p| p.extension().is_some_and(|e| e == "toml") && !p.to_string_lossy().ends_with("-paths.toml"))
        .collect();
    v.sort();
    v
}

#[test]
fn every_configuration_is_planned_against_every_profile_as_recorded() {
    let update = std::env::var("NFV_UPDATE_PLANS").as_deref() == Ok("1");
    let snapshots = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/plans"));
    let mut differ = Vec::new();
    for path in configs() {
        let base = nfv_pipelines::load(Some(&path)).unwrap_or_else(|e| panic!("{e}"));
        let mut out = String::new();
        for profile in std::iter::once(None).chain(SHIPPED.iter().map(|(n, _)| Some(*n))) {
            let mut cfg = base.clone();
            for p in cfg.ports.iter_mut().filter(|p| matches!(p.kind, PortKind::AfXdp(_))) {
                p.profile = profile.map(|n| Arc::new(Profile::resolve(n, None).unwrap()));
            }
            out += &format!("## {}\n", profile.unwrap_or("(no profile)"));
            out += &nfv_core::plan::plan(&cfg).render();
            out += "\n";
        }
        let name =
            path.strip_prefix(path.parent().unwrap().parent().unwrap()).unwrap().to_string_lossy().replace('/', "-");
        let file = snapshots.join(name.replace(".toml", ".txt"));
        if update {
            std::fs::write(&file, &out).unwrap();
        } else if std::fs::read_to_string(&file).ok().as_deref() != Some(out.as_str()) {
            differ.push(format!("{}:\n{out}", file.display()));
        }
    }
    assert!(
        differ.is_empty(),
        "plans differ from the recorded ones (NFV_UPDATE_PLANS=1 to record):\n{}",
        differ.join("\n")
    );
}

#[test]
fn nothing_goes_below_a_stage_the_workers_run_and_devices_shape_the_plan() {
    let load = |name: &str| {
        nfv_pipelines::load(Some(&Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../configs")).join(name))).unwrap()
    };
    // acl with permit-reflect: its flows live in the workers, so the patch
    // after it stays there.
    let plan = nfv_core::plan::plan(&load("acl-reflect.toml"));
    let patch = plan.decisions.iter().find(|d| d.stage == "fw/l2-patch").unwrap();
    assert_eq!(patch.place, nfv_core::plan::Place::Worker);
    assert_eq!(patch.reason, "stage `fw/acl` before it still needs the workers for some of its packets");
    // The NAT on native XDP with an E810 (symmetric RSS asked when
    // several workers poll a port), generic XDP without a profile.
    let mut cfg = load("nat44.toml");
    let plan = nfv_core::plan::plan(&cfg).render();
    assert!(
        plan.contains("nat/nat44              xdp     established sessions") && plan.contains("generic XDP"),
        "{plan}"
    );
    for p in cfg.ports.iter_mut() {
        p.profile = Some(Arc::new(Profile::resolve("e810", None).unwrap()));
    }
    let plan = nfv_core::plan::plan(&cfg).render();
    assert!(plan.contains("native XDP; the workers keep first packets"), "{plan}");
    // A UPF's N3 steered on the TEID by an E810 with the Comms package,
    // and what the program runs for each chain, with why.
    let mut cfg = load("upf.toml");
    for p in cfg.ports.iter_mut() {
        p.profile = Some(Arc::new(Profile::resolve("e810", None).unwrap()));
        if let PortKind::AfXdp(a) = &mut p.kind {
            a.steer = Some(nfv_core::config::SteerOn::GtpuTeid);
            a.ddp_package = Some("comms".into());
        }
    }
    let plan = nfv_core::plan::plan(&cfg).render();
    assert!(plan.contains("steers on the GTP-U TEID (RSS with the Comms DDP package)"), "{plan}");
    let plan = nfv_core::plan::plan(&load("nat44.toml"));
    assert!(plan.programs.iter().flatten().all(|(p, _)| p.ttl && p.flows && !p.acl && !p.vtep), "{plan:?}");
    let vtep = nfv_core::plan::plan(&load("vtep-vxlan.toml"));
    assert!(vtep.programs.iter().flatten().all(|(p, _)| p.vtep && !p.flows), "{vtep:?}");
}
