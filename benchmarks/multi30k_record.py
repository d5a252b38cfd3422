"""The last step of a Multi30k unit (stage ``record`` of benchmarks/multi30k.sh): each finished model of a
runs directory becomes the study's committed result:

- trained alone, ``WORK/standalone/NAME`` (arch.yml, commit, checkpoint_avg.pt, bleu.{valid,test,test1}.json,
  hyp.{test,test1}.txt, train/train.log): run ``NAME``; a recipe variant of stage sweep, ``WORK/sweep/NAME``
  (the same files): run ``sweep_NAME``, role ``sweep`` (its options beside the recipe's in the run);
- inherited, a subnet exported from a supernet and scored as it is: ``WORK/picks/SUPERNET_NAME`` (a search's
  pick) or ``WORK/inherited/SUPERNET_NAME`` (a Table 4 architecture: baseline, largest, sample), each with
  arch.yml, export/checkpoint.pt, bleu.*.json, hyp.*.txt and valid_loss.json (the subnet's validation nll
  in the supernet), the supernet's commit, log and lscpu in ``WORK/supernets/SUPERNET``: run
  ``inherited_SUPERNET_NAME``. Only the picks among them translate the blind sets (the others are
  measurements of the supernet, not models anyone ships).

For each:

- ``RESULTS/hyp/NAME.{test,test_mscoco}.txt``: the hypotheses ``mos-nas bleu`` wrote (copied);
- ``RESULTS/hyp/NAME.{test2016,test2018}.txt``: the blind sets (``DATA/blind/*.en``, no references here)
  translated with the same settings as ``mos-nas bleu`` (fairseq-generate, beam 4, lenpen 0.6, batch 64,
  sentencepiece removed), detokenised, one line per input line; their binaries are built once in BLIND;
- ``RESULTS/runs/NAME.json``: the self-describing run (architecture, role, recipe, commit, machine, dtype,
  BLEU per subset with sacreBLEU's signature, validation nll, latency (null until every model is timed
  together on one machine), dates), written last: it marks the model recorded;
- ``RESULTS/results.json``: the index the report is built from, rebuilt from every ``runs/*.json`` (also
  alone, ``--index``, after a latency unit has filled the runs' latency).

Idempotent: a recorded model (its run file names the same checkpoint digest) is skipped, a blind set
already translated is not translated again. Every selected model is checked before anything is written;
an unfinished one, or a committed file of the same name from another run, is a one-line error.

    python benchmarks/multi30k_record.py --work WORK --data DATA --results benchmarks/results/multi30k \
        --baselines benchmarks/multi30k_archs --preset multi30k [--only NAME ...]
    python benchmarks/multi30k_record.py --results benchmarks/results/multi30k --index
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Iterator, cast

import yaml
from common import lscpu_fields, write_atomic
from fairseq_logs import train_progress, training_dtype

from mos_fairseq.base.errors import UserError

SCHEMA = "multi30k-run/1"
STUDY = 2  # the runs of the first study (2026-12-01 to 04) are study 1, kept as it committed them
BLIND = ("test2016", "test2018")  # DATA/blind/SET.en, references not distributed
SCORED = {"valid": "valid", "test": "test", "test1": "test_mscoco"}  # fairseq subset -> the data set's name
COPIED = ("test", "test1")  # hypotheses committed (the index's subsets with references)
SUPERNETS = ("neuron", "spos", "sandwich", "layer")
BATCH_SIZE = 64  # mos-nas bleu's default, as stage score_model uses it
GENERATION = {
    "beam": 4,
    "lenpen": 0.6,
    "batch_size": BATCH_SIZE,
    "remove_bpe": "sentencepiece",
    "tool": "fairseq-generate",
}
SCORES = ("bleu.valid.json", "bleu.test.json", "bleu.test1.json", "hyp.test.txt", "hyp.test1.txt")
NEEDED = ("arch.yml", "commit", "checkpoint_avg.pt", *SCORES, "train/train.log", ".done")  # a model trained alone
NEEDED_INHERITED = ("arch.yml", "export/checkpoint.pt", *SCORES, ".done")  # an exported subnet
INHERITED_DIRS = ("picks", "inherited")  # WORK/picks: the searches' picks; WORK/inherited: Table 4's others
KINDS = {"standalone": "", "sweep": "sweep_", "picks": "inherited_", "inherited": "inherited_"}  # dir -> run prefix
MODEL_OPTIONS = {"encoder-normalize-before": False, "decoder-normalize-before": False}  # recorded beside the preset's


class RecordError(Exception):
    """A one-line reason to stop before anything is written."""


def role_of(name: str, baselines: Path) -> tuple[str, str | None, float | None]:
    """(role, supernet, constraint_ms) from the run's name: a baseline of the baselines directory (or its
    bf16 twin NAME_bf16), the space's largest subnet, a pick SUPERNET_best_latency_Xms, or a Table 4 sample
    sample_*, or a recipe variant sweep_* (stage sweep)."""
    if name.startswith("sweep_"):
        return "sweep", None, None
    if (baselines / f"{name.removesuffix('_bf16')}.yml").is_file():  # NAME_bf16: a baseline's bf16 twin
        return "baseline", None, None
    if name == "largest":
        return "largest", None, None
    sup = name.split("_", 1)[0]
    if sup in SUPERNETS:
        m = re.search(r"_latency_([0-9]+(?:\.[0-9]+)?)ms$", name)
        return "pick", sup, float(m.group(1)) if m else None
    if name.startswith("sample"):
        return "sample", None, None
    raise RecordError(
        f"cannot tell the role of '{name}' (a baseline of {baselines}, largest, SUPERNET_..., sample_...)"
    )


def inherited_role(name: str, baselines: Path) -> tuple[str, str, float | None]:
    """(role, supernet, constraint_ms) of an exported subnet's directory SUPERNET_NAME: a pick
    SUPERNET_best_latency_Xms, else the role NAME has among the Table 4 architectures."""
    sup, _, rest = name.partition("_")
    if sup not in SUPERNETS or not rest:
        raise RecordError(
            f"cannot tell the supernet of '{name}' (SUPERNET_NAME, SUPERNET one of {', '.join(SUPERNETS)})"
        )
    if rest.startswith("best_"):
        return role_of(name, baselines)
    try:
        role, _, _ = role_of(rest, baselines)
    except RecordError:
        role = "pick"
    if role == "pick":  # neither a search's pick nor a Table 4 architecture
        raise RecordError(f"cannot tell the role of '{name}' ({sup}_best_latency_Xms, or {sup}_ and a Table 4 name)")
    return role, sup, None


def machine_of(run: Path, work: Path) -> dict:
    """The machine that trained the run: its own lscpu.txt, else the runs directory's, else this one's now
    (a unit trains and records on one machine)."""
    for path, source in (
        (run / "lscpu.txt", "lscpu when the model was trained"),
        (work / "logs" / "lscpu.txt", "lscpu of the runs directory (logs/lscpu.txt)"),
    ):
        if path.is_file():
            return lscpu_fields(path.read_text(), source)
    text = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
    return lscpu_fields(text, "lscpu when the model was recorded (the machine that trained it)")


def valid_nll(log: Path) -> dict:
    """Validation nll per epoch (bits per token: fairseq's nll_loss is base 2), the best and the final epoch;
    a resumed run's repeated epoch keeps its last line."""
    per_epoch: dict[int, dict] = {}
    for v in train_progress(log)["valid"]:
        if "epoch" in v and "nll_loss" in v:
            per_epoch[int(v["epoch"])] = {
                "epoch": int(v["epoch"]),
                "nll_loss": v["nll_loss"],
                "loss": v.get("loss"),
                "num_updates": int(v["num_updates"]) if "num_updates" in v else None,
            }
    epochs = [per_epoch[e] for e in sorted(per_epoch)]
    best = min(epochs, key=lambda e: e["nll_loss"], default=None)
    pick = ("epoch", "nll_loss")
    return {
        "unit": "bits per token (fairseq nll_loss, base 2), validation set, each epoch's checkpoint",
        "per_epoch": epochs,
        "best": {k: best[k] for k in pick} if best else None,
        "final": {k: epochs[-1][k] for k in pick} if epochs else None,
        "averaged_checkpoint": None,
    }


def checkpoint_facts(ckpt: Path, preset: dict) -> tuple[dict, int]:
    """(the recipe's options as the run's checkpoint holds them, data-parallel ranks). The training
    precision is in the log, not here (fairseq_logs.training_dtype)."""
    from omegaconf import OmegaConf

    from mos_fairseq.core.checkpoints import read_checkpoint

    raw = read_checkpoint(ckpt)["cfg"]
    cfg: dict = raw if isinstance(raw, dict) else cast(dict, OmegaConf.to_container(raw))
    flat: dict = {}
    for group in cfg.values():
        if isinstance(group, dict):
            for k, v in group.items():
                flat.setdefault(k, v)
    options = {}
    for key, value in {**preset, **MODEL_OPTIONS}.items():
        held = flat.get(key.replace("-", "_"), value)
        if isinstance(held, list) and len(held) == 1 and not isinstance(value, list):
            held = held[0]  # fairseq keeps lr as a list of one
        options[key] = held
    ranks = int((cfg.get("distributed_training") or {}).get("distributed_world_size") or 1)
    return options, ranks


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def line_count(path: Path) -> int:
    return len(path.read_text().splitlines())


def blind_binaries(bin_dir: Path, data: Path, out: Path) -> None:
    """OUT/SET/test.en-de.en.{bin,idx} + both dictionaries for each blind set: the source encoded with the
    runs directory's sentencepiece model, binarised with its dictionary (source only: no references).
    Each set is its own directory with subset ``test``, so it is generated exactly as the test set is."""
    from mos_fairseq.data.prepare import encode_file

    for name in BLIND:
        dest = out / name
        if (dest / "test.en-de.en.idx").is_file():
            continue
        src = data / "blind" / f"{name}.en"
        work = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=out))
        try:
            encode_file(bin_dir / "spm.model", src, work / "test.en")
            cmd = [
                sys.executable,
                "-m",
                "fairseq_cli.preprocess",
                "--source-lang",
                "en",
                "--target-lang",
                "de",
                "--only-source",
                "--srcdict",
                str(bin_dir / "dict.en.txt"),
                "--testpref",
                str(work / "test"),
                "--destdir",
                str(work / "bin"),
                "--workers",
                "1",
            ]
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode != 0:
                tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
                raise RecordError(f"fairseq-preprocess of {src} failed: {tail[0]}")
            for lang in ("en", "de"):
                shutil.copy(bin_dir / f"dict.{lang}.txt", work / "bin" / f"dict.{lang}.txt")
            (work / "bin" / "preprocess.log").unlink(missing_ok=True)
            shutil.rmtree(dest, ignore_errors=True)
            (work / "bin").replace(dest)
        finally:
            shutil.rmtree(work, ignore_errors=True)


def translate(ckpt: Path, blind_dir: Path, n_lines: int) -> str:
    """The detokenised hypotheses of one blind set, one line per input line, in input order."""
    from mos_fairseq.translation.bleu import generate

    out = generate(str(ckpt), str(blind_dir), "test", BATCH_SIZE)
    hyps: dict[int, str] = {}
    for line in out.splitlines():
        if line.startswith("H-"):
            head, _, rest = line.partition("\t")
            hyps[int(head[2:])] = rest.partition("\t")[2]
    if sorted(hyps) != list(range(n_lines)):
        raise RecordError(f"fairseq-generate on {blind_dir} gave {len(hyps)} hypotheses for {n_lines} lines")
    return "".join(hyps[i] + "\n" for i in range(n_lines))


def rel(path: Path, root: Path) -> str:
    """A committed file's path as the index and the run name it: relative to the repository root."""
    try:
        return str(path.resolve().relative_to(root.resolve()))
    except ValueError:
        return str(path.resolve())


class Model:
    """One finished model of the runs directory and where its committed files go: a model trained alone
    (``WORK/standalone/NAME``, run NAME; ``WORK/sweep/NAME``, run sweep_NAME), or a subnet exported from a
    supernet (``WORK/picks/NAME`` or ``WORK/inherited/NAME``, run inherited_NAME)."""

    def __init__(self, name: str, work: Path, results: Path, root: Path, kind: str = "standalone") -> None:
        self.inherited = kind in INHERITED_DIRS
        self.dir = work / kind / name
        self.name = KINDS[kind] + name
        self.checkpoint = self.dir / ("export/checkpoint.pt" if self.inherited else "checkpoint_avg.pt")
        self.needed = NEEDED_INHERITED if self.inherited else NEEDED
        self.work, self.results, self.root = work, results, root
        self.run_file = results / "runs" / f"{self.name}.json"

    @property
    def supernet_dir(self) -> Path:
        return self.work / "supernets" / self.dir.name.partition("_")[0]

    def blind(self) -> tuple[str, ...]:
        """The blind sets this model translates: every model trained alone and every pick."""
        return BLIND if not self.inherited or self.dir.parent.name == "picks" else ()

    def hyp(self, subset: str) -> Path:
        return self.results / "hyp" / f"{self.name}.{SCORED.get(subset, subset)}.txt"

    def check(self) -> str:
        """The checkpoint's digest once the model is finished and nothing committed under its name is
        another run's; else a RecordError."""
        if not self.dir.is_dir():
            raise RecordError(f"no model '{self.name}' in {self.dir.parent}")
        missing = [f for f in self.needed if not (self.dir / f).exists()]
        if self.inherited:
            missing += [
                f"{self.supernet_dir.name}/{f}" for f in ("commit", "train.log") if not (self.supernet_dir / f).exists()
            ]
        if missing:
            raise RecordError(f"model '{self.name}' is not finished (no {', '.join(missing)} in {self.dir})")
        commit = self.supernet_dir / "commit" if self.inherited else self.dir / "commit"
        if not commit.read_text().strip():
            raise RecordError(f"{commit} is empty: the commit of the code that trained '{self.name}' is unknown")
        digest = sha256(self.checkpoint)
        if self.run_file.is_file():
            held = json.loads(self.run_file.read_text()).get("checkpoint_sha256")
            if held != digest:
                raise RecordError(f"{self.run_file} holds another run of that name (checkpoint {str(held)[:12]})")
        else:
            for subset in COPIED:
                dest = self.hyp(subset)
                if dest.is_file() and dest.read_text() != (self.dir / f"hyp.{subset}.txt").read_text():
                    raise RecordError(f"{dest} exists and is another run's hypotheses")
        return digest


def bleu_entries(model: Model, data: Path) -> dict:
    """BLEU per subset as ``mos-nas bleu --json`` wrote it (signature included), with the committed
    hypotheses; the blind sets with their hypotheses and no score (their references are not here)."""
    out = {}
    for subset, set_name in SCORED.items():
        doc = json.loads((model.dir / f"bleu.{subset}.json").read_text())
        out[set_name] = {
            "bleu": doc["bleu"],
            "signature": doc["signature"],
            "tokenized_bleu": doc.get("tokenized_bleu"),
            "sentences": doc.get("sentences"),
            "references": f"{data.name}/{set_name}.de",
            "hyp": rel(model.hyp(subset), model.root) if subset in COPIED else None,
        }
    for name in model.blind():
        out[name] = {
            "bleu": None,
            "signature": None,
            "sentences": line_count(data / "blind" / f"{name}.en"),
            "references": None,
            "hyp": rel(model.hyp(name), model.root),
        }
    return out


def run_head(model: Model, role: tuple[str, str | None, float | None], training: str, arch_text: str) -> dict:
    """The fields every run starts with: what it is (role, supernet, constraint) and its architecture."""
    return {
        "schema": SCHEMA,
        "study": STUDY,
        "name": model.name,
        "role": role[0],
        "supernet": role[1],
        "training": training,
        "constraint_ms": role[2],
        "architecture": yaml.safe_load(arch_text),
        "params": params_of(arch_text, model.work / "bin"),
    }


def run_tail(model: Model, progress: dict, digest: str) -> dict:
    """The fields every run ends with: how far it trained, its (not yet measured) latency, its weights' digest,
    its dates and where it was recorded from."""
    done = dt.datetime.fromtimestamp(model.checkpoint.stat().st_mtime, dt.UTC)
    return {
        "training_progress": {"updates": progress["updates"], "train_wall_s": progress["train_wall_s"]},
        "latency": UNTIMED,
        "checkpoint_sha256": digest,
        "trained_at": done.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "recorded_at": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "source": f"benchmarks/multi30k.sh record: {model.dir.parent.name}/{model.dir.name} of the runs directory",
    }


def run_document(model: Model, digest: str, data: Path, baselines: Path, preset_name: str) -> dict:
    """The self-describing run: everything the report and a reader need, nothing machine-local."""
    from mos_fairseq.translation.retrain import load_preset

    if model.inherited:
        return inherited_document(model, digest, data, baselines)
    role, supernet, constraint = role_of(model.name, baselines)
    arch_text = (model.dir / "arch.yml").read_text()
    options, ranks = checkpoint_facts(model.dir / "checkpoint_avg.pt", load_preset(preset_name))
    dtype = training_dtype(model.dir / "train" / "train.log")
    progress = train_progress(model.dir / "train" / "train.log")
    return {
        **run_head(model, (role, supernet, constraint), "alone", arch_text),
        "recipe": {
            "preset": Path(preset_name).stem,
            "options": options,
            "averaged": "the last epoch checkpoints (mos-nas average), scored and timed",
        },
        "commit": (model.dir / "commit").read_text().strip(),
        "machine": machine_of(model.dir, model.dir.parent.parent),
        "threads": 1,
        "ranks": ranks,
        "dtype": {"training": dtype, "inference": inference_dtype()},
        "generation": GENERATION,
        "bleu": bleu_entries(model, data),
        "valid_nll": valid_nll(model.dir / "train" / "train.log"),
        **run_tail(model, progress, digest),
    }


UNTIMED = {
    "ms": None,
    "protocol": None,
    "machine": None,
    "measured_at": None,
    "window": None,
    "note": "timed by a latency unit: every model of the report together on one machine",
}


def inherited_document(model: Model, digest: str, data: Path, baselines: Path) -> dict:
    """The run of a subnet exported from a supernet and scored as it is: the supernet's training stands
    for its recipe, commit, machine and dtype; its validation nll is the subnet's inside the supernet."""
    role, supernet, constraint = inherited_role(model.dir.name, baselines)
    sup = model.supernet_dir
    arch_text = (model.dir / "arch.yml").read_text()
    progress = train_progress(sup / "train.log")
    machine = machine_of(sup, model.work)
    dtype = training_dtype(sup / "train.log")
    commit = (sup / "commit").read_text().strip()
    loss_file = model.dir / "valid_loss.json"
    loss = json.loads(loss_file.read_text())["valid_loss"] if loss_file.is_file() else None
    return {
        **run_head(model, (role, supernet, constraint), "inherited", arch_text),
        "recipe": {
            "supernet": {
                "supernet_run": f"{supernet}@{commit}, {machine['cpu_model']}",
                "run_file": f"supernets/{supernet}{'_bf16' if dtype == 'bf16' else ''}.json (stage record_supernets)",
                "updates": progress["updates"],
            },
            "weights": "exported from the supernet's checkpoint_last.pt (mos-nas export), not trained further",
        },
        "commit": commit,
        "machine": machine,
        "threads": 1,
        "dtype": {"training": dtype, "inference": inference_dtype()},
        "generation": GENERATION,
        "bleu": bleu_entries(model, data),
        "valid_nll": {
            "unit": "bits per token (token-level nll, base 2), validation set, the subnet inside the supernet",
            "per_epoch": [],
            "best": None,
            "final": None,
            "averaged_checkpoint": None,
            "inherited_weights": loss,
        },
        **run_tail(model, progress, digest),
    }


def inference_dtype() -> str:
    """What fairseq-generate ran in for the blind sets (mos-nas bleu's rule: fp16 on a GPU, else fp32)."""
    import torch

    return "fp16" if torch.cuda.is_available() else "fp32"


def params_of(arch_text: str, bin_dir: Path) -> int | None:
    """Parameters with the runs directory's joined vocabulary (shared embeddings), as the report counts."""
    from fairseq.data import Dictionary

    from mos_fairseq.translation.architecture import Architecture

    with tempfile.NamedTemporaryFile("w", suffix=".yml") as f:
        f.write(arch_text)
        f.flush()
        arch = Architecture.load(f.name)
    vocab = len(Dictionary.load(str(bin_dir / "dict.en.txt")))
    return int(arch.num_params(vocab, vocab))


def record(model: Model, digest: str, args: argparse.Namespace) -> str:
    """Commit one checked model's hypotheses and run file; what was done, in one line."""
    todo = [s for s in (*COPIED, *model.blind()) if not model.hyp(s).is_file()]
    if model.run_file.is_file() and not todo:
        return f"{model.name}: recorded already ({rel(model.run_file, model.root)})"
    for subset in COPIED:
        if subset in todo:
            write_atomic(model.hyp(subset), (model.dir / f"hyp.{subset}.txt").read_text())
    for name in model.blind():
        if name in todo:
            n = line_count(args.data / "blind" / f"{name}.en")
            write_atomic(model.hyp(name), translate(model.checkpoint, args.blind_bin / name, n))
    doc = run_document(model, digest, args.data, args.baselines, args.preset)
    write_atomic(model.run_file, json.dumps(doc, indent=1) + "\n")
    return f"{model.name}: {len(todo)} hypothesis file(s) written, {rel(model.run_file, model.root)}"


INDEX_SUBSETS = ("test", "test_mscoco", "test2016", "test2018")


def index_entry(doc: dict) -> dict:
    """A run's row of the index ``results.json``: what the report is built from."""
    latency = (doc.get("latency") or {}).get("ms")
    return {
        "name": doc["name"],
        "role": doc["role"],
        "supernet": doc.get("supernet"),
        "training": doc.get("training", "alone"),
        "constraint_ms": doc.get("constraint_ms"),
        "latency_ms": latency,
        "hyp": {s: doc["bleu"][s]["hyp"] for s in INDEX_SUBSETS if (doc["bleu"].get(s) or {}).get("hyp")},
    }


def write_index(results: Path) -> int:
    """``results.json`` rebuilt from every ``runs/*.json`` (sorted by name): nothing but what the runs say,
    so it is the same however often it is written. The number of rows."""
    results.mkdir(parents=True, exist_ok=True)
    with locked(results):  # two lanes recording at once: the last one sees every run
        rows = [index_entry(json.loads(p.read_text())) for p in sorted((results / "runs").glob("*.json"))]
        write_atomic(results / "results.json", json.dumps(rows, indent=1) + "\n")
    return len(rows)


@contextlib.contextmanager
def locked(directory: Path) -> Iterator[None]:
    """Hold the kernel's lock on a directory (another lane waits; a killed one leaves no stale lock, and
    no lock file is left among the committed files)."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def selected_models(args: argparse.Namespace) -> list[Model]:
    """The models of WORK (trained alone, then inherited), or those of ``--only`` (run names)."""

    def names(kind: str) -> list[str]:
        return sorted(d.name for d in (args.work / kind).glob("*") if d.is_dir() and not d.is_symlink())

    found = [Model(n, args.work, args.results, args.root, kind) for kind in KINDS for n in names(kind)]
    if not args.only:
        if not found:
            raise RecordError(f"no model in {args.work}/{{{','.join(KINDS)}}}")
        return found
    by_name = {m.name: m for m in found}
    return [by_name.get(n) or Model(n, args.work, args.results, args.root) for n in args.only]


def check_inputs(args: argparse.Namespace) -> None:
    for path in (
        args.work / "bin" / "spm.model",
        args.work / "bin" / "dict.en.txt",
        *(args.data / "blind" / f"{n}.en" for n in BLIND),
    ):
        if not path.is_file():
            raise RecordError(f"{path} does not exist")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--results", type=Path, required=True, help="ROOT/benchmarks/results/multi30k")
    p.add_argument("--index", action="store_true", help="only rebuild RESULTS/results.json from RESULTS/runs")
    p.add_argument("--work", type=Path, help="the runs directory (WORK/bin, WORK/standalone)")
    p.add_argument("--data", type=Path, help="the raw data (DATA/blind/test2016.en, test2018.en)")
    p.add_argument("--baselines", type=Path, help="the hand-designed baselines' directory")
    p.add_argument("--preset", help="the recipe every model was trained with")
    p.add_argument("--blind-bin", type=Path, help="where the blind sets' binaries go (default WORK/blind)")
    p.add_argument(
        "--only", nargs="*", default=[], help="these runs (NAME, inherited_SUPERNET_NAME; default: every one)"
    )
    args = p.parse_args(argv)
    if not args.index and None in (args.work, args.data, args.baselines, args.preset):
        p.error("give --work, --data, --baselines and --preset (or --index)")
    args.root = args.results.resolve().parents[2]  # ROOT/benchmarks/results/multi30k
    try:
        if not args.index:
            record_all(args)
        print(f"{rel(args.results / 'results.json', args.root)}: {write_index(args.results)} runs")
    except (RecordError, UserError, OSError) as exc:  # UserError: mos-nas's own one-line errors
        print(f"multi30k_record: {exc}", file=sys.stderr)
        return 1
    return 0


def record_all(args: argparse.Namespace) -> None:
    """Every selected model checked, then the blind binaries built once, then each model recorded."""
    check_inputs(args)
    models = selected_models(args)
    digests = [m.check() for m in models]  # every model checked before anything is written
    args.blind_bin = args.blind_bin or args.work / "blind"
    args.blind_bin.mkdir(parents=True, exist_ok=True)
    with locked(args.blind_bin):  # built once, even by two lanes at once
        blind_binaries(args.work / "bin", args.data, args.blind_bin)
    for model, digest in zip(models, digests):
        print(record(model, digest, args), flush=True)


if __name__ == "__main__":
    sys.exit(main())
