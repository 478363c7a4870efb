#!/usr/bin/env bash
# Assembles nfv's runtime image from the locally built binary, from
# scratch (no base image is pulled: this works where no registry is
# reachable): deploy/rootfs.sh's root filesystem (the binary, its shared
# libraries and loader, the shipped configurations, the non-root user
# 65532 the image runs as), the same deploy/Containerfile builds where a
# registry is at hand. Root, or inside `buildah unshare`.
#
#   deploy/build-image.sh [IMAGE]      (default localhost/nfv:VERSION)
#
# NFV_BIN names another binary (default target/release/nfv, built if
# missing). Prints the image's name last.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${NFV_BIN:-$ROOT/target/release/nfv}
VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' "$ROOT/pipelines/Cargo.toml" | head -1)
IMAGE=${1:-localhost/nfv:$VERSION}
command -v buildah >/dev/null || { echo "buildah missing: cargo xtask setup" >&2; exit 1; }
if [[ ! -x $BIN ]]; then
    (cd "$ROOT" && cargo build -q --release -p nfv-pipelines)
fi

ctr=$(buildah from scratch)
trap 'buildah rm "$ctr" >/dev/null 2>&1 || true' EXIT
mnt=$(buildah mount "$ctr")

"$ROOT/deploy/rootfs.sh" "$BIN" "$mnt"
buildah umount "$ctr" >/dev/null

buildah config \
    --user 65532:65532 \
    --workingdir / \
    --entrypoint '["/usr/bin/nfv"]' \
    --cmd '["run", "/etc/nfv/nfv.toml"]' \
    --env NFV_PODINFO=/etc/podinfo \
    --port 9464/tcp \
    --label org.opencontainers.image.title=nfv \
    --label org.opencontainers.image.description="AF_XDP-first userspace NFV data plane" \
    --label org.opencontainers.image.version="$VERSION" \
    --label org.opencontainers.image.source=deploy/build-image.sh \
    "$ctr"
buildah commit -q --rm "$ctr" "$IMAGE" >/dev/null
trap - EXIT
echo "$IMAGE"
