#!/usr/bin/env bash
# The live test bed: network namespaces joined by veth pairs around a device
# under test (DUT) that runs nfv on AF_XDP.
#
#   tests/testbed.sh up   PREFIX line|loop [QUEUES]
#   tests/testbed.sh down PREFIX
#   tests/testbed.sh info PREFIX        # MACs, one "ns/if mac" per line
#
# line: PREFIX-gen [g0] <-> [d0] PREFIX-dut [d1] <-> [s0] PREFIX-sink
#       g0 10.0.0.1/24 and s0 10.0.0.2/24 share one subnet: an L2
#       cross-connect in the DUT joins them, so they ARP and talk through it.
# loop: PREFIX-gen [g0] <-> [d0] PREFIX-dut (one-legged: the DUT sends back).
#
# The DUT side (d0, d1) gets no addresses: nfv owns it. IPv6 is off on
# every veth so no router solicitations or MLD reports muddy the counts,
# and TX checksum offload is off on the veths feeding the DUT (AF_XDP
# forwards frames as they are; an unfilled checksum would be dropped by
# the receiving kernel, see ../shared/TESTBED.md). QUEUES (default 1, at
# most 2 on veth) sets the rx/tx queue count of every veth.
#
# `up` first removes what an earlier run with the same PREFIX left, and
# removes everything again if any step fails. `down` deletes the
# namespaces, which deletes their veths.
set -Eeuo pipefail

die() { echo "testbed: $*" >&2; exit 1; }

down() {
    local p=$1 ns
    for ns in "$p-gen" "$p-dut" "$p-sink"; do
        ip netns del "$ns" 2>/dev/null || true
    done
}

in_ns() { ip netns exec "$1" "${@:2}"; }

quiet_link() {
    # ns, interface: up, no IPv6, offloads that AF_XDP cannot honour off.
    in_ns "$1" sysctl -qw "net.ipv6.conf.$2.disable_ipv6=1"
    # TX checksum offload must go (see above); the rest is best effort.
    in_ns "$1" ethtool -K "$2" tx off >/dev/null
    in_ns "$1" ethtool -K "$2" tso off gso off gro off >/dev/null 2>&1 || true
    in_ns "$1" ip link set "$2" up
}

up() {
    local p=$1 topo=$2 q=${3:-1}
    [[ $topo == line || $topo == loop ]] || die "topology must be line or loop, not '$topo'"
    [[ $q =~ ^[12]$ ]] || die "veth offers 1 or 2 queues, not '$q'"
    down "$p"
    trap 'down "$p"; die "setup failed; cleaned up"' ERR
    ip netns add "$p-gen"
    ip netns add "$p-dut"
    in_ns "$p-gen" ip link set lo up
    in_ns "$p-dut" ip link set lo up
    ip link add g0 netns "$p-gen" numtxqueues "$q" numrxqueues "$q" type veth \
        peer d0 netns "$p-dut" numtxqueues "$q" numrxqueues "$q"
    quiet_link "$p-gen" g0
    quiet_link "$p-dut" d0
    in_ns "$p-gen" ip addr add 10.0.0.1/24 dev g0
    if [[ $topo == line ]]; then
        ip netns add "$p-sink"
        in_ns "$p-sink" ip link set lo up
        ip link add d1 netns "$p-dut" numtxqueues "$q" numrxqueues "$q" type veth \
            peer s0 netns "$p-sink" numtxqueues "$q" numrxqueues "$q"
        quiet_link "$p-dut" d1
        quiet_link "$p-sink" s0
        in_ns "$p-sink" ip addr add 10.0.0.2/24 dev s0
    fi
    trap - ERR
}

info() {
    local p=$1 ns ifc
    for pair in gen/g0 dut/d0 dut/d1 sink/s0; do
        ns=${pair%/*} ifc=${pair#*/}
        if ip netns list | grep -qw "$p-$ns"; then
            in_ns "$p-$ns" cat "/sys/class/net/$ifc/address" 2>/dev/null | sed "s|^|$ns/$ifc |" || true
        fi
    done
}

[[ $(id -u) == 0 ]] || die "needs root (network namespaces, veth, XDP)"
cmd=${1:-}; shift || true
case $cmd in
    up) [[ $# -ge 2 ]] || die "usage: $0 up PREFIX line|loop [QUEUES]"; up "$@" ;;
    down) [[ $# -eq 1 ]] || die "usage: $0 down PREFIX"; down "$1" ;;
    info) [[ $# -eq 1 ]] || die "usage: $0 info PREFIX"; info "$1" ;;
    *) die "usage: $0 up PREFIX line|loop [QUEUES] | down PREFIX | info PREFIX" ;;
esac
