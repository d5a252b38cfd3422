"""What a search leaves in its output directory, written atomically file by file.

``candidates.csv`` (every evaluated architecture: features, parameters, predicted latency,
validation loss), ``pareto.csv`` (the candidates no other candidate beats on both cost and loss;
cost = predicted latency when there is an estimator, else parameters), ``pareto.png``, per
constraint ``best_<name>.yml`` (our format) and ``best_<name>.hat.yml`` (HAT's SubTransformer
keys), and ``summary.json`` (one object per constraint).
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Sequence, cast

from mos_fairseq.core.files import write_text_atomic
from mos_fairseq.search.constraints import Constraint
from mos_fairseq.search.evolution import Candidate
from mos_fairseq.translation.architecture import FEATURE_NAMES, Architecture

CANDIDATE_COLUMNS = ("arch", "iteration", "params", "predicted_latency_ms", "valid_loss") + FEATURE_NAMES


def _csv_text(rows: Sequence[Candidate]) -> str:
    """One row per candidate; encoder-decoder architectures also get HAT's 10 feature columns."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    with_features = all(hasattr(c.arch, "features") for c in rows)
    w.writerow(CANDIDATE_COLUMNS if with_features else CANDIDATE_COLUMNS[:5])
    for c in rows:
        lat = c.costs.get("latency")
        w.writerow(
            [
                c.arch.to_json(),
                c.iteration,
                int(c.costs["params"]),
                "" if lat is None else f"{lat:.4f}",
                f"{c.loss:.6f}",
            ]
            + ([f"{v:g}" for v in cast(Architecture, c.arch).features()] if with_features else [])
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
    constraints: list[Constraint],
    best: list[Candidate | None],
    has_latency: bool,
    extra_summary: dict | None = None,
) -> list[dict]:
    out.mkdir(parents=True, exist_ok=True)
    cost_key = "latency" if has_latency else "params"
    cands = sorted(cands, key=lambda c: (c.iteration, c.loss, c.arch.to_json()))
    write_text_atomic(out / "candidates.csv", _csv_text(cands))
    front = pareto_front(cands, cost_key)
    write_text_atomic(out / "pareto.csv", _csv_text(front))
    summary = []
    for c, b in zip(constraints, best):
        assert b is not None  # check_feasible: every constraint admits a candidate
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
            "predicted_latency_ms": round(b.costs["latency"], 4) if "latency" in b.costs else None,
            "valid_loss": round(b.loss, 6),
            "found_at_iteration": b.iteration,
            "architecture": b.arch.describe(),
        }
        entry.update((extra_summary or {}).get(c.name, {}))
        summary.append(entry)
    write_text_atomic(out / "summary.json", json.dumps(summary, indent=2) + "\n")
    plot_pareto(out / "pareto.png", cands, front, constraints, best, cost_key)
    return summary


def plot_pareto(path: Path, cands, front, constraints, best, cost_key: str) -> None:
    from mos_fairseq.core.plotting import pyplot

    plt = pyplot()

    scale, unit = (1.0, "predicted latency (ms)") if cost_key == "latency" else (1e6, "parameters (M)")
    fig, ax = plt.subplots(figsize=(7, 5))
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
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, (c, b) in enumerate(zip(constraints, best)):
        color = colors[(i + 1) % len(colors)]
        if c.kind == cost_key:
            ax.axvline(c.value / scale, color=color, ls="--", lw=1)
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
    ax.set_title("evolutionary search: candidates, Pareto front and picks")
    ax.legend(fontsize=7)
    fig.tight_layout()
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=120)
    plt.close(fig)
    tmp.replace(path)
