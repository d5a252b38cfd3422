"""HAT's latency-measurement protocol, independent of any model.

A measurement is ``warmup`` untimed runs, then ``repeats`` timed runs of the encoder and of the
decoder (timed separately, each bracketed by the device's synchronisation), the top and bottom
``trim`` fraction of each sample list dropped and the mean and (population) standard deviation of
the rest kept. :mod:`mos_fairseq.latency.measure` applies it to exported static models; the
timer and synchronisation are parameters so the protocol is testable with a fake clock.

``dtype`` is the precision of the timed models' weights: ``bf16`` is a bf16 deployment on a CPU
with bf16 instructions (:mod:`mos_fairseq.core.cpu_bf16`), a device of its own; an fp32 protocol
leaves it out of :meth:`Protocol.to_dict`, so files written before it existed read the same.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Callable, Sequence

from mos_fairseq.base.errors import UserError

DTYPES = ("fp32", "bf16")


@dataclass(frozen=True)
class Protocol:
    """What a latency number means: every field is recorded in the dataset's sidecar JSON."""

    device: str = "cpu"
    threads: int | None = None
    src_len: int = 30
    tgt_len: int = 30
    beam: int = 4
    batch_size: int = 1
    repeats: int = 300  # HAT's protocol: 300 timed runs after 10 warm-up runs
    warmup: int = 10
    trim: float = 0.1
    vocab_size: int = 32768
    dtype: str = "fp32"  # the models' weights: fp32, or bf16 (CPU only)

    def __post_init__(self) -> None:
        for name in ("src_len", "tgt_len", "beam", "batch_size", "repeats", "vocab_size"):
            if getattr(self, name) < 1:
                raise UserError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(self, name)}")
        if self.warmup < 0:
            raise UserError(f"--warmup must be >= 0, got {self.warmup}")
        if not 0 <= self.trim < 0.5:
            raise UserError(f"trim fraction must be in [0, 0.5), got {self.trim}")
        if self.threads is not None and self.threads < 1:
            raise UserError(f"--threads must be >= 1, got {self.threads}")
        if self.device not in ("cpu", "cuda"):
            raise UserError(f"--device must be cpu or cuda, got {self.device!r}")
        if self.dtype not in DTYPES:
            raise UserError(f"--dtype must be one of {', '.join(DTYPES)}, got {self.dtype!r}")
        if self.dtype == "bf16" and self.device != "cpu":
            raise UserError("--dtype bf16 times bf16 models on the CPU: give --device cpu")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        if d["dtype"] == "fp32":
            del d["dtype"]
        return d


def trimmed_stats(samples: Sequence[float], trim: float = 0.1) -> tuple[float, float]:
    """Mean and population std after dropping ``int(n * trim)`` samples at each end (HAT)."""
    if not samples:
        raise ValueError("no latency samples")
    values = sorted(samples)
    cut = int(len(values) * trim)
    kept = values[cut : len(values) - cut]
    mean = math.fsum(kept) / len(kept)
    std = math.sqrt(math.fsum((v - mean) ** 2 for v in kept) / len(kept))
    return mean, std


def time_encoder_decoder(
    encode: Callable[[], Any],
    decode: Callable[[Any], Any],
    repeats: int,
    warmup: int,
    timer: Callable[[], float],
    sync: Callable[[], None] = lambda: None,
) -> tuple[list[float], list[float]]:
    """Milliseconds of ``repeats`` encoder runs and ``repeats`` decoder runs (decoder on each
    run's encoder output), after ``warmup`` untimed runs of both."""
    for _ in range(warmup):
        decode(encode())
    sync()
    enc_ms: list[float] = []
    dec_ms: list[float] = []
    for _ in range(repeats):
        start = timer()
        encoder_out = encode()
        sync()
        middle = timer()
        decode(encoder_out)
        sync()
        end = timer()
        enc_ms.append((middle - start) * 1000.0)
        dec_ms.append((end - middle) * 1000.0)
    return enc_ms, dec_ms
