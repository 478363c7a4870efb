#!/usr/bin/env bash
# Replays the whole capture corpus through every shipped configuration and
# writes one line per (configuration, capture): the SHA-256 of the packets
# the chain transmitted (their bytes, not the capture's record times) and
# the run's counters (packets, drops by stage and
# reason, port counters, slow path, table summaries), timings removed.
#
# Two such files from two builds are equal when a change altered no
# behaviour (a refactoring's "byte-identical before and after"):
#
#   tests/replay-digest.sh /tmp/nfv-before > before.txt
#   tests/replay-digest.sh target/release/nfv > after.txt
#   diff before.txt after.txt && echo identical
#
# Usage: tests/replay-digest.sh NFV_BINARY [CORPUS_DIR]
set -euo pipefail

bin=${1:?usage: $0 NFV_BINARY [CORPUS_DIR]}
here=$(cd "$(dirname "$0")/.." && pwd)
corpus=${2:-$here/../shared/data/pcaps/tcpdump-tests}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

# The packets of a pcap file, not its record times (the wall clock of
# the run for frames a worker sends itself).
packets_digest() {
    python3 - "$1" <<'PY'
import hashlib, struct, sys
d = open(sys.argv[1], "rb").read()
h, at = hashlib.sha256(), 24
while at + 16 <= len(d):
    n = struct.unpack_from("<I", d, at + 8)[0]
    h.update(struct.pack("<I", n) + d[at + 16:at + 16 + n])
    at += 16 + n
print(h.hexdigest()[:16])
PY
}

cd "$here"
for config in configs/*.toml; do
    for capture in "$corpus"/*.pcap "$corpus"/*.pcapng; do
        [ -e "$capture" ] || continue
        name=$(basename "$capture")
        # A capture whose header the reader refuses is a (stable) answer too.
        if report=$("$bin" replay "$config" --in "$capture" --out "$out/o.pcap" 2>&1); then
            sum=$(packets_digest "$out/o.pcap")
        else
            sum="refused"
        fi
        # Keep the counters, drop what depends on time: the "ran" line,
        # and the rate and cost columns of the stage and port tables.
        counters=$(printf '%s\n' "$report" | awk '
            /^ran / { next }
            /^stage / { table = "stage"; next }
            /^port / { table = "port"; next }
            /^$/ { table = ""; next }
            table == "stage" { line = $1 " " $2; for (i = 7; i <= NF; i++) line = line " " $i; print line; next }
            table == "port" { line = $1 " " $2 " " $4; for (i = 6; i <= NF; i++) line = line " " $i; print line; next }
            { print }' | sha256sum | cut -c1-16)
        echo "$config $name $sum $counters"
    done
done
