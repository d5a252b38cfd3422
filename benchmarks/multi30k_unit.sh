#!/usr/bin/env bash
# One unit of the Multi30k study (benchmarks/multi30k.sh on the space multi30k_wide), started from a fresh
# clone of the repository on a machine with 2 cores, ending with small files to commit under
# benchmarks/results/multi30k/ (runs/, hyp/, supernets/, picks/, search/). Each unit fits about
# 2 h 15 min; every stage resumes, so running a unit again after a crash continues it.
#
# Usage: benchmarks/multi30k_unit.sh S | SPOS | R NAME [NAME] | SWEEP NAME [NAME ...] | L
#   S     the neuron-MoS sandwich supernet (2 gloo ranks, one per core; bf16 where the CPU has avx512_bf16 or
#         amx_bf16; M30K_SUPERNET_EPOCHS, default 9 = 1,224 updates), this machine's latency dataset of the
#         space and its estimator, one search at 3 latency constraints (the estimator's latencies of base_3x1,
#         base_3x2, base_3x3) beside Table 4's architectures scored inherited (core 1), the picks exported and
#         scored inherited (blind sets translated), every run recorded.
#   SPOS  the same with an SPOS supernet trained for the wall-clock of the committed neuron supernet
#         (RESULTS/supernets/neuron*.json: its training hours, fairseq-train --stop-time-hours).
#   R NAME [NAME]  models trained alone from scratch with the recipe, one per core, then recorded: a baseline
#         of benchmarks/multi30k_archs, largest, a sample of benchmarks/multi30k_samples, or a committed pick
#         of RESULTS/picks (e.g. neuron_best_latency_30.1ms).
#   SWEEP NAME [NAME ...]  recipe variants of benchmarks/multi30k.sh's sweep_table (e.g. sweep_base_3x3_postnorm),
#         two lanes taking them in turn (one per core; up to about three 3-layer models or two deep ones in a
#         unit), then recorded beside their baselines.
#   L     every model of this study's committed runs timed together on this machine (benchmarks/multi30k_latency.py:
#         fresh weights, M30K_LAT_ROUNDS interleaved rounds, default 10, on core 0 while core 1 stays idle), each
#         run's latency and each pick's constraint restated here written into its run file, then the report.
# Settings (environment): M30K_WORK (runs/multi30k), M30K_DATA (../shared/data/multi30k-ende), M30K_BF16 (1
# where the CPU has bf16, else 0), M30K_SUPERNET_EPOCHS (9), M30K_SEARCH_ITERATIONS (15), and every other
# setting of benchmarks/multi30k.sh.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DRIVER=$ROOT/benchmarks/multi30k.sh
RESULTS=${M30K_RESULTS:-$ROOT/benchmarks/results/multi30k}
usage() { sed -n '2,/^set -euo pipefail/{/^set/!p}' "$0"; exit 2; }
[ $# -gt 0 ] || usage
unit=$1
shift
case $unit in
    S | SPOS | L) [ $# -eq 0 ] || { echo "unit $unit takes no names (got: $*)" >&2; exit 2; } ;;
    R) [ $# -ge 1 ] && [ $# -le 2 ] || { echo "unit R takes one or two model names (one per core)" >&2; exit 2; } ;;
    SWEEP)
        [ $# -ge 1 ] || { echo "unit SWEEP takes the names of recipe variants (sweep_table)" >&2; exit 2; }
        for name in "$@"; do
            sed -n '/^sweep_table()/,/^}/p' "$DRIVER" | grep -q "^$name " ||
                { echo "unit SWEEP: '$name' is no recipe variant of $DRIVER's sweep_table" >&2; exit 2; }
        done
        ;;
    *) echo "unknown unit '$unit' (S, SPOS, R NAME [NAME], SWEEP NAME [NAME ...], L)" >&2; exit 2 ;;
esac
if [ "$unit" = R ]; then
    for name in "$@"; do
        [ "$name" = largest ] || [ -f "$ROOT/benchmarks/multi30k_archs/$name.yml" ] || [ -f "$RESULTS/picks/$name.yml" ] ||
            [ -f "${M30K_SAMPLES:-$ROOT/benchmarks/multi30k_samples}/$name.yml" ] || {
            echo "unit R: '$name' is no baseline, sample, committed pick or 'largest'" >&2; exit 2; }
    done
fi
bf16=0
lscpu | grep -qwE "avx512_bf16|amx_bf16" && bf16=1
export M30K_SPACE=${M30K_SPACE:-multi30k_wide} M30K_BF16=${M30K_BF16:-$bf16} OMP_NUM_THREADS=1
export M30K_SUPERNET_EPOCHS=${M30K_SUPERNET_EPOCHS:-9} M30K_SEARCH_ITERATIONS=${M30K_SEARCH_ITERATIONS:-15}
WORK=${M30K_WORK:-$ROOT/runs/multi30k}
export M30K_WORK=$WORK
log() { echo "[$(date '+%F %T')] unit $unit: $*"; }

on_both_cores() {  # "STAGES FOR CORE 0" "STAGES FOR CORE 1" [ENV=VALUE ...]: two lanes at once, both must succeed
    local a=$1 b=$2 pa status=0
    shift 2
    # shellcheck disable=SC2086
    env "$@" taskset -c 0 "$DRIVER" $a & pa=$!
    # shellcheck disable=SC2086
    env "$@" taskset -c 1 "$DRIVER" $b || status=$?
    wait "$pa" || status=$?
    return $status
}

supernet_hours() {  # the training hours of the committed neuron supernet of the space (the SPOS unit's budget)
    python - "$RESULTS/supernets" "$M30K_SPACE" <<'PY'
import json, sys
from pathlib import Path
runs = [json.loads(p.read_text()) for p in sorted(Path(sys.argv[1]).glob("neuron*.json"))]
runs = [r for r in runs if r["recipe"]["options"].get("search-space") == sys.argv[2] and r.get("train_wall_s")]
if not runs:
    sys.exit(f"no committed neuron supernet of {sys.argv[2]} in {sys.argv[1]} (run unit S first)")
print(f"{max(runs, key=lambda r: r['trained_at'])['train_wall_s'] / 3600:.4f}")
PY
}

supernet_unit() {  # SUPERNET [ENV=VALUE ...]
    local sup=$1
    shift
    log "data, then this machine's latency dataset (core 1)"
    env "$@" M30K_SUPERNETS="$sup" taskset -c 0 "$DRIVER" data
    env "$@" M30K_SUPERNETS="$sup" taskset -c 1 "$DRIVER" latency
    log "supernet $sup on both cores (bf16: $M30K_BF16)"
    env "$@" M30K_SUPERNETS="$sup" M30K_SUPERNET_CORES="0 1" "$DRIVER" supernets record_supernets
    log "search (core 0) beside Table 4's architectures scored inherited (core 1)"
    on_both_cores search inherited "$@" M30K_SUPERNETS="$sup"
    log "picks exported and scored inherited, two lanes"
    on_both_cores picks picks "$@" M30K_SUPERNETS="$sup"
    env "$@" M30K_SUPERNETS="$sup" taskset -c 0 "$DRIVER" record keep report
}

case $unit in
    S) supernet_unit neuron ;;
    SPOS)
        hours=$(supernet_hours)
        log "SPOS for $hours h of training, the neuron supernet's"
        supernet_unit spos M30K_SUPERNET_HOURS="$hours" M30K_SUPERNET_EPOCHS=1000
        ;;
    R)
        taskset -c 0 "$DRIVER" data
        pids=() status=0 core=0
        for name in "$@"; do
            if [ -f "$RESULTS/picks/$name.yml" ]; then  # a committed pick: retrained from scratch
                (M30K_ONLY=$name M30K_PICKS=$RESULTS/picks M30K_SUPERNETS=${name%%_*} taskset -c $core "$DRIVER" retrain) &
            else
                (M30K_ONLY=$name taskset -c $core "$DRIVER" standalone) &
            fi
            pids+=($!)
            core=$((core + 1))
        done
        for pid in "${pids[@]}"; do wait "$pid" || status=$?; done
        [ $status -eq 0 ] || exit $status
        M30K_ONLY="$*" taskset -c 0 "$DRIVER" record report
        ;;
    L)
        taskset -c 0 "$DRIVER" data
        taskset -c 0 python "$ROOT/benchmarks/multi30k_latency.py" --results "$RESULTS" --work "$WORK" \
            --rounds "${M30K_LAT_ROUNDS:-10}"
        taskset -c 0 "$DRIVER" report
        ;;
    SWEEP)
        taskset -c 0 "$DRIVER" data
        on_both_cores sweep sweep M30K_ONLY="$*"
        M30K_ONLY="$*" taskset -c 0 "$DRIVER" record report
        ;;
esac
log "done: commit benchmarks/results/multi30k/ (git add benchmarks/results/multi30k benchmarks/results/multi30k.md)"
