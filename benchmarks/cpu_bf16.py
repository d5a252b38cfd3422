"""CPU bf16 vs fp32: fairseq-train target tokens/s, measured interleaved (fp32, bf16, fp32, bf16, ...)
in one run, and fairseq-generate speed and BLEU of a checkpoint in both precisions.

Training configurations, each with the Multi30k recipe (configs/retrain/multi30k.yml: Adam, dropout
0.3, no attention dropout, 4,096 tokens per update):
  stock  fairseq ``transformer`` 256 wide, FFN 1024, 4 heads, 3+3 layers, shared embeddings (--task translation)
  mos    a neuron-MoS sandwich supernet of hat_cpu_multi30k (largest + smallest + 1 random per update)
  spos   an SPOS supernet of hat_cpu_multi30k (one random subnet per update)
each in one process on one thread and on two gloo data-parallel ranks (one thread each, 2,048
tokens per rank). Every run trains from the same seed on the same batches; the first --warmup
updates are left out of the rate. The speed-up of a round is its bf16 rate over the fp32 rate
measured just before it; the report gives the median over rounds. ``--profile N`` adds one run per
precision and configuration under torch.profiler (N updates) and lists the ops that take the time.

    # on idle cores (two for the 2-rank runs); about an hour: 3 rounds of the 3 configurations at 1 and
    # 2 ranks (~35 min), the profiles (~5 min), 3 rounds of generating test in both precisions (~15 min)
    python benchmarks/cpu_bf16.py --data $M30K_WORK/bin --rounds 3 --updates 12 --profile 4 \\
        --generate $M30K_WORK/standalone/base_3x3/checkpoint_avg.pt
    python benchmarks/cpu_bf16.py --tiny --rounds 1 --updates 2 --warmup 1 --max-tokens 1024 --out /tmp/cpu_bf16.md
    # (a synthetic corpus and tiny models: checks the script, the numbers mean nothing)

Each run adds one JSON record (machine, commit, protocol, every timed run) to the directory beside the report
(``results/cpu_bf16/``) and rebuilds the report from all of them, newest first, so a later run of one
configuration (e.g. ``--configs spos``) adds its rows without discarding earlier measurements.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import write_atomic  # noqa: E402
from distributed_scaling import free_port  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "results"
CONFIGS = ("stock", "mos", "spos")
STOCK_DIMS = {"full": (256, 1024, 4, 3), "tiny": (32, 64, 4, 2)}  # width, FFN, heads, layers (each side)


def recipe_args(tokens: int) -> list[str]:
    """The Multi30k recipe's optimisation options, without its epochs, checkpoints and criterion."""
    import yaml

    recipe = yaml.safe_load((REPO / "configs" / "retrain" / "multi30k.yml").read_text())
    args: list[str] = []
    for key, value in recipe.items():
        if key in ("criterion", "max-epoch", "keep-last-epochs", "max-tokens", "log-interval"):
            continue
        args += [f"--{key}"] if value is True else [f"--{key}", str(value)]
    return [*args, "--max-tokens", str(tokens)]


def config_args(config: str, size: str) -> list[str]:
    user_dir = ["--user-dir", str(REPO / "user_dir")]
    if config == "stock":
        width, ffn, heads, layers = STOCK_DIMS[size]
        dims = []
        for side in ("encoder", "decoder"):
            dims += [f"--{side}-embed-dim", str(width), f"--{side}-ffn-embed-dim", str(ffn)]
            dims += [f"--{side}-attention-heads", str(heads), f"--{side}-layers", str(layers)]
        return [*user_dir, "--task", "translation", "--arch", "transformer", *dims, "--share-all-embeddings"]
    space = ["--arch", "supertransformer", "--search-space", "hat_cpu_multi30k"]
    if size == "tiny":
        space = ["--arch", "supertransformer_tiny"]
    sampling = ["--supernet-sampling", "sandwich", "--sandwich-random", "1", "--mos", "neuron"]
    if config == "spos":
        sampling = ["--supernet-sampling", "spos", "--mos", "none"]
    return [*user_dir, "--task", "supernet_translation", *space, *sampling]


def criterion_args(config: str) -> list[str]:
    name = "label_smoothed_cross_entropy" if config == "stock" else "supernet_cross_entropy"
    return ["--criterion", name]


# ---- one fairseq-train run, in a worker process per rank ------------------------------------------
def worker(out: str, profile_from: int, profile_updates: int, argv: list[str]) -> None:
    """fairseq-train in this process; per update its end time, target tokens and loss go to ``out``
    (with ``profile_updates``: the ops of updates ``profile_from ..`` under torch.profiler)."""
    import torch
    from fairseq import trainer as trainer_module
    from fairseq_cli import train

    record: dict = {"stamps": [], "tokens": [], "loss": []}
    original = trainer_module.Trainer.train_step
    profiler = torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) if profile_updates else None

    def train_step(self, samples, raise_oom=False):
        n = len(record["stamps"])
        if profiler is not None and n == profile_from:
            profiler.start()
        result = original(self, samples, raise_oom)
        record["stamps"].append(time.perf_counter())
        record["tokens"].append(sum(int(s.get("ntokens", 0)) for s in samples if s))
        record["loss"].append(float(result["loss"]) if result and "loss" in result else None)
        if profiler is not None and n == profile_from + profile_updates - 1:
            profiler.stop()
            table = profiler.key_averages().table(sort_by="self_cpu_time_total", row_limit=25, max_name_column_width=70)
            record["profile"] = table
        return result

    trainer_module.Trainer.train_step = train_step
    sys.argv = ["fairseq-train", *argv]
    train.cli_main()
    record["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    Path(out).write_text(json.dumps(record))


def train_run(config: str, precision: str, ranks: int, args, tmp: Path, profile: int = 0) -> dict:
    """One training run: target tokens/s over the timed updates (all ranks), loss per update."""
    updates = args.warmup + (profile or args.updates)
    tokens = args.max_tokens // ranks
    base = [args.data, *config_args(config, args.size), *criterion_args(config), *recipe_args(tokens)]
    base += ["--max-update", str(updates), "--no-save", "--disable-validation", "--log-interval", "1000"]
    base += ["--bf16"] if precision == "bf16" else []
    port, procs, outs = free_port(), [], []
    for rank in range(ranks):
        dist = []
        if ranks > 1:
            dist = ["--distributed-world-size", str(ranks), "--distributed-rank", str(rank)]
            dist += ["--distributed-backend", "gloo", "--ddp-backend", "legacy_ddp", "--distributed-no-spawn"]
            dist += ["--distributed-init-method", f"tcp://127.0.0.1:{port}"]
        out = tmp / f"{config}_{precision}_{ranks}_{rank}_{time.monotonic_ns()}.json"
        worker_args = [str(out), str(args.warmup if profile else 0), str(profile), "--", *base, *dist]
        env = {**os.environ, **dict(kv.split("=", 1) for kv in args.worker_env)}
        env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
        cmd = [sys.executable, __file__, "--worker", *worker_args]
        procs.append(subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True))
        outs.append(out)
    for p in procs:
        _, err = p.communicate()
        if p.returncode != 0:
            raise SystemExit(f"{config} {precision} x{ranks}: fairseq-train failed:\n{err[-3000:]}")
    records = [json.loads(o.read_text()) for o in outs]
    stamps, w = records[0]["stamps"], args.warmup
    seconds = stamps[-1] - stamps[w - 1]
    timed_tokens = sum(sum(r["tokens"][w:]) for r in records)
    return {
        "config": config,
        "precision": precision,
        "ranks": ranks,
        "timed_updates": len(stamps) - w,
        "seconds_per_update": seconds / (len(stamps) - w),
        "target_tokens_per_s": timed_tokens / seconds,
        "loss": records[0]["loss"],
        "peak_rss_mb_per_rank": [round(r["peak_rss_mb"]) for r in records],
        **({"profile": records[0]["profile"]} if profile else {}),
    }


def train_rounds(args, tmp: Path) -> list[dict]:
    """Every configuration and rank count, ``args.rounds`` times fp32 then bf16."""
    rows = []
    for config in args.configs:
        for ranks in args.ranks:
            for r in range(args.rounds):
                for precision in ("fp32", "bf16"):
                    row = {**train_run(config, precision, ranks, args, tmp), "round": r}
                    print(
                        f"{config} x{ranks} {precision} round {r}: {row['target_tokens_per_s']:.0f} tokens/s",
                        flush=True,
                    )
                    rows.append(row)
    return rows


def summarize(rows: list[dict]) -> list[dict]:
    """Per configuration and rank count: median tokens/s of each precision, median paired speed-up."""
    out = []
    for key in dict.fromkeys((r["config"], r["ranks"]) for r in rows):
        runs = {
            p: {r["round"]: r for r in rows if (r["config"], r["ranks"]) == key and r["precision"] == p}
            for p in ("fp32", "bf16")
        }
        rounds = sorted(set(runs["fp32"]) & set(runs["bf16"]))
        ratios = [runs["bf16"][i]["target_tokens_per_s"] / runs["fp32"][i]["target_tokens_per_s"] for i in rounds]
        last = {p: runs[p][rounds[0]]["loss"][-1] for p in runs}
        out.append(
            {
                "config": key[0],
                "ranks": key[1],
                "fp32_tokens_per_s": statistics.median(runs["fp32"][i]["target_tokens_per_s"] for i in rounds),
                "bf16_tokens_per_s": statistics.median(runs["bf16"][i]["target_tokens_per_s"] for i in rounds),
                "speedup": statistics.median(ratios),
                "speedups": ratios,
                "last_loss_fp32": last["fp32"],
                "last_loss_bf16": last["bf16"],
            }
        )
    return out


TRANSLATED = re.compile(r"Translated ([\d,]+) sentences \(([\d,]+) tokens\) in ([0-9.]+)s")


def run_generate(args, precision: str) -> tuple[str, str]:
    """fairseq-generate of ``args.generate`` on one thread (bleu's settings: beam 4, lenpen 0.6,
    sentencepiece removed); its stdout (hypotheses) and stderr (fairseq's log, with its timing)."""
    from mos_fairseq.base.user_dir import plugin_user_dir
    from mos_fairseq.translation.bleu import GENERATE_SETTINGS

    cmd = [str(Path(sys.executable).parent / "fairseq-generate"), args.gen_data or args.data, "--path", args.generate]
    cmd += ["--gen-subset", args.gen_subset, *GENERATE_SETTINGS, "--batch-size", str(args.gen_batch_size)]
    cmd += ["--remove-bpe", "sentencepiece", "--user-dir", plugin_user_dir(), "--cpu", *args.gen_extra]
    cmd += ["--bf16"] if precision == "bf16" else []
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"fairseq-generate ({precision}) failed:\n{proc.stderr[-3000:]}")
    return proc.stdout, proc.stderr


def generate_rounds(args) -> list[dict]:
    """fairseq-generate of ``args.generate``, fp32 then bf16, ``args.rounds`` times: generation seconds
    (fairseq's own count, model loading left out), target tokens/s and sacreBLEU."""
    from mos_fairseq.translation.bleu import parse_generate_output, score, target_lang_of

    lang = target_lang_of(args.generate, args.gen_data or args.data) or "de"
    rows = []
    for r in range(args.rounds):
        for precision in ("fp32", "bf16"):
            out, log = run_generate(args, precision)
            found = TRANSLATED.search(out + log)
            if found is None:
                raise SystemExit(f"fairseq-generate ({precision}) printed no 'Translated ...' line")
            sentences, tokens, seconds = int(found[1].replace(",", "")), int(found[2].replace(",", "")), float(found[3])
            bleu = score(*parse_generate_output(out), lang).sacrebleu
            row = {"precision": precision, "round": r, "sentences": sentences, "seconds": seconds}
            rows.append({**row, "tokens_per_s": tokens / max(seconds, 1e-9), "bleu": bleu})
            print(f"generate {precision} round {r}: {seconds:.1f}s, BLEU {bleu:.2f}", flush=True)
    return rows


def machine() -> dict:
    """lscpu's model name, the CPU's bf16 flags, torch, the commit and the threads used."""
    import torch

    from mos_fairseq.core.cpu_bf16 import bf16_capability, cpu_flags

    lscpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    model = next((line.split(":", 1)[1].strip() for line in lscpu.splitlines() if line.startswith("Model name")), "")
    flags = cpu_flags()
    git = ["git", "-C", str(REPO)]
    commit = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run([*git, "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True)
    return {
        "cpu_model": model or platform.processor(),
        "bf16_flags": sorted(f for f in flags if "bf16" in f or f.startswith("amx")),
        "bf16_capability": bf16_capability(flags),
        "cores": os.cpu_count(),
        "torch": torch.__version__,
        "commit": commit + ("+uncommitted changes" if dirty.stdout.strip() else ""),
        "threads_per_process": 1,
    }


NAMES = {
    "stock": "(a) stock transformer 256/1024/4 heads, 3+3",
    "mos": "(b) neuron-MoS sandwich supernet, hat_cpu_multi30k",
    "spos": "(c) SPOS supernet, hat_cpu_multi30k",
}


def training_lines(summary: list[dict], info: dict) -> list[str]:
    lines = [
        "| configuration | ranks x threads | fp32 tokens/s | bf16 tokens/s | bf16 / fp32 (per round) | last loss fp32 / bf16 |",
        "|---|---|---:|---:|---|---|",
    ]
    for s in summary:
        rounds = ", ".join(f"{x:.2f}" for x in s["speedups"])
        losses = "/".join(f"{x:.3f}" if x is not None else "-" for x in (s["last_loss_fp32"], s["last_loss_bf16"]))
        lines.append(
            f"| {NAMES[s['config']]} | {s['ranks']} x 1 | {s['fp32_tokens_per_s']:.0f} | {s['bf16_tokens_per_s']:.0f} "
            f"| **{s['speedup']:.2f}x** ({rounds}) | {losses} |"
        )
    lines.append("")
    for s in summary:
        if s["ranks"] == 1 and s["config"] in ("stock", "mos"):
            verdict = "meets" if s["speedup"] >= 2.0 else "is below"
            lines.append(f"- {NAMES[s['config']]}, one thread: {s['speedup']:.2f}x {verdict} the 2.0x target.")
    if info["bf16_capability"] != "amx_bf16":
        lines.append(
            f"- This CPU has no AMX ({info['bf16_capability'] or 'no bf16 instructions'}): its bf16 matmuls run on "
            "AVX-512 BF16 dot-product instructions, at best about twice fp32's FMA rate, not on AMX tiles (which "
            "the 2.0x target assumes); casts, fp32 attention, dropout, layer norm and the optimizer step do not "
            "get faster, so the end-to-end gain is far smaller here."
        )
    return lines


def generation_lines(rows: list[dict], args: dict) -> list[str]:
    lines = [
        f"`{args['generate']}` on `{args['gen_subset']}`: fairseq-generate, beam 4, lenpen 0.6, "
        f"batch {args['gen_batch_size']}, one thread; seconds as fairseq counts them (model loading left out).",
        "",
        "| precision | seconds (median) | tokens/s (median) | sacreBLEU | rounds |",
        "|---|---:|---:|---:|---:|",
    ]
    for precision in ("fp32", "bf16"):
        mine = [r for r in rows if r["precision"] == precision]
        sec = statistics.median(r["seconds"] for r in mine)
        tps = statistics.median(r["tokens_per_s"] for r in mine)
        lines.append(f"| {precision} | {sec:.1f} | {tps:.0f} | {mine[0]['bleu']:.2f} | {len(mine)} |")
    fp32 = statistics.median(r["seconds"] for r in rows if r["precision"] == "fp32")
    bf16 = statistics.median(r["seconds"] for r in rows if r["precision"] == "bf16")
    lines += ["", f"bf16 generation is {fp32 / bf16:.2f}x fp32's speed."]
    return lines


def record_section(record: dict) -> list[str]:
    """One measurement (one invocation of this script, its JSON record) as a section of the report."""
    info, args, rows = record["machine"], record["args"], record["training"]
    training = (
        f"fp32 and bf16 runs interleaved, {args['rounds']} rounds; {args['warmup']} warm-up updates left out, then "
        f"{args['updates']} timed updates of {args['max_tokens']} target-side tokens (split over the ranks); data "
        f"`{args['data']}`{' (tiny models on a synthetic corpus: the numbers mean nothing)' if args['tiny'] else ''}."
    )
    lines = [
        f"## {record.get('date', 'undated')}: {info['cpu_model']}, commit {info['commit']}",
        "",
        f"Machine: **{info['cpu_model']}**, bf16 flags: {', '.join(info['bf16_flags']) or 'none'}; {info['cores']} "
        f"cores; torch {info['torch']}. One thread per process" + (f"; {training}" if rows else "."),
        "",
        *([f"Conditions: {record['note']}.", ""] if record.get("note") else []),
        *(
            [f"Environment of every fairseq-train process (both precisions): `{' '.join(args['worker_env'])}`.", ""]
            if args.get("worker_env")
            else []
        ),
        f"    python benchmarks/cpu_bf16.py {record.get('command', '')}",
        "",
    ]
    if rows:
        lines += ["### Training: target tokens/s", "", *training_lines(summarize(rows), info), ""]
    if record["generation"]:
        lines += ["### Generation", "", *generation_lines(record["generation"], args), ""]
    for prof in record.get("profiles", []):
        lines += [f"### Profile: {NAMES[prof['config']]}, {prof['precision']}, {args['profile']} updates", "", "```"]
        lines += [prof["profile"].rstrip(), "```", ""]
    return lines


def build_report(records: list[dict]) -> str:
    """Every measurement, newest first (each names its machine, commit and protocol)."""
    lines = [
        "# bf16 vs fp32 on CPU: training throughput and generation",
        "",
        "Built by `benchmarks/cpu_bf16.py` from its measurement records (`cpu_bf16/*.json` beside this file, one "
        "per run of the script, newest first). Ratios compare runs of one record only: each record interleaves "
        "its fp32 and bf16 runs on one machine.",
        "",
        "The bf16 path (`--cpu --bf16`, `mos_fairseq/core/cpu_bf16.py`) is bf16 autocast for the matmuls with "
        "fp32 attention, plus two changes that are not about precision and that fp32 training, left as "
        "fairseq's, does without: the label-smoothed loss in one pass over the logits, which also writes their "
        "gradient, and dropout masks from 16-bit uniforms (`docs/training.md`, bf16 on CPU). Records before "
        "commit 32ac7e5 measured fairseq's dropout masks and a two-pass loss.",
        "",
    ]
    for record in sorted(records, key=lambda r: r.get("date", ""), reverse=True):
        lines += record_section(record)
    return "\n".join(lines)


def load_records(directory: Path) -> list[dict]:
    records = []
    for path in sorted(directory.glob("*.json")):
        try:
            records.append(json.loads(path.read_text()))
        except json.JSONDecodeError as e:
            raise SystemExit(f"cpu_bf16: {path} is not JSON ({e.msg})") from None
    return records


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", help="fairseq data directory (Multi30k binaries); --tiny makes a synthetic one")
    ap.add_argument("--tiny", action="store_true", help="synthetic corpus and tiny models (checks the script)")
    ap.add_argument("--configs", nargs="+", choices=CONFIGS, default=list(CONFIGS))
    ap.add_argument("--ranks", nargs="+", type=int, default=[1, 2], help="data-parallel ranks, one thread each")
    ap.add_argument("--rounds", type=int, default=3, help="fp32/bf16 pairs per configuration")
    ap.add_argument("--updates", type=int, default=12, help="timed updates per run")
    ap.add_argument("--warmup", type=int, default=3, help="updates left out of the rate (at least 1)")
    ap.add_argument("--max-tokens", type=int, default=4096, help="tokens per update, split over the ranks")
    ap.add_argument("--profile", type=int, default=0, metavar="N", help="also profile N updates per configuration")
    ap.add_argument("--generate", metavar="CKPT", help="also time fairseq-generate of this checkpoint, fp32 vs bf16")
    ap.add_argument("--gen-data", help="data directory for --generate (default: --data)")
    ap.add_argument("--gen-subset", default="test")
    ap.add_argument("--gen-batch-size", type=int, default=64)
    ap.add_argument("--gen-extra", nargs="*", default=[], help="more fairseq-generate options, e.g. --task ...")
    ap.add_argument("--no-train", action="store_true", help="only --generate")
    ap.add_argument(
        "--out",
        default=str(RESULTS / "cpu_bf16.md"),
        help="the Markdown report, rebuilt from every record in the directory beside it (cpu_bf16.md: cpu_bf16/)",
    )
    ap.add_argument(
        "--worker-env",
        nargs="*",
        default=[],
        metavar="KEY=VALUE",
        help="environment of every training process, both precisions (e.g. glibc's MALLOC_MMAP_THRESHOLD_=...)",
    )
    ap.add_argument("--note", default="", help="the conditions of the run, kept in its record (e.g. 'other core idle')")
    args = ap.parse_args()
    bad_env = [kv for kv in args.worker_env if "=" not in kv or not kv.split("=", 1)[0]]
    if bad_env:
        ap.error(f"--worker-env takes KEY=VALUE, got {bad_env[0]!r}")
    if args.warmup < 1 or args.updates < 1 or args.rounds < 1:
        ap.error("--warmup, --updates and --rounds must be >= 1")
    if not args.tiny and not args.data and not (args.no_train and args.gen_data):
        ap.error("give --data (Multi30k binaries) or --tiny")
    if args.no_train and not args.generate:
        ap.error("--no-train leaves only --generate CKPT to run")
    args.size = "tiny" if args.tiny else "full"
    return args


def tiny_corpus(root: Path) -> str:
    """A small synthetic corpus, binarised (``mos-nas make-synthetic`` + ``prepare-data``)."""
    mos_nas = str(Path(sys.executable).parent / "mos-nas")
    subprocess.run(
        [mos_nas, "make-synthetic", "--out", str(root / "raw"), "--train", "1500", "--valid", "50", "--test", "40"],
        check=True,
        capture_output=True,
    )
    raw = root / "raw"
    subprocess.run(
        [
            mos_nas,
            "prepare-data",
            "--src",
            "en",
            "--tgt",
            "de",
            "--train",
            str(raw / "train"),
            "--valid",
            str(raw / "valid"),
            "--test",
            str(raw / "test"),
            "--vocab-size",
            "160",
            "--out",
            str(root / "bin"),
        ],
        check=True,
        capture_output=True,
    )
    return str(root / "bin")


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        return worker(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[6:])
    args = parse_args()
    from mos_fairseq.core.cpu_bf16 import require_cpu_bf16

    require_cpu_bf16()
    os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = "1"  # fairseq-generate inherits it
    info = machine()
    with tempfile.TemporaryDirectory() as tmp:
        if args.tiny and not args.data and not args.no_train:
            args.data = tiny_corpus(Path(tmp))
        rows = [] if args.no_train else train_rounds(args, Path(tmp))
        profiles = []
        for config in args.configs if args.profile and not args.no_train else []:
            profiles += [train_run(config, p, 1, args, Path(tmp), profile=args.profile) for p in ("fp32", "bf16")]
        gen = generate_rounds(args) if args.generate else []
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    record = {
        "date": now,
        "command": shlex.join(sys.argv[1:]),
        "note": args.note,
        "machine": info,
        "args": {k: v for k, v in vars(args).items()},
        "training": rows,
        "generation": gen,
        "profiles": profiles,
        "summary": summarize(rows) if rows else [],
    }
    out = Path(args.out)
    records = out.with_suffix("")  # the records directory beside the report: cpu_bf16.md -> cpu_bf16/
    name = f"{now[:10]}_{info['commit'].split('+')[0]}_{'-'.join(args.configs)}_{time.time_ns() % 10**6}.json"
    write_atomic(records / name, json.dumps(record, indent=1) + "\n")
    report = build_report(load_records(records))
    write_atomic(out, report)
    print("\n".join(record_section(record)))
    print(f"wrote {records / name} and {out}")


if __name__ == "__main__":
    main()
