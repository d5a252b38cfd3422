#!/usr/bin/env bash
# The Multi30k study: HAT's latency-BLEU result and MoS's Table 4 in BLEU, on one CPU.
# Multi30k En-De (train 29,000; valid = val 2016; test = test 2017 flickr; test1 = test 2017 mscoco)
# -> sentencepiece 8k joined -> recipe sweep on a stock transformer -> hand-designed baselines and
# the space's largest subnet trained alone -> latency of the space on this CPU + estimator ->
# supernets (neuron-wise MoS sandwich, SPOS; same updates and batch) -> latency of every trained
# baseline -> one search per supernet at 3 latency constraints -> every pick exported (inherited),
# retrained from scratch and fine-tuned from the inherited weights -> every model compared timed
# together, interleaved -> Table 4 (mos-nas gap) -> report.
#
# Usage: benchmarks/multi30k.sh STAGE [STAGE ...]
#   stages: data sweep standalone supernets record_supernets latency baseline_latency search picks inherited
#           retrain finetune pick_latency compare_latency table4 record keep report (all = every one in order); bf16_twin
#           (not in all)
# Every stage resumes: finished pieces are skipped (a `.done` marker or the output file), and
# fairseq-train continues from its checkpoint_last.pt. Run two lanes side by side, one thread each,
# pinned to a core, e.g.
#   M30K_ONLY="base_3x3" OMP_NUM_THREADS=1 taskset -c 0 benchmarks/multi30k.sh sweep &
#   M30K_ONLY="neuron spos" OMP_NUM_THREADS=1 taskset -c 1 benchmarks/multi30k.sh supernets &
# Settings (environment): M30K_WORK (runs/multi30k), M30K_DATA (../shared/data/multi30k-ende),
# M30K_PRESET (multi30k: configs/retrain/multi30k.yml, the recipe of every model trained alone),
# M30K_SUPERNET_EPOCHS (20), M30K_FINETUNE_EPOCHS (5), M30K_AVERAGE (5 last epoch checkpoints;
# 2 for fine-tuning), M30K_LAT_ARCHS (300 architectures measured), M30K_LAT_REPEATS (50),
# M30K_LEN (16: source and target tokens of the latency protocol, about Multi30k's mean length + EOS),
# M30K_CONSTRAINTS (default: the estimator's latencies of base_3x1, base_3x2 and base_3x3),
# M30K_LAT_ROUNDS (10: rounds of the interleaved measurement of stage compare_latency),
# M30K_SUPERNETS ("neuron spos"; add sandwich), M30K_SUPERNET_HOURS (empty: each supernet trains its epochs; a number:
# it also stops after that many hours of training, fairseq-train --stop-time-hours, resumed runs included: an SPOS
# supernet given the wall-clock of a sandwich one), M30K_SUPERNET_UPDATES (empty; a number: stop there, fairseq-train
# --max-update: a speed probe that sizes a unit, read from the log's train_inner lines, every 34 updates),
# M30K_SEARCH_ITERATIONS (20), M30K_SUPERNET_CORES (empty: one
# process, pinned by the caller; "0 1": each supernet trained by one gloo rank per core, the recipe's tokens per
# update split between them, same updates),
# M30K_ALONE_CORES (the same for every model trained alone: empty, one process; "0 1", one gloo rank per core),
# M30K_BF16 (1: every model trained alone and every supernet in bf16 mixed precision, fairseq-train --bf16;
# its run records the dtype), M30K_TWINS (base_3x3: the baselines that stage bf16_twin trains a second time in
# bf16, as NAME_bf16, beside their fp32 run, for the precision comparison of benchmarks/cpu_bf16_quality.py),
# M30K_ONLY (space-separated names: the training stages of this lane train only these),
# M30K_SUPERNET_SUFFIX (empty: appended to the names of the supernets' run files that stage record_supernets
# writes, RESULTS/supernets/NAME[SUFFIX][_bf16].json, e.g. _5ep for a short run beside the study's),
# M30K_PICKS (a directory of committed picks, [inherited_]SUPERNET_NAME.yml, used instead of the searches'
# picks: a study resumed on a machine without its searches), M30K_RESULTS (benchmarks/results/multi30k: stage record
# writes each finished model trained alone there, hyp/ and runs/NAME.json, stage report reads it), M30K_BLIND_BIN
# (WORK/blind: the blind sets' binaries of stage record),
# M30K_REPORT (benchmarks/results/multi30k.md); for a smoke test on other data (benchmarks/multi30k_smoke.sh):
# M30K_SAMPLES (benchmarks/multi30k_samples: the Table 4 samples, sample_*.yml, trained alone by stage standalone
# and scored inherited by stage inherited beside the baselines and the largest subnet);
# M30K_SPACE (multi30k_wide), M30K_BASELINES (benchmarks/multi30k_archs), M30K_VOCAB (8000).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=${M30K_WORK:-$ROOT/runs/multi30k}
DATA=${M30K_DATA:-$ROOT/../shared/data/multi30k-ende}
PRESET=${M30K_PRESET:-multi30k}
SPACE=${M30K_SPACE:-multi30k_wide}
VOCAB=${M30K_VOCAB:-8000}
SUPERNET_EPOCHS=${M30K_SUPERNET_EPOCHS:-20}
FINETUNE_EPOCHS=${M30K_FINETUNE_EPOCHS:-5}
AVERAGE=${M30K_AVERAGE:-5}
LAT_ARCHS=${M30K_LAT_ARCHS:-300}
LAT_REPEATS=${M30K_LAT_REPEATS:-50}
LAT_ROUNDS=${M30K_LAT_ROUNDS:-10}
LEN=${M30K_LEN:-16}
SEARCH_ITERATIONS=${M30K_SEARCH_ITERATIONS:-20}
read -r -a SUPERNETS <<< "${M30K_SUPERNETS:-neuron spos}"
read -r -a CORES <<< "${M30K_SUPERNET_CORES:-}"  # several: each supernet data-parallel, one rank per core
read -r -a ALONE_CORES <<< "${M30K_ALONE_CORES:-}"  # several: each model trained alone data-parallel
read -r -a TWINS <<< "${M30K_TWINS:-base_3x3}"
BF16=()
[ "${M30K_BF16:-0}" = 1 ] && BF16=(--bf16)
ONLY=${M30K_ONLY:-}
BIN=$WORK/bin
ARCHS=${M30K_BASELINES:-$ROOT/benchmarks/multi30k_archs}  # the hand-designed baselines (stock transformers in the space)
SAMPLES=${M30K_SAMPLES:-$ROOT/benchmarks/multi30k_samples}  # Table 4 samples (trained alone, scored inherited)
RESULTS=${M30K_RESULTS:-$ROOT/benchmarks/results/multi30k}  # the committed results (stage record writes there)
SUBSETS=(valid test test1)
declare -A REFS=([valid]=$DATA/valid.de [test]=$DATA/test.de [test1]=$DATA/test_mscoco.de)
PROTOCOL=(--threads 1 --repeats "$LAT_REPEATS" --warmup 5 --src-len "$LEN" --tgt-len "$LEN" --beam 4)
command -v mos-nas > /dev/null && python -c "import mos_fairseq" 2> /dev/null || {
    echo "mos-nas / mos_fairseq not found: activate the checkout's .venv (make setup; source .venv/bin/activate)" >&2
    exit 2; }
mkdir -p "$WORK"
# shellcheck source=benchmarks/lib.sh
source "$ROOT/benchmarks/lib.sh"

selected() { [ -z "$ONLY" ] || [[ " $ONLY " == *" $1 "* ]]; }
recipe_without() {  # the preset's fairseq-train options, one per line, without the given keys
    python -c "import sys; from mos_fairseq.translation.retrain import load_preset, preset_args; \
preset = {k: v for k, v in load_preset(sys.argv[1]).items() if k not in sys.argv[2:]}; \
print('\n'.join(preset_args(preset)))" "$PRESET" "$@"
}
recipe_value() {  # KEY: the preset's value of KEY
    python -c "import sys; from mos_fairseq.translation.retrain import load_preset; print(load_preset(sys.argv[1])[sys.argv[2]])" \
        "$PRESET" "$1"
}
commit_of() { git -C "$ROOT" rev-parse --short HEAD; }
write_commit() {  # DIR: DIR/commit, the code's commit, once (written whole: a failed git leaves no empty file)
    [ -s "$1/commit" ] && return
    commit_of > "$1/commit.tmp"
    mv "$1/commit.tmp" "$1/commit"
}

stage_data() {
    [ -f "$BIN/dict.en.txt" ] && return
    log "data: sentencepiece $VOCAB pieces (joined) + binaries from $DATA (test = flickr 2017, test1 = mscoco 2017)"
    mos-nas prepare-data --src en --tgt de --train "$DATA/train" --valid "$DATA/valid" \
        --test "$DATA/test" "$DATA/test_mscoco" --vocab-size "$VOCAB" --out "$BIN"
}

finish_model() {  # DIR N: average the last N epoch checkpoints, then BLEU of every subset (hypotheses kept)
    local dir=$1 n=$2
    [ -f "$dir/checkpoint_avg.pt" ] || mos-nas average --dir "$dir" --last "$n" --out "$dir/checkpoint_avg.pt"
    score_model "$dir/checkpoint_avg.pt" "$dir"
}

score_model() {  # CKPT DIR: DIR/bleu.SUBSET.json and DIR/hyp.SUBSET.txt for every subset
    local ckpt=$1 dir=$2
    for subset in "${SUBSETS[@]}"; do
        [ -f "$dir/bleu.$subset.json" ] && continue
        mos-nas bleu --path "$ckpt" --data "$BIN" --subset "$subset" --refs "${REFS[$subset]}" \
            --save-hyps "$dir/hyp.$subset.txt" --json > "$dir/bleu.$subset.json.tmp"
        mv "$dir/bleu.$subset.json.tmp" "$dir/bleu.$subset.json"
    done
}

train_alone() {  # NAME ARCH_YAML DIR [extra fairseq-train options]: from scratch with the recipe
    local name=$1 arch=$2 dir=$3
    shift 3
    [ -f "$dir/.done" ] && return
    claim "$dir" || { log "$name: trained by the other lane, skipped here"; return 0; }
    write_commit "$dir"
    [ -f "$dir/lscpu.txt" ] || lscpu > "$dir/lscpu.txt"  # the machine that trains it (stage record names it)
    cp "$arch" "$dir/arch.yml"
    local launch=() CORES=("${ALONE_CORES[@]}")  # data_parallel reads CORES and TOKENS
    if [ ${#CORES[@]} -gt 1 ]; then
        launch=(data_parallel)
        local TOKENS
        TOKENS=$(recipe_value max-tokens)
    fi
    run_once "$dir/train" "$name: from scratch, preset $PRESET $* on core(s) ${CORES[*]:-of the caller}" \
        "${launch[@]}" mos-nas retrain --arch "$arch" --data "$BIN" --save-dir "$dir" --preset "$PRESET" -- "$@" "${BF16[@]}"
    finish_model "$dir" "$AVERAGE"
    touch "$dir/.done"
    release
}

sweep_table() {  # the recipe variants of stage sweep: run name (sweep_DIR), baseline, fairseq-train options
    # (--no-KEY turns a switch of the preset off: the post-norm variants of the pre-norm recipe)
    cat <<'TABLE'
sweep_lr1e-3 base_3x3 --lr 1e-3 --warmup-updates 500
sweep_dropout0.2 base_3x3 --dropout 0.2
sweep_deep_6x2_postnorm deep_6x2 --no-encoder-normalize-before --no-decoder-normalize-before
sweep_deep_6x2_postnorm_lr1e-3 deep_6x2 --no-encoder-normalize-before --no-decoder-normalize-before --lr 1e-3
sweep_deep_6x1_postnorm deep_6x1 --no-encoder-normalize-before --no-decoder-normalize-before
sweep_base_3x1_postnorm base_3x1 --no-encoder-normalize-before --no-decoder-normalize-before
sweep_base_3x3_postnorm base_3x3 --no-encoder-normalize-before --no-decoder-normalize-before
TABLE
}

stage_sweep() {
    # the recipe sweep: the preset itself on the 3+3 stock transformer (it is also baseline base_3x3), then
    # each variant of sweep_table (learning rate / warm-up and dropout on 3+3; post-norm residual blocks, with
    # which the deep-encoder 6+2 falls behind as lr warms up to 2e-3, and post-norm at half the peak lr)
    selected base_3x3 && train_alone base_3x3 "$ARCHS/base_3x3.yml" "$WORK/standalone/base_3x3"
    local name base options
    while read -r name base options; do
        # shellcheck disable=SC2086
        selected "$name" && train_alone "$name" "$ARCHS/$base.yml" "$WORK/sweep/${name#sweep_}" $options
    done < <(sweep_table)
    return 0
}

table4_archs() {  # the architectures of Table 4 besides the picks: every baseline, the largest subnet, the samples
    mkdir -p "$WORK/archs"
    cp "$ARCHS"/*.yml "$WORK/archs/"
    [ -d "$SAMPLES" ] && find "$SAMPLES" -maxdepth 1 -name 'sample_*.yml' -exec cp {} "$WORK/archs/" \;
    [ -f "$WORK/archs/largest.yml" ] || mos-nas sample --space "$SPACE" --n 0 --largest --out "$WORK/archs" > /dev/null
}

stage_standalone() {  # every other baseline, the largest subnet and the Table 4 samples, trained alone with the recipe
    table4_archs
    for arch in "$WORK"/archs/*.yml; do
        local name
        name=$(basename "$arch" .yml)
        selected "$name" || continue
        train_alone "$name" "$arch" "$WORK/standalone/$name"
    done
}

supernet_options() {  # the only differences between the supernets
    case $1 in
        spos) echo "--supernet-sampling spos --mos none" ;;
        sandwich) echo "--supernet-sampling sandwich --sandwich-random 1 --mos none" ;;
        layer) echo "--supernet-sampling sandwich --sandwich-random 1 --mos layer" ;;
        neuron) echo "--supernet-sampling sandwich --sandwich-random 1 --mos neuron" ;;
        *) echo "unknown supernet '$1'" >&2; return 1 ;;
    esac
}

data_parallel() {  # COMMAND...: one process per core of $CORES (gloo ranks; M30K_SUPERNET_CORES or M30K_ALONE_CORES), the recipe's tokens per update
    # split evenly between them; rank 0 writes the log its caller reads, rank R its own train_rankR.log beside it
    local n=${#CORES[@]} port r pids=() status=0 dir
    dir=$(printf '%s\n' "$@" | grep -A1 -x -- --save-dir | tail -n 1)
    port=$(python -c "import socket; s = socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])")
    for r in $(seq 1 $((n - 1))); do
        taskset -c "${CORES[$r]}" "$@" --max-tokens $((TOKENS / n)) --distributed-world-size "$n" --distributed-rank "$r" \
            --distributed-backend gloo --ddp-backend legacy_ddp --distributed-init-method "tcp://127.0.0.1:$port" \
            --distributed-no-spawn >> "$dir/train_rank$r.log" 2>&1 &
        pids+=($!)
    done
    taskset -c "${CORES[0]}" "$@" --max-tokens $((TOKENS / n)) --distributed-world-size "$n" --distributed-rank 0 \
        --distributed-backend gloo --ddp-backend legacy_ddp --distributed-init-method "tcp://127.0.0.1:$port" \
        --distributed-no-spawn || status=$?
    for pid in "${pids[@]}"; do wait "$pid" || status=$?; done
    return $status
}

stage_bf16_twin() {  # each baseline of M30K_TWINS trained alone once more in bf16, as NAME_bf16
    local name
    for name in "${TWINS[@]}"; do
        selected "${name}_bf16" || continue
        [ -f "$ARCHS/$name.yml" ] || { echo "bf16 twin: '$name' is not a baseline of $ARCHS" >&2; exit 2; }
        train_alone "${name}_bf16" "$ARCHS/$name.yml" "$WORK/standalone/${name}_bf16" --bf16
    done
}

valid_archs_of_space() {  # WORK/valid_archs: the baselines of the supernets' space (the others cannot be validated in it)
    local archs
    mapfile -t archs < <(grep -l -x "space: $SPACE" "$ARCHS"/*.yml)
    [ ${#archs[@]} -gt 0 ] || { echo "no baseline of $ARCHS is in space '$SPACE'" >&2; exit 2; }
    mkdir -p "$WORK/valid_archs"
    cp "${archs[@]}" "$WORK/valid_archs/"
    local f  # a copy of an earlier version of this stage, of another space, goes
    for f in "$WORK"/valid_archs/*.yml; do grep -q -x "space: $SPACE" "$f" || rm -f "$f"; done
}

stage_supernets() {
    local options launch=()
    # the recipe without its criterion (supernets train with supernet_cross_entropy), its epochs and
    # epoch-checkpoint retention (one checkpoint_last.pt is enough to resume); with several cores, without its
    # tokens per update too (data_parallel splits them)
    if [ ${#CORES[@]} -gt 1 ]; then
        mapfile -t options < <(recipe_without criterion max-epoch keep-last-epochs max-tokens)
        TOKENS=$(recipe_value max-tokens)
        launch=(data_parallel)
    else
        mapfile -t options < <(recipe_without criterion max-epoch keep-last-epochs)
    fi
    [ ${#options[@]} -gt 4 ] || { echo "cannot read the options of preset '$PRESET'" >&2; exit 2; }
    [ -n "${M30K_SUPERNET_HOURS:-}" ] && options+=(--stop-time-hours "$M30K_SUPERNET_HOURS")
    [ -n "${M30K_SUPERNET_UPDATES:-}" ] && options+=(--max-update "$M30K_SUPERNET_UPDATES")
    valid_archs_of_space
    for name in "${SUPERNETS[@]}"; do
        selected "$name" || continue
        local dir=$WORK/supernets/$name
        [ -f "$dir/.done" ] && continue
        claim "$dir" || { log "supernet $name: trained by the other lane, skipped here"; continue; }
        write_commit "$dir"
        [ -f "$dir/lscpu.txt" ] || lscpu > "$dir/lscpu.txt"  # the machine that trains it (stage record names it)
        # shellcheck disable=SC2046,SC2086
        run_once "$dir" "supernet $name: $SUPERNET_EPOCHS epochs on core(s) ${CORES[*]:-of the caller} (resumes from checkpoint_last.pt)" \
            "${launch[@]}" fairseq-train "$BIN" --user-dir "$ROOT/user_dir" --task supernet_translation --arch supertransformer \
            --search-space "$SPACE" --criterion supernet_cross_entropy $(supernet_options "$name") "${options[@]}" \
            --max-epoch "$SUPERNET_EPOCHS" --no-epoch-checkpoints --valid-archs "$WORK/valid_archs" \
            --best-checkpoint-subnet largest --save-dir "$dir" "${BF16[@]}"
        release
    done
}

stage_record_supernets() {  # every finished supernet (M30K_ONLY: these): its run RESULTS/supernets/NAME.json
    local only=() name
    for name in "${SUPERNETS[@]}"; do
        selected "$name" || continue
        if [ -f "$WORK/supernets/$name/.done" ]; then only+=("$name"); else log "supernet $name: not finished, not recorded"; fi
    done
    [ ${#only[@]} -gt 0 ] || return 0
    python "$ROOT/benchmarks/multi30k_supernet_record.py" --work "$WORK" --results "$RESULTS" --preset "$PRESET" \
        --suffix "${M30K_SUPERNET_SUFFIX:-}" --only "${only[@]}"
}

stage_latency() {  # the space on this CPU (1 thread, pinned by the caller), then the estimator
    local lat=$WORK/latency
    mkdir -p "$lat"
    if [ ! -f "$lat/$SPACE.safetensors" ]; then
        log "latency: $LAT_ARCHS architectures of $SPACE ($LAT_REPEATS timed runs each, $LEN+$LEN tokens, beam 4)"
        mos-nas measure-latency --space "$SPACE" --data "$BIN" --n-archs "$LAT_ARCHS" "${PROTOCOL[@]}" --seed 1 \
            --out "$lat/$SPACE.csv" --no-progress
        mos-nas train-estimator --data "$lat/$SPACE.csv" --out "$lat/$SPACE.safetensors" \
            --report "$lat/$SPACE.report.json" > "$lat/$SPACE.estimator.log"
    fi
    lscpu > "$lat/lscpu.txt"
}

stage_baseline_latency() {  # every model trained alone, as trained (stock transformer or static), same protocol
    local ckpts=()
    for dir in "$WORK"/standalone/*/; do
        [ -f "$dir/checkpoint_avg.pt" ] && ckpts+=("$dir/checkpoint_avg.pt")
    done
    log "latency of ${#ckpts[@]} trained models"
    mos-nas measure-latency --checkpoint "${ckpts[@]}" "${PROTOCOL[@]}" --out "$WORK/latency/models.json"
}

# M30K_CONSTRAINTS, else the estimator's latencies of three baselines (ms, 1 decimal): the baselines on the
# scale the search works in. Not their measured latencies: on a host whose speed drifts by 20-60% within
# minutes (this study's machine), one pass over them is no constraint; stage compare_latency times every
# model compared together, interleaved, and that is the latency axis of the report.
latency_constraints() {
    if [ -n "${M30K_CONSTRAINTS:-}" ]; then echo "$M30K_CONSTRAINTS"; return; fi
    python - "$WORK/latency/$SPACE.safetensors" "$ARCHS" <<'PY'
import sys
from pathlib import Path
from mos_fairseq.latency.estimator import LatencyEstimator
from mos_fairseq.translation.architecture import Architecture
estimator, archs = LatencyEstimator.load(sys.argv[1]), Path(sys.argv[2])
print(" ".join(f"{estimator.predict_arch(Architecture.load(archs / f'base_3x{n}.yml')):.1f}" for n in (1, 2, 3)))
PY
}

stage_search() {
    local constraints
    constraints=$(latency_constraints)
    for name in "${SUPERNETS[@]}"; do
        local out=$WORK/search/$name
        [ -f "$out/summary.json" ] && continue
        log "search $name: latency <= $constraints ms"
        local resume=()
        [ -d "$out" ] && resume=(--resume)
        # shellcheck disable=SC2086
        mos-nas search --checkpoint "$WORK/supernets/$name/checkpoint_last.pt" --data "$BIN" \
            --estimator "$WORK/latency/$SPACE.safetensors" --latency-constraint $constraints \
            --iterations "$SEARCH_ITERATIONS" --population 40 --parents 10 --mutation 15 --crossover 15 \
            --seed 1 --out "$out" --verify-latency --no-progress "${resume[@]}"
    done
}

picks() {  # one line per pick: SUPERNET NAME ARCH_YAML (the searches' or, with M30K_PICKS, the committed ones)
    python - "$WORK" "${M30K_PICKS:-}" "${SUPERNETS[@]}" <<'PY'
import json, sys
from pathlib import Path
work, committed = Path(sys.argv[1]), sys.argv[2]
for sup in sys.argv[3:]:
    if committed:
        seen = set()
        for arch in sorted(Path(committed).glob(f"*{sup}_*.yml")):
            name = arch.stem.removeprefix("inherited_")
            if name.startswith(f"{sup}_") and name not in seen:
                seen.add(name)
                print(sup, name, arch)
        continue
    summary = work / "search" / sup / "summary.json"
    if not summary.is_file():
        continue
    for entry in json.loads(summary.read_text()):
        print(sup, f"{sup}_{Path(entry['arch']).stem}", work / "search" / sup / entry["arch"])
PY
}

pick_twin() {  # KIND SUPERNET ARCH_YAML: a finished picks/ or finetune/ directory of the same supernet and architecture
    python - "$WORK/$1" "$2" "$3" <<'PY'
import sys
from pathlib import Path
from mos_fairseq.translation.architecture import Architecture
root, sup, want = Path(sys.argv[1]), sys.argv[2], Architecture.load(sys.argv[3]).to_json()
for d in sorted(root.glob(f"{sup}_*")):
    if not d.is_symlink() and (d / ".done").exists() and Architecture.load(d.parent.parent / "picks" / d.name / "arch.yml").to_json() == want:
        print(d)
        break
PY
}

link_twin() {  # KIND SUPERNET NAME ARCH_YAML: link KIND/NAME to a finished twin; false if there is none
    local twin
    [ -e "$WORK/$1/$3" ] && return 1
    twin=$(pick_twin "$1" "$2" "$4")
    [ -n "$twin" ] || return 1
    log "$1 $3: the same architecture as $(basename "$twin") of the same supernet, not done again"
    ln -s "$twin" "$WORK/$1/$3"
}

stage_picks() {  # export every pick (inherited weights) and score it as it is
    mkdir -p "$WORK/picks"
    while read -r sup name arch; do
        local dir=$WORK/picks/$name
        [ -f "$dir/.done" ] && continue
        [ -f "$WORK/supernets/$sup/.done" ] || { log "pick $name: supernet $sup not trained yet, skipped"; continue; }
        link_twin picks "$sup" "$name" "$arch" && continue
        claim "$dir" || { log "pick $name: exported by the other lane, skipped here"; continue; }
        log "pick $name: export and inherited BLEU"
        export_and_score "$sup" "$arch" "$dir"
        release
    done < <(picks)
}

export_and_score() {  # SUPERNET ARCH_YAML DIR: the subnet exported (DIR/export), its BLEU on every subset and its
    # validation nll inside the supernet (DIR/valid_loss.json, bits), then DIR/.done; each piece resumes
    local ckpt=$WORK/supernets/$1/checkpoint_last.pt arch=$2 dir=$3
    mkdir -p "$dir"
    cp "$arch" "$dir/arch.yml"
    [ -f "$dir/export/checkpoint.pt" ] || mos-nas export --checkpoint "$ckpt" --arch "$arch" --data "$BIN" \
        --out "$dir/export" --overwrite > "$dir/export.log"
    score_model "$dir/export/checkpoint.pt" "$dir"
    if [ ! -f "$dir/valid_loss.json" ]; then
        mos-nas evaluate --checkpoint "$ckpt" --arch "$arch" --data "$BIN" --no-bleu --json > "$dir/valid_loss.json.tmp"
        mv "$dir/valid_loss.json.tmp" "$dir/valid_loss.json"
    fi
    touch "$dir/.done"
}

stage_inherited() {  # Table 4's other architectures (baselines, largest, samples) exported from each supernet and
    # scored as they are, in WORK/inherited/SUPERNET_NAME (the picks' own rows are stage picks'), for stage record
    table4_archs
    mkdir -p "$WORK/inherited"
    local sup arch name
    for sup in "${SUPERNETS[@]}"; do
        [ -f "$WORK/supernets/$sup/.done" ] || { log "inherited: supernet $sup not trained yet, skipped"; continue; }
        for arch in "$WORK"/archs/*.yml; do
            grep -q -x "space: $SPACE" "$arch" || continue  # another space's architecture is not in this supernet
            name=$(basename "$arch" .yml)
            local dir=$WORK/inherited/${sup}_$name
            [ -f "$dir/.done" ] && continue
            claim "$dir" || { log "inherited ${sup}_$name: scored by the other lane, skipped here"; continue; }
            log "inherited ${sup}_$name: export and inherited BLEU"
            export_and_score "$sup" "$arch" "$dir"
            release
        done
    done
}

trained_twin() {  # ARCH_YAML: a model trained alone (done) with the same architecture, if any
    python - "$1" "$WORK"/standalone/*/arch.yml <<'PY'
import sys
from pathlib import Path
from mos_fairseq.translation.architecture import Architecture
want = Architecture.load(sys.argv[1]).to_json()
for other in sys.argv[2:]:
    if (Path(other).parent / ".done").exists() and Architecture.load(other).to_json() == want:
        print(Path(other).parent)
        break
PY
}

stage_retrain() {  # every pick from scratch with the baselines' recipe (one run per distinct architecture)
    while read -r sup name arch; do
        selected "$name" || continue
        local dir=$WORK/standalone/$name twin
        twin=$(trained_twin "$arch")
        if [ ! -e "$dir" ] && [ -n "$twin" ]; then  # the same architecture was trained alone already
            log "retrain $name: same architecture as $(basename "$twin"), not trained again"
            ln -s "$twin" "$dir"
            continue
        fi
        train_alone "$name" "$arch" "$dir"
    done < <(picks)
}

stage_finetune() {  # every pick from its inherited weights, a quarter of the recipe's epochs
    while read -r sup name arch; do
        selected "$name" || continue
        local dir=$WORK/finetune/$name
        [ -f "$dir/.done" ] && continue
        [ -f "$WORK/picks/$name/.done" ] || { log "finetune $name: not exported yet, skipped"; continue; }
        mkdir -p "$WORK/finetune"
        link_twin finetune "$sup" "$name" "$arch" && continue
        claim "$dir" || { log "finetune $name: done by the other lane, skipped here"; continue; }
        write_commit "$dir"
        run_once "$dir/train" "finetune $name: $FINETUNE_EPOCHS epochs from the inherited weights" \
            mos-nas retrain --export-dir "$WORK/picks/$name/export" --data "$BIN" --save-dir "$dir" --preset "$PRESET" \
            -- --max-epoch "$FINETUNE_EPOCHS"
        finish_model "$dir" $((FINETUNE_EPOCHS < 2 ? FINETUNE_EPOCHS : 2))  # the last 2 epochs (or the one)
        touch "$dir/.done"
        release
    done < <(picks)
}

stage_pick_latency() {  # the picks as deployed (exports), the same protocol as the baselines
    local ckpts=()
    for dir in "$WORK"/picks/*/; do [ -L "${dir%/}" ] || ckpts+=("$dir/export/checkpoint.pt"); done
    log "latency of ${#ckpts[@]} exported picks"
    mos-nas measure-latency --checkpoint "${ckpts[@]}" "${PROTOCOL[@]}" --out "$WORK/latency/models.json"
}

# Every baseline, model trained alone and pick export, timed together, interleaved; and each baseline's
# architecture as our static model too (exported from a supernet: weights do not matter for latency),
# so that the baselines' curve can be drawn with the implementation the picks run on.
stage_compare_latency() {
    local ckpts=() arch name
    mkdir -p "$WORK/latency/static"
    for arch in "$ARCHS"/*.yml; do
        name=$(basename "$arch" .yml)
        local static=$WORK/latency/static/$name
        [ -f "$static/checkpoint.pt" ] || mos-nas export --checkpoint "$WORK/supernets/${SUPERNETS[0]}/checkpoint_last.pt" \
            --arch "$arch" --data "$BIN" --out "$static" --overwrite > /dev/null
        ckpts+=("$static/checkpoint.pt")
    done
    for dir in "$WORK"/standalone/*/ "$WORK"/picks/*/; do
        [ -L "${dir%/}" ] && continue  # the same model as another row
        for f in "$dir/checkpoint_avg.pt" "$dir/export/checkpoint.pt"; do [ -f "$f" ] && ckpts+=("$f"); done
    done
    log "latency of ${#ckpts[@]} models, timed together over $LAT_ROUNDS interleaved rounds"
    mos-nas measure-latency --checkpoint "${ckpts[@]}" "${PROTOCOL[@]}" --rounds "$LAT_ROUNDS" \
        --out "$WORK/latency/compared.json"
    lscpu > "$WORK/latency/compared.lscpu.txt"
}

stage_table4() {  # inherited vs trained alone for every architecture trained alone (MoS Table 4)
    local t4=$WORK/table4 ckpts=()
    mkdir -p "$t4/archs" "$t4/standalone"
    for dir in "$WORK"/standalone/*/; do
        local name
        name=$(basename "$dir")
        [ -f "$dir/checkpoint_avg.pt" ] || continue
        [ -L "${dir%/}" ] && continue  # a pick whose architecture another row already holds
        cp "$dir/arch.yml" "$t4/archs/$name.yml"
        mkdir -p "$t4/standalone/$name"
        ln -sf "$(cd "$dir" && pwd)/checkpoint_avg.pt" "$t4/standalone/$name/checkpoint_best.pt"
    done
    for name in "${SUPERNETS[@]}"; do ckpts+=("$WORK/supernets/$name/checkpoint_last.pt"); done
    log "table4: ${#ckpts[@]} supernets x $(ls "$t4"/archs/*.yml | wc -l) architectures"
    mos-nas gap --supernet "${ckpts[@]}" --archs "$t4/archs" --standalone "$t4/standalone" --data "$BIN" \
        --bleu-subset test --loss-subset valid --out "$t4/gap"
}

stage_record() {  # every finished model trained alone (M30K_ONLY: these): its hypotheses committed, the blind
    # sets translated (binaries in M30K_BLIND_BIN, default WORK/blind), its run RESULTS/runs/NAME.json
    local only=()
    [ -z "$ONLY" ] || read -r -a only <<< "$ONLY"
    python "$ROOT/benchmarks/multi30k_record.py" --work "$WORK" --data "$DATA" --results "$RESULTS" \
        --baselines "$ARCHS" --preset "$PRESET" --blind-bin "${M30K_BLIND_BIN:-$WORK/blind}" --only "${only[@]}"
}

stage_keep() {  # a supernet unit's small outputs into RESULTS, to commit: per supernet searched, RESULTS/search/SUPERNET/
    # (the search's summary, candidates, Pareto set and statistics; the latency dataset of this machine it searched
    # with, the estimator's report, the constraints) and its picks' architectures RESULTS/picks/SUPERNET_NAME.yml
    # (M30K_PICKS of a later unit R). A file already there from another search is refused, nothing copied.
    local sup
    for sup in "${SUPERNETS[@]}"; do
        local src=$WORK/search/$sup out=$RESULTS/search/$sup
        [ -f "$src/summary.json" ] || continue
        local pairs=("$src/summary.json" summary.json "$src/candidates.csv" candidates.csv "$src/pareto.csv" pareto.csv
            "$src/search_stats.json" search_stats.json "$WORK/latency/$SPACE.csv" latency_dataset.csv
            "$WORK/latency/$SPACE.json" latency_dataset.json "$WORK/latency/$SPACE.report.json" estimator_report.json
            "$WORK/latency/lscpu.txt" lscpu.txt) i
        for ((i = 0; i < ${#pairs[@]}; i += 2)); do
            [ ! -f "$out/${pairs[i + 1]}" ] || cmp -s "${pairs[i]}" "$out/${pairs[i + 1]}" || {
                echo "keep: $out/${pairs[i + 1]} holds another search's file; move it away first" >&2; exit 1; }
        done
        mkdir -p "$out" "$RESULTS/picks"
        for ((i = 0; i < ${#pairs[@]}; i += 2)); do [ -f "${pairs[i]}" ] && cp "${pairs[i]}" "$out/${pairs[i + 1]}"; done
        latency_constraints > "$out/constraints_ms.txt"
        local name arch
        while read -r _ name arch; do cp "$arch" "$RESULTS/picks/$name.yml"; done < <(M30K_PICKS="" picks | grep "^$sup ")
        log "keep: $out and the picks of $sup in $RESULTS/picks"
    done
}

stage_report() {
    python "$ROOT/benchmarks/multi30k_report.py" --results "$RESULTS" --out "${M30K_REPORT:-$ROOT/benchmarks/results/multi30k.md}" \
        --conclusion "$ROOT/benchmarks/multi30k_notes.md"
}

main() {
    [ $# -gt 0 ] || { sed -n '2,/^set -euo pipefail/{/^set/!p}' "$0"; exit 2; }  # the header
    local all=(data sweep standalone supernets record_supernets latency baseline_latency search picks inherited retrain finetune pick_latency
        compare_latency table4 record keep report)
    local stages=("$@")
    [ "$1" = all ] && stages=("${all[@]}")
    for s in "${stages[@]}"; do
        if [[ " ${all[*]} bf16_twin " == *" $s "* ]]; then "stage_$s"; else
            echo "unknown stage '$s' (${all[*]} all bf16_twin)" >&2; exit 2
        fi
    done
}
# one line, read whole before it runs: editing this file while a lane runs cannot change what it does
main "$@"; exit $?
