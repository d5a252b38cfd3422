"""``mos-nas gap``: how well a supernet predicts standalone-trained subnets (MoS paper, Table 4).

For every architecture of ``--archs`` and every ``--supernet``, the subnet's validation loss and
test BLEU inside the supernet are compared with those of the same architecture trained on its own
(``--standalone DIR/<arch name>/checkpoint_best.pt``, e.g. from ``mos-nas retrain --arch``): the
mean absolute error and Kendall's tau between supernet and standalone numbers, per supernet, as a
table, JSON and a scatter plot. Both sides are measured in this process the same way (same
sentences, beam 4, length penalty 0.6, detokenised sacreBLEU), so they differ only in weights.

Each (checkpoint, architecture) measurement is kept under ``OUT/cache/`` as soon as it is made,
keyed by the checkpoint's path, size and modification time, the architecture file's text and the
subsets, so an interrupted run resumes where it stopped, a supernet added later costs only its own
measurements, and a checkpoint that has changed since (training went on) is measured again.

``--standalone-figures FILE`` gives the standalone side of architectures whose checkpoints are not
on this machine (trained elsewhere, e.g. on a machine that is gone): a JSON file of figures that this
command measured there, ``{"bleu_subset": ..., "loss_subset": ..., "max_sentences": ..., "archs":
{NAME: {"bleu": B, "valid_loss": L}}}``, or a ``gap.json`` this command wrote there (its
``standalone`` side); its settings must be the run's, and an architecture has either a checkpoint or
a figure, never both. ``gap.json`` names which architectures came from it.
"""

from __future__ import annotations

import hashlib
import json
import sys
from functools import partial
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from mos_fairseq.core.errors import DataError, UserError
from mos_fairseq.core.files import write_text_atomic


def gap_stats(supernet: Sequence[float], standalone: Sequence[float]) -> dict[str, float]:
    """MAE and Kendall's tau (tau-b) between supernet and standalone numbers of the same archs."""
    from scipy.stats import kendalltau

    a, b = np.asarray(supernet, dtype=float), np.asarray(standalone, dtype=float)
    if len(a) != len(b) or len(a) < 2:
        raise DataError(f"need the same number (>= 2) of supernet and standalone values, got {len(a)} and {len(b)}")
    tau = kendalltau(a, b).statistic
    return {"mae": float(np.mean(np.abs(a - b))), "kendall_tau": float(tau) if np.isfinite(tau) else 0.0, "n": len(a)}


def standalone_metrics(
    checkpoint: Path, data: str, bleu_subset: str, loss_subset: str, max_sentences: int | None = None
) -> dict[str, float]:
    """Validation loss and BLEU of a standalone checkpoint, computed exactly as for a supernet subnet
    (same sentences, same beam search and scoring), so that the two sides differ only in weights."""
    from fairseq import checkpoint_utils

    from mos_fairseq.plugin import register

    register()  # a standalone model may be our mos_static_transformer (any exported or retrained subnet)
    from mos_fairseq.search.fitness import ValidationBatches, batches_loss
    from mos_fairseq.search.runner import model_bleu

    models, _, task = checkpoint_utils.load_model_ensemble_and_task([str(checkpoint)], arg_overrides={"data": data})
    model = models[0].eval()
    loss = batches_loss(
        model, ValidationBatches.from_task(task, loss_subset, max_sentences), task.target_dictionary.pad()
    )
    bleu = model_bleu(model, task.target_dictionary, ValidationBatches.from_task(task, bleu_subset, max_sentences))
    return {"valid_loss": loss, "bleu": bleu}


def supernet_metrics(
    checkpoint: str, data: str, arch_path: Path, bleu_subset: str, loss_subset: str, max_sentences: int | None = None
) -> dict[str, float]:
    from mos_fairseq.search.runner import evaluate_subnet

    loss = evaluate_subnet(checkpoint, data, str(arch_path), loss_subset, max_sentences, bleu=False)["valid_loss"]
    bleu = evaluate_subnet(checkpoint, data, str(arch_path), bleu_subset, max_sentences, bleu=True)["bleu"]
    return {"valid_loss": loss, "bleu": bleu}


def measurement_key(checkpoint: Path, arch_text: str, *settings: object) -> str:
    """Cache key of one measurement: what was measured, with which settings, from which checkpoint state."""
    st = checkpoint.stat()
    ident = json.dumps([str(checkpoint.resolve()), st.st_size, st.st_mtime_ns, arch_text, *settings])
    return hashlib.sha256(ident.encode()).hexdigest()[:20]


def cached_measurement(
    cache_dir: Path, label: str, key: str, measure: Callable[[], dict[str, float]]
) -> dict[str, float]:
    """``measure()``'s result from ``cache_dir/key.json`` if present, else measured and stored there."""
    path = cache_dir / f"{key}.json"
    if path.is_file():
        try:
            cached = json.loads(path.read_text())
            metrics = {"valid_loss": float(cached["valid_loss"]), "bleu": float(cached["bleu"])}
            print(f"gap: {label}: cached", file=sys.stderr)
            return metrics
        except (ValueError, KeyError, TypeError):
            print(f"gap: {label}: unreadable cache entry {path.name}, measuring again", file=sys.stderr)
    metrics = measure()
    write_text_atomic(path, json.dumps({"label": label, **metrics}) + "\n")
    print(f"gap: {label}: valid loss {metrics['valid_loss']:.4f}, BLEU {metrics['bleu']:.2f}", file=sys.stderr)
    return metrics


def load_standalone_figures(
    path: str, bleu_subset: str, loss_subset: str, max_sentences: int | None
) -> dict[str, dict[str, float]]:
    """The standalone figures of ``--standalone-figures`` (module docstring), checked against the run's settings."""
    try:
        doc = json.loads(Path(path).read_text())
    except (OSError, ValueError) as e:
        raise UserError(f"--standalone-figures '{path}': not a readable JSON file ({e})") from None
    entries = None
    if isinstance(doc, dict):  # a gap.json: its "standalone" side ("archs" there is the list of names)
        entries = doc["standalone"] if isinstance(doc.get("standalone"), dict) else doc.get("archs")
    if not isinstance(entries, dict) or not entries:
        raise UserError(
            f"--standalone-figures '{path}': needs an 'archs' object (or a gap.json's 'standalone') of "
            "NAME: {bleu, valid_loss}"
        )
    run = {"bleu_subset": bleu_subset, "loss_subset": loss_subset, "max_sentences": max_sentences}
    differ = [f"{k} {doc.get(k)!r} (this run: {v!r})" for k, v in run.items() if doc.get(k, "absent") != v]
    if differ:
        raise UserError(f"--standalone-figures '{path}' was measured with other settings: {', '.join(differ)}")
    figures = {}
    for name, entry in entries.items():
        try:
            figures[name] = {"valid_loss": float(entry["valid_loss"]), "bleu": float(entry["bleu"])}
        except (KeyError, TypeError, ValueError):
            raise UserError(f"--standalone-figures '{path}': '{name}' needs numbers 'bleu' and 'valid_loss'") from None
    return figures


def run_gap(
    supernets: list[str],
    archs_dir: str,
    standalone_dir: str,
    data: str,
    out: str,
    bleu_subset: str = "test",
    loss_subset: str = "valid",
    max_sentences: int | None = None,
    standalone_figures: str | None = None,
) -> dict:
    """Table 4 numbers for every supernet (see the module docstring); ``max_sentences`` limits both
    subsets to their first N sentences (beam search over a full test set is the slow part)."""
    if max_sentences is not None and max_sentences < 1:
        raise UserError(f"--max-sentences must be at least 1, got {max_sentences}")
    archs = sorted(Path(archs_dir).glob("*.yml"))
    if len(archs) < 2:
        raise UserError(f"--archs '{archs_dir}' needs at least 2 architecture YAMLs")
    figures = (
        load_standalone_figures(standalone_figures, bleu_subset, loss_subset, max_sentences)
        if standalone_figures
        else {}
    )
    has_checkpoint = {a.stem for a in archs if (Path(standalone_dir) / a.stem / "checkpoint_best.pt").is_file()}
    both = sorted(has_checkpoint & figures.keys())
    if both:
        raise UserError(
            f"both a standalone checkpoint and a figure in {standalone_figures} for {', '.join(both)}: keep one"
        )
    missing = [a.stem for a in archs if a.stem not in has_checkpoint and a.stem not in figures]
    if missing:
        raise UserError(
            f"no standalone checkpoint for {', '.join(missing)} (expected {standalone_dir}/<name>/checkpoint_best.pt"
            + (f" or a figure in {standalone_figures})" if standalone_figures else ")")
        )
    absent = [c for c in supernets if not Path(c).is_file()]
    if absent:
        raise UserError(f"no such supernet checkpoint: {', '.join(absent)}")
    out_dir = Path(out)
    cache = out_dir / "cache"
    texts = {a.stem: a.read_text() for a in archs}
    standalone = {}
    for a in archs:
        if a.stem in figures:
            standalone[a.stem] = figures[a.stem]
            continue
        ckpt_path = Path(standalone_dir) / a.stem / "checkpoint_best.pt"
        key = measurement_key(ckpt_path, texts[a.stem], bleu_subset, loss_subset, max_sentences)
        standalone[a.stem] = cached_measurement(
            cache,
            f"standalone {a.stem}",
            key,
            partial(standalone_metrics, ckpt_path, data, bleu_subset, loss_subset, max_sentences),
        )
    result: dict = {
        "archs": [a.stem for a in archs],
        "bleu_subset": bleu_subset,
        "loss_subset": loss_subset,
        "max_sentences": max_sentences,
        "standalone": standalone,
        "supernets": {},
    }
    if figures:
        result["standalone_figures"] = {"file": standalone_figures, "archs": sorted(n for n in figures if n in texts)}
    for ckpt in supernets:
        per_arch = {}
        for a in archs:
            key = measurement_key(Path(ckpt), texts[a.stem], bleu_subset, loss_subset, max_sentences)
            per_arch[a.stem] = cached_measurement(
                cache,
                f"{ckpt} {a.stem}",
                key,
                partial(supernet_metrics, ckpt, data, a, bleu_subset, loss_subset, max_sentences),
            )
        names = result["archs"]
        result["supernets"][ckpt] = {
            "per_arch": per_arch,
            "bleu": gap_stats([per_arch[n]["bleu"] for n in names], [standalone[n]["bleu"] for n in names]),
            "loss": gap_stats([per_arch[n]["valid_loss"] for n in names], [standalone[n]["valid_loss"] for n in names]),
        }
    write_text_atomic(out_dir / "gap.json", json.dumps(result, indent=2) + "\n")
    write_text_atomic(out_dir / "gap.md", gap_table(result) + "\n")
    gap_plot(result, out_dir / "gap.png")
    return result


def gap_table(result: dict) -> str:
    lines = [
        "| supernet | BLEU MAE | BLEU Kendall τ | loss MAE | loss Kendall τ | archs |",
        "|---|---|---|---|---|---|",
    ]
    for ckpt, r in result["supernets"].items():
        lines.append(
            f"| {ckpt} | {r['bleu']['mae']:.2f} | {r['bleu']['kendall_tau']:.3f} | {r['loss']['mae']:.4f} | "
            f"{r['loss']['kendall_tau']:.3f} | {r['bleu']['n']} |"
        )
    return "\n".join(lines)


def gap_plot(result: dict, path: Path) -> None:
    """Supernet vs standalone scatter, BLEU (left) and validation loss (right), one colour per supernet."""
    from mos_fairseq.core.plotting import pyplot

    plt = pyplot()

    fig, axes = plt.subplots(1, 2, figsize=(11, 5))
    names = result["archs"]
    for ax, metric, key, unit in (
        (axes[0], "bleu", "bleu", "BLEU"),
        (axes[1], "loss", "valid_loss", "valid loss (bits)"),
    ):
        x = [result["standalone"][n][key] for n in names]
        for ckpt, r in result["supernets"].items():
            ax.scatter(
                x,
                [r["per_arch"][n][key] for n in names],
                s=18,
                label=f"{Path(ckpt).parent.name}/{Path(ckpt).name}: MAE {r[metric]['mae']:.3g}, "
                f"τ {r[metric]['kendall_tau']:.2f}",
            )
        lo, hi = min(x), max(x)
        ax.plot([lo, hi], [lo, hi], color="black", lw=1)
        ax.set_xlabel(f"standalone {unit}")
        ax.set_ylabel(f"supernet {unit}")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
