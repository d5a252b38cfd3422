"""BLEU of a translation checkpoint: ``fairseq-generate`` with HAT's settings, then sacreBLEU.

The last step of the pipeline (after export or retraining). ``fairseq-generate`` runs with beam 4
and length penalty 0.6 (HAT's test settings) and ``--remove-bpe sentencepiece``; hypotheses and
references are read back in sentence order and scored twice: detokenised sacreBLEU (the number
to report, with its signature) and HAT-comparable tokenised BLEU (13a-tokenised text, German
compounds split as ``##AT##-##AT##`` like HAT's and fairseq's ``compound_split_bleu.sh``, then
BLEU without further tokenisation).

In this process (:func:`model_bleu`, :func:`subnet_bleu`): the same beam search with fairseq's
``SequenceGenerator`` over fixed validation batches, for ``mos-nas evaluate`` and ``mos-nas gap``.
"""

from __future__ import annotations

import math
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mos_fairseq.base.errors import DataError, UserError
from mos_fairseq.core.validation import ValidationBatches

GENERATE_SETTINGS = ("--beam", "4", "--lenpen", "0.6")


@dataclass(frozen=True)
class BleuResult:
    sacrebleu: float
    signature: str
    tokenized_bleu: float
    sentences: int

    def describe(self) -> str:
        return (
            f"BLEU {self.sacrebleu:.2f} (sacreBLEU, detokenised; {self.signature}) | tokenised BLEU "
            f"{self.tokenized_bleu:.2f} (13a + compound splitting, HAT-comparable) | {self.sentences} sentences"
        )


def compound_split(line: str) -> str:
    """HAT/fairseq compound splitting: ``Haus-Boot`` -> ``Haus ##AT##-##AT## Boot``."""
    return re.sub(r"(\S)-(\S)", r"\1 ##AT##-##AT## \2", line)


def score(hyps: list[str], refs: list[str], target_lang: str = "de") -> BleuResult:
    from sacrebleu.metrics import BLEU
    from sacrebleu.tokenizers.tokenizer_13a import Tokenizer13a

    if not hyps:
        raise DataError("no hypotheses to score")
    if len(hyps) != len(refs):
        raise DataError(f"{len(hyps)} hypotheses but {len(refs)} references")
    detok = BLEU()
    detok_score = detok.corpus_score(hyps, [refs])
    tok = Tokenizer13a()
    split = compound_split if target_lang == "de" else (lambda s: s)
    tok_hyps = [split(tok(h)) for h in hyps]
    tok_refs = [split(tok(r)) for r in refs]
    tokenized = BLEU(tokenize="none", force=True).corpus_score(tok_hyps, [tok_refs])
    return BleuResult(float(detok_score.score), str(detok.get_signature()), float(tokenized.score), len(hyps))


def parse_generate_output(text: str) -> tuple[list[str], list[str]]:
    """Hypotheses and references of ``fairseq-generate`` output, in sentence-id order."""
    hyps: dict[int, str] = {}
    refs: dict[int, str] = {}
    for line in text.splitlines():
        if line.startswith("H-"):
            head, _, hyp = line.split("\t", 2) if line.count("\t") >= 2 else (line, "", "")
            hyps[int(head[2:])] = hyp
        elif line.startswith("T-"):
            head, _, ref = line.partition("\t")
            refs[int(head[2:])] = ref
    if not refs:
        raise DataError("fairseq-generate printed no references (T- lines)")
    missing = sorted(set(refs) - set(hyps))
    if missing:
        raise DataError(f"fairseq-generate printed no hypothesis for {len(missing)} sentence(s), e.g. id {missing[0]}")
    ids = sorted(refs)
    return [hyps[i] for i in ids], [refs[i] for i in ids]


def generate(
    path: str,
    data: str,
    subset: str = "test",
    batch_size: int = 64,
    extra: list[str] | None = None,
    user_dir: str | None = None,
    output: str | None = None,
    bf16: bool = False,
) -> str:
    """Run ``fairseq-generate`` (beam 4, lenpen 0.6, sentencepiece removed); its stdout. ``bf16``:
    on CPU with bf16 weights (:mod:`mos_fairseq.core.cpu_bf16`), else fp32 on CPU or fp16 on CUDA."""
    if not Path(path).is_file():
        raise UserError(f"checkpoint '{path}' does not exist")
    if bf16:
        from mos_fairseq.core.cpu_bf16 import require_cpu_bf16

        require_cpu_bf16()
    exe = Path(sys.executable).parent / "fairseq-generate"
    cmd = [
        str(exe),
        data,
        "--path",
        path,
        "--gen-subset",
        subset,
        *GENERATE_SETTINGS,
        "--batch-size",
        str(batch_size),
        "--remove-bpe",
        "sentencepiece",
        *(("--cpu", "--bf16") if bf16 else ("--cpu",) if not _cuda() else ("--fp16",)),
    ]
    user_dir = user_dir or default_user_dir()
    if user_dir:  # our models (mos_static_transformer, supernets) need it; stock checkpoints ignore it
        cmd += ["--user-dir", user_dir]
    cmd += extra or []
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["(no message)"])[-1]
        raise UserError(f"fairseq-generate failed: {last[:300]}")
    if output:
        Path(output).write_text(proc.stdout)
    return proc.stdout


def default_user_dir() -> str:
    from mos_fairseq.base.user_dir import plugin_user_dir

    return plugin_user_dir()


def target_lang_of(path: str, data: str | None = None) -> str:
    """The target language a checkpoint was trained for, or '' if unknown.

    Its task config names it when training was given ``--target-lang``; otherwise fairseq inferred the
    pair from the binaries' file names, and so does this, from ``data`` (the directory translated).
    """
    from mos_fairseq.core.checkpoints import read_checkpoint

    cfg = read_checkpoint(path).get("cfg") or {}
    task = cfg.get("task") if isinstance(cfg, dict) else getattr(cfg, "task", None)
    lang = ""
    if task is not None:
        lang = str((task.get("target_lang") if isinstance(task, dict) else getattr(task, "target_lang", "")) or "")
    if not lang and data is not None and Path(data).is_dir():
        from fairseq.data.data_utils import infer_language_pair

        lang = infer_language_pair(data)[1] or ""
    return lang


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def model_bleu(model: Any, tgt: Any, batches: ValidationBatches, beam: int = 4, lenpen: float = 0.6) -> float:
    """Detokenised sacreBLEU of a translation model over ``batches``: beam search with fairseq's
    SequenceGenerator (fairseq-generate's defaults, max length 200), sentencepiece removed."""
    import sacrebleu
    import torch
    from fairseq.sequence_generator import SequenceGenerator

    gen = SequenceGenerator([model], tgt, beam_size=beam, len_penalty=lenpen, max_len_a=0, max_len_b=200)
    hyps, refs = [], []
    with torch.inference_mode():
        for sample in batches.samples:
            out = gen.generate([model], sample)
            for i, hypos in enumerate(out):
                hyps.append(tgt.string(hypos[0]["tokens"].int().cpu(), "sentencepiece"))
                ref = sample["target"][i]
                refs.append(tgt.string(ref[ref.ne(tgt.pad())].int().cpu(), "sentencepiece"))
    if not hyps:
        raise DataError("no sentences to translate")
    bleu = sacrebleu.corpus_bleu(hyps, [refs]).score
    return float(bleu) if math.isfinite(bleu) else 0.0


def subnet_bleu(
    supernet: Any, task: Any, arch: Any, batches: ValidationBatches, beam: int, lenpen: float, dtype: Any = None
) -> float:
    """:func:`model_bleu` of a subnet, collapsed into its static model (in ``dtype``, e.g. bf16)."""
    model = supernet.extract_static(arch)
    return model_bleu(model.to(dtype) if dtype is not None else model, task.target_dictionary, batches, beam, lenpen)
