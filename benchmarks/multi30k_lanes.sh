#!/usr/bin/env bash
# The Multi30k study (benchmarks/multi30k.sh) in two lanes, one thread each, pinned to cores 0 and 1,
# in the order that keeps both busy: one line restarts the whole study on a new machine, and every
# stage resumes where it stopped (finished pieces are skipped, training continues from
# checkpoint_last.pt). Logs: $M30K_WORK/logs/lane{A,B}.log; the lanes' PIDs: $M30K_WORK/logs/lane*.pid
# (pause them with `kill -STOP -PGID` while timing anything, resume with `kill -CONT -PGID`).
#
#   M30K_WORK=/work/runs/multi30k benchmarks/multi30k_lanes.sh        # start (or resume) both lanes
#   M30K_WORK=/work/runs/multi30k benchmarks/multi30k_lanes.sh committed NAME...
#       # on a machine without the study's runs: the committed architectures
#       # benchmarks/results/multi30k/archs/NAME.yml trained alone from scratch with the recipe, both
#       # lanes walking the list (BLEU does not depend on the machine; their latency does)
#
# Lane A: data, the neuron-MoS supernet, the latency of the baselines trained so far, its search and
# picks, the largest subnet alone.
# Lane B: the latency of the space (first, while nothing else runs on its core), the recipe sweep's
# 3+3 model, the SPOS supernet, the other baselines, its search and picks.
# Then each lane walks the same list: every pick retrained (neuron-MoS's first: the study's must-show),
# then fine-tuned; a lane takes the next model the other is not training (a kernel lock per model
# directory, benchmarks/lib.sh's claim), so neither waits while work is left.
# Then (either lane, after both): every trained model and export timed together, Table 4, the report.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
export M30K_WORK=${M30K_WORK:-$ROOT/runs/multi30k}
export OMP_NUM_THREADS=1
export PATH="$ROOT/.venv/bin:$PATH"  # mos-nas, fairseq-train and python of this checkout's .venv (make setup)
[ -x "$ROOT/.venv/bin/mos-nas" ] || { echo "no $ROOT/.venv: run 'make setup' first" >&2; exit 2; }
mkdir -p "$M30K_WORK/logs"
D=$ROOT/benchmarks/multi30k.sh

lane_a() {
    "$D" data
    M30K_ONLY=neuron "$D" supernets
    "$D" baseline_latency
    M30K_SUPERNETS=neuron "$D" search picks
    M30K_ONLY=largest "$D" standalone
    picks_work
}

lane_b() {
    while [ ! -f "$M30K_WORK/bin/dict.en.txt" ]; do sleep 10; done
    "$D" latency
    M30K_ONLY=base_3x3 "$D" sweep
    M30K_ONLY=spos "$D" supernets
    M30K_ONLY="base_3x1 base_3x2 base_4x4" "$D" standalone
    "$D" baseline_latency
    M30K_SUPERNETS=spos "$D" search picks
    picks_work
}

picks_work() {  # both lanes: every pick retrained, then fine-tuned (each model by one lane)
    M30K_SUPERNETS="neuron spos" "$D" retrain finetune
}

finish() {  # after both lanes: every model compared timed together (interleaved), Table 4, the report
    "$D" baseline_latency pick_latency compare_latency table4 report
}

case ${1:-start} in
    start)
        setsid nohup taskset -c 0 bash -c "set -euo pipefail; $(declare -f lane_a picks_work); D=$D; lane_a" >> "$M30K_WORK/logs/laneA.log" 2>&1 &
        echo $! > "$M30K_WORK/logs/laneA.pid"
        setsid nohup taskset -c 1 bash -c "set -euo pipefail; $(declare -f lane_b picks_work); D=$D; lane_b" >> "$M30K_WORK/logs/laneB.log" 2>&1 &
        echo $! > "$M30K_WORK/logs/laneB.pid"
        echo "lanes started: A pid $(cat "$M30K_WORK/logs/laneA.pid"), B pid $(cat "$M30K_WORK/logs/laneB.pid")"
        ;;
    committed)
        shift
        [ $# -gt 0 ] || { echo "committed: name at least one architecture of benchmarks/results/multi30k/archs" >&2; exit 2; }
        for name in "$@"; do  # every name checked before anything is written
            [ -f "$ROOT/benchmarks/results/multi30k/archs/$name.yml" ] ||
                { echo "committed: no architecture benchmarks/results/multi30k/archs/$name.yml" >&2; exit 2; }
        done
        archs=$M30K_WORK/committed_archs
        mkdir -p "$archs"
        for name in "$@"; do cp "$ROOT/benchmarks/results/multi30k/archs/$name.yml" "$archs/"; done
        cp "$ROOT/benchmarks/results/multi30k/archs/largest.yml" "$archs/"  # so stage standalone samples nothing
        taskset -c 0 "$D" data
        for lane in A:0 B:1; do
            M30K_BASELINES=$archs M30K_ONLY="$*" setsid nohup taskset -c "${lane#*:}" "$D" standalone \
                >> "$M30K_WORK/logs/lane${lane%:*}.log" 2>&1 &
            echo $! > "$M30K_WORK/logs/lane${lane%:*}.pid"
        done
        echo "lanes started: A pid $(cat "$M30K_WORK/logs/laneA.pid"), B pid $(cat "$M30K_WORK/logs/laneB.pid")"
        ;;
    finish) taskset -c 0 bash -c "set -euo pipefail; $(declare -f finish); D=$D; finish" ;;
    *) echo "usage: $0 [start|committed NAME...|finish]" >&2; exit 2 ;;
esac
