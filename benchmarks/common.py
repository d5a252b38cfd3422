"""Helpers shared by the benchmarks: a synthetic dictionary, a fixed random batch, the machine as lscpu describes it."""

from __future__ import annotations


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
