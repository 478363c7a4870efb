#!/usr/bin/env bash
# Instructions per packet of the vtep stage for every case of the criterion
# bench (callgrind, only the stage pass counted; 2000 - 1000 rounds of 64
# packets, so set-up cancels out), less the same loop without the stage
# (refilling the batch, settling, draining). Repeatable on a noisy VM:
# compare before and after a change.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v valgrind >/dev/null || { echo "valgrind missing: cargo xtask setup" >&2; exit 1; }
cargo build -q --release -p nfv-benches --example vtep_cost
bin=${CARGO_TARGET_DIR:-target}/release/examples/vtep_cost
ir() {
  local out; out=$(mktemp)
  valgrind --tool=callgrind --toggle-collect='*stage_pass*' --callgrind-out-file="$out" "$bin" "$@" >/dev/null 2>&1
  callgrind_annotate "$out" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",","",$1); print $1; exit}'
  rm -f "$out"
}
echo "each case less the same frames through the loop without the stage (the harness copies frames in)"
for dir in encap decap; do
  for proto in vxlan geneve; do
    for fam in ipv4 ipv6; do
      for len in 64 1400; do
        a=$(ir $dir $proto $fam $len 1000 baseline); b=$(ir $dir $proto $fam $len 2000 baseline)
        base=$(awk -v a="$a" -v b="$b" 'BEGIN { printf "%.1f", (b - a) / (1000 * 64) }')
        a=$(ir $dir $proto $fam $len 1000); b=$(ir $dir $proto $fam $len 2000)
        awk -v n="$dir/$proto/$fam/$len" -v a="$a" -v b="$b" -v base="$base" \
          'BEGIN { printf "%-24s %7.1f instructions/packet (harness %s)\n", n, (b - a) / (1000 * 64) - base, base }'
      done
    done
  done
done
