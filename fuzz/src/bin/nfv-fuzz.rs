//! The libFuzzer driver: one binary for every target, the target named by
//! `NFV_FUZZ_TARGET` (`cargo xtask fuzz` sets it; `list` prints them).

#![no_main]

use std::sync::OnceLock;

fn chosen() -> &'static nfv_fuzz::Target {
    static T: OnceLock<&'static nfv_fuzz::Target> = OnceLock::new();
    T.get_or_init(|| {
        let name = std::env::var("NFV_FUZZ_TARGET").unwrap_or_default();
        nfv_fuzz::target(&name).unwrap_or_else(|| {
            let names: Vec<&str> = nfv_fuzz::TARGETS.iter().map(|t| t.name).collect();
            panic!("NFV_FUZZ_TARGET={name:?}: not a target; the targets are {}", names.join(", "))
        })
    })
}

libfuzzer_sys::fuzz_target!(
    init: {
        if std::env::var("NFV_FUZZ_TARGET").as_deref() == Ok("list") {
            for t in nfv_fuzz::TARGETS {
                println!("target {} {}", t.name, t.max_len);
            }
            std::process::exit(0);
        }
        chosen();
    },
    |data: &[u8]| (chosen().run)(data)
);
