#!/usr/bin/env bash
# A smoke test of the whole Multi30k study driver (benchmarks/multi30k_unit.sh S, SPOS and R, then
# benchmarks/multi30k.sh all and its report) on the built-in synthetic corpus at toy sizes: demo space, three
# 3-layer baselines of it, 3-epoch recipe, 30 architectures timed 3 times, 2 search iterations. It checks that
# every stage runs and hands the next one what it needs (85 minutes on 2 cores that also trained two models alone, AMD EPYC, 2026-12-07); the
# numbers mean nothing. Run it after changing the driver, the report or anything they call, before a long study
# reaches the changed stage.
#
# Stage record runs on toy "blind" sets that are the test and valid sources, so its translations of them
# must be exactly the hypotheses `mos-nas bleu` wrote for those sets; a second record changes nothing.
#
#   benchmarks/multi30k_smoke.sh [WORK_DIR]    (default: a new temporary directory; kept for reading)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
export PATH="$ROOT/.venv/bin:$PATH"
W=${1:-$(mktemp -d -t multi30k_smoke.XXXX)}
mkdir -p "$W/raw/blind" "$W/archs"
[ -f "$W/raw/train.en" ] || mos-nas make-synthetic --out "$W/raw" --train 3000 --valid 100 --test 60 > /dev/null
for l in en de; do cp "$W/raw/test.$l" "$W/raw/test_mscoco.$l"; done
cp "$W/raw/test.en" "$W/raw/blind/test2016.en"  # toy blind sets whose translations are known (see above)
cp "$W/raw/valid.en" "$W/raw/blind/test2018.en"
for n in 1 2 3; do  # hand-designed baselines inside the demo space: uniform 64-wide 3+n layers
    python - "$W/archs/base_3x$n.yml" "$n" <<'PY'
import sys
n = int(sys.argv[2])
sys.stdout = open(sys.argv[1], "w")
print("space: demo\nencoder:\n  embed_dim: 64\n  layers: 3\n  ffn_dim: [128, 128, 128]\n  heads: [4, 4, 4]")
print(f"decoder:\n  embed_dim: 64\n  layers: {n}\n  ffn_dim: {[128] * n}\n  self_heads: {[4] * n}")
print(f"  cross_heads: {[4] * n}\n  cross_span: {[1] * n}")
PY
done
mkdir -p "$W/samples"  # one Table 4 sample: the demo space's smallest subnet
[ -f "$W/samples/sample_smallest.yml" ] || { mos-nas sample --space demo --n 0 --smallest --out "$W/samples" > /dev/null
    mv "$W/samples/smallest.yml" "$W/samples/sample_smallest.yml"; }
sed -e 's/^max-epoch: .*/max-epoch: 3/' -e 's/^warmup-updates: .*/warmup-updates: 50/' -e 's/^lr: .*/lr: 3.0e-3/' \
    -e 's/^keep-last-epochs: .*/keep-last-epochs: 2/' -e 's/^dropout: .*/dropout: 0.1/' -e 's/^log-interval: .*/log-interval: 10/' \
    "$ROOT/configs/retrain/multi30k.yml" > "$W/preset.yml"
export M30K_WORK=$W/work M30K_DATA=$W/raw M30K_PRESET=$W/preset.yml M30K_SPACE=demo M30K_BASELINES=$W/archs \
    M30K_SAMPLES=$W/samples \
    M30K_VOCAB=256 M30K_SUPERNET_EPOCHS=3 M30K_FINETUNE_EPOCHS=1 M30K_AVERAGE=2 M30K_LAT_ARCHS=30 \
    M30K_LAT_REPEATS=3 M30K_SEARCH_ITERATIONS=2 M30K_REPORT=$W/report/multi30k.md OMP_NUM_THREADS=1 \
    M30K_RESULTS=$W/repo/benchmarks/results/multi30k
start=$(date +%s)
"$ROOT/benchmarks/multi30k_unit.sh" S  # the supernet unit first (its two lanes, pinned to cores 0 and 1), then the rest
for f in summary.json candidates.csv latency_dataset.csv estimator_report.json constraints_ms.txt; do
    test -s "$M30K_RESULTS/search/neuron/$f" || { echo "unit S left no search/neuron/$f" >&2; exit 1; }
done
ls "$M30K_RESULTS"/supernets/neuron*.json "$M30K_RESULTS"/picks/neuron_best_latency_*ms.yml > /dev/null
"$ROOT/benchmarks/multi30k_unit.sh" SPOS  # the SPOS supernet for the neuron one's training time
python - "$M30K_RESULTS/supernets" <<'PY'
import json, sys
from pathlib import Path
neuron, spos = (json.loads(next(Path(sys.argv[1]).glob(f"{n}*.json")).read_text()) for n in ("neuron", "spos"))
assert spos["recipe"]["options"]["search-space"] == "demo" and spos["updates"] > neuron["updates"], (spos, neuron)
PY
test -s "$M30K_RESULTS/search/spos/summary.json"
pick=$(basename "$(ls "$M30K_RESULTS"/picks/neuron_best_latency_*ms.yml | head -n 1)" .yml)
"$ROOT/benchmarks/multi30k_unit.sh" R sample_smallest "$pick"  # a sample and a committed pick trained alone, one per core
for name in sample_smallest "$pick"; do test -s "$M30K_RESULTS/runs/$name.json"; done
"$ROOT/benchmarks/multi30k.sh" all
test -s "$W/report/multi30k.md"
for f in "$W"/work/search/*/summary.json "$W"/work/table4/gap/*; do test -e "$f" || { echo "missing: $f" >&2; exit 1; }; done
index=$(cat "$M30K_RESULTS/results.json")
again=$("$ROOT/benchmarks/multi30k.sh" record)
grep -q "recorded already" <<< "$again" && ! grep -q "written" <<< "$again" || { echo "record again: $again" >&2; exit 1; }
[ "$(cat "$M30K_RESULTS/results.json")" = "$index" ] || { echo "record: the index changed" >&2; exit 1; }
python - "$W/work" "$M30K_RESULTS" <<'PY'
import json, sys
from pathlib import Path
work, results = Path(sys.argv[1]), Path(sys.argv[2])
trained = sorted(d.name for d in (work / "standalone").iterdir() if not d.is_symlink() and (d / ".done").exists())
index = json.loads((results / "results.json").read_text())
assert [row["name"] for row in index if row["training"] == "alone"] == trained and len(trained) >= 4, (index, trained)
exported = sorted(f"inherited_{d.name}" for k in ("picks", "inherited") for d in (work / k).iterdir() if not d.is_symlink())
assert [row["name"] for row in index if row["training"] == "inherited"] == exported and len(exported) >= 5, exported
for name in exported:  # Table 4's rows: BLEU and the subnet's nll in the supernet; only the picks translate blind sets
    run = json.loads((results / "runs" / f"{name}.json").read_text())
    assert run["bleu"]["test"]["bleu"] is not None and run["valid_nll"]["inherited_weights"] > 0, run
    assert ("test2016" in run["bleu"]) == (run["role"] == "pick"), (name, run["role"], sorted(run["bleu"]))
for name in trained:
    run = json.loads((results / "runs" / f"{name}.json").read_text())
    d = work / "standalone" / name
    for subset, file in (("test", "hyp.test.txt"), ("test_mscoco", "hyp.test1.txt"), ("test2016", "hyp.test.txt"),
                         ("test2018", "hyp.valid.txt")):
        hyp = results.parents[2] / run["bleu"][subset]["hyp"]
        assert hyp.read_text() == (d / file).read_text(), f"{name} {subset}: not the hypotheses of mos-nas bleu"
    assert run["bleu"]["test"]["bleu"] == json.loads((d / "bleu.test.json").read_text())["bleu"]
    assert run["valid_nll"]["final"]["epoch"] == run["recipe"]["options"]["max-epoch"] == 3, run["valid_nll"]
    assert run["machine"]["cpu_model"] and run["commit"] == (d / "commit").read_text().strip()
PY
if lscpu | grep -qwE "avx512_bf16|amx_bf16"; then  # a baseline's bf16 twin on two gloo ranks, its quality report
    M30K_TWINS=base_3x1 M30K_ALONE_CORES="0 1" M30K_ONLY=base_3x1_bf16 "$ROOT/benchmarks/multi30k.sh" bf16_twin record
    python "$ROOT/benchmarks/cpu_bf16_quality.py" --results "$M30K_RESULTS" --out "$W/report/cpu_bf16_quality.md"
    python - "$M30K_RESULTS/runs/base_3x1_bf16.json" <<'PY'
import json, sys
run = json.load(open(sys.argv[1]))
assert (run["role"], run["dtype"]["training"], run["ranks"]) == ("baseline", "bf16", 2), run
assert run["recipe"]["options"]["max-tokens"] * 2 == 4096, run["recipe"]
PY
fi
echo "smoke test passed in $(( $(date +%s) - start )) s: report $W/report/multi30k.md, results $M30K_RESULTS"
