"""Helpers shared by the benchmarks: a synthetic dictionary, a fixed random batch, the machine as lscpu describes it,
a file replaced whole (never half-written)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def synthetic_dictionary(size: int):
    """The latency tools' ``size``-type dictionary, finalised (padded to a multiple of 8) as fairseq does."""
    from mos_fairseq.latency.measure import synthetic_dictionary as exact_size_dictionary

    d = exact_size_dictionary(size)
    d.finalize(padding_factor=8)
    return d


def random_batch(vocab: int, eos: int, bsz: int = 32, length: int = 30) -> dict:
    """A seeded translation batch: ``bsz`` sentences of ``length`` source and target tokens."""
    import torch

    g = torch.Generator().manual_seed(0)
    src = torch.randint(4, vocab, (bsz, length), generator=g)
    tgt = torch.randint(4, vocab, (bsz, length), generator=g)
    tgt[:, -1] = eos
    prev = torch.cat([torch.full((bsz, 1), eos), tgt[:, :-1]], dim=1)
    return {
        "net_input": {"src_tokens": src, "src_lengths": torch.full((bsz,), length), "prev_output_tokens": prev},
        "target": tgt,
        "ntokens": bsz * length,
        "nsentences": bsz,
        "id": torch.arange(bsz),
    }


def lscpu_fields(text: str, source: str) -> dict:
    """The machine as ``lscpu`` describes it: CPU model, flags, logical CPUs."""
    fields = {k.strip(): v.strip() for k, _, v in (line.partition(":") for line in text.splitlines()) if v}
    cpus = fields.get("CPU(s)", "")
    return {
        "cpu_model": fields.get("Model name"),
        "cpu_flags": fields.get("Flags", "").split(),
        "cpus": int(cpus) if cpus.isdigit() else None,
        "architecture": fields.get("Architecture"),
        "source": source,
    }


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file beside it: readers see the old file or the new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    umask = os.umask(0)
    os.umask(umask)
    os.fchmod(fd, 0o666 & ~umask)  # a committed file's usual mode, not mkstemp's 0600
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)
