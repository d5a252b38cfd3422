"""Shared fixtures: a tiny dictionary and supernet, and a small synthetic corpus binarised once."""

import random
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from fairseq.data import Dictionary

from mos_fairseq.plugin import register
from mos_fairseq.translation.space import SearchSpace
from mos_fairseq.translation.supernet import SuperTransformerConfig, SuperTransformerModel

from .helpers.forked_cli import run_cli_forked

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
register()


@pytest.fixture(scope="session")
def tiny_space() -> SearchSpace:
    return SearchSpace.load("tiny")


@pytest.fixture(scope="session")
def hat_space() -> SearchSpace:
    return SearchSpace.load("hat_wmt14_en_de")


@pytest.fixture(scope="session")
def dictionary() -> Dictionary:
    d = Dictionary()
    for i in range(60):
        d.add_symbol(f"w{i}")
    d.finalize(padding_factor=8)
    return d


def build_supernet(dictionary, seed: int = 0, **cfg) -> SuperTransformerModel:
    torch.manual_seed(seed)
    config = SuperTransformerConfig(search_space="tiny", **cfg)
    task = SimpleNamespace(source_dictionary=dictionary, target_dictionary=dictionary)
    return SuperTransformerModel.build_model(config, task)


@pytest.fixture
def supernet(dictionary) -> SuperTransformerModel:
    return build_supernet(dictionary).eval()


@pytest.fixture
def batch(dictionary):
    """Left-padded sources and right-padded targets, as fairseq's translation task batches them."""
    g = torch.Generator().manual_seed(0)
    src = torch.randint(4, len(dictionary), (3, 9), generator=g)
    src[0, :3] = dictionary.pad()
    lengths = torch.tensor([6, 9, 9])
    prev = torch.randint(4, len(dictionary), (3, 7), generator=g)
    prev[:, 0] = dictionary.eos()
    prev[2, -2:] = dictionary.pad()
    return src, lengths, prev


@pytest.fixture(scope="session")
def synthetic_bin(tmp_path_factory) -> Path:
    """A 3k-pair synthetic corpus prepared with ``mos-nas prepare-data``."""
    root = tmp_path_factory.mktemp("synthetic")
    run_cli("make-synthetic", "--out", str(root / "raw"), "--train", "3000", "--valid", "100", "--test", "60")
    run_cli(
        "prepare-data",
        "--src",
        "en",
        "--tgt",
        "de",
        "--train",
        str(root / "raw/train"),
        "--valid",
        str(root / "raw/valid"),
        "--test",
        str(root / "raw/test"),
        "--vocab-size",
        "160",
        "--out",
        str(root / "bin"),
    )
    return root / "bin"


# fairseq-train options shared by the tests that train a tiny supernet (sandwich, CPU)
TRAIN_ARGS = [
    "--user-dir",
    str(REPO / "user_dir"),
    "--task",
    "supernet_translation",
    "--arch",
    "supertransformer_tiny",
    "--criterion",
    "supernet_cross_entropy",
    "--supernet-sampling",
    "sandwich",
    "--label-smoothing",
    "0.1",
    "--optimizer",
    "adam",
    "--adam-betas",
    "(0.9,0.98)",
    "--lr",
    "2e-3",
    "--lr-scheduler",
    "inverse_sqrt",
    "--warmup-updates",
    "10",
    "--max-tokens",
    "1024",
    "--save-interval-updates",
    "15",
    "--validate-interval-updates",
    "15",
    "--no-epoch-checkpoints",
    "--seed",
    "7",
    "--cpu",
    "--num-workers",
    "0",
    "--log-format",
    "simple",
    "--log-interval",
    "5",
]


def run_cli(*args: str, check: bool = True, fork: bool = False) -> subprocess.CompletedProcess:
    """``mos-nas ARGS`` in a new process, or (``fork``: for calls that fail fast or only print) in a fork
    of this one, which skips re-importing torch and fairseq."""
    if fork:
        proc = run_cli_forked(*args, cwd=REPO)
    else:
        proc = subprocess.run([str(BIN / "mos-nas"), *args], capture_output=True, text=True, cwd=REPO)
    if check and proc.returncode != 0:
        raise AssertionError(f"mos-nas {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return proc


def seeded(seed: int) -> random.Random:
    return random.Random(seed)


@pytest.fixture(scope="session")
def searchable_supernet(synthetic_bin, tmp_path_factory):
    """A neuron-MoS tiny supernet (60 sandwich updates) and a latency estimator for the tiny space."""
    root = tmp_path_factory.mktemp("search")
    cmd = [
        str(BIN / "fairseq-train"),
        str(synthetic_bin),
        *TRAIN_ARGS,
        "--save-dir",
        str(root / "ckpt"),
        "--max-update",
        "60",
        "--mos",
        "neuron",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lat = root / "tiny_cpu.csv"
    run_cli(
        "measure-latency",
        "--space",
        "tiny",
        "--n-archs",
        "24",
        "--repeats",
        "3",
        "--warmup",
        "1",
        "--src-len",
        "8",
        "--tgt-len",
        "6",
        "--beam",
        "2",
        "--threads",
        "1",
        "--vocab-size",
        "64",
        "--no-progress",
        "--out",
        str(lat),
    )
    run_cli(
        "train-estimator",
        "--data",
        str(lat),
        "--out",
        str(root / "est.safetensors"),
        "--hidden",
        "32",
        "--steps",
        "300",
        "--no-hat-recipe",
    )
    return {"ckpt": root / "ckpt" / "checkpoint_last.pt", "est": root / "est.safetensors", "data": synthetic_bin}
