#!/usr/bin/env bash
# NAT44 over AF_XDP on veth: nfv's nat44 chain against the kernel's
# nftables masquerade (forwarding + conntrack), same topology, generator
# and traffic, in one run.
#
#   sudo benches/nat-vs-nftables.sh [TRIALS] [SECONDS] [FLOWS]   (default 5, 3, 1024)
#
# Topology (tests/testbed.sh line): generator in gen -> g0=d0 -> DUT -> d1=s0
# -> sink. The DUT routes from the inside (d0, 10.0.0.254/24) to the outside
# (d1, 198.51.100.1/24, next hop 198.51.100.2 = the sink, a static
# neighbour entry on both sides), translating every source to
# 198.51.100.10:
#   nfv-nat     nfv on core 1: ttl-decrement, nat44 (AF_XDP ports)
#   nfv-base    nfv on core 1: ttl-decrement, l2-patch (the same chain with
#               a cross-connect instead of NAT: what the NAT stage adds)
#   kernel-nat  the kernel: ip_forward, nftables snat (conntrack) on d1,
#               RPS moving d0's receive work to core 1 (a veth delivers on
#               the sender's CPU, the generator's)
#   kernel-fwd  the kernel: ip_forward only (RPS likewise)
# One nfv generator on core 0 (an AF_XDP socket on g0) sends 64-byte UDP
# frames of FLOWS flows (RFC 4814 addresses and ports: FLOWS sessions /
# conntrack entries) to d0's MAC through every trial. The rate is what
# arrives at s0 (an nftables ingress rule drops IPv4 there, so the sink's
# stack spends nothing). DUTs alternate within each trial; trials with CPU
# steal above 5 % are left out of the medians (all kept if none is clean).
# Also printed: the NAT stage's share of nfv's cycles per packet (its stage
# table). Last line: `ratio: nfv-nat/kernel-nat`.
set -euo pipefail

TRIALS=${1:-5}
SECS=${2:-3}
FLOWS=${3:-1024}
WARMUP=2
P=nfvnat
ROOT=$(cd "$(dirname "$0")/.." && pwd)
NFV=$ROOT/target/release/nfv
WORK=$(mktemp -d)

source "$ROOT/benches/bed-lib.sh"
bed_up ethtool nft taskset conntrack
ns sink ip addr flush dev s0
ns sink ip addr add 198.51.100.2/24 dev s0
ns sink nft add table netdev bench
ns sink nft add chain netdev bench in "{ type filter hook ingress device s0 priority 0; policy accept; }"
ns sink nft add rule netdev bench in meta protocol ip drop
S0_MAC=$(ns sink cat /sys/class/net/s0/address)
D0_MAC=$(ns dut cat /sys/class/net/d0/address)

kernel_on() { # nat|fwd
    ns dut ip addr add 10.0.0.254/24 dev d0
    ns dut ip addr add 198.51.100.1/24 dev d1
    ns dut ip route add default via 198.51.100.2
    ns dut ip neigh replace 198.51.100.2 lladdr "$S0_MAC" dev d1 nud permanent
    ns dut sysctl -qw net.ipv4.ip_forward=1 net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.d0.rp_filter=0
    # A veth delivers on the sender's CPU (the generator's core 0): RPS
    # moves the kernel's forwarding to core 1, where nfv runs.
    ns dut sh -c 'echo 2 > /sys/class/net/d0/queues/rx-0/rps_cpus' 
    if [[ $1 == nat ]]; then
        ns dut nft add table ip nat
        ns dut nft add chain ip nat post "{ type nat hook postrouting priority 100; }"
        ns dut nft add rule ip nat post oifname d1 snat to 198.51.100.10
    fi
}
kernel_off() {
    ns dut sh -c 'echo 0 > /sys/class/net/d0/queues/rx-0/rps_cpus'
    ns dut nft flush ruleset
    ns dut conntrack -F >/dev/null 2>&1 || true
    ns dut sysctl -qw net.ipv4.ip_forward=0
    ns dut ip addr flush dev d0
    ns dut ip addr flush dev d1
}

nfv_config() { # second stage
    cat <<TOML
[run]
stats-interval = 0
# The AF_XDP path (benches/xdp-offload.sh measures nfv's XDP offload).
offload = "off"

[[ports]]
name = "d0"
kind = "af-xdp"
interface = "d0"
addresses = ["10.0.0.254/24"]

[[ports]]
name = "d1"
kind = "af-xdp"
interface = "d1"
addresses = ["198.51.100.1/24"]

[[neighbours]]
ip = "198.51.100.2"
port = "d1"
mac = "$S0_MAC"

[[chains]]
name = "c"
stages = [{ kind = "ttl-decrement" }, $1]

[[workers]]
core = 1
rx = ["d0", "d1"]
chain = "c"
TOML
}
nfv_config '{ kind = "nat44", inside = ["d0"], outside = "d1", pool = ["198.51.100.10"], outside-gateway = "198.51.100.2" }' \
    >"$WORK/nfv-nat.toml"
nfv_config '{ kind = "l2-patch", pairs = [["d0", "d1"]] }' >"$WORK/nfv-base.toml"

start_generator "$FLOWS" "$D0_MAC"

# Runs one DUT for WARMUP+SECS seconds; writes "Mpps steal% offered" to $WORK/result.
measure() {
    local dut=$1
    case $dut in
        nfv*) start_nfv "$dut" ;;
        kernel-nat) kernel_on nat ;;
        kernel-fwd) kernel_on fwd ;;
    esac
    sample >"$WORK/result"
    case $dut in
        nfv*) stop_nfv "$dut" "$NFV_PID" ;;
        *)
            if [[ $dut == kernel-nat ]]; then ns dut conntrack -C >"$WORK/conntrack" 2>/dev/null || true; fi
            kernel_off
            ;;
    esac
}

DUTS=(nfv-nat kernel-nat nfv-base kernel-fwd)
run_trials "${DUTS[@]}"
echo
echo "nfv-nat report of the last trial:"
sed -n '/^stage/,/^$/p' "$WORK/nfv-nat.out"
grep -A2 '^  sessions' "$WORK/nfv-nat.out" | head -3 || true
echo "kernel conntrack entries (last kernel-nat trial): $(cat "$WORK/conntrack" 2>/dev/null || echo '?')"
stage_share nat44 "$WORK/nfv-nat.out"
for d in "${DUTS[@]}"; do printf 'median %-10s %s Mpps\n' "$d" "$(median "$d")"; done
ratio_line nfv-nat/nfv-base nfv-nat nfv-base
ratio_line kernel-nat/kernel-fwd kernel-nat kernel-fwd
ratio_line ratio nfv-nat kernel-nat
