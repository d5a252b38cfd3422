"""Unit L of the Multi30k study: every model of the report timed together on one machine.

The runs of the current study (``RESULTS/runs/*.json``, the first study's are kept as they were) name their
architectures and recipes; latency does not depend on the weights, so each distinct (architecture, model
options) pair is built with fresh weights as retraining builds it (``mos-nas measure-latency --arch``'s
builder) and all of them are timed together, interleaved over ``--rounds`` rounds with the study's protocol
(one thread, 16+16 tokens, beam 4). Each run's ``latency`` is then filled in (its model's median, the
protocol, this machine, the window), a pick's constraint is restated on this machine (the constraint was
the estimator's latency of base_3x1 / base_3x2 / base_3x3 on the machine that searched: here, that
baseline's latency in this window), and the index is rebuilt. Running it again times everything again.

    python benchmarks/multi30k_latency.py --results benchmarks/results/multi30k --work WORK [--rounds 10]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import yaml
from common import lscpu_fields, write_atomic

from mos_fairseq.base.errors import UserError

MODEL_OPTIONS = ("encoder-normalize-before", "decoder-normalize-before")  # the recipe options that shape a model
CONSTRAINT_BASELINES = ("base_3x1", "base_3x2", "base_3x3")  # stage search's default constraints, in order


def model_options(run: dict) -> tuple[str, ...]:
    """The fairseq model options a run was trained with (pre-norm), as ``--model-options`` takes them."""
    options = (run.get("recipe") or {}).get("options") or {}
    return tuple(f"--{key}" for key in MODEL_OPTIONS if options.get(key))


def model_key(run: dict) -> str:
    """One key per distinct model: the architecture (whichever space file names it) and its options."""
    arch = {k: v for k, v in run["architecture"].items() if k != "space"}
    return json.dumps([arch, model_options(run)], sort_keys=True)


def current_runs(results: Path) -> dict[Path, dict]:
    runs = {p: json.loads(p.read_text()) for p in sorted((results / "runs").glob("*.json"))}
    return {p: r for p, r in runs.items() if int(r.get("study", 2)) != 1}


def time_models(runs: dict[Path, dict], work: Path, rounds: int, repeats: int) -> tuple[dict[str, dict], dict]:
    """{model key: its entry} for every distinct model of ``runs``, timed together; and the file's header."""
    from mos_fairseq.latency.checkpoint_latency import measure_checkpoints
    from mos_fairseq.latency.protocol import Protocol
    from mos_fairseq.translation.fresh_model import fresh_translation_model

    out = work / "L"
    (out / "archs").mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    options: dict[str, tuple[str, ...]] = {}
    for run in runs.values():
        key = model_key(run)
        if key not in paths:
            paths[key] = (out / "archs" / f"model_{len(paths):03d}.yml").resolve()
            paths[key].write_text(yaml.safe_dump(run["architecture"], sort_keys=False))
            options[str(paths[key])] = model_options(run)
    protocol = Protocol(threads=1, src_len=16, tgt_len=16, beam=4, repeats=repeats, warmup=5, vocab_size=1)
    (out / "latency.json").unlink(missing_ok=True)  # every model is timed again, in this window
    data = measure_checkpoints(
        list(paths.values()),
        protocol,
        out / "latency.json",
        rounds=rounds,
        loader=lambda p: fresh_translation_model(p, work / "bin", None, options[str(Path(p).resolve())]),
        what="arch",
    )
    return {key: data["models"][str(path)] for key, path in paths.items()}, data


def restated_constraint(run: dict, results: Path, by_name: dict[str, dict]) -> dict | None:
    """A pick's constraint on this machine: the latency here of the baseline whose estimated latency it was."""
    if run["role"] != "pick" or run.get("constraint_ms") is None:
        return None
    file = results / "search" / str(run["supernet"]) / "constraints_ms.txt"
    if not file.is_file():
        return None
    constraints = [float(x) for x in file.read_text().replace(",", " ").split()]
    matches = [i for i, c in enumerate(constraints) if abs(c - run["constraint_ms"]) < 0.05]
    if not matches or matches[0] >= len(CONSTRAINT_BASELINES) or CONSTRAINT_BASELINES[matches[0]] not in by_name:
        return None
    base = CONSTRAINT_BASELINES[matches[0]]
    return {"ms": by_name[base]["latency"]["ms"], "from": f"{base}'s latency in this window"}


def fill(runs: dict[Path, dict], entries: dict[str, dict], header: dict, rounds: int, results: Path) -> None:
    lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
    machine = lscpu_fields(lscpu, "lscpu when the models were timed")
    stamp = next(iter(entries.values()))["measured_at"]
    p = header["protocol"]
    protocol = (
        f"{p['threads']} thread, {p['src_len']}+{p['tgt_len']} tokens, beam {p['beam']}, {p['repeats']} timed runs "
        f"({p['warmup']} warm-up), median of {rounds} interleaved rounds, {p.get('dtype', 'fp32')} weights"
    )
    window = f"{machine['cpu_model']}, {stamp[:10]}, {len(entries)} models, {rounds} rounds"
    for run in runs.values():
        e = entries[model_key(run)]
        run["latency"] = {
            "ms": e["latency_ms"],
            "encoder_ms": e["encoder_ms"],
            "decoder_ms": e["decoder_ms"],
            "rounds_ms": e["rounds_ms"],
            "model_options": list(model_options(run)),
            "protocol": protocol,
            "machine": machine,
            "measured_at": stamp,
            "window": window,
            "note": "benchmarks/multi30k_latency.py: fresh weights, built as retraining builds the model",
        }
    by_name = {r["name"]: r for r in runs.values()}
    for path, run in runs.items():
        restated = restated_constraint(run, results, by_name)
        if restated:
            run["constraint_restated"] = restated
        write_atomic(path, json.dumps(run, indent=1) + "\n")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--results", type=Path, required=True, help="ROOT/benchmarks/results/multi30k")
    p.add_argument("--work", type=Path, required=True, help="the runs directory (WORK/bin: the dictionaries)")
    p.add_argument("--rounds", type=int, default=10, help="interleaved rounds (median per model)")
    p.add_argument("--repeats", type=int, default=50, help="timed runs per model and round")
    args = p.parse_args(argv)
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from multi30k_record import write_index

    try:
        if not (args.work / "bin" / "dict.en.txt").is_file():
            raise UserError(f"{args.work / 'bin'} holds no dictionaries (run benchmarks/multi30k.sh data first)")
        runs = current_runs(args.results)
        if not runs:
            raise UserError(f"no run of this study in {args.results / 'runs'}")
        entries, header = time_models(runs, args.work, args.rounds, args.repeats)
        fill(runs, entries, header, args.rounds, args.results)
        print(f"{len(runs)} runs timed as {len(entries)} models; index: {write_index(args.results)} runs")
    except (UserError, OSError) as exc:
        print(f"multi30k_latency: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
