"""CPU bf16 vs fp32 quality: the Multi30k recipe's models and supernets trained in both precisions, side by side.

Reads the Multi30k study's run files (``benchmarks/results/multi30k/runs/NAME.json``, written by
``benchmarks/multi30k.sh record``): every baseline NAME that has a bf16 twin ``NAME_bf16`` (stage
``bf16_twin``) is one pair. For each pair: validation nll per epoch (bits per token), the final epoch's
relative difference (target: within 1%), test and test_mscoco sacreBLEU (target: within 0.3), and the
training wall-clock of both (the whole run's speed-up, machines named). Supernets the same way, from
``benchmarks/results/multi30k/supernets/NAME.json`` and ``NAME_bf16.json`` (stage ``record_supernets``):
the validation loss of the largest and the smallest subnet at every epoch, at equal updates (target: within
1% at every epoch). Nothing is trained here; the report is rebuilt from the committed run files alone.

    python benchmarks/cpu_bf16_quality.py --results benchmarks/results/multi30k \\
        --out benchmarks/results/cpu_bf16_quality.md
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import write_atomic  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
NLL_TOLERANCE = 0.01  # relative, final epoch
BLEU_TOLERANCE = 0.3  # sacreBLEU points
SUBSETS = ("test", "test_mscoco")


class QualityError(Exception):
    """A one-line reason the report cannot be built."""


def read_runs(directory: Path) -> dict[str, dict]:
    """Every run file of ``directory`` by its run name (none: an empty mapping)."""
    docs = {}
    for path in sorted(directory.glob("*.json")) if directory.is_dir() else []:
        try:
            doc = json.loads(path.read_text())
        except json.JSONDecodeError as e:
            raise QualityError(f"{path}: not JSON ({e.msg})") from None
        docs[doc.get("name", path.stem)] = doc
    return docs


def twins(docs: dict[str, dict], references: dict[str, str] | None = None) -> list[tuple[dict, dict]]:
    """(fp32 run, bf16 run) for every run NAME_bf16 whose fp32 run is NAME, or the one ``references`` names."""
    references = references or {}
    pairs = []
    for name, twin in sorted(docs.items()):
        base = docs.get(references.get(name, name.removesuffix("_bf16"))) if name.endswith("_bf16") else None
        if base is None:
            continue
        for doc, want in ((base, "fp32"), (twin, "bf16")):
            got = (doc.get("dtype") or {}).get("training")
            if got != want:
                raise QualityError(f"run '{doc['name']}' trained in {got}, expected {want}")
        pairs.append((base, twin))
    return pairs


def load_pairs(runs: Path, references: dict[str, str] | None = None) -> list[tuple[dict, dict]]:
    """(fp32 run, bf16 run) for every baseline with a bf16 twin: by name (NAME, NAME_bf16), or the fp32 run
    that ``references`` names for a twin (e.g. base_3x3_bf16 -> study1_base_3x3, trained on another machine)."""
    docs = read_runs(runs)
    for twin_name, base_name in (references or {}).items():
        missing = [n for n in (twin_name, base_name) if n not in docs]
        if missing:
            raise QualityError(f"--pair names run(s) not in {runs}: {', '.join(missing)}")
    return twins(docs, references)


def final_nll(doc: dict) -> float:
    final = (doc.get("valid_nll") or {}).get("final")
    if not final:
        raise QualityError(f"run '{doc['name']}' has no validation nll")
    return float(final["nll_loss"])


def verdict(ok: bool) -> str:
    return "within" if ok else "**outside**"


def pair_summary(base: dict, twin: dict) -> dict:
    """The figures the issue's targets name, for one pair."""
    nll32, nll16 = final_nll(base), final_nll(twin)
    bleu = {s: (base["bleu"][s]["bleu"], twin["bleu"][s]["bleu"]) for s in SUBSETS}
    walls = [(d.get("training_progress") or {}).get("train_wall_s") for d in (base, twin)]
    return {
        "nll": (nll32, nll16),
        "nll_rel": (nll16 - nll32) / nll32,
        "bleu": bleu,
        "walls": walls,
        "nll_ok": abs(nll16 - nll32) / nll32 <= NLL_TOLERANCE,
        "bleu_ok": all(abs(b16 - b32) <= BLEU_TOLERANCE for b32, b16 in bleu.values()),
    }


def machine_line(doc: dict) -> str:
    m = doc.get("machine") or {}
    if m.get("cpu_flags") is None:
        flag_text = "flags not recorded"
    else:
        flag_text = ", ".join(f for f in m["cpu_flags"] if "bf16" in f or f.startswith("amx")) or "no bf16 flags"
    return (
        f"{m.get('cpu_model', '?')} ({flag_text}), commit {doc.get('commit')}, "
        f"{doc.get('ranks', 1)} rank(s) x {doc.get('threads', 1)} thread, trained {doc.get('trained_at')}"
    )


def curve_lines(base: dict, twin: dict) -> list[str]:
    by_epoch = {e["epoch"]: [e["nll_loss"], None] for e in base["valid_nll"]["per_epoch"]}
    for e in twin["valid_nll"]["per_epoch"]:
        by_epoch.setdefault(e["epoch"], [None, None])[1] = e["nll_loss"]
    lines = ["| epoch | fp32 valid nll | bf16 valid nll | bf16 - fp32 |", "|---:|---:|---:|---:|"]
    for epoch, (a, b) in sorted(by_epoch.items()):
        diff = f"{b - a:+.3f}" if a is not None and b is not None else ""
        lines.append(f"| {epoch} | {a if a is not None else ''} | {b if b is not None else ''} | {diff} |")
    return lines


def pair_lines(base: dict, twin: dict) -> list[str]:
    s = pair_summary(base, twin)
    (n32, n16), walls = s["nll"], s["walls"]
    lines = [
        f"## {base['name']} (fp32) vs {twin['name']} (bf16)",
        "",
        f"- fp32: {machine_line(base)}",
        f"- bf16: {machine_line(twin)}",
        f"- Final validation nll {n32:.3f} vs {n16:.3f} bits per token: {s['nll_rel'] * 100:+.2f}%, "
        f"{verdict(s['nll_ok'])} the 1% target.",
    ]
    for subset, (b32, b16) in s["bleu"].items():
        lines.append(
            f"- {subset} sacreBLEU {b32:.2f} vs {b16:.2f} ({b16 - b32:+.2f}), "
            f"{verdict(abs(b16 - b32) <= BLEU_TOLERANCE)} the 0.3 target."
        )
    if base.get("machine", {}).get("cpu_model") != twin.get("machine", {}).get("cpu_model"):
        lines.append(
            "- The two runs were trained on different machines, each from its own data preparation: the "
            "difference includes run-to-run variance, not only the precision."
        )
    if walls[1] and not walls[0]:
        lines.append(f"- bf16 training wall-clock {walls[1]:.0f} s (the fp32 run's was not recorded).")
    if all(walls):
        same_cpu = base.get("machine", {}).get("cpu_model") == twin.get("machine", {}).get("cpu_model")
        same_ranks = base.get("ranks", 1) == twin.get("ranks", 1)
        where = (
            "same CPU model and ranks" if same_cpu and same_ranks else "different CPUs or ranks: not a speed comparison"
        )
        lines.append(
            f"- Training wall-clock {walls[0]:.0f} s vs {walls[1]:.0f} s: {walls[0] / walls[1]:.2f}x ({where})."
        )
    return [*lines, "", *curve_lines(base, twin), ""]


def load_supernet_pairs(supernets: Path) -> list[tuple[dict, dict]]:
    """(fp32 run, bf16 run) for every supernet run NAME with a twin NAME_bf16 (multi30k_supernet_record.py)."""
    return twins(read_runs(supernets))


def supernet_epochs(base: dict, twin: dict) -> list[tuple[int, dict, dict]]:
    """(epoch, fp32 losses, bf16 losses) of the epochs both runs validated, at equal updates."""
    twin_by_epoch = {e["epoch"]: e for e in twin["valid"]}
    rows = []
    for e in base["valid"]:
        other = twin_by_epoch.get(e["epoch"])
        if other is None:
            continue
        if e["num_updates"] != other["num_updates"]:
            raise QualityError(
                f"supernets '{base['name']}' and '{twin['name']}' validated epoch {e['epoch']} at different "
                f"updates ({e['num_updates']} vs {other['num_updates']})"
            )
        rows.append((e["epoch"], e["loss"], other["loss"]))
    if not rows:
        raise QualityError(f"supernets '{base['name']}' and '{twin['name']}' share no validated epoch")
    return rows


def supernet_lines(base: dict, twin: dict) -> list[str]:
    rows = supernet_epochs(base, twin)
    subnets = ("largest", "smallest")
    head = " | ".join(f"{s} fp32 | {s} bf16 | {s} bf16 / fp32 - 1" for s in subnets)
    table = [f"| epoch | updates | {head} |", "|---:|---:|" + "---:|---:|---:|" * len(subnets)]
    worst = 0.0
    for epoch, a, b in rows:
        cells = []
        for s in subnets:
            rel = b[s] / a[s] - 1
            worst = max(worst, abs(rel))
            cells += [f"{a[s]:.3f}", f"{b[s]:.3f}", f"{rel * 100:+.2f}%"]
        updates = next(e["num_updates"] for e in base["valid"] if e["epoch"] == epoch)
        table.append(f"| {epoch} | {updates} | {' | '.join(cells)} |")
    last_epoch, a, b = rows[-1]
    finals = ", ".join(f"{s} {a[s]:.3f} vs {b[s]:.3f} ({(b[s] / a[s] - 1) * 100:+.2f}%)" for s in subnets)
    lines = [
        f"## Supernet {base['name']} (fp32) vs {twin['name']} (bf16)",
        "",
        f"- fp32: {machine_line(base)}",
        f"- bf16: {machine_line(twin)}",
        f"- Validation loss (bits per token, the criterion's label-smoothed loss) after epoch {last_epoch}: {finals}; "
        f"the largest difference over the {len(rows)} epochs is {worst * 100:.2f}%, "
        f"{verdict(worst <= NLL_TOLERANCE)} the 1% target.",
    ]
    walls = (base.get("train_wall_s"), twin.get("train_wall_s"))
    if all(walls):
        same = base.get("machine", {}).get("cpu_model") == twin.get("machine", {}).get("cpu_model") and base.get(
            "ranks", 1
        ) == twin.get("ranks", 1)
        where = "same CPU model and ranks" if same else "different CPUs or ranks: not a speed comparison"
        lines.append(
            f"- Training wall-clock {walls[0]:.0f} s vs {walls[1]:.0f} s for {base['updates']} vs {twin['updates']} "
            f"updates: {walls[0] / walls[1]:.2f}x ({where})."
        )
    return [*lines, "", *table, ""]


def build(results: Path, references: dict[str, str] | None = None) -> str:
    pairs = load_pairs(results / "runs", references)
    supernet_pairs = load_supernet_pairs(results / "supernets")
    if not pairs and not supernet_pairs:
        raise QualityError(
            f"no run with a bf16 twin (NAME and NAME_bf16) in {results / 'runs'} or {results / 'supernets'}"
        )
    lines = [
        "# bf16 vs fp32 on CPU: quality of the Multi30k recipe and its supernets",
        "",
        "Generated by `python benchmarks/cpu_bf16_quality.py` from the Multi30k study's run files "
        "(`benchmarks/multi30k.sh standalone bf16_twin record`). Both models: the recipe of "
        "configs/retrain/multi30k.yml, its last epoch checkpoints averaged (mos-nas average), generation in fp32 "
        "(beam 4, lenpen 0.6); bf16 = fairseq-train `--cpu --bf16` (fp32 parameters, optimizer "
        "state and checkpoints). Supernets: `benchmarks/multi30k.sh supernets record_supernets`, the recipe "
        "without its epochs (the supernet's own), criterion supernet_cross_entropy, validated on the space's "
        "baselines, its largest and its smallest subnet.",
        "",
    ]
    for base, twin in pairs:
        lines += pair_lines(base, twin)
    for base, twin in supernet_pairs:
        lines += supernet_lines(base, twin)
    return "\n".join(lines)


def pair_argument(text: str) -> tuple[str, str]:
    twin, sep, base = text.partition("=")
    if not sep or not twin or not base:
        raise QualityError(f"--pair '{text}': expected TWIN=FP32 (run names)")
    return twin, base


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--results", type=Path, default=REPO / "benchmarks" / "results" / "multi30k")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "cpu_bf16_quality.md")
    parser.add_argument(
        "--pair",
        action="append",
        default=[],
        metavar="TWIN=FP32",
        help="pair bf16 run TWIN with fp32 run FP32 instead of TWIN's name without _bf16 (repeatable)",
    )
    args = parser.parse_args(argv)
    try:
        references = dict(pair_argument(p) for p in args.pair)
        text = build(args.results, references)
    except QualityError as e:
        print(f"cpu_bf16_quality: {e}", file=sys.stderr)
        return 2
    except KeyError as e:
        print(f"cpu_bf16_quality: a run file lacks the field {e}", file=sys.stderr)
        return 2
    write_atomic(args.out, text)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
