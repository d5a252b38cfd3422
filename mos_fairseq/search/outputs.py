"""What a search leaves in its output directory, written atomically file by file.

``candidates.csv`` (every evaluated architecture: features, parameters, predicted latency,
validation loss), ``pareto.csv`` (the candidates no other candidate beats on both cost and loss;
cost = predicted latency when there is an estimator, else parameters; with several named
estimators, the candidates on any device's front), ``pareto.png`` (one panel per device), per
constraint ``best_<name>.yml`` (our format) and ``best_<name>.hat.yml`` (HAT's SubTransformer
keys), and ``summary.json`` (one object per constraint).
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Sequence

from mos_fairseq.base.files import write_text_atomic
from mos_fairseq.search.evolution import Candidate


def latency_key(device: str | None) -> str:
    """A candidate's cost key for one estimator (``latency``; ``latency:cpu`` for a named one)."""
    return "latency" if device is None else f"latency:{device}"


def _predicted_columns(devices: Sequence[str | None]) -> list[str]:
    return [f"predicted_latency_ms_{d}" for d in devices] if any(devices) else ["predicted_latency_ms"]


def _csv_text(rows: Sequence[Candidate], devices: Sequence[str | None] = (None,)) -> str:
    """One row per candidate (predicted latency per device); architectures with raw ``features``
    (encoder-decoder ones: HAT's 10, their space's latency features) also get those columns."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    with_features = bool(rows) and all(hasattr(c.arch, "features") for c in rows)
    header = ["arch", "iteration", "params", *_predicted_columns(devices or [None]), "valid_loss"]
    w.writerow(header + (list(rows[0].arch.space.latency_feature_names) if with_features else []))
    for c in rows:
        lats = [c.costs.get(latency_key(d)) for d in (devices or [None])]
        w.writerow(
            [
                c.arch.to_json(),
                c.iteration,
                int(c.costs["params"]),
                *["" if lat is None else f"{lat:.4f}" for lat in lats],
                f"{c.loss:.6f}",
            ]
            + ([f"{v:g}" for v in c.arch.features()] if with_features else [])  # type: ignore[attr-defined]
        )
    return buf.getvalue()


def pareto_front(cands: Sequence[Candidate], cost_key: str) -> list[Candidate]:
    """Non-dominated candidates (lower cost and lower loss are better), sorted by cost."""
    ordered = sorted(cands, key=lambda c: (c.costs[cost_key], c.loss, c.arch.to_json()))
    front, best_loss = [], float("inf")
    for c in ordered:
        if c.loss < best_loss:
            front.append(c)
            best_loss = c.loss
    return front


def write_outputs(
    out: Path,
    cands: list[Candidate],
    constraints: list,
    best: list[Candidate | None],
    devices: Sequence[str | None],
    extra_summary: dict | None = None,
) -> list[dict]:
    """``devices``: the search's estimators (``[None]`` for one unnamed, ``[]`` for none)."""
    out.mkdir(parents=True, exist_ok=True)
    cost_keys = [latency_key(d) for d in devices] or ["params"]
    cands = sorted(cands, key=lambda c: (c.iteration, c.loss, c.arch.to_json()))
    write_text_atomic(out / "candidates.csv", _csv_text(cands, devices))
    fronts = [pareto_front(cands, key) for key in cost_keys]
    on_a_front = {c.arch.to_json() for front in fronts for c in front}
    front = (
        fronts[0]
        if len(fronts) == 1
        else sorted((c for c in cands if c.arch.to_json() in on_a_front), key=lambda c: (c.costs[cost_keys[0]], c.loss))
    )
    write_text_atomic(out / "pareto.csv", _csv_text(front, devices))
    summary = []
    for c, b in zip(constraints, best):
        assert b is not None  # the search has a pick for every constraint (infeasible ones are refused)
        arch_file = out / f"best_{c.name}.yml"
        b.arch.save(arch_file)
        hat_file = None
        if hasattr(b.arch, "to_hat_dict"):  # encoder-decoder architectures also in HAT's format
            hat_file = f"best_{c.name}.hat.yml"
            b.arch.save(out / hat_file, hat_format=True)
        entry = {
            "kind": c.kind,
            "constraint": c.value,
            "arch": arch_file.name,
            "hat_arch": hat_file,
            "params": int(b.costs["params"]),
        }
        if any(devices):
            entry.update({f"predicted_latency_ms_{d}": round(b.costs[latency_key(d)], 4) for d in devices})
        else:
            entry["predicted_latency_ms"] = round(b.costs["latency"], 4) if "latency" in b.costs else None
        entry.update(valid_loss=round(b.loss, 6), found_at_iteration=b.iteration, architecture=b.arch.describe())
        entry.update((extra_summary or {}).get(c.name, {}))
        summary.append(entry)
    write_text_atomic(out / "summary.json", json.dumps(summary, indent=2) + "\n")
    plot_pareto(out / "pareto.png", cands, fronts, constraints, best, cost_keys)
    return summary


def plot_pareto(path: Path, cands, fronts, constraints, best, cost_keys: Sequence[str]) -> None:
    """One panel per cost (each device's predicted latency, or parameters): candidates, that cost's
    Pareto front, the picks and the bounds on that cost."""
    from mos_fairseq.core.plotting import pyplot

    plt = pyplot()
    fig, axes = plt.subplots(1, len(cost_keys), figsize=(7 * len(cost_keys), 5), squeeze=False)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, cost_key, front in zip(axes[0], cost_keys, fronts):
        _panel(ax, cands, front, constraints, best, cost_key, colors)
    fig.suptitle("evolutionary search: candidates, Pareto front and picks")
    fig.tight_layout()
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=120)
    plt.close(fig)
    tmp.replace(path)


def _panel(ax, cands, front, constraints, best, cost_key: str, colors) -> None:
    device = cost_key.partition(":")[2]
    scale, unit = (
        (1.0, f"predicted latency (ms){' on ' + device if device else ''}")
        if cost_key != "params"
        else (1e6, "parameters (M)")
    )
    ax.scatter(
        [c.costs[cost_key] / scale for c in cands],
        [c.loss for c in cands],
        s=6,
        alpha=0.35,
        color="tab:gray",
        label=f"evaluated candidates ({len(cands)})",
    )
    ax.plot(
        [c.costs[cost_key] / scale for c in front],
        [c.loss for c in front],
        "-o",
        ms=3,
        color="tab:blue",
        label=f"Pareto front ({len(front)})",
    )
    for i, (c, b) in enumerate(zip(constraints, best)):
        color = colors[(i + 1) % len(colors)]
        for part in c.parts:
            if part.cost_key == cost_key:
                ax.axvline(part.value / scale, color=color, ls="--", lw=1)
        if b is not None:
            ax.scatter(
                [b.costs[cost_key] / scale],
                [b.loss],
                s=80,
                marker="*",
                color=color,
                zorder=5,
                label=f"best for {c.describe()}: loss {b.loss:.3f}",
            )
            ax.annotate(
                c.name, (b.costs[cost_key] / scale, b.loss), textcoords="offset points", xytext=(5, 5), fontsize=7
            )
    ax.set_xlabel(unit)
    ax.set_ylabel("validation loss (bits/token, supernet)")
    ax.legend(fontsize=7)
