#!/usr/bin/env bash
# BERT pretraining that pays downstream, on 2 CPU cores: masked-LM supernets of the homogeneous space
# (bert_cpu_homogeneous; neuron-wise MoS and standard weight sharing) pretrained on text close to the
# GLUE tasks, subnets exported to stock roberta and fine-tuned on SST-2 and CoLA (mos-nas prepare-glue's
# finetune.sh) against the same architectures from random weights.
#
# Text: mlm-en (English news) + the English side of mt-ende (short everyday sentences) + the unlabelled
# training sentences of SST-2 and CoLA ("mix"), or the task sentences alone ("task"); one sentencepiece
# 8k vocabulary trained on the mix serves both, so every export and every baseline shares it.
#
# Usage: benchmarks/bert_glue.sh STAGE [STAGE ...]
#   data       text + binaries (bin_mix; bin_task: the tasks' training sentences, validated on news and everyday
#              text; bin_search: the same, validated on the tasks' dev sentences, for the search)
#   sweep      the recipe sweep on a small budget: for each point of SWEEP a neuron-MoS supernet of
#              SWEEP_UPDATES updates, its FT_ARCH subnet exported and fine-tuned on SST-2 (seed 1), and FT_ARCH
#              from random weights; one JSON per run under $OUT/runs
#   the study, in this order (BG_ONLY: one lane's supernets or picks, so that two cores share the work):
#   supernets  a sandwich supernet per UNIT_SUPERNETS (MoS "neuron" and "none" = standard weight sharing) on
#              UNIT_TEXT, UNIT_UPDATES updates at lr UNIT_LR; perplexity of largest and smallest per checkpoint
#   latency    this CPU's latency of LAT_ARCHS subnets (LAT_SEQ tokens, one thread) and its estimator
#   search     one search per supernet on bin_search: UNIT_PARAM_CONSTRAINTS and UNIT_LATENCY_CONSTRAINTS (default: the
#              estimated latency of LAT_REF_ARCH), SEARCH_ITERATIONS x SEARCH_POPULATION, candidates scored
#              on the first SEARCH_VALID validation blocks
#   picks      every pick exported to stock roberta and fine-tuned on UNIT_TASKS x SEEDS
#   random     the same architectures fine-tuned from random weights
#   alone      the recorded picks' architectures pretrained alone (stock roberta) for their supernet's wall-clock,
#              fine-tuned; from the committed run files and the data stage alone (no supernet or search needed);
#              ALONE_LR (default UNIT_LR) another learning rate: a variant of that start, recorded beside it
#   index      the blind labels' index.json (BG_PRED)
#   bow        a reference point: a bag-of-n-grams logistic regression's SST-2 accuracy on the carved split, its unseen
#              rows and the clean split ($OUT/bow_SST-2.json; benchmarks/glue_bow_baseline.py)
# Every fine-tuning run scores its final checkpoint on the dev split (SST-2 also on its rows unseen in training)
# and labels the blind set; python benchmarks/bert_glue_report.py then builds the report. Every stage
# resumes: a finished step is skipped (its .done marker or result file), fairseq-train continues from
# checkpoint_last.pt. Settings (environment): BG_WORK (runs/bert_glue), BG_DATA (../shared/data), BG_OUT
# (benchmarks/results/bert_glue: the run JSONs), BG_PRED (benchmarks/results/bert/pred), BG_BF16 (1: bf16
# mixed precision), FT_UPDATES (1800), FT_LR (1e-3), SWEEP_UPDATES (900), SWEEP_TASKS (SST-2), and the study's
# UNIT_* / SEARCH_* / LAT_* below.
set -euo pipefail
[ $# -gt 0 ] || { sed -n '2,/^set -euo pipefail/{/^set/!p}' "$0"; exit 2; }
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=${BG_WORK:-$ROOT/runs/bert_glue}
DATA=${BG_DATA:-$ROOT/../shared/data}
OUT=${BG_OUT:-$ROOT/benchmarks/results/bert_glue}
SWEEP_UPDATES=${SWEEP_UPDATES:-900}
FT_UPDATES=${FT_UPDATES:-1800}
FT_LR=${FT_LR:-1e-3}
SWEEP_TASKS=${SWEEP_TASKS:-SST-2}
# the sweep: NAME TEXT LR UPDATES [extra fairseq-train options] (UPDATES "-": SWEEP_UPDATES)
SWEEP=(
    "task_lr1e-3 task 1e-3 -"
    "mix_lr1e-3 mix 1e-3 -"
    "task_lr3e-3 task 3e-3 -"
    "task_lr3e-3_u2700 task 3e-3 2700"
    "task_lr3e-3_eos task 3e-3 - --sample-break-mode eos"
    "task_lr3e-3_u5400 task 3e-3 5400 --save-interval-updates 1800 --keep-interval-updates -1"
)
# the subnet the sweep fine-tunes: the middle of the space
FT_ARCH='{space: bert_cpu_homogeneous, layers: 4, hidden: 128, heads: 4, ffn_ratio: 3}'
# the study
UNIT_TEXT=${UNIT_TEXT:-task}
UNIT_LR=${UNIT_LR:-3e-3}
# stage alone's learning rate; another than UNIT_LR is a variant of that start, run and recorded beside the
# study's (alone/NAME_lrX, pretrained_alone_NAME_lrX.json, fine-tuning runs alone_NAME_lrX, column "lr X")
ALONE_LR=${ALONE_LR:-$UNIT_LR}
UNIT_UPDATES=${UNIT_UPDATES:-5400}
UNIT_SUPERNETS=${UNIT_SUPERNETS:-neuron none}
UNIT_PARAM_CONSTRAINTS=${UNIT_PARAM_CONSTRAINTS:-1.8M}
UNIT_TASKS=${UNIT_TASKS:-SST-2 CoLA}
SEEDS=${SEEDS:-1 2 3}
SEARCH_ITERATIONS=${SEARCH_ITERATIONS:-10}
SEARCH_POPULATION=${SEARCH_POPULATION:-40}
SEARCH_VALID=${SEARCH_VALID:-400}
LAT_ARCHS=${LAT_ARCHS:-150}
LAT_SEQ=${LAT_SEQ:-64}
LAT_REF_ARCH='{space: bert_cpu_homogeneous, layers: 3, hidden: 112, heads: 4, ffn_ratio: 3}'
PRED=${BG_PRED:-$ROOT/benchmarks/results/bert/pred}
# BG_SPLIT: "carved" (the dev split as given) or "clean": scored on the dev sentences that lie inside no
# training line, fine-tuned on the training rows that lie inside no such sentence (benchmarks/glue_unseen.py
# --train-out); a clean run's names end in _clean (fine-tuning directories, run files, blind labels)
SPLIT=${BG_SPLIT:-carved}
case $SPLIT in carved) SPLIT_SUFFIX="" ;; clean) SPLIT_SUFFIX=_clean ;;
    *) echo "BG_SPLIT must be carved or clean, not '$SPLIT'" >&2; exit 2 ;; esac
# BG_BF16=1: mixed-precision bf16 pretraining and fine-tuning (CPUs with avx512_bf16 / amx_bf16)
BF16=()
[ "${BG_BF16:-0}" = 1 ] && BF16=(--bf16)
mkdir -p "$WORK" "$OUT/runs"
# shellcheck source=benchmarks/lib.sh
source "$ROOT/benchmarks/lib.sh"

selected() { [ -z "${BG_ONLY:-}" ] || [[ " $BG_ONLY " == *" $1 "* ]]; }

stage_data() {
    local text=$WORK/text
    mkdir -p "$text"
    if [ ! -f "$text/.done" ]; then
        tail -n +2 "$DATA/glue/SST-2/train.tsv" | cut -f1 > "$text/sst2.train.txt"
        cut -f4 "$DATA/glue/CoLA/train.tsv" > "$text/cola.train.txt"
        cat "$DATA/mlm-en/valid.txt" "$DATA/mt-ende/valid.en" > "$text/valid.txt"
        cat "$DATA/mlm-en/test.txt" "$DATA/mt-ende/test.en" > "$text/test.txt"
        touch "$text/.done"
    fi
    [ -f "$WORK/bin_mix/dict.txt" ] || mos-nas prepare-mlm --train "$DATA/mlm-en/train.txt" "$DATA/mt-ende/train.en" \
        "$text/sst2.train.txt" "$text/cola.train.txt" --valid "$text/valid.txt" --test "$text/test.txt" \
        --vocab-size 8000 --out "$WORK/bin_mix"
    [ -f "$WORK/bin_task/dict.txt" ] || mos-nas prepare-mlm --train "$text/sst2.train.txt" "$text/cola.train.txt" \
        --valid "$text/valid.txt" --test "$text/test.txt" --vocabulary-from "$WORK/bin_mix" --out "$WORK/bin_task"
    [ -f "$text/tasks.dev.txt" ] || { tail -n +2 "$DATA/glue/SST-2/dev.tsv" | cut -f1; cut -f4 "$DATA/glue/CoLA/dev.tsv"; } \
        > "$text/tasks.dev.txt"
    # SST-2's dev rows whose sentence lies inside no training line (the rest share phrases with the training rows)
    [ -f "$text/SST-2.dev_unseen.tsv" ] || python "$ROOT/benchmarks/glue_unseen.py" --train "$DATA/glue/SST-2/train.tsv" \
        --dev "$DATA/glue/SST-2/dev.tsv" --header --out "$text/SST-2.dev_unseen.tsv"
    clean_split SST-2 --header
    clean_split CoLA --sentence-col 3
    # the search's data: the task text, validated on the tasks' dev sentences (unlabelled, never pretrained on)
    [ -f "$WORK/bin_search/dict.txt" ] || mos-nas prepare-mlm --train "$text/sst2.train.txt" "$text/cola.train.txt" \
        --valid "$text/tasks.dev.txt" --test "$text/test.txt" --vocabulary-from "$WORK/bin_mix" --out "$WORK/bin_search"
}

# clean_split TASK [glue_unseen options]: TASK's clean split, text/TASK.{train,dev}_clean.tsv
clean_split() {
    local task=$1 text=$WORK/text
    shift
    [ -f "$text/$task.train_clean.tsv" ] || python "$ROOT/benchmarks/glue_unseen.py" --train "$DATA/glue/$task/train.tsv" \
        --dev "$DATA/glue/$task/dev.tsv" "$@" --out "$text/$task.dev_clean.tsv" --train-out "$text/$task.train_clean.tsv"
}

# split_file TASK train|dev: the split's file of TASK
split_file() {
    if [ "$SPLIT" = clean ]; then echo "$WORK/text/$1.$2_clean.tsv"; else echo "$DATA/glue/$1/$2.tsv"; fi
}

# pretrain DIR BIN SPACE MOS UPDATES LR [extra]: a sandwich supernet (largest + smallest + 1 random per update)
pretrain() {
    local dir=$1 bin=$2 space=$3 mos=$4 updates=$5 lr=$6
    shift 6
    run_once "$dir" "pretrain $(basename "$dir"): $space, MoS $mos, $updates updates, lr $lr $*" \
        fairseq-train "$bin" --user-dir "$ROOT/user_dir" --task supernet_masked_lm --arch bert_supernet \
        --search-space "$space" --mos "$mos" --criterion masked_lm \
        --supernet-sampling sandwich --sandwich-random 1 --tokens-per-sample 128 --max-positions 128 \
        --sample-break-mode none --optimizer adam --adam-betas '(0.9,0.98)' --adam-eps 1e-6 --weight-decay 0.01 \
        --lr "$lr" --lr-scheduler polynomial_decay --warmup-updates $((updates / 10)) --total-num-update "$updates" \
        --max-update "$updates" --max-tokens 2048 --dropout 0.1 --attention-dropout 0.1 --seed 1 \
        --cpu --num-workers 0 --no-epoch-checkpoints --save-interval-updates 150 --keep-interval-updates 1 \
        --log-format simple --log-interval 25 --save-dir "$dir" "${BF16[@]}" "$@"
}

# glue_dir EXPORT TASK: the prepare-glue binaries of TASK for EXPORT's vocabulary (one per export)
glue_dir() {
    local export=$1 task=$2 dir=$1/glue_$2$SPLIT_SUFFIX
    [ -f "$dir/finetune.sh" ] || mos-nas prepare-glue --task "$task" --train "$(split_file "$task" train)" \
        --dev "$(split_file "$task" dev)" --export-dir "$export" --out "$dir" --overwrite > /dev/null
    echo "$dir"
}

# finetune NAME START GLUE TASK SEED: finetune.sh with the recipe from START ("export" or "random"),
# then the final checkpoint scored on the dev split (no checkpoint selection; SST-2 also on its rows unseen in
# training) and run on the blind set
finetune() {
    local name=$1 start=$2 glue=$3 task=$4 seed=$5 dir=$WORK/finetune/$1.$2.lr$FT_LR.seed$5.$4$SPLIT_SUFFIX
    local from=()
    [ "$start" = random ] && from=(env FINETUNE_FROM=)
    run_once "$dir" "finetune $name ($start) on $task ($SPLIT split), seed $seed: $FT_UPDATES updates, lr $FT_LR" \
        "${from[@]}" bash "$glue/finetune.sh" --cpu --num-workers 0 --max-update "$FT_UPDATES" \
        --total-num-update "$FT_UPDATES" --warmup-updates $((FT_UPDATES / 10)) --lr "$FT_LR" --seed "$seed" \
        --log-format simple --log-interval 100 --validate-interval-updates 600 --save-interval-updates 600 \
        --keep-interval-updates 1 --save-dir "$dir" "${BF16[@]}"
    if [ ! -f "$dir/dev.json" ]; then
        mos-nas predict-glue --checkpoint "$dir/checkpoint_last.pt" --glue "$glue" \
            --input "$(split_file "$task" dev)" --task "$task" --json > "$dir/dev.json.tmp"
        mv "$dir/dev.json.tmp" "$dir/dev.json"
    fi
    if [ "$task" = SST-2 ] && [ "$SPLIT" = carved ] && [ ! -f "$dir/dev_unseen.json" ]; then  # the rows unseen in training
        mos-nas predict-glue --checkpoint "$dir/checkpoint_last.pt" --glue "$glue" \
            --input "$WORK/text/SST-2.dev_unseen.tsv" --task "$task" --json > "$dir/dev_unseen.json.tmp"
        mv "$dir/dev_unseen.json.tmp" "$dir/dev_unseen.json"
    fi
    [ -f "$dir/blind.txt" ] || mos-nas predict-glue --checkpoint "$dir/checkpoint_last.pt" --glue "$glue" \
        --input "$DATA/glue/$task/blind_dev.tsv" --header --out "$dir/blind.txt" > /dev/null
}

# export_arch CHECKPOINT ARCH_YAML OUT BIN: the subnet as stock roberta
export_arch() {
    [ -f "$3/checkpoint.pt" ] || mos-nas export --checkpoint "$1" --arch "$2" --data "$4" --out "$3" --overwrite > /dev/null
}

# sweep_point NAME TEXT LR UPDATES [extra]: pretrain, export the last checkpoint and fine-tune it on every task of
# SWEEP_TASKS; a checkpoint kept on the way (extra --keep-interval-updates -1) is exported and fine-tuned on
# SST-2 too: the downstream score as a function of the pretraining updates
sweep_point() {
    local name=$1 text=$2 lr=$3 updates=$4 dir=$WORK/sweep/$1 task ckpt at glue
    shift 4
    pretrain "$dir" "$WORK/bin_$text" bert_cpu_homogeneous neuron "$updates" "$lr" "$@"
    for ckpt in "$dir"/checkpoint_*_*.pt; do
        [ -f "$ckpt" ] || continue
        at=${ckpt##*_}
        at=${at%.pt}
        [ "$at" = "$updates" ] && continue
        export_arch "$ckpt" "$WORK/sweep/arch.yml" "$dir/export_u$at" "$WORK/bin_$text"
        glue=$(glue_dir "$dir/export_u$at" SST-2)  # an assignment, so that a failure stops the script (set -e)
        finetune "sweep_${name}_u$at" export "$glue" SST-2 1
        record_sweep "${name}_u$at" "$text" "$lr" "$*" "$updates" SST-2 --point "$name" --at-updates "$at"
    done
    export_arch "$dir/checkpoint_last.pt" "$WORK/sweep/arch.yml" "$dir/export" "$WORK/bin_$text"
    for task in $SWEEP_TASKS; do
        glue=$(glue_dir "$dir/export" "$task")
        finetune "sweep_$name" export "$glue" "$task" 1
        record_sweep "$name" "$text" "$lr" "$*" "$updates" "$task"
    done
}

stage_sweep() {
    mkdir -p "$WORK/sweep"
    echo "$FT_ARCH" > "$WORK/sweep/arch.yml"
    local point name text lr updates extra task glue
    for point in "${SWEEP[@]}"; do
        read -r name text lr updates extra <<< "$point"
        selected "$name" || continue
        [ "$updates" = - ] && updates=$SWEEP_UPDATES
        # shellcheck disable=SC2086
        sweep_point "$name" "$text" "$lr" "$updates" $extra
    done
    if selected random; then  # every export shares the vocabulary: any of them gives the binaries (weights unused)
        [ -d "$WORK/sweep/random" ] || mos-nas export --checkpoint "$(ls "$WORK"/sweep/*/checkpoint_last.pt | head -n 1)" \
            --arch "$WORK/sweep/arch.yml" --data "$WORK/bin_task" --out "$WORK/sweep/random" --overwrite > /dev/null
        for task in $SWEEP_TASKS; do
            glue=$(glue_dir "$WORK/sweep/random" "$task")
            finetune sweep_arch random "$glue" "$task" 1
            record_sweep random - - "" - "$task"
        done
    fi
}

# record_sweep NAME TEXT LR EXTRA UPDATES TASK [--point P --at-updates N]: one JSON of the sweep point (its
# pretraining and its fine-tuning)
record_sweep() {
    python "$ROOT/benchmarks/bert_glue_record.py" sweep --work "$WORK" --name "$1" --text "$2" --lr "$3" \
        --extra "$4" --updates "$5" --task "$6" --ft-updates "$FT_UPDATES" --ft-lr "$FT_LR" --split "$SPLIT" \
        --pred-dir "$PRED" --out "$OUT/runs" "${@:7}"
}

# ---- the study: supernets -> latency -> search -> picks exported and fine-tuned, against the same
# architectures from random weights and pretrained alone for the supernet's wall-clock
supernet_dir() { echo "$WORK/supernets/$1"; }

stage_supernets() {  # every supernet of UNIT_SUPERNETS (BG_ONLY: this lane's), same text, recipe and updates
    local mos
    for mos in $UNIT_SUPERNETS; do
        selected "$mos" || continue
        pretrain "$(supernet_dir "$mos")" "$WORK/bin_$UNIT_TEXT" bert_cpu_homogeneous "$mos" "$UNIT_UPDATES" "$UNIT_LR" \
            --save-interval-updates 500
        record supernet --name "$mos" --dir "$(supernet_dir "$mos")" --text "$UNIT_TEXT" --lr "$UNIT_LR" \
            --updates "$UNIT_UPDATES"
    done
}

stage_latency() {  # this CPU's latency of the space (one sequence of LAT_SEQ tokens, one thread) + estimator
    local lat=$WORK/latency
    mkdir -p "$lat"
    [ -f "$lat/.measured" ] || { mos-nas measure-latency --space bert_cpu_homogeneous --data "$WORK/bin_task" \
        --seq-len "$LAT_SEQ" --threads 1 --n-archs "$LAT_ARCHS" --repeats 30 --warmup 5 --out "$lat/cpu.csv" \
        --no-progress && touch "$lat/.measured"; }
    [ -f "$lat/cpu.safetensors" ] || mos-nas train-estimator --data "$lat/cpu.csv" --out "$lat/cpu.safetensors" \
        --report "$lat/cpu.report.json" > /dev/null
}

latency_constraints() {  # UNIT_LATENCY_CONSTRAINTS, else the estimator's latency of LAT_REF_ARCH (ms, 2 decimals)
    if [ -n "${UNIT_LATENCY_CONSTRAINTS:-}" ]; then echo "$UNIT_LATENCY_CONSTRAINTS"; return; fi
    echo "$LAT_REF_ARCH" > "$WORK/latency/reference.yml"
    mos-nas predict-latency --estimator "$WORK/latency/cpu.safetensors" --arch "$WORK/latency/reference.yml" --json |
        python -c "import json, sys; print(round(json.load(sys.stdin)['latency_ms'], 2))"
}

stage_search() {  # one search per supernet: a parameter and a latency constraint
    local mos latency
    read -r -a latency <<< "$(latency_constraints)"
    for mos in $UNIT_SUPERNETS; do
        selected "$mos" || continue
        [ -f "$WORK/search/$mos/.done" ] && continue
        mos-nas search --checkpoint "$(supernet_dir "$mos")/checkpoint_last.pt" --data "$WORK/bin_search" \
            --estimator "$WORK/latency/cpu.safetensors" \
            --latency-constraint "${latency[@]}" --param-constraint $UNIT_PARAM_CONSTRAINTS --iterations "$SEARCH_ITERATIONS" \
            --population "$SEARCH_POPULATION" --parents 10 --mutation 15 --crossover 15 \
            --valid-max-sentences "$SEARCH_VALID" --out "$WORK/search/$mos" --resume --no-progress > "$WORK/search.$mos.log" 2>&1
        touch "$WORK/search/$mos/.done"
    done
}

picks() {  # every pick as "NAME YAML": NAME = SUPERNET_CONSTRAINT (neuron_params_1.2M, none_latency_4.1ms)
    local mos yml
    for mos in $UNIT_SUPERNETS; do
        for yml in "$WORK/search/$mos"/best_*.yml; do
            [[ $yml == *.hat.yml ]] || [ ! -f "$yml" ] || echo "${mos}_$(basename "$yml" .yml | sed 's/^best_//') $yml"
        done
    done
}

# finetune_all NAME START EXPORT_DIR [PICK VARIANT]: every task x seed from START, each recorded (dev scores, blind
# labels); PICK (default NAME): the pick whose architecture this is; VARIANT (e.g. "lr 1e-3"): how this start
# differs from the study's
finetune_all() {
    local name=$1 start=$2 export=$3 pick=${4:-$1} variant=${5:-} task seed glue
    for task in $UNIT_TASKS; do
        for seed in $SEEDS; do
            glue=$(glue_dir "$export" "$task")  # an assignment, so that a failure stops the script (set -e)
            finetune "$name" "$start" "$glue" "$task" "$seed"
            record finetune --name "${start}_$name" --start "$start" --pick "$pick" --variant "$variant" \
                --task "$task" --seed "$seed" --split "$SPLIT" --arch "$export/export.json" --pred-dir "$PRED" \
                --dir "$WORK/finetune/$name.$start.lr$FT_LR.seed$seed.$task$SPLIT_SUFFIX"
        done
    done
}

stage_picks() {  # every pick exported from its supernet and fine-tuned
    local name yml
    mkdir -p "$WORK/picks"
    while read -r name yml; do
        selected "$name" || continue
        export_arch "$(supernet_dir "${name%%_*}")/checkpoint_last.pt" "$yml" "$WORK/picks/$name" "$WORK/bin_$UNIT_TEXT"
        record pick --name "$name" --supernet "${name%%_*}" --search "$WORK/search/${name%%_*}" --arch-file "$yml"
        finetune_all "$name" export "$WORK/picks/$name"
    done < <(picks)
}

stage_random() {  # every pick's architecture fine-tuned from random weights
    local name yml
    while read -r name yml; do
        selected "$name" || continue
        finetune_all "$name" random "$WORK/picks/$name"
    done < <(picks)
}

recorded_picks() {  # every recorded pick as "NAME PICK_JSON" (committed run files: no search directory needed)
    local json
    for json in "$OUT/runs"/pick_*.json; do
        [ -f "$json" ] && echo "$(basename "$json" .json | sed 's/^pick_//') $json"
    done
}

# stage_alone: every recorded pick's architecture pretrained alone (stock roberta) for its supernet's wall-clock
# and fine-tuned; needs only the data stage and the committed run files (the pick's and its supernet's JSON)
stage_alone() {
    local name json dir hours suffix="" variant=""
    [ "$ALONE_LR" = "$UNIT_LR" ] || { suffix=_lr$ALONE_LR; variant="lr $ALONE_LR"; }
    while read -r name json; do
        selected "$name" || continue
        dir=$WORK/alone/$name$suffix
        mkdir -p "$dir"
        hours=$(python -c "import json, sys; print(json.load(open(sys.argv[1]))['pretraining']['train_wall_s'] / 3600)" \
            "$OUT/runs/supernet_${name%%_*}.json")
        python -c "import json, sys; p = json.load(open(sys.argv[1])); \
json.dump({'arch': p['arch_spec'], 'params': p['params'], 'model': 'roberta'}, open(sys.argv[2], 'w'), indent=2)" \
            "$json" "$dir/export.json"
        alone_pretrain "$dir" "$dir/export.json" "$hours"
        if [ ! -f "$dir/export/checkpoint.pt" ]; then  # an export directory: the checkpoint with the vocabulary
            mkdir -p "$dir/export"
            cp "$dir/export.json" "$WORK/bin_$UNIT_TEXT"/{dict.txt,spm.model} "$dir/export/"
            cp "$dir/checkpoint_last.pt" "$dir/export/checkpoint.pt.tmp" && mv "$dir/export/checkpoint.pt.tmp" "$dir/export/checkpoint.pt"
        fi
        record pretrained --name "alone_$name$suffix" --dir "$dir" --text "$UNIT_TEXT" --lr "$ALONE_LR" --hours "$hours"
        finetune_all "$name$suffix" alone "$dir/export" "$name" "$variant"
    done < <(recorded_picks)
}

# alone_pretrain DIR EXPORT_JSON HOURS: stock roberta masked_lm with the export's dimensions and the supernets'
# recipe (at ALONE_LR), its schedule sized to the wall-clock: a probe of 100 updates (probe.log) gives the model's
# seconds per update, the polynomial decay ends after HOURS of training at that speed (--stop-time-hours guards the
# budget)
alone_pretrain() {
    local dir=$1 hours=$3 dims updates
    read -r -a dims < <(python -c "import json, sys; a = json.load(open(sys.argv[1]))['arch']; \
print(a['layers'], a['hidden'], int(round(a['hidden'] * float(a['ffn_ratio']))), a['heads'])" "$2")
    local model=(fairseq-train "$WORK/bin_$UNIT_TEXT" --user-dir "$ROOT/user_dir" --task masked_lm --arch roberta
        --encoder-layers "${dims[0]}" --encoder-embed-dim "${dims[1]}" --encoder-ffn-embed-dim "${dims[2]}"
        --encoder-attention-heads "${dims[3]}" --criterion masked_lm --tokens-per-sample 128 --max-positions 128
        --sample-break-mode none --optimizer adam --adam-betas '(0.9,0.98)' --adam-eps 1e-6 --weight-decay 0.01
        --lr "$ALONE_LR" --lr-scheduler polynomial_decay --max-tokens 2048 --dropout 0.1 --attention-dropout 0.1
        --seed 1 --cpu --num-workers 0 --log-format simple "${BF16[@]}")
    mkdir -p "$dir"
    [ -f "$dir/probe.log" ] || { "${model[@]}" --warmup-updates 10 --total-num-update 100 --max-update 100 --no-save \
        --disable-validation --log-interval 20 > "$dir/probe.log.tmp" 2>&1 && mv "$dir/probe.log.tmp" "$dir/probe.log"; }
    updates=$(python -c "import sys; sys.path.insert(0, sys.argv[1]); from pathlib import Path; \
from fairseq_logs import updates_in; print(updates_in(Path(sys.argv[2]), float(sys.argv[3])))" \
        "$ROOT/benchmarks" "$dir/probe.log" "$hours")
    run_once "$dir" "pretrain $(basename "$dir") alone: roberta ${dims[*]}, $hours h, $updates updates" \
        "${model[@]}" --warmup-updates $((updates / 10)) --total-num-update "$updates" --max-update "$updates" \
        --stop-time-hours "$(python -c "print(float('$hours') * 1.1)")" --no-epoch-checkpoints \
        --save-interval-updates 500 --keep-interval-updates 1 --log-interval 25 --save-dir "$dir"
}

record() { python "$ROOT/benchmarks/bert_glue_record.py" "$@" --work "$WORK" --out "$OUT/runs"; }

for s in "$@"; do
    case $s in
        data|sweep|supernets|latency|search|picks|random|alone) "stage_$s" ;;
        index) record index --pred-dir "$PRED" ;;
        bow) python "$ROOT/benchmarks/glue_bow_baseline.py" --task SST-2 --train "$DATA/glue/SST-2/train.tsv" \
            --dev "$DATA/glue/SST-2/dev.tsv" --unseen "$WORK/text/SST-2.dev_unseen.tsv" \
            --clean-train "$WORK/text/SST-2.train_clean.tsv" --header --out "$OUT/bow_SST-2.json" ;;
        *) echo "unknown stage '$s' (data sweep supernets latency search picks random alone index bow)" >&2; exit 2 ;;
    esac
done
