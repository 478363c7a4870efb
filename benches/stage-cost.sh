#!/usr/bin/env bash
# Instructions per packet of a stage's hit path (callgrind, only the stage
# pass counted; 2000 - 1000 rounds of 64 packets, so set-up cancels out),
# less the same loop without the stage. Repeatable on a noisy VM: compare
# before and after a change.
# usage: benches/stage-cost.sh acl-8|acl-ipc1|nat|lb|lb-ipip|upf-up|upf-down|split-3|split-3-proto|sff|single-box [ENTRIES] (1000 sessions/connections)
# single-box: the single-box graph fed a mix, against its chains alone (the
# harness line is their mean; the ratio of the graph to it is printed)
set -euo pipefail
cd "$(dirname "$0")/.."
command -v valgrind >/dev/null || { echo "valgrind missing: cargo xtask setup" >&2; exit 1; }
cargo build -q --release -p nfv-benches --example stage_cost
bin=${CARGO_TARGET_DIR:-target}/release/examples/stage_cost
stage=${1:?usage: stage-cost.sh acl-8|acl-ipc1|nat|lb|lb-ipip|upf-up|upf-down|split-3|split-3-proto|sff|single-box [ENTRIES]}
entries=${2:-1000}
ir() {
  local out; out=$(mktemp)
  valgrind --tool=callgrind --toggle-collect='*stage_pass*' --callgrind-out-file="$out" "$bin" "$@" >/dev/null 2>&1
  callgrind_annotate "$out" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",","",$1); print $1; exit}'
  rm -f "$out"
}
a=$(ir "$stage" baseline "$entries" 1000); b=$(ir "$stage" baseline "$entries" 2000)
base=$(awk -v a="$a" -v b="$b" 'BEGIN { printf "%.1f", (b - a) / (1000 * 64) }')
echo "harness (header restore, batch refill, settle, drain): $base instructions/packet, subtracted below"
a=$(ir "$stage" hit "$entries" 1000); b=$(ir "$stage" hit "$entries" 2000)
awk -v s="$stage" -v n="$entries" -v a="$a" -v b="$b" -v base="$base" \
  'BEGIN { printf "%s hit path, %d entries: %.1f instructions/packet\n", s, n, (b - a) / (1000 * 64) - base }'
if [[ $stage == single-box ]]; then
  awk -v a="$a" -v b="$b" -v base="$base" \
    'BEGIN { g = (b - a) / (1000 * 64); printf "single-box graph %.1f instructions/packet, linear chains %.1f: ratio %.3f\n", g, base, g / base }'
fi
