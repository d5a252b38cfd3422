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
#   M30K_WORK=/work/runs/multi30k benchmarks/multi30k_lanes.sh again [CORE...]
#       # on a machine without the study's supernets and searches: one lane per CORE (default 0 1; a
#       # lane can join later on a core that frees up) trains the next supernet no other lane holds,
#       # exports the committed picks (benchmarks/results/multi30k/archs/inherited_*.yml) from every
#       # supernet trained and scores them, retrains the picks never trained alone, fine-tunes every
#       # pick, then retrains the picks whose BLEU another machine left without their validation loss
#       # (`again-plan` prints both lists); `again-finish` then builds Table 4 from these supernets, the models trained alone here
#       # and the committed figures of those trained on other machines (results/multi30k/standalone_*.json)
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
# the committed results: archs/NAME.yml of every reported model, standalone_intel.json (modes committed, again)
export M30K_COMMITTED=${M30K_COMMITTED:-$ROOT/benchmarks/results/multi30k}
export PATH="$ROOT/.venv/bin:$PATH"  # mos-nas, fairseq-train and python of this checkout's .venv (make setup)
[ -x "$ROOT/.venv/bin/mos-nas" ] || { echo "no $ROOT/.venv: run 'make setup' first" >&2; exit 2; }
mkdir -p "$M30K_WORK/logs"
lscpu > "$M30K_WORK/logs/lscpu.txt"  # the machine the lanes run on (reports name it)
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

again_lane() {  # mode again: each step takes only what no other lane holds; repeated steps catch up
    "$D" supernets
    "$D" picks
    # (an empty M30K_ONLY means every pick: each list is run only when it names one)
    [ -z "$AGAIN_NEVER" ] || M30K_ONLY=$AGAIN_NEVER "$D" retrain  # the picks never trained alone anywhere
    "$D" picks finetune
    [ -z "$AGAIN_LOSS" ] || M30K_ONLY=$AGAIN_LOSS "$D" retrain  # trained alone elsewhere: the loss figure only
}

again_env() {  # mode again: the committed picks and the standalone figures the other machines left
    # standalone_intel.json: the first machine's (BLEU and loss); standalone_bleu_only.json: models a later machine
    # trained alone and left only their hypotheses (BLEU, no loss)
    local figures="$M30K_COMMITTED/standalone_intel.json" plan
    [ ! -f "$M30K_COMMITTED/standalone_bleu_only.json" ] || figures="$figures $M30K_COMMITTED/standalone_bleu_only.json"
    export M30K_PICKS=$M30K_WORK/committed_picks M30K_STANDALONE_FIGURES=$figures
    mkdir -p "$M30K_PICKS"
    cp "$M30K_COMMITTED"/archs/inherited_*.yml "$M30K_PICKS/"
    # retrained here, every committed pick without a loss figure: first those never trained alone anywhere (no
    # figure and no committed hypotheses hyp/NAME.test.txt), then those with BLEU but no loss (Table 4's loss side)
    # shellcheck disable=SC2086
    plan=$(python - "$M30K_PICKS" "$M30K_COMMITTED/hyp" $figures <<'PY'
import json, sys
from pathlib import Path
figures = {}
for path in sys.argv[3:]:
    figures.update(json.loads(Path(path).read_text())["archs"])
names = [p.stem.removeprefix("inherited_") for p in sorted(Path(sys.argv[1]).glob("inherited_*.yml"))]
missing = [n for n in names if figures.get(n, {}).get("valid_loss") is None]
known = [n for n in missing if n in figures or (Path(sys.argv[2]) / f"{n}.test.txt").is_file()]
print(" ".join(n for n in missing if n not in known))
print(" ".join(known))
PY
)
    AGAIN_NEVER=$(sed -n 1p <<< "$plan")
    AGAIN_LOSS=$(sed -n 2p <<< "$plan")
    export AGAIN_NEVER AGAIN_LOSS
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
            [ -f "$M30K_COMMITTED/archs/$name.yml" ] ||
                { echo "committed: no architecture $M30K_COMMITTED/archs/$name.yml" >&2; exit 2; }
        done
        archs=$M30K_WORK/committed_archs
        mkdir -p "$archs"
        for name in "$@"; do cp "$M30K_COMMITTED/archs/$name.yml" "$archs/"; done
        cp "$M30K_COMMITTED/archs/largest.yml" "$archs/"  # so stage standalone samples nothing
        taskset -c 0 "$D" data
        for lane in A:0 B:1; do
            M30K_BASELINES=$archs M30K_ONLY="$*" setsid nohup taskset -c "${lane#*:}" "$D" standalone \
                >> "$M30K_WORK/logs/lane${lane%:*}.log" 2>&1 &
            echo $! > "$M30K_WORK/logs/lane${lane%:*}.pid"
        done
        echo "lanes started: A pid $(cat "$M30K_WORK/logs/laneA.pid"), B pid $(cat "$M30K_WORK/logs/laneB.pid")"
        ;;
    again)
        shift
        cores=("$@")
        [ ${#cores[@]} -gt 0 ] || cores=(0 1)
        for core in "${cores[@]}"; do
            [[ $core =~ ^[0-9]+$ ]] && [ "$core" -lt "$(getconf _NPROCESSORS_ONLN)" ] ||
                { echo "again: '$core' is not a core of this machine (0-$(($(getconf _NPROCESSORS_ONLN) - 1)))" >&2; exit 2; }
        done
        again_env
        [ -f "$M30K_WORK/bin/dict.en.txt" ] || taskset -c "${cores[0]}" "$D" data
        for core in "${cores[@]}"; do
            setsid nohup taskset -c "$core" bash -c "set -euo pipefail; $(declare -f again_lane); D=$D; again_lane" \
                >> "$M30K_WORK/logs/again_core$core.log" 2>&1 &
            echo $! > "$M30K_WORK/logs/again_core$core.pid"
            echo "lane on core $core started: pid $!, log $M30K_WORK/logs/again_core$core.log"
        done
        ;;
    again-plan)  # what the lanes of mode again will retrain, in their order (nothing is started)
        again_env
        echo "retrained first (never trained alone): ${AGAIN_NEVER:-none}"
        echo "retrained after every fine-tuning (loss figure only): ${AGAIN_LOSS:-none}"
        ;;
    again-finish)
        again_env
        taskset -c 0 "$D" table4
        echo "Table 4: $M30K_WORK/table4/gap/gap.md; into the report (its first machine's lines stay as committed):"
        echo "  python $ROOT/benchmarks/multi30k_resumed_report.py --work $M30K_WORK --report $ROOT/benchmarks/results/multi30k.md"
        ;;
    finish) taskset -c 0 bash -c "set -euo pipefail; $(declare -f finish); D=$D; finish" ;;
    *) echo "usage: $0 [start|committed NAME...|again [CORE...]|again-plan|again-finish|finish]" >&2; exit 2 ;;
esac
