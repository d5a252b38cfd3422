"""``mos-nas prepare-data``: raw parallel text -> joint sentencepiece -> fairseq binaries.

Writes into a temporary directory beside ``out`` and renames it into place at the end, so a
failed run never leaves a half-written data directory. The output holds ``dict.{src,tgt}.txt``
(one joined dictionary), the ``{split}.{src}-{tgt}.{lang}.{bin,idx}`` files and ``spm.model``;
several test sets are named as ``fairseq-preprocess --testpref a,b`` names them (``test``, ``test1``, ...).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Sequence

from mos_fairseq.base.errors import DataError


def _count_lines(path: Path) -> int:
    with path.open("rb") as fh:
        return sum(1 for _ in fh)


def check_parallel(prefix: str, src: str, tgt: str) -> int:
    """Both sides exist, are non-empty and have the same number of lines; returns that number."""
    counts = []
    for lang in (src, tgt):
        path = Path(f"{prefix}.{lang}")
        if not path.is_file():
            raise DataError(f"missing corpus file {path}")
        counts.append(_count_lines(path))
    if counts[0] == 0:
        raise DataError(f"corpus {prefix}.{{{src},{tgt}}} is empty")
    if counts[0] != counts[1]:
        raise DataError(f"{prefix}.{src} has {counts[0]} lines but {prefix}.{tgt} has {counts[1]}")
    return counts[0]


def train_sentencepiece(files: list[Path], vocab_size: int, model_prefix: Path, seed: int = 1) -> Path:
    import sentencepiece as spm

    spm.set_random_generator_seed(seed)
    try:
        spm.SentencePieceTrainer.train(
            input=",".join(str(f) for f in files),
            model_prefix=str(model_prefix),
            vocab_size=vocab_size,
            model_type="unigram",
            character_coverage=1.0,
            input_sentence_size=2_000_000,
            shuffle_input_sentence=True,
            num_threads=1,
            bos_id=-1,
            eos_id=-1,
            pad_id=-1,
            unk_id=0,
            minloglevel=2,
        )
    except RuntimeError as exc:
        raise DataError(f"sentencepiece training failed: {str(exc).splitlines()[0]}") from None
    return model_prefix.with_suffix(".model")


def encode_file(model: Path, src: Path, dst: Path) -> None:
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=str(model))
    with src.open(encoding="utf-8") as fin, dst.open("w", encoding="utf-8") as fout:
        for line in fin:
            fout.write(" ".join(sp.encode(line.rstrip("\n"), out_type=str)) + "\n")


def prepare_parallel(
    src: str,
    tgt: str,
    train: str,
    valid: str,
    test: str | Sequence[str] | None,
    vocab_size: int,
    out: str | Path,
    workers: int = 1,
    overwrite: bool = False,
) -> Path:
    out = Path(out)
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise DataError(f"output directory {out} is not empty (pass --overwrite to replace it)")
    if vocab_size < 8:
        raise DataError(f"--vocab-size must be at least 8, got {vocab_size}")
    splits = {"train": train, "valid": valid}
    tests = [test] if isinstance(test, str) else list(test or [])
    for i, prefix in enumerate(tests):  # fairseq's names for several test sets: test, test1, test2, ...
        splits[f"test{i or ''}"] = prefix
    for prefix in splits.values():
        check_parallel(prefix, src, tgt)
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        model = train_sentencepiece([Path(f"{train}.{src}"), Path(f"{train}.{tgt}")], vocab_size, work / "spm")
        pieces = work / "pieces"
        pieces.mkdir()
        for split, prefix in splits.items():
            for lang in (src, tgt):
                encode_file(model, Path(f"{prefix}.{lang}"), pieces / f"{split}.{lang}")
        options = ["--source-lang", src, "--target-lang", tgt, "--joined-dictionary"]
        binarize_into(work, pieces, list(splits), options, workers, out)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return out


def binarize_into(work: Path, pieces: Path, splits: list[str], options: list[str], workers: int, out: Path) -> None:
    """``fairseq-preprocess`` the encoded ``pieces/{split}`` files into ``work/bin``, add the
    sentencepiece model, and move the result onto ``out`` (replacing it)."""
    dest = work / "bin"
    cmd = [sys.executable, "-m", "fairseq_cli.preprocess", *options, "--destdir", str(dest), "--workers", str(workers)]
    tests = [str(pieces / split) for split in splits if split.startswith("test")]  # test, test1, ... in order
    for split in splits:
        if not split.startswith("test"):
            cmd += [f"--{split}pref", str(pieces / split)]
    if tests:
        cmd += ["--testpref", ",".join(tests)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        raise DataError(f"fairseq-preprocess failed: {tail[0]}")
    shutil.copy(work / "spm.model", dest / "spm.model")
    shutil.copy(work / "spm.vocab", dest / "spm.vocab")
    (dest / "preprocess.log").unlink(missing_ok=True)
    if out.exists():
        shutil.rmtree(out)
    dest.replace(out)


def prepare_mlm(
    train: str | list[str],
    valid: str,
    test: str | None,
    vocab_size: int | None,
    out: str | Path,
    workers: int = 1,
    overwrite: bool = False,
    vocabulary_from: str | Path | None = None,
) -> Path:
    """Monolingual text (one sentence or paragraph per line) -> sentencepiece -> fairseq binaries for
    ``masked_lm`` (``dict.txt``, ``{train,valid,test}.{bin,idx}``, ``spm.model``). Blank lines
    (document breaks) are kept: fairseq's ``--sample-break-mode complete_doc`` uses them. Several
    training files are read in order as one text. ``vocabulary_from`` (an earlier output) reuses its
    ``spm.model`` and ``dict.txt`` instead of training a vocabulary, so that binaries of other text
    share one vocabulary (and one export can be fine-tuned from either)."""
    out = Path(out)
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise DataError(f"output directory {out} is not empty (pass --overwrite to replace it)")
    vocabulary = _reused_vocabulary(vocabulary_from, vocab_size)
    trains = [Path(t) for t in ([train] if isinstance(train, (str, Path)) else train)]
    splits = {"train": trains, "valid": [Path(valid)], **({"test": [Path(test)]} if test else {})}
    for split, paths in splits.items():
        for path in paths:
            _check_text(split, path)
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        if vocabulary is None:
            model = train_sentencepiece(trains, int(vocab_size or 0), work / "spm")
            options = ["--only-source"]
        else:
            for suffix in (".model", ".vocab"):
                shutil.copy(vocabulary / f"spm{suffix}", work / f"spm{suffix}")
            model, options = work / "spm.model", ["--only-source", "--srcdict", str(vocabulary / "dict.txt")]
        pieces = work / "pieces"
        pieces.mkdir()
        for split, paths in splits.items():
            _encode_files(model, paths, pieces / split, work)
        binarize_into(work, pieces, list(splits), options, workers, out)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return out


def _reused_vocabulary(vocabulary_from: str | Path | None, vocab_size: int | None) -> Path | None:
    """The directory whose ``spm.model``/``spm.vocab``/``dict.txt`` are reused, or None to train one."""
    if vocabulary_from is None:
        if vocab_size is None or vocab_size < 8:
            raise DataError(f"--vocab-size must be at least 8, got {vocab_size}")
        return None
    if vocab_size is not None:
        raise DataError("give either --vocab-size (train a vocabulary) or --vocabulary-from (reuse one), not both")
    source = Path(vocabulary_from)
    for name in ("spm.model", "spm.vocab", "dict.txt"):
        if not (source / name).is_file():
            raise DataError(f"--vocabulary-from '{source}' has no {name} (give an earlier prepare-mlm output)")
    return source


def _check_text(split: str, path: Path) -> None:
    if not path.is_file():
        raise DataError(f"missing {split} text file {path}")
    with path.open(encoding="utf-8", errors="replace") as fh:
        if not any(line.strip() for line in fh):
            raise DataError(f"{split} text file {path} is empty")


def _encode_files(model: Path, paths: list[Path], dst: Path, work: Path) -> None:
    """Encode ``paths`` in order into the one pieces file ``dst``."""
    if len(paths) == 1:
        encode_file(model, paths[0], dst)
        return
    with dst.open("w", encoding="utf-8") as joined:
        for i, path in enumerate(paths):
            part = work / f"{dst.name}.part{i}"
            encode_file(model, path, part)
            with part.open(encoding="utf-8") as fh:
                shutil.copyfileobj(fh, joined)
            part.unlink()
