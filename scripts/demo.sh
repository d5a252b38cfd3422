#!/usr/bin/env bash
# The built-in end-to-end example on CPU: synthetic corpus -> sentencepiece + binaries ->
# sandwich-trained neuron-wise MoS SuperTransformer of the demo space -> translation with the largest and
# smallest subnets -> the smallest exported as a plain fairseq checkpoint and translated again ->
# latency of the demo space measured on this CPU, the estimator trained -> one evolutionary search
# under two latency constraints (Pareto set, plot, picks) -> the picks exported and scored (BLEU).
# Usage: scripts/demo.sh [OUT_DIR]   (make demo runs it with .venv on PATH)
set -euo pipefail
OUT=${1:-demo_out}
UPDATES=${DEMO_UPDATES:-600}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
start=$(date +%s)
mkdir -p "$OUT"

echo "== 1. synthetic corpus and fairseq binaries"
[ -f "$OUT/raw/train.en" ] || mos-nas make-synthetic --out "$OUT/raw"
[ -f "$OUT/bin/dict.en.txt" ] || mos-nas prepare-data --src en --tgt de --train "$OUT/raw/train" \
    --valid "$OUT/raw/valid" --test "$OUT/raw/test" --vocab-size 256 --out "$OUT/bin"

echo "== 2. sample architectures of the demo space"
mos-nas sample --space demo --n 3 --seed 1 --largest --smallest --out "$OUT/archs"
mos-nas info --arch "$OUT/archs/smallest.yml" --data "$OUT/bin"

echo "== 3. train the supernet (sandwich, $UPDATES updates; resumes from checkpoint_last.pt)"
fairseq-train "$OUT/bin" --user-dir "$ROOT/user_dir" --task supernet_translation \
    --arch supertransformer --search-space demo --mos neuron --dropout 0.1 --attention-dropout 0.0 --criterion supernet_cross_entropy --label-smoothing 0.1 \
    --supernet-sampling sandwich --sandwich-random 1 \
    --optimizer adam --adam-betas '(0.9,0.98)' --lr 3e-3 --lr-scheduler inverse_sqrt --warmup-updates 100 \
    --max-tokens 4096 --max-update "$UPDATES" --save-dir "$OUT/supernet" --no-epoch-checkpoints \
    --validate-interval-updates 300 --save-interval-updates 300 --log-format simple --log-interval 100 \
    --seed 1 --cpu --num-workers 0 --valid-archs "$OUT/archs" 2>&1 | grep -E "train_inner|valid on|done training"

echo "== 4. translate the test set with two subnets of the supernet"
for arch in largest smallest; do
    fairseq-generate "$OUT/bin" --user-dir "$ROOT/user_dir" --task supernet_translation \
        --path "$OUT/supernet/checkpoint_best.pt" --subnet "$OUT/archs/$arch.yml" --gen-subset test \
        --beam 4 --lenpen 0.6 --batch-size 128 --remove-bpe sentencepiece --cpu > "$OUT/gen_$arch.txt" 2>/dev/null
    echo "$arch: $(mos-nas info --arch "$OUT/archs/$arch.yml" --data "$OUT/bin" --json | python -c 'import json,sys; print(json.load(sys.stdin)["params"])') params | $(grep '^Generate' "$OUT/gen_$arch.txt")"
done
grep -m2 -E "^(S|H)-1\b" "$OUT/gen_largest.txt" || true
mos-nas info --checkpoint "$OUT/supernet/checkpoint_best.pt"

echo "== 5. export the smallest subnet (MoS collapsed) and translate with the exported checkpoint"
mos-nas export --checkpoint "$OUT/supernet/checkpoint_best.pt" --arch "$OUT/archs/smallest.yml" \
    --out "$OUT/export_smallest" --overwrite
fairseq-generate "$OUT/bin" --user-dir "$ROOT/user_dir" --path "$OUT/export_smallest/checkpoint.pt" \
    --gen-subset test --beam 4 --lenpen 0.6 --batch-size 128 --remove-bpe sentencepiece --cpu \
    > "$OUT/gen_export_smallest.txt" 2>/dev/null
echo "exported smallest: $(grep '^Generate' "$OUT/gen_export_smallest.txt")"
if diff <(grep '^H-' "$OUT/gen_smallest.txt" | cut -f1,3 | sort) <(grep '^H-' "$OUT/gen_export_smallest.txt" | cut -f1,3 | sort) >/dev/null; then
    echo "exported model's hypotheses are identical to the supernet subnet's"
else
    echo "exported model's hypotheses differ from the supernet subnet's" >&2
    exit 1
fi
echo "== 6. latency of the demo space on this CPU (1 thread) and the MLP estimator"
mos-nas measure-latency --space demo --data "$OUT/bin" --n-archs "${DEMO_LATENCY_ARCHS:-120}" --repeats 10 \
    --warmup 2 --threads 1 --seed 1 --out "$OUT/latency/demo_cpu.csv" --no-progress
mos-nas train-estimator --data "$OUT/latency/demo_cpu.csv" --out "$OUT/latency/demo_cpu.safetensors" \
    --report "$OUT/latency/demo_cpu.report.json"

echo "== 7. evolutionary search: two latency constraints in one run, picks measured on this CPU"
read -r L1 L2 < <(python - "$OUT/latency/demo_cpu.csv" <<'PY'
import sys
from mos_fairseq.latency.dataset import read_latency_csv
ms = sorted(read_latency_csv(sys.argv[1]).total_ms)
print(*(f"{ms[int(len(ms) * q)]:.2f}" for q in (0.25, 0.6)))
PY
)
rm -rf "$OUT/search"
mos-nas search --checkpoint "$OUT/supernet/checkpoint_best.pt" --estimator "$OUT/latency/demo_cpu.safetensors" \
    --latency-constraint "$L1" "$L2" --iterations "${DEMO_SEARCH_ITERATIONS:-10}" --population 40 --parents 10 \
    --mutation 15 --crossover 15 --valid-max-sentences 200 --seed 1 --out "$OUT/search" --verify-latency --no-progress

echo "== 8. export each pick; BLEU inside the supernet and of the exported checkpoint (test set)"
for i in 0 1; do
    PICK=$(python -c "import json; print(json.load(open('$OUT/search/summary.json'))[$i]['arch'])")
    NAME=${PICK%.yml}
    mos-nas evaluate --checkpoint "$OUT/supernet/checkpoint_best.pt" --arch "$OUT/search/$PICK" \
        --valid-subset test --json > "$OUT/search/$NAME.supernet_eval.json"
    mos-nas export --checkpoint "$OUT/supernet/checkpoint_best.pt" --arch "$OUT/search/$PICK" \
        --out "$OUT/export_$NAME" --overwrite > /dev/null
    mos-nas bleu --path "$OUT/export_$NAME/checkpoint.pt" --data "$OUT/bin" --subset test --json \
        > "$OUT/search/$NAME.export_bleu.json"
done
mos-nas evaluate --checkpoint "$OUT/supernet/checkpoint_best.pt" --arch "$OUT/archs/largest.yml" \
    --valid-subset test --json > "$OUT/search/largest.supernet_eval.json"
python - "$OUT/search" <<'PY'
import json, sys
from pathlib import Path
d = Path(sys.argv[1])
largest = json.load(open(d / "largest.supernet_eval.json"))["bleu"]
picks = []
print(f"{'constraint':<16} {'architecture':<62} {'params':>7} {'pred ms':>8} {'meas ms':>8} {'supernet BLEU':>13} {'export BLEU':>11}")
for s in json.load(open(d / "summary.json")):
    name = s["arch"][:-4]
    sup = json.load(open(d / f"{name}.supernet_eval.json"))
    exp = json.load(open(d / f"{name}.export_bleu.json"))
    print(f"{'<= %g ms' % s['constraint']:<16} {s['architecture'][:62]:<62} {s['params']:>7} "
          f"{s['predicted_latency_ms']:>8.2f} {s['measured_latency_ms']:>8.2f} {sup['bleu']:>13.2f} {exp['bleu']:>11.2f}")
    picks.append(exp["bleu"])
print(f"largest subnet (inside the supernet): sacreBLEU {largest:.2f} on the test set")
ok = largest >= 30 and min(picks) >= 20
print(("the supernet translates: largest >= 30 and every pick >= 20 BLEU" if ok else
       "WARNING: below the demo's bar (largest >= 30, every pick >= 20 BLEU): this run did not train as expected"))
print(f"Pareto plot: {d / 'pareto.png'}")
PY
echo "== demo finished in $(( $(date +%s) - start )) s; outputs in $OUT"
