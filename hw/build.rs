//! Compiles the XDP programs (`bpf/nfv.bpf.c`, the engine; `bpf/gen.bpf.c`,
//! the generator; `bpf/plugin.bpf.c`, the device plugin's stand-in) with
//! clang for the BPF
//! target; the object is embedded in the crate and loaded with libbpf.
//! libbpf's BPF-side headers come from libbpf-sys (the library the
//! loader links), the kernel's UAPI headers from linux-libc-dev.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    if std::env::var_os("CARGO_FEATURE_XDP").is_none() {
        return;
    }
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR"));
    let include = out.join("include");
    std::fs::create_dir_all(include.join("bpf")).expect("include dir");
    #[cfg(feature = "xdp")]
    for (name, text) in libbpf_sys::API_HEADERS {
        std::fs::write(include.join("bpf").join(name), text).expect("write a libbpf header");
    }
    let arch = std::env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    let multiarch = format!("/usr/include/{arch}-linux-gnu");
    println!("cargo:rerun-if-changed=bpf/ip_sum.h");
    println!("cargo:rerun-if-changed=bpf/upf.h");
    for name in ["nfv", "gen", "plugin"] {
        let src = format!("bpf/{name}.bpf.c");
        println!("cargo:rerun-if-changed={src}");
        let status = Command::new(std::env::var("CLANG").unwrap_or_else(|_| "clang".into()))
            .args(["-g", "-O2", "-target", "bpf", "-Wall", "-Werror"])
            .arg("-I")
            .arg(&include)
            .args(["-I", &multiarch])
            .args(["-c", &src, "-o"])
            .arg(out.join(format!("{name}.bpf.o")))
            .status()
            .expect("clang runs (cargo xtask setup installs it)");
        assert!(status.success(), "clang could not compile {src}");
    }
}
