"""Writes ``benchmarks/results/multi30k.md`` (and its figures, hypotheses and architecture YAMLs under
``benchmarks/results/multi30k/``) from what ``benchmarks/multi30k.sh`` has produced so far: re-run it as
stages finish; missing pieces are reported as missing.

    python benchmarks/multi30k_report.py --work runs/multi30k --out benchmarks/results/multi30k.md
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
from pathlib import Path

import numpy as np
from fairseq_logs import seconds_per_update, train_progress

SUPERNETS = {
    "neuron": "neuron-wise MoS (sandwich)",
    "spos": "SPOS (HAT)",
    "sandwich": "sandwich (no MoS)",
    "layer": "layer-wise MoS (sandwich)",
}
PAPER_TABLE4 = {
    "spos": (1.84, 0.81),
    "sandwich": (1.62, 0.81),
    "layer": (1.61, 0.54),
    "neuron": (1.13, 0.71),
}  # MoS paper Table 4, WMT'14 En-De, BLEU MAE and Kendall tau, 15 archs
BASELINES = ("base_3x1", "base_3x2", "base_3x3", "base_4x4")
SWEEP = {
    "base_3x3": "the recipe: lr 2e-3, 1,000 warm-up, dropout 0.3",
    "sweep/lr1e-3": "lr 1e-3, 500 warm-up",
    "sweep/dropout0.2": "dropout 0.2",
}
SUBSETS = {"valid": "valid (val 2016)", "test": "test (test 2017 flickr)", "test1": "test_mscoco (test 2017 mscoco)"}
SET_NAMES = {"valid": "valid", "test": "test", "test1": "test_mscoco"}  # fairseq subset -> the data set's own name
NAN = float("nan")


def read_json(path: Path):
    return json.loads(path.read_text()) if path.is_file() else None


def bleu_of(dir_: Path, subset: str) -> float:
    r = read_json(dir_ / f"bleu.{subset}.json")
    return r["bleu"] if r else NAN


def fmt(x: float, spec: str = ".2f") -> str:
    return "–" if x is None or (isinstance(x, float) and np.isnan(x)) else format(x, spec)


def arch_text(path: Path) -> tuple[str, int]:
    """(description safe inside a Markdown table, parameters with the study's 8,008-type vocabulary)."""
    from mos_fairseq.translation.architecture import Architecture

    arch = Architecture.load(path)
    return arch.describe().replace("|", "‖"), arch.num_params(8008, 8008)


def status(dir_: Path) -> str:
    if (dir_ / ".done").exists():
        return ""
    if (dir_ / ".stopped").exists():
        return f" ({(dir_ / '.stopped').read_text().strip()})"
    log = dir_ / "train" / "train.log"
    log = log if log.is_file() else dir_ / "train.log"
    p = train_progress(log)
    epochs = [int(v.get("epoch", 0)) for v in p["valid"]]
    if epochs:
        return f" (in training: {max(epochs)} epoch{'' if max(epochs) == 1 else 's'} done)"
    return " (in training)" if p["updates"] else " (not started)"


def train_log(dir_: Path) -> Path:
    return dir_ / "train" / "train.log" if (dir_ / "train" / "train.log").is_file() else dir_ / "train.log"


def valid_curve(dir_: Path, key: str = "nll_loss") -> list[tuple[int, float]]:
    """(epoch, validation value) of a fairseq-train log, the last value per epoch."""
    curve: dict[int, float] = {}
    text = train_log(dir_).read_text(errors="replace") if train_log(dir_).is_file() else ""
    for line in text.splitlines():
        if "valid on 'valid' subset" not in line:
            continue
        m = re.search(r"epoch (\d+)", line)
        v = re.search(rf"\| {key} ([-+0-9.eE]+)", line)
        if m and v:
            curve[int(m.group(1))] = float(v.group(1))
    return sorted(curve.items())


def model_latency(work: Path, ckpt: Path) -> float:
    """The model's latency from stage compare_latency (every model timed together, interleaved), else from
    the single-pass measurements (stages baseline_latency, pick_latency)."""
    for name in ("compared.json", "models.json"):
        data = read_json(work / "latency" / name)
        entry = (data or {}).get("models", {}).get(str(ckpt.resolve()))
        if entry:
            return entry["latency_ms"]
    return NAN


def latency_axis(work: Path) -> str:
    """What the models' latency figures are: one sentence for the report."""
    data = read_json(work / "latency" / "compared.json")
    if data and data["models"]:
        e = next(iter(data["models"].values()))
        return (
            f"all {e.get('measured_with', len(data['models']))} models compared timed together "
            f"(`mos-nas measure-latency --checkpoint ... --rounds {len(e.get('rounds_ms', [1]))}`: each model once "
            f"per round, rotated order, median over rounds; {e['measured_at']}, {data['device']['cpu']}, 1 thread)"
        )
    return (
        "**provisional**: each model measured once, in turn (stages baseline_latency / pick_latency); this host's "
        "speed drifts by 20-60% within minutes, so these figures are not yet comparable with each other "
        "(stage compare_latency times every model together at the end)"
    )


def pick_latency(work: Path, pick: dict) -> tuple[float, str]:
    """A pick's measured latency and where it comes from: its export measured like the baselines (stage
    pick_latency), else the search's own ``--verify-latency`` measurement of the same architecture."""
    lat = model_latency(work, work / "picks" / pick["name"] / "export" / "checkpoint.pt")
    if not np.isnan(lat):
        return lat, ""
    measured = pick.get("measured_latency_ms")
    return (NAN, "") if measured is None else (float(measured), " (search's check)")


# ---- sections ------------------------------------------------------------------------------------------
def section_setup(work: Path, root: Path) -> list[str]:
    lscpu = (work / "latency" / "lscpu.txt").read_text() if (work / "latency" / "lscpu.txt").is_file() else ""
    cpu = next((line.split(":", 1)[1].strip() for line in lscpu.splitlines() if line.startswith("Model name")), "?")
    commits = sorted(
        {(d / "commit").read_text().strip() for d in work.glob("*/*") if (d / "commit").is_file()}
        | {(d / "commit").read_text().strip() for d in work.glob("*/*/*") if (d / "commit").is_file()}
    )
    preset = (root / "configs" / "retrain" / "multi30k.yml").read_text()
    recipe = " ".join(line for line in preset.splitlines() if line and not line.startswith("#"))
    return [
        f"Machine: **{cpu}** (`lscpu` in `runs/multi30k/latency/lscpu.txt`), 2 cores; every training process and every "
        "latency measurement runs on one thread pinned to one core (`taskset`), two lanes side by side. Every latency "
        "figure below comes from this one machine.",
        f"Code: commit(s) {', '.join(f'`{c}`' for c in commits) or '?'} of this repository (recorded per run in "
        "`commit`).",
        "",
        "Data: `../shared/data/multi30k-ende` (Multi30k task 1 En-De: train 29,000 pairs; valid = val 2016, 1,014; "
        "test = test 2017 flickr, 1,000; test_mscoco = test 2017 mscoco, 461), one joined sentencepiece vocabulary of "
        "8k pieces (8,008 types) trained on train only (`mos-nas prepare-data ... --test test test_mscoco`).",
        "BLEU: sacreBLEU on detokenised output against the raw reference files (signature "
        "`nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:2.6.0`), full sets, beam 4, lenpen 0.6 (`mos-nas bleu "
        "--refs`); hypotheses in `benchmarks/results/multi30k/hyp/NAME.SET.txt` (detokenised, one line per source "
        "line), so any BLEU here recomputes with `sacrebleu ../shared/data/multi30k-ende/SET.de -i "
        "benchmarks/results/multi30k/hyp/NAME.SET.txt -b`.",
        "",
        f"Recipe of every model trained alone (`configs/retrain/multi30k.yml`): `{recipe}`; the last 5 epoch "
        "checkpoints are averaged (`mos-nas average --dir D --last 5`) and the average is what is scored and timed.",
    ]


def section_sweep(work: Path) -> list[str]:
    lines = [
        "## Recipe sweep (stock transformer 256, FFN 1024, 4 heads, 3+3 layers)",
        "",
        "| run | change | valid nll @ epoch 5 / 10 / 15 / 20 (bits) | valid BLEU | test BLEU | test_mscoco BLEU |",
        "|---|---|---|---:|---:|---:|",
    ]
    for rel, change in SWEEP.items():
        d = work / ("standalone/" + rel if "/" not in rel else rel)
        if not d.is_dir():
            continue
        curve = dict(valid_curve(d))
        points = " / ".join(fmt(curve.get(e, NAN), ".3f") for e in (5, 10, 15, 20))
        lines.append(
            f"| {rel}{status(d)} | {change} | {points} | {fmt(bleu_of(d, 'valid'))} | {fmt(bleu_of(d, 'test'))} | "
            f"{fmt(bleu_of(d, 'test1'))} |"
        )
    return lines


def section_latency(work: Path, space: str) -> list[str]:
    lines = ["## Latency of the space on this CPU and the estimator", ""]
    side = read_json(work / "latency" / f"{space}.json")
    report = read_json(work / "latency" / f"{space}.report.json")
    if not side or not report:
        return lines + ["Not measured yet."]
    p = side["protocol"]
    lo, hi = report["latency_range_ms"]
    lines += [
        f"HAT's protocol (`mos-nas measure-latency --space {space} --n-archs {report['rows']} --threads 1 "
        f"--repeats {p['repeats']} --warmup {p['warmup']} --src-len {p['src_len']} --tgt-len {p['tgt_len']} "
        f"--beam {p['beam']}`, pinned to a core that ran nothing else): encoder on one {p['src_len']}-token "
        f"sentence + {p['tgt_len']} incremental decoder steps on {p['beam']} hypotheses, trimmed mean of "
        f"{p['repeats']} runs; {p['src_len']} tokens is Multi30k's mean sentence length (13-16 pieces) plus EOS. "
        f"{report['rows']} random architectures measure {lo:.1f}-{hi:.1f} ms. Estimator "
        f"(`mos-nas train-estimator`), held-out {report['n_test']} rows:",
        "",
        "| model | RMSE ms | MAE ms | R² | Kendall τ |",
        "|---|---:|---:|---:|---:|",
    ]
    chosen = (report.get("recipe") or {}).get("name")
    for name, m in report["models"].items():
        how = "chosen by 5-fold CV on the training rows" if "selection" in report else "the default recipe"
        label = f"**{name}** (the estimator: {how})" if name == chosen else name
        lines.append(f"| {label} | {m['rmse']:.2f} | {m['mae']:.2f} | {m['r2']:.3f} | {m['kendall_tau']:.3f} |")
    return lines


def trained_alone_cells(d: Path) -> dict[str, str]:
    """Table cells of a model trained alone in directory ``d``: name (with its status), architecture, parameters,
    last validation nll and BLEU of every subset."""
    desc, params = arch_text(d / "arch.yml")
    curve = valid_curve(d)
    return {
        "name": f"{d.name}{status(d)}",
        "arch": desc,
        "params": f"{params / 1e6:.2f}M",
        "nll": fmt(curve[-1][1] if curve else NAN, ".3f"),
        **{subset: fmt(bleu_of(d, subset)) for subset in SUBSETS},
    }


def standalone_rows(work: Path, names: list[str]) -> list[str]:
    rows = []
    for name in names:
        d = work / "standalone" / name
        if not (d / "arch.yml").is_file():
            continue
        c = trained_alone_cells(d)
        lat = model_latency(work, d / "checkpoint_avg.pt")
        static = model_latency(work, work / "latency" / "static" / name / "checkpoint.pt")
        rows.append(
            f"| {c['name']} | {c['arch']} | {c['params']} | {fmt(lat)} / {fmt(static)} | {c['nll']} | {c['valid']} | "
            f"{c['test']} | {c['test1']} |"
        )
    return rows


def section_baselines(work: Path) -> list[str]:
    head = [
        "## Hand-designed baselines and the largest subnet, trained alone",
        "",
        "Stock fairseq `transformer`s (uniform layers, decoder on the last encoder layer, shared embeddings) and the "
        "space's largest subnet (`mos_static_transformer`: every decoder layer attends to the last 3 encoder layers). "
        "Latency: the averaged checkpoint as trained (a stock `transformer`) / the same architecture as our static "
        "model (what every pick runs on; exported from a supernet, weights irrelevant), the space's protocol; "
        + latency_axis(work)
        + ".",
        "",
        "| model | architecture | params | latency ms, as trained / static | valid nll (bits, last epoch) | valid BLEU | test BLEU | "
        "test_mscoco BLEU |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    return head + standalone_rows(work, [*BASELINES, "largest"])


def section_supernets(work: Path, supernets: list[str]) -> list[str]:
    lines = [
        "## Supernets (same recipe, epochs and batch)",
        "",
        "| supernet | updates | s/update (median) | valid nll largest / smallest, last epoch (bits) |",
        "|---|---:|---:|---|",
    ]
    for name in supernets:
        d = work / "supernets" / name
        if not d.is_dir():
            continue
        p = train_progress(d / "train.log")
        v = p["valid"][-1] if p["valid"] else {}
        rate = seconds_per_update(d / "train.log")
        lines.append(
            f"| {SUPERNETS[name]}{status(d)} | {p['updates']} | {fmt(NAN if rate is None else rate)} | "
            f"{fmt(v.get('nll_loss_largest', NAN), '.3f')} / {fmt(v.get('nll_loss_smallest', NAN), '.3f')} |"
        )
    return lines


def picks(work: Path, supernets: list[str]) -> list[dict]:
    out = []
    for sup in supernets:
        summary = read_json(work / "search" / sup / "summary.json")
        for entry in summary or []:
            name = f"{sup}_{Path(entry['arch']).stem}"
            out.append({"supernet": sup, "name": name, **entry})
    return out


def baseline_curve(work: Path, subset: str = "test") -> tuple[np.ndarray, np.ndarray]:
    pts = []
    for name in BASELINES:
        d = work / "standalone" / name
        lat, bleu = model_latency(work, d / "checkpoint_avg.pt"), bleu_of(d, subset)
        if not (np.isnan(lat) or np.isnan(bleu)):
            pts.append((lat, bleu))
    pts.sort()
    return np.array([p[0] for p in pts]), np.array([p[1] for p in pts])


def estimated_baselines(work: Path, space: str) -> dict[str, float]:
    """The estimator's latency of each baseline (ms): the default search constraints are these, 1 decimal."""
    path = work / "latency" / f"{space}.safetensors"
    if not path.is_file():
        return {}
    from mos_fairseq.latency.estimator import LatencyEstimator
    from mos_fairseq.translation.architecture import Architecture

    estimator = LatencyEstimator.load(path)
    archs = {n: work / "standalone" / n / "arch.yml" for n in BASELINES}
    return {n: estimator.predict_arch(Architecture.load(a)) for n, a in archs.items() if a.is_file()}


def within_mark(work: Path, pick: dict, lat: float, source: str, estimated: dict[str, float]) -> str:
    """Is the pick's measured latency within its constraint? Where the constraint is a baseline's estimated
    latency and both were timed together, the test is against that baseline's measured latency (the same
    window); otherwise against the constraint's milliseconds."""
    if np.isnan(lat):
        return ""
    ref = next((n for n, ms in estimated.items() if f"{ms:.1f}" == f"{pick['constraint']:.1f}"), None)
    if ref and not source:
        ref_ms = model_latency(work, work / "standalone" / ref / "checkpoint_avg.pt")
        if not np.isnan(ref_ms):
            ok = " ✓" if lat <= ref_ms else " **over**"
            return f"{ok} ({ref}: {ref_ms:.2f}, ratio {lat / ref_ms:.2f})"
    return (" ✓" if lat <= pick["constraint"] else " **over**") + source


def section_search(work: Path, supernets: list[str], space: str) -> list[str]:
    lines = ["## Searched architectures: inherited, fine-tuned, retrained", ""]
    ps = picks(work, supernets)
    if not ps:
        return lines + ["Search not run yet."]
    xs, ys = baseline_curve(work)
    estimated = estimated_baselines(work, space)
    lines += [
        "Constraints: the estimator's latencies of "
        + ", ".join(f"{n} ({ms:.1f} ms)" for n, ms in estimated.items() if n != "base_4x4")
        + ", i.e. each baseline on the scale the search works in; a pick is within its constraint when it "
        "measures no slower than that baseline timed in the same window.",
        "",
        "One `mos-nas search` per supernet (estimator above; 3 latency constraints in one run). Each pick is "
        "exported (inherited weights, no retraining), fine-tuned from those weights for a quarter of the recipe's "
        "epochs (5, average of the last 2), and retrained from scratch with the baselines' recipe. Latency: the "
        "export, measured like the baselines (before stage pick_latency has run: the search's own "
        "`--verify-latency` measurement of the same architecture, marked so). Baseline curve: test BLEU of the baselines interpolated linearly at "
        "the pick's measured latency.",
        "",
        "| supernet | constraint ms | architecture | params | predicted / measured ms | test BLEU inherited / "
        "fine-tuned / retrained | baseline curve there | test_mscoco inherited / fine-tuned / retrained |",
        "|---|---:|---|---:|---|---|---:|---|",
    ]
    for p in ps:
        pick, ft, re_ = work / "picks" / p["name"], work / "finetune" / p["name"], work / "standalone" / p["name"]
        lat, source = pick_latency(work, p)
        within = within_mark(work, p, lat, source, estimated)
        curve, note = curve_at(xs, ys, lat)
        lines.append(
            f"| {SUPERNETS[p['supernet']]} | {p['constraint']:g} | {p['architecture'].replace('|', '‖')} | "
            f"{p['params'] / 1e6:.2f}M | {fmt(p['predicted_latency_ms'])} / {fmt(lat)}{within} | "
            f"{fmt(bleu_of(pick, 'test'))} / {fmt(bleu_of(ft, 'test'))} / {fmt(bleu_of(re_, 'test'))} | {fmt(curve)}{note} | "
            f"{fmt(bleu_of(pick, 'test1'))} / {fmt(bleu_of(ft, 'test1'))} / {fmt(bleu_of(re_, 'test1'))} |"
        )
    notes = [f"- {p['name']} (≤ {p['constraint']:g} ms): {p['verify_note']}" for p in ps if p.get("verify_note")]
    if notes:
        ratios = [1 / p["predicted_vs_measured"] for p in ps if p.get("predicted_vs_measured")]
        slower = f" (there: {np.median(ratios):.2f}x the estimator's figures)" if ratios else ""
        notes.insert(
            0,
            "The search's own `--verify-latency` check times each pick once and compares it with the constraint's "
            f"milliseconds, i.e. with the estimator's scale; it runs at whatever speed the host has then{slower}, "
            "so its flags say how far the host drifted, not whether a pick is slower than its baseline (the column "
            "above):",
        )
    return lines + ([""] + notes if notes else [])


def curve_at(xs: np.ndarray, ys: np.ndarray, lat: float) -> tuple[float, str]:
    """The baselines' BLEU curve at latency ``lat`` (linear interpolation) and a note where it is not defined."""
    if len(xs) < 2 or np.isnan(lat):
        return NAN, ""
    if lat < xs[0]:  # faster than every baseline: the fastest one is what a pick must match
        return float(ys[0]), f" (the fastest baseline, {xs[0]:.1f} ms: the pick is faster)"
    if lat > xs[-1]:
        return NAN, " (slower than every baseline)"
    return float(np.interp(lat, xs, ys)), ""


def section_table4(work: Path) -> list[str]:
    lines = ["## Table 4 in BLEU: inherited vs trained alone", ""]
    result = read_json(work / "table4" / "gap" / "gap.json")
    if not result:
        return lines + ["Not computed yet (needs the supernets and every model trained alone)."]
    lines += [
        (
            ""
            if len(result["archs"]) >= 8
            else f"**Partial** ({len(result['archs'])} architectures so far; the final "
            "table has every model trained alone, at least 8). "
        )
        + f"`mos-nas gap` over the {len(result['archs'])} architectures trained alone (baselines, largest, retrained "
        "picks): each one's averaged standalone checkpoint against the same architecture inside each supernet, "
        f"test BLEU (full set, beam 4, lenpen 0.6, sacreBLEU) and valid nll (bits per token), both sides measured "
        "the same way in one process.",
        "",
        "| supernet | BLEU MAE | BLEU Kendall τ | loss MAE (bits) | loss Kendall τ | archs: BLEU / loss | "
        "paper BLEU MAE / τ (WMT'14) |",
        "|---|---:|---:|---:|---:|---|---|",
    ]
    with_loss = sum(s["valid_loss"] is not None for s in result["standalone"].values())
    for ckpt, r in result["supernets"].items():
        sup = Path(ckpt).parent.name
        paper = PAPER_TABLE4.get(sup)
        loss = r["loss"]  # None: fewer than 2 standalone models with a validation loss
        lines.append(
            f"| {SUPERNETS.get(sup, sup)} | {r['bleu']['mae']:.2f} | {r['bleu']['kendall_tau']:.3f} | "
            + (f"{loss['mae']:.3f} | {loss['kendall_tau']:.3f} | " if loss else "– | – | ")
            + f"{r['bleu']['n']} / {loss['n'] if loss else with_loss} | "
            f"{f'{paper[0]:.2f} / {paper[1]:.2f}' if paper else '–'} |"
        )
    lines += [
        "",
        "| architecture | standalone BLEU / nll | "
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
        loss = "–" if s["valid_loss"] is None else f"{s['valid_loss']:.3f}"  # a figure without its loss
        lines.append(f"| {name} | {s['bleu']:.2f} / {loss} | " + " | ".join(cells) + " |")
    return lines


# ---- figures and artefacts ---------------------------------------------------------------------------
def figure_curves(work: Path, supernets: list[str], path: Path) -> bool:
    from mos_fairseq.core.plotting import pyplot

    plt = pyplot()
    fig, (a, b) = plt.subplots(1, 2, figsize=(12, 4.5))
    drawn = False
    for d in sorted((work / "standalone").glob("*")) + sorted((work / "sweep").glob("*")):
        curve = valid_curve(d)
        if curve:
            style = "--" if "sweep" in str(d) else "-"
            a.plot(*zip(*curve), style, label=d.name if "sweep" not in str(d) else f"sweep {d.name}")
            drawn = True
    a.set(title="models trained alone", xlabel="epoch", ylabel="valid nll (bits)")
    for name in supernets:
        for key, style in (("nll_loss_largest", "-"), ("nll_loss_smallest", ":")):
            curve = valid_curve(work / "supernets" / name, key)
            if curve:
                b.plot(*zip(*curve), style, label=f"{name} {key.rsplit('_', 1)[1]}")
                drawn = True
    b.set(title="supernets (subnets inside)", xlabel="epoch", ylabel="valid nll (bits)")
    for ax, size in ((a, 6), (b, 7)):
        if ax.get_legend_handles_labels()[0]:  # a panel with nothing drawn yet gets no empty legend
            ax.legend(fontsize=size)
        else:  # e.g. a later machine that only trained a supernet again
            ax.text(0.5, 0.5, "none in this runs directory", ha="center", va="center", transform=ax.transAxes)
    for ax in (a, b):
        ax.set_ylim(top=min(ax.get_ylim()[1], 5))
    fig.tight_layout()
    if drawn:
        fig.savefig(path, dpi=110)
    plt.close(fig)
    return drawn


def figure_latency_bleu(work: Path, supernets: list[str], path: Path) -> bool:
    from mos_fairseq.core.plotting import pyplot

    xs, ys = baseline_curve(work)
    if len(xs) < 2:
        return False
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 5))
    ax.plot(xs, ys, "k-o", label="hand-designed baselines (trained alone)")
    lg = work / "standalone" / "largest"
    if not np.isnan(model_latency(work, lg / "checkpoint_avg.pt")):
        ax.plot(
            [model_latency(work, lg / "checkpoint_avg.pt")], [bleu_of(lg, "test")], "ks", label="largest subnet alone"
        )
    for sup in supernets:
        ps = [p for p in picks(work, [sup])]
        for kind, root in PICK_KINDS.items():
            pts = [(pick_latency(work, p)[0], bleu_of(work / root / p["name"], "test")) for p in ps]
            scatter_picks(ax, pts, sup, kind)
    save_latency_bleu(fig, ax, path, "measured latency on this CPU (ms, 1 thread)", "Multi30k En-De: latency vs BLEU")
    return True


PICK_KINDS = {"inherited": "picks", "fine-tuned": "finetune", "retrained": "standalone"}  # kind -> runs subdirectory


def scatter_picks(ax, pts: list[tuple[float, float]], sup: str, kind: str) -> None:
    """One supernet's picks of one kind (inherited / fine-tuned / retrained) as (latency, BLEU) points of
    HAT's figure; points with a missing value are left out."""
    colour = {"neuron": "tab:red", "spos": "tab:blue", "sandwich": "tab:green", "layer": "tab:orange"}.get(sup)
    marker = {"inherited": "o", "fine-tuned": "^", "retrained": "*"}[kind]
    pts = [pt for pt in pts if not np.isnan(pt[0]) and not np.isnan(pt[1])]
    if pts:
        ax.scatter(
            *zip(*pts),
            marker=marker,
            s=80 if marker == "*" else 45,
            color=colour,
            facecolors="none" if kind == "inherited" else colour,
            label=f"{SUPERNETS[sup]}: {kind}",
        )


def save_latency_bleu(fig, ax, path: Path, xlabel: str, title: str) -> None:
    from mos_fairseq.core.plotting import pyplot

    ax.set(xlabel=xlabel, ylabel="test BLEU (test 2017 flickr)", title=title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    pyplot().close(fig)


def copy_artefacts(work: Path, dest: Path) -> int:
    """Every scored model's hypotheses and architecture YAML into ``dest`` (hyp/NAME.SET.txt, archs/NAME.yml).

    SET is the data set's name (valid, test, test_mscoco), not fairseq's subset name (test1), so that a
    hypothesis file sits beside the reference it is scored against.
    """
    n = 0
    for kind in ("standalone", "sweep", "picks", "finetune"):
        for d in sorted((work / kind).glob("*")):
            tag = {"standalone": "", "sweep": "sweep_", "picks": "inherited_", "finetune": "finetuned_"}[kind]
            name = tag + d.name
            for subset in SUBSETS:
                hyp = d / f"hyp.{subset}.txt"
                if hyp.is_file():
                    (dest / "hyp").mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(hyp, dest / "hyp" / f"{name}.{SET_NAMES[subset]}.txt")
                    n += 1
            if (d / "arch.yml").is_file():
                (dest / "archs").mkdir(parents=True, exist_ok=True)
                shutil.copyfile(d / "arch.yml", dest / "archs" / f"{name}.yml")
    return n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", default="runs/multi30k")
    ap.add_argument("--out", default="benchmarks/results/multi30k.md")
    ap.add_argument("--supernets", nargs="+", default=["neuron", "spos", "sandwich"])
    ap.add_argument("--space", default="hat_cpu_multi30k", help="the search space the study measured")
    ap.add_argument("--notes", help="a Markdown file whose text goes after the tables")
    args = ap.parse_args()
    work, out = Path(args.work), Path(args.out)
    root = Path(__file__).resolve().parent.parent
    supernets = [s for s in args.supernets if (work / "supernets" / s).is_dir()]
    artefacts = out.parent / "multi30k"
    artefacts.mkdir(parents=True, exist_ok=True)
    n_hyps = copy_artefacts(work, artefacts)
    figures = []
    if figure_latency_bleu(work, supernets, artefacts / "latency_bleu.png"):
        figures.append("![latency vs BLEU (HAT's figure)](multi30k/latency_bleu.png)")
    if figure_curves(work, supernets, artefacts / "learning_curves.png"):
        figures.append("![validation curves](multi30k/learning_curves.png)")
    head = [
        "# Multi30k En-De: searched Transformers vs hand-designed ones, and the supernet gap, in BLEU",
        "",
        "Produced by `benchmarks/multi30k.sh` (stages and lanes in its header) and this report "
        "(`python benchmarks/multi30k_report.py --work runs/multi30k --notes benchmarks/multi30k_notes.md`). "
        f"{n_hyps} hypothesis files and the architecture of every row are in `benchmarks/results/multi30k/`; any "
        "row retrains with `mos-nas retrain --arch benchmarks/results/multi30k/archs/NAME.yml --data BIN "
        "--save-dir D --preset multi30k`.",
        "",
    ]
    body: list[str] = []
    for section in (
        section_setup(work, root),
        section_sweep(work),
        section_baselines(work),
        section_latency(work, args.space),
        section_supernets(work, supernets),
        section_search(work, supernets, args.space),
        section_table4(work),
    ):
        body += section + [""]
    body += figures
    notes = ["", Path(args.notes).read_text()] if args.notes and Path(args.notes).is_file() else []
    out.write_text("\n".join(head + body + notes) + "\n")
    print(f"wrote {out} ({n_hyps} hypothesis files)")


if __name__ == "__main__":
    main()
