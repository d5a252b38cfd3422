"""Writes ``benchmarks/results/gap_real_data.md`` from what ``benchmarks/gap_real_data.sh`` has
produced so far (it is re-run as stages finish, so partial results are reported as partial).

    python benchmarks/gap_report.py --work runs/gap --out benchmarks/results/gap_real_data.md
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from fairseq_logs import train_progress

SUPERNETS = {
    "spos": "SPOS (HAT)",
    "sandwich": "sandwich",
    "layer": "layer-wise MoS (sandwich)",
    "neuron": "neuron-wise MoS (sandwich)",
}


def arch_summary(path: Path, vocab: int) -> tuple[str, int]:
    """(description safe inside a Markdown table, parameter count)."""
    from mos_fairseq.translation.architecture import Architecture

    arch = Architecture.load(path)
    return arch.describe().replace("|", "‖"), arch.num_params(vocab)


def vocab_size(work: Path) -> int:
    """The joined dictionary's size as fairseq builds it (4 special symbols + the entries)."""
    return 4 + len((work / "bin" / "dict.en.txt").read_text().splitlines())


def section_training(work: Path, updates: int) -> list[str]:
    lines = [
        "## Supernet training (same budget)",
        "",
        "| supernet | updates | train wall (s) | s/update | valid nll largest (bits) | valid nll smallest (bits) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, label in SUPERNETS.items():
        p = train_progress(work / "supernets" / name / "train.log")
        v = p["valid"][-1] if p["valid"] else {}
        done = (
            "" if (work / "supernets" / name / ".done").exists() else " (running)" if p["updates"] else " (not started)"
        )
        rate = p["train_wall_s"] / p["updates"] if p["updates"] else float("nan")
        lines.append(
            f"| {label}{done} | {p['updates']}/{updates} | {p['train_wall_s']:.0f} | {rate:.2f} | "
            f"{v.get('nll_loss_largest', float('nan')):.3f} | {v.get('nll_loss_smallest', float('nan')):.3f} |"
        )
    lines += [
        "",
        "## Standalone architectures (trained from scratch, same budget)",
        "",
        "| arch | architecture | params | updates | train wall (s) | valid nll (bits) |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for path in sorted((work / "archs").glob("*.yml")):
        desc, params = arch_summary(path, vocab_size(work))
        p = train_progress(work / "standalone" / path.stem / "train.log")
        v = p["valid"][-1] if p["valid"] else {}
        lines.append(
            f"| {path.stem} | {desc} | {params:,} | {p['updates']}/{updates} | {p['train_wall_s']:.0f} | "
            f"{v.get('nll_loss', float('nan')):.3f} |"
        )
    return lines


PAPER_TABLE4 = [
    ("HAT (SPOS)", 1.84, 0.81),
    ("sandwich", 1.62, 0.81),
    ("layer-wise MoS", 1.61, 0.54),
    ("neuron-wise MoS", 1.13, 0.71),
]  # MoS paper Table 4, WMT'14 En-De, BLEU, 15 archs


def section_gap(work: Path, out: Path) -> list[str]:
    path = work / "gap" / "gap.json"
    lines = ["## Table 4 form: supernet vs standalone (MAE, Kendall τ)", ""]
    if not path.is_file():
        return lines + ["Not computed yet (needs every supernet and standalone model)."]
    result = json.loads(path.read_text())
    n = result.get("max_sentences")
    first = f"first {n} sentences" if n else "all sentences"
    lines += [
        f"`mos-nas gap`: BLEU on {result.get('bleu_subset', 'test')} (newstest2012, {first}; beam 4, lenpen 0.6, "
        f"detokenised sacreBLEU), loss = nll in bits per token on {result.get('loss_subset', 'valid')} "
        f"(newstest2013, {first}); both sides measured the same way in one process.",
        "",
        "| supernet | BLEU MAE | BLEU Kendall τ | loss MAE (bits) | loss Kendall τ | archs |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for ckpt, r in result["supernets"].items():
        label = SUPERNETS.get(Path(ckpt).parent.name, ckpt)
        lines.append(
            f"| {label} | {r['bleu']['mae']:.2f} | {r['bleu']['kendall_tau']:.3f} | {r['loss']['mae']:.3f} | "
            f"{r['loss']['kendall_tau']:.3f} | {r['bleu']['n']} |"
        )
    lines += [
        "",
        "For reference, the MoS paper's Table 4 on WMT'14 En-De (BLEU, 15 architectures, full HAT space and "
        "training): " + "; ".join(f"{name} MAE {mae:.2f}, τ {tau:.2f}" for name, mae, tau in PAPER_TABLE4) + ".",
    ]
    lines += [
        "",
        "Per architecture (BLEU / valid loss):",
        "",
        "| arch | standalone | "
        + " | ".join(SUPERNETS.get(Path(c).parent.name, c) for c in result["supernets"])
        + " |",
        "|---|---|" + "---|" * len(result["supernets"]),
    ]
    for name in result["archs"]:
        s = result["standalone"][name]
        cells = [
            f"{r['per_arch'][name]['bleu']:.2f} / {r['per_arch'][name]['valid_loss']:.3f}"
            for r in result["supernets"].values()
        ]
        lines.append(f"| {name} | {s['bleu']:.2f} / {s['valid_loss']:.3f} | " + " | ".join(cells) + " |")
    plot = work / "gap" / "gap.png"
    if plot.is_file():
        figure = out.parent / "figures" / "gap_real_data.png"
        figure.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(plot, figure)
        lines += ["", f"![supernet vs standalone, BLEU and loss](figures/{figure.name})"]
    return lines


def section_latency(work: Path, space: str) -> list[str]:
    lines = ["## Latency of the space on this CPU and the estimator", ""]
    report = work / "latency" / f"{space}.report.json"
    if not report.is_file():
        return lines + ["Not measured yet."]
    r = json.loads(report.read_text())
    lo, hi = r["latency_range_ms"]
    lines.append(
        f"`mos-nas measure-latency --space {space} --n-archs 80 --repeats 10 --warmup 2 --threads 1` "
        f"(encoder + beam-4 decoder of HAT's protocol, trimmed mean; {r['rows']} architectures, "
        f"{lo:.0f}-{hi:.0f} ms), then `mos-nas train-estimator`, held-out {r['n_test']} rows:"
    )
    lines += ["", "| model | RMSE ms | MAE ms | R² | Kendall τ |", "|---|---:|---:|---:|---:|"]
    for name, m in r["models"].items():
        lines.append(f"| {name} | {m['rmse']:.2f} | {m['mae']:.2f} | {m['r2']:.3f} | {m['kendall_tau']:.3f} |")
    return lines


def section_search(work: Path) -> list[str]:
    lines = ["## Best searched subnet per supernet at two latency constraints", ""]
    rows = []
    for name, label in SUPERNETS.items():
        summary = work / "search" / name / "summary.json"
        if not summary.is_file():
            continue
        for pick in json.loads(summary.read_text()):
            test = work / "search" / name / (pick["arch"][:-4] + ".test.json")
            bleu = json.loads(test.read_text())["bleu"] if test.is_file() else float("nan")
            rows.append(
                f"| {label} | ≤ {pick['constraint']:g} ms | {pick['architecture'].replace('|', '‖')} | {pick['params']:,} | "
                f"{pick['predicted_latency_ms']:.1f} | {pick['valid_loss']:.3f} | {bleu:.2f} |"
            )
    if not rows:
        return lines + ["Not run yet."]
    return lines + [
        "| supernet | constraint | architecture | params | predicted ms | valid loss (bits, 500 sent.) | test BLEU |",
        "|---|---|---|---:|---:|---:|---:|",
        *rows,
    ]


def section_extra(work: Path) -> list[str]:
    lines = ["## Additional training to close the gap (MoS Table 6 form)", ""]
    chosen = work / "extra" / "arch"
    if not chosen.is_file():
        return lines + ["Not run yet."]
    arch = chosen.read_text().strip()
    standalone = train_progress(work / "standalone" / arch / "train.log")["valid"]
    if not standalone:
        return lines + ["Waiting for the standalone model."]
    target = standalone[-1]["nll_loss"]
    lines.append(
        f"Architecture {arch} (the one whose neuron-MoS subnet sat furthest above its standalone loss in the "
        f"gap table); its standalone model reaches valid nll {target:.3f} bits (whole newstest2013) after "
        "the full budget. Update 0 is the subnet inside the supernet (`mos-nas evaluate`), later points are "
        "fairseq's validations of `mos-nas retrain --export-dir` (inherited weights, fresh optimizer, the "
        "study's recipe)."
    )
    lines += [
        "",
        "| inherited from | valid nll (bits) @ updates | updates to reach the standalone loss |",
        "|---|---|---:|",
    ]
    found = False
    for name in ("neuron", "spos"):
        valids = train_progress(work / "extra" / name / "train.log")["valid"]
        start = work / "extra" / name / "start.json"
        curve = [(0, json.loads(start.read_text())["valid_loss"])] if start.is_file() else []
        curve += [(int(v.get("num_updates", 0)), v["nll_loss"]) for v in valids]
        if not curve:
            continue
        found = True
        reached = next((u for u, loss in curve if loss <= target), None)
        running = "" if (work / "extra" / name / ".done").exists() else " (running)"
        lines.append(
            f"| {SUPERNETS[name]}{running} | {', '.join(f'{loss:.3f} @ {u}' for u, loss in curve)} | "
            f"{reached if reached is not None else 'not within ' + str(curve[-1][0])} |"
        )
    return lines if found else lines[:3] + ["", "Not run yet."]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", default="runs/gap")
    ap.add_argument("--updates", type=int, default=500)
    ap.add_argument("--max-tokens", type=int, default=4096)
    ap.add_argument("--space", default="hat_cpu_small")
    ap.add_argument("--out", default="benchmarks/results/gap_real_data.md")
    ap.add_argument("--notes", help="a Markdown file whose text goes after the tables")
    args = ap.parse_args()
    work = Path(args.work)
    head = [
        "# Supernet vs standalone on real data (mt-ende, CPU)",
        "",
        f"Data: `../shared/data/mt-ende` (221,790 training pairs; valid = newstest2013, test = newstest2012), "
        f"sentencepiece 8k joined vocabulary. Space `{args.space}` (`configs/spaces/{args.space}.yml`): HAT's WMT space "
        "scaled down for CPU (embed 128/192, FFN 256/512/768 per layer, heads 2/4, 3 encoder layers, 1-3 decoder "
        "layers, encoder-decoder span 1-3, q/k/v 128). Every model: the same recipe and budget "
        f"({args.updates} updates of ≤ {args.max_tokens} tokens, Adam, inverse-sqrt lr 2e-3 with 100 warm-up "
        "updates, label smoothing 0.1, dropout 0.1, seed 1), one CPU thread per training process, two processes "
        "side by side on a 2-core AMD EPYC guest.",
        "",
        "Commands: `OMP_NUM_THREADS=1 benchmarks/gap_real_data.sh supernets &` and "
        "`OMP_NUM_THREADS=1 benchmarks/gap_real_data.sh standalone &`, then "
        "`benchmarks/gap_real_data.sh gap latency search extra` (each lane pinned to one core with `taskset -c 0` / "
        "`taskset -c 1`; every stage resumes), and this report: `python benchmarks/gap_report.py --work runs/gap "
        "--notes benchmarks/gap_notes.md`.",
        "",
    ]
    body = (
        section_training(work, args.updates)
        + [""]
        + section_gap(work, Path(args.out))
        + [""]
        + section_latency(work, args.space)
        + [""]
        + section_search(work)
        + [""]
        + section_extra(work)
    )
    notes = [""] + ([Path(args.notes).read_text()] if args.notes else [])
    Path(args.out).write_text("\n".join(head + body + notes) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
