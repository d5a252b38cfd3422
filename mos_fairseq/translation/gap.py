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
"""

from __future__ import annotations

import hashlib
import json
import sys
from functools import partial
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from mos_fairseq.base.errors import DataError, UserError
from mos_fairseq.base.files import write_text_atomic
from mos_fairseq.core.model_loading import load_supernet_model
from mos_fairseq.core.validation import SubnetEvaluator, ValidationBatches, batches_loss
from mos_fairseq.translation.bleu import model_bleu, subnet_bleu
from mos_fairseq.translation.family import FAMILY


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
    (same sentences, same beam search and scoring), so that the two sides differ only in weights. It may
    be our ``mos_static_transformer`` (an export or a retrained subnet): importing the package has
    registered it with fairseq."""
    from fairseq import checkpoint_utils

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
    """Validation loss and BLEU of one subnet inside a translation supernet (``mos-nas evaluate``'s)."""
    supernet, task, _ = load_supernet_model(checkpoint, data, (FAMILY.supernet_model,))
    arch = supernet.arch_type.load(str(arch_path), supernet.space)
    loss = SubnetEvaluator(supernet, ValidationBatches.from_task(task, loss_subset, max_sentences)).loss(arch)
    bleu = subnet_bleu(supernet, task, arch, ValidationBatches.from_task(task, bleu_subset, max_sentences), 4, 0.6)
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


def metric_stats(names: Sequence[str], per_arch: dict, standalone: dict, key: str) -> dict[str, float] | None:
    """``gap_stats`` over the architectures whose standalone side has ``key`` (None: fewer than 2 have it)."""
    known = [n for n in names if standalone[n][key] is not None]
    if len(known) < 2:
        return None
    return gap_stats([per_arch[n][key] for n in known], [standalone[n][key] for n in known])


def _check_sides(supernets: Sequence[str], archs: Sequence[Path], standalone_dir: str) -> None:
    """Every architecture has a standalone checkpoint, every supernet a file."""
    missing = [a.stem for a in archs if not (Path(standalone_dir) / a.stem / "checkpoint_best.pt").is_file()]
    if missing:
        raise UserError(
            f"no standalone checkpoint for {', '.join(missing)} (expected {standalone_dir}/<name>/checkpoint_best.pt)"
        )
    absent = [c for c in supernets if not Path(c).is_file()]
    if absent:
        raise UserError(f"no such supernet checkpoint: {', '.join(absent)}")


def run_gap(
    supernets: list[str],
    archs_dir: str,
    standalone_dir: str,
    data: str,
    out: str,
    bleu_subset: str = "test",
    loss_subset: str = "valid",
    max_sentences: int | None = None,
) -> dict:
    """Table 4 numbers for every supernet (see the module docstring); ``max_sentences`` limits both
    subsets to their first N sentences (beam search over a full test set is the slow part)."""
    if max_sentences is not None and max_sentences < 1:
        raise UserError(f"--max-sentences must be at least 1, got {max_sentences}")
    archs = sorted(Path(archs_dir).glob("*.yml"))
    if len(archs) < 2:
        raise UserError(f"--archs '{archs_dir}' needs at least 2 architecture YAMLs")
    _check_sides(supernets, archs, standalone_dir)
    out_dir = Path(out)
    cache = out_dir / "cache"
    texts = {a.stem: a.read_text() for a in archs}
    settings = (bleu_subset, loss_subset, max_sentences)
    standalone: dict[str, dict[str, float | None]] = {}
    for a in archs:
        ckpt_path = Path(standalone_dir) / a.stem / "checkpoint_best.pt"
        key = measurement_key(ckpt_path, texts[a.stem], *settings)
        measure = partial(standalone_metrics, ckpt_path, data, *settings)
        standalone[a.stem] = {**cached_measurement(cache, f"standalone {a.stem}", key, measure)}
    result: dict = {
        "archs": [a.stem for a in archs],
        "bleu_subset": bleu_subset,
        "loss_subset": loss_subset,
        "max_sentences": max_sentences,
        "standalone": standalone,
        "supernets": {},
    }
    for ckpt in supernets:
        per_arch = {
            a.stem: cached_measurement(
                cache,
                f"{ckpt} {a.stem}",
                measurement_key(Path(ckpt), texts[a.stem], *settings),
                partial(supernet_metrics, ckpt, data, a, *settings),
            )
            for a in archs
        }
        names = result["archs"]
        result["supernets"][ckpt] = {
            "per_arch": per_arch,
            "bleu": metric_stats(names, per_arch, standalone, "bleu"),
            "loss": metric_stats(names, per_arch, standalone, "valid_loss"),
        }
    write_text_atomic(out_dir / "gap.json", json.dumps(result, indent=2) + "\n")
    write_text_atomic(out_dir / "gap.md", gap_table(result) + "\n")
    gap_plot(result, out_dir / "gap.png")
    return result


def gap_table(result: dict) -> str:
    """One row per supernet; the last column is the number of architectures, 'BLEU / loss' where a standalone
    side without a loss makes the two differ (the loss cells are '–' where fewer than 2 have a loss)."""
    lines = [
        "| supernet | BLEU MAE | BLEU Kendall τ | loss MAE | loss Kendall τ | archs |",
        "|---|---|---|---|---|---|",
    ]
    standalone = result.get("standalone", {})
    with_loss = sum(figure["valid_loss"] is not None for figure in standalone.values())
    for ckpt, r in result["supernets"].items():
        bleu, loss = r["bleu"], r["loss"]
        n_loss = loss["n"] if loss else with_loss
        count = str(bleu["n"]) if n_loss == bleu["n"] else f"{bleu['n']} / {n_loss}"
        loss_cells = f"{loss['mae']:.4f} | {loss['kendall_tau']:.3f}" if loss else "– | –"
        lines.append(f"| {ckpt} | {bleu['mae']:.2f} | {bleu['kendall_tau']:.3f} | {loss_cells} | {count} |")
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
        known = [n for n in names if result["standalone"][n][key] is not None]
        x = [result["standalone"][n][key] for n in known]
        for ckpt, r in result["supernets"].items():
            stats = r[metric]
            ax.scatter(
                x,
                [r["per_arch"][n][key] for n in known],
                s=18,
                label=f"{Path(ckpt).parent.name}/{Path(ckpt).name}: "
                + (f"MAE {stats['mae']:.3g}, τ {stats['kendall_tau']:.2f}, n {stats['n']}" if stats else "n < 2"),
            )
        if not x:
            continue
        lo, hi = min(x), max(x)
        ax.plot([lo, hi], [lo, hi], color="black", lw=1)
        ax.set_xlabel(f"standalone {unit}")
        ax.set_ylabel(f"supernet {unit}")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
