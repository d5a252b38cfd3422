"""The benchmark drivers' lanes and the Multi30k study's record stage: the claim (benchmarks/lib.sh
``claim``: two lanes walking the same list of models train each one once, and a lane that dies leaves no
claim behind), and ``benchmarks/multi30k.sh record`` (benchmarks/multi30k_record.py) refusing a model that
is not finished or a committed file of another run before it writes anything, reading a run's validation
curve and building the index from the runs; the report built from the runs alone (the hand-designed envelope,
Table 4's pairs, an index that disagrees with its runs refused)."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.helpers.benchmark_scripts import load_benchmark

LIB = Path(__file__).resolve().parent.parent / "benchmarks" / "lib.sh"
RECORD = LIB.parent / "multi30k_record.py"
REPORT = LIB.parent / "multi30k_report.py"


def _claim(model_dir: Path) -> int:
    """Exit status of a fresh shell's ``claim`` on model_dir (0: taken, 1: held by another lane)."""
    return subprocess.run(["bash", "-c", f'source "{LIB}"; claim "$1"', "_", str(model_dir)]).returncode


def _holding_lane(model_dir: Path) -> subprocess.Popen:
    """A shell that claims model_dir, says so, then trains (sleeps) while holding it."""
    lane = subprocess.Popen(
        ["bash", "-c", f'source "{LIB}"; claim "$1" || exit 3; echo claimed; exec sleep 60', "_", str(model_dir)],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    assert lane.stdout.readline().strip() == "claimed"
    return lane


def test_a_claimed_model_is_skipped_by_the_other_lane_and_free_once_that_lane_dies(tmp_path):
    model = tmp_path / "standalone" / "pick"
    lane = _holding_lane(model)
    try:
        assert model.is_dir()
        assert _claim(model) == 1  # the other lane skips it
        assert _claim(tmp_path / "standalone" / "other_pick") == 0  # and takes the next one
    finally:
        os.killpg(lane.pid, signal.SIGKILL)  # the lane is killed mid-training, no release
        lane.wait()
    assert _claim(model) == 0  # no stale claim: a restarted lane resumes the model


def test_release_hands_the_model_to_another_lane(tmp_path):
    model = tmp_path / "finetune" / "pick"
    script = f'source "{LIB}"; claim "$1"; release; echo released; exec sleep 60'
    lane = subprocess.Popen(
        ["bash", "-c", script, "_", str(model)], stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        assert lane.stdout.readline().strip() == "released"
        assert _claim(model) == 0
    finally:
        os.killpg(lane.pid, signal.SIGKILL)
        lane.wait()


def _record_module():
    return load_benchmark("multi30k_record")


def _runs_directory(tmp_path: Path) -> tuple[Path, Path, Path]:
    """(work, data, results): a runs directory with one finished model (stand-in files) and one in training."""
    work, data = tmp_path / "work", tmp_path / "data"
    results = tmp_path / "repo" / "benchmarks" / "results" / "multi30k"
    (work / "bin").mkdir(parents=True)
    (work / "bin" / "spm.model").write_bytes(b"stand-in")
    (work / "bin" / "dict.en.txt").write_text("Hund 5\n")
    (data / "blind").mkdir(parents=True)
    for name in ("test2016", "test2018"):
        (data / "blind" / f"{name}.en").write_text("A dog runs.\n")
    done = work / "standalone" / "base_3x1"
    (done / "train").mkdir(parents=True)
    for f in ("arch.yml", "commit", "checkpoint_avg.pt", "train/train.log", ".done"):
        (done / f).write_text("stand-in\n")
    for subset in ("valid", "test", "test1"):
        (done / f"bleu.{subset}.json").write_text('{"bleu": 1.0, "signature": "s", "sentences": 1}')
        (done / f"hyp.{subset}.txt").write_text("Ein Hund rennt.\n")
    training = work / "standalone" / "wide_3x1"
    (training / "train").mkdir(parents=True)
    (training / "arch.yml").write_text("stand-in\n")
    return work, data, results


def _record(work: Path, data: Path, results: Path, *only: str) -> subprocess.CompletedProcess:
    args = ["--work", str(work), "--data", str(data), "--results", str(results), "--baselines", str(work)]
    return subprocess.run(
        [sys.executable, str(RECORD), *args, "--preset", "multi30k", "--only", *only], capture_output=True, text=True
    )


def test_record_refuses_a_model_not_finished_before_writing_anything(tmp_path):
    work, data, results = _runs_directory(tmp_path)
    done = _record(work, data, results, "base_3x1", "wide_3x1")
    assert done.returncode == 1
    assert done.stderr == (
        "multi30k_record: model 'wide_3x1' is not finished (no commit, checkpoint_avg.pt, bleu.valid.json, "
        f"bleu.test.json, bleu.test1.json, hyp.test.txt, hyp.test1.txt, train/train.log, .done in {work}/standalone/"
        "wide_3x1)\n"
    )
    assert not results.exists() and not (work / "blind").exists()  # not even the finished model's files
    missing = _record(work, data, results, "no_such_model")
    assert (
        missing.returncode == 1
        and missing.stderr == f"multi30k_record: no model 'no_such_model' in {work}/standalone\n"
    )
    (data / "blind" / "test2018.en").unlink()
    no_blind = _record(work, data, results, "base_3x1")
    assert no_blind.stderr == f"multi30k_record: {data}/blind/test2018.en does not exist\n" and not results.exists()


def test_record_refuses_to_overwrite_another_run_of_the_same_name(tmp_path):
    work, data, results = _runs_directory(tmp_path)
    (results / "hyp").mkdir(parents=True)
    (results / "hyp" / "base_3x1.test.txt").write_text("Eine Katze schläft.\n")  # another machine's base_3x1
    done = _record(work, data, results, "base_3x1")
    assert done.returncode == 1
    assert done.stderr == f"multi30k_record: {results}/hyp/base_3x1.test.txt exists and is another run's hypotheses\n"
    assert sorted(p.name for p in results.rglob("*")) == ["base_3x1.test.txt", "hyp"]
    (results / "hyp" / "base_3x1.test.txt").unlink()
    (results / "runs").mkdir()
    (results / "runs" / "base_3x1.json").write_text('{"checkpoint_sha256": "0123456789abcdef"}')
    again = _record(work, data, results, "base_3x1")
    assert again.stderr == (
        f"multi30k_record: {results}/runs/base_3x1.json holds another run of that name (checkpoint 0123456789ab)\n"
    )
    assert not list((results / "hyp").iterdir()) and not (results / "results.json").exists()


def test_role_of_a_run_comes_from_its_name(tmp_path):
    record = _record_module()
    (tmp_path / "base_3x1.yml").write_text("space: x\n")
    assert record.role_of("base_3x1", tmp_path) == ("baseline", None, None)
    assert record.role_of("largest", tmp_path) == ("largest", None, None)
    assert record.role_of("neuron_best_latency_22.2ms", tmp_path) == ("pick", "neuron", 22.2)
    assert record.role_of("spos_best_latency_35ms", tmp_path) == ("pick", "spos", 35.0)
    assert record.role_of("sample_0003", tmp_path) == ("sample", None, None)
    assert record.role_of("base_3x1_bf16", tmp_path) == ("baseline", None, None)  # a baseline's bf16 twin
    assert record.role_of("sweep_deep_6x2_postnorm", tmp_path) == ("sweep", None, None)  # a recipe variant
    with pytest.raises(record.RecordError, match="cannot tell the role of 'base_9x9'"):
        record.role_of("base_9x9", tmp_path)
    with pytest.raises(record.RecordError, match="cannot tell the role of 'base_9x9_bf16'"):
        record.role_of("base_9x9_bf16", tmp_path)


def test_an_exported_subnets_role_and_supernet_come_from_its_directory(tmp_path):
    record = _record_module()
    (tmp_path / "base_3x1.yml").write_text("space: x\n")
    assert record.inherited_role("neuron_base_3x1", tmp_path) == ("baseline", "neuron", None)
    assert record.inherited_role("spos_largest", tmp_path) == ("largest", "spos", None)
    assert record.inherited_role("neuron_sample_smallest", tmp_path) == ("sample", "neuron", None)
    assert record.inherited_role("neuron_best_latency_30.1ms", tmp_path) == ("pick", "neuron", 30.1)
    with pytest.raises(record.RecordError, match="cannot tell the supernet of 'mystery_base_3x1'"):
        record.inherited_role("mystery_base_3x1", tmp_path)
    with pytest.raises(record.RecordError, match="cannot tell the role of 'neuron_base_9x9'"):
        record.inherited_role("neuron_base_9x9", tmp_path)


REAL_ARCH = Path(__file__).resolve().parent.parent / "benchmarks" / "multi30k_archs" / "base_3x1.yml"
FIXTURE_ARCHS = Path(__file__).resolve().parent / "fixtures" / "legacy" / "archs"  # tiny-space subnets


def _exported(work: Path, kind: str, name: str) -> Path:
    """WORK/KIND/NAME: an exported subnet scored as stage picks / inherited leave it (stand-in weights)."""
    d = work / kind / name
    (d / "export").mkdir(parents=True)
    (d / "arch.yml").write_text(REAL_ARCH.read_text())
    (d / "export" / "checkpoint.pt").write_bytes(b"stand-in weights of " + name.encode())
    for subset, score in (("valid", 40.0), ("test", 30.5), ("test1", 27.0)):
        (d / f"bleu.{subset}.json").write_text(json.dumps({"bleu": score, "signature": "nrefs:1", "sentences": 3}))
        (d / f"hyp.{subset}.txt").write_text("Ein Hund rennt.\n")
    (d / "valid_loss.json").write_text(json.dumps({"valid_loss": 2.75, "sentences": 3}))
    (d / ".done").write_text("")
    return d


def test_an_exported_subnet_is_recorded_as_an_inherited_run_of_its_supernet(tmp_path):
    work, data, results = _runs_directory(tmp_path)
    (work / "bin" / "dict.en.txt").write_text("".join(f"w{i} 1\n" for i in range(20)))
    row = _exported(work, "inherited", "neuron_base_3x1")
    _exported(work, "picks", "neuron_best_latency_30.1ms")
    unfinished = _record(work, data, results, "inherited_neuron_base_3x1")  # the supernet's own files are absent
    assert unfinished.returncode == 1 and unfinished.stderr == (
        f"multi30k_record: model 'inherited_neuron_base_3x1' is not finished (no neuron/commit, neuron/train.log in "
        f"{row})\n"
    )
    assert not results.exists()
    sup = work / "supernets" / "neuron"
    sup.mkdir(parents=True)
    (sup / "commit").write_text("")  # a git that failed when the supernet started
    (sup / "train.log").write_text("")
    empty = _record(work, data, results, "inherited_neuron_base_3x1")
    assert (
        empty.stderr
        == (
            f"multi30k_record: {sup}/commit is empty: the commit of the code that trained 'inherited_neuron_base_3x1' "
            "is unknown\n"
        )
        and not results.exists()
    )
    (sup / "commit").write_text("abc1234\n")
    (sup / "lscpu.txt").write_text("Architecture: x86_64\nModel name: Toy CPU\nFlags: fpu avx512_bf16\n")
    (sup / "train.log").write_text(
        "[2026] {'common': {'bf16': True, 'fp16': False}}\n"
        "epoch 001: | loss 9 | num_updates 136 | train_wall 400\n"
        "2026 | INFO | train | epoch 001 | loss 9.1 | num_updates=136, train_wall=400\n"
    )
    record = _record_module()
    args = type("A", (), {"work": work, "results": results, "root": tmp_path / "repo", "only": []})()
    models = {m.name: m for m in record.selected_models(args)}
    assert set(models) == {"base_3x1", "wide_3x1", "inherited_neuron_base_3x1", "inherited_neuron_best_latency_30.1ms"}
    table4, picked = models["inherited_neuron_base_3x1"], models["inherited_neuron_best_latency_30.1ms"]
    assert table4.blind() == () and picked.blind() == ("test2016", "test2018")  # only a pick is a model to ship
    doc = record.run_document(table4, table4.check(), data, REAL_ARCH.parent, "multi30k")
    assert (doc["name"], doc["role"], doc["supernet"], doc["training"]) == (
        "inherited_neuron_base_3x1",
        "baseline",
        "neuron",
        "inherited",
    )
    assert doc["commit"] == "abc1234" and doc["machine"]["cpu_model"] == "Toy CPU"
    assert doc["dtype"]["training"] == "bf16" and doc["valid_nll"]["inherited_weights"] == 2.75
    assert doc["recipe"]["supernet"]["supernet_run"] == "neuron@abc1234, Toy CPU"
    assert doc["bleu"]["test"]["bleu"] == 30.5 and "test2016" not in doc["bleu"]
    assert doc["architecture"]["decoder"]["layers"] == 1 and doc["params"] > 0
    assert record.run_document(picked, picked.check(), data, tmp_path, "multi30k")["constraint_ms"] == 30.1


def test_checkpoint_facts_read_dtype_ranks_and_the_recipe_as_trained(tmp_path):
    import torch

    record = _record_module()
    cfg = {
        "common": {"bf16": True},
        "distributed_training": {"distributed_world_size": 2},
        "optimization": {"lr": [0.002]},
        "dataset": {"max_tokens": 2048},
    }
    history = {
        "optimizer_history": [
            {"criterion_name": "x", "optimizer_name": "Adam", "num_updates": 1, "lr_scheduler_state": {"best": 1.0}}
        ],
        "extra_state": {},
    }
    torch.save({"cfg": cfg, "model": {}, **history}, tmp_path / "checkpoint_avg.pt")
    options, ranks = record.checkpoint_facts(tmp_path / "checkpoint_avg.pt", {"lr": 1e-3, "max-tokens": 4096})
    off = {"encoder-normalize-before": False, "decoder-normalize-before": False}  # stock post-LN unless the run says
    assert (options, ranks) == ({"lr": 0.002, "max-tokens": 2048, **off}, 2)
    cfg["model"] = {"encoder_normalize_before": True, "decoder_normalize_before": True}  # a pre-LN sweep variant
    torch.save({"cfg": cfg, "model": {}, **history}, tmp_path / "checkpoint_avg.pt")
    options, _ = record.checkpoint_facts(tmp_path / "checkpoint_avg.pt", {"lr": 1e-3})
    assert options == {"lr": 0.002, "encoder-normalize-before": True, "decoder-normalize-before": True}
    cfg["distributed_training"] = {"distributed_world_size": 1}
    torch.save({"cfg": cfg, "model": {}, **history}, tmp_path / "checkpoint_avg.pt")
    assert record.checkpoint_facts(tmp_path / "checkpoint_avg.pt", {})[1] == 1


def test_training_dtype_is_read_from_the_configuration_each_start_logs(tmp_path):
    training_dtype = _record_module().training_dtype  # benchmarks/fairseq_logs.py's, as the recorder uses it

    def start(bf16: bool) -> str:
        return f"2026-12-07 01:09:26 | INFO | fairseq_cli.train | {{'common': {{'fp16': False, 'bf16': {bf16}}}}}\n"

    log = tmp_path / "train.log"
    log.write_text(start(True) + "2026-12-07 | INFO | train_inner | epoch 001: loss=9.1\n")
    assert training_dtype(log) == "bf16"
    log.write_text(start(False))
    assert training_dtype(log) == "fp32"
    log.write_text(start(True) + start(False))  # resumed without --bf16
    assert training_dtype(log) == "bf16+fp32"
    assert training_dtype(tmp_path / "missing.log") == "fp32"


def test_validation_curve_of_a_resumed_run_keeps_each_epochs_last_line(tmp_path):
    record = _record_module()
    line = (
        "2026-12-04 20:00:00 | INFO | valid | epoch {:03d} | valid on 'valid' subset | loss {} | nll_loss {} | "
        "ppl 10 | wps 100 | wpb 50 | bsz 20 | num_updates {} | best_loss {}"
    )
    log = tmp_path / "train.log"
    log.write_text(
        "\n".join(
            [
                line.format(1, 7.0, 6.5, 136, 7.0),
                line.format(2, 6.0, 5.5, 272, 6.0),
                "2026-12-04 20:10:00 | INFO | fairseq_cli.train | loaded checkpoint checkpoint_last.pt (epoch 2)",
                line.format(2, 5.9, 5.4, 272, 5.9),  # the same epoch validated again after a resume
                line.format(3, 6.1, 5.6, 408, 5.9),
            ]
        )
        + "\n"
    )
    curve = record.valid_nll(log)
    assert [(e["epoch"], e["nll_loss"], e["num_updates"]) for e in curve["per_epoch"]] == [
        (1, 6.5, 136),
        (2, 5.4, 272),
        (3, 5.6, 408),
    ]
    assert curve["best"] == {"epoch": 2, "nll_loss": 5.4} and curve["final"] == {"epoch": 3, "nll_loss": 5.6}
    assert record.valid_nll(tmp_path / "absent.log")["best"] is None


def test_the_index_is_rebuilt_from_the_runs_alone(tmp_path):
    record = _record_module()
    runs = tmp_path / "runs"
    runs.mkdir()
    hyp = {s: {"hyp": f"benchmarks/results/multi30k/hyp/p.{s}.txt"} for s in ("test", "test_mscoco", "test2016")}
    pick = {
        "name": "p",
        "role": "pick",
        "supernet": "neuron",
        "training": "alone",
        "constraint_ms": 22.2,
        "latency": {"ms": 31.5},
        "bleu": {**hyp, "valid": {"hyp": None}, "test2018": {"hyp": None}},
    }
    base = {
        "name": "b",
        "role": "baseline",
        "supernet": None,
        "constraint_ms": None,
        "latency": {"ms": None},
        "bleu": {"test": {"hyp": "h/b.test.txt"}},
    }
    (runs / "p.json").write_text(json.dumps(pick))
    (runs / "b.json").write_text(json.dumps(base))
    assert record.write_index(tmp_path) == 2
    first = (tmp_path / "results.json").read_text()
    assert json.loads(first) == [
        {
            "name": "b",
            "role": "baseline",
            "supernet": None,
            "training": "alone",
            "constraint_ms": None,
            "latency_ms": None,
            "hyp": {"test": "h/b.test.txt"},
        },
        {
            "name": "p",
            "role": "pick",
            "supernet": "neuron",
            "training": "alone",
            "constraint_ms": 22.2,
            "latency_ms": 31.5,
            "hyp": {s: v["hyp"] for s, v in hyp.items()},
        },
    ]
    record.write_index(tmp_path)
    assert (tmp_path / "results.json").read_text() == first


def _run(name: str, role: str, training: str, test_bleu: float, ms: float | None = None, **extra) -> dict:
    arch = extra.pop("arch", {"encoder": {"embed_dim": 256}, "decoder": {"layers": 1}, "name": name})
    latency = {
        "ms": ms,
        "window": "toy CPU, 2026-12-04, 10 rounds" if ms else None,
        "measured_at": "2026-12-04",
        "protocol": "toy",
    }
    return {
        "name": name,
        "role": role,
        "training": training,
        "supernet": extra.pop("supernet", None),
        "architecture": arch,
        "bleu": {"test": {"bleu": test_bleu}},
        "latency": latency,
        "valid_nll": {"per_epoch": [], "averaged_checkpoint": extra.pop("nll", None)},
        **extra,
    }


def test_the_envelope_is_the_best_baseline_at_or_below_a_latency():
    report = load_benchmark("multi30k_report")
    base = [
        _run("b1", "baseline", "alone", 29.0, 30.0),
        _run("b2", "baseline", "alone", 31.0, 50.0),
        _run("b3", "baseline", "alone", 30.5, 60.0),
    ]
    assert report.envelope(base, 25.0) is None  # faster than every baseline: no envelope
    assert report.envelope(base, 30.0)["name"] == "b1"
    assert report.envelope(base, 55.0)["name"] == "b2"
    assert report.envelope(base, 65.0)["name"] == "b2"  # the slower b3 is worse: the envelope stays
    pick = _run("p", "pick", "alone", 30.0, 55.0, supernet="neuron")
    untimed = _run("u", "pick", "alone", 35.0, supernet="neuron")
    text = "\n".join(report.section_latency([*base, pick, untimed], "f.png"))
    assert "| p | alone (neuron) | 55.00 | 30.00 | 31.00 (b2) | -1.00 |" in text and "| u |" not in text
    variant = _run("sweep_b2", "sweep", "alone", 31.6, 52.0)  # a hand design with a recipe variant counts too
    text = "\n".join(report.section_latency([*base, variant, pick], "f.png"))
    assert "| p | alone (neuron) | 55.00 | 30.00 | 31.60 (sweep_b2) | -1.60 |" in text
    assert "| sweep_b2 | alone | 52.00 | 31.60 | (hand-designed) | – |" in text


def test_table4_pairs_gap_rows_first_then_inherited_picks_with_a_retrained_twin():
    report = load_benchmark("multi30k_report")
    sup = {"recipe": {"supernet": {"supernet_run": "neuron@abc"}}, "supernet": "neuron"}
    arch = {n: {"encoder": {"embed_dim": d}, "decoder": {"layers": 1}} for n, d in (("a", 1), ("b", 2), ("c", 3))}
    runs = [
        _run("alone_a", "baseline", "alone", 30.0, arch=arch["a"]),
        _run("alone_c", "pick", "alone", 28.0, arch=arch["c"]),
        _run(
            "gap_a",
            "baseline",
            "inherited",
            29.0,
            arch=arch["a"],
            nll=2.5,
            **sup,
            table4={"standalone": "alone_a", "standalone_bleu": 30.2, "standalone_valid_nll": 2.4},
        ),
        _run(
            "gap_b",
            "baseline",
            "inherited",
            25.0,
            arch=arch["b"],
            nll=2.9,
            **sup,
            table4={"standalone": "alone_b", "standalone_bleu": 27.0, "standalone_valid_nll": 2.6},
        ),
        _run("inherited_a", "pick", "inherited", 99.0, arch=arch["a"], **sup),  # a has a gap row: not used
        _run("inherited_c", "pick", "inherited", 27.5, arch=arch["c"], **sup),
    ]
    rows = report.table4_pairs(runs)["neuron@abc"]
    assert [(r["arch"], r["alone"], r["inherited"], r["tool"]) for r in rows] == [
        ("alone_a", 30.2, 29.0, "gap"),
        ("alone_b", 27.0, 25.0, "gap"),
        ("alone_c", 28.0, 27.5, "bleu"),
    ]
    mae, tau = report.agreement([(r["alone"], r["inherited"]) for r in rows])
    assert mae == pytest.approx((1.2 + 2.0 + 0.5) / 3) and tau == pytest.approx(1.0)
    text = "\n".join(report.section_table4(runs))
    assert "| neuron@abc | 1.23 | 1.000 | 0.200 | 1.000 | 3 / 2 | 1.13 / 0.71 |" in text


def test_an_inherited_table4_row_pairs_with_its_twin_trained_alone_in_another_spaces_file():
    report = load_benchmark("multi30k_report")
    sup = {"recipe": {"supernet": {"supernet_run": "neuron@abc"}}, "supernet": "neuron"}
    narrow = {"space": "hat_cpu_multi30k", "encoder": {"layers": 3}, "decoder": {"layers": 1}}
    wide = {**narrow, "space": "multi30k_wide"}
    inherited = _run("inherited_neuron_base_3x1", "baseline", "inherited", 28.0, arch=wide, **sup)
    inherited["valid_nll"]["inherited_weights"] = 2.7
    runs = [_run("base_3x1", "baseline", "alone", 29.3, arch=narrow), inherited]
    rows = report.table4_pairs(runs)["neuron@abc"]
    assert [(r["arch"], r["alone"], r["inherited"], r["inherited_nll"]) for r in rows] == [
        ("base_3x1", 29.3, 28.0, 2.7)
    ]
    other = {**wide, "decoder": {"layers": 2}}
    assert report.table4_pairs([_run("base_3x2", "baseline", "alone", 30.0, arch=other), inherited]) == {}


def test_report_refuses_an_index_that_disagrees_with_its_runs_and_writes_nothing(tmp_path):
    results, out = tmp_path / "results", tmp_path / "report.md"
    (results / "runs").mkdir(parents=True)
    run = {**_run("b1", "baseline", "alone", 29.0, 30.0), "constraint_ms": None}
    (results / "runs" / "b1.json").write_text(json.dumps(run))
    row = {"name": "b1", "role": "baseline", "supernet": None, "constraint_ms": None, "latency_ms": 31.0, "hyp": {}}
    (results / "results.json").write_text(json.dumps([row]))
    done = subprocess.run(
        [sys.executable, str(REPORT), "--results", str(results), "--out", str(out)], capture_output=True, text=True
    )
    assert done.returncode == 1
    assert (
        done.stderr == f"multi30k_report: {results}/results.json: row b1 disagrees with its run (rebuild the index)\n"
    )
    assert not out.exists() and not list(results.glob("*.png"))
    (results / "results.json").write_text(json.dumps([]))
    lacking = subprocess.run(
        [sys.executable, str(REPORT), "--results", str(results), "--out", str(out)], capture_output=True, text=True
    )
    assert lacking.stderr == f"multi30k_report: {results}/results.json lacks runs b1\n" and not out.exists()


def test_status_lists_a_bf16_twin_apart_from_the_r_units():
    report = load_benchmark("multi30k_report")
    machine = {"cpu_model": "toy CPU"}
    runs = [
        _run("base_3x1", "baseline", "alone", 29.0, commit="abc1234", machine=machine),
        _run("base_3x3_bf16", "baseline", "alone", 31.5, commit="def5678", machine=machine),
    ]
    text = "\n".join(report.section_status(runs))
    assert "- **R: done** (`abc1234`, toy CPU): base_3x1." in text
    assert "def5678" not in text and "base_3x3," in text.split("R: to do:")[1]
    assert (
        "- bf16 twins (a precision comparison, not R; benchmarks/results/cpu_bf16_quality.md): base_3x3_bf16." in text
    )


def test_a_recipe_variant_is_recorded_as_a_sweep_run_and_reported_beside_its_baseline(tmp_path):
    record = _record_module()
    work, data, results = _runs_directory(tmp_path)
    variant = work / "sweep" / "deep_6x2_postnorm"
    variant.mkdir(parents=True)
    args = type("A", (), {"work": work, "results": results, "root": tmp_path / "repo", "only": []})()
    models = {m.name: m for m in record.selected_models(args)}
    assert set(models) == {"base_3x1", "wide_3x1", "sweep_deep_6x2_postnorm"}
    sweep = models["sweep_deep_6x2_postnorm"]
    assert sweep.dir == variant and sweep.blind() == ("test2016", "test2018")  # trained alone: a model to ship
    with pytest.raises(record.RecordError, match="model 'sweep_deep_6x2_postnorm' is not finished"):
        sweep.check()
    report = load_benchmark("multi30k_report")
    arch = yaml.safe_load((REAL_ARCH.parent / "deep_6x2.yml").read_text())
    recipe = yaml.safe_load((LIB.parent.parent / "configs" / "retrain" / "multi30k.yml").read_text())
    assert recipe["encoder-normalize-before"] is True  # the recipe as it stands: pre-norm
    post = {k: v for k, v in recipe.items() if not k.endswith("normalize-before")}  # run files of older code lack them
    off = ("encoder-normalize-before", "decoder-normalize-before")
    where = {"commit": "abc1234", "machine": {"cpu_model": "toy CPU"}}
    curve = [{"epoch": e, "nll_loss": 6.0 - e / 10} for e in range(1, 21)]
    runs = [
        _run(
            "deep_6x2", "baseline", "alone", 30.0, arch=arch, recipe={"preset": "multi30k", "options": recipe}, **where
        ),
        _run(
            "sweep_deep_6x2_postnorm",
            "sweep",
            "alone",
            11.0,
            arch=arch,
            recipe={"preset": "multi30k", "options": post},
            **where,
        ),
        _run(
            "sweep_deep_6x2_postnorm_lr1e-3",
            "sweep",
            "alone",
            25.0,
            arch=arch,
            recipe={"preset": "multi30k", "options": {**recipe, **dict.fromkeys(off, False), "lr": 1e-3}},
            **where,
        ),
    ]
    for r in runs:
        r["valid_nll"].update(per_epoch=curve, final={"epoch": 20, "nll_loss": 4.0})
    text = "\n".join(report.section_sweep(runs))
    assert "| deep_6x2 | " in text and "| the recipe | 5.800 | 5.500 | 5.000 | 4.000 (ep 20) | 30.00 |" in text
    assert "| no encoder-normalize-before, no decoder-normalize-before | 5.800 |" in text
    assert "| no encoder-normalize-before, no decoder-normalize-before, lr 0.001 | " in text
    status = "\n".join(report.section_status(runs))
    assert "sweep_deep_6x2_postnorm, sweep_deep_6x2_postnorm_lr1e-3." in status.split("Recipe sweep")[1]
    assert "R: done" in status and "sweep_" not in status.split("R: done")[1].split("\n")[0]
    assert report.table4_pairs(runs) == {}  # a sweep is no architecture's trained-alone twin


def test_each_recipe_variant_names_a_baseline_and_a_unit_refuses_an_unknown_one():
    driver = LIB.parent / "multi30k.sh"
    table = subprocess.run(
        ["bash", "-c", f'source <(sed -n "/^sweep_table()/,/^}}/p" "{driver}"); sweep_table'],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    assert len(table) >= 7 and "sweep_deep_6x2_postnorm deep_6x2 --no-encoder-normalize-before" in "\n".join(table)
    for line in table:
        name, base, *options = line.split()
        assert name.startswith("sweep_") and (LIB.parent / "multi30k_archs" / f"{base}.yml").is_file()
        assert options and all(o.startswith("--") or o[0].isdigit() for o in options)
    unit = LIB.parent / "multi30k_unit.sh"
    refused = subprocess.run(
        [str(unit), "SWEEP", "sweep_base_3x3_postnorm", "sweep_nope"], capture_output=True, text=True
    )
    assert refused.returncode == 2 and refused.stderr == (
        f"unit SWEEP: 'sweep_nope' is no recipe variant of {driver}'s sweep_table\n"
    )


def test_unit_l_times_each_distinct_model_once_and_fills_every_run(tmp_path, synthetic_bin):
    """benchmarks/multi30k_latency.py: runs of one architecture share one model and its figure, the first
    study's runs stay as they were, a pick's constraint is restated as its baseline's latency here."""
    results = tmp_path / "repo" / "benchmarks" / "results" / "multi30k"
    (results / "runs").mkdir(parents=True)
    (results / "search" / "neuron").mkdir(parents=True)
    (results / "search" / "neuron" / "constraints_ms.txt").write_text("20.0 30.0 40.0\n")
    small = yaml.safe_load((FIXTURE_ARCHS / "largest.yml").read_text())
    other = {
        **small,
        "decoder": {
            **small["decoder"],
            "layers": 1,
            **{k: v[:1] for k, v in small["decoder"].items() if isinstance(v, list)},
        },
    }
    runs = {
        "base_3x2": {"role": "baseline", "architecture": small},
        "base_3x2_bf16": {"role": "baseline", "architecture": small},
        "neuron_best_latency_30ms": {
            "role": "pick",
            "supernet": "neuron",
            "constraint_ms": 30.0,
            "architecture": other,
        },
        "study1_base_3x1": {"role": "baseline", "architecture": small, "study": 1, "latency": {"ms": 35.0}},
    }
    for name, run in runs.items():
        doc = {
            "name": name,
            "supernet": None,
            "constraint_ms": None,
            "training": "alone",
            "bleu": {},
            "latency": {"ms": None},
            **run,
        }
        (results / "runs" / f"{name}.json").write_text(json.dumps(doc))
    work = tmp_path / "work"
    work.mkdir()
    (work / "bin").symlink_to(synthetic_bin)
    script = LIB.parent / "multi30k_latency.py"
    done = subprocess.run(
        [
            sys.executable,
            str(script),
            "--results",
            str(results),
            "--work",
            str(work),
            "--rounds",
            "2",
            "--repeats",
            "1",
        ],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "3 runs timed as 2 models; index: 4 runs" in done.stdout
    got = {n: json.loads((results / "runs" / f"{n}.json").read_text()) for n in runs}
    assert got["base_3x2"]["latency"]["ms"] == got["base_3x2_bf16"]["latency"]["ms"] > 0
    assert (
        len(got["base_3x2"]["latency"]["rounds_ms"]) == 2
        and "2 models, 2 rounds" in got["base_3x2"]["latency"]["window"]
    )
    assert got["neuron_best_latency_30ms"]["constraint_restated"] == {
        "ms": got["base_3x2"]["latency"]["ms"],
        "from": "base_3x2's latency in this window",
    }
    assert got["study1_base_3x1"]["latency"] == {"ms": 35.0}  # the first study's runs are kept as they were
    index = {row["name"]: row for row in json.loads((results / "results.json").read_text())}
    assert index["base_3x2"]["latency_ms"] == got["base_3x2"]["latency"]["ms"]
    empty = subprocess.run(
        [sys.executable, str(script), "--results", str(tmp_path / "none"), "--work", str(work)],
        capture_output=True,
        text=True,
    )
    assert empty.returncode == 1 and empty.stderr == f"multi30k_latency: no run of this study in {tmp_path}/none/runs\n"
