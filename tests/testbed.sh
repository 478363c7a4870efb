#!/usr/bin/env bash
# The live test bed: network namespaces joined by veth pairs around a device
# under test (DUT) that runs nfv on AF_XDP.
#
#   tests/testbed.sh up   PREFIX line|loop|sfc [QUEUES]
#   tests/testbed.sh down PREFIX
#   tests/testbed.sh info PREFIX        # MACs, one "ns/if mac" per line
#   tests/testbed.sh add-host PREFIX ADDR/LEN GW   # a second host beside gen (PREFIX-gen2)
#   tests/testbed.sh add-backend PREFIX NAME ADDR/LEN GW   # a host beside sink (PREFIX-NAME)
#
# line: PREFIX-gen [g0] <-> [d0] PREFIX-dut [d1] <-> [s0] PREFIX-sink
#       g0 10.0.0.1/24 and s0 10.0.0.2/24 share one subnet: an L2
#       cross-connect in the DUT joins them, so they ARP and talk through it.
# loop: PREFIX-gen [g0] <-> [d0] PREFIX-dut (one-legged: the DUT sends back).
# sfc:  a service path across four nfv instances (configs/sfc/):
#       PREFIX-gen [g0 10.0.0.1/24, via .254] <-> [d0] PREFIX-cls [d1] --+
#       PREFIX-fw1 [d1] --+  PREFIX-fw2 [d1] --+                         |
#       PREFIX-nat [d1] --+-- one bridge in PREFIX-fabric ---------------+
#       PREFIX-nat [d0] <-> [s0 198.51.100.2/24] PREFIX-sink
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
    # Every namespace of the bed, the hosts add_host and add_backend hung
    # on it included.
    for ns in $(ip netns list | awk '{ print $1 }' | grep "^$p-"); do
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

host_link() {
    # ns, interface of a host facing the DUT: quiet, and GRO on, which
    # gives the veth the NAPI context XDP_TX and redirects from the DUT's
    # XDP program need to deliver (without it or an XDP program on this
    # side they are dropped as xdp_tx_errors, see ../shared/TESTBED.md).
    quiet_link "$1" "$2"
    in_ns "$1" ethtool -K "$2" gro on >/dev/null
}

up() {
    local p=$1 topo=$2 q=${3:-1}
    [[ $topo == line || $topo == loop || $topo == sfc ]] || die "topology must be line, loop or sfc, not '$topo'"
    [[ $q =~ ^[12]$ ]] || die "veth offers 1 or 2 queues, not '$q'"
    down "$p"
    trap 'down "$p"; die "setup failed; cleaned up"' ERR
    if [[ $topo == sfc ]]; then
        sfc "$p"
        trap - ERR
        return
    fi
    ip netns add "$p-gen"
    ip netns add "$p-dut"
    in_ns "$p-gen" ip link set lo up
    in_ns "$p-dut" ip link set lo up
    ip link add g0 netns "$p-gen" numtxqueues "$q" numrxqueues "$q" type veth \
        peer d0 netns "$p-dut" numtxqueues "$q" numrxqueues "$q"
    host_link "$p-gen" g0
    quiet_link "$p-dut" d0
    in_ns "$p-gen" ip addr add 10.0.0.1/24 dev g0
    if [[ $topo == line ]]; then
        ip netns add "$p-sink"
        in_ns "$p-sink" ip link set lo up
        ip link add d1 netns "$p-dut" numtxqueues "$q" numrxqueues "$q" type veth \
            peer s0 netns "$p-sink" numtxqueues "$q" numrxqueues "$q"
        quiet_link "$p-dut" d1
        host_link "$p-sink" s0
        in_ns "$p-sink" ip addr add 10.0.0.2/24 dev s0
    fi
    trap - ERR
}

# The service path bed: nfv instances cls, fw1, fw2, nat, each with its
# d1 on one bridge (PREFIX-fabric), gen behind cls, sink behind nat.
sfc() {
    local p=$1 ns
    for ns in gen cls fw1 fw2 nat sink fabric; do
        ip netns add "$p-$ns"
        in_ns "$p-$ns" ip link set lo up
    done
    in_ns "$p-fabric" ip link add br0 type bridge
    in_ns "$p-fabric" sysctl -qw net.ipv6.conf.br0.disable_ipv6=1
    in_ns "$p-fabric" ip link set br0 up
    # The path's link carries NSH (38 octets over MD type 1) around
    # full-sized frames: an MTU of 1600, as an SFC underlay's would be.
    for ns in cls fw1 fw2 nat; do
        ip link add d1 netns "$p-$ns" mtu 1600 type veth peer "f$ns" netns "$p-fabric" mtu 1600
        quiet_link "$p-$ns" d1
        host_link "$p-fabric" "f$ns"
        in_ns "$p-fabric" ip link set "f$ns" master br0
    done
    ip link add g0 netns "$p-gen" type veth peer d0 netns "$p-cls"
    host_link "$p-gen" g0
    quiet_link "$p-cls" d0
    in_ns "$p-gen" ip addr add 10.0.0.1/24 dev g0
    in_ns "$p-gen" ip route add default via 10.0.0.254
    ip link add s0 netns "$p-sink" type veth peer d0 netns "$p-nat"
    host_link "$p-sink" s0
    quiet_link "$p-nat" d0
    in_ns "$p-sink" ip addr add 198.51.100.2/24 dev s0
}

# A second host on gen's link: gen's g0 goes into a bridge (its address
# with it) and PREFIX-gen2 hangs on that bridge by a veth pair (h0 in
# gen2). ADDR is gen2's address/prefix, GW its default gateway.
add_host() {
    local p=$1 addr=$2 gw=$3
    ip netns add "$p-gen2"
    in_ns "$p-gen2" ip link set lo up
    local a; a=$(in_ns "$p-gen" ip -4 -o addr show dev g0 | awk '{ print $4 }')
    in_ns "$p-gen" ip link add br0 type bridge
    in_ns "$p-gen" ip link set g0 master br0
    in_ns "$p-gen" ip addr flush dev g0
    in_ns "$p-gen" ip addr add "$a" dev br0
    in_ns "$p-gen" sysctl -qw net.ipv6.conf.br0.disable_ipv6=1
    in_ns "$p-gen" ip link set br0 up
    ip link add h0 netns "$p-gen2" type veth peer hb netns "$p-gen"
    quiet_link "$p-gen2" h0
    quiet_link "$p-gen" hb
    in_ns "$p-gen" ip link set hb master br0
    in_ns "$p-gen2" ip addr add "$addr" dev h0
    in_ns "$p-gen2" ip route add default via "$gw"
}

# A host on sink's link (line topology): sink's s0 goes into a bridge
# (br1, its address with it) on the first call, and PREFIX-NAME hangs on
# it by a veth pair (e0 in NAME). ADDR is its address/prefix, GW its
# default gateway.
add_backend() {
    local p=$1 name=$2 addr=$3 gw=$4
    if ! in_ns "$p-sink" ip link show br1 >/dev/null 2>&1; then
        local a; a=$(in_ns "$p-sink" ip -4 -o addr show dev s0 | awk '{ print $4 }')
        in_ns "$p-sink" ip link add br1 type bridge
        in_ns "$p-sink" ip link set s0 master br1
        in_ns "$p-sink" ip addr flush dev s0
        [[ -z $a ]] || in_ns "$p-sink" ip addr add "$a" dev br1
        in_ns "$p-sink" sysctl -qw net.ipv6.conf.br1.disable_ipv6=1
        in_ns "$p-sink" ip link set br1 up
    fi
    ip netns add "$p-$name"
    in_ns "$p-$name" ip link set lo up
    ip link add e0 netns "$p-$name" type veth peer "v$name" netns "$p-sink"
    quiet_link "$p-$name" e0
    quiet_link "$p-sink" "v$name"
    in_ns "$p-sink" ip link set "v$name" master br1
    in_ns "$p-$name" ip addr add "$addr" dev e0
    in_ns "$p-$name" ip route add default via "$gw"
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
    up) [[ $# -ge 2 ]] || die "usage: $0 up PREFIX line|loop|sfc [QUEUES]"; up "$@" ;;
    down) [[ $# -eq 1 ]] || die "usage: $0 down PREFIX"; down "$1" ;;
    info) [[ $# -eq 1 ]] || die "usage: $0 info PREFIX"; info "$1" ;;
    add-host) [[ $# -eq 3 ]] || die "usage: $0 add-host PREFIX ADDR/LEN GW"; add_host "$@" ;;
    add-backend) [[ $# -eq 4 ]] || die "usage: $0 add-backend PREFIX NAME ADDR/LEN GW"; add_backend "$@" ;;
    *) die "usage: $0 up PREFIX line|loop|sfc [QUEUES] | down PREFIX | info PREFIX | add-host PREFIX ADDR/LEN GW | add-backend PREFIX NAME ADDR/LEN GW" ;;
esac
