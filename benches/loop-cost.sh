#!/usr/bin/env bash
# Instructions per packet of the worker loop (generator -> chain -> sink),
# counted by callgrind: the difference between runs of 20000 and 10000
# batches of 64, so set-up cost cancels out. Repeatable on a noisy VM.
# Prints one line per chain case and the cost of one no-op stage.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v valgrind >/dev/null || { echo "valgrind missing: apt-get install valgrind" >&2; exit 1; }
cargo build -q --release -p nfv-benches --example loop_cost
bin=target/release/examples/loop_cost
ir() { # case batches -> total instructions
  local out; out=$(mktemp)
  valgrind --tool=callgrind --callgrind-out-file="$out" "$bin" "$1" "$2" >/dev/null 2>&1
  callgrind_annotate "$out" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",","",$1); print $1; exit}'
  rm -f "$out"
}
declare -A per
for c in empty 1-noop 5-noop macswap ttl+macswap; do
  a=$(ir "$c" 10000); b=$(ir "$c" 20000)
  per[$c]=$(awk -v a="$a" -v b="$b" 'BEGIN { printf "%.1f", (b - a) / (10000 * 64) }')
  printf '%-12s %8s instructions/packet\n' "$c" "${per[$c]}"
done
awk -v one="${per[1-noop]}" -v five="${per[5-noop]}" -v e="${per[empty]}" \
  'BEGIN { printf "no-op stage: %.1f instructions/packet (slope 1->5 stages); empty chain loop: %.1f\n", (five - one) / 4, e }'
