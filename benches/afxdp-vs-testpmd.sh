#!/usr/bin/env bash
# Forwarding rate over AF_XDP on veth: nfv against DPDK's dpdk-testpmd.
#
#   sudo benches/afxdp-vs-testpmd.sh [TRIALS] [SECONDS]     (default 5, 3)
#   GEN=trafgen sudo benches/afxdp-vs-testpmd.sh           (netsniff-ng trafgen)
#
# Topology (tests/testbed.sh line): generator in gen -> g0=d0 -> DUT -> d1=s0
# -> sink. The DUT cross-connects d0 and d1 on one pinned core (core 1):
#   nfv       kind = "af-xdp" ports, l2-patch chain, shared UMEM
#   nfv-sep   the same with each port registering the memory separately
#   nfv-bp    shared UMEM with busy polling (busy-poll-us = 20)
#   testpmd   --vdev net_af_xdp0,iface=d0 --vdev net_af_xdp1,iface=d1, io fwd
# One generator runs through every trial on core 0, so all DUTs see the
# same offered load: by default an nfv generator port (64-byte UDP frames,
# 60 bytes + FCS) sent through an AF_XDP socket on g0, which offers more
# than a copy-mode DUT can forward (~1 Mpps); trafgen (PF_PACKET) offers
# less than that here and would measure itself. The rate is what
# arrives at s0 (its rx_packets; an nftables ingress drop keeps the sink's stack
# from spending CPU). Configurations alternate within each trial; CPU
# steal is recorded per trial and trials above 5 % are left out of the
# medians (all are kept if none is clean). The last line is
# `ratio: nfv/testpmd`.
set -euo pipefail

TRIALS=${1:-5}
SECS=${2:-3}
WARMUP=2
P=nfvbench
ROOT=$(cd "$(dirname "$0")/.." && pwd)
NFV=$ROOT/target/release/nfv
WORK=$(mktemp -d)

source "$ROOT/benches/bed-lib.sh"
bed_up dpdk-testpmd ethtool nft taskset
ns sink nft add table netdev bench
ns sink nft add chain netdev bench in "{ type filter hook ingress device s0 priority 0; policy drop; }"

mac() { ns "$1" cat "/sys/class/net/$2/address" | sed 's/^/0x/; s/:/, 0x/g'; }
cat > "$WORK/udp.trafgen" <<EOF
{
  $(mac sink s0), $(mac gen g0), c16(0x0800),
  0x45, 0x00, c16(46), c16(1), c16(0x4000), 64, 17, csumip(14, 33),
  10, 0, 0, 1, 10, 0, 0, 2,
  c16(1024), c16(9000), c16(26), c16(0),
  fill(0x00, 18)
}
EOF
nfv_config() { # umem busy-poll-us
    cat <<EOF
[run]
stats-interval = 0
# The AF_XDP path (benches/xdp-offload.sh measures nfv's XDP offload).
offload = "off"

[[ports]]
name = "d0"
kind = "af-xdp"
interface = "d0"
umem = "$1"
busy-poll-us = $2

[[ports]]
name = "d1"
kind = "af-xdp"
interface = "d1"
umem = "$1"
busy-poll-us = $2

[[chains]]
name = "xc"
stages = [{ kind = "l2-patch", pairs = [["d0", "d1"]] }]

[[workers]]
core = 1
rx = ["d0", "d1"]
chain = "xc"
EOF
}
nfv_config shared 0 >"$WORK/nfv.toml"
nfv_config separate 0 >"$WORK/nfv-sep.toml"
nfv_config shared 20 >"$WORK/nfv-bp.toml"

if [[ ${GEN:-nfv} == trafgen ]]; then
    ip netns exec "$P-gen" taskset -c 0 trafgen --dev g0 --conf "$WORK/udp.trafgen" --cpus 1 --no-cpu-stats \
        >/dev/null 2>&1 &
    PIDS+=($!)
    sleep 1
else
    start_generator 1 "$(ns sink cat /sys/class/net/s0/address)"
fi

# Runs one DUT for WARMUP+SECS seconds; writes "Mpps steal% offered" to $WORK/result.
measure() {
    local dut=$1 pid
    case $dut in
        nfv*) start_nfv "$dut" ;;
        testpmd)
            # testpmd exits on a newline on stdin; the sleep holds it open.
            (sleep $((WARMUP + SECS + 1)); echo) | ip netns exec "$P-dut" dpdk-testpmd -l 0,1 -m 512 --no-huge --no-pci \
                --vdev net_af_xdp0,iface=d0 --vdev net_af_xdp1,iface=d1 -- \
                --total-num-mbufs=32768 --forward-mode=io --auto-start >"$WORK/$dut.out" 2>&1 &
            pid=$!
            PIDS+=($pid)
            ;;
    esac
    sample >"$WORK/result"
    if [[ $dut == testpmd ]]; then wait "$pid" || true; else stop_nfv "$dut" "$NFV_PID"; fi
}

DUTS=(nfv testpmd nfv-sep nfv-bp)
run_trials "${DUTS[@]}"

echo
echo "nfv report of the last trial (ticks/pkt: cycles per packet per stage):"
sed -n '/^stage/,/^slow/p' "$WORK/nfv.out" | grep -v '^slow' 
NFV_MED=$(median nfv)
SEP_MED=$(median nfv-sep)
BP_MED=$(median nfv-bp)
TP_MED=$(median testpmd)
echo "median nfv (shared UMEM):   $NFV_MED Mpps"
echo "median nfv (separate UMEM): $SEP_MED Mpps"
echo "median nfv (busy poll):     $BP_MED Mpps"
echo "median dpdk-testpmd:        $TP_MED Mpps"
for d in "${DUTS[@]}"; do
    printf 'forwarded/offered, median: %-8s %s\n' "$d" "$(median "$d" share)"
done
awk -v a="$SEP_MED" -v b="$NFV_MED" 'BEGIN { printf "separate/shared: %.2f\n", (b > 0 ? a / b : 0) }'
awk -v a="$NFV_MED" -v b="$TP_MED" 'BEGIN { printf "ratio: %.2f\n", (b > 0 ? a / b : 0) }'
