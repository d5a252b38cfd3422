"""The catalogue of bad inputs: every one gets exit code 2, one line naming the problem, no
traceback, and nothing written (or nothing changed) where the command would have written."""

import csv
import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from mos_fairseq.translation.architecture import Architecture
from mos_fairseq.translation.space import SearchSpace

from .conftest import BIN, REPO, run_cli
from .helpers.forked_cli import run_cli_forked

TINY = SearchSpace.load("tiny")


def write_yaml(path, data):
    path.write_text(yaml.safe_dump(data))
    return str(path)


def bad_arch(tmp, **change):
    arch = Architecture.largest(TINY).to_dict()
    for key, value in change.items():
        side, field = key.split("__")
        arch[side][field] = value
    return write_yaml(tmp / "bad_arch.yml", arch)


def space_with(tmp, **change):
    space = yaml.safe_load((REPO / "configs/spaces/tiny.yml").read_text())
    space.update(change)
    return write_yaml(tmp / "bad_space.yml", space)


def latency_csv(tmp, name, mutate=None, rows=12):
    """A latency CSV in HAT's columns with ``rows`` rows; ``mutate(rows)`` edits the text rows."""
    from mos_fairseq.latency.dataset import HAT_COLUMNS

    body = [[512, 6, 2048, 6, 512, k % 6 + 1, 2048, 6, 6, 1, 5.0, 10.0 + k, 0.1, 0.1] for k in range(rows)]
    body = [[str(v) for v in r] for r in body]
    header = list(HAT_COLUMNS)
    if mutate:
        header, body = mutate(header, body)
    path = tmp / name
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(body)
    return str(path)


def bert_latency_csv(tmp):
    """A well-formed latency CSV of a BERT space (per-layer hidden sizes + parameters as features)."""
    from mos_fairseq.latency.dataset import our_columns

    space = "bert_tiny_bottleneck"
    names = ("hidden_1", "hidden_2", "hidden_3", "model_params")
    rows = [
        [k, json.dumps({"space": space, "hidden": [12, 24, 48]}), 5000 + k, 12, 24, 48, 5000 + k, 1.0 + k, 0, 0.1, 0]
        for k in range(12)
    ]
    path = tmp / "bert_lat.csv"
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(our_columns(names))
        w.writerows(rows)
    return str(path)


def corrupt_copy(src, dst):
    data = src.read_bytes()
    dst.write_bytes(data[: len(data) // 3])
    return str(dst)


class _RunsAShellCommand:
    """Unpickling this runs ``touch MARKER``: what a booby-trapped checkpoint would do."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        import os

        return (os.system, (f"touch {self.marker}",))


def booby_trapped_checkpoint(tmp):
    import torch

    torch.save({"model": _RunsAShellCommand(tmp / "pwned"), "cfg": {}}, tmp / "trap.pt")
    return str(tmp / "trap.pt")


def set_value(row, col, value):
    def mutate(header, body):
        body[row][col] = value
        return header, body

    return mutate


def drop_column(name):
    def mutate(header, body):
        i = header.index(name)
        return header[:i] + header[i + 1 :], [r[:i] + r[i + 1 :] for r in body]

    return mutate


# (case id, argv builder(tmp, env) -> (argv, path that must not appear or must stay unchanged), expected text)
CASES = [
    (
        "arch-outside-space",
        lambda t, e: (["info", "--arch", bad_arch(t, decoder__ffn_dim=[64, 100, 64])], None),
        "decoder.ffn_dim[1]=100 is not in the space's choices",
    ),
    (
        "arch-missing-key",
        lambda t, e: (["info", "--arch", write_yaml(t / "a.yml", {"space": "tiny", "encoder": {}})], None),
        "encoder",
    ),
    (
        "arch-negative-dim",
        lambda t, e: (["info", "--arch", bad_arch(t, encoder__embed_dim=-32)], None),
        "encoder.embed_dim=-32",
    ),
    (
        "space-unknown-key",
        lambda t, e: (
            ["sample", "--space", space_with(t, colour="red"), "--n", "2", "--out", str(t / "out")],
            t / "out",
        ),
        "colour",
    ),
    (
        "space-zero-dim",
        lambda t, e: (["sample", "--space", space_with(t, qkv_dim=0), "--n", "2", "--out", str(t / "out")], t / "out"),
        "qkv_dim",
    ),
    (
        "space-missing-file",
        lambda t, e: (["sample", "--space", str(t / "nope.yml"), "--n", "1", "--out", str(t / "o")], t / "o"),
        "nope.yml",
    ),
    (
        "latency-n-archs-zero",
        lambda t, e: (["measure-latency", "--space", "tiny", "--n-archs", "0", "--out", str(t / "l.csv")], t / "l.csv"),
        "--n-archs must be >= 1",
    ),
    (
        "latency-repeats-zero",
        lambda t, e: (
            ["measure-latency", "--space", "tiny", "--n-archs", "2", "--repeats", "0", "--out", str(t / "l.csv")],
            t / "l.csv",
        ),
        "--repeats must be >= 1",
    ),
    (
        "latency-cuda-missing",
        lambda t, e: (
            ["measure-latency", "--space", "tiny", "--n-archs", "2", "--device", "cuda", "--out", str(t / "l.csv")],
            t / "l.csv",
        ),
        "no CUDA device",
    ),
    (
        "latency-bf16-off-the-cpu",
        lambda t, e: (
            ["measure-latency", "--space", "tiny", "--n-archs", "2", "--dtype", "bf16", "--device", "cuda"]
            + ["--out", str(t / "l.csv")],
            t / "l.csv",
        ),
        "--dtype bf16 times bf16 models on the CPU",
    ),
    (
        "evaluate-bf16-on-cuda",
        lambda t, e: (
            ["evaluate", "--checkpoint", e["ckpt"], "--arch", e["tiny_arch"], "--bf16", "--device", "cuda"],
            None,
        ),
        "--bf16 evaluates on CPU",
    ),
    (
        "bleu-bf16-scores-files",
        lambda t, e: (["bleu", "--hyps", e["hyps"], "--refs", e["refs"], "--bf16"], None),
        "--bf16 translates with --path",
    ),
    (
        "latency-out-is-a-directory",
        lambda t, e: (["measure-latency", "--space", "tiny", "--n-archs", "2", "--out", str(t)], None),
        "is a directory; give the CSV file to write",
    ),
    (
        "search-negative-latency-constraint",
        lambda t, e: (
            [
                "search",
                "--checkpoint",
                e["ckpt"],
                "--estimator",
                e["est"],
                "--latency-constraint",
                "-5",
                "--out",
                str(t / "s"),
            ],
            t / "s",
        ),
        "--latency-constraint: -5 must be positive",
    ),
    (
        "latency-out-foreign-csv",
        lambda t, e: (["measure-latency", "--space", "tiny", "--n-archs", "2", "--out", e["foreign"]], e["foreign"]),
        "not a mos-nas latency CSV",
    ),
    (
        "csv-nan-latency",
        lambda t, e: (
            [
                "train-estimator",
                "--data",
                latency_csv(t, "n.csv", set_value(4, 11, "nan")),
                "--out",
                str(t / "e.safetensors"),
            ],
            t / "e.safetensors",
        ),
        "row 5",
    ),
    (
        "csv-text-latency",
        lambda t, e: (
            [
                "train-estimator",
                "--data",
                latency_csv(t, "x.csv", set_value(2, 10, "fast")),
                "--out",
                str(t / "e.safetensors"),
            ],
            t / "e.safetensors",
        ),
        "row 3: column 'latency_mean_encoder' is not a number",
    ),
    (
        "csv-missing-column",
        lambda t, e: (
            [
                "train-estimator",
                "--data",
                latency_csv(t, "m.csv", drop_column("latency_mean_decoder")),
                "--out",
                str(t / "e.safetensors"),
            ],
            t / "e.safetensors",
        ),
        "missing column(s) latency_mean_decoder",
    ),
    (
        "csv-empty",
        lambda t, e: (
            ["train-estimator", "--data", latency_csv(t, "e.csv", rows=0), "--out", str(t / "e.safetensors")],
            t / "e.safetensors",
        ),
        "no data rows",
    ),
    (
        "csv-too-short",
        lambda t, e: (
            ["train-estimator", "--data", latency_csv(t, "s.csv", rows=4), "--out", str(t / "e.safetensors")],
            t / "e.safetensors",
        ),
        "too few",
    ),
    (
        "estimator-other-space",
        lambda t, e: (["predict-latency", "--estimator", e["est"], "--arch", e["hat_arch"]], None),
        "architecture is for space 'hat_wmt14_en_de', not 'tiny'",
    ),
    (
        "estimator-not-an-estimator",
        lambda t, e: (["predict-latency", "--estimator", e["ckpt"], "--arch", e["tiny_arch"]], None),
        "not a safetensors latency estimator",
    ),
    (
        "export-a-static-checkpoint",
        lambda t, e: (
            ["export", "--checkpoint", e["export_ckpt"], "--arch", e["tiny_arch"], "--out", str(t / "x")],
            t / "x",
        ),
        "is not a supernet checkpoint",
    ),
    (
        "export-arch-of-other-space",
        lambda t, e: (["export", "--checkpoint", e["ckpt"], "--arch", e["hat_arch"], "--out", str(t / "x")], t / "x"),
        "hat_wmt14_en_de",
    ),
    (
        "export-missing-data-dir",
        lambda t, e: (
            [
                "export",
                "--checkpoint",
                e["ckpt"],
                "--arch",
                e["tiny_arch"],
                "--data",
                str(t / "nodata"),
                "--out",
                str(t / "x"),
            ],
            t / "x",
        ),
        "nodata",
    ),
    (
        "booby-trapped-checkpoint",
        lambda t, e: (["info", "--checkpoint", booby_trapped_checkpoint(t)], t / "pwned"),
        "is not a readable fairseq checkpoint",
    ),
    (
        "retrain-arch-outside-space",
        lambda t, e: (
            [
                "retrain",
                "--arch",
                bad_arch(t, encoder__ffn_dim=[64, 65, 64]),
                "--data",
                e["data"],
                "--save-dir",
                str(t / "r"),
            ],
            t / "r",
        ),
        "encoder.ffn_dim[1]=65",
    ),
    (
        "retrain-missing-data-dir",
        lambda t, e: (
            ["retrain", "--arch", e["tiny_arch"], "--data", str(t / "nodata"), "--save-dir", str(t / "r")],
            t / "r",
        ),
        "nodata",
    ),
    (
        "bert-arch-outside-space",
        lambda t, e: (
            ["info", "--arch", write_yaml(t / "b.yml", {"space": "bert_tiny_bottleneck", "hidden": [12, 100, 12]})],
            None,
        ),
        "hidden[1]=100 is not in the space's choices",
    ),
    (
        "bert-latency-sequence-too-long",
        lambda t, e: (
            [
                "measure-latency",
                "--space",
                "bert_tiny_bottleneck",
                "--seq-len",
                "65",
                "--n-archs",
                "2",
                "--out",
                str(t / "l.csv"),
            ],
            t / "l.csv",
        ),
        "--seq-len 65 exceeds space 'bert_tiny_bottleneck'",
    ),
    (
        "estimator-csv-of-other-space",
        lambda t, e: (
            ["train-estimator", "--data", bert_latency_csv(t), "--space", "tiny", "--out", str(t / "e.safetensors")],
            t / "e.safetensors",
        ),
        "are not those of space 'tiny'",
    ),
    (
        "shape-homogeneous-space",
        lambda t, e: (
            ["shape", "--space", "bert_homogeneous", "--params", "60M", "--out", str(t / "s.yml")],
            t / "s.yml",
        ),
        "homogeneous",
    ),
    (
        "shape-unreachable-budget",
        lambda t, e: (["shape", "--space", "supershaper", "--params", "1M", "--out", str(t / "s.yml")], t / "s.yml"),
        "within 2%",
    ),
    (
        "prepare-mlm-empty-corpus",
        lambda t, e: (
            [
                "prepare-mlm",
                "--train",
                e["empty"],
                "--valid",
                e["empty"],
                "--vocab-size",
                "100",
                "--out",
                str(t / "mlm"),
            ],
            t / "mlm",
        ),
        "is empty",
    ),
    (
        "search-not-a-predictor",
        lambda t, e: (
            [
                "search",
                "--checkpoint",
                e["ckpt"],
                "--param-constraint",
                "60000",
                "--predictor",
                e["foreign"],
                "--out",
                str(t / "s"),
            ],
            t / "s",
        ),
        "not a loss predictor",
    ),
    (
        "corrupted-checkpoint",
        lambda t, e: (["info", "--checkpoint", corrupt_copy(e["ckpt_path"], t / "c.pt")], None),
        "c.pt",
    ),
    (
        "search-infeasible",
        lambda t, e: (
            [
                "search",
                "--checkpoint",
                e["ckpt"],
                "--param-constraint",
                "1000",
                "--out",
                str(t / "s"),
                "--iterations",
                "1",
            ],
            t / "s",
        ),
        "infeasible constraint",
    ),
    (
        "search-latency-without-estimator",
        lambda t, e: (
            ["search", "--checkpoint", e["ckpt"], "--latency-constraint", "5", "--out", str(t / "s")],
            t / "s",
        ),
        "needs --estimator",
    ),
    (
        "search-bad-constraint",
        lambda t, e: (
            ["search", "--checkpoint", e["ckpt"], "--param-constraint", "fast", "--out", str(t / "s")],
            t / "s",
        ),
        "cannot read 'fast'",
    ),
    (
        "search-estimator-other-space",
        lambda t, e: (
            [
                "search",
                "--checkpoint",
                e["ckpt"],
                "--estimator",
                e["hat_est"],
                "--latency-constraint",
                "5",
                "--out",
                str(t / "s"),
            ],
            t / "s",
        ),
        "trained on space 'hat_wmt14_en_de'",
    ),
    (
        "evaluate-arch-of-other-space",
        lambda t, e: (["evaluate", "--checkpoint", e["ckpt"], "--arch", e["hat_arch"]], None),
        "hat_wmt14_en_de",
    ),
    (
        "retrain-not-an-export",
        lambda t, e: (
            ["retrain", "--export-dir", e["fake_export"], "--data", e["data"], "--save-dir", str(t / "r")],
            t / "r",
        ),
        "not a checkpoint written by mos-nas export",
    ),
    (
        "gap-zero-sentences",
        lambda t, e: (
            [
                "gap",
                "--supernet",
                e["ckpt"],
                "--archs",
                str(t),
                "--standalone",
                str(t),
                "--data",
                e["data"],
                "--max-sentences",
                "0",
                "--out",
                str(t / "g"),
            ],
            t / "g",
        ),
        "--max-sentences must be at least 1, got 0",
    ),
    (
        "gap-missing-standalone",
        lambda t, e: (
            [
                "gap",
                "--supernet",
                e["ckpt"],
                "--archs",
                two_archs(t),
                "--standalone",
                str(t / "none"),
                "--data",
                e["data"],
                "--out",
                str(t / "g"),
            ],
            t / "g",
        ),
        "no standalone checkpoint for a0, a1",
    ),
    (
        "bleu-length-mismatch",
        lambda t, e: (["bleu", "--hyps", e["hyps"], "--refs", e["refs"]], None),
        "3 hypotheses but 2 references",
    ),
    (
        "prepare-data-missing-corpus",
        lambda t, e: (
            [
                "prepare-data",
                "--src",
                "en",
                "--tgt",
                "de",
                "--train",
                str(t / "none/train"),
                "--valid",
                str(t / "none/valid"),
                "--vocab-size",
                "100",
                "--out",
                str(t / "bin"),
            ],
            t / "bin",
        ),
        "train",
    ),
]


def two_archs(tmp: Path) -> str:
    """A directory with two tiny architectures, a0.yml and a1.yml."""
    for i, arch in enumerate((Architecture.smallest(TINY), Architecture.largest(TINY))):
        arch.save(tmp / "archs" / f"a{i}.yml")
    return str(tmp / "archs")


@pytest.fixture(scope="module")
def env(searchable_supernet, tmp_path_factory):
    root = tmp_path_factory.mktemp("bad_inputs")
    tiny_arch = root / "tiny.yml"
    Architecture.smallest(TINY).save(tiny_arch)
    hat_arch = root / "hat.yml"
    Architecture.smallest(SearchSpace.load("hat_wmt14_en_de")).save(hat_arch)
    ckpt = searchable_supernet["ckpt"]
    run_cli("export", "--checkpoint", str(ckpt), "--arch", str(tiny_arch), "--out", str(root / "export"))
    foreign = root / "foreign.csv"
    foreign.write_text("a,b\n1,2\n")
    fake = root / "fake_export"
    fake.mkdir()
    shutil.copy(ckpt, fake / "checkpoint.pt")
    (root / "h.txt").write_text("a\nb\nc\n")
    (root / "empty.txt").write_text("\n\n")
    (root / "r.txt").write_text("a\nb\n")
    # an estimator of the HAT space (from a tiny HAT-space CSV we write)
    hat_csv = root / "hat_space.csv"
    lines = [
        "encoder_embed_dim,encoder_layer_num,encoder_ffn_embed_dim_avg,encoder_self_attention_heads_avg,"
        "decoder_embed_dim,decoder_layer_num,decoder_ffn_embed_dim_avg,decoder_self_attention_heads_avg,"
        "decoder_ende_attention_heads_avg,decoder_arbitrary_ende_attn_avg,latency_mean_encoder,"
        "latency_mean_decoder,latency_std_encoder,latency_std_decoder"
    ]
    lines += [f"512,6,2048,8,512,{k % 6 + 1},2048,8,8,1,5,{10 + 3 * k},0.1,0.1" for k in range(20)]
    hat_csv.write_text("\n".join(lines) + "\n")
    run_cli(
        "train-estimator",
        "--data",
        str(hat_csv),
        "--space",
        "hat_wmt14_en_de",
        "--out",
        str(root / "hat.safetensors"),
        "--hidden",
        "8",
        "--steps",
        "50",
        "--no-hat-recipe",
    )
    return {
        "ckpt": str(ckpt),
        "ckpt_path": ckpt,
        "est": str(searchable_supernet["est"]),
        "hat_est": str(root / "hat.safetensors"),
        "tiny_arch": str(tiny_arch),
        "hat_arch": str(hat_arch),
        "export_ckpt": str(root / "export" / "checkpoint.pt"),
        "foreign": str(foreign),
        "fake_export": str(fake),
        "data": str(searchable_supernet["data"]),
        "hyps": str(root / "h.txt"),
        "refs": str(root / "r.txt"),
        "empty": str(root / "empty.txt"),
    }


def test_the_catalogue_has_at_least_twenty_cases():
    assert len(CASES) >= 20 and len({c[0] for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_input_exits_2_with_one_line_and_writes_nothing(case, env, tmp_path):
    _, build, expected = case
    argv, guarded = build(tmp_path, env)
    before = None
    if guarded is not None and Path(guarded).exists():
        before = Path(guarded).read_bytes()
    proc = run_cli_forked(*argv, cwd=REPO)
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-2000:])
    err = proc.stderr.strip()
    assert err.count("\n") == 0, err[-2000:]
    assert "Traceback" not in err and err.startswith(f"mos-nas {argv[0]}: error: ")
    assert expected in err, err
    if guarded is not None:
        if before is None:
            path = Path(guarded)
            assert not path.exists() or (path.is_dir() and not any(path.iterdir())), f"{path} was written"
        else:
            assert Path(guarded).read_bytes() == before


def test_fairseq_train_refuses_a_space_with_a_bad_key(tmp_path, synthetic_bin):
    """The fairseq entry point: a broken --search-space stops fairseq-train with the space's message."""
    from .conftest import TRAIN_ARGS

    bad = space_with(tmp_path, qkv_dim=0)
    args = [a for a in TRAIN_ARGS]
    args[args.index("--arch") + 1] = "supertransformer"
    proc = subprocess.run(
        [
            str(BIN / "fairseq-train"),
            str(synthetic_bin),
            *args,
            "--search-space",
            bad,
            "--max-update",
            "1",
            "--save-dir",
            str(tmp_path / "ckpt"),
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode != 0
    assert "qkv_dim" in proc.stderr
    assert not (tmp_path / "ckpt" / "checkpoint_last.pt").exists()
