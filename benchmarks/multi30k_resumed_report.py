"""Writes the part of ``benchmarks/results/multi30k.md`` that the Multi30k study produced after its first
machine was replaced (``benchmarks/multi30k_lanes.sh committed`` / ``again``), between the report's
``resumed`` markers; every other line of the report (the first machine's results, whose runs directory went
with it) stays as committed. The first machine's figures it needs come from what is committed: its
hypotheses (BLEU recomputed here with sacreBLEU), ``latency_intel.json`` (its interleaved latencies) and
``standalone_*.json`` (the Table 4 standalone side of models trained on machines that are gone, used by stage
table4). Re-run it as stages finish. Each later machine writes its own section (``--section``, ``--title``), so
one machine's runs never replace what another's section reports.

    python benchmarks/multi30k_resumed_report.py --work /work/runs/multi30k --report benchmarks/results/multi30k.md
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
from pathlib import Path

import numpy as np
from multi30k_report import (
    NAN,
    PICK_KINDS,
    SET_NAMES,
    SUBSETS,
    bleu_of,
    curve_at,
    figure_curves,
    fmt,
    save_latency_bleu,
    scatter_picks,
    section_supernets,
    section_table4,
    status,
    trained_alone_cells,
)


def markers(section: str) -> tuple[str, str]:
    """The report's begin and end lines of the section named ``section`` (one per machine after the first)."""
    return f"<!-- {section}: begin (written by benchmarks/multi30k_resumed_report.py) -->", f"<!-- {section}: end -->"


class ReportError(Exception):
    """A one-line reason the section cannot be written (nothing is written then)."""


def committed_bleu(committed: Path, name: str, subset: str, data: Path) -> float:
    """sacreBLEU of a committed hypothesis file against the raw references (NaN when there is none)."""
    from mos_fairseq.translation.bleu import score

    hyp = committed / "hyp" / f"{name}.{SET_NAMES[subset]}.txt"
    if not hyp.is_file():
        return NAN
    refs = (data / f"{SET_NAMES[subset]}.de").read_text().splitlines()
    return score(hyp.read_text().splitlines(), refs, "de").sacrebleu


def machine(work: Path) -> str:
    for path in (work / "logs" / "lscpu.txt", work / "latency" / "lscpu.txt"):
        if path.is_file():
            for line in path.read_text().splitlines():
                if line.startswith("Model name"):
                    return line.split(":", 1)[1].strip()
    return "?"


def commits(work: Path) -> list[str]:
    found = {p.read_text().strip() for p in work.glob("*/*/commit")} | {
        p.read_text().strip() for p in work.glob("*/commit")
    }
    return sorted(found)


def first_machine_curve(committed: Path, data: Path, latency: dict) -> tuple[np.ndarray, np.ndarray]:
    """The baselines' test BLEU (committed hypotheses) at their interleaved latency on the first machine."""
    pts = sorted((ms, committed_bleu(committed, n, "test", data)) for n, ms in latency["as_trained"].items())
    return np.array([p[0] for p in pts]), np.array([p[1] for p in pts])


def pick_latency_first_machine(latency: dict, name: str) -> tuple[float, str]:
    if name in latency.get("picks", {}):
        return float(latency["picks"][name]), ""
    if name in latency.get("picks_search_check", {}):
        return float(latency["picks_search_check"][name]), " (search's single check)"
    return NAN, ""


def trained_here(work: Path) -> list[str]:
    return sorted(d.name for d in (work / "standalone").glob("*") if (d / "arch.yml").is_file() and not d.is_symlink())


def section_trained_alone(work: Path, committed: Path, data: Path, latency: dict) -> list[str]:
    xs, ys = first_machine_curve(committed, data, latency)
    lines = [
        "### Models trained alone on this machine",
        "",
        "Same recipe, data preparation and scoring as every model above; the last 5 epoch checkpoints averaged. A "
        "model trained from scratch translates the same on either machine; only latency is the machine's, so each "
        f"pick is placed at its latency on the first machine ({latency['cpu']}, {latency['measured_at']}: every model "
        "timed together, interleaved), where the baselines' curve (their test BLEU from the committed hypotheses, "
        "interpolated linearly) was measured too.",
        "",
        "| model | architecture | params | valid nll (bits, last epoch) | valid BLEU | test BLEU | test_mscoco BLEU | "
        "latency on the first machine (ms) | baselines' curve there | retrained − curve |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name in trained_here(work):
        d = work / "standalone" / name
        c = trained_alone_cells(d)
        lat, how = pick_latency_first_machine(latency, name)
        at, note = curve_at(xs, ys, lat)
        lines.append(
            f"| {c['name']} | {c['arch']} | {c['params']} | {c['nll']} | {c['valid']} | {c['test']} | {c['test1']} | "
            f"{fmt(lat)}{how} | {fmt(at)}{note} | {fmt(bleu_of(d, 'test') - at, '+.2f')} |"
        )
    return lines


def section_picks(work: Path, committed: Path, data: Path) -> list[str]:
    """The committed picks from the supernets trained again: inherited (now and on the first machine),
    fine-tuned from the inherited weights, retrained (here, or on the first machine)."""
    names = sorted(a.stem.removeprefix("inherited_") for a in (committed / "archs").glob("inherited_*.yml"))
    lines = ["### The committed picks: inherited, fine-tuned, retrained", ""]
    if not names:
        return lines + ["No committed pick (`archs/inherited_*.yml`)."]
    lines += [
        "Each pick of the first machine's searches: its inherited BLEU there (that machine's supernets, from the "
        "committed hypotheses) and exported again from the supernet of its kind trained again here (inherited "
        "weights, no retraining; the two show how much two trainings of the same supernet differ), fine-tuned "
        "from those weights for a quarter of the recipe's epochs (5, average of the last 2), and retrained from "
        "scratch with the recipe (here, or on the first machine). – : not run yet.",
        "",
        "| pick | test BLEU inherited: again / first machine | fine-tuned | retrained | "
        "test_mscoco inherited again / first / fine-tuned / retrained |",
        "|---|---|---:|---:|---|",
    ]
    for name in names:
        pick, ft, re_ = work / "picks" / name, work / "finetune" / name, work / "standalone" / name

        def retrained(subset: str, re_=re_, name=name) -> float:
            here = bleu_of(re_, subset)
            return here if not np.isnan(here) else committed_bleu(committed, name, subset, data)

        first = {s: committed_bleu(committed, f"inherited_{name}", s, data) for s in ("test", "test1")}
        lines.append(
            f"| {name}{status(ft) if ft.is_dir() else ''} | {fmt(bleu_of(pick, 'test'))} / {fmt(first['test'])} | "
            f"{fmt(bleu_of(ft, 'test'))} | {fmt(retrained('test'))} | {fmt(bleu_of(pick, 'test1'))} / "
            f"{fmt(first['test1'])} / {fmt(bleu_of(ft, 'test1'))} / {fmt(retrained('test1'))} |"
        )
    return lines


def figure_origin(path: str) -> str:
    """Where a ``--standalone-figures`` file's models were trained, as the report names it."""
    return "on another machine, BLEU only" if "bleu_only" in Path(path).name else "on the first machine"


def section_table4_again(work: Path) -> list[str]:
    lines = section_table4(work)
    lines[0] = "### " + lines[0].removeprefix("## ") + " (the supernets trained again)"
    result_path = work / "table4" / "gap" / "gap.json"
    if not result_path.is_file():
        return lines
    result = json.loads(result_path.read_text())
    files = (result.get("standalone_figures") or {}).get("files", {})
    origin = {name: figure_origin(path) for path, names in files.items() for name in names}
    out = lines[:1]
    for line in lines[1:]:
        m = re.match(r"\| ([^|]+) \| ", line)
        if m and m.group(1) in origin:
            line = line.replace(f"| {m.group(1)} |", f"| {m.group(1)} (trained {origin[m.group(1)]}) |", 1)
        out.append(line)
    if origin:
        here = len(result["archs"]) - len(origin)
        parts = [
            f"{len(names)} trained {figure_origin(path)} (`{Path(path).name}`)"
            for path, names in files.items()
            if names
        ]
        out += [
            "",
            f"Standalone side: {here} models trained alone on this machine, measured here, and "
            + ", ".join(parts)
            + ", whose checkpoints went with their machines: their figures as committed in "
            "`benchmarks/results/multi30k/standalone_*.json` (`mos-nas gap --standalone-figures`; BLEU-only figures "
            "are sacreBLEU of the committed hypotheses and count in the BLEU statistics only). The supernet side is "
            "measured here for every architecture.",
        ]
    return out


def figure_latency_bleu(work: Path, committed: Path, data: Path, latency: dict, path: Path) -> bool:
    """HAT's figure with everything known now: baselines, picks inherited (first machine's supernets),
    fine-tuned and retrained, at the first machine's latencies."""
    from mos_fairseq.core.plotting import pyplot

    xs, ys = first_machine_curve(committed, data, latency)
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 5))
    ax.plot(xs, ys, "k-o", label="hand-designed baselines (trained alone)")
    names = sorted({*latency.get("picks", {}), *latency.get("picks_search_check", {})})
    for sup in ("neuron", "spos"):
        mine = [n for n in names if n.startswith(f"{sup}_")]
        for kind in PICK_KINDS:
            pts = []
            for n in mine:
                if kind == "inherited":
                    bleu = committed_bleu(committed, f"inherited_{n}", "test", data)
                elif kind == "fine-tuned":
                    bleu = bleu_of(work / "finetune" / n, "test")
                else:
                    here = bleu_of(work / "standalone" / n, "test")
                    bleu = here if not np.isnan(here) else committed_bleu(committed, n, "test", data)
                pts.append((pick_latency_first_machine(latency, n)[0], bleu))
            scatter_picks(ax, pts, sup, kind)
    save_latency_bleu(
        fig,
        ax,
        path,
        f"measured latency (ms, 1 thread, {latency['cpu']})",
        "Multi30k En-De: latency vs BLEU (SPOS picks: single-check latency)",
    )
    return True


def copy_artefacts(work: Path, committed: Path, trained_elsewhere: set[str]) -> int:
    """Hypotheses and architectures of this machine's models into the committed tree: trained alone as NAME,
    fine-tuned as finetuned_NAME, the picks inherited from the supernets trained again as rerun_inherited_NAME
    (the first machine's inherited_NAME files stay). A model another machine trained alone (a committed figure
    in ``standalone_*.json`` and committed hypotheses) keeps its files: this machine's training of it is
    again_NAME."""
    n = 0
    for kind, tag in (("standalone", ""), ("finetune", "finetuned_"), ("picks", "rerun_inherited_")):
        for d in sorted((work / kind).glob("*")):
            if d.is_symlink() or not (d / ".done").exists():
                continue
            kept = (
                kind == "standalone"
                and d.name in trained_elsewhere
                and (committed / "hyp" / f"{d.name}.test.txt").is_file()
            )
            name = f"{'again_' if kept else tag}{d.name}"
            for subset in SUBSETS:
                hyp = d / f"hyp.{subset}.txt"
                if hyp.is_file():
                    shutil.copyfile(hyp, committed / "hyp" / f"{name}.{SET_NAMES[subset]}.txt")
                    n += 1
            if (d / "arch.yml").is_file() and not kept:
                shutil.copyfile(d / "arch.yml", committed / "archs" / f"{name}.yml")
    return n


def updates_per_epoch(train_log: Path) -> set[int]:
    """The updates per epoch a fairseq-train log reports ('epoch 001:     34 / 132 ...')."""
    text = train_log.read_text(errors="replace") if train_log.is_file() else ""
    return {int(n) for n in re.findall(r"\| epoch \d+: +\d+ / (\d+) ", text)}


def replace_section(report: str, section: str, name: str = "resumed") -> str:
    begin, end = markers(name)
    if report.count(begin) != 1 or report.count(end) != 1 or report.index(begin) > report.index(end):
        raise ReportError(f"the report needs exactly one '{begin}' line followed by one '{end}' line")
    head, rest = report.split(begin, 1)
    _, tail = rest.split(end, 1)
    return head + begin + "\n" + section.strip("\n") + "\n" + end + tail


def build(
    work: Path,
    committed: Path,
    report: Path,
    data: Path,
    supernets: list[str],
    section: str = "resumed",
    title: str = "Resumed on a second machine",
) -> tuple[str, int]:
    for need in (work / "supernets", committed / "latency_intel.json", committed / "hyp", report, data / "test.de"):
        if not need.exists():
            raise ReportError(f"missing {need}")
    latency = json.loads((committed / "latency_intel.json").read_text())
    # the models other machines trained alone: a figure in a committed standalone_*.json
    trained_elsewhere = {n for f in committed.glob("standalone_*.json") for n in json.loads(f.read_text())["archs"]}
    text = report.read_text()
    replace_section(text, "", section)  # the markers are checked before anything is written
    n = copy_artefacts(work, committed, trained_elsewhere)
    figure_latency_bleu(work, committed, data, latency, committed / f"latency_bleu_{section}.png")
    present = [s for s in supernets if (work / "supernets" / s).is_dir()]
    curves = figure_curves(work, present, committed / f"learning_curves_{section}.png")
    sup = section_supernets(work, present)
    body = [
        f"## {title}",
        "",
        f"Machine: **{machine(work)}** (`lscpu` in the runs directory's `logs/lscpu.txt`), 2 cores, one thread per "
        "process pinned to a core. Nothing here is a latency: every latency figure of this report is the first "
        "machine's. Code: commit(s) "
        + (", ".join(f"`{c}`" for c in commits(work)) or "?")
        + " (per run, in `commit`). Produced by `benchmarks/multi30k.sh`'s stages (run directly or through "
        "`benchmarks/multi30k_lanes.sh committed NAME...` / `again` / `again-finish`; the commands are in the Notes' "
        "Status), this section by `python benchmarks/multi30k_resumed_report.py --work RUNS` "
        f"({n} hypothesis files of this machine's models in `benchmarks/results/multi30k/hyp/`).",
        "",
    ]
    if trained_here(work):
        body += [*section_trained_alone(work, committed, data, latency), ""]
    if len(sup) > 4:
        ranks = sorted({len(list((work / "supernets" / s).glob("train_rank*.log"))) + 1 for s in present})
        body += [
            "### Supernets trained again (same recipe, seed and epochs; the commit of each in its `commit`)",
            "",
            *sup[2:],
            "",
        ]
        if ranks != [1]:
            per_epoch = sorted({n for s in present for n in updates_per_epoch(work / "supernets" / s / "train.log")})
            body += [
                f"Data-parallel ({' / '.join(map(str, ranks))} processes, one gloo rank per core, "
                "`M30K_SUPERNET_CORES`): the recipe's 4,096 tokens per update split evenly between the ranks, so "
                "an epoch's batches pack slightly differently ("
                + " / ".join(map(str, per_epoch))
                + " updates per epoch, 136 in one process); the subnet sampled at each update is a function of the "
                "seed and the update number, the same on every rank and as in one process.",
                "",
            ]
    body += [*section_picks(work, committed, data), "", *section_table4_again(work), ""]
    body.append(f"![latency vs BLEU, everything known now](multi30k/latency_bleu_{section}.png)")
    if curves:
        body.append(f"![validation curves of this machine's runs](multi30k/learning_curves_{section}.png)")
    return replace_section(text, "\n".join(body), section), n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", required=True, help="the runs directory of the resumed study")
    root = Path(__file__).resolve().parent.parent  # the checkout: the defaults do not depend on the directory run from
    ap.add_argument("--report", default=str(root / "benchmarks/results/multi30k.md"))
    ap.add_argument(
        "--committed", default=str(root / "benchmarks/results/multi30k"), help="hyp/, archs/, latency_intel.json"
    )
    ap.add_argument(
        "--data", default=str(root.parent / "shared/data/multi30k-ende"), help="the raw Multi30k files (references)"
    )
    ap.add_argument("--supernets", nargs="+", default=["neuron", "spos"])
    ap.add_argument(
        "--section",
        default="resumed",
        help="the report's section to write, between '<!-- SECTION: begin ... -->' and '<!-- SECTION: end -->' "
        "(one per machine: a later machine's runs never replace an earlier one's section); its figures are "
        "latency_bleu_SECTION.png and learning_curves_SECTION.png",
    )
    ap.add_argument("--title", default="Resumed on a second machine", help="the section's heading")
    args = ap.parse_args()
    report = Path(args.report)
    try:
        text, n = build(
            Path(args.work), Path(args.committed), report, Path(args.data), args.supernets, args.section, args.title
        )
    except ReportError as e:
        sys.exit(f"multi30k_resumed_report: {e}")
    tmp = report.with_suffix(".md.tmp")
    tmp.write_text(text)
    tmp.replace(report)
    print(f"wrote the section '{args.section}' of {report} ({n} hypothesis files)")


if __name__ == "__main__":
    main()
