"""The BERT study's report, ``benchmarks/results/bert.md`` and its perplexity figure, built from the committed
run files alone (``benchmarks/results/bert_glue/runs/*.json``, written by ``benchmarks/bert_glue.sh``'s
record steps) and the blind labels' index, so any clone rebuilds the same report.

Sections: status (which starts of which picks are done); the recipe, budget and machine; the supernets'
perplexity of largest and smallest per validation (neuron-MoS beside standard weight sharing); the picks;
the table of starts (exported, random weights, pretrained alone) x tasks, mean and spread over seeds, with
the export's margins; the recipe sweep; the blind labels; the notes (``--notes``, Markdown).

    python benchmarks/bert_glue_report.py [--runs benchmarks/results/bert_glue/runs] [--out benchmarks/results/bert.md]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import write_atomic  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SUPERNETS = {"neuron": "neuron-wise MoS", "none": "standard weight sharing"}
STARTS = ("export", "random", "alone")
START_NAMES = {"export": "exported subnet", "random": "random weights", "alone": "pretrained alone"}
# a column of the table: the task a run fine-tuned on and the run file's field
METRIC = {
    "SST-2": ("SST-2", "dev_accuracy", "accuracy (%)"),
    "SST-2 unseen": ("SST-2", "dev_unseen_accuracy", "accuracy (%)"),
    "CoLA": ("CoLA", "dev_mcc", "MCC"),
    # the clean split (bert_glue.sh BG_SPLIT=clean): scored on the dev sentences inside no training line,
    # fine-tuned on the training rows inside no such sentence
    "SST-2 clean": ("SST-2", "dev_accuracy", "accuracy (%)"),
    "CoLA clean": ("CoLA", "dev_mcc", "MCC"),
}
CLEAN_COLUMNS = ["SST-2 clean", "CoLA clean"]
TARGET = {
    "SST-2": 2.0,
    "SST-2 unseen": 2.0,
    "CoLA": 0.05,
    "SST-2 clean": 2.0,
    "CoLA clean": 0.05,
}  # the export's margin over random weights the study aims at


class ReportError(Exception):
    """A one-line reason the report cannot be built (nothing is written then)."""


def load(runs_dir: Path) -> dict[str, list[dict]]:
    """Every run file, by kind (sweep, supernet, pretrained, pick, finetune)."""
    if not runs_dir.is_dir():
        raise ReportError(f"no run directory {runs_dir}")
    runs: dict[str, list[dict]] = defaultdict(list)
    for path in sorted(runs_dir.glob("*.json")):
        try:
            run = json.loads(path.read_text())
        except ValueError as exc:
            raise ReportError(f"{path}: not JSON ({exc})") from None
        if not isinstance(run, dict) or "kind" not in run:
            raise ReportError(f"{path}: not a run file (no 'kind')")
        runs[run["kind"]].append(run)
    return runs


def fmt(x: float | None, spec: str = ".2f") -> str:
    return "–" if x is None else format(x, spec)


def where(run: dict) -> str:
    commit = (run.get("commit") or "?")[:7]
    return f"`{commit}`, {run['machine']['cpu_model']}"


def describe(arch: dict) -> str:
    return f"{arch['layers']} x {arch['hidden']}, {arch['heads']} heads, FFN ratio {arch['ffn_ratio']}"


def pick_of(finetune_name: str) -> str:
    """``export_neuron_params_1.8M`` -> ``neuron_params_1.8M``."""
    return finetune_name.split("_", 1)[1]


def start_of(run: dict) -> str:
    """The run's start as the table's column: ``export``, ``random``, ``alone``, or ``alone (VARIANT)`` for a
    start that differs from the study's recipe (e.g. pretrained alone at another learning rate)."""
    return f"{run['start']} ({run['variant']})" if run.get("variant") else run["start"]


def start_name(start: str) -> str:
    base, _, variant = start.partition(" (")
    return START_NAMES[base] + (f", {variant.rstrip(')')}" if variant else "")


def starts_of(runs: list[dict]) -> list[str]:
    """The study's three starts, then every variant the runs hold."""
    return [*STARTS, *sorted({start_of(r) for r in runs} - set(STARTS))]


def scores(runs: list[dict]) -> dict[tuple[str, str, str], list[float]]:
    """(pick, start, column) -> the dev scores of its seeds (SST-2 accuracy in %, CoLA MCC), seed order."""
    out: dict[tuple[str, str, str], list[tuple[int, float]]] = defaultdict(list)
    for r in runs:
        clean = r.get("split", "carved") == "clean"
        for column, (task, key, _) in METRIC.items():
            if r["task"] == task and (column in CLEAN_COLUMNS) == clean and r.get(key) is not None:
                out[(r.get("pick") or pick_of(r["name"]), start_of(r), column)].append((r["seed"], r[key]))
    return {k: [v for _, v in sorted(vals)] for k, vals in out.items()}


def mean_sd(vals: list[float] | None, spec: str) -> str:
    if not vals:
        return "–"
    sd = statistics.stdev(vals) if len(vals) > 1 else 0.0
    return f"{format(statistics.mean(vals), spec)} ± {format(sd, spec)} ({len(vals)})"


def section_status(runs: dict[str, list[dict]], tasks: list[str], seeds: int) -> list[str]:
    lines = ["## Status", ""]
    done = scores(runs["finetune"])
    tasks = sorted({METRIC[c][0] for c in tasks})  # a run per task and seed (its columns share it)
    first: dict[str, str] = {}  # a supernet's architecture -> the first pick that chose it
    for p in sorted(runs["pick"], key=lambda r: r["name"]):
        same = first.setdefault(f"{p['supernet']} {json.dumps(p.get('arch_spec'), sort_keys=True)}", p["name"])
        if same != p["name"]:
            lines.append(f"- `{p['name']}`: the architecture of `{same}` (its runs serve both).")
            continue
        parts = []
        for start in STARTS:
            n = sum(len(done.get((p["name"], start, t), [])) for t in tasks)
            parts.append(
                f"{START_NAMES[start]} {'done' if n >= seeds * len(tasks) else f'{n} of {seeds * len(tasks)}'}"
            )
        lines.append(f"- `{p['name']}`: " + ", ".join(parts) + ".")
    supers = {r["name"] for r in runs["supernet"]}
    missing = [s for s in SUPERNETS if s not in supers]
    if missing:
        lines.append(f"- supernets to train: {', '.join(missing)}.")
    if not runs["pick"]:
        lines.append("- no search has been recorded yet.")
    return lines + [""]


def section_supernets(supernets: list[dict]) -> list[str]:
    """The final perplexities and speed, then the curve of every validation side by side."""
    if not supernets:
        return []
    supernets = sorted(supernets, key=lambda r: list(SUPERNETS).index(r["name"]) if r["name"] in SUPERNETS else 9)
    lines = [
        "## Supernets: masked-LM perplexity of the largest and smallest subnet",
        "",
        "| supernet | text | updates | dtype | train wall (h) | s/update | valid ppl largest | valid ppl smallest | run |",
        "|---|---|---:|---|---:|---:|---:|---:|---|",
    ]
    for r in supernets:
        pt, final = r["pretraining"], r["pretraining"]["final"] or {}
        lines.append(
            f"| {SUPERNETS.get(r['name'], r['name'])} | {r['text']} | {pt['updates']:,} | {pt.get('dtype', '?')} | "
            f"{pt['train_wall_s'] / 3600:.2f} | {fmt(pt['s_per_update'], '.3f')} | {fmt(final.get('ppl_largest'), '.1f')} | "
            f"{fmt(final.get('ppl_smallest'), '.1f')} | {where(r)} |"
        )
    curves = {r["name"]: {v["updates"]: v for v in r["pretraining"]["valid"]} for r in supernets}
    updates = sorted({u for c in curves.values() for u in c})
    lines += ["", "During training (every validation; largest / smallest):", ""]
    lines.append("| updates | " + " | ".join(SUPERNETS.get(n, n) for n in curves) + " |")
    lines.append("|---:|" + "---:|" * len(curves))
    for u in updates:
        cells = [f"{c[u]['ppl_largest']:.1f} / {c[u]['ppl_smallest']:.1f}" if u in c else "–" for c in curves.values()]
        lines.append(f"| {u:,} | " + " | ".join(cells) + " |")
    return lines + ["", "![perplexity during pretraining](bert_glue/perplexity.png)", ""]


def section_picks(picks: list[dict], alone: list[dict]) -> list[str]:
    if not picks:
        return []
    lines = [
        "## Picks",
        "",
        "| pick | supernet | constraint | architecture | params | predicted latency (ms) | valid loss in supernet (bits) |",
        "|---|---|---|---|---:|---:|---:|",
    ]
    for p in sorted(picks, key=lambda r: r["name"]):
        limit = f"{int(p['constraint']):,} params" if p["constraint_kind"] == "params" else f"{p['constraint']} ms"
        lines.append(
            f"| `{p['name']}` | {SUPERNETS.get(p['supernet'], p['supernet'])} | {limit} | {p['architecture']} | "
            f"{p['params']:,} | {fmt(p.get('predicted_latency_ms'))} | {p['valid_loss']:.3f} |"
        )
    lines += [
        "",
        "How far each supernet told its candidates apart (the search's candidates, losses inside the supernet):",
        "",
    ]
    spreads = {p["supernet"]: p["search"] for p in picks if "search" in p}
    for sup, sp in sorted(spreads.items()):
        lines.append(
            f"- {SUPERNETS.get(sup, sup)}: {sp['candidates']} candidates, validation loss {sp['loss_min']:.3f}-"
            f"{sp['loss_max']:.3f} bits, Kendall tau(params, loss) {sp['tau_params_loss']:+.2f} (negative: larger is better)."
        )
    lines += ["", "Pretrained alone (stock roberta of the pick's shape, the supernets' recipe, their wall-clock):", ""]
    for a in sorted(alone, key=lambda r: r["name"]):
        pt = a["pretraining"]
        final = (pt["final"] or {}).get("ppl")
        lines.append(
            f"- `{a['name']}`: {pt['updates']:,} updates in {pt['train_wall_s'] / 3600:.2f} h ({pt.get('dtype', '?')}), "
            f"valid ppl {fmt(final, '.1f')}{divergence(pt['valid'], final)}."
        )
    return lines + [""]


def divergence(valid: list[dict], final: float | None) -> str:
    """A note when training went backwards: the final perplexity 25% or more above the best one."""
    best = min(valid, key=lambda v: v["ppl"], default=None)
    if best is None or final is None or final < 1.25 * best["ppl"]:
        return ""
    return f" (**diverged**: best {best['ppl']:.1f} at {best['updates']:,} updates)"


def section_starts(finetunes: list[dict], tasks: list[str], title: str = "Fine-tuning: starts x tasks") -> list[str]:
    """Starts x tasks per pick (mean ± sd (seeds)), and the export's margin over each other start."""
    done = {k: v for k, v in scores(finetunes).items() if k[2] in tasks}
    if not done:
        return []
    picks = sorted({k[0] for k in done})
    starts = [s for s in starts_of(finetunes) if s in STARTS or any(k[1] == s for k in done)]
    head = " | ".join(f"{t} {METRIC[t][2]}, {start_name(s)}" for t in tasks for s in starts)
    lines = [f"## {title}", "", f"| pick | {head} |", "|---|" + "---:|" * (len(tasks) * len(starts))]
    for p in picks:
        cells = [mean_sd(done.get((p, s, t)), ".3f" if t.startswith("CoLA") else ".2f") for t in tasks for s in starts]
        lines.append(f"| `{p}` | " + " | ".join(cells) + " |")
    if "SST-2 unseen" in tasks:
        lines += [
            "",
            "SST-2 unseen: the dev rows whose sentence lies inside no training line (`benchmarks/glue_unseen.py`).",
        ]
    if any(t in CLEAN_COLUMNS for t in tasks):
        lines += [
            "",
            "The clean split: fine-tuned on the training rows that lie inside no held-out sentence (SST-2's "
            "training set holds the phrases of every sentence it parsed, so the held-out sentences' own phrases "
            "are dropped), scored on the dev sentences that lie inside no training line "
            "(`benchmarks/glue_unseen.py --train-out`).",
        ]
    lines += ["", "Margins of the exported subnet (difference of the means; target against random weights: "]
    lines[-1] += ", ".join(f"{t} >= {TARGET[t]}" for t in tasks) + "):"
    lines.append("")
    for p in picks:
        parts = []
        for t in tasks:
            ex = done.get((p, "export", t))
            for other in starts[1:]:
                ot = done.get((p, other, t))
                if ex and ot:
                    d = statistics.mean(ex) - statistics.mean(ot)
                    mark = (" (target met)" if d >= TARGET[t] else " (target missed)") if other == "random" else ""
                    parts.append(f"{t} vs {start_name(other)} {d:+.3f}{mark}")
        lines.append(f"- `{p}`: " + ("; ".join(parts) if parts else "no pair finished yet") + ".")
    return lines + [""]


def ppl_at(pretraining: dict | None, updates: int | None) -> str:
    """Validation perplexity of the largest / smallest subnet at the last validation at or before ``updates``."""
    curve = [v for v in (pretraining or {}).get("valid", []) if "ppl_largest" in v and v["updates"] <= (updates or 0)]
    if not curve:
        return "–"
    v = max(curve, key=lambda v: v["updates"])
    return f"{v['ppl_largest']:.0f} / {v['ppl_smallest']:.0f}"


def section_sweep(sweep: list[dict]) -> list[str]:
    if not sweep:
        return []
    lines = [
        "## Recipe sweep (small budget, seed 1)",
        "",
        "A neuron-MoS supernet per point (the point's text, learning rate and options), its 4 x 128 subnet "
        "(FFN ratio 3) exported and fine-tuned with the study's recipe, seed 1; `random`: that subnet from random "
        "weights. Perplexity: the news and everyday validation text, largest / smallest subnet, at the export.",
        "",
        "| point | text | lr | options | pretraining updates | exported at | valid ppl | task | fine-tune lr "
        "| dev score | SST-2 unseen (%) | run |",
        "|---|---|---:|---|---:|---:|---:|---|---:|---:|---:|---|",
    ]
    for r in sorted(sweep, key=lambda r: (r["finetune"]["task"], r["name"])):
        ft = r["finetune"]
        key = METRIC[ft["task"]][1]
        at = r["exported_at_updates"]
        lines.append(
            f"| {r['name']} | {r['text'] or '–'} | {fmt(r['lr'], 'g')} | {r.get('extra') or '–'} | "
            f"{r['pretraining_budget_updates'] or '–'} | {at or '–'} | {ppl_at(r['pretraining'], at)} | {ft['task']} | "
            f"{ft['lr']:g} | {ft[key]:.3f} | {fmt(ft.get('dev_unseen_accuracy'))} | {where(r)} |"
        )
    return lines + [""]


def section_blind(index: Path) -> list[str]:
    if not index.is_file():
        return []
    rows = json.loads(index.read_text())
    return [
        "## Blind sets",
        "",
        f"{len(rows)} fine-tuned models labelled GLUE's dev sentences (`blind_dev.tsv`, labels not distributed), one "
        f"0/1 label per sentence: [`bert/pred/`](bert/pred/), index [`index.json`](bert/pred/index.json). "
        "They are scored independently; nothing here was selected or tuned on them.",
        "",
    ]


def bow_line(bow: dict | None) -> list[str]:
    """The bag-of-n-grams reference point of each SST-2 split (benchmarks/glue_bow_baseline.py)."""
    if not bow:
        return []
    acc = bow["accuracy"]
    return [
        f"A reference point that only counts words ({bow['model']}, nothing tuned): SST-2 accuracy "
        f"{acc['carved']:.2f}% on the dev split as given, {acc['unseen']:.2f}% on its unseen rows, "
        f"{acc['clean']:.2f}% on the clean split.",
        "",
    ]


def build(
    runs: dict[str, list[dict]], index: Path, notes: str, tasks: list[str], seeds: int, bow: dict | None = None
) -> str:
    lines = ["# BERT: pretraining that pays downstream", ""]
    lines += section_status(runs, tasks, seeds)
    lines += section_supernets(runs["supernet"])
    lines += section_picks(runs["pick"], runs["pretrained"])
    lines += section_starts(runs["finetune"], tasks)
    clean = [c for c in CLEAN_COLUMNS if any(k[2] == c for k in scores(runs["finetune"]))]
    lines += section_starts(runs["finetune"], clean, "Fine-tuning on the clean split: starts x tasks")
    lines += bow_line(bow)
    lines += section_sweep(runs["sweep"])
    lines += section_blind(index)
    if notes:
        lines += [notes.rstrip(), ""]
    return "\n".join(lines)


def plot_perplexity(supernets: list[dict], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for r in supernets:
        curve = r["pretraining"]["valid"]
        for key, style in (("ppl_largest", "-"), ("ppl_smallest", "--")):
            label = f"{SUPERNETS.get(r['name'], r['name'])}, {key.split('_')[1]}"
            ax.plot([v["updates"] for v in curve], [v[key] for v in curve], style, label=label)
    ax.set_xlabel("updates")
    ax.set_ylabel("valid perplexity")
    ax.set_yscale("log")
    ax.legend()
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    results = ROOT / "benchmarks" / "results"
    p.add_argument("--runs", type=Path, default=results / "bert_glue" / "runs")
    p.add_argument("--index", type=Path, default=results / "bert" / "pred" / "index.json")
    p.add_argument("--notes", type=Path, default=ROOT / "benchmarks" / "bert_glue_notes.md")
    p.add_argument("--tasks", nargs="+", default=["SST-2", "SST-2 unseen", "CoLA"], help="the table's columns")
    p.add_argument("--seeds", type=int, default=3, help="fine-tuning seeds a finished start has")
    p.add_argument("--out", type=Path, default=results / "bert.md")
    p.add_argument("--bow", type=Path, help="the bag-of-n-grams reference (default: RUNS/../bow_SST-2.json if present)")
    args = p.parse_args(argv)
    bow_path = args.bow or args.runs.parent / "bow_SST-2.json"
    try:
        runs = load(args.runs)
        notes = args.notes.read_text() if args.notes.is_file() else ""
        bow = json.loads(bow_path.read_text()) if bow_path.is_file() else None
        text = build(runs, args.index, notes, args.tasks, args.seeds, bow)
    except ReportError as exc:
        print(f"bert_glue_report: {exc}", file=sys.stderr)
        return 1
    except (KeyError, TypeError, ValueError) as exc:  # a malformed run: one line, nothing written
        print(f"bert_glue_report: a malformed run ({type(exc).__name__}: {exc})", file=sys.stderr)
        return 1
    if runs["supernet"]:
        plot_perplexity(runs["supernet"], args.runs.parent / "perplexity.png")
    write_atomic(args.out, text)
    print(f"wrote {args.out} ({sum(len(v) for v in runs.values())} runs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
