#!/usr/bin/env bash
# Established traffic through nfv's XDP offload against the same chain on
# AF_XDP alone and against the kernel's best path here, on the veth bed,
# one run:
#
#   sudo benches/xdp-offload.sh [TRIALS] [SECONDS] [FLOWS]   (default 5, 3, 1024)
#
# Topology (tests/testbed.sh line): gen [g0] -> [d0] DUT [d1] -> [s0] sink.
# The DUT is configs/nat44.toml's chain (ttl-decrement, nat44 from the
# inside 10.0.0.0/24 on d0 to the pool 198.51.100.10 on d1):
#   nfv-xdp     nfv, `[run] offload = "xdp"` (the default): first packets
#               in the worker, established sessions forwarded by nfv's
#               XDP program
#   nfv-afxdp   the same configuration with `offload = "off"`: every
#               packet through the AF_XDP worker
#   kernel-nat  the kernel: ip_forward and nftables masquerade (snat with
#               conntrack; this kernel has no nftables flowtable)
#   floor       no DUT: d0 drops everything in XDP (`nfv hw sink`), the
#               generator's own ceiling (its rate is counted at d0)
# The generator is `nfv hw blast` (nfv's XDP generator: BPF_PROG_TEST_RUN
# in live-frames mode, about 2 Mpps into a veth here) on core 0: 60-byte
# UDP frames from 10.0.0.1, FLOWS source ports, to 198.51.100.2:9. The
# sink is `nfv hw sink` on s0 (XDP drop); the rate is what arrives there,
# the offered load (what g0 delivered to d0) is printed beside it. A veth
# runs its receiver's work on the sender's CPU: d0's XDP program, the
# kernel's forwarding and the AF_XDP copy all run on core 0 inline with
# the generator (a threaded NAPI on core 1 measured slower: each hand-over
# between cores is an IPI, a VM exit here), and nfv's worker has core 1.
# So where nfv-xdp forwards all it is offered, the generator set the
# figure and the ratio is a lower bound. What the inline DUTs cost core 0
# per packet is then 1/rate - 1/floor (the forwarding, the hop to s0 and
# the sink's drop: an upper bound), printed with the packets per second
# one core could forward at that cost; and the program's own time per
# packet (BPF statistics, switched on for the run, their clock reads
# included). DUTs alternate within each trial; trials with CPU steal
# above 5 % are left out of the medians. Last line: `ratio:
# nfv-xdp/nfv-afxdp` (target 4) after `nfv-xdp/kernel-nat`.
set -euo pipefail

TRIALS=${1:-5}
SECS=${2:-3}
FLOWS=${3:-1024}
WARMUP=2
P=nfvxo
ROOT=$(cd "$(dirname "$0")/.." && pwd)
NFV=$ROOT/target/release/nfv
WORK=$(mktemp -d)

source "$ROOT/benches/bed-lib.sh"
bed_up ethtool nft taskset conntrack
ns gen ip route add default via 10.0.0.254
ns sink ip addr flush dev s0
ns sink ip addr add 198.51.100.2/24 dev s0
S0_MAC=$(ns sink cat /sys/class/net/s0/address)
D0_MAC=$(ns dut cat /sys/class/net/d0/address)

ip netns exec "$P-sink" "$NFV" hw sink s0 &
PIDS+=($!)
STATS=$(sysctl -n kernel.bpf_stats_enabled)
sysctl -qw kernel.bpf_stats_enabled=1
trap 'sysctl -qw kernel.bpf_stats_enabled=$STATS; bed_cleanup' EXIT
sleep 0.5

kernel_on() {
    # GRO gives d0 the NAPI the generator's redirect needs.
    ns dut ethtool -K d0 gro on >/dev/null
    ns dut ip addr add 10.0.0.254/24 dev d0
    ns dut ip addr add 198.51.100.1/24 dev d1
    ns dut ip route add default via 198.51.100.2
    ns dut ip neigh replace 198.51.100.2 lladdr "$S0_MAC" dev d1 nud permanent
    ns dut sysctl -qw net.ipv4.ip_forward=1 net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.d0.rp_filter=0
    ns dut nft add table ip nat
    ns dut nft add chain ip nat post "{ type nat hook postrouting priority 100; }"
    ns dut nft add rule ip nat post oifname d1 snat to 198.51.100.10
}
kernel_off() {
    ns dut nft flush ruleset
    ns dut conntrack -F >/dev/null 2>&1 || true
    ns dut sysctl -qw net.ipv4.ip_forward=0
    ns dut ip addr flush dev d0
    ns dut ip addr flush dev d1
    ns dut ethtool -K d0 gro off >/dev/null
}

nfv_config() { # offload
    sed -e "s/^stats-interval = 0$/stats-interval = 0\noffload = \"$1\"/" \
        -e 's/^rx = \["d0", "d1"\]$/core = 1\nrx = ["d0", "d1"]/' "$ROOT/configs/nat44.toml"
    cat <<TOML

[[neighbours]]
ip = "198.51.100.2"
port = "d1"
mac = "$S0_MAC"
TOML
}
nfv_config xdp >"$WORK/nfv-xdp.toml"
nfv_config off >"$WORK/nfv-afxdp.toml"

ip netns exec "$P-gen" taskset -c 0 "$NFV" hw blast g0 --dst-mac "$D0_MAC" --src 10.0.0.1 \
    --dst 198.51.100.2:9 --ports "$FLOWS" >"$WORK/blast.out" 2>&1 &
PIDS+=($!)
sleep 0.5

measure() {
    local dut=$1
    case $dut in
        nfv*) start_nfv "$dut" ;;
        kernel-nat) kernel_on ;;
        floor)
            ip netns exec "$P-dut" "$NFV" hw sink d0 &
            NFV_PID=$!
            PIDS+=($NFV_PID)
            ;;
    esac
    if [[ $dut == floor ]]; then
        # Nothing reaches s0: the rate is what d0 received.
        sample d0 >"$WORK/result"
    else
        sample >"$WORK/result"
    fi
    case $dut in
        nfv*) stop_nfv "$dut" "$NFV_PID" ;;
        floor) kill "$NFV_PID"; wait "$NFV_PID" || true ;;
        kernel-nat)
            ns dut conntrack -C >"$WORK/conntrack" 2>/dev/null || true
            kernel_off
            ;;
    esac
}

DUTS=(nfv-xdp nfv-afxdp kernel-nat floor)
run_trials "${DUTS[@]}"
echo
echo "nfv-xdp report of the last trial:"
grep -E '^(xdp|  xdp|  sessions)' "$WORK/nfv-xdp.out" || true
echo "kernel conntrack entries (last kernel-nat trial): $(cat "$WORK/conntrack" 2>/dev/null || echo '?')"
for d in "${DUTS[@]}"; do
    printf 'median %-10s %s Mpps (forwarded/offered %s)\n' "$d" "$(median "$d")" "$(median "$d" share)"
done
for d in nfv-xdp kernel-nat; do
    awk -v d="$d" -v r="$(median "$d")" -v f="$(median floor)" 'BEGIN {
        c = 1000 / r - 1000 / f
        if (c > 0) printf "%s costs core 0 %.0f ns per packet beyond the generator: %.2f Mpps per core\n", d, c, 1000 / c }'
done
ratio_line nfv-xdp/kernel-nat nfv-xdp kernel-nat
ratio_line ratio nfv-xdp nfv-afxdp
