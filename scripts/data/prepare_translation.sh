#!/usr/bin/env bash
# Data recipes: raw parallel text -> joint sentencepiece + fairseq binaries (mos-nas prepare-data).
#
#   bash scripts/data/prepare_translation.sh wmt14_en_de   data/wmt14_en_de   # HAT / MoS WMT'14 En-De
#   bash scripts/data/prepare_translation.sh wmt14_en_fr   data/wmt14_en_fr
#   bash scripts/data/prepare_translation.sh wmt19_en_de   data/wmt19_en_de
#   bash scripts/data/prepare_translation.sh iwslt14_de_en data/iwslt14_de_en
#   bash scripts/data/prepare_translation.sh local data/mt_ende RAW_DIR SRC TGT [VOCAB]   # files already here
#
# Only the download step needs the internet: it fills OUT/raw/{train,valid,test}.{src,tgt} (plain
# text, one sentence per line) and is skipped when those files exist, so you may put them there
# yourself. Dev/test sets come from sacreBLEU's catalogue (the official newstest files). Every later
# step works from local files. VOCAB defaults: 32000 (WMT), 10000 (IWSLT); WORKERS=N for preprocessing.
set -euo pipefail
NAME=${1:?usage: prepare_translation.sh NAME OUT_DIR [RAW_DIR SRC TGT [VOCAB]]}
OUT=${2:?usage: prepare_translation.sh NAME OUT_DIR}
RAW="$OUT/raw"
WORKERS=${WORKERS:-2}
mkdir -p "$RAW" "$OUT/download"
DL="$OUT/download"

fetch() { [ -s "$DL/$(basename "$1")" ] || curl -fL --retry 3 -o "$DL/$(basename "$1")" "$1"; }
testset() {  # sacreBLEU test set -> RAW/SPLIT.{src,tgt}
    local set=$1 pair=$2 split=$3 src=$4 tgt=$5
    sacrebleu -t "$set" -l "$pair" --echo src > "$RAW/$split.$src"
    sacrebleu -t "$set" -l "$pair" --echo ref > "$RAW/$split.$tgt"
}
concat() {  # concat SRC TGT FILE_PREFIX... -> RAW/train.{src,tgt}
    local src=$1 tgt=$2; shift 2
    : > "$RAW/train.$src"; : > "$RAW/train.$tgt"
    for prefix in "$@"; do cat "$prefix.$src" >> "$RAW/train.$src"; cat "$prefix.$tgt" >> "$RAW/train.$tgt"; done
}

case "$NAME" in
  wmt14_en_de)
    SRC=en; TGT=de; VOCAB=${3:-32000}
    if [ ! -s "$RAW/train.$SRC" ]; then
      for u in http://statmt.org/wmt13/training-parallel-europarl-v7.tgz \
               http://statmt.org/wmt13/training-parallel-commoncrawl.tgz \
               http://statmt.org/wmt14/training-parallel-nc-v9.tgz; do fetch "$u"; tar -xzf "$DL/$(basename "$u")" -C "$DL"; done
      concat en de "$DL/training/europarl-v7.de-en" "$DL/commoncrawl.de-en" "$DL/training/news-commentary-v9.de-en"
      testset wmt13 en-de valid en de
      testset wmt14/full en-de test en de
    fi ;;
  wmt14_en_fr)
    SRC=en; TGT=fr; VOCAB=${3:-32000}
    if [ ! -s "$RAW/train.$SRC" ]; then
      for u in http://statmt.org/wmt13/training-parallel-europarl-v7.tgz \
               http://statmt.org/wmt13/training-parallel-commoncrawl.tgz \
               http://statmt.org/wmt13/training-parallel-un.tgz \
               http://statmt.org/wmt14/training-parallel-nc-v9.tgz \
               http://statmt.org/wmt10/training-giga-fren.tar; do
        fetch "$u"; tar -xf "$DL/$(basename "$u")" -C "$DL"
      done
      gunzip -kf "$DL"/giga-fren.release2.fixed.*.gz
      concat en fr "$DL/training/europarl-v7.fr-en" "$DL/commoncrawl.fr-en" "$DL/un/undoc.2000.fr-en" \
        "$DL/training/news-commentary-v9.fr-en" "$DL/giga-fren.release2.fixed"
      testset wmt13 en-fr valid en fr
      testset wmt14/full en-fr test en fr
    fi ;;
  wmt19_en_de)
    SRC=en; TGT=de; VOCAB=${3:-32000}
    if [ ! -s "$RAW/train.$SRC" ]; then
      fetch http://statmt.org/wmt13/training-parallel-commoncrawl.tgz; tar -xzf "$DL/training-parallel-commoncrawl.tgz" -C "$DL"
      for u in http://www.statmt.org/europarl/v9/training/europarl-v9.de-en.tsv.gz \
               http://data.statmt.org/news-commentary/v14/training/news-commentary-v14.de-en.tsv.gz; do
        fetch "$u"
        n=$(basename "$u" .tsv.gz)
        zcat "$DL/$n.tsv.gz" | awk -F'\t' 'NF==2 && $1!="" && $2!=""' > "$DL/$n.tsv"
        cut -f1 "$DL/$n.tsv" > "$DL/$n.de"; cut -f2 "$DL/$n.tsv" > "$DL/$n.en"
      done
      concat en de "$DL/commoncrawl.de-en" "$DL/europarl-v9.de-en" "$DL/news-commentary-v14.de-en"
      testset wmt18 en-de valid en de
      testset wmt19 en-de test en de
    fi ;;
  iwslt14_de_en)
    SRC=de; TGT=en; VOCAB=${3:-10000}
    if [ ! -s "$RAW/train.$SRC" ]; then
      fetch http://dl.fbaipublicfiles.com/fairseq/data/iwslt14/de-en.tgz
      tar -xzf "$DL/de-en.tgz" -C "$DL"
      python - "$DL/de-en" "$RAW" <<'PY'
import re, sys
from pathlib import Path
src_dir, raw = Path(sys.argv[1]), Path(sys.argv[2])
def tags(path):  # train.tags: drop XML metadata lines
    return [l.strip() for l in path.read_text(encoding="utf-8").splitlines() if l.strip() and not l.lstrip().startswith("<")]
def segs(paths):  # dev/test XML: the <seg> contents
    out = []
    for p in paths:
        out += [re.sub(r"</?seg[^>]*>", "", l).strip() for l in p.read_text(encoding="utf-8").splitlines() if "<seg" in l]
    return out
for lang in ("de", "en"):
    (raw / f"train.{lang}").write_text("\n".join(tags(src_dir / f"train.tags.de-en.{lang}")) + "\n", encoding="utf-8")
    dev = sorted(src_dir.glob(f"IWSLT14.TED.dev2010.de-en.{lang}.xml"))
    test = sorted(src_dir.glob(f"IWSLT14.TED*tst201[0-2].de-en.{lang}.xml"))
    (raw / f"valid.{lang}").write_text("\n".join(segs(dev)) + "\n", encoding="utf-8")
    (raw / f"test.{lang}").write_text("\n".join(segs(test)) + "\n", encoding="utf-8")
PY
    fi ;;
  local)
    RAW_IN=${3:?local needs RAW_DIR SRC TGT}; SRC=${4:?}; TGT=${5:?}; VOCAB=${6:-32000}
    RAW=$RAW_IN ;;
  *) echo "unknown corpus '$NAME' (wmt14_en_de, wmt14_en_fr, wmt19_en_de, iwslt14_de_en, local)" >&2; exit 2 ;;
esac

for split in train valid test; do
  for lang in "$SRC" "$TGT"; do [ -s "$RAW/$split.$lang" ] || { echo "missing $RAW/$split.$lang" >&2; exit 2; }; done
done
mos-nas prepare-data --src "$SRC" --tgt "$TGT" --train "$RAW/train" --valid "$RAW/valid" --test "$RAW/test" \
  --vocab-size "$VOCAB" --workers "$WORKERS" --out "$OUT/bin"
echo "binaries, dictionary and spm.model in $OUT/bin"
