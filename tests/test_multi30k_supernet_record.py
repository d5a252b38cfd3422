"""benchmarks/multi30k_supernet_record.py (stage ``record_supernets``): a finished supernet's run file, read
from its train.log and checkpoint, named by its precision; an unfinished supernet or another checkpoint's
file refused before anything is written; and the fp32 / bf16 supernet pair of cpu_bf16_quality.py."""

import json
import subprocess
import sys
from pathlib import Path

import torch

from tests.helpers.benchmark_scripts import load_benchmark

RECORD = Path(__file__).resolve().parent.parent / "benchmarks" / "multi30k_supernet_record.py"
CONFIG = {"common": {"seed": 1, "bf16": False}, "optimization": {"lr": [0.002], "max_epoch": 2, "update_freq": [1]}}


def _valid_line(epoch: int, updates: int, largest: float, smallest: float) -> str:
    return (
        f"2026-12-07 06:30:28 | INFO | valid | epoch {epoch:03d} | valid on 'valid' subset | loss {largest} | "
        f"nll_loss {largest - 0.7:.3f} | loss_base_3x1 {largest + 0.2} | nll_loss_base_3x1 {largest - 0.5:.3f} | "
        f"loss_largest {largest} | nll_loss_largest {largest - 0.7:.3f} | loss_smallest {smallest} | "
        f"nll_loss_smallest {smallest - 0.7:.3f} | ppl 255.24 | wps 903.5 | num_updates {updates}\n"
    )


def _supernet(work: Path, name: str, bf16: bool, losses: list[tuple[float, float]]) -> Path:
    d = work / "supernets" / name
    d.mkdir(parents=True)
    (d / "commit").write_text("abc1234\n")
    config = "{'common': {'bf16': True}}" if bf16 else "{'common': {'bf16': False}}"
    log = [f"2026-12-07 06:19:32 | INFO | fairseq_cli.train | {config}\n"]
    for epoch, (largest, smallest) in enumerate(losses, start=1):
        log.append(
            f"2026-12-07 06:29:00 | INFO | train_inner | epoch {epoch:03d}:    136 / 136 loss=9.0, "
            f"num_updates={136 * epoch}, train_wall={600 if bf16 else 1000}, wall=1\n"
        )
        log.append(_valid_line(epoch, 136 * epoch, largest, smallest))
    (d / "train.log").write_text("".join(log))
    cfg = json.loads(json.dumps(CONFIG))
    cfg["model"] = {"mos": "neuron", "search_space": "hat_cpu_multi30k"}
    cfg["task"] = {"supernet_sampling": "sandwich", "sandwich_random": 1}
    cfg["distributed_training"] = {"distributed_world_size": 1}
    history = [{"criterion_name": "x", "optimizer_name": "adam", "lr_scheduler_state": {}, "num_updates": 272}]
    torch.save({"model": {}, "cfg": cfg, "optimizer_history": history, "extra_state": {}}, d / "checkpoint_last.pt")
    (d / ".done").write_text("")
    return d


def _record(work: Path, results: Path, *extra: str) -> subprocess.CompletedProcess:
    args = [sys.executable, str(RECORD), "--work", str(work), "--results", str(results), *extra]
    return subprocess.run(args, capture_output=True, text=True)


def test_a_finished_supernet_becomes_a_run_named_by_its_precision(tmp_path):
    work32, work16, results = tmp_path / "w32", tmp_path / "w16", tmp_path / "results"
    _supernet(work32, "neuron", False, [(8.747, 8.849), (7.5, 7.9)])
    _supernet(work16, "neuron", True, [(8.75, 8.85), (7.52, 7.99)])
    assert _record(work32, results, "--suffix", "_5ep").returncode == 0
    done = _record(work16, results, "--suffix", "_5ep")
    assert done.returncode == 0 and done.stdout.startswith("neuron_5ep_bf16: wrote")
    doc = json.loads((results / "supernets" / "neuron_5ep.json").read_text())
    assert doc["dtype"] == {"training": "fp32"} and doc["epochs"] == 2 and doc["updates"] == 272
    assert doc["valid"][1] == {
        "epoch": 2,
        "num_updates": 272,
        "loss": {"base_3x1": 7.7, "largest": 7.5, "smallest": 7.9},
        "nll_loss": {"base_3x1": 7.0, "largest": 6.8, "smallest": 7.2},
    }
    assert doc["recipe"]["options"]["mos"] == "neuron" and doc["recipe"]["options"]["lr"] == 0.002
    assert doc["train_wall_s"] == 2000 and doc["commit"] == "abc1234"
    again = _record(work16, results, "--suffix", "_5ep")
    assert again.returncode == 0 and again.stdout == "neuron_5ep_bf16: recorded already\n"

    text = load_benchmark("cpu_bf16_quality").build(results)
    assert "## Supernet neuron_5ep (fp32) vs neuron_5ep_bf16 (bf16)" in text
    assert "| 2 | 272 | 7.500 | 7.520 | +0.27% | 7.900 | 7.990 | +1.14% |" in text
    assert "the largest difference over the 2 epochs is 1.14%, **outside** the 1% target" in text
    assert "2000 s vs 1200 s for 272 vs 272 updates: 1.67x (same CPU model and ranks)" in text


def test_an_unfinished_supernet_or_another_checkpoints_file_is_refused_before_writing(tmp_path):
    work, results = tmp_path / "work", tmp_path / "results"
    _supernet(work, "neuron", False, [(8.7, 8.8)])
    training = _supernet(work, "spos", False, [(9.0, 9.1)])
    (training / ".done").unlink()
    done = _record(work, results)
    assert done.returncode == 1 and not results.exists()
    assert done.stderr == f"multi30k_supernet_record: supernet spos is not finished (.done missing in {training})\n"
    (results / "supernets").mkdir(parents=True)
    (results / "supernets" / "neuron.json").write_text('{"checkpoint_sha256": "0123"}')
    other = _record(work, results, "--only", "neuron")
    assert other.returncode == 1 and len(other.stderr.splitlines()) == 1
    assert "holds another checkpoint's run" in other.stderr
    assert (results / "supernets" / "neuron.json").read_text() == '{"checkpoint_sha256": "0123"}'
    missing = _record(work, results, "--only", "sandwich")
    assert missing.stderr == f"multi30k_supernet_record: no supernet sandwich in {work}/supernets\n"
