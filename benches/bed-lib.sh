# Shared by the scripts that compare DUTs on the veth bed (sourced, not
# run): the namespace helper, nfv's AF_XDP generator, starting and
# stopping nfv, one measurement window, and medians over clean trials.
# The sourcing script sets P (the bed's prefix), WORK, NFV, WARMUP, SECS
# and PIDS (processes to kill on exit).

ns() { ip netns exec "$P-$1" "${@:2}"; }

# nfv's generator on core 0 of gen: 64-byte UDP frames of FLOWS flows
# (RFC 4814 addresses and ports) to DST_MAC, sent through an AF_XDP
# socket on g0 for the whole run (it offers more than a copy-mode DUT can
# forward, so every DUT sees the same load). EXTRA: more generator
# parameters (dst = "192.0.2.10:53").
start_generator() { # FLOWS DST_MAC [EXTRA]
    cat > "$WORK/gen.toml" <<TOML
[run]
stats-interval = 0

[[ports]]
name = "gen"
kind = "generator"
frame-size = 64
flows = $1
dst-mac = "$2"
${3:-}

[[ports]]
name = "g0"
kind = "af-xdp"
interface = "g0"

[[chains]]
name = "gen"
stages = []
then = "g0"

[[workers]]
core = 0
rx = ["gen"]
chain = "gen"
TOML
    ip netns exec "$P-gen" "$NFV" run "$WORK/gen.toml" --duration 0 --quiet >"$WORK/gen.out" 2>&1 &
    PIDS+=($!)
    sleep 1
}

# Starts nfv on $WORK/DUT.toml in the DUT namespace; its pid in NFV_PID.
start_nfv() { # DUT
    # Not through `ns`: $! must be nfv itself (ip execs it) for the SIGINT.
    ip netns exec "$P-dut" "$NFV" run "$WORK/$1.toml" --duration 0 --quiet >"$WORK/$1.out" 2>&1 &
    NFV_PID=$!
    PIDS+=($NFV_PID)
}

# Stops nfv (SIGINT: it writes its report to $WORK/DUT.out); an nfv that
# already died fails the run, with its output.
stop_nfv() { # DUT PID
    if kill -INT "$2" 2>/dev/null; then
        wait "$2" || true
    else
        echo "$1 exited early:" >&2
        cat "$WORK/$1.out" >&2
        exit 1
    fi
}

# One window, the DUT running: WARMUP seconds, then SECS seconds counted.
# Prints "Mpps steal% offered-Mpps": what arrived at s0, the CPU steal
# over the window, what the generator sent from g0. With `d0`, what
# arrived at the DUT's d0 instead of s0 (a DUT that forwards nothing).
sample() { # [d0]
    local a g0 s0 t0 b g1 s1 t1
    tx_g0() { ns gen cat /sys/class/net/g0/statistics/tx_packets; }
    if [[ ${1:-} == d0 ]]; then
        rx_s0() { ns dut cat /sys/class/net/d0/statistics/rx_packets; }
    else
        rx_s0() { ns sink cat /sys/class/net/s0/statistics/rx_packets; }
    fi
    steal() { awk '/^cpu /{print $9, $2+$3+$4+$5+$6+$7+$8+$9}' /proc/stat; }
    sleep "$WARMUP"
    a=$(rx_s0); g0=$(tx_g0); read -r s0 t0 < <(steal)
    sleep "$SECS"
    b=$(rx_s0); g1=$(tx_g0); read -r s1 t1 < <(steal)
    awk -v d=$((b - a)) -v o=$((g1 - g0)) -v s="$SECS" -v ds=$((s1 - s0)) -v dt=$((t1 - t0)) \
        'BEGIN { printf "%.3f %.1f %.3f\n", d / s / 1e6, (dt > 0 ? 100 * ds / dt : 0), o / s / 1e6 }'
}

# Median of "value steal;" rows, over the trials whose steal is at most
# 5 % (all of them if none is).
median_of() { # ROWS
    local rows clean
    rows=$(echo "$1" | tr ';' '\n' | awk 'NF')
    clean=$(echo "$rows" | awk '$2 <= 5 { print $1 }')
    [[ -n $clean ]] || clean=$(echo "$rows" | awk '{ print $1 }')
    echo "$clean" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'
}

# The preamble of every comparison: root, the TOOLs it needs, nfv built,
# a fresh line bed $P, and on exit everything it started killed (deleting
# a namespace does not end the processes inside it) and the bed removed.
bed_up() { # TOOL...
    [[ $(id -u) == 0 ]] || { echo "needs root (namespaces, XDP)"; exit 1; }
    local t
    for t in "$@"; do
        command -v "$t" >/dev/null || { echo "missing $t: run cargo xtask setup"; exit 1; }
    done
    (cd "$ROOT" && cargo build --release -q -p nfv-pipelines --bin nfv)
    PIDS=()
    trap bed_cleanup EXIT
    "$ROOT/tests/testbed.sh" up "$P" line 1
}

bed_cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    "$ROOT/tests/testbed.sh" down "$P" || true
    rm -rf "$WORK"
}

# TRIALS rounds of the script's `measure DUT` over the DUTs in turn (so
# each sees the same conditions): a line per run; RES[DUT] keeps "Mpps
# steal" rows, SHARE[DUT] "forwarded/offered steal" rows.
declare -A RES SHARE
run_trials() { # DUT...
    local t dut mpps st offered
    for t in $(seq 1 "$TRIALS"); do
        for dut in "$@"; do
            measure "$dut"
            read -r mpps st offered <"$WORK/result"
            printf 'trial %d %-11s %7.3f Mpps  (offered %.3f)  steal %4.1f%%\n' "$t" "$dut" "$mpps" "$offered" "$st"
            RES[$dut]+="$mpps $st;"
            SHARE[$dut]+="$(awk -v a="$mpps" -v o="$offered" 'BEGIN { printf "%.3f", (o > 0 ? a / o : 0) }') $st;"
        done
    done
}

# A DUT's median rate (or, with `share`, forwarded/offered).
median() { # DUT [share]
    if [[ ${2:-} == share ]]; then median_of "${SHARE[$1]}"; else median_of "${RES[$1]}"; fi
}

# `NAME: N`, the ratio of two DUTs' medians.
ratio_line() { # NAME DUT_A DUT_B
    awk -v n="$1" -v a="$(median "$2")" -v b="$(median "$3")" 'BEGIN { printf "%s: %.2f\n", n, (b > 0 ? a / b : 0) }'
}

# The share of nfv's cycles per packet STAGE takes, from the stage table
# (ticks/pkt column) of an nfv report.
stage_share() { # STAGE REPORT
    awk -v s="$1" '/^stage/ { f = 1; next } f && NF == 0 { f = 0 } f { t += $6; if ($1 == s) n = $6 }
        END { if (t > 0) printf "%s share of nfv cycles per packet: %.1f%% (%.1f of %.1f ticks)\n", s, 100 * n / t, n, t }' "$2"
}
