#!/usr/bin/env bash
# Measure a latency dataset on this machine and train its estimator: one command per device.
#
#   bash scripts/latency_dataset.sh cuda v100            # a GPU (HAT's protocol: 2000 archs x 300 runs)
#   bash scripts/latency_dataset.sh cpu epyc 300 10 1    # this CPU: 300 archs x 10 runs, 1 thread
#
# Arguments: DEVICE (cpu|cuda) NAME [N_ARCHS=2000] [REPEATS=300] [THREADS] ; env SPACE (default
# hat_wmt14_en_de), OUT_DIR (default latency_data), WARMUP (default 10), SEED (default 1).
# Interrupt it at any time: re-running the same command continues the measurement where it stopped.
set -euo pipefail
DEVICE=${1:?usage: latency_dataset.sh cpu|cuda NAME [N_ARCHS] [REPEATS] [THREADS]}
NAME=${2:?usage: latency_dataset.sh cpu|cuda NAME [N_ARCHS] [REPEATS] [THREADS]}
N_ARCHS=${3:-2000}
REPEATS=${4:-300}
THREADS=${5:-}
SPACE=${SPACE:-hat_wmt14_en_de}
OUT_DIR=${OUT_DIR:-latency_data}
WARMUP=${WARMUP:-10}
SEED=${SEED:-1}
BASE="$OUT_DIR/${SPACE}_${NAME}"
mos-nas measure-latency --space "$SPACE" --device "$DEVICE" ${THREADS:+--threads "$THREADS"} \
  --n-archs "$N_ARCHS" --repeats "$REPEATS" --warmup "$WARMUP" --src-len 30 --tgt-len 30 --beam 4 \
  --seed "$SEED" --out "$BASE.csv"
mos-nas train-estimator --data "$BASE.csv" --out "$BASE.safetensors" --report "$BASE.report.json" \
  --plot "$BASE.png"
