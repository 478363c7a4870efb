//! Instructions per packet of a stage's hit path (callgrind,
//! `benches/stage-cost.sh`): one batch of 64 established-flow packets
//! through the stage per round, only `stage_pass` counted. Repeatable where
//! wall time on a shared VM is not; cache misses are the criterion benches'
//! business (`benches/nat.rs`, `benches/lb.rs`), this counts the work.
//!
//! usage: stage_cost acl-8|acl-ipc1|nat|lb|lb-ipip|upf-up|upf-down|split-3|split-3-proto|sff|single-box hit|baseline ENTRIES ROUNDS
//! (ENTRIES: NAT sessions, LB connections or UPF sessions in the table)

// Each case module carries the shared stage harness (`stage_case.rs`), as
// its criterion bench needs it alone: one copy here per stage.
#![allow(clippy::duplicate_mod)]

#[path = "../benches/acl_case.rs"]
mod acl_case;
#[path = "../benches/graph_case.rs"]
mod graph_case;
#[path = "../benches/lb_case.rs"]
mod lb_case;
#[path = "../benches/nat_case.rs"]
mod nat_case;
#[path = "../benches/sff_case.rs"]
mod sff_case;
#[path = "../benches/single_box_case.rs"]
mod single_box_case;
#[path = "../benches/upf_case.rs"]
mod upf_case;

#[inline(never)]
fn stage_pass(pass: &mut dyn FnMut() -> usize) -> usize {
    pass()
}

fn main() {
    let a: Vec<String> = std::env::args().collect();
    if a.len() != 5 {
        eprintln!(
            "usage: stage_cost acl-8|acl-ipc1|nat|lb|lb-ipip|upf-up|upf-down|split-3|split-3-proto|sff|single-box hit|baseline ENTRIES ROUNDS"
        );
        std::process::exit(2);
    }
    let with_stage = a[2] == "hit";
    let (entries, rounds): (usize, u64) = (a[3].parse().unwrap(), a[4].parse().unwrap());
    let mut pass: Box<dyn FnMut() -> usize> = match a[1].as_str() {
        // The ACL on a ClassBench 10k rule set and its trace's headers, or
        // on eight rules (ENTRIES unused).
        acl @ ("acl-8" | "acl-ipc1") => {
            let frames = acl_case::frames("ipc1_10k");
            let stage = if acl == "acl-8" {
                acl_case::SMALL.to_string()
            } else {
                format!(
                    "{{ kind = \"acl\", default = \"permit\", rules-file = \"{}\", rules-file-action = \"deny\", \
                     watch-rules-file = false }}",
                    acl_case::data("ipc1_10k")
                )
            };
            let mut c = acl_case::case(&stage, &frames);
            Box::new(move || {
                acl_case::run(&mut c, with_stage);
                64
            })
        }
        "nat" => {
            let mut c = nat_case::filled(entries);
            Box::new(move || nat_case::run(&mut c, with_stage))
        }
        lb @ ("lb" | "lb-ipip") => {
            let mode = lb.strip_prefix("lb-").unwrap_or("dsr");
            let mut c = lb_case::filled(entries, mode);
            Box::new(move || lb_case::run(&mut c, with_stage))
        }
        up @ ("upf-up" | "upf-down") => {
            let mut c = upf_case::drawn(entries as u32, up == "upf-up", false);
            Box::new(move || upf_case::run(&mut c, with_stage))
        }
        // The single-box graph fed a mix (hit), or its chains alone fed
        // their own in turn (baseline: the linear chains' mean cost).
        "single-box" => {
            use single_box_case::{Kind, case, run};
            if with_stage {
                let mut c = case(None, &[Kind::Gtpu, Kind::Vxlan, Kind::Plain]);
                Box::new(move || run(&mut c))
            } else {
                let mut cs = [
                    case(Some("mobile"), &[Kind::Gtpu]),
                    case(Some("overlay"), &[Kind::Vxlan]),
                    case(Some("edge"), &[Kind::Plain]),
                ];
                let mut i = 0;
                Box::new(move || {
                    i = (i + 1) % 3;
                    run(&mut cs[i])
                })
            }
        }
        // NSH forwarding to the next forwarder (ENTRIES unused: 64 paths).
        "sff" => {
            let mut c = sff_case::case();
            Box::new(move || sff_case::run(&mut c, with_stage))
        }
        // A classifier's three-way split into chains (ENTRIES unused).
        by @ ("split-3" | "split-3-proto") => {
            use graph_case::Split;
            let split = match (with_stage, by) {
                (false, _) => Split::Baseline,
                (true, "split-3") => Split::Ports,
                _ => Split::Proto,
            };
            let mut c = graph_case::case(split);
            Box::new(move || graph_case::run(&mut c))
        }
        other => panic!("unknown stage {other}"),
    };
    for _ in 0..rounds {
        let n = stage_pass(&mut pass);
        assert!(n == 64 || !with_stage);
    }
}
