"""Draws docs/pipeline.png, the pipeline picture of the README.

    .venv/bin/python docs/pipeline.py            # writes docs/pipeline.png beside this file

Boxes are the pipeline's steps with the command that runs each; arrows carry the file one step
hands to the next. Only matplotlib is needed (headless backend).
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch  # noqa: E402

OUT = Path(__file__).resolve().parent / "pipeline.png"

W, H = 3.8, 1.7  # box size in axis units (the axis is 18 x 7.8)
TOP, BOTTOM = 5.6, 1.6  # box centres of the two rows

# name: (x centre, y centre, width, title, command, what it does)
STEPS = {
    "train": (2.85, TOP, 5.6, "1  train supernet", "fairseq-train --user-dir user_dir", "sandwich or SPOS, MoS FFNs"),
    "measure": (10.2, TOP, W, "2  measure latency", "mos-nas measure-latency", "subnets on your device"),
    "fit": (16.05, TOP, W, "3  fit estimator", "mos-nas train-estimator", "predicts latency"),
    "search": (1.95, BOTTOM, W, "4  search", "mos-nas search", "all constraints, one run"),
    "export": (6.65, BOTTOM, W, "5  export", "mos-nas export", "plain fairseq checkpoint"),
    "retrain": (11.35, BOTTOM, W, "6  retrain", "mos-nas retrain", "stock fairseq-train"),
    "bleu": (16.05, BOTTOM, W, "7  BLEU", "mos-nas bleu", "sacreBLEU, HAT's BLEU"),
}
FAMILY_COLOUR = {"train": "#dbe9f6", "measure": "#fde9d0", "fit": "#fde9d0"}
DEFAULT_COLOUR = "#e3f1de"


def box(ax, key: str) -> None:
    x, y, w, title, command, what = STEPS[key]
    ax.add_patch(
        FancyBboxPatch(
            (x - w / 2, y - H / 2),
            w,
            H,
            boxstyle="round,pad=0.02,rounding_size=0.18",
            facecolor=FAMILY_COLOUR.get(key, DEFAULT_COLOUR),
            edgecolor="#333333",
            linewidth=1.2,
        )
    )
    ax.text(x, y + 0.45, title, ha="center", va="center", fontsize=13.5, fontweight="bold")
    ax.text(x, y - 0.05, command, ha="center", va="center", fontsize=9, family="monospace")
    ax.text(x, y - 0.48, what, ha="center", va="center", fontsize=10, color="#444444")


def arrow(ax, points: list[tuple[float, float]], label: str, label_at: tuple[float, float], **text) -> None:
    """A polyline arrow through ``points`` (the head at the last), labelled at ``label_at``."""
    style = {"color": "#333333", "linewidth": 1.4}
    for a, b in zip(points[:-2], points[1:-1]):
        ax.plot([a[0], b[0]], [a[1], b[1]], solid_capstyle="butt", **style)
    ax.add_patch(FancyArrowPatch(points[-2], points[-1], arrowstyle="-|>", mutation_scale=16, **style))
    ax.text(*label_at, label, fontsize=10, color="#1f4e79", style="italic", **text)


def main() -> None:
    fig = plt.figure(figsize=(9.0, 3.9))
    ax = fig.add_axes((0.0, 0.0, 1.0, 1.0))  # the axis fills the figure: 1 unit = 0.5 inch
    ax.set_xlim(0, 18)
    ax.set_ylim(0, 7.8)
    ax.axis("off")
    for key in STEPS:
        box(ax, key)
    top_low, bottom_high = TOP - H / 2, BOTTOM + H / 2
    channel = (top_low + bottom_high) / 2
    # the two inputs of the search: the supernet, and the estimator fitted on measured latencies
    arrow(ax, [(1.2, top_low), (1.2, bottom_high)], "supernet checkpoint", (1.4, channel + 0.45), va="center")
    xm, xf = STEPS["measure"][0] + W / 2, STEPS["fit"][0] - W / 2
    arrow(ax, [(xm, TOP), (xf, TOP)], "latency\nCSV", ((xm + xf) / 2, TOP + 0.5), ha="center", va="center")
    arrow(
        ax,
        [(16.05, top_low), (16.05, channel), (2.7, channel), (2.7, bottom_high)],
        "estimator (.safetensors)",
        (9.4, channel + 0.2),
        ha="center",
    )
    # the search's picks down to BLEU
    for (a, b), label in zip(
        [("search", "export"), ("export", "retrain"), ("retrain", "bleu")],
        ["picks\nbest_*.yml", "export\ndirectory", "trained\ncheckpoint"],
    ):
        xa, xb = STEPS[a][0] + W / 2, STEPS[b][0] - W / 2
        arrow(ax, [(xa, BOTTOM), (xb, BOTTOM)], label, ((xa + xb) / 2, BOTTOM - 1.35), ha="center", va="center")
    ax.text(
        9.0,
        7.55,
        "mos-fairseq: hardware-aware architecture search of Transformers on fairseq",
        ha="center",
        va="center",
        fontsize=12.5,
        color="#222222",
    )
    fig.savefig(OUT, dpi=200, bbox_inches="tight", pad_inches=0.05, facecolor="white")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
