#!/usr/bin/env bash
# What nfv spends per forwarded packet outside the kernel, on the AF_XDP
# port code: instructions per packet of one worker poll (rx ring -> chain
# -> tx ring, fill/completion upkeep) counted by callgrind, with the
# kernel side of the rings played in memory (nfv_core::port::afxdp::
# loopback) and excluded from the count (--toggle-collect=poll_dut).
# The difference between 20000 and 10000 batches of 64 cancels set-up.
# On veth the kernel's copy dominates wall time; this figure is what
# decides speed on a zero-copy NIC.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v valgrind >/dev/null || { echo "valgrind missing: cargo xtask setup" >&2; exit 1; }
cargo build -q --release -p nfv-benches --example afxdp_loop
bin=target/release/examples/afxdp_loop
ir() { # case batches -> instructions inside poll_dut
  local out; out=$(mktemp)
  valgrind --tool=callgrind --toggle-collect='*poll_dut*' --callgrind-out-file="$out" "$bin" "$1" "$2" >/dev/null 2>&1
  callgrind_annotate "$out" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",","",$1); print $1; exit}'
  rm -f "$out"
}
for c in io input macswap; do
  a=$(ir "$c" 10000); b=$(ir "$c" 20000)
  awk -v c="$c" -v a="$a" -v b="$b" 'BEGIN { printf "%-8s %6.1f instructions/packet\n", c, (b - a) / (10000 * 64) }'
done
