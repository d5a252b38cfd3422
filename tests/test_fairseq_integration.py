"""fairseq-train / fairseq-generate with --user-dir on the synthetic corpus (CPU)."""

import json
import subprocess

import pytest
import torch

import mos_fairseq  # noqa: F401  (allow-lists checkpoint globals)
from mos_fairseq.translation.architecture import Architecture
from mos_fairseq.translation.space import SearchSpace

from .conftest import BIN, REPO, TRAIN_ARGS

TRAIN = TRAIN_ARGS


def _train(data, save_dir, max_update, log):
    cmd = [
        str(BIN / "fairseq-train"),
        str(data),
        *TRAIN,
        "--save-dir",
        str(save_dir),
        "--max-update",
        str(max_update),
        "--log-subnets",
        str(log),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout + proc.stderr


def _stream(log):
    return dict(line.split("\t", 1) for line in log.read_text().splitlines())


@pytest.fixture(scope="module")
def trained(synthetic_bin, tmp_path_factory):
    root = tmp_path_factory.mktemp("train")
    out = _train(synthetic_bin, root / "full", 30, root / "full.log")
    return root, out


def test_train_30_updates_logs_subnet_losses(trained):
    root, out = trained
    assert "num_updates 30" in out
    valid = [line for line in out.splitlines() if "valid on 'valid' subset" in line]
    assert valid and "loss_largest" in valid[-1] and "loss_smallest" in valid[-1]
    assert (root / "full" / "checkpoint_last.pt").is_file()
    assert len(_stream(root / "full.log")) == 30


def test_checkpoint_loads_with_weights_only_and_keeps_space(trained):
    root, _ = trained
    state = torch.load(root / "full" / "checkpoint_last.pt")  # torch's default: weights_only=True
    space = SearchSpace.from_json(state["cfg"]["model"]["search_space_spec"])
    assert space == SearchSpace.load("tiny")
    assert state["optimizer_history"][-1]["num_updates"] == 30


def test_resume_continues_the_same_subnet_stream(trained, synthetic_bin):
    root, _ = trained
    _train(synthetic_bin, root / "resumed", 15, root / "resumed.log")
    out = _train(synthetic_bin, root / "resumed", 30, root / "resumed.log")
    assert "Loaded checkpoint" in out and "@ 15 updates" in out
    full, resumed = _stream(root / "full.log"), _stream(root / "resumed.log")
    assert sorted(map(int, resumed)) == list(range(30))
    assert resumed == full


def test_generate_with_two_subnets(trained, synthetic_bin, tmp_path):
    root, _ = trained
    space = SearchSpace.load("tiny")
    Architecture.smallest(space).save(tmp_path / "small.yml")
    hyps = {}
    for name, extra in (("largest", []), ("small", ["--subnet", str(tmp_path / "small.yml")])):
        cmd = [
            str(BIN / "fairseq-generate"),
            str(synthetic_bin),
            "--user-dir",
            str(REPO / "user_dir"),
            "--task",
            "supernet_translation",
            "--path",
            str(root / "full" / "checkpoint_last.pt"),
            "--gen-subset",
            "test",
            "--beam",
            "4",
            "--max-len-b",
            "40",
            "--batch-size",
            "32",
            "--cpu",
            *extra,
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr[-3000:]
        lines = [l for l in proc.stdout.splitlines() if l.startswith("H-")]
        sources = [l for l in proc.stdout.splitlines() if l.startswith("S-")]
        # every test sentence: the plugin repairs ve-fairseq's batching, which dropped the last 4 of 60
        assert len(lines) == len(sources) == 60, proc.stdout[-2000:]
        # score and text: an untrained model may emit the same degenerate string from both subnets
        hyps[name] = {l.split("\t")[0]: (l.split("\t")[1], l.split("\t")[2]) for l in lines}
    common = hyps["largest"].keys() & hyps["small"].keys()
    assert len(common) == 60
    assert sum(hyps["largest"][k] != hyps["small"][k] for k in common) > len(common) // 2


def test_subnet_outside_the_space_is_refused_by_generate(trained, synthetic_bin, tmp_path):
    root, _ = trained
    arch = Architecture.largest(SearchSpace.load("tiny")).to_dict()
    arch["encoder"]["embed_dim"] = 40
    (tmp_path / "bad.yml").write_text(json.dumps(arch))
    cmd = [
        str(BIN / "fairseq-generate"),
        str(synthetic_bin),
        "--user-dir",
        str(REPO / "user_dir"),
        "--task",
        "supernet_translation",
        "--path",
        str(root / "full" / "checkpoint_last.pt"),
        "--gen-subset",
        "test",
        "--cpu",
        "--subnet",
        str(tmp_path / "bad.yml"),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode != 0
    assert "encoder.embed_dim=40 is not in the space's choices [24, 32]" in proc.stderr


def test_sentence_blocks_build_under_numpy_2():
    """``--sample-break-mode eos``: fairseq's TokenBlockDataset names np.compat.long, gone in NumPy 2."""
    from fairseq.data import TokenBlockDataset

    from mos_fairseq.plugin import register

    register()
    sentences = [torch.tensor([4, 5, 2]), torch.tensor([6, 2]), torch.tensor([7, 8, 9, 2])]
    blocks = TokenBlockDataset(sentences, [3, 2, 4], block_size=None, pad=1, eos=2, break_mode="eos")
    assert [blocks[i].tolist() for i in range(len(blocks))] == [[4, 5, 2], [6, 2], [7, 8, 9, 2]]
    import numpy as np

    assert not hasattr(np, "compat") or np.__version__.startswith("1.")  # NumPy itself is left as it is
