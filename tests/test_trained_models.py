"""What the Multi30k study does with models trained alone: several test sets in one data directory,
checkpoint averaging, BLEU against raw references with the hypotheses kept, and the latency of
trained checkpoints with the space campaign's protocol."""

import json
import subprocess

import pytest
import torch

from .conftest import BIN, run_cli

STOCK = [
    "--arch",
    "transformer",
    "--encoder-embed-dim",
    "32",
    "--decoder-embed-dim",
    "32",
    "--encoder-ffn-embed-dim",
    "64",
    "--decoder-ffn-embed-dim",
    "64",
    "--encoder-layers",
    "2",
    "--decoder-layers",
    "1",
    "--encoder-attention-heads",
    "2",
    "--decoder-attention-heads",
    "2",
    "--share-all-embeddings",
    "--optimizer",
    "adam",
    "--lr",
    "3e-3",
    "--max-tokens",
    "2048",
    "--criterion",
    "label_smoothed_cross_entropy",
    "--label-smoothing",
    "0.1",
    "--cpu",
    "--num-workers",
    "0",
    "--seed",
    "3",
    "--log-format",
    "simple",
]


@pytest.fixture(scope="module")
def two_tests(tmp_path_factory):
    """A synthetic corpus prepared with two test sets, and a stock transformer trained 3 epochs on it."""
    root = tmp_path_factory.mktemp("two_tests")
    run_cli("make-synthetic", "--out", str(root / "raw"), "--train", "1500", "--valid", "50", "--test", "40")
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
        str(root / "raw/valid"),
        "--vocab-size",
        "150",
        "--out",
        str(root / "bin"),
    )
    proc = subprocess.run(
        [str(BIN / "fairseq-train"), str(root / "bin"), *STOCK, "--max-epoch", "3", "--save-dir", str(root / "ckpt")],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return root


def test_second_test_set_becomes_subset_test1(two_tests):
    from fairseq.data import data_utils

    for subset, n in (("test", 40), ("test1", 50)):
        ds = data_utils.load_indexed_dataset(str(two_tests / "bin" / f"{subset}.en-de.de"), None)
        assert len(ds) == n


def test_average_is_the_elementwise_mean_and_loads_in_stock_fairseq(two_tests, tmp_path):
    ckpt = two_tests / "ckpt"
    out = tmp_path / "avg.pt"
    run_cli("average", "--dir", str(ckpt), "--last", "2", "--out", str(out))
    states = [torch.load(ckpt / f"checkpoint{e}.pt", weights_only=True, map_location="cpu")["model"] for e in (2, 3)]
    averaged = torch.load(out, weights_only=True, map_location="cpu")
    assert averaged["last_optimizer_state"] is None
    assert averaged["extra_state"]["averaged_checkpoints"]["averaged"][-1].endswith("checkpoint3.pt")
    for key, value in averaged["model"].items():
        expected = (states[0][key].double() + states[1][key].double()) / 2
        assert value.dtype == states[0][key].dtype
        assert torch.allclose(value.double(), expected, atol=1e-7), key
    assert any(not torch.equal(states[0][k], states[1][k]) for k in states[0])  # the inputs differ
    # stock fairseq (no --user-dir) translates with it (batch multiple 1: the wheel's batching otherwise drops
    # sentences without our plugin's repair, see fairseq_fixes.py)
    proc = subprocess.run(
        [
            str(BIN / "fairseq-generate"),
            str(two_tests / "bin"),
            "--path",
            str(out),
            "--gen-subset",
            "test1",
            "--beam",
            "2",
            "--max-len-b",
            "20",
            "--cpu",
            "--required-batch-size-multiple",
            "1",
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert sum(line.startswith("H-") for line in proc.stdout.splitlines()) == 50


def test_average_refuses_too_few_or_mismatched_checkpoints(two_tests, tmp_path, searchable_supernet):
    out = tmp_path / "avg.pt"
    proc = run_cli(
        "average", "--dir", str(two_tests / "ckpt"), "--last", "4", "--out", str(out), check=False, fork=True
    )
    assert proc.returncode == 2 and "3 epoch checkpoint(s)" in proc.stderr and not out.exists()
    proc = run_cli(
        "average",
        "--inputs",
        str(two_tests / "ckpt" / "checkpoint1.pt"),
        str(searchable_supernet["ckpt"]),
        "--out",
        str(out),
        check=False,
        fork=True,
    )
    assert proc.returncode == 2 and "holds other parameters" in proc.stderr and not out.exists()


def test_bleu_against_raw_references_keeps_the_hypotheses(two_tests, tmp_path):
    ckpt = str(two_tests / "ckpt" / "checkpoint3.pt")
    hyps = tmp_path / "hyp.txt"
    raw_refs = two_tests / "raw" / "valid.de"
    got = json.loads(
        run_cli(
            "bleu",
            "--path",
            ckpt,
            "--data",
            str(two_tests / "bin"),
            "--subset",
            "test1",
            "--refs",
            str(raw_refs),
            "--save-hyps",
            str(hyps),
            "--json",
        ).stdout
    )
    assert len(hyps.read_text().splitlines()) == 50 == got["sentences"]
    rescored = json.loads(run_cli("bleu", "--hyps", str(hyps), "--refs", str(raw_refs), "--json", fork=True).stdout)
    assert rescored["bleu"] == pytest.approx(got["bleu"], abs=1e-9)
    proc = run_cli(
        "bleu",
        "--path",
        ckpt,
        "--data",
        str(two_tests / "bin"),
        "--subset",
        "test",
        "--refs",
        str(raw_refs),
        "--json",
        check=False,
    )
    assert proc.returncode == 2 and "has 50 lines but subset 'test' has 40 sentences" in proc.stderr


def test_latency_of_trained_checkpoints_is_kept_and_resumed(two_tests, tmp_path, searchable_supernet):
    out = tmp_path / "models.json"
    export = tmp_path / "export"
    arch = tmp_path / "smallest.yml"
    run_cli("sample", "--space", "tiny", "--n", "0", "--smallest", "--out", str(tmp_path), fork=True)
    run_cli("export", "--checkpoint", str(searchable_supernet["ckpt"]), "--arch", str(arch), "--out", str(export))
    stock = str(two_tests / "ckpt" / "checkpoint3.pt")
    protocol = ["--threads", "1", "--repeats", "3", "--warmup", "1", "--src-len", "6", "--tgt-len", "5", "--beam", "2"]
    run_cli("measure-latency", "--checkpoint", stock, str(export / "checkpoint.pt"), *protocol, "--out", str(out))
    data = json.loads(out.read_text())
    assert data["protocol"]["tgt_len"] == 5 and data["device"]["torch_threads"] == 1
    entries = {k.rsplit("/", 2)[-2]: v for k, v in data["models"].items()}
    assert set(entries) == {"ckpt", "export"}
    assert entries["ckpt"]["model"] == "TransformerModel" and entries["export"]["model"] == "StaticTransformerModel"
    for e in entries.values():
        assert e["latency_ms"] == pytest.approx(e["encoder_ms"] + e["decoder_ms"]) and e["decoder_ms"] > 0
    assert (
        entries["export"]["params"]
        == json.loads(
            run_cli("info", "--arch", str(arch), "--data", str(searchable_supernet["data"]), "--json", fork=True).stdout
        )["params"]
    )
    # a re-run measures nothing again; another protocol is refused and leaves the file as it was
    before = out.read_bytes()
    run_cli("measure-latency", "--checkpoint", stock, *protocol, "--out", str(out))
    assert out.read_bytes() == before
    proc = run_cli(
        "measure-latency",
        "--checkpoint",
        stock,
        *protocol[:-2],
        "--beam",
        "3",
        "--out",
        str(out),
        check=False,
        fork=True,
    )
    assert proc.returncode == 2 and "another protocol" in proc.stderr and out.read_bytes() == before
    proc = run_cli("measure-latency", "--checkpoint", stock, "--out", str(tmp_path), check=False, fork=True)
    assert proc.returncode == 2 and "is a directory" in proc.stderr
    proc = run_cli(
        "measure-latency", "--checkpoint", stock, "--space", "tiny", "--out", str(out), check=False, fork=True
    )
    assert proc.returncode == 2 and "takes no --space" in proc.stderr
    proc = run_cli(
        "measure-latency",
        "--space",
        "tiny",
        "--n-archs",
        "2",
        "--rounds",
        "3",
        "--out",
        str(tmp_path / "s.csv"),
        check=False,
        fork=True,
    )
    assert proc.returncode == 2 and "--rounds times models together" in proc.stderr
    # --rounds: the two models timed together, interleaved, both re-measured; the median is the figure
    proc = run_cli(
        "measure-latency",
        "--checkpoint",
        stock,
        str(export / "checkpoint.pt"),
        *protocol,
        "--rounds",
        "2",
        "--out",
        str(out),
    )
    entries = {k.rsplit("/", 2)[-2]: v for k, v in json.loads(out.read_text())["models"].items()}
    assert all(len(e["rounds_ms"]) == 2 and e["measured_with"] == 2 for e in entries.values())
    assert entries["ckpt"]["measured_at"] == entries["export"]["measured_at"] and "rounds" in proc.stdout


def test_architecture_files_are_timed_together_as_retraining_builds_them(tmp_path, synthetic_bin):
    """--arch: no checkpoint, fresh weights; the class and size retraining would train, options kept per file."""
    run_cli("sample", "--space", "tiny", "--n", "0", "--smallest", "--largest", "--out", str(tmp_path), fork=True)
    archs = [str(tmp_path / "smallest.yml"), str(tmp_path / "largest.yml")]
    out = tmp_path / "archs.json"
    protocol = ["--threads", "1", "--repeats", "2", "--warmup", "0", "--src-len", "6", "--tgt-len", "4", "--beam", "2"]
    common = ["measure-latency", "--arch", *archs, "--data", str(synthetic_bin), *protocol]
    proc = run_cli(*common, "--model-options", "--dropout 0.1", "--rounds", "2", "--out", str(out))
    data = json.loads(out.read_text())
    assert data["tool"] == "mos-nas measure-latency --arch" and data["model_options"] == ["--dropout", "0.1"]
    for arch in archs:
        entry = data["models"][arch]
        info = json.loads(run_cli("info", "--arch", arch, "--data", str(synthetic_bin), "--json", fork=True).stdout)
        assert entry["model"] == "StaticTransformerModel" and len(entry["rounds_ms"]) == 2  # tiny: per-layer sizes
        assert entry["params"] == info["params"] and entry["latency_ms"] > 0
    assert "smallest.yml" in proc.stdout and data["models"][archs[0]]["params"] < data["models"][archs[1]]["params"]
    before = out.read_bytes()
    other = run_cli(*common, "--out", str(out), check=False, fork=True)  # the same file, other model options
    assert other.returncode == 2 and "built with other options" in other.stderr and out.read_bytes() == before
    both = run_cli(*common, "--checkpoint", archs[0], "--out", str(out), check=False, fork=True)
    assert both.returncode == 2 and "not both" in both.stderr
    no_data = run_cli("measure-latency", "--arch", *archs, "--out", str(out), check=False, fork=True)
    assert no_data.returncode == 2 and "give --data" in no_data.stderr and out.read_bytes() == before
