#!/usr/bin/env bash
# Many devices, one search, on this machine's CPU: "cpu1" = 1 thread, "cpu2" = 2 threads of the
# same CPU, measured with the Multi30k study's protocol on its space; the torch-only runner checked against
# measure-latency; the adaptation learning curves; one search under both devices at once, verified.
# Stages resume (finished files are kept); run them on a quiet machine (nothing else on either core).
#
#   DEV_WORK=/work/runs/devices benchmarks/devices.sh campaign2 torchonly estimators search adapt report
#
# Inputs: latency_data/hat_cpu_multi30k_cpu_xeon_1thread.csv (the study's 1-thread campaign, 300
# architectures, seed 1); a supernet of the space (DEV_SUPERNET, default: the study's SPOS supernet).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
export PATH="$ROOT/.venv/bin:$PATH"
W=${DEV_WORK:-$ROOT/runs/devices}
DATA=${DEV_DATA:-$ROOT/runs/multi30k/bin}
SUPERNET=${DEV_SUPERNET:-$ROOT/runs/multi30k/supernets/spos/checkpoint_last.pt}
ONE=$ROOT/latency_data/hat_cpu_multi30k_cpu_xeon_1thread.csv
SPACE=hat_cpu_multi30k
PROTOCOL=(--repeats 50 --warmup 5 --src-len 16 --tgt-len 16 --beam 4 --vocab-size 8008 --seed 1)
mkdir -p "$W"
log() { echo "[$(date '+%F %T')] $*" | tee -a "$W/devices.log"; }

stage_campaign2() {  # the same architectures (seed 1) and protocol with 2 threads, 100 more for held-out rows
    log "campaign: 400 architectures of $SPACE with 2 threads"
    mos-nas measure-latency --space $SPACE --n-archs 400 --threads 2 "${PROTOCOL[@]}" --no-progress \
        --out "$W/${SPACE}_cpu_xeon_2threads.csv"
    lscpu > "$W/lscpu.txt"
}

stage_torchonly() {  # the torch-only runner against measure-latency: the same 60 architectures, 1 thread, core 0
    log "torch-only runner vs measure-latency, 60 architectures, 1 thread"
    mos-nas measure-latency --space $SPACE --n-archs 60 --threads 1 "${PROTOCOL[@]}" --plan "$W/plan60.json"
    [ -s "$W/host60.csv" ] && [ "$(wc -l < "$W/host60.csv")" -gt 60 ] || taskset -c 0 mos-nas measure-latency \
        --space $SPACE --n-archs 60 --threads 1 "${PROTOCOL[@]}" --no-progress --out "$W/host60.csv"
    taskset -c 0 python "$ROOT/scripts/torch_latency.py" --plan "$W/plan60.json" --out "$W/torchonly60.csv" > /dev/null
}

stage_compare() {  # torch-only vs measure-latency on the same 60 architectures
    python - "$W/host60.csv" "$W/torchonly60.csv" <<'PY' | tee "$W/torchonly_vs_host.txt"
import sys
import numpy as np
from scipy.stats import spearmanr
from mos_fairseq.latency.dataset import read_latency_csv
host, board = read_latency_csv(sys.argv[1]), read_latency_csv(sys.argv[2])
assert host.archs == board.archs
rel = board.total_ms / host.total_ms - 1
print(f"{len(rel)} architectures: Spearman {spearmanr(host.total_ms, board.total_ms).statistic:.4f}, "
      f"median relative difference {100 * np.median(rel):+.2f}% (torch-only vs measure-latency), "
      f"median |difference| {100 * np.median(np.abs(rel)):.2f}%, range {100 * rel.min():+.1f}%..{100 * rel.max():+.1f}%; "
      f"host {host.total_ms.min():.2f}-{host.total_ms.max():.2f} ms")
PY
}

stage_estimators() {
    for f in "$ONE" "$W/${SPACE}_cpu_xeon_2threads.csv"; do
        name=$(basename "$f" .csv)
        [ -f "$W/$name.safetensors" ] || mos-nas train-estimator --data "$f" --out "$W/$name.safetensors" \
            --report "$W/$name.report.json" > "$W/$name.estimator.log"
    done
}

stage_search() {  # one search, both devices: a bound per device and a joined one; picks measured on both
    [ -f "$W/search/summary.json" ] && return 0
    log "search under cpu1 and cpu2 at once"
    mos-nas search --checkpoint "$SUPERNET" --data "$DATA" \
        --estimator cpu1="$W/${SPACE}_cpu_xeon_1thread.safetensors" cpu2="$W/${SPACE}_cpu_xeon_2threads.safetensors" \
        --latency-constraint cpu1:${DEV_C1:-30} cpu2:${DEV_C2:-20} cpu1:${DEV_J1:-25},cpu2:${DEV_J2:-17} \
        --iterations 4 --population 30 --parents 8 --mutation 10 --crossover 10 --valid-max-sentences 200 \
        --verify-latency --no-progress --out "$W/search" | tee "$W/search.log"
}

stage_adapt() {
    python "$ROOT/benchmarks/estimator_adaptation.py" \
        --pair "this CPU: 1 thread -> 2 threads" "$ONE" "$W/${SPACE}_cpu_xeon_2threads.csv" \
        --pair "our EPYC CPU (HAT WMT space) -> HAT's Titan Xp (IWSLT space)" \
               "$ROOT/latency_data/hat_wmt14_en_de_cpu_epyc_1thread.csv" \
               "${DEV_TITANXP:-$ROOT/../shared/data/latency/hat/iwslt14deen_gpu_titanxp_all.csv}" \
        --out "$W/estimator_adaptation.md" > "$W/adapt.log" 2>&1
}

for s in "$@"; do "stage_$s"; done
