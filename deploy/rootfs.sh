#!/usr/bin/env bash
# Fills DIR with nfv's runtime root filesystem: the binary BIN, the shared
# libraries it links and the dynamic loader (as ldd lists them, at the
# paths the binary asks for), the shipped configurations under /etc/nfv,
# the downward-API mount point /etc/podinfo, /run/nfv and /tmp for the
# non-root user 65532 (nonroot) named in /etc/passwd. Used by
# deploy/build-image.sh (into a buildah container) and by
# deploy/Containerfile (into the image built from scratch): one rootfs.
#
#   deploy/rootfs.sh BIN DIR [CONFIGS]    (CONFIGS default: the repo's configs/)
set -euo pipefail

BIN=$1
DIR=$2
CONFIGS=${3:-$(cd "$(dirname "$0")/.." && pwd)/configs}

install -D -m 0755 "$BIN" "$DIR/usr/bin/nfv"
for lib in $(ldd "$BIN" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }'); do
    install -D -m 0755 "$(readlink -f "$lib")" "$DIR$lib"
done
mkdir -p "$DIR/etc/nfv" "$DIR/etc/podinfo" "$DIR/run/nfv" "$DIR/tmp"
cp -r "$CONFIGS/." "$DIR/etc/nfv/"
chmod -R a+rX "$DIR/etc/nfv"
chmod 1777 "$DIR/tmp"
chown 65532:65532 "$DIR/run/nfv"
printf 'root:x:0:0:root:/root:/usr/sbin/nologin\nnonroot:x:65532:65532:nonroot:/nonexistent:/usr/sbin/nologin\n' \
    >"$DIR/etc/passwd"
printf 'root:x:0:\nnonroot:x:65532:\n' >"$DIR/etc/group"
