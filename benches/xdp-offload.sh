#!/usr/bin/env bash
# Established traffic through nfv's XDP offload against the same chain on
# AF_XDP alone and against the kernel's best path here, on the veth bed,
# one function per run:
#
#   sudo benches/xdp-offload.sh [nat|lb|vtep|upf|upf-down] [TRIALS] [SECONDS] [FLOWS]
#                               (default nat, 5, 3, 1024)
#
# Topology (tests/testbed.sh line): gen [g0] -> [d0] DUT [d1] -> [s0] sink.
# DUTs, alternating within each trial:
#   nfv-xdp     nfv, `[run] offload = "xdp"` (the default): first packets
#               in the worker, the established ones forwarded by nfv's XDP
#               program
#   nfv-afxdp   the same configuration with `offload = "off"`: every
#               packet through the AF_XDP worker
#   kernel      the kernel's best path here for the function:
#               nat   ip_forward and nftables masquerade (snat with
#                     conntrack; this kernel has no nftables flowtable)
#               lb    nftables DNAT to the backends as kube-proxy does it
#                     (a random endpoint per new flow, conntrack after)
#               vtep  a bridge of d0 and the kernel's vxlan device
#                     (encapsulation toward the remote VTEP at s0)
#               upf   none: this kernel has no gtp module (nor do the
#                     kernel UPFs' hosts, eUPF's own path is XDP), so the
#                     UPF runs compare nfv-xdp with nfv-afxdp only
#   floor       no DUT: d0 drops everything in XDP (`nfv hw sink`), the
#               generator's own ceiling (its rate is counted at d0)
# The chains: nat is configs/nat44.toml's (ttl-decrement, nat44 from the
# inside 10.0.0.0/24 to the pool 198.51.100.10); lb a UDP VIP
# 192.0.2.10:53 in direct-server-return mode over three backends (all
# s0's MAC); vtep configs/vtep-vxlan.toml's VXLAN VTEP (VNI 100, local
# 192.168.0.1 on d1) with the far host's MAC at the remote VTEP
# 192.168.0.2 (s0); upf configs/upf.toml's static session (UE 10.45.0.7,
# uplink TEID 4660, downlink TEID 43981 and QFI 9 toward the gNB
# 10.10.0.2): `upf` measures the uplink (the generator a gNB sending
# 96-byte G-PDUs to d0, N3; decapsulated to s0 on N6, 60-byte frames),
# `upf-down` the downlink (d0 is N6: 60-byte frames to the UE,
# encapsulated with a PDU Session Container toward the gNB at s0 on N3). The generator is `nfv hw blast` (nfv's XDP generator:
# BPF_PROG_TEST_RUN in live-frames mode, about 2 Mpps into a veth here)
# on core 0: 60-byte UDP frames from 10.0.0.1 (vtep: 10.10.0.1 to the far
# host's MAC), FLOWS source ports. The sink is `nfv hw sink` on s0 (XDP
# drop); the rate is what arrives there, the offered load (what g0
# delivered to d0) is printed beside it. A veth runs its receiver's work
# on the sender's CPU: d0's XDP program, the kernel's forwarding and the
# AF_XDP copy all run on core 0 inline with the generator (a threaded
# NAPI on core 1 measured slower: each hand-over between cores is an IPI,
# a VM exit here), and nfv's worker has core 1. So where nfv-xdp forwards
# all it is offered, the generator set the figure and the ratio is a lower
# bound. What the inline DUTs cost core 0 per packet is then 1/rate -
# 1/floor (the forwarding, the hop to s0 and the sink's drop: an upper
# bound), printed with the packets per second one core could forward at
# that cost; and the program's own time per packet (BPF statistics,
# switched on for the run, their clock reads included). Trials with CPU
# steal above 5 % are left out of the medians. Last line: `ratio:
# nfv-xdp/nfv-afxdp` (target 4) after `nfv-xdp/kernel`.
set -euo pipefail

FUNC=${1:-nat}
TRIALS=${2:-5}
SECS=${3:-3}
FLOWS=${4:-1024}
WARMUP=2
P=nfvxo
ROOT=$(cd "$(dirname "$0")/.." && pwd)
NFV=$ROOT/target/release/nfv
WORK=$(mktemp -d)
case $FUNC in
    nat | lb | vtep | upf | upf-down) ;;
    *) echo "function: nat, lb, vtep, upf or upf-down, not '$FUNC'"; exit 1 ;;
esac

source "$ROOT/benches/bed-lib.sh"
bed_up ethtool nft taskset conntrack bridge
S0_MAC=$(ns sink cat /sys/class/net/s0/address)
G0_MAC=$(ns gen cat /sys/class/net/g0/address)
D0_MAC=$(ns dut cat /sys/class/net/d0/address)
BACKENDS=(10.1.0.11 10.1.0.12 10.1.0.13)
FAR_HOST=02:00:00:00:0f:01

ns sink ip addr flush dev s0
case $FUNC in
    nat) ns sink ip addr add 198.51.100.2/24 dev s0 ;;
    lb) for b in "${BACKENDS[@]}"; do ns sink ip addr add "$b/24" dev s0; done ;;
    vtep) ns sink ip addr add 192.168.0.2/24 dev s0 ;;
    upf) ns sink ip addr add 198.51.100.2/24 dev s0 ;;
    upf-down) ns sink ip addr add 10.10.0.2/24 dev s0 ;;
esac
ip netns exec "$P-sink" "$NFV" hw sink s0 &
PIDS+=($!)
STATS=$(sysctl -n kernel.bpf_stats_enabled)
sysctl -qw kernel.bpf_stats_enabled=1
trap 'sysctl -qw kernel.bpf_stats_enabled=$STATS; bed_cleanup' EXIT
sleep 0.5

kernel_on() {
    # GRO gives d0 the NAPI the generator's redirect needs.
    ns dut ethtool -K d0 gro on >/dev/null
    case $FUNC in
        nat)
            ns dut ip addr add 10.0.0.254/24 dev d0
            ns dut ip addr add 198.51.100.1/24 dev d1
            ns dut ip route add default via 198.51.100.2
            ns dut ip neigh replace 198.51.100.2 lladdr "$S0_MAC" dev d1 nud permanent
            ns dut nft add table ip nat
            ns dut nft add chain ip nat post "{ type nat hook postrouting priority 100; }"
            ns dut nft add rule ip nat post oifname d1 snat to 198.51.100.10
            ;;
        lb)
            ns dut ip addr add 10.0.0.254/24 dev d0
            ns dut ip addr add 10.1.0.1/24 dev d1
            for b in "${BACKENDS[@]}"; do ns dut ip neigh replace "$b" lladdr "$S0_MAC" dev d1 nud permanent; done
            ns dut nft add table ip lb
            ns dut nft add chain ip lb pre "{ type nat hook prerouting priority dstnat; }"
            ns dut nft add rule ip lb pre ip daddr 192.0.2.10 udp dport 53 \
                dnat to numgen random mod 3 map "{ 0 : ${BACKENDS[0]}, 1 : ${BACKENDS[1]}, 2 : ${BACKENDS[2]} }"
            ;;
        vtep)
            ns dut ip addr add 192.168.0.1/24 dev d1
            ns dut ip neigh replace 192.168.0.2 lladdr "$S0_MAC" dev d1 nud permanent
            ns dut ip link add vx100 type vxlan id 100 local 192.168.0.1 dstport 4789 dev d1
            ns dut ip link add br0 type bridge
            ns dut ip link set vx100 master br0
            ns dut ip link set d0 master br0
            ns dut bridge fdb append "$FAR_HOST" dev vx100 dst 192.168.0.2
            ns dut ip link set vx100 up
            ns dut ip link set br0 up
            ;;
    esac
    ns dut sysctl -qw net.ipv4.ip_forward=1 net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.d0.rp_filter=0
}
kernel_off() {
    ns dut ip link del br0 2>/dev/null || true
    ns dut ip link del vx100 2>/dev/null || true
    ns dut nft flush ruleset
    ns dut conntrack -F >/dev/null 2>&1 || true
    ns dut sysctl -qw net.ipv4.ip_forward=0
    ns dut ip addr flush dev d0
    ns dut ip addr flush dev d1
    ns dut ip route flush table main 2>/dev/null || true
    ns dut ethtool -K d0 gro off >/dev/null
}

# The function's configuration, with `offload` and the worker on core 1.
nfv_config() { # offload
    local neighbours="" b
    case $FUNC in
        nat)
            sed -e "s/^stats-interval = 0$/stats-interval = 0\noffload = \"$1\"/" \
                -e 's/^rx = \["d0", "d1"\]$/core = 1\nrx = ["d0", "d1"]/' "$ROOT/configs/nat44.toml"
            printf '\n[[neighbours]]\nip = "198.51.100.2"\nport = "d1"\nmac = "%s"\n' "$S0_MAC"
            ;;
        lb)
            for b in "${BACKENDS[@]}"; do
                neighbours+=$'\n[[neighbours]]\nip = "'$b$'"\nport = "d1"\nmac = "'$S0_MAC$'"\n'
            done
            cat <<TOML
[run]
stats-interval = 0
offload = "$1"

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
stages = [{ kind = "lb", clients = ["d0"], backends-port = "d1", source-address = "10.1.0.1",
            vips = [{ vip = "192.0.2.10:53", proto = "udp", mode = "dsr",
                      backends = [{ addr = "${BACKENDS[0]}" }, { addr = "${BACKENDS[1]}" }, { addr = "${BACKENDS[2]}" }] }] }]

[[workers]]
core = 1
rx = ["d0", "d1"]
chain = "c"
TOML
            ;;
        upf | upf-down)
            # Uplink: N3 on d0, N6 toward s0; downlink: N6 on d0, N3
            # toward the gNB at s0.
            local n3=d0 n6=d1 n3_neigh="" n6_neigh
            n6_neigh=$'\n[[neighbours]]\nip = "198.51.100.2"\nport = "d1"\nmac = "'$S0_MAC$'"\n'
            if [[ $FUNC == upf-down ]]; then
                n3=d1 n6=d0
                n3_neigh=$'\n[[neighbours]]\nip = "10.10.0.2"\nport = "d1"\nmac = "'$S0_MAC$'"\n'
                n6_neigh=$'\n[[neighbours]]\nip = "198.51.100.2"\nport = "d0"\nmac = "'$G0_MAC$'"\n'
            fi
            cat <<TOML
[run]
stats-interval = 0
offload = "$1"

[[ports]]
name = "$n3"
kind = "af-xdp"
interface = "$n3"
addresses = ["10.10.0.1/24"]

[[ports]]
name = "$n6"
kind = "af-xdp"
interface = "$n6"
addresses = ["198.51.100.1/24"]
$n3_neigh$n6_neigh
[[chains]]
name = "upf"
stages = [{ kind = "upf", n3 = "$n3", n3-address = "10.10.0.1", n6 = "$n6", n6-gateway = "198.51.100.2",
            sessions = [{ seid = 1, ue = "10.45.0.7", uplink-teid = 4660, gnb = "10.10.0.2",
                          downlink-teid = 43981, qfi = 9 }] }]

[[workers]]
core = 1
rx = ["d0", "d1"]
chain = "upf"
TOML
            ;;
        vtep)
            sed -e "s/^stats-interval = 0$/stats-interval = 0\noffload = \"$1\"/" \
                -e 's/^rx = \["d0", "d1"\]$/core = 1\nrx = ["d0", "d1"]/' \
                -e "s/arp-suppression = true }]/arp-suppression = true,\n            static-macs = [{ vni = 100, mac = \"$FAR_HOST\", remote = \"192.168.0.2\" }] }]/" \
                "$ROOT/configs/vtep-vxlan.toml"
            printf '\n[[neighbours]]\nip = "192.168.0.2"\nport = "d1"\nmac = "%s"\n' "$S0_MAC"
            ;;
    esac
}
nfv_config xdp >"$WORK/nfv-xdp.toml"
nfv_config off >"$WORK/nfv-afxdp.toml"
grep -q "static-macs" "$WORK/nfv-xdp.toml" || [[ $FUNC != vtep ]] || { echo "vtep config edit failed"; exit 1; }

case $FUNC in
    nat) TRAFFIC=(--dst-mac "$D0_MAC" --src 10.0.0.1 --dst 198.51.100.2:9) ;;
    lb) TRAFFIC=(--dst-mac "$D0_MAC" --src 10.0.0.1 --dst 192.0.2.10:53) ;;
    vtep) TRAFFIC=(--dst-mac "$FAR_HOST" --src 10.10.0.1 --dst 10.10.0.2:9) ;;
    upf) TRAFFIC=(--dst-mac "$D0_MAC" --src 10.10.0.2 --dst 10.10.0.1:2152 --gtpu 4660 --ue 10.45.0.7
        --data-network 198.51.100.2:9 --size 96) ;;
    upf-down) TRAFFIC=(--dst-mac "$D0_MAC" --src 198.51.100.2 --dst 10.45.0.7:4000) ;;
esac
ip netns exec "$P-gen" taskset -c 0 "$NFV" hw blast g0 "${TRAFFIC[@]}" --ports "$FLOWS" >"$WORK/blast.out" 2>&1 &
PIDS+=($!)
sleep 0.5

measure() {
    local dut=$1
    case $dut in
        nfv*) start_nfv "$dut" ;;
        kernel) kernel_on ;;
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
        kernel) kernel_off ;;
    esac
}

DUTS=(nfv-xdp nfv-afxdp kernel floor)
[[ $FUNC != upf* ]] || DUTS=(nfv-xdp nfv-afxdp floor)
run_trials "${DUTS[@]}"
echo
echo "$FUNC: nfv-xdp report of the last trial:"
grep -E '^(xdp|  xdp|  sessions|  connection table|  encapsulated|  uplink)' "$WORK/nfv-xdp.out" | cut -c1-160 || true
for d in "${DUTS[@]}"; do
    printf 'median %-10s %s Mpps (forwarded/offered %s)\n' "$d" "$(median "$d")" "$(median "$d" share)"
done
for d in nfv-xdp kernel; do
    [[ -n ${RES[$d]:-} ]] || continue
    awk -v d="$d" -v r="$(median "$d")" -v f="$(median floor)" 'BEGIN {
        c = 1000 / r - 1000 / f
        if (c > 0) printf "%s costs core 0 %.0f ns per packet beyond the generator: %.2f Mpps per core\n", d, c, 1000 / c }'
done
[[ -z ${RES[kernel]:-} ]] || ratio_line nfv-xdp/kernel nfv-xdp kernel
ratio_line ratio nfv-xdp nfv-afxdp
