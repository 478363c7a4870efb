#!/usr/bin/env bash
# L4 load balancing over AF_XDP on veth: nfv's lb stage against the
# kernel's own, as kube-proxy's nftables mode does it (nftables DNAT
# spread at random over the backends, conntrack keeping each flow on its
# backend), and the direct-return modes against an ECMP route (this
# kernel has no IPVS), in one run, same topology, generator and traffic.
#
#   sudo benches/lb-vs-nftables.sh [TRIALS] [SECONDS] [FLOWS]   (default 5, 3, 1024)
#
# Topology (tests/testbed.sh line): generator in gen -> g0=d0 -> DUT -> d1=s0
# -> sink, which holds the three backends' addresses (10.1.0.11-13; an
# nftables ingress rule drops IPv4 there, so the rate is what reaches the
# backends' link, and the sink's stack spends nothing). One nfv generator
# on core 0 sends 64-byte UDP frames of FLOWS flows, all to the VIP
# 192.0.2.10:53, through every trial. DUTs, on core 1, alternating:
#   nfv-nat      ttl-decrement + lb, NAT mode (DNAT + SNAT, connection table)
#   kernel-dnat  ip_forward + nftables dnat to numgen random mod 3 (conntrack),
#                RPS moving d0's receive work to core 1
#   nfv-dsr      ttl-decrement + lb, direct server return (MAC rewrite)
#   kernel-ecmp  ip_forward + a multipath route for the VIP over the
#                backends (L4 hash), RPS likewise
# Trials with CPU steal above 5 % are left out of the medians (all kept if
# none is clean). Also printed: the lb stage's share of nfv's cycles per
# packet, and nfv-dsr/kernel-ecmp. Last line: `ratio: nfv-nat/kernel-dnat`.
set -euo pipefail

TRIALS=${1:-5}
SECS=${2:-3}
FLOWS=${3:-1024}
WARMUP=2
P=nfvlb
ROOT=$(cd "$(dirname "$0")/.." && pwd)
NFV=$ROOT/target/release/nfv
WORK=$(mktemp -d)
BACKENDS=(10.1.0.11 10.1.0.12 10.1.0.13)

source "$ROOT/benches/bed-lib.sh"
bed_up ethtool nft taskset conntrack
ns sink ip addr flush dev s0
for b in "${BACKENDS[@]}"; do ns sink ip addr add "$b/24" dev s0; done
ns sink nft add table netdev bench
ns sink nft add chain netdev bench in "{ type filter hook ingress device s0 priority 0; policy accept; }"
ns sink nft add rule netdev bench in meta protocol ip drop
S0_MAC=$(ns sink cat /sys/class/net/s0/address)
D0_MAC=$(ns dut cat /sys/class/net/d0/address)

kernel_on() { # dnat|ecmp
    ns dut ip addr add 10.0.0.254/24 dev d0
    ns dut ip addr add 10.1.0.1/24 dev d1
    for b in "${BACKENDS[@]}"; do ns dut ip neigh replace "$b" lladdr "$S0_MAC" dev d1 nud permanent; done
    ns dut sysctl -qw net.ipv4.ip_forward=1 net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.d0.rp_filter=0
    # A veth delivers on the sender's CPU (the generator's core 0): RPS
    # moves the kernel's forwarding to core 1, where nfv runs.
    ns dut sh -c 'echo 2 > /sys/class/net/d0/queues/rx-0/rps_cpus'
    if [[ $1 == dnat ]]; then
        # kube-proxy's nftables mode: a random endpoint per new flow,
        # conntrack for the rest of it.
        ns dut nft add table ip lb
        ns dut nft add chain ip lb pre "{ type nat hook prerouting priority dstnat; }"
        ns dut nft add rule ip lb pre ip daddr 192.0.2.10 udp dport 53 \
            dnat to numgen random mod 3 map "{ 0 : ${BACKENDS[0]}, 1 : ${BACKENDS[1]}, 2 : ${BACKENDS[2]} }"
    else
        ns dut sysctl -qw net.ipv4.fib_multipath_hash_policy=1
        ns dut ip route add 192.0.2.10/32 nexthop via "${BACKENDS[0]}" nexthop via "${BACKENDS[1]}" \
            nexthop via "${BACKENDS[2]}"
    fi
}
kernel_off() {
    ns dut sh -c 'echo 0 > /sys/class/net/d0/queues/rx-0/rps_cpus'
    ns dut nft flush ruleset
    ns dut conntrack -F >/dev/null 2>&1 || true
    ns dut ip route del 192.0.2.10/32 2>/dev/null || true
    ns dut sysctl -qw net.ipv4.ip_forward=0
    ns dut ip addr flush dev d0
    ns dut ip addr flush dev d1
}

nfv_config() { # mode
    local neighbours="" b
    for b in "${BACKENDS[@]}"; do
        neighbours+=$'\n[[neighbours]]\nip = "'$b$'"\nport = "d1"\nmac = "'$S0_MAC$'"\n'
    done
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
addresses = ["10.1.0.1/24"]
$neighbours
[[chains]]
name = "c"
stages = [{ kind = "ttl-decrement" },
          { kind = "lb", clients = ["d0"], backends-port = "d1", source-address = "10.1.0.1",
            vips = [{ vip = "192.0.2.10:53", proto = "udp", mode = "$1",
                      backends = [{ addr = "${BACKENDS[0]}" }, { addr = "${BACKENDS[1]}" }, { addr = "${BACKENDS[2]}" }] }] }]

[[workers]]
core = 1
rx = ["d0", "d1"]
chain = "c"
TOML
}
nfv_config nat >"$WORK/nfv-nat.toml"
nfv_config dsr >"$WORK/nfv-dsr.toml"
start_generator "$FLOWS" "$D0_MAC" 'dst = "192.0.2.10:53"'

measure() {
    local dut=$1
    case $dut in
        nfv*) start_nfv "$dut" ;;
        kernel-dnat) kernel_on dnat ;;
        kernel-ecmp) kernel_on ecmp ;;
    esac
    sample >"$WORK/result"
    case $dut in
        nfv*) stop_nfv "$dut" "$NFV_PID" ;;
        *)
            if [[ $dut == kernel-dnat ]]; then ns dut conntrack -C >"$WORK/conntrack" 2>/dev/null || true; fi
            kernel_off
            ;;
    esac
}

DUTS=(nfv-nat kernel-dnat nfv-dsr kernel-ecmp)
run_trials "${DUTS[@]}"
echo
echo "nfv-nat report of the last trial:"
sed -n '/^stage/,/^$/p' "$WORK/nfv-nat.out"
grep -A6 '^  connections' "$WORK/nfv-nat.out" | head -7 || true
echo "kernel conntrack entries (last kernel-dnat trial): $(cat "$WORK/conntrack" 2>/dev/null || echo '?')"
stage_share lb "$WORK/nfv-nat.out"
for d in "${DUTS[@]}"; do printf 'median %-11s %s Mpps\n' "$d" "$(median "$d")"; done
ratio_line nfv-dsr/kernel-ecmp nfv-dsr kernel-ecmp
ratio_line ratio nfv-nat kernel-dnat
