#!/usr/bin/env bash
# The BERT study on real data, scaled to a CPU: mlm-en (English news, 3,624 / 100 / 100
# articles) -> sentencepiece 8k + masked-LM binaries -> BERT supernets of the CPU-sized SuperShaper
# space (bert_cpu_bottleneck) and homogeneous space (bert_cpu_homogeneous), standard vs neuron-wise
# MoS with one budget (same updates, batch, recipe, seed) -> validation perplexity of the largest and
# smallest subnets -> SuperShaper Table 6: templated and cigar shapes vs random shapes at equal
# parameter counts, perplexity inside the supernets -> export of one homogeneous subnet to stock
# roberta and fine-tuning on SST-2 (GLUE format), against the same architecture fine-tuned from
# random weights.
#
# Usage: benchmarks/bert_study.sh STAGE [STAGE ...]
#   stages: data supernets eval shapes finetune report (all = every one in order)
# Every stage resumes (a `.done` marker or its output; fairseq-train continues from checkpoint_last.pt).
# Settings (environment): BERT_WORK (runs/bert), BERT_DATA (../shared/data/mlm-en), BERT_GLUE
# (../shared/data/glue/SST-2), BERT_UPDATES (600), BERT_MAX_TOKENS (2048), BERT_FT_UPDATES (1800),
# BERT_SUPERNETS (bottleneck_none bottleneck_neuron homogeneous_neuron), BERT_TRAIN_SUPERNETS
# (a subset of them, to split the training between lanes), BERT_PILOT (the work dir of a shorter run, shown
# beside this one in the report).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=${BERT_WORK:-$ROOT/runs/bert}
DATA=${BERT_DATA:-$ROOT/../shared/data/mlm-en}
GLUE=${BERT_GLUE:-$ROOT/../shared/data/glue/SST-2}
UPDATES=${BERT_UPDATES:-600}
MAX_TOKENS=${BERT_MAX_TOKENS:-2048}
FT_UPDATES=${BERT_FT_UPDATES:-1800}
# standard vs neuron-wise MoS on the SuperShaper-like space; the homogeneous neuron-MoS supernet for
# the roberta export (add homogeneous_none to BERT_SUPERNETS for the comparison in that space too)
read -r -a SUPERNETS <<< "${BERT_SUPERNETS:-bottleneck_none bottleneck_neuron homogeneous_neuron}"
read -r -a TRAIN_SUPERNETS <<< "${BERT_TRAIN_SUPERNETS:-${SUPERNETS[*]}}"
# the exported homogeneous subnet that is fine-tuned: a middle-sized one
FT_ARCH='{space: bert_cpu_homogeneous, layers: 4, hidden: 128, heads: 4, ffn_ratio: 3}'
BIN=$WORK/bin
mkdir -p "$WORK"
# shellcheck source=benchmarks/lib.sh
source "$ROOT/benchmarks/lib.sh"

space_of() { echo "bert_cpu_${1%_*}"; }   # bottleneck_neuron -> bert_cpu_bottleneck
mos_of() { echo "${1##*_}"; }             # bottleneck_neuron -> neuron

stage_data() {
    [ -f "$BIN/dict.txt" ] && return
    log "data: sentencepiece 8k + masked-LM binaries from $DATA"
    mos-nas prepare-mlm --train "$DATA/train.txt" --valid "$DATA/valid.txt" --test "$DATA/test.txt" \
        --vocab-size 8000 --out "$BIN"
}

stage_supernets() {
    for name in "${TRAIN_SUPERNETS[@]}"; do
        run_once "$WORK/supernets/$name" "supernet $name: $UPDATES sandwich updates (resumes from checkpoint_last.pt)" \
            fairseq-train "$BIN" --user-dir "$ROOT/user_dir" --task supernet_masked_lm --arch bert_supernet \
            --search-space "$(space_of "$name")" --mos "$(mos_of "$name")" --criterion masked_lm \
            --supernet-sampling sandwich --sandwich-random 1 --tokens-per-sample 128 --max-positions 128 \
            --sample-break-mode none --optimizer adam --adam-betas '(0.9,0.98)' --adam-eps 1e-6 --weight-decay 0.01 \
            --lr 1e-3 --lr-scheduler polynomial_decay --warmup-updates 60 --total-num-update "$UPDATES" \
            --max-update "$UPDATES" --max-tokens "$MAX_TOKENS" --dropout 0.1 --attention-dropout 0.1 --seed 1 \
            --cpu --num-workers 0 --no-epoch-checkpoints --save-interval-updates 150 --keep-interval-updates 1 \
            --log-format simple --log-interval 25 --save-dir "$WORK/supernets/$name"
    done
}

stage_eval() {
    mkdir -p "$WORK/eval"
    for name in "${SUPERNETS[@]}"; do
        local archs=$WORK/eval/archs_$(space_of "$name")
        [ -d "$archs" ] || mos-nas sample --space "$(space_of "$name")" --n 0 --largest --smallest --out "$archs" > /dev/null
        for which in largest smallest; do
            local out=$WORK/eval/${name}_$which.json
            [ -f "$out" ] && continue
            for subset in valid test; do
                mos-nas evaluate --checkpoint "$WORK/supernets/$name/checkpoint_last.pt" --data "$BIN" \
                    --arch "$archs/$which.yml" --valid-subset "$subset" --json > "$out.$subset.tmp"
            done
            python - "$out" <<'PY'
import json, sys
out = sys.argv[1]
res = {s: json.load(open(f"{out}.{s}.tmp")) for s in ("valid", "test")}
json.dump(res, open(out + ".tmp", "w"), indent=1)
PY
            mv "$out.tmp" "$out" && rm -f "$out".*.tmp
            log "eval $name $which: $(python -c "import json; r=json.load(open('$out')); print({k: round(v['valid_ppl'], 2) for k, v in r.items()})")"
        done
    done
}

stage_shapes() {
    [ -f "$WORK/shapes/shapes.json" ] && return
    log "shapes: templated, cigar and random shapes at equal parameter counts (bottleneck supernets)"
    python "$ROOT/benchmarks/bert_shapes.py" --data "$BIN" --space bert_cpu_bottleneck \
        --supernet standard="$WORK/supernets/bottleneck_none/checkpoint_last.pt" \
        --supernet neuron="$WORK/supernets/bottleneck_neuron/checkpoint_last.pt" \
        --random 10 --seed 1 --out "$WORK/shapes"
}

stage_finetune() {
    local ft=$WORK/finetune
    mkdir -p "$ft"
    echo "$FT_ARCH" > "$ft/arch.yml"
    [ -f "$ft/export/checkpoint.pt" ] || mos-nas export --checkpoint "$WORK/supernets/homogeneous_neuron/checkpoint_last.pt" \
        --arch "$ft/arch.yml" --data "$BIN" --out "$ft/export" --overwrite > "$ft/export.log"
    [ -f "$ft/glue/finetune.sh" ] || mos-nas prepare-glue --task SST-2 --train "$GLUE/train.tsv" --dev "$GLUE/dev.tsv" \
        --export-dir "$ft/export" --out "$ft/glue"
    # same recipe for both runs; FINETUNE_FROM= makes finetune.sh start from random weights (the baseline)
    local common=(--cpu --num-workers 0 --max-update "$FT_UPDATES" --total-num-update "$FT_UPDATES"
                  --warmup-updates $((FT_UPDATES / 10)) --lr 1e-4 --seed 1 --log-format simple --log-interval 50
                  --validate-interval-updates 200 --save-interval-updates 200 --keep-interval-updates 1)
    run_once "$ft/pretrained" "finetune from the export: SST-2, $FT_UPDATES updates" \
        bash "$ft/glue/finetune.sh" "${common[@]}" --save-dir "$ft/pretrained"
    run_once "$ft/scratch" "finetune from random weights: SST-2, $FT_UPDATES updates" \
        env FINETUNE_FROM='' bash "$ft/glue/finetune.sh" "${common[@]}" --save-dir "$ft/scratch"
}

stage_report() {
    python "$ROOT/benchmarks/bert_report.py" --work "$WORK" --updates "$UPDATES" --max-tokens "$MAX_TOKENS" \
        --ft-updates "$FT_UPDATES" --notes "$ROOT/benchmarks/bert_notes.md" ${BERT_PILOT:+--pilot "$BERT_PILOT"} \
        --out "$ROOT/benchmarks/results/bert_supernets.md"
}

[ $# -gt 0 ] || { sed -n 2,18p "$0"; exit 2; }
stages=("$@")
[ "$1" = all ] && stages=(data supernets eval shapes finetune report)
for s in "${stages[@]}"; do
    case $s in
        data|supernets|eval|shapes|finetune|report) "stage_$s" ;;
        *) echo "unknown stage '$s' (data supernets eval shapes finetune report all)" >&2; exit 2 ;;
    esac
done
