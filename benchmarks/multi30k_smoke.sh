#!/usr/bin/env bash
# A smoke test of the whole Multi30k study driver (benchmarks/multi30k.sh all, then its report) on the
# built-in synthetic corpus at toy sizes: demo space, three 3-layer baselines of it, 3-epoch recipe,
# 30 architectures timed 3 times, 2 search iterations. It checks that every stage runs and hands the
# next one what it needs (35 minutes at nice 10 beside two training lanes on 2 cores); the numbers mean nothing. Run it after changing
# the driver, the report or anything they call, before a long study reaches the changed stage.
#
#   benchmarks/multi30k_smoke.sh [WORK_DIR]    (default: a new temporary directory; kept for reading)
#   benchmarks/multi30k_smoke.sh --again [WORK_DIR]
#       # the lanes' mode `again` instead (a study resumed on a machine without its supernets): toy
#       # committed results (three picks; the old machine's figures for a baseline and one pick, another
#       # machine's hypotheses and BLEU-only figure for another pick: retrained last), both
#       # lanes to their end, then `again-finish` (Table 4 from supernets, models trained here and figures)
#       # and the resumed report on a toy report (9 minutes here at nice 10 beside two training lanes)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
export PATH="$ROOT/.venv/bin:$PATH"
AGAIN=0
[ "${1:-}" = --again ] && { AGAIN=1; shift; }
W=${1:-$(mktemp -d -t multi30k_smoke.XXXX)}
mkdir -p "$W/raw" "$W/archs"
[ -f "$W/raw/train.en" ] || mos-nas make-synthetic --out "$W/raw" --train 3000 --valid 100 --test 60 > /dev/null
for l in en de; do cp "$W/raw/test.$l" "$W/raw/test_mscoco.$l"; done
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
sed -e 's/^max-epoch: .*/max-epoch: 3/' -e 's/^warmup-updates: .*/warmup-updates: 50/' -e 's/^lr: .*/lr: 3.0e-3/' \
    -e 's/^keep-last-epochs: .*/keep-last-epochs: 2/' -e 's/^dropout: .*/dropout: 0.1/' -e 's/^log-interval: .*/log-interval: 10/' \
    "$ROOT/configs/retrain/multi30k.yml" > "$W/preset.yml"
export M30K_WORK=$W/work M30K_DATA=$W/raw M30K_PRESET=$W/preset.yml M30K_SPACE=demo M30K_BASELINES=$W/archs \
    M30K_VOCAB=256 M30K_SUPERNET_EPOCHS=3 M30K_FINETUNE_EPOCHS=1 M30K_AVERAGE=2 M30K_LAT_ARCHS=30 \
    M30K_LAT_REPEATS=3 M30K_SEARCH_ITERATIONS=2 M30K_REPORT=$W/report/multi30k.md OMP_NUM_THREADS=1
start=$(date +%s)
if [ $AGAIN = 0 ]; then
    "$ROOT/benchmarks/multi30k.sh" all
    test -s "$W/report/multi30k.md"
    for f in "$W"/work/search/*/summary.json "$W"/work/table4/gap/*; do test -e "$f" || { echo "missing: $f" >&2; exit 1; }; done
    echo "smoke test passed in $(( $(date +%s) - start )) s: report $W/report/multi30k.md"
    exit 0
fi
C=$W/committed  # what the old machine left: architectures of the picks and of the models trained there, their figures
mkdir -p "$C/archs"
mos-nas sample --space demo --n 3 --seed 3 --out "$W/sampled" > /dev/null
cp "$W/sampled/arch_0000.yml" "$C/archs/inherited_neuron_best_latency_9ms.yml"
cp "$W/sampled/arch_0000.yml" "$C/archs/neuron_best_latency_9ms.yml"  # its retrained copy: not a second pick
cp "$W/sampled/arch_0001.yml" "$C/archs/inherited_spos_best_latency_9ms.yml"
cp "$W/sampled/arch_0002.yml" "$C/archs/inherited_neuron_best_latency_12ms.yml"
cp "$W/sampled/arch_0002.yml" "$C/archs/neuron_best_latency_12ms.yml"  # trained alone elsewhere: hypotheses only
cp "$W/archs/base_3x1.yml" "$C/archs/"
cat > "$C/standalone_intel.json" << 'JSON'
{"bleu_subset": "test", "loss_subset": "valid", "max_sentences": null,
 "archs": {"base_3x1": {"bleu": 5.0, "valid_loss": 6.0}, "neuron_best_latency_9ms": {"bleu": 4.0, "valid_loss": 6.5}}}
JSON
mkdir -p "$C/hyp"
for n in 1 2 3; do head -n $((40 + 10 * n)) "$W/raw/test.de" > "$W/part.de"  # toy baselines' hypotheses
    { cat "$W/part.de"; tail -n +$((41 + 10 * n)) "$W/raw/test.en"; } > "$C/hyp/base_3x$n.test.txt"; done
cp "$W/part.de" "$C/hyp/neuron_best_latency_12ms.test.txt"
cat > "$C/standalone_bleu_only.json" << 'JSON'
{"bleu_subset": "test", "loss_subset": "valid", "max_sentences": null,
 "archs": {"neuron_best_latency_12ms": {"bleu": 77.0, "valid_loss": null}}}
JSON
cat > "$C/latency_intel.json" << 'JSON'
{"cpu": "toy", "measured_at": "now", "as_trained": {"base_3x1": 10.0, "base_3x2": 20.0, "base_3x3": 30.0},
 "picks": {"neuron_best_latency_9ms": 9.0}, "picks_search_check": {"spos_best_latency_9ms": 25.0}}
JSON
printf '# toy report\n\n%s\nstale\n%s\n\n## Notes\n' "<!-- resumed: begin (written by benchmarks/multi30k_resumed_report.py) -->" \
    "<!-- resumed: end -->" > "$W/report.md"
export M30K_COMMITTED=$C
plan=$("$ROOT/benchmarks/multi30k_lanes.sh" again-plan)
[ "$plan" = "retrained first (never trained alone): spos_best_latency_9ms
retrained after every fine-tuning (loss figure only): neuron_best_latency_12ms" ] || { echo "again-plan: $plan" >&2; exit 1; }
"$ROOT/benchmarks/multi30k_lanes.sh" again 0 1
pids=$(cat "$M30K_WORK"/logs/again_core{0,1}.pid)
while kill -0 $pids 2> /dev/null; do sleep 5; done
# the figures now also name a model trained here (as when they are another machine's gap.json): its checkpoint wins
python - "$C/standalone_intel.json" <<'PY'
import json, sys
from pathlib import Path
doc = json.loads(Path(sys.argv[1]).read_text())
doc["archs"]["spos_best_latency_9ms"] = {"bleu": 99.0, "valid_loss": 0.5}
Path(sys.argv[1]).write_text(json.dumps(doc))
PY
"$ROOT/benchmarks/multi30k_lanes.sh" again-finish
python - "$M30K_WORK" <<'PY'
import json, sys
from pathlib import Path
work = Path(sys.argv[1])
names = ["neuron_best_latency_12ms", "neuron_best_latency_9ms", "spos_best_latency_9ms"]
for kind in ("picks", "finetune"):
    assert all((work / kind / n / ".done").exists() for n in names), f"{kind}: not every committed pick done"
retrained = sorted(p.name for p in (work / "standalone").iterdir())
assert retrained == ["neuron_best_latency_12ms", "spos_best_latency_9ms"], f"retrained: the picks without a figure, {retrained}"
gap = json.loads((work / "table4" / "gap" / "gap.json").read_text())
assert gap["archs"] == ["base_3x1", "neuron_best_latency_12ms", "neuron_best_latency_9ms", "spos_best_latency_9ms"], gap["archs"]
assert gap["standalone_figures"]["archs"] == ["base_3x1", "neuron_best_latency_9ms"]
files = gap["standalone_figures"]["files"]  # the BLEU-only file's model was retrained here: measured, not its figure
assert list(files.values()) == [["base_3x1", "neuron_best_latency_9ms"]], files
assert gap["standalone"]["neuron_best_latency_12ms"]["bleu"] != 77.0 and gap["standalone"]["neuron_best_latency_12ms"]["valid_loss"]
assert gap["standalone"]["base_3x1"] == {"valid_loss": 6.0, "bleu": 5.0} and len(gap["supernets"]) == 2
assert gap["standalone"]["spos_best_latency_9ms"]["bleu"] != 99.0  # measured here, not the figure
PY
python "$ROOT/benchmarks/multi30k_resumed_report.py" --work "$M30K_WORK" --report "$W/report.md" --committed "$C" --data "$W/raw"
python - "$W/report.md" "$C" <<'PY'
import sys
from pathlib import Path
report, committed = Path(sys.argv[1]).read_text(), Path(sys.argv[2])
assert "stale" not in report and report.startswith("# toy report") and report.rstrip().endswith("## Notes"), report
for want in ("| spos_best_latency_9ms | enc", "25.00 (search's single check)", "| base_3x1 (trained on the first machine) |",
             "| neuron_best_latency_9ms |"):
    assert want in report, want
# the BLEU-only pick retrained here: the other machine's committed hypotheses stay, this machine's are again_NAME
assert (committed / "hyp/neuron_best_latency_12ms.test.txt").read_text() == (committed.parent / "part.de").read_text()
for f in ("hyp/spos_best_latency_9ms.test.txt", "hyp/finetuned_neuron_best_latency_9ms.test.txt",
          "hyp/again_neuron_best_latency_12ms.test.txt",
          "hyp/rerun_inherited_spos_best_latency_9ms.test_mscoco.txt", "latency_bleu_resumed.png"):
    assert (committed / f).is_file(), f
PY
echo "smoke test (again) passed in $(( $(date +%s) - start )) s: $M30K_WORK/table4/gap/gap.md"
