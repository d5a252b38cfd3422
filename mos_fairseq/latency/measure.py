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
stopped. ``--dtype bf16`` times the models with bf16 weights (a bf16 deployment on a CPU with bf16
instructions): the sidecar's device records the dtype beside the CPU model, and a file measured in
one dtype is never continued in another.
"""

from __future__ import annotations

import json
import os
import platform
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import torch

from mos_fairseq.base.errors import DataError, UserError
from mos_fairseq.base.files import write_text_atomic
from mos_fairseq.latency.dataset import (
    append_row,
    format_header,
    format_row,
    open_for_append,
    our_columns,
    read_header,
)
from mos_fairseq.latency.orders import architectures_in_order
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


def device_description(device: str, threads: int, dtype: str = "fp32") -> dict[str, Any]:
    """What the numbers were measured on (stored in the sidecar, compared on resume): the models'
    weight dtype is part of it (a bf16 deployment is a device of its own)."""
    info: dict[str, Any] = {
        "device": device,
        "dtype": dtype,
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


def deployed(model: torch.nn.Module, dtype: str) -> torch.nn.Module:
    """``model`` with the weights of a ``dtype`` deployment (fp32 as it is; bf16 converted)."""
    if dtype == "fp32":
        return model
    from mos_fairseq.core.cpu_bf16 import to_bf16

    return to_bf16(model)


def check_same_dtype(existing_device: dict, device: dict, path: Path) -> None:
    """Refuse to add ``device``'s rows to a file measured in another dtype (files without one: fp32)."""
    old, new = existing_device.get("dtype", "fp32"), device.get("dtype", "fp32")
    if old != new:
        raise DataError(
            f"{path}: measured with {old} weights, this run with {new}: each dtype is a device of its own, "
            "whose rows are never mixed with another's; choose another --out"
        )


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
    check_same_dtype(existing.get("device", {}), new["device"], path)
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
    columns, done_rows = _start_campaign(space, protocol, n_archs, seed, out, order)
    archs = architectures_in_order(space, max(n_archs, len(done_rows)), seed, order)
    for i, row in enumerate(done_rows):
        if json.loads(row["arch"]) != json.loads(archs[i].to_json()):
            raise DataError(
                f"{out}: row {i + 1} holds another architecture than seed {seed} ({order} order) samples; "
                "the file was edited or written by another version"
            )
    dictionary = synthetic_dictionary(protocol.vocab_size)

    def measure(i: int) -> dict:
        return _measured_row(archs[i], i, space, protocol, dictionary, timer)

    if remeasure:
        return _remeasure(out, columns, done_rows, remeasure, measure, protocol.device, progress)
    todo = range(len(done_rows), n_archs)
    if not todo:
        return 0
    from tqdm import tqdm

    bar = tqdm(
        todo,
        total=n_archs,
        initial=len(done_rows),
        unit="arch",
        disable=not progress,
        desc=f"latency {protocol.device}",
    )
    for i in bar:
        row = measure(i)
        append_row(out, row, columns)
        bar.set_postfix(enc=f"{row['latency_mean_encoder']:.1f}ms", dec=f"{row['latency_mean_decoder']:.1f}ms")
    return len(todo)


def _start_campaign(
    space: Any, protocol: Protocol, n_archs: int, seed: int, out: Path, order: str
) -> tuple[tuple[str, ...], list[dict]]:
    """Check the campaign's inputs, set the thread count, write the sidecar of a new file or check that of
    one being resumed; the CSV's columns and the rows it holds already."""
    if out.is_dir():
        raise UserError(f"--out '{out}' is a directory; give the CSV file to write (e.g. {out / 'NAME.csv'})")
    columns = our_columns(space.latency_feature_names)
    family_of(space).check_latency_protocol(space, protocol.src_len)
    if n_archs < 1:
        raise UserError(f"--n-archs must be >= 1, got {n_archs}")
    if protocol.device == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda: no CUDA device is available to this torch build")
    if protocol.dtype == "bf16":
        from mos_fairseq.core.cpu_bf16 import require_cpu_bf16

        require_cpu_bf16()
    threads = protocol.threads or torch.get_num_threads()
    torch.set_num_threads(threads)
    sidecar = _sidecar(space, protocol, seed, device_description(protocol.device, threads, protocol.dtype), order)
    side_path = _sidecar_path(out)
    if _has_rows(out, columns):
        if not side_path.exists():
            raise DataError(f"{out} has rows but no sidecar {side_path.name}; choose another --out")
        try:
            existing = json.loads(side_path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise DataError(f"{side_path}: unreadable sidecar ({exc})") from None
        _check_resume(existing, sidecar, side_path)
    else:  # nothing measured yet: this run's description is the file's
        write_text_atomic(side_path, json.dumps(sidecar, indent=2) + "\n")
    return columns, open_for_append(out, columns)


def _has_rows(out: Path, columns: Sequence[str]) -> bool:
    """Whether ``out`` holds measured rows (refused when it is a CSV of other columns)."""
    if not out.exists() or out.stat().st_size == 0:
        return False
    if read_header(out) != list(columns):
        raise DataError(
            f"{out}: not a mos-nas latency CSV of this space (columns {read_header(out)}); choose another --out"
        )
    with open(out, "rb") as f:
        return sum(1 for _ in f) > 1


def _measured_row(
    arch: Any, i: int, space: Any, protocol: Protocol, dictionary: Any, timer: Callable[[], float]
) -> dict:
    """The CSV row of architecture ``i``: its id, JSON, parameters, latency features and timings."""
    model = deployed(build_model(arch, dictionary, protocol.device), protocol.dtype)
    stats = measure_model(model, protocol, timer)
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


def _remeasure(
    out: Path,
    columns: Sequence[str],
    done_rows: list[dict],
    ids: Sequence[int],
    measure: Callable[[int], dict],
    device: str,
    progress: bool,
) -> int:
    """``--remeasure``: rows ``ids`` measured again, the file rewritten with them, the sidecar told."""
    from tqdm import tqdm

    bad = sorted(i for i in set(ids) if not 0 <= i < len(done_rows))
    if bad:
        raise UserError(f"--remeasure: row id(s) {bad} are not in {out} (it holds ids 0-{len(done_rows) - 1})")
    rows = list(done_rows)
    for i in tqdm(sorted(set(ids)), unit="arch", disable=not progress, desc=f"re-measure {device}"):
        rows[i] = measure(i)
    write_text_atomic(out, "".join([format_header(columns)] + [format_row(r, columns) for r in rows]))
    side_path = _sidecar_path(out)
    existing = json.loads(side_path.read_text())
    existing.setdefault("remeasured", []).append({"rows": sorted(set(ids)), "at": time.strftime("%Y-%m-%dT%H:%M:%S%z")})
    write_text_atomic(side_path, json.dumps(existing, indent=2) + "\n")
    return len(set(ids))


PLAN_VERSION = 1


def write_plan(space: Any, protocol: Protocol, n_archs: int, seed: int, out: str | Path, order: str = "uniform") -> int:
    """``measure-latency --plan``: the architectures a campaign would measure, with everything the
    torch-only runner (``scripts/torch_latency.py``) needs to time them and write this CSV format on a
    device without fairseq: per architecture its id, JSON, parameters, latency features and layer
    sizes; the protocol, space, seed and columns. Returns the number of architectures."""
    family = family_of(space)
    if family.encoder_only:
        raise UserError("--plan: the torch-only runner builds encoder-decoder models; give a translation space")
    if protocol.dtype != "fp32":
        raise UserError("--plan: the torch-only runner times fp32 models; measure --dtype bf16 here, on the CPU")
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
