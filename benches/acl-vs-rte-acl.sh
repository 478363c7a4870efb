#!/usr/bin/env bash
# Our ACL classifier against DPDK's rte_acl (dpdk-test-acl) on the same
# ClassBench rule set and trace, in one run, one core each: lookups/s of
# rte_acl scalar and of its best SIMD method (avx2, avx512x16, avx512x32:
# the fastest here), ours (batches of 64; AVX2 where the CPU has it) and
# ours without SIMD, our build time and memory, and a
# last line `ratio: N` = ours / rte_acl's best. Each side runs ROUNDS times,
# alternating, and keeps its best (the VM is shared and noisy).
#
# usage: benches/acl-vs-rte-acl.sh [SET...]   (default: acl1_10k fw1_10k ipc1_10k acl2_10k)
# With several sets the last line is the lowest ratio. acl1_10k has no
# trace in the data: one is generated from its rules (a header inside each
# rule plus a random one) and both sides read it.
set -euo pipefail
cd "$(dirname "$0")/.."
data=../shared/data/classbench
rounds=${ROUNDS:-3}
sets=("$@")
[ ${#sets[@]} -gt 0 ] || sets=(acl1_10k fw1_10k ipc1_10k acl2_10k)
command -v dpdk-test-acl >/dev/null || { echo "dpdk-test-acl missing: cargo xtask setup" >&2; exit 1; }
cargo build -q --release -p nfv-benches --example acl_classbench
ours_bin=target/release/examples/acl_classbench
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

rte() { # rules trace alg -> lookups/s
  local lines; lines=$(wc -l < "$2")
  # About a second per run: iterations over the whole trace.
  dpdk-test-acl --no-pci --no-huge -m 256 -l 1 --log-level=error --force-max-simd-bitwidth=512 -- \
    --rulesf="$1" --tracef="$2" --tracenum=$((lines + 1)) --iter=$((10000000 / lines + 1)) \
    --alg="$3" --verbose=0 2>/dev/null |
    awk '/search_ip5tuples  @/ { for (i = 1; i <= NF; i++) if ($i == "pkt/sec") print $(i - 1) }'
}
max() { awk -v a="$1" -v b="$2" 'BEGIN { print (a + 0 > b + 0) ? a : b }'; }

worst=""
printf '%-9s %12s %12s %-10s %12s %12s %9s %9s %7s\n' set rte-scalar rte-best method ours ours-no-simd build-ms mem-MiB ratio
for set in "${sets[@]}"; do
  rules=$data/$set
  trace=$data/${set}_trace
  [ -f "$trace" ] || trace=$tmp/${set}_trace
  [ -f "$trace" ] || "$ours_bin" "$rules" "$trace" 0 > /dev/null
  scalar=0; best=0; method=""; ours=0; line=""
  for _ in $(seq "$rounds"); do
    scalar=$(max "$scalar" "$(rte "$rules" "$trace" scalar)")
    for alg in avx2 avx512x16 avx512x32; do
      r=$(rte "$rules" "$trace" "$alg"); r=${r:-0}
      if awk -v a="$r" -v b="$best" 'BEGIN { exit !(a + 0 > b + 0) }'; then best=$r; method=$alg; fi
    done
    out=$("$ours_bin" "$rules" "$trace" 1)
    r=$(echo "$out" | awk '/^ours:/ { print $2 }')
    if awk -v a="$r" -v b="$ours" 'BEGIN { exit !(a + 0 > b + 0) }'; then ours=$r; line=$out; fi
  done
  build=$(echo "$line" | sed -n 's/.*build \([0-9.]*\) ms.*/\1/p')
  mem=$(echo "$line" | sed -n 's/.*memory \([0-9.]*\) MiB.*/\1/p')
  portable=$(echo "$line" | sed -n 's/.*portable \([0-9]*\)).*/\1/p')
  ratio=$(awk -v a="$ours" -v b="$best" 'BEGIN { printf "%.2f", a / b }')
  printf '%-9s %12.0f %12.0f %-10s %12.0f %12.0f %9s %9s %7s\n' "$set" "$scalar" "$best" "$method" "$ours" "$portable" "$build" "$mem" "$ratio"
  if [ -z "$worst" ] || awk -v a="$ratio" -v b="$worst" 'BEGIN { exit !(a < b) }'; then worst=$ratio; fi
done
echo "ratio: $worst"
