#!/usr/bin/env bash
# Writes deploy/k8s/overlays/NAME, one kustomize overlay per configuration
# in configs/ (NAME: its file name; sfc-NAME for configs/sfc/), from the
# configuration itself: the chain's files in the ConfigMap, a
# NetworkAttachmentDefinition (SR-IOV CNI) per AF_XDP port named after the
# interface the port names (Multus attaches the VF under that name, so the
# configuration runs unchanged), the pod's networks annotation and VF
# requests, one integer CPU per worker plus one for the management plane,
# 64 MiB of 2 MiB huge pages per worker for its frames (nfv maps them from
# the pod's huge pages when they suffice, else transparent huge pages).
#
#   deploy/k8s/overlays.sh           write them
#   deploy/k8s/overlays.sh --check   fail if what is written differs
#
# RESOURCE names the SR-IOV device plugin's resource the VFs come from
# (default intel.com/sriov_netdevice, as the SR-IOV network operator's
# SriovNetworkNodePolicy resourceName makes it).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
RESOURCE=${RESOURCE:-intel.com/sriov_netdevice}
OUT=$HERE/overlays
if [[ ${1:-} == --check ]]; then
    OUT=$(mktemp -d)
    trap 'rm -rf "$OUT"' EXIT
fi

overlay() { # CONFIG NAME
    local cfg=$1 name=$2 dir=$OUT/$2 ifaces workers cpus nets="" n
    mkdir -p "$dir"
    cp "$cfg" "$dir/nfv.toml"
    local files=("nfv.toml")
    for f in $(sed -n 's/.*paths-file = "\([^"]*\)".*/\1/p' "$cfg"); do
        cp "$(dirname "$cfg")/$f" "$dir/$f"
        files+=("$f")
    done
    mapfile -t ifaces < <(awk '/^kind = "af-xdp"/ { x = 1; next } /^\[\[/ { x = 0 } x && /^interface = "/ { gsub(/"/, "", $3); print $3 }' "$cfg")
    workers=$(grep -c '^\[\[workers\]\]' "$cfg")
    cpus=$((workers + 1))
    {
        echo "# Written by deploy/k8s/overlays.sh from ${cfg#"$ROOT"/}: edit that, then run the script."
        echo "apiVersion: kustomize.config.k8s.io/v1beta1"
        echo "kind: Kustomization"
        echo "namePrefix: $name-"
        echo "resources:"
        echo "  - ../../base"
        [[ ${#ifaces[@]} -eq 0 ]] || echo "  - networks.yaml"
        echo "labels:"
        echo "  - pairs:"
        echo "      app.kubernetes.io/instance: $name"
        echo "    includeSelectors: true"
        echo "configMapGenerator:"
        echo "  - name: nfv-chain"
        echo "    options:"
        echo "      # A stable name: an update reaches the running pod (..data swap)."
        echo "      disableNameSuffixHash: true"
        echo "    files:"
        for f in "${files[@]}"; do echo "      - $f"; done
        echo "patches:"
        echo "  - path: pod.yaml"
        echo "  - path: monitor.yaml"
    } >"$dir/kustomization.yaml"
    : >"$dir/networks.yaml"
    for n in "${ifaces[@]}"; do
        nets+="${nets:+,}{\"name\":\"$name-sriov-$n\",\"interface\":\"$n\"}"
        cat >>"$dir/networks.yaml" <<YAML
---
# The VF that becomes interface $n in the pod (SR-IOV CNI; no IPAM: nfv
# owns the port's addresses itself).
apiVersion: k8s.cni.cncf.io/v1
kind: NetworkAttachmentDefinition
metadata:
  name: sriov-$n
  annotations:
    k8s.v1.cni.cncf.io/resourceName: $RESOURCE
spec:
  config: '{"cniVersion":"0.4.0","name":"$name-sriov-$n","type":"sriov","spoofchk":"off","trust":"on","ipam":{}}'
YAML
    done
    [[ ${#ifaces[@]} -gt 0 ]] || rm "$dir/networks.yaml"
    {
        echo "apiVersion: apps/v1"
        echo "kind: Deployment"
        echo "metadata:"
        echo "  name: nfv"
        echo "spec:"
        echo "  template:"
        echo "    metadata:"
        echo "      annotations:"
        echo "        k8s.v1.cni.cncf.io/networks: '[$nets]'"
        echo "    spec:"
        echo "      containers:"
        echo "        - name: nfv"
        echo "          resources:"
        for r in requests limits; do
            echo "            $r:"
            echo "              cpu: \"$cpus\""
            [[ ${#ifaces[@]} -eq 0 ]] || echo "              hugepages-2Mi: $((64 * workers))Mi"
            [[ ${#ifaces[@]} -eq 0 ]] || echo "              $RESOURCE: \"${#ifaces[@]}\""
        done
    } >"$dir/pod.yaml"
    cat >"$dir/monitor.yaml" <<YAML
apiVersion: monitoring.coreos.com/v1
kind: ServiceMonitor
metadata:
  name: nfv
spec:
  selector:
    matchLabels:
      app.kubernetes.io/name: nfv
      app.kubernetes.io/instance: $name
YAML
}

for cfg in "$ROOT"/configs/*.toml; do
    overlay "$cfg" "$(basename "$cfg" .toml)"
done
for cfg in "$ROOT"/configs/sfc/*.toml; do
    [[ $cfg == *-paths.toml ]] || overlay "$cfg" "sfc-$(basename "$cfg" .toml)"
done
if [[ ${1:-} == --check ]]; then
    diff -r "$HERE/overlays" "$OUT" || { echo "deploy/k8s/overlays differ from configs/: run deploy/k8s/overlays.sh" >&2; exit 1; }
fi
