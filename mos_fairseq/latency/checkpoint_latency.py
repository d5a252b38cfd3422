"""``mos-nas measure-latency --checkpoint``: the latency of trained models, as they are deployed.

The space campaign (:mod:`mos_fairseq.latency.measure`) times freshly built static models of
sampled architectures; this module times *checkpoints* (a stock fairseq ``transformer`` baseline,
an export, a retrained or averaged model) with the same protocol and the same timing function, so
hand-designed baselines and search picks land on one latency axis. Results go to one JSON file
keyed by the checkpoint's resolved path, written atomically after each model; a re-run measures
only the checkpoints that are not in it yet (or whose file changed), and refuses to mix
protocols or machines in one file.

On a host whose speed drifts (a shared virtual machine can run 20-60% slower for minutes at a time),
models timed one after the other are not comparable. ``rounds > 1`` measures all the given
checkpoints together, interleaved: every round times each model once with the full protocol (a
rotated order, so no model is always first), and a model's latency is its median over the rounds.
Such a call re-measures every checkpoint it is given (the point is that they share one window) and
records each round's figure, the spread and the group measured together.

``mos-nas measure-latency --arch`` times architecture files the same way, each built with fresh weights
as retraining would build it (``loader``: :func:`mos_fairseq.translation.fresh_model.fresh_translation_model`),
so models whose checkpoints are gone are timed together with the same protocol.
"""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path
from typing import Callable, Sequence

import torch

from mos_fairseq.base.errors import DataError, UserError
from mos_fairseq.base.files import write_text_atomic
from mos_fairseq.latency.measure import check_same_dtype, deployed, device_description, measure_model
from mos_fairseq.latency.protocol import Protocol

FILE_VERSION = 1


def load_translation_model(path: Path):
    """The model of a translation checkpoint (any fairseq model with an encoder and a decoder), in eval mode."""
    from fairseq import checkpoint_utils

    from mos_fairseq.core.checkpoints import read_checkpoint
    from mos_fairseq.plugin import register

    register()  # our static models may be among them
    state = read_checkpoint(path)  # one-line errors for missing or foreign files
    try:
        models, _, _ = checkpoint_utils.load_model_ensemble_and_task([str(path)], state=state)
    except (FileNotFoundError, OSError) as exc:
        raise DataError(
            f"'{path}': cannot set up its task ({exc}); its data directory must hold the dictionaries"
        ) from None
    model = models[0]
    if not hasattr(model, "encoder") or not hasattr(model, "decoder"):
        raise UserError(f"'{path}' holds a '{type(model).__name__}', not an encoder-decoder translation model")
    return model.eval()


def _key(path: Path) -> dict:
    stat = path.stat()
    return {"size": stat.st_size, "mtime": stat.st_mtime}


def measure_checkpoints(
    paths: Sequence[str | Path],
    protocol: Protocol,
    out: str | Path,
    timer: Callable[[], float] = time.perf_counter,
    rounds: int = 1,
    loader: Callable[[Path], torch.nn.Module] | None = None,
    what: str = "checkpoint",
    model_options: Sequence[str] = (),
) -> dict:
    """Measure every model file of ``paths`` not yet in ``out`` (``rounds > 1``: all of them, interleaved
    over that many rounds); returns the file's content. ``loader`` builds a file's model (default: a
    translation checkpoint's), ``what`` names the files in errors and in the file's tool; ``model_options``
    (how ``loader`` builds them) are the file's, like its protocol: another call must give the same."""
    load = loader or load_translation_model
    if rounds < 1:
        raise UserError(f"--rounds must be >= 1, got {rounds}")
    out = Path(out)
    if out.is_dir():
        raise UserError(f"--out '{out}' is a directory; give a JSON file")
    ckpts = [Path(p) for p in paths]
    for p in ckpts:
        if not p.is_file():
            raise UserError(f"{what} '{p}' not found")
    threads = protocol.threads or torch.get_num_threads()
    torch.set_num_threads(threads)
    device = device_description(protocol.device, threads, protocol.dtype)
    if out.exists():
        try:
            data = json.loads(out.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise DataError(f"{out}: unreadable ({exc}); choose another --out") from None
        if data.get("tool", f"mos-nas measure-latency --{what}") != f"mos-nas measure-latency --{what}":
            raise DataError(f"{out}: written by '{data.get('tool')}', not --{what}; choose another --out")
        check_same_dtype(data.get("device", {}), device, out)
        if data.get("model_options", []) != list(model_options):
            raise DataError(
                f"{out}: models built with other options ({data.get('model_options', [])}); choose another --out"
            )
        if data.get("protocol") != protocol.to_dict():
            raise DataError(f"{out}: measured with another protocol ({data.get('protocol')}); choose another --out")
        for key in ("cpu", "gpu", "torch_threads"):
            if data.get("device", {}).get(key) != device.get(key):
                raise DataError(
                    f"{out}: measured on another device ({key}: {data.get('device', {}).get(key)!r} vs "
                    f"{device.get(key)!r}); choose another --out"
                )
    else:
        data = {
            "version": FILE_VERSION,
            "tool": f"mos-nas measure-latency --{what}",
            "protocol": protocol.to_dict(),
            **({"model_options": list(model_options)} if model_options else {}),
            "device": device,
            "units": "milliseconds",
            "models": {},
        }
    if rounds > 1:
        data["models"].update(_measure_interleaved(ckpts, protocol, timer, rounds, load))
        write_text_atomic(out, json.dumps(data, indent=2) + "\n")
        return data
    for path in ckpts:
        name = str(path.resolve())
        entry = data["models"].get(name)
        if entry and entry.get("file") == _key(path):
            continue
        model = deployed(load(path).to(protocol.device), protocol.dtype)
        stats = measure_model(model, protocol, timer)
        data["models"][name] = {
            **_describe(path, model),
            "latency_ms": stats.encoder_mean + stats.decoder_mean,
            "encoder_ms": stats.encoder_mean,
            "decoder_ms": stats.decoder_mean,
            "encoder_std_ms": stats.encoder_std,
            "decoder_std_ms": stats.decoder_std,
            "measured_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        write_text_atomic(out, json.dumps(data, indent=2) + "\n")
    return data


def _describe(path: Path, model) -> dict:
    return {
        "file": _key(path),
        "model": type(model).__name__,
        "params": sum(p.numel() for p in model.parameters()),
    }


def _measure_interleaved(
    ckpts: list[Path], protocol: Protocol, timer: Callable[[], float], rounds: int, load: Callable
) -> dict:
    """Entries for ``ckpts`` timed together: ``rounds`` rounds, each model once per round (rotated order)."""
    names = list(dict.fromkeys(str(p.resolve()) for p in ckpts))  # a path given twice is timed once per round
    paths = {str(p.resolve()): p for p in ckpts}
    models = {n: deployed(load(paths[n]).to(protocol.device), protocol.dtype) for n in names}
    per_round: dict[str, list] = {n: [] for n in names}
    for r in range(rounds):
        for n in names[r % len(names) :] + names[: r % len(names)]:
            per_round[n].append(measure_model(models[n], protocol, timer))
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    entries = {}
    for n in names:
        totals = [s.encoder_mean + s.decoder_mean for s in per_round[n]]
        entries[n] = {
            **_describe(paths[n], models[n]),
            "latency_ms": statistics.median(totals),  # encoder_ms and decoder_ms: their own medians (need not sum)
            "encoder_ms": statistics.median(s.encoder_mean for s in per_round[n]),
            "decoder_ms": statistics.median(s.decoder_mean for s in per_round[n]),
            "encoder_std_ms": statistics.median(s.encoder_std for s in per_round[n]),
            "decoder_std_ms": statistics.median(s.decoder_std for s in per_round[n]),
            "rounds_ms": totals,
            "measured_at": stamp,
            "measured_with": len(names),  # models interleaved in this window (same measured_at)
        }
    return entries
