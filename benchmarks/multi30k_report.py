"""The Multi30k study's report, the last step of every unit: ``benchmarks/results/multi30k.md`` and its
figures, built from the committed results alone: ``RESULTS/runs/*.json`` (one self-describing run per model,
written by ``benchmarks/multi30k.sh record`` or kept from the first study) and the index
``RESULTS/results.json``. Nothing is read from a runs directory, so any unit's clone rebuilds the same report.

Sections: the units done and to do; every model with its BLEU, validation nll, commit and machine; latency
against BLEU for the models timed together on one machine, with the hand-designed envelope (the best BLEU of
a hand-designed model trained alone at or below each latency); Table 4 (supernet-inherited against trained alone, MAE and Kendall tau
beside the MoS paper's); the blind sets' hypotheses; the first study's conclusion (``--conclusion``).

    python benchmarks/multi30k_report.py [--results benchmarks/results/multi30k] [--out benchmarks/results/multi30k.md]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import write_atomic  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SUPERNETS = {
    "neuron": "neuron-wise MoS (sandwich)",
    "spos": "SPOS (HAT)",
    "sandwich": "sandwich (no MoS)",
    "layer": "layer-wise MoS (sandwich)",
}
PAPER_TABLE4 = {"neuron": (1.13, 0.71), "spos": (1.84, 0.81), "sandwich": (1.62, 0.81), "layer": (1.61, 0.54)}
SAMPLES = Path(__file__).resolve().parent / "multi30k_samples"  # Table 4's samples, trained alone in units R
UNIT_MODELS = (
    "base_3x1",
    "base_3x2",
    "base_3x3",
    "base_4x4",
    "deep_6x1",
    "deep_6x2",
    "wide_3x1",
    "largest",
    *sorted(p.stem for p in SAMPLES.glob("sample_*.yml")),
)
INDEX_FIELDS = ("name", "role", "supernet", "constraint_ms", "latency_ms", "hyp")


class ReportError(Exception):
    """A one-line reason the report cannot be built (nothing is written then)."""


def load(results: Path) -> list[dict]:
    """Every run of the index, its run file read and checked against its row."""
    index_path = results / "results.json"
    try:
        index = json.loads(index_path.read_text())
    except (OSError, ValueError) as exc:
        raise ReportError(f"cannot read the index {index_path}: {exc}") from None
    runs = []
    for row in index:
        missing = [k for k in INDEX_FIELDS if k not in row]
        if missing:
            raise ReportError(f"{index_path}: row {row.get('name', '?')} lacks {', '.join(missing)}")
        path = results / "runs" / f"{row['name']}.json"
        if not path.is_file():
            raise ReportError(f"{index_path} names {row['name']} but {path} does not exist")
        run = json.loads(path.read_text())
        if (run.get("latency") or {}).get("ms") != row["latency_ms"] or run["role"] != row["role"]:
            raise ReportError(f"{index_path}: row {row['name']} disagrees with its run (rebuild the index)")
        runs.append(run)
    on_disk = {p.stem for p in (results / "runs").glob("*.json")}
    if on_disk - {r["name"] for r in runs}:
        raise ReportError(f"{index_path} lacks runs {', '.join(sorted(on_disk - {r['name'] for r in runs}))}")
    return runs


def fmt(x: float | None, spec: str = ".2f") -> str:
    return "–" if x is None else format(x, spec)


def bleu(run: dict, subset: str = "test") -> float | None:
    return ((run.get("bleu") or {}).get(subset) or {}).get("bleu")


def describe(arch: dict) -> str:
    """An architecture in one Markdown-safe cell: widths, layers, FFN, heads (decoder: cross heads, span)."""
    e, d = arch["encoder"], arch["decoder"]
    return (
        f"enc {e['embed_dim']}x{e['layers']} ffn{e['ffn_dim']} h{e['heads']} ‖ dec {d['embed_dim']}x"
        f"{d['layers']} ffn{d['ffn_dim']} h{d['self_heads']} x{d['cross_heads']} span{d['cross_span']}"
    )


def where(run: dict) -> str:
    """Commit, CPU model and date of a run, as the report names them."""
    date = (run.get("trained_at") or "")[:10]
    return f"`{run['commit']}`, {run['machine']['cpu_model']}" + (f", {date}" if date else "")


def nll_cell(run: dict) -> str:
    v = run.get("valid_nll") or {}
    final, best = v.get("final"), v.get("best")
    avg = v.get("averaged_checkpoint") if v.get("inherited_weights") is None else v["inherited_weights"]
    cells = [
        fmt(final["nll_loss"], ".3f") if final else "–",
        fmt(best["nll_loss"], ".3f") if best else "–",
        fmt(avg, ".3f"),
    ]
    return " / ".join(cells)


def study_of(run: dict) -> int:
    return int(run.get("study", 2))


def current(runs: list[dict]) -> list[dict]:
    return [r for r in runs if study_of(r) != 1]


def group_by_commit(runs: list[dict]) -> dict[str, list[str]]:
    groups: dict[str, list[str]] = defaultdict(list)
    for r in runs:
        groups[where(r)].append(r["name"])
    return groups


def section_status(runs: list[dict]) -> list[str]:
    """Which units are done (R units with their models) and which remain."""
    now = current(runs)
    twins = [r for r in now if r["training"] == "alone" and r["name"].endswith("_bf16")]  # precision, not R
    sweeps = [r for r in now if r["role"] == "sweep"]  # recipe variants, not R
    alone = [r for r in now if r["training"] == "alone" and r not in twins and r not in sweeps]
    lines = ["## Status", ""]
    for sup, unit in (
        ("neuron", "S (neuron-MoS supernet, latency, search, picks inherited)"),
        ("spos", "SPOS (supernet, search, picks inherited)"),
    ):
        picks = [r for r in now if r["training"] == "inherited" and r["supernet"] == sup and r["role"] == "pick"]
        if picks:
            done = "; ".join(f"{w}: {', '.join(n)}" for w, n in group_by_commit(picks).items())
            lines.append(f"- **{unit}: done** ({done}).")
        else:
            lines.append(f"- {unit}: to do.")
    for w, names in group_by_commit(alone).items():
        lines.append(f"- **R: done** ({w}): {', '.join(sorted(names))}.")
    trained = {r["name"] for r in alone}
    todo = [n for n in UNIT_MODELS if n not in trained]
    to_retrain = sorted(
        {
            r["name"].removeprefix("inherited_")
            for r in now
            if r["training"] == "inherited" and r["role"] == "pick" and "table4" not in r
        }
        - trained
    )
    more = todo + to_retrain
    lines.append(f"- R: to do: {', '.join(more)}." if more else "- R: every model trained alone.")
    for w, names in group_by_commit(sweeps).items():
        lines.append(
            f"- Recipe sweep ({w}; not R, each variant beside its baseline below): {', '.join(sorted(names))}."
        )
    if twins:
        lines.append(
            f"- bf16 twins (a precision comparison, not R; benchmarks/results/cpu_bf16_quality.md): "
            f"{', '.join(sorted(r['name'] for r in twins))}."
        )
    timed = [r for r in now if (r.get("latency") or {}).get("ms") is not None]
    windows = {r["latency"]["window"] for r in timed}
    if now and len(timed) == len(now) and len(windows) == 1:
        lines.append(f"- **L: done** ({next(iter(windows))}): every model of this study timed together.")
    else:
        untimed = f"{len(now) - len(timed)} of {len(now)} models of this study not timed" if now else "no model yet"
        lines.append(f"- L (every model of the report timed together on one machine): to do ({untimed}).")
    return lines


def model_rows(runs: list[dict]) -> list[str]:
    lines = [
        "| model | role | weights | architecture | params | test BLEU | test_mscoco BLEU | valid BLEU | "
        "valid nll final / best / averaged or inherited (bits) | latency ms | commit, CPU, date |",
        "|---|---|---|---|---:|---:|---:|---:|---|---:|---|",
    ]
    for r in sorted(runs, key=lambda r: (r["training"] != "alone", r["role"], r["name"])):
        weights = r["training"] + (f" ({r['supernet']})" if r["supernet"] else "")
        lines.append(
            f"| {r['name']} | {r['role']} | {weights} | {describe(r['architecture'])} | {r['params'] / 1e6:.2f}M | "
            f"{fmt(bleu(r))} | {fmt(bleu(r, 'test_mscoco'))} | {fmt(bleu(r, 'valid'))} | {nll_cell(r)} | "
            f"{fmt((r.get('latency') or {}).get('ms'))} | {where(r)} |"
        )
    return lines


def section_models(runs: list[dict]) -> list[str]:
    now = current(runs)
    lines = ["## Models", ""]
    if now:
        lines += [
            "This study's runs (each `runs/NAME.json` holds its recipe, CPU flags, dtype and every epoch's "
            "validation nll):",
            "",
            *model_rows(now),
            "",
        ]
    else:
        lines += ["This study has no finished run yet.", ""]
    first = [r for r in runs if study_of(r) == 1 and "table4" not in r]
    if first:
        lines += [
            "The first study's runs (figures as it committed them; BLEU recomputed from its hypotheses):",
            "",
            *model_rows(first),
        ]
    return lines


def windows(runs: list[dict]) -> dict[str, list[dict]]:
    """The runs of each latency window (models timed together on one machine), windows in time order."""
    out: dict[str, list[dict]] = defaultdict(list)
    for r in runs:
        lat = r.get("latency") or {}
        if lat.get("ms") is not None and bleu(r) is not None:
            out[lat["window"]].append(r)
    return dict(sorted(out.items(), key=lambda kv: kv[1][0]["latency"]["measured_at"]))


def envelope(baselines: list[dict], ms: float) -> dict | None:
    """The hand-designed envelope at a latency: the baseline of best test BLEU at or below it."""
    below = [b for b in baselines if b["latency"]["ms"] <= ms]
    return max(below, key=lambda b: bleu(b) or 0.0) if below else None


def is_baseline(r: dict) -> bool:
    return r["role"] == "baseline" and r["training"] == "alone"


def is_hand_designed(r: dict) -> bool:
    """A baseline trained alone, with the recipe or with a variant of the recipe sweep: the envelope's models."""
    return r["role"] in ("baseline", "sweep") and r["training"] == "alone"


def section_latency(runs: list[dict], figure: str) -> list[str]:
    lines = ["## Latency against BLEU (models timed together on one machine)", ""]
    groups = windows(runs)
    if not groups:
        return lines + ["No model is timed yet."]
    lines += [
        "Within one window only: the hand-designed envelope at a latency is the best test BLEU of a "
        "hand-designed model trained alone (a baseline, with the recipe or with a variant of the recipe sweep) "
        "at or below it; a model faster than every one of them has none.",
        "",
    ]
    for window, members in groups.items():
        base = [r for r in members if is_hand_designed(r)]
        lines += [
            f"**{window}** (protocol: {members[0]['latency']['protocol']})",
            "",
            "| model | weights | latency ms | test BLEU | envelope there | − envelope |",
            "|---|---|---:|---:|---|---:|",
        ]
        for r in sorted(members, key=lambda r: r["latency"]["ms"]):
            env = None if is_hand_designed(r) else envelope(base, r["latency"]["ms"])
            there = (
                "(hand-designed)"
                if is_hand_designed(r)
                else (f"{fmt(bleu(env))} ({env['name']})" if env else "– (faster than every baseline)")
            )
            here, there_bleu = bleu(r), bleu(env) if env else None
            diff = fmt(here - there_bleu) if here is not None and there_bleu is not None else "–"
            weights = r["training"] + (f" ({r['supernet']})" if r["supernet"] else "")
            lines.append(f"| {r['name']} | {weights} | {r['latency']['ms']:.2f} | {fmt(bleu(r))} | {there} | {diff} |")
        lines.append("")
    lines.append(f"![latency against test BLEU, one panel per window]({figure})")
    return lines


def plot_latency(groups: dict[str, list[dict]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(groups), figsize=(6.5 * len(groups), 4.8), squeeze=False)
    colors = {"neuron": "tab:red", "spos": "tab:blue", None: "tab:gray"}
    for ax, (window, members) in zip(axes[0], groups.items()):
        base = sorted((r for r in members if is_hand_designed(r)), key=lambda r: r["latency"]["ms"])
        if base:
            xs = [b["latency"]["ms"] for b in base] + [max(r["latency"]["ms"] for r in members) * 1.05]
            ys = [bleu(envelope(base, x) or base[0]) for x in xs]  # every x is at or above the fastest
            ax.step(xs, ys, where="post", color="black", lw=1, label="hand-designed envelope")
            ax.scatter(xs[:-1], [bleu(b) for b in base], marker="s", color="black", label="hand-designed")
        for r in members:
            if is_hand_designed(r):
                continue
            marker = "^" if r["training"] == "inherited" else "o"
            ax.scatter(
                r["latency"]["ms"],
                bleu(r),
                marker=marker,
                color=colors.get(r["supernet"], "tab:green"),
                label=f"{r['role']} {r['training']}" + (f" ({r['supernet']})" if r["supernet"] else ""),
            )
        handles, labels = ax.get_legend_handles_labels()
        keep = dict(zip(labels, handles))
        ax.legend(keep.values(), keep.keys(), fontsize=7, loc="lower right")
        ax.set_xlabel("latency (ms, timed together)")
        ax.set_ylabel("test BLEU (sacreBLEU)")
        ax.set_title(window, fontsize=8)
        ax.grid(alpha=0.3)
    save(fig, path)


def save(fig, path: Path) -> None:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}")
    fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
    tmp.replace(path)


def plot_curves(runs: list[dict], path: Path) -> bool:
    """Validation nll per epoch of this study's models trained alone; False when none has two epochs."""
    curves = [
        (r["name"], [(e["epoch"], e["nll_loss"]) for e in r["valid_nll"]["per_epoch"]])
        for r in current(runs)
        if r["training"] == "alone" and len(r["valid_nll"]["per_epoch"]) > 1
    ]
    if not curves:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, points in curves:
        ax.plot(*zip(*points), marker=".", label=name)
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation nll (bits per token)")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    save(fig, path)
    return True


def supernet_run(r: dict) -> str:
    return ((r.get("recipe") or {}).get("supernet") or {}).get("supernet_run") or f"{r['supernet']}, {where(r)}"


def same_arch(a: dict, b: dict) -> bool:
    """The same network: every dimension equal, whichever space the architecture file names (a baseline of
    the first study's space is the same model in the wider space that contains it)."""
    return {k: v for k, v in a.items() if k != "space"} == {k: v for k, v in b.items() if k != "space"}


def table4_pairs(runs: list[dict]) -> dict[str, list[dict]]:
    """Per supernet training: (architecture, inherited BLEU / nll, trained-alone BLEU / nll, tool) rows. mos-nas
    gap's rows first (both sides measured by it); then each inherited pick whose architecture has no such
    row, against a model trained alone with the same architecture (BLEU only: its loss was not measured so)."""
    alone = [r for r in runs if r["training"] == "alone" and r["role"] != "sweep"]  # a sweep's recipe differs
    groups: dict[str, list[dict]] = defaultdict(list)
    for r in runs:
        pair = r.get("table4")
        if r["training"] == "inherited" and pair:
            groups[supernet_run(r)].append(
                {
                    "arch": pair["standalone"],
                    "supernet": r["supernet"],
                    "inherited": bleu(r),
                    "inherited_nll": r["valid_nll"]["averaged_checkpoint"],
                    "alone": pair["standalone_bleu"],
                    "alone_nll": pair["standalone_valid_nll"],
                    "tool": "gap",
                    "architecture": r["architecture"],
                }
            )
    for r in runs:
        if r["training"] != "inherited" or r.get("table4") or bleu(r) is None:
            continue
        rows = groups[supernet_run(r)]
        if any(same_arch(row["architecture"], r["architecture"]) for row in rows):
            continue
        twins = sorted(
            (a for a in alone if same_arch(a["architecture"], r["architecture"])),
            key=lambda a: (study_of(a) != study_of(r), a["name"]),
        )
        if twins and bleu(twins[0]) is not None:
            rows.append(
                {
                    "arch": twins[0]["name"],
                    "supernet": r["supernet"],
                    "inherited": bleu(r),
                    "inherited_nll": (r.get("valid_nll") or {}).get("inherited_weights"),
                    "alone": bleu(twins[0]),
                    "alone_nll": None,
                    "tool": "bleu",
                    "architecture": r["architecture"],
                }
            )
    return {k: v for k, v in groups.items() if v}


def agreement(pairs: list[tuple[float, float]]) -> tuple[float, float] | None:
    """(MAE, Kendall tau-b) of (trained alone, inherited) pairs; None under 2 pairs."""
    if len(pairs) < 2:
        return None
    from scipy.stats import kendalltau

    a, b = zip(*pairs)
    tau = kendalltau(a, b).statistic
    return sum(abs(x - y) for x, y in pairs) / len(pairs), float(tau) if tau == tau else 0.0


def section_table4(runs: list[dict]) -> list[str]:
    lines = ["## Table 4 in BLEU: supernet-inherited against trained alone", ""]
    groups = table4_pairs(runs)
    if not groups:
        return lines + ["No architecture has both an inherited and a trained-alone run yet."]
    lines += [
        "Test BLEU (full set, beam 4, lenpen 0.6, sacreBLEU) and validation nll (bits per token) of each "
        "architecture inside the supernet and trained alone. † : BLEU of an export (a pick or another Table 4 "
        "architecture, `mos-nas bleu`, stages picks and inherited) against its twin trained alone, with the "
        "export's nll inside the supernet where it was measured and no loss pair; the other rows are `mos-nas "
        "gap`'s, both sides measured by it.",
        "",
        "| supernet training | BLEU MAE | BLEU Kendall τ | loss MAE (bits) | loss Kendall τ | archs: BLEU / "
        "loss | paper BLEU MAE / τ (WMT'14) |",
        "|---|---:|---:|---:|---:|---|---|",
    ]
    for key, rows in groups.items():
        b = agreement([(r["alone"], r["inherited"]) for r in rows])
        losses = [
            (r["alone_nll"], r["inherited_nll"]) for r in rows if None not in (r["alone_nll"], r["inherited_nll"])
        ]
        loss = agreement(losses)
        paper = PAPER_TABLE4.get(rows[0]["supernet"])
        lines.append(
            f"| {key} | {fmt(b and b[0])} | {fmt(b and b[1], '.3f')} | {fmt(loss and loss[0], '.3f')} | "
            f"{fmt(loss and loss[1], '.3f')} | {len(rows)} / {len(losses)} | "
            f"{f'{paper[0]} / {paper[1]}' if paper else '–'} |"
        )
    for key, rows in groups.items():
        lines += [
            "",
            f"**{key}**",
            "",
            "| architecture (trained alone) | alone BLEU / nll | inherited BLEU / nll |",
            "|---|---|---|",
        ]
        for r in sorted(rows, key=lambda r: r["arch"]):
            mark = " †" if r["tool"] == "bleu" else ""
            lines.append(
                f"| {r['arch']}{mark} | {fmt(r['alone'])} / {fmt(r['alone_nll'], '.3f')} | "
                f"{fmt(r['inherited'])} / {fmt(r['inherited_nll'], '.3f')} |"
            )
    return lines


SWEEP_EPOCHS = (2, 5, 10)  # the validation nll shown at these epochs, then the last one


def recipe_change(run: dict, reference: dict) -> str:
    """The options of ``run``'s recipe that differ from ``reference`` (options; one a side lacks is off)."""
    mine = run["recipe"]["options"]

    def value(opts: dict, key: str, like: object) -> object:
        return opts.get(key, False if isinstance(like, bool) else None)

    changed = {
        k: value(mine, k, v) for k, v in {**reference, **mine}.items() if value(mine, k, v) != value(reference, k, v)
    }
    return ", ".join(f"{k} {v}" if not isinstance(v, bool) else (k if v else f"no {k}") for k, v in changed.items())


def preset_options(name: str) -> dict:
    """The options of the retrain preset ``configs/retrain/NAME.yml`` as this checkout holds it."""
    import yaml

    path = ROOT / "configs" / "retrain" / f"{name}.yml"
    try:
        return yaml.safe_load(path.read_text()) or {}
    except OSError as exc:
        raise ReportError(f"cannot read the recipe {path}: {exc}") from None


def nll_at(run: dict, epoch: int) -> float | None:
    return next((e["nll_loss"] for e in run["valid_nll"]["per_epoch"] if e["epoch"] == epoch), None)


def section_sweep(runs: list[dict]) -> list[str]:
    """Each recipe variant (stage sweep) beside this study's baseline of the same architecture trained with
    the recipe: validation nll along training, BLEU of the averaged checkpoint."""
    sweeps = [r for r in current(runs) if r["role"] == "sweep"]
    if not sweeps:
        return []
    lines = [
        "## Recipe sweep",
        "",
        "Variants of the recipe (`configs/retrain/multi30k.yml`) on one architecture, each beside the baselines of "
        "that architecture; the recipe column names each run's options that differ from the recipe as it stands. "
        "Validation nll in bits per token of each epoch's checkpoint; BLEU of the averaged last epochs "
        "(beam 4, lenpen 0.6).",
        "",
        "| model | architecture | recipe | "
        + " | ".join(f"valid nll ep {e}" for e in SWEEP_EPOCHS)
        + " | valid nll final | test BLEU | test_mscoco BLEU | valid BLEU | commit, CPU, date |",
        "|---|---|---|" + "---:|" * (len(SWEEP_EPOCHS) + 4) + "---|",
    ]
    shown: list[dict] = []
    for sweep in sorted(sweeps, key=lambda r: r["name"]):
        refs = [r for r in current(runs) if is_baseline(r) and same_arch(r["architecture"], sweep["architecture"])]
        shown += [r for r in refs if r not in shown] + [sweep]
    for r in shown:
        change = recipe_change(r, preset_options(r["recipe"]["preset"])) or "the recipe"
        final = r["valid_nll"]["final"] or {}
        lines.append(
            f"| {r['name']} | {describe(r['architecture'])} | {change} | "
            + " | ".join(fmt(nll_at(r, e), ".3f") for e in SWEEP_EPOCHS)
            + f" | {fmt(final.get('nll_loss'), '.3f')} (ep {final.get('epoch', '–')}) | {fmt(bleu(r))} | "
            f"{fmt(bleu(r, 'test_mscoco'))} | {fmt(bleu(r, 'valid'))} | {where(r)} |"
        )
    return lines


def section_blind(runs: list[dict], results: Path) -> list[str]:
    lines = ["## Blind sets (test 2016 flickr, test 2018 flickr)", ""]
    done = [r for r in runs if all((r["bleu"].get(s) or {}).get("hyp") for s in ("test2016", "test2018"))]
    lines.append(
        "Every finished model translates `blind/test2016.en` (1,000 lines) and `blind/test2018.en` (1,071) "
        "with the test settings; their references are not distributed, the hypotheses are scored "
        "independently and nothing here is selected or tuned on them."
    )
    lines.append("")
    if done:
        lines.append(
            f"Translated ({len(done)}): "
            + ", ".join(
                f"`{Path(r['bleu']['test2016']['hyp']).name.rsplit('.', 2)[0]}`"
                for r in sorted(done, key=lambda r: r["name"])
            )
            + f" (`{results.name}/hyp/NAME.test2016.txt`, `NAME.test2018.txt`)."
        )
    else:
        lines.append("None translated yet (the first study kept no checkpoints).")
    return lines


def section_header(runs: list[dict], results: Path) -> list[str]:
    signatures = sorted({str(s) for r in runs if (s := (r["bleu"].get("test") or {}).get("signature"))})
    rel = results.resolve().relative_to(ROOT) if results.resolve().is_relative_to(ROOT) else results
    return [
        "# Multi30k En-De: searched Transformers against hand-designed ones, and the supernet gap, in BLEU",
        "",
        f"Built by `python benchmarks/multi30k_report.py` from `{rel}/runs/*.json` alone (one self-describing run "
        "per model: architecture, role, recipe, commit, CPU model and flags, dtype, BLEU per subset with "
        f"sacreBLEU's signature, validation nll, latency with its protocol and machine) and the index `{rel}/results."
        "json`. Models trained alone and subnets exported from a supernet (`inherited_*`) are recorded by "
        "`benchmarks/multi30k.sh record` at the end of each unit (`benchmarks/multi30k_unit.sh`).",
        "",
        "Data: `../shared/data/multi30k-ende` (Multi30k task 1 En-De: train 29,000 pairs; valid = val 2016, 1,014; "
        "test = test 2017 flickr, 1,000; test_mscoco = test 2017 mscoco, 461), one joined sentencepiece "
        "vocabulary of 8k pieces trained on train only. BLEU: sacreBLEU on detokenised output against the raw "
        f"references, full sets, beam 4, lenpen 0.6 (signature {', '.join(f'`{s}`' for s in signatures) or '–'}); "
        f"hypotheses in `{rel}/hyp/` (detokenised, one line per source line), so any BLEU recomputes with "
        "`sacrebleu ../shared/data/multi30k-ende/SET.de -i HYP -b`.",
    ]


def build(runs: list[dict], results: Path, conclusion: str) -> str:
    figure = f"{results.name}/latency_bleu.png"
    curves = any(r["training"] == "alone" and len(r["valid_nll"]["per_epoch"]) > 1 for r in current(runs))
    parts = [
        section_header(runs, results),
        section_status(runs),
        section_models(runs),
        section_latency(runs, figure),
        section_table4(runs),
        section_sweep(runs),
        section_blind(runs, results),
    ]
    parts = [p for p in parts if p]
    if curves:
        parts.append(
            [
                "## Validation curves of this study's models trained alone",
                "",
                f"![validation nll per epoch]({results.name}/learning_curves.png)",
            ]
        )
    if conclusion.strip():
        parts.append(["## The first study's conclusion", "", conclusion.strip()])
    return "\n\n".join("\n".join(p) for p in parts) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--results", type=Path, default=ROOT / "benchmarks" / "results" / "multi30k")
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "multi30k.md")
    p.add_argument(
        "--conclusion",
        type=Path,
        default=ROOT / "benchmarks" / "multi30k_notes.md",
        help="the first study's conclusion (Markdown), included as its section",
    )
    args = p.parse_args(argv)
    try:
        runs = load(args.results)
        conclusion = args.conclusion.read_text() if args.conclusion.is_file() else ""
        text = build(runs, args.results, conclusion)
    except ReportError as exc:
        print(f"multi30k_report: {exc}", file=sys.stderr)
        return 1
    except (KeyError, TypeError, ValueError) as exc:  # a malformed run: one line, nothing written
        print(f"multi30k_report: a malformed run ({type(exc).__name__}: {exc})", file=sys.stderr)
        return 1
    try:
        write_outputs(runs, text, args.results, args.out)
    except OSError as exc:
        print(f"multi30k_report: cannot write {exc.filename}: {exc.strerror}", file=sys.stderr)
        return 1
    print(f"wrote {args.out} ({len(runs)} runs)")
    return 0


def write_outputs(runs: list[dict], text: str, results: Path, out: Path) -> None:
    """The figures, then the report (replaced whole, never half-written)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    groups = windows(runs)
    if groups:
        plot_latency(groups, results / "latency_bleu.png")
    plot_curves(runs, results / "learning_curves.png")
    write_atomic(out, text)


if __name__ == "__main__":
    sys.exit(main())
