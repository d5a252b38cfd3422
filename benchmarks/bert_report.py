"""Writes ``benchmarks/results/bert_supernets.md`` from the outputs of ``benchmarks/bert_study.sh``: largest and
smallest subnet perplexity per supernet, SuperShaper's Table 6 (shapes at equal parameter counts),
and the SST-2 fine-tuning of an exported subnet against the same model from random weights.
Parts whose runs have not finished are listed as pending."""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from fairseq_logs import seconds_per_update, train_progress


def validation_curves(work: Path, names: list[str]) -> list[str]:
    """Markdown table of the largest and smallest subnets' validation perplexity at every checkpoint of
    each supernet, from fairseq-train's per-subnet validation (``loss_largest``/``loss_smallest``, bits)."""
    curves = {}
    for name in names:
        points = {}
        for v in train_progress(work / "supernets" / name / "train.log")["valid"]:
            if "loss_largest" in v and "num_updates" in v:
                points[int(v["num_updates"])] = (2 ** v["loss_largest"], 2 ** v.get("loss_smallest", float("nan")))
        if points:
            curves[name] = points
    if not curves:
        return []
    steps = sorted({u for pts in curves.values() for u in pts})
    cols = list(curves)
    md = [
        "",
        "### During training (fairseq's validation at every checkpoint; ppl of the largest / smallest subnet)",
        "",
        "| updates | " + " | ".join(cols) + " |",
        "|---:|" + "---:|" * len(cols),
    ]
    for u in steps:
        cells = [f"{curves[c][u][0]:.1f} / {curves[c][u][1]:.1f}" if u in curves[c] else "-" for c in cols]
        md.append(f"| {u:,} | " + " | ".join(cells) + " |")
    return md


def finetune_summary(log: Path) -> dict | None:
    """Best and final validation of a sentence_prediction fine-tuning log (None before the first)."""
    vals = train_progress(log)["valid"]
    if not vals:
        return None
    return {"final": vals[-1], "best": max(vals, key=lambda f: f["accuracy"]), "evaluations": len(vals)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--work", default="runs/bert")
    ap.add_argument("--updates", type=int, default=600)
    ap.add_argument("--max-tokens", type=int, default=2048)
    ap.add_argument("--ft-updates", type=int, default=1800)
    ap.add_argument(
        "--pilot", help="the work dir of a shorter run of the same study: its perplexities are shown beside these"
    )
    ap.add_argument("--notes", help="a markdown file appended as the discussion")
    ap.add_argument("--out", default="benchmarks/results/bert_supernets.md")
    args = ap.parse_args()
    work = Path(args.work)
    md = ["# BERT supernets on real data", ""]
    md += [
        "Data: `../shared/data/mlm-en` (English news 2017, 3,624 / 100 / 100 articles), sentencepiece 8k "
        "(`mos-nas prepare-mlm`), blocks of 128 tokens (`--sample-break-mode none`), fairseq's masking "
        "(15%, 80/10/10). Spaces scaled to a CPU (`configs/spaces/`): `bert_cpu_bottleneck` (SuperShaper's "
        "space at 1/6 width: 6 layers, per-layer hidden {24, 40, 60, 80, 92, 100, 128} behind 128x128 "
        "bottlenecks, 4 heads, FFN 512) and `bert_cpu_homogeneous` (2-6 layers, hidden 64-128 step 16, heads "
        "{2, 4}, FFN ratio {2, ..., 4}). Every supernet: the same "
        f"{args.updates} sandwich updates (largest + smallest + 1 random per update) of {args.max_tokens} tokens, "
        "Adam lr 1e-3 (polynomial decay, 60 warm-up), dropout 0.1, seed 1, 1 CPU thread. "
        "Perplexity = 2^(masked-token NLL in bits), every masked token of the split, same masks for every model.",
        "",
        "Commands: `benchmarks/bert_study.sh data supernets eval shapes finetune` (resumable; settings in "
        "its header), then `benchmarks/bert_study.sh report` (`bert_report.py` with the notes; `BERT_PILOT=DIR` adds "
        "a shorter run's numbers beside these).",
        "",
        "## Largest and smallest subnets: standard vs neuron-wise MoS supernet (same budget)",
        "",
    ]
    pilot = Path(args.pilot) if args.pilot else None
    pilot_updates = {}
    if pilot:
        for log in (pilot / "supernets").glob("*/train.log"):
            pilot_updates[log.parent.name] = train_progress(log)["updates"]
        md += [
            f"`valid ppl (pilot)`: the same supernet after the pilot's "
            f"{'/'.join(str(v) for v in sorted(set(pilot_updates.values())))} updates (`{pilot}`).",
            "",
        ]
    md += [
        "| supernet | space | MoS | subnet | params | updates | valid ppl | test ppl"
        + (" | valid ppl (pilot)" if pilot else "")
        + " | s/update (median) |",
        "|---|---|---|---|---:|---:|---:|---:|" + ("---:|" if pilot else "") + "---:|",
    ]
    names = sorted(p.name for p in (work / "supernets").glob("*")) if (work / "supernets").is_dir() else []
    pending = []
    for name in names:
        summary = train_progress(work / "supernets" / name / "train.log")
        for which in ("largest", "smallest"):
            res_path = work / "eval" / f"{name}_{which}.json"
            if not res_path.is_file():
                pending.append(f"{name} {which}")
                continue
            res = json.loads(res_path.read_text())
            space, mos = name.rsplit("_", 1)
            rate = seconds_per_update(work / "supernets" / name / "train.log")
            pilot_cell = ""
            if pilot:
                pilot_res = pilot / "eval" / f"{name}_{which}.json"
                pilot_cell = (
                    f" {json.loads(pilot_res.read_text())['valid']['valid_ppl']:.2f} |"
                    if pilot_res.is_file()
                    else " - |"
                )
            md.append(
                f"| {name} | bert_cpu_{space} | {mos} | {which} | {res['valid']['params']:,} | "
                f"{summary['updates']:,} | {res['valid']['valid_ppl']:.2f} | {res['test']['valid_ppl']:.2f} |"
                + pilot_cell
                + (f" {rate:.2f} |" if rate else " - |")
            )
    if pending:
        md += ["", f"Pending: {', '.join(pending)}."]

    md += validation_curves(work, names)

    shapes = work / "shapes" / "shapes.json"
    md += ["", "## Shapes at equal parameter counts (SuperShaper Table 6 form, perplexity inside the supernets)", ""]
    if shapes.is_file():
        data = json.loads(shapes.read_text())
        meta, rows = data["meta"], data["rows"]
        nets = list(meta["supernets"])
        md += [
            f"`python benchmarks/bert_shapes.py` on `{meta['space']}` ({meta['subset']} split, "
            f"{meta['sentences']} blocks). Targets: the rectangles at widths {meta['widths']}; each template's "
            f"shape is the one closest to the target among all 7^6 shapes; {meta['random']} random shapes "
            f"per target drawn uniformly among shapes within {meta['tolerance']:.0%} of it (seed {meta['seed']}).",
            "",
        ]
        for target in sorted({r["target"] for r in rows}):
            group = [r for r in rows if r["target"] == target]
            md += [
                f"### target {target:,} parameters",
                "",
                "| shape | hidden sizes (layers 1-6) | params | " + " | ".join(f"ppl ({n})" for n in nets) + " |",
                "|---|---|---:|" + "---:|" * len(nets),
            ]
            for r in group:
                if r["template"] == "random":
                    continue
                md.append(
                    f"| {r['template']} | {' '.join(map(str, r['hidden']))} | {r['params']:,} | "
                    + " | ".join(f"{r['ppl'][n]:.2f}" for n in nets)
                    + " |"
                )
            rnd = [r for r in group if r["template"] == "random"]
            if rnd:
                cells = []
                for n in nets:
                    v = [r["ppl"][n] for r in rnd]
                    cells.append(f"{statistics.mean(v):.2f} (min {min(v):.2f}, max {max(v):.2f})")
                md.append(
                    f"| random (mean of {len(rnd)}) | - | {round(statistics.mean(r['params'] for r in rnd)):,} | "
                    + " | ".join(cells)
                    + " |"
                )
                for n in nets:
                    cigar = next(r["ppl"][n] for r in group if r["template"].startswith("cigar"))
                    better = sum(r["ppl"][n] > cigar for r in rnd)
                    md.append("")
                    md.append(
                        f"- {n}: the cigar shape beats {better} of {len(rnd)} random shapes; best template "
                        f"{min((r for r in group if r['template'] != 'random'), key=lambda r: r['ppl'][n])['template']}, "
                        f"worst {max((r for r in group if r['template'] != 'random'), key=lambda r: r['ppl'][n])['template']}."
                    )
            md.append("")
    else:
        md += ["Pending (needs the two bottleneck supernets).", ""]

    md += ["## Fine-tuning an exported subnet on SST-2 (GLUE format)", ""]
    ft = work / "finetune"
    arch = (ft / "arch.yml").read_text().strip() if (ft / "arch.yml").is_file() else "?"
    export = (
        json.loads((ft / "export" / "export.json").read_text()) if (ft / "export" / "export.json").is_file() else None
    )
    md += [
        f"Subnet `{arch}` of the homogeneous neuron-MoS supernet, exported to stock fairseq `roberta`"
        + (
            f" ({export['params']:,} parameters, max MLM-logit difference to the supernet subnet "
            f"{export['max_logit_diff']:.1e})"
            if export
            else ""
        )
        + "; `mos-nas prepare-glue --task SST-2` (`../shared/data/glue/SST-2`: 60,614 train / 6,735 dev "
        f"sentences) and its `finetune.sh` (stock `fairseq-train --task sentence_prediction`), {args.ft_updates} "
        "updates of 32 sentences, lr 1e-4, the same for both rows; the baseline is the same architecture from "
        "random weights (`FINETUNE_FROM=`). Accuracy on the dev split, evaluated every 200 updates.",
        "",
        "| start | best dev accuracy | final dev accuracy | final dev loss |",
        "|---|---:|---:|---:|",
    ]
    runs = [(ft / "pretrained", "exported supernet subnet"), (ft / "scratch", "random weights")]
    if pilot:
        runs.insert(1, (pilot / "finetune" / "pretrained", "exported subnet of the pilot's supernet"))
    for run_dir, label in runs:
        s = finetune_summary(run_dir / "train.log")
        if s is None:
            md.append(f"| {label} | pending | | |")
        else:
            md.append(
                f"| {label} | {float(s['best']['accuracy']):.2f} | {float(s['final']['accuracy']):.2f} | "
                f"{float(s['final']['loss']):.3f} |"
            )
    dev = Path(__file__).resolve().parent.parent.parent / "shared/data/glue/SST-2/dev.tsv"
    if dev.is_file():
        labels = [line.rsplit("\t", 1)[-1].strip() for line in dev.read_text().splitlines()[1:] if line.strip()]
        major = max(labels.count(v) for v in set(labels)) / len(labels)
        md += ["", f"Majority class on the dev split: {100 * major:.2f}%."]
    if args.notes and Path(args.notes).is_file():
        md += ["", Path(args.notes).read_text().rstrip()]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(md) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
