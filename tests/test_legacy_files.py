"""Files written before issue 19's package refactor still work after it.

``tests/fixtures/legacy/`` holds a corpus, two supernet checkpoints (translation with neuron-wise MoS,
BERT with layer-wise MoS), an exported static subnet, a latency CSV and estimator and a search stopped
after its first iteration, all written by mos-fairseq at commit d56cf78, with what that code printed
or wrote when reading them (``expected/``; see its README.md and make_fixtures.sh). This test runs
the current code on them and compares.

Only the command-line tools (``mos-nas``, ``fairseq-generate --user-dir user_dir``) and file formats
are used, never ``mos_fairseq`` modules: the module layout is what changes under this test.

Every command runs in a copy of the fixture folder with the same relative paths the fixtures were
made with, so recorded relative paths (the checkpoints' data directory, the estimator's
``trained_on``) mean the same. Absolute paths the old code recorded are handled explicitly: the
working directory in export outputs is normalised to ``<ROOT>``, and the search state's identity
(``checkpoint`` and ``estimator`` are stored resolved, and ``--resume`` refuses a state whose
identity differs) is rewritten from the folder it was made in to the copy.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from .conftest import BIN, REPO

FIXTURES = REPO / "tests" / "fixtures" / "legacy"
EXPECTED = FIXTURES / "expected"
MT, BERT = "supernet_mt_neuron.pt", "supernet_bert_layer.pt"
EXPORTS = {
    "largest": (MT, "data/mt"),
    "hetero": (MT, "data/mt"),
    "uniform": (MT, "data/mt"),
    "bert_shape": (BERT, "data/mlm"),
}
GENERATE = ["--gen-subset", "test", "--beam", "4", "--max-len-b", "40", "--batch-size", "32", "--cpu"]
SEARCH_OUTPUTS = ("summary.json", "candidates.csv", "pareto.csv")


def _digest_module():
    spec = importlib.util.spec_from_file_location("legacy_digest", FIXTURES / "legacy_digest.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


digest = _digest_module()


def _commands(root: Path) -> dict[str, list[str]]:
    mos, gen, user_dir = str(BIN / "mos-nas"), str(BIN / "fairseq-generate"), str(REPO / "user_dir")
    search = json.loads((EXPECTED / "search_args.json").read_text())["args"]
    cmds = {
        "info_mt_json": [mos, "info", "--checkpoint", MT, "--json"],
        "info_bert_json": [mos, "info", "--checkpoint", BERT, "--json"],
        "evaluate_bert": [
            mos,
            "evaluate",
            "--checkpoint",
            BERT,
            "--data",
            "data/mlm",
            "--arch",
            "archs/bert_shape.yml",
            "--json",
        ],
        "search_resume": [mos, *search, "--resume"],
        "generate_supernet_largest": [
            gen,
            "data/mt",
            "--user-dir",
            user_dir,
            "--task",
            "supernet_translation",
            "--path",
            MT,
            "--subnet",
            "archs/largest.yml",
            *GENERATE,
        ],
        # the export written by the old code (mos_static_transformer), not a fresh one
        "generate_export_hetero": [
            gen,
            "data/mt",
            "--user-dir",
            user_dir,
            "--path",
            "exports/hetero/checkpoint.pt",
            *GENERATE,
        ],
    }
    for name, (ckpt, data) in EXPORTS.items():
        cmds[f"export_{name}"] = [
            mos,
            "export",
            "--checkpoint",
            ckpt,
            "--arch",
            f"archs/{name}.yml",
            "--data",
            data,
            "--out",
            f"scratch/export_{name}",
        ]
    return cmds


@pytest.fixture(scope="module")
def legacy(tmp_path_factory):
    """A copy of the fixtures with every command run on it (concurrently: they are independent)."""
    root = tmp_path_factory.mktemp("legacy") / "legacy"
    shutil.copytree(FIXTURES, root)
    root = root.resolve()
    (root / "scratch").mkdir()  # export's --out parent, as in make_fixtures.sh
    # the state records the resolved checkpoint/estimator paths of the folder it was made in
    made_in = json.loads((EXPECTED / "search_args.json").read_text())["root"]
    state = root / "search" / "interrupted" / "search_state.json"
    state.write_text(state.read_text().replace(json.dumps(made_in)[1:-1], json.dumps(str(root))[1:-1]))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}

    def run(cmd):
        return subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True)

    cmds = _commands(root)
    # the slow ones first
    order = sorted(cmds, key=lambda n: (not n.startswith(("search", "generate", "export")), n))
    with ThreadPoolExecutor(max_workers=3) as pool:
        futures = {name: pool.submit(run, cmds[name]) for name in order}
        procs = {name: f.result() for name, f in futures.items()}
    return root, procs


def _ok(legacy, name) -> str:
    proc = legacy[1][name]
    assert proc.returncode == 0, f"{' '.join(proc.args)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}"
    return proc.stdout


def _same(actual, expected, **tol):
    diffs = digest.close(actual, expected, **tol)
    assert not diffs, "\n".join(diffs[:20])


@pytest.mark.parametrize(
    "name,expected", [("info_mt_json", "info_supernet_mt.json"), ("info_bert_json", "info_supernet_bert.json")]
)
def test_info_of_legacy_supernets(legacy, name, expected):
    _same(json.loads(_ok(legacy, name)), json.loads((EXPECTED / expected).read_text()), rel=1e-9, abs_=1e-9)


def test_evaluate_legacy_bert_supernet(legacy):
    _same(
        json.loads(_ok(legacy, "evaluate_bert")),
        json.loads((EXPECTED / "evaluate_bert_shape.json").read_text()),
        rel=1e-6,
        abs_=1e-6,
    )


NUMBER = re.compile(r"[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?")


def _same_text(actual: str, expected: str, rel: float, abs_: float) -> None:
    """The same text up to its numbers, which agree within the tolerances (the last digits of a float follow
    the CPU's kernels: machines here differ between sessions)."""
    assert NUMBER.split(actual) == NUMBER.split(expected)
    _same([float(x) for x in NUMBER.findall(actual)], [float(x) for x in NUMBER.findall(expected)], rel=rel, abs_=abs_)


SIZE = re.compile(r"size on disk: [0-9.]+ MiB")
LOGIT_DIFFERENCE = re.compile(r"max \|logit difference\| vs the supernet subnet: (\S+)")


# model options added since the fixtures were made, with the value that behaves as the old code did
ADDED_MODEL_OPTIONS = {"encoder_normalize_before": False, "decoder_normalize_before": False}


@pytest.mark.parametrize("name", list(EXPORTS))
def test_export_of_legacy_supernets(legacy, name):
    root = legacy[0]
    summary = digest.normalise(_ok(legacy, f"export_{name}"), root)
    # the export equals the subnet up to float rounding, whose last digits follow the CPU's kernels
    assert float(LOGIT_DIFFERENCE.search(summary).group(1)) < 1e-4, summary
    masked = [
        LOGIT_DIFFERENCE.sub("max |logit difference|: -", SIZE.sub("size on disk: - MiB", text))
        for text in (summary, (EXPECTED / f"export_{name}.txt").read_text())
    ]
    assert masked[0] == masked[1]
    actual = digest.export_record(root / "scratch" / f"export_{name}", root)
    expected = json.loads((EXPECTED / f"export_{name}.json").read_text())
    for key, old_behaviour in ADDED_MODEL_OPTIONS.items():  # options the old code had no field for
        if key not in expected.get("cfg_model", {}) and key in actual.get("cfg_model", {}):
            assert actual["cfg_model"].pop(key) == old_behaviour, key
    for key in [k for k in actual.get("tensors", {}) if k.endswith(".version")]:
        # stock fairseq's own version buffers (3) now travel with a stock export; the old code let fairseq's
        # upgrade write 1 there, which reads as a pre-2019 state and drops a pre-norm side's last layer norm
        assert actual["tensors"].pop(key)["sum"] == 3.0 and expected["tensors"].pop(key)["sum"] == 1.0, key
    # the file size follows the length of the absolute paths the checkpoint's config records
    size, size_expected = actual["export_json"].pop("size_bytes"), expected["export_json"].pop("size_bytes")
    assert abs(size - size_expected) <= 4096, (size, size_expected)
    _same(actual, expected, rel=1e-6, abs_=1e-6)


@pytest.mark.parametrize("name", ["generate_supernet_largest", "generate_export_hetero"])
def test_generate_with_legacy_checkpoints(legacy, name):
    actual = [line.split("\t") for line in digest.hyp_lines(_ok(legacy, name))]
    expected = [line.split("\t") for line in (EXPECTED / f"{name}.txt").read_text().splitlines()]
    assert len(actual) == len(expected) == 20
    assert [(a[0], a[2]) for a in actual] == [(e[0], e[2]) for e in expected]  # ids and tokens, exactly
    _same([float(a[1]) for a in actual], [float(e[1]) for e in expected], rel=0, abs_=1e-5)


def test_legacy_search_state_resumes_to_the_full_runs_result(legacy):
    root = legacy[0]
    _ok(legacy, "search_resume")
    out = root / "search" / "interrupted"
    expected = sorted(p.name for p in (EXPECTED / "search").iterdir())
    assert sorted(p.name for p in out.glob("best_*.yml")) == [n for n in expected if n.startswith("best_")]
    for name in expected:  # the same files, numbers within float rounding of another CPU
        _same_text((out / name).read_text(), (EXPECTED / "search" / name).read_text(), rel=1e-5, abs_=1e-6)
    assert set(SEARCH_OUTPUTS) <= set(expected)
