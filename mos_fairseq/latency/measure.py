"""``mos-nas measure-latency``: the latency of sampled subnets on this machine's CPU or GPU.

Each architecture is built as the static model that export produces (never the supernet), put
in eval mode, and timed with :mod:`mos_fairseq.latency.protocol`: the encoder on one source
sentence of ``src_len`` tokens, then the decoder incrementally for ``tgt_len`` steps on ``beam``
hypotheses (HAT's dummy sentences; the decoder time includes expanding the encoder output to
the beam and the output projection). A BERT space's subnets (:mod:`mos_fairseq.bert`) are timed
as one forward pass of the encoder over a sequence of ``src_len`` tokens (the features a
fine-tuned model computes, without the masked-LM head), decoder columns 0. Rows are appended to
the CSV one architecture at a time (:mod:`mos_fairseq.latency.dataset`); a sidecar JSON records
the device and the protocol, and a re-run with the same arguments continues where the last one
stopped.
"""

from __future__ import annotations

import json
import os
import platform
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import torch

from mos_fairseq.core.errors import DataError, UserError
from mos_fairseq.core.files import write_text_atomic
from mos_fairseq.latency.dataset import (
    append_row,
    format_header,
    format_row,
    open_for_append,
    our_columns,
    read_header,
)
from mos_fairseq.latency.protocol import Protocol, time_encoder_decoder, trimmed_stats
from mos_fairseq.registry import family_of

SIDECAR_VERSION = 1


@dataclass(frozen=True)
class LatencyStats:
    encoder_mean: float
    decoder_mean: float
    encoder_std: float
    decoder_std: float


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def device_description(device: str, threads: int) -> dict[str, Any]:
    """What the numbers were measured on (stored in the sidecar, compared on resume)."""
    info: dict[str, Any] = {
        "device": device,
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "torch_threads": threads,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }
    if device == "cuda":
        info["gpu"] = torch.cuda.get_device_name(0)
        info["cuda"] = torch.version.cuda
    return info


def synthetic_dictionary(size: int):
    """A fairseq dictionary with exactly ``size`` entries (only the size matters for latency)."""
    from fairseq.data import Dictionary

    d = Dictionary()
    for i in range(size - len(d)):
        d.add_symbol(f"w{i}")
    return d


def arch_params(arch: Any, vocab_size: int) -> int:
    """Exact parameters of the static model (translation: shared embeddings of ``vocab_size``)."""
    return family_of(arch).num_params(arch, vocab_size)


def build_model(arch: Any, dictionary: Any, device: str) -> torch.nn.Module:
    """The static model export writes for ``arch``, in eval mode on ``device``."""
    return family_of(arch).build_static(arch, dictionary).to(device).eval()


def measure_bert_model(model, protocol: Protocol, timer: Callable[[], float] = time.perf_counter) -> LatencyStats:
    """Time a static BERT model's encoder on ``batch_size`` sequences of ``src_len`` tokens."""
    if protocol.src_len > model.max_positions():
        raise UserError(f"--seq-len {protocol.src_len} exceeds the space's max_positions {model.max_positions()}")
    dev = next(model.parameters()).device
    d = model.dictionary
    tokens = torch.tensor(
        [[d.bos()] + [d.nspecial] * (protocol.src_len - 2) + [d.eos()]] * protocol.batch_size, device=dev
    )
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    with torch.inference_mode():
        enc, _ = time_encoder_decoder(
            lambda: model(tokens, features_only=True), lambda _: None, protocol.repeats, protocol.warmup, timer, sync
        )
    mean, std = trimmed_stats(enc, protocol.trim)
    return LatencyStats(mean, 0.0, std, 0.0)


def measure_model(model, protocol: Protocol, timer: Callable[[], float] = time.perf_counter) -> LatencyStats:
    """Time one static model with HAT's dummy inputs (see the module docstring)."""
    if not hasattr(model, "decoder"):
        return measure_bert_model(model, protocol, timer)
    dev = next(model.parameters()).device
    eos, filler = model.decoder.dictionary.eos(), model.decoder.dictionary.nspecial  # a non-special token
    b, beam = protocol.batch_size, protocol.beam
    src = torch.tensor([[eos] + [filler] * (protocol.src_len - 1)] * b, device=dev)
    src_lengths = torch.full((b,), protocol.src_len, device=dev)
    prev = torch.tensor([[filler] * (protocol.tgt_len - 1) + [eos]] * (b * beam), device=dev)
    beam_order = torch.arange(b, device=dev).repeat_interleave(beam)

    def encode():
        return model.encoder(src, src_lengths)

    def decode(encoder_out: Any) -> None:
        encoder_out = model.encoder.reorder_encoder_out(encoder_out, beam_order)
        state: dict = {}
        for step in range(protocol.tgt_len):
            model.decoder(prev[:, : step + 1], encoder_out, incremental_state=state)

    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    with torch.inference_mode():
        enc, dec = time_encoder_decoder(encode, decode, protocol.repeats, protocol.warmup, timer, sync)
    enc_mean, enc_std = trimmed_stats(enc, protocol.trim)
    dec_mean, dec_std = trimmed_stats(dec, protocol.trim)
    return LatencyStats(enc_mean, dec_mean, enc_std, dec_std)


def sample_architectures(space: Any, n: int, seed: int, fewer_ok: bool = False) -> list:
    """``n`` distinct random architectures; the first k are the same for any n >= k (``fewer_ok``: as
    many as a small space has, instead of an error)."""
    arch_type = family_of(space).arch_type
    rng = random.Random(seed)
    seen: set[str] = set()
    archs: list[Any] = []
    attempts = 0
    while len(archs) < n:
        arch = arch_type.random(space, rng)
        attempts += 1
        key = arch.to_json()
        if key not in seen:
            seen.add(key)
            archs.append(arch)
        elif attempts > 100 * n + 1000:
            if fewer_ok:
                break
            raise UserError(f"space '{space.name}' has fewer than {n} distinct architectures")
    return archs


SPREAD_POOL = 2000  # candidates the spread order picks its first architectures from
ORDERS = ("uniform", "spread")


def _bins(values: Any) -> Any:
    """Per-feature bin of every pool member: the value itself for a feature with at most 8 distinct
    values (depths, widths), else its quartile."""
    import numpy as np

    out = np.empty(values.shape, dtype=np.int64)
    for j in range(values.shape[1]):
        col = values[:, j]
        uniq = np.unique(col)
        edges = uniq if len(uniq) <= 8 else np.unique(np.quantile(col, [0.25, 0.5, 0.75]))
        out[:, j] = np.searchsorted(edges, col, side="right" if len(uniq) > 8 else "left")
    return out


def spread_architectures(space: Any, n: int, seed: int) -> list:
    """``n`` architectures in an order whose first few dozen already cover the space: from a fixed
    pool of :data:`SPREAD_POOL` random architectures, each next one is the architecture whose latency
    features (each feature's value, or its quartile when it has many) are least represented so far,
    ties broken by distance to those already chosen. Every depth and width shows up early and in
    balance; beyond the pool, the rest of the uniform stream. The order does not depend on ``n``, so a
    longer campaign extends a shorter one and resumes."""
    import numpy as np

    pool = sample_architectures(space, SPREAD_POOL, seed, fewer_ok=True)
    if n > len(pool):
        pool = sample_architectures(space, n, seed)  # the uniform stream extends the fixed pool
    head, tail = pool[:SPREAD_POOL], pool[SPREAD_POOL:]
    feats = np.array([a.latency_features() for a in head], dtype=np.float64)
    bins = _bins(feats)
    scaled = (feats - feats.mean(0)) / np.where(feats.std(0) > 0, feats.std(0), 1.0)
    counts = [dict.fromkeys(np.unique(bins[:, j]).tolist(), 0) for j in range(bins.shape[1])]
    dist = np.full(len(head), np.inf)
    chosen = np.zeros(len(head), dtype=bool)
    order: list[int] = []
    for _ in range(min(n, len(head))):
        rarity = np.array([sum(counts[j][b] for j, b in enumerate(row)) for row in bins], dtype=np.float64)
        rarity[chosen] = np.inf
        best = np.flatnonzero(rarity == rarity.min())
        nxt = int(best[np.argmax(dist[best])]) if order else int(best[0])
        order.append(nxt)
        chosen[nxt] = True
        for j, b in enumerate(bins[nxt]):
            counts[j][b] += 1
        dist = np.minimum(dist, ((scaled - scaled[nxt]) ** 2).sum(1))
    return ([head[i] for i in order] + tail)[:n]


def architectures_in_order(space: Any, n: int, seed: int, order: str = "uniform") -> list:
    if order not in ORDERS:
        raise UserError(f"--order must be one of {ORDERS}, got {order!r}")
    return sample_architectures(space, n, seed) if order == "uniform" else spread_architectures(space, n, seed)


def _sidecar_path(out: Path) -> Path:
    return out.with_suffix(".json")


def _sidecar(space, protocol: Protocol, seed: int, device: dict, order: str = "uniform") -> dict[str, Any]:
    return {
        "version": SIDECAR_VERSION,
        "tool": "mos-nas measure-latency",
        "space": space.to_dict(),
        "seed": seed,
        **({"order": order} if order != "uniform" else {}),
        "protocol": protocol.to_dict(),
        "device": device,
        "columns": list(our_columns(space.latency_feature_names)),
        "units": "milliseconds",
    }


def _check_resume(existing: dict, new: dict, path: Path) -> None:
    if existing.get("order", "uniform") != new.get("order", "uniform"):
        raise DataError(
            f"{path}: an earlier run measured in {existing.get('order', 'uniform')} order, this one "
            f"{new.get('order', 'uniform')}; re-run with the same --order or choose another --out"
        )
    for key in ("space", "seed", "protocol"):
        if existing.get(key) != new[key]:
            raise DataError(
                f"{path}: an earlier run used another {key} ({existing.get(key)} vs {new[key]}); "
                "re-run with the same arguments or choose another --out"
            )
    for key in ("cpu", "gpu", "torch_threads"):
        if existing.get("device", {}).get(key) != new["device"].get(key):
            raise DataError(
                f"{path}: an earlier run measured on another device ({key}: "
                f"{existing.get('device', {}).get(key)!r} vs {new['device'].get(key)!r}); choose another --out"
            )


def measure_space(
    space: Any,
    protocol: Protocol,
    n_archs: int,
    seed: int,
    out: str | Path,
    progress: bool = True,
    timer: Callable[[], float] = time.perf_counter,
    remeasure: Sequence[int] = (),
    order: str = "uniform",
) -> int:
    """Measure ``n_archs`` sampled architectures into ``out`` (resuming); returns rows measured now.

    ``remeasure``: ids of rows already in the file to measure again (e.g. rows a disturbance on the
    machine spoiled); the file is rewritten atomically with those rows replaced, and the sidecar
    records which rows were re-measured.
    """
    out = Path(out)
    if out.is_dir():
        raise UserError(f"--out '{out}' is a directory; give the CSV file to write (e.g. {out / 'NAME.csv'})")
    columns = our_columns(space.latency_feature_names)
    family_of(space).check_latency_protocol(space, protocol.src_len)
    if n_archs < 1:
        raise UserError(f"--n-archs must be >= 1, got {n_archs}")
    if protocol.device == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda: no CUDA device is available to this torch build")
    threads = protocol.threads or torch.get_num_threads()
    torch.set_num_threads(threads)
    sidecar = _sidecar(space, protocol, seed, device_description(protocol.device, threads), order)
    side_path = _sidecar_path(out)
    has_rows = False
    if out.exists() and out.stat().st_size > 0:
        if read_header(out) != list(columns):
            raise DataError(
                f"{out}: not a mos-nas latency CSV of this space (columns {read_header(out)}); choose another --out"
            )
        with open(out, "rb") as f:
            has_rows = sum(1 for _ in f) > 1
    if has_rows:
        if not side_path.exists():
            raise DataError(f"{out} has rows but no sidecar {side_path.name}; choose another --out")
        try:
            existing = json.loads(side_path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise DataError(f"{side_path}: unreadable sidecar ({exc})") from None
        _check_resume(existing, sidecar, side_path)
    else:  # nothing measured yet: this run's description is the file's
        write_text_atomic(side_path, json.dumps(sidecar, indent=2) + "\n")
    done_rows = open_for_append(out, columns)
    archs = architectures_in_order(space, max(n_archs, len(done_rows)), seed, order)
    for i, row in enumerate(done_rows):
        if json.loads(row["arch"]) != json.loads(archs[i].to_json()):
            raise DataError(
                f"{out}: row {i + 1} holds another architecture than seed {seed} ({order} order) samples; "
                "the file was edited or written by another version"
            )
    from tqdm import tqdm

    dictionary = synthetic_dictionary(protocol.vocab_size)

    def measured_row(i: int) -> dict:
        arch = archs[i]
        stats = measure_model(build_model(arch, dictionary, protocol.device), protocol, timer)
        row = {"arch_id": i, "arch": arch.to_json(), "params": arch_params(arch, protocol.vocab_size)}
        row.update(zip(space.latency_feature_names, arch.latency_features(protocol.vocab_size)))
        row.update(
            {
                "latency_mean_encoder": stats.encoder_mean,
                "latency_mean_decoder": stats.decoder_mean,
                "latency_std_encoder": stats.encoder_std,
                "latency_std_decoder": stats.decoder_std,
            }
        )
        return row

    if remeasure:
        bad = sorted(i for i in set(remeasure) if not 0 <= i < len(done_rows))
        if bad:
            raise UserError(f"--remeasure: row id(s) {bad} are not in {out} (it holds ids 0-{len(done_rows) - 1})")
        rows = list(done_rows)
        for i in tqdm(sorted(set(remeasure)), unit="arch", disable=not progress, desc=f"re-measure {protocol.device}"):
            rows[i] = measured_row(i)
        write_text_atomic(out, "".join([format_header(columns)] + [format_row(r, columns) for r in rows]))
        existing = json.loads(side_path.read_text())
        existing.setdefault("remeasured", []).append(
            {"rows": sorted(set(remeasure)), "at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        )
        write_text_atomic(side_path, json.dumps(existing, indent=2) + "\n")
        return len(set(remeasure))
    todo = range(len(done_rows), n_archs)
    if not todo:
        return 0
    bar = tqdm(
        todo,
        total=n_archs,
        initial=len(done_rows),
        unit="arch",
        disable=not progress,
        desc=f"latency {protocol.device}",
    )
    for i in bar:
        row = measured_row(i)
        append_row(out, row, columns)
        bar.set_postfix(enc=f"{row['latency_mean_encoder']:.1f}ms", dec=f"{row['latency_mean_decoder']:.1f}ms")
    return len(todo)


PLAN_VERSION = 1


def write_plan(space: Any, protocol: Protocol, n_archs: int, seed: int, out: str | Path, order: str = "uniform") -> int:
    """``measure-latency --plan``: the architectures a campaign would measure, with everything the
    torch-only runner (``scripts/torch_latency.py``) needs to time them and write this CSV format on a
    device without fairseq: per architecture its id, JSON, parameters, latency features and layer
    sizes; the protocol, space, seed and columns. Returns the number of architectures."""
    family = family_of(space)
    if family.encoder_only:
        raise UserError("--plan: the torch-only runner builds encoder-decoder models; give a translation space")
    out = Path(out)
    if out.is_dir():
        raise UserError(f"--plan '{out}' is a directory; give the JSON file to write")
    archs = architectures_in_order(space, n_archs, seed, order)
    entries = [
        {
            "arch_id": i,
            "arch": a.to_json(),
            "params": family.num_params(a, protocol.vocab_size),
            "features": dict(zip(space.latency_feature_names, a.latency_features(protocol.vocab_size))),
            "spec": {
                "encoder_embed_dim": a.encoder_embed_dim,
                "decoder_embed_dim": a.decoder_embed_dim,
                "qkv_dim": a.qkv_dim,
                "encoder_layers": [list(x) for x in zip(a.encoder_ffn_dims, a.encoder_heads)],
                "decoder_layers": [
                    list(x)
                    for x in zip(a.decoder_ffn_dims, a.decoder_self_heads, a.decoder_cross_heads, a.decoder_cross_spans)
                ],
            },
        }
        for i, a in enumerate(archs)
    ]
    plan = {
        "version": PLAN_VERSION,
        "tool": "mos-nas measure-latency --plan",
        "space": space.to_dict(),
        "seed": seed,
        "order": order,
        "protocol": protocol.to_dict(),
        "vocab_size": protocol.vocab_size,
        "columns": list(our_columns(space.latency_feature_names)),
        "archs": entries,
    }
    write_text_atomic(out, json.dumps(plan) + "\n")
    return len(entries)
