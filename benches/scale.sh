#!/usr/bin/env bash
# Worker scaling on the embedded quickstart chain (generator -> ttl-decrement
# -> macswap -> counter -> sink): one worker vs two, alternated over TRIALS
# runs of SECS seconds; prints both medians and `ratio: N` (2 over 1).
set -euo pipefail
cd "$(dirname "$0")/.."
TRIALS=${TRIALS:-5}; SECS=${SECS:-3}
cargo build -q --release -p nfv-pipelines --bin nfv
nfv=target/release/nfv
one=$(mktemp --suffix=.toml); trap 'rm -f "$one"' EXIT
# The quickstart with its second worker removed and one generator queue.
awk '/^\[\[workers\]\]/ { n++ } n < 2' configs/quickstart.toml | sed 's/^queues = 2/queues = 1/' > "$one"
mpps() { "$nfv" run "$@" --duration "$SECS" --quiet 2>&1 | grep -oP 'rx \d+ packets \(\K[0-9.]+'; }
a=(); b=()
for i in $(seq "$TRIALS"); do
  a+=("$(mpps "$one")"); b+=("$(mpps)")
  echo "trial $i: 1 worker ${a[-1]} Mpps, 2 workers ${b[-1]} Mpps"
done
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END {print (NR%2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }
ma=$(median "${a[@]}"); mb=$(median "${b[@]}")
echo "median: 1 worker $ma Mpps, 2 workers $mb Mpps"
awk -v a="$ma" -v b="$mb" 'BEGIN { printf "ratio: %.2f\n", b / a }'
