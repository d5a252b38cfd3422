"""benchmarks/cpu_bf16_quality.py: the fp32 / bf16 pairs of the Multi30k run files and their verdicts."""

import json
import subprocess
import sys
from pathlib import Path

from tests.helpers.benchmark_scripts import load_benchmark

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "cpu_bf16_quality.py"


def _module():
    return load_benchmark("cpu_bf16_quality")


def _run(name: str, dtype: str, nll: list[float], bleu: tuple[float, float], wall: float) -> dict:
    return {
        "name": name,
        "commit": "abc1234",
        "machine": {"cpu_model": "AMD EPYC", "cpu_flags": ["avx2", "avx512_bf16"]},
        "threads": 1,
        "ranks": 2,
        "dtype": {"training": dtype, "inference": "fp32"},
        "bleu": {"test": {"bleu": bleu[0]}, "test_mscoco": {"bleu": bleu[1]}},
        "valid_nll": {
            "per_epoch": [{"epoch": i + 1, "nll_loss": v} for i, v in enumerate(nll)],
            "final": {"epoch": len(nll), "nll_loss": nll[-1]},
        },
        "training_progress": {"train_wall_s": wall},
        "trained_at": "2026-12-07T00:00:00Z",
    }


def _write(runs: Path, *docs: dict) -> None:
    runs.mkdir(parents=True, exist_ok=True)
    for doc in docs:
        (runs / f"{doc['name']}.json").write_text(json.dumps(doc))


def test_pairs_are_judged_against_the_one_percent_and_the_point_three_bleu_targets(tmp_path):
    _write(
        tmp_path / "runs",
        _run("base_3x3", "fp32", [4.0, 2.322], (31.00, 27.0), 4000.0),
        _run("base_3x3_bf16", "bf16", [4.1, 2.330], (30.80, 26.5), 2000.0),
        _run("base_3x1", "fp32", [4.0, 2.578], (29.3, 25.3), 3000.0),  # no twin: not a pair
    )
    text = _module().build(tmp_path)
    assert "## base_3x3 (fp32) vs base_3x3_bf16 (bf16)" in text and "base_3x1 (fp32)" not in text
    assert "2.322 vs 2.330 bits per token: +0.34%, within the 1% target" in text
    assert "- test sacreBLEU 31.00 vs 30.80 (-0.20), within the 0.3 target." in text
    assert "- test_mscoco sacreBLEU 27.00 vs 26.50 (-0.50), **outside** the 0.3 target." in text
    assert "4000 s vs 2000 s: 2.00x (same CPU model and ranks)" in text
    assert "| 2 | 2.322 | 2.33 | +0.008 |" in text
    summary = _module().pair_summary(*_module().load_pairs(tmp_path / "runs")[0])
    assert summary["nll_ok"] and not summary["bleu_ok"]


def test_a_twin_not_trained_in_bf16_is_refused_and_nothing_is_written(tmp_path):
    _write(
        tmp_path / "runs",
        _run("base_3x3", "fp32", [2.3], (31.0, 27.0), 1.0),
        _run("base_3x3_bf16", "fp32", [2.3], (31.0, 27.0), 1.0),
    )
    out = tmp_path / "quality.md"
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--results", str(tmp_path), "--out", str(out)], capture_output=True, text=True
    )
    assert done.returncode == 2 and not out.exists()
    assert done.stderr == "cpu_bf16_quality: run 'base_3x3_bf16' trained in fp32, expected bf16\n"


def test_no_pair_is_a_one_line_error(tmp_path):
    _write(tmp_path / "runs", _run("base_3x3", "fp32", [2.3], (31.0, 27.0), 1.0))
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--results", str(tmp_path), "--out", str(tmp_path / "q.md")],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2 and done.stderr.startswith("cpu_bf16_quality: no run with a bf16 twin")


def test_a_named_fp32_reference_of_another_machine_is_paired_and_flagged(tmp_path):
    reference = _run("study1_base_3x3", "fp32", [4.0, 2.322], (31.00, 27.90), 0.0)
    reference["machine"] = {"cpu_model": "Intel(R) Xeon(R) Processor", "cpu_flags": None}
    reference["training_progress"] = None
    _write(tmp_path / "runs", reference, _run("base_3x3_bf16", "bf16", [4.1, 2.302], (31.50, 27.19), 4441.0))
    module = _module()
    assert module.load_pairs(tmp_path / "runs") == []  # no run named base_3x3
    text = module.build(tmp_path, {"base_3x3_bf16": "study1_base_3x3"})
    assert "## study1_base_3x3 (fp32) vs base_3x3_bf16 (bf16)" in text
    assert "Intel(R) Xeon(R) Processor (flags not recorded)" in text
    assert "trained on different machines" in text
    assert "bf16 training wall-clock 4441 s (the fp32 run's was not recorded)" in text


def test_a_pair_naming_a_missing_run_is_a_one_line_error(tmp_path):
    _write(tmp_path / "runs", _run("base_3x3_bf16", "bf16", [4.1, 2.302], (31.5, 27.2), 1.0))
    out = tmp_path / "q.md"
    for pair in ("base_3x3_bf16=study9_base_3x3", "no_equals_sign"):
        proc = subprocess.run(
            [sys.executable, str(SCRIPT), "--results", str(tmp_path), "--out", str(out), "--pair", pair],
            capture_output=True,
            text=True,
        )
        assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
        assert not out.exists()
