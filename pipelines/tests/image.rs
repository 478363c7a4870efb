//! The runtime image `deploy/build-image.sh` assembles with buildah (from
//! scratch: no registry is reached): the binary from the image's own
//! filesystem (`buildah mount`, run in a chroot as the image's user)
//! checks every shipped configuration; the image runs as its non-root
//! user with nfv as its entry point.

mod common;

use std::path::Path;
use std::process::Command;

fn buildah(args: &[&str]) -> String {
    let out = Command::new("buildah").args(args).output().expect("buildah");
    assert!(out.status.success(), "buildah {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn the_image_runs_as_nonroot_and_its_binary_checks_every_shipped_configuration() {
    let test = "the_image_runs_as_nonroot_and_its_binary_checks_every_shipped_configuration";
    if !common::testbed::privileged(test)
        || !nfv_testkit::tools_or_skip(test, &[&["buildah", "--version"], &["chroot", "--version"]])
    {
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let image = format!("localhost/nfv-test:{}", std::process::id());
    let out = Command::new("bash")
        .arg(root.join("deploy/build-image.sh"))
        .arg(&image)
        .env("NFV_BIN", env!("CARGO_BIN_EXE_nfv"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().last(), Some(image.as_str()));
    let config = buildah(&["inspect", "--format", "{{.OCIv1.Config.User}} {{.OCIv1.Config.Entrypoint}}", &image]);
    assert_eq!(config, "65532:65532 [/usr/bin/nfv]");
    let ctr = buildah(&["from", &image]);
    let mnt = buildah(&["mount", &ctr]);
    let configs = Path::new(&mnt).join("etc/nfv");
    let mut checked = 0;
    for dir in [configs.clone(), configs.join("sfc")] {
        for f in std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()) {
            let name = f.to_string_lossy().into_owned();
            if !name.ends_with(".toml") || name.ends_with("-paths.toml") {
                continue;
            }
            let inside = format!("/{}", f.strip_prefix(&mnt).unwrap().display());
            let out = Command::new("chroot")
                .args(["--userspec=65532:65532", &mnt, "/usr/bin/nfv", "check", &inside])
                .output()
                .unwrap();
            let said = String::from_utf8_lossy(&out.stdout);
            assert!(
                out.status.success() && said.contains(": ok:"),
                "{inside}: {said}{}",
                String::from_utf8_lossy(&out.stderr)
            );
            checked += 1;
        }
    }
    assert!(checked >= 14, "{checked} configurations");
    buildah(&["umount", &ctr]);
    buildah(&["rm", &ctr]);
    buildah(&["rmi", &image]);
}
