"""The BERT study's record steps and report (benchmarks/bert_glue_record.py, benchmarks/bert_glue_report.py):
a supernet's perplexity curve and dtype read from its fairseq log, a pick read from the search's summary,
fine-tuning runs recorded with their blind labels copied and indexed, and the report's table of starts
(means and spreads over seeds, the export's margins) built from the run files alone; a malformed run is
refused in one line with nothing written."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.benchmark_scripts import load_benchmark

BENCH = Path(__file__).resolve().parent.parent / "benchmarks"
RECORD, REPORT = BENCH / "bert_glue_record.py", BENCH / "bert_glue_report.py"

SUPERNET_LOG = """[{'common': {'bf16': True, 'cpu': True}}]
2026-12-06 20:50:38 | INFO | train_inner | epoch 001:  400 / 447 loss=9.364, ups=1.77, num_updates=400, train_wall=200, wall=234
2026-12-06 20:51:00 | INFO | valid | epoch 001 | valid on 'valid' subset | loss_largest 9 | loss_smallest 10 | num_updates 447
2026-12-06 20:52:38 | INFO | train_inner | epoch 002:  50 / 447 loss=9.0, ups=1.77, num_updates=500, train_wall=50, wall=300
2026-12-06 20:53:00 | INFO | valid | epoch 002 | valid on 'valid' subset | loss_largest 8 | loss_smallest 9 | num_updates 500
"""


def _record(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(RECORD), *args], capture_output=True, text=True)


def _finetune_dir(root: Path, name: str, acc: float, mcc: float) -> Path:
    d = root / name
    d.mkdir(parents=True)
    (d / "train.log").write_text("epoch 001: num_updates=100, train_wall=30\n")
    (d / "dev.json").write_text(json.dumps({"accuracy": acc, "mcc": mcc, "n": 200}))
    (d / "blind.txt").write_text("1\n0\n")
    (d / "dev_unseen.json").write_text(json.dumps({"accuracy": acc - 5, "mcc": mcc, "n": 50}))
    return d


def _study(tmp_path: Path) -> tuple[Path, Path]:
    """(runs, pred): one supernet, one pick, SST-2 from the export and from random weights, 2 seeds each."""
    runs, pred, work = tmp_path / "runs", tmp_path / "pred", tmp_path / "work"
    sup = work / "supernets" / "neuron"
    sup.mkdir(parents=True)
    (sup / "train.log").write_text(SUPERNET_LOG)
    common = ["--work", str(work), "--out", str(runs)]
    assert _record("supernet", "--name", "neuron", "--dir", str(sup), "--text", "task", "--lr", "3e-3",
                   "--updates", "500", *common).returncode == 0  # fmt: skip
    search = work / "search" / "neuron"
    search.mkdir(parents=True)
    entry = {"kind": "params", "constraint": 1800000, "arch": "best_params_1.8M.yml", "hat_arch": None,
             "params": 1727168, "predicted_latency_ms": 3.1, "valid_loss": 8.5, "found_at_iteration": 4,
             "architecture": "4 x 128"}  # fmt: skip
    (search / "summary.json").write_text(json.dumps([entry]))
    (search / "best_params_1.8M.yml").write_text(
        "{space: bert_cpu_homogeneous, layers: 4, hidden: 128, heads: 4, ffn_ratio: 3}\n"
    )
    rows = [(630233, 8.5), (1144889, 8.4), (1727168, 8.3)]  # larger subnets score better: tau -1
    (search / "candidates.csv").write_text("arch,params,valid_loss\n" + "".join(f"a,{p},{v}\n" for p, v in rows))
    done = _record("pick", "--name", "neuron_params_1.8M", "--supernet", "neuron", "--search", str(search),
                   "--arch-file", str(search / "best_params_1.8M.yml"), *common)  # fmt: skip
    assert done.returncode == 0, done.stderr
    export = work / "export.json"
    export.write_text(json.dumps({"arch": {"layers": 4, "hidden": 128, "heads": 4, "ffn_ratio": 3}, "params": 1727168}))
    for start, accs in (("export", (90.0, 88.0)), ("random", (86.0, 87.0))):
        for seed, acc in enumerate(accs, 1):
            d = _finetune_dir(work / "ft", f"{start}.{seed}", acc, 0.1)
            done = _record("finetune", "--name", f"{start}_neuron_params_1.8M", "--start", start, "--task", "SST-2",
                           "--seed", str(seed), "--dir", str(d), "--arch", str(export), "--pred-dir", str(pred),
                           *common)  # fmt: skip
            assert done.returncode == 0, done.stderr
    assert _record("index", "--pred-dir", str(pred), *common).returncode == 0
    return runs, pred


def test_records_read_the_logs_and_copy_the_blind_labels(tmp_path):
    runs, pred = _study(tmp_path)
    supernet = json.loads((runs / "supernet_neuron.json").read_text())
    assert supernet["pretraining"]["dtype"] == "bf16"
    assert supernet["pretraining"]["valid"] == [
        {"updates": 447, "ppl_largest": 512.0, "ppl_smallest": 1024.0},
        {"updates": 500, "ppl_largest": 256.0, "ppl_smallest": 512.0},
    ]
    pick = json.loads((runs / "pick_neuron_params_1.8M.json").read_text())
    assert (pick["kind"], pick["constraint_kind"], pick["params"]) == ("pick", "params", 1727168)
    assert pick["arch_spec"] == {
        "space": "bert_cpu_homogeneous",
        "layers": 4,
        "hidden": 128,
        "heads": 4,
        "ffn_ratio": 3,
    }
    assert pick["search"] == {"candidates": 3, "loss_min": 8.3, "loss_max": 8.5, "tau_params_loss": -1.0}
    index = json.loads((pred / "index.json").read_text())
    assert len(index) == 4 and {r["start"] for r in index} == {"export", "random"}
    assert (pred / "export_neuron_params_1.8M.seed2.SST-2.txt").read_text() == "1\n0\n"
    missing = _record("pick", "--name", "x", "--supernet", "neuron", "--search", str(tmp_path / "work/search/neuron"),
                      "--arch-file", "best_latency_3ms.yml", "--work", str(tmp_path), "--out", str(runs))  # fmt: skip
    assert missing.returncode == 1 and "has no pick best_latency_3ms.yml" in missing.stderr
    assert not (runs / "pick_x.json").exists()


def _report(runs: Path, pred: Path, out: Path) -> subprocess.CompletedProcess:
    cmd = [sys.executable, str(REPORT), "--runs", str(runs), "--index", str(pred / "index.json"),
           "--notes", str(out.parent / "none.md"), "--tasks", "SST-2", "SST-2 unseen", "--seeds", "2", "--out", str(out)]  # fmt: skip
    return subprocess.run(cmd, capture_output=True, text=True)


def test_report_tables_the_starts_with_their_margins(tmp_path):
    runs, pred = _study(tmp_path)
    out = tmp_path / "bert.md"
    done = _report(runs, pred, out)
    assert done.returncode == 0, done.stderr
    text = out.read_text()
    row = next(line for line in text.splitlines() if line.startswith("| `neuron_params_1.8M` | 89.00"))
    assert row.split(" | ")[1:3] == ["89.00 ± 1.41 (2)", "86.50 ± 0.71 (2)"]
    assert row.split(" | ")[4:6] == ["84.00 ± 1.41 (2)", "81.50 ± 0.71 (2)"]  # the unseen rows
    assert "SST-2 vs random weights +2.500 (target met)" in text
    assert "`neuron_params_1.8M`: exported subnet done, random weights done, pretrained alone 0 of 2." in text
    assert (
        "neuron-wise MoS: 3 candidates, validation loss 8.300-8.500 bits, Kendall tau(params, loss) -1.00 (negative: larger is better)."
        in text
    )
    assert "| 500 | 256.0 / 512.0 |" in text and "4 fine-tuned models labelled" in text
    assert (runs.parent / "perplexity.png").is_file()


def test_report_refuses_a_malformed_run_and_writes_nothing(tmp_path):
    runs, pred = _study(tmp_path)
    (runs / "finetune_bad.json").write_text(json.dumps({"kind": "finetune", "name": "export_p"}))
    out = tmp_path / "bert.md"
    done = _report(runs, pred, out)
    assert done.returncode == 1 and done.stderr.count("\n") == 1 and "a malformed run" in done.stderr
    assert not out.exists()


def test_updates_in_reads_the_speed_after_the_start_up_interval(tmp_path):
    sys.path.insert(0, str(BENCH))
    try:
        from fairseq_logs import updates_in
    finally:
        sys.path.remove(str(BENCH))
    log = tmp_path / "probe.log"
    log.write_text(
        "".join(f"| train_inner | ups={u}, num_updates={20 * i}\n" for i, u in enumerate((0.5, 2, 2.5, 1.5), 1))
    )
    assert updates_in(log, 0.5) == 3600  # median 2 updates/s of the intervals after the first
    log.write_text("| train_inner | ups=0.5, num_updates=20\n")
    with pytest.raises(ValueError, match="no training interval after the first"):
        updates_in(log, 1.0)


def test_unseen_dev_rows_are_those_inside_no_training_line(tmp_path):
    train, dev, out = tmp_path / "train.tsv", tmp_path / "dev.tsv", tmp_path / "unseen.tsv"
    train.write_text("sentence\tlabel\na charming and often affecting journey \t1\nbleak\t0\n")
    dev.write_text("sentence\tlabel\noften affecting\t1\na new sentence\t0\nbleak and desperate\t0\n")
    cmd = [sys.executable, str(BENCH / "glue_unseen.py"), "--train", str(train), "--dev", str(dev), "--header"]
    done = subprocess.run([*cmd, "--out", str(out)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert out.read_text() == "sentence\tlabel\na new sentence\t0\nbleak and desperate\t0\n"
    dev.write_text("sentence\tlabel\noften affecting\t1\n")
    done = subprocess.run([*cmd, "--out", str(tmp_path / "none.tsv")], capture_output=True, text=True)
    assert done.returncode == 1 and "every dev sentence" in done.stderr and not (tmp_path / "none.tsv").exists()


def test_a_pretraining_that_went_backwards_is_flagged():
    report = load_benchmark("bert_glue_report")
    valid = [{"updates": 447, "ppl": 1570.5}, {"updates": 3576, "ppl": 1265.9}, {"updates": 9900, "ppl": 2367.3}]
    assert report.divergence(valid, 2367.3) == " (**diverged**: best 1265.9 at 3,576 updates)"
    assert report.divergence(valid[:2], 1265.9) == ""
    assert report.divergence([], None) == ""


def test_a_sweep_row_shows_the_perplexity_at_its_export_and_the_unseen_rows():
    report = load_benchmark("bert_glue_report")
    curve = [
        {"updates": 450, "ppl_largest": 3000.4, "ppl_smallest": 2000.6},
        {"updates": 900, "ppl_largest": 1500.2, "ppl_smallest": 1400.0},
    ]
    point = {
        "name": "task_lr3e-3_u900",
        "text": "task",
        "lr": 0.003,
        "extra": "--sample-break-mode eos",
        "pretraining": {"valid": curve},
        "pretraining_budget_updates": 2700,
        "exported_at_updates": 900,
        "finetune": {"task": "SST-2", "lr": 0.001, "dev_accuracy": 86.1234, "dev_unseen_accuracy": 84.5},
        "commit": "abc1234def",
        "machine": {"cpu_model": "AMD EPYC"},
    }
    random = {**point, "name": "random", "text": None, "lr": None, "extra": "", "pretraining": None}
    random.update(pretraining_budget_updates=None, exported_at_updates=None)
    rows = report.section_sweep([point, random])
    assert (
        "| task_lr3e-3_u900 | task | 0.003 | --sample-break-mode eos | 2700 | 900 | 1500 / 1400 | SST-2 | 0.001 "
        "| 86.123 | 84.50 | `abc1234`, AMD EPYC |" in rows
    )
    assert "| random | – | – | – | – | – | – | SST-2 | 0.001 | 86.123 | 84.50 | `abc1234`, AMD EPYC |" in rows
    assert report.ppl_at({"valid": curve}, 600) == "3000 / 2001"


def test_a_start_pretrained_alone_at_another_rate_is_a_column_of_its_own(tmp_path):
    runs, pred = _study(tmp_path)
    work = tmp_path / "work"
    for seed, acc in ((1, 87.0), (2, 88.0)):
        d = _finetune_dir(work / "ft", f"alone_lr.{seed}", acc, 0.1)
        done = _record("finetune", "--name", "alone_neuron_params_1.8M_lr1e-3", "--start", "alone", "--pick",
                       "neuron_params_1.8M", "--variant", "lr 1e-3", "--task", "SST-2", "--seed", str(seed), "--dir",
                       str(d), "--arch", str(work / "export.json"), "--pred-dir", str(pred), "--work", str(work),
                       "--out", str(runs))  # fmt: skip
        assert done.returncode == 0, done.stderr
    assert _record("index", "--pred-dir", str(pred), "--work", str(work), "--out", str(runs)).returncode == 0
    index = json.loads((pred / "index.json").read_text())
    assert {r["start"] for r in index} == {"export", "random", "alone"} and len(index) == 6
    out = tmp_path / "bert.md"
    assert _report(runs, pred, out).returncode == 0
    text = out.read_text()
    assert "SST-2 accuracy (%), pretrained alone | SST-2 accuracy (%), pretrained alone, lr 1e-3 |" in text
    row = next(line for line in text.splitlines() if line.startswith("| `neuron_params_1.8M` | 89.00"))
    assert row.split(" | ")[1:5] == ["89.00 ± 1.41 (2)", "86.50 ± 0.71 (2)", "–", "87.50 ± 0.71 (2)"]
    assert "SST-2 vs pretrained alone, lr 1e-3 +1.500" in text
    assert "pretrained alone 0 of 2." in text  # the study's own start is still to do


def test_the_clean_split_drops_the_held_out_sentences_phrases_from_training(tmp_path):
    train, dev = tmp_path / "train.tsv", tmp_path / "dev.tsv"
    out, train_out = tmp_path / "dev_clean.tsv", tmp_path / "train_clean.tsv"
    rows = ["a charming journey \t1", "bleak\t0", "desperate\t0", "bleak and\t0", "bleakness\t0", "new\t1"]
    train.write_text("sentence\tlabel\n" + "\n".join(rows) + "\n")
    dev.write_text("sentence\tlabel\ncharming\t1\nbleak and desperate\t0\n")
    cmd = [sys.executable, str(BENCH / "glue_unseen.py"), "--train", str(train), "--dev", str(dev), "--header"]
    done = subprocess.run([*cmd, "--out", str(out), "--train-out", str(train_out)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert out.read_text() == "sentence\tlabel\nbleak and desperate\t0\n"  # "charming" lies inside a training row
    # the held-out sentence's phrases go (on word boundaries: "bleakness" stays), "charming"'s row stays
    assert train_out.read_text() == "sentence\tlabel\na charming journey \t1\nbleakness\t0\nnew\t1\n"


def test_clean_split_runs_are_named_apart_and_tabled_on_their_own(tmp_path):
    runs, pred = _study(tmp_path)
    work = tmp_path / "work"
    for start, accs in (("export", (84.0, 85.0)), ("random", (80.0, 81.0))):
        for seed, acc in enumerate(accs, 1):
            d = _finetune_dir(work / "ft_clean", f"{start}.{seed}", acc, 0.1)
            (d / "dev_unseen.json").unlink()  # a clean run scores its dev split only
            done = _record("finetune", "--name", f"{start}_neuron_params_1.8M", "--start", start, "--task", "SST-2",
                           "--seed", str(seed), "--split", "clean", "--dir", str(d), "--arch",
                           str(work / "export.json"), "--pred-dir", str(pred), "--work", str(work), "--out",
                           str(runs))  # fmt: skip
            assert done.returncode == 0, done.stderr
    assert (runs / "finetune_export_neuron_params_1.8M_clean.seed2.SST-2.json").is_file()
    assert (runs / "finetune_export_neuron_params_1.8M.seed2.SST-2.json").is_file()  # the carved run stays
    assert _record("index", "--pred-dir", str(pred), "--work", str(work), "--out", str(runs)).returncode == 0
    index = json.loads((pred / "index.json").read_text())
    assert len(index) == 8 and len({(r["name"], r["seed"], r["task"]) for r in index}) == 8
    assert (pred / "random_neuron_params_1.8M_clean.seed1.SST-2.txt").is_file()
    out = tmp_path / "bert.md"
    assert _report(runs, pred, out).returncode == 0
    text = out.read_text()
    carved, clean = text.split("## Fine-tuning on the clean split: starts x tasks")
    assert "| `neuron_params_1.8M` | 89.00 ± 1.41 (2) | 86.50 ± 0.71 (2) |" in carved  # unchanged by the clean runs
    row = next(line for line in clean.splitlines() if line.startswith("| `neuron_params_1.8M`"))
    assert row.split(" | ")[1:3] == ["84.50 ± 0.71 (2)", "80.50 ± 0.71 (2)"] and "CoLA clean" not in clean
    assert "SST-2 clean vs random weights +4.000 (target met)" in clean


def test_the_bag_of_ngrams_reference_scores_every_split(tmp_path):
    rows = {"train": ["good\t1", "good stuff\t1", "bad\t0", "bad stuff\t0", "very good\t1", "very bad\t0"]}
    rows["dev"] = ["good\t1", "bad\t0"]
    rows["unseen"] = ["bad\t0"]
    rows["clean"] = ["good\t0", "good stuff\t0", "bad\t1", "bad stuff\t1"]  # labels flipped: its own model
    files = {}
    for name, lines in rows.items():
        files[name] = tmp_path / f"{name}.tsv"
        files[name].write_text("sentence\tlabel\n" + "\n".join(lines) + "\n")
    out = tmp_path / "bow.json"
    cmd = [sys.executable, str(BENCH / "glue_bow_baseline.py"), "--task", "SST-2", "--train", str(files["train"]),
           "--dev", str(files["dev"]), "--unseen", str(files["unseen"]), "--clean-train", str(files["clean"]),
           "--header", "--out", str(out)]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    doc = json.loads(out.read_text())
    assert doc["rows"] == {"train": 6, "dev": 2, "unseen": 1, "clean_train": 4}
    assert doc["accuracy"] == {"carved": 100.0, "unseen": 100.0, "clean": 0.0}
    line = load_benchmark("bert_glue_report").bow_line(
        {"model": "m", "accuracy": {"carved": 92.5, "unseen": 92.1, "clean": 80.5}}
    )
    assert line[0].endswith("92.50% on the dev split as given, 92.10% on its unseen rows, 80.50% on the clean split.")
    files["dev"].write_text("sentence\tlabel\nno label column\n")
    bad = subprocess.run(cmd[:-1] + [str(tmp_path / "bad.json")], capture_output=True, text=True)
    assert bad.returncode == 1 and bad.stderr.startswith("glue_bow_baseline: cannot read the rows")
    assert not (tmp_path / "bad.json").exists()


def test_a_sweep_point_keeps_its_blind_labels_and_the_index_lists_them(tmp_path):
    runs, pred = _study(tmp_path)
    work = tmp_path / "work"
    (work / "sweep" / "mix_lr1e-3").mkdir(parents=True)
    (work / "sweep" / "mix_lr1e-3" / "train.log").write_text(SUPERNET_LOG)
    (work / "sweep" / "arch.yml").write_text("{space: bert_cpu_homogeneous, layers: 4}\n")
    for name, start in (("sweep_mix_lr1e-3", "export"), ("sweep_arch", "random")):
        d = _finetune_dir(work / "finetune", f"{name}.{start}.lr1e-3.seed1.SST-2", 87.0, 0.7)
        (d / "blind.txt").write_text(f"{start}\n")
    common = ["--ft-updates", "1800", "--ft-lr", "1e-3", "--pred-dir", str(pred), "--commit", "9067e2a",
              "--work", str(work), "--out", str(runs)]  # fmt: skip
    for name, text, lr, updates in (("mix_lr1e-3", "mix", "1e-3", "900"), ("random", "-", "-", "-")):
        done = _record("sweep", "--name", name, "--text", text, "--lr", lr, "--updates", updates, *common)
        assert done.returncode == 0, done.stderr
    point = json.loads((runs / "sweep_mix_lr1e-3.SST-2.ft_lr1e-3.json").read_text())
    assert point["finetune"]["blind"] == "sweep_mix_lr1e-3.seed1.SST-2.txt" and point["commit"] == "9067e2a"
    assert (pred / "sweep_random.seed1.SST-2.txt").read_text() == "random\n"
    assert _record("index", "--pred-dir", str(pred), "--work", str(work), "--out", str(runs)).returncode == 0
    index = json.loads((pred / "index.json").read_text())
    sweep = [r for r in index if r["name"].startswith("sweep_")]
    assert sweep == [
        {
            "name": "sweep_mix_lr1e-3",
            "start": "export",
            "task": "SST-2",
            "seed": 1,
            "path": "sweep_mix_lr1e-3.seed1.SST-2.txt",
        },
        {"name": "sweep_random", "start": "random", "task": "SST-2", "seed": 1, "path": "sweep_random.seed1.SST-2.txt"},
    ]
