"""The BERT side: spaces and shapes, parameter counts, the supernet vs its exported subnets, the
cigar heuristic, and a tiny supernet trained with fairseq-train on masked-LM binaries."""

import csv
import json
import os
import random
import re
import subprocess
from types import SimpleNamespace

import pytest
import torch
from fairseq.data import Dictionary

from mos_fairseq.base.errors import ArchError, SpaceError, UserError
from mos_fairseq.bert.architecture import BertArch
from mos_fairseq.bert.export import probe_logit_diff, to_roberta
from mos_fairseq.bert.shape import cigar_groups, cigar_shape
from mos_fairseq.bert.space import BertSpace, layer_params
from mos_fairseq.bert.static import extract_subnet as extract_bert_subnet
from mos_fairseq.bert.supernet import BertSupernetConfig, BertSupernetModel
from mos_fairseq.core.cpu_bf16 import bf16_capability
from mos_fairseq.core.export import distinct_params as exported_params

from .conftest import BIN, REPO, run_cli


def predict_glue(checkpoint: str, glue: str, input_tsv: str, *options: str) -> subprocess.CompletedProcess:
    """``mos-nas predict-glue`` of a fine-tuned checkpoint on a TSV."""
    return run_cli("predict-glue", "--checkpoint", checkpoint, "--glue", glue, "--input", input_tsv, *options)


@pytest.fixture(scope="module")
def mlm_dictionary():
    d = Dictionary()
    for i in range(70):
        d.add_symbol(f"w{i}")
    d.add_symbol("<mask>")
    return d


def _supernet(space, mos, dictionary, seed=0):
    torch.manual_seed(seed)
    return BertSupernetModel(BertSupernetConfig(search_space=space, mos=mos), BertSpace.load(space), dictionary).eval()


@pytest.mark.parametrize("mos", ["none", "layer", "neuron"])
@pytest.mark.parametrize("space", ["bert_tiny_bottleneck", "bert_tiny_homogeneous"])
def test_exported_bert_subnets_equal_the_supernet_subnet(space, mos, mlm_dictionary):
    supernet = _supernet(space, mos, mlm_dictionary)
    task = SimpleNamespace(source_dictionary=mlm_dictionary, max_positions=lambda: supernet.max_positions())
    rng = random.Random(7)
    outputs = []
    for _ in range(10):
        arch = BertArch.random(supernet.space, rng)
        static = extract_bert_subnet(supernet, arch)
        assert probe_logit_diff(supernet.bind(arch), static, SimpleNamespace(source_dictionary=mlm_dictionary)) <= 1e-5
        assert exported_params(static) == arch.num_params(len(mlm_dictionary))
        if supernet.space.kind == "homogeneous":
            roberta, cfg = to_roberta(static, task, supernet.cfg)
            assert cfg["_name"] == "roberta"
            assert (
                probe_logit_diff(supernet.bind(arch), roberta, SimpleNamespace(source_dictionary=mlm_dictionary))
                <= 1e-5
            )
            assert exported_params(roberta) == arch.num_params(len(mlm_dictionary))
        with torch.no_grad():
            outputs.append(supernet.bind(arch)(torch.arange(4, 20).view(2, 8))[0])
    # the subnets really differ (the comparison above is not between constant outputs)
    assert sum(not torch.allclose(outputs[0], o) for o in outputs[1:]) >= 5


def test_parameter_count_matches_supershaper_formula_and_fairseq_roberta_base():
    space = BertSpace.load("supershaper")
    for h in space.hidden:
        assert layer_params(h, 3072) == 4 * h * h + 6153 * h + 3072
    # the largest homogeneous subnet is BERT-base: our count equals fairseq's roberta_base numel
    from fairseq.models.roberta import RobertaModel
    from fairseq.models.roberta.model import base_architecture

    homogeneous = BertSpace.load("bert_homogeneous")
    d = Dictionary()
    for i in range(28996 - len(d)):
        d.add_symbol(f"t{i}")
    args = SimpleNamespace(max_positions=512)
    base_architecture(args)
    model = RobertaModel.build_model(args, SimpleNamespace(source_dictionary=d, max_positions=lambda: 512))
    assert exported_params(model) == BertArch.largest(homogeneous).num_params(len(d)) == 108_340_804


def test_cigar_shapes_hit_the_target_and_keep_the_profile():
    space = BertSpace.load("supershaper")
    for target in (45_000_000, 60_000_000, 80_000_000, 100_000_000):
        arch = cigar_shape(space, target)
        assert abs(arch.num_params() - target) <= 0.02 * target
        first, small, moderate, last = ([arch.hidden[i] for i in g] for g in cigar_groups(12))
        assert max(small) <= min(moderate) and max(moderate) <= first[0] <= last[0] and small[0] < last[0]
        if target < 100_000_000:  # strict where the space allows it (at 100M the last layer is at 768 already)
            assert max(small) < min(moderate) and first[0] < last[0], arch.hidden
    out = json.loads(run_cli("shape", "--space", "supershaper", "--params", "60M", "--json").stdout)
    assert isinstance(out["params"], int) and abs(out["params"] - 60_000_000) <= 1_200_000 and len(out["shape"]) == 12
    with pytest.raises(UserError, match="within 2%"):
        cigar_shape(space, 10_000_000)
    with pytest.raises(UserError, match="homogeneous"):
        cigar_shape(BertSpace.load("bert_homogeneous"), 60_000_000)


def test_bert_spaces_and_architectures_refuse_bad_input(tmp_path):
    space = BertSpace.load("supershaper")
    with pytest.raises(ArchError, match=r"hidden\[1\]=100 is not in the space's choices"):
        BertArch.from_dict({"hidden": [768, 100] + [120] * 10}, space)
    with pytest.raises(ArchError, match="layers=3"):
        BertArch.from_dict({"hidden": [768, 120, 120]}, space)
    homogeneous = BertSpace.load("bert_homogeneous")
    with pytest.raises(ArchError, match="ffn"):
        BertArch.from_dict({"layers": 12, "hidden": 768, "heads": 12, "ffn_ratio": 2.2}, homogeneous)
    with pytest.raises(ArchError, match="for space 'supershaper'"):
        BertArch.from_dict({"space": "supershaper", "hidden": [768] * 12}, homogeneous)
    with pytest.raises(SpaceError, match="not divisible by 12 heads"):
        BertSpace.from_dict({**space.to_dict(), "hidden": [100, 768]})
    with pytest.raises(SpaceError, match="unknown key"):
        BertSpace.from_dict({**space.to_dict(), "colour": "red"})


@pytest.fixture(scope="module")
def mlm_bin(synthetic_bin, tmp_path_factory):
    """Masked-LM binaries from the English side of the synthetic corpus (``mos-nas prepare-mlm``)."""
    raw = synthetic_bin.parent / "raw"
    out = tmp_path_factory.mktemp("mlm") / "bin"
    run_cli(
        "prepare-mlm",
        "--train",
        str(raw / "train.en"),
        "--valid",
        str(raw / "valid.en"),
        "--vocab-size",
        "120",
        "--out",
        str(out),
    )
    return out


def test_prepare_mlm_joins_training_files_and_reuses_a_vocabulary(synthetic_bin, mlm_bin, tmp_path):
    from fairseq.data import data_utils

    raw = synthetic_bin.parent / "raw"
    lines = (raw / "train.en").read_text().splitlines(keepends=True)
    (tmp_path / "a.txt").write_text("".join(lines[:100]))
    (tmp_path / "b.txt").write_text("".join(lines[100:160]))
    # several --train files, one vocabulary: that of an earlier output, byte for byte
    out = tmp_path / "bin_ab"
    run_cli(
        "prepare-mlm",
        "--train",
        str(tmp_path / "a.txt"),
        str(tmp_path / "b.txt"),
        "--valid",
        str(raw / "valid.en"),
        "--vocabulary-from",
        str(mlm_bin),
        "--out",
        str(out),
    )
    for name in ("dict.txt", "spm.model"):
        assert (out / name).read_bytes() == (mlm_bin / name).read_bytes()
    train = data_utils.load_indexed_dataset(str(out / "train"), Dictionary.load(str(out / "dict.txt")))
    assert len(train) == 160  # both files, in order: the first sentence of b.txt follows the last of a.txt
    dictionary = Dictionary.load(str(out / "dict.txt"))
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=str(out / "spm.model"))
    assert dictionary.string(train[100][:-1]) == " ".join(sp.encode(lines[100].rstrip("\n"), out_type=str))
    # a vocabulary given twice over, or a directory without one, is refused in one line; nothing written
    for extra, message in (
        (["--vocabulary-from", str(mlm_bin), "--vocab-size", "100"], "not both"),
        (["--vocabulary-from", str(tmp_path)], "has no spm.model"),
        ([], "--vocab-size must be at least 8"),
    ):
        proc = run_cli(
            "prepare-mlm",
            "--train",
            str(tmp_path / "a.txt"),
            "--valid",
            str(raw / "valid.en"),
            *extra,
            "--out",
            str(tmp_path / "refused"),
            check=False,
        )
        assert proc.returncode != 0 and message in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
        assert not (tmp_path / "refused").exists()


def _train_bert(data, save_dir, space, mos, updates, extra=()):
    cmd = [
        str(BIN / "fairseq-train"),
        str(data),
        "--user-dir",
        str(REPO / "user_dir"),
        "--task",
        "supernet_masked_lm",
        "--arch",
        "bert_supernet",
        "--search-space",
        space,
        "--mos",
        mos,
        "--criterion",
        "masked_lm",
        "--supernet-sampling",
        "sandwich",
        "--tokens-per-sample",
        "64",
        "--max-positions",
        "64",
        "--sample-break-mode",
        "none",
        "--optimizer",
        "adam",
        "--lr",
        "2e-3",
        "--lr-scheduler",
        "inverse_sqrt",
        "--warmup-updates",
        "10",
        "--max-tokens",
        "1024",
        "--max-update",
        str(updates),
        "--save-dir",
        str(save_dir),
        "--no-epoch-checkpoints",
        "--seed",
        "1",
        "--cpu",
        "--num-workers",
        "0",
        "--log-format",
        "simple",
        "--log-interval",
        "10",
        "--validate-interval-updates",
        str(updates),
        *extra,
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def tiny_bert(mlm_bin, tmp_path_factory):
    """A neuron-MoS supernet of the tiny bottleneck space, 30 sandwich updates with fairseq-train."""
    root = tmp_path_factory.mktemp("bert")
    out = _train_bert(mlm_bin, root / "ckpt", "bert_tiny_bottleneck", "neuron", 30)
    return root / "ckpt" / "checkpoint_last.pt", out


def test_tiny_bert_supernet_trains_30_updates_and_exports(tiny_bert, tmp_path):
    ckpt, out = tiny_bert
    losses = [float(line.split("loss=")[1].split(",")[0]) for line in out.splitlines() if "train_inner" in line]
    assert len(losses) == 3 and losses[-1] < losses[0]
    valid = [line for line in out.splitlines() if "valid on 'valid' subset" in line]
    assert valid and "loss_largest" in valid[-1] and "loss_smallest" in valid[-1] and "num_updates 30" in valid[-1]
    # mos-nas evaluate scores a subnet on fairseq-train's validation masks: the same loss as logged
    space = BertSpace.load("bert_tiny_bottleneck")
    for which, arch in (("largest", BertArch.largest(space)), ("smallest", BertArch.smallest(space))):
        arch.save(tmp_path / f"{which}.yml")
        res = json.loads(
            run_cli("evaluate", "--checkpoint", str(ckpt), "--arch", str(tmp_path / f"{which}.yml"), "--json").stdout
        )
        logged = float(valid[-1].split(f"| loss_{which} ")[1].split(" ")[0])
        assert abs(res["valid_loss"] - logged) <= 6e-4, (which, res["valid_loss"], logged)
    arch = tmp_path / "shape.yml"
    BertArch.random(BertSpace.load("bert_tiny_bottleneck"), random.Random(3)).save(arch)
    summary = run_cli("export", "--checkpoint", str(ckpt), "--arch", str(arch), "--out", str(tmp_path / "exp")).stdout
    assert "mos_static_bert" in summary
    record = json.loads((tmp_path / "exp" / "export.json").read_text())
    assert record["max_logit_diff"] <= 1e-5 and record["mos"] == "neuron"
    info = json.loads(run_cli("info", "--checkpoint", str(tmp_path / "exp" / "checkpoint.pt"), "--json").stdout)
    assert info["kind"] == "static BERT subnet" and info["params"] == record["params"]


def test_homogeneous_bert_subnet_exports_to_stock_roberta_and_fine_tunes(mlm_bin, synthetic_bin, tmp_path):
    _train_bert(mlm_bin, tmp_path / "ckpt", "bert_tiny_homogeneous", "layer", 10)
    arch = tmp_path / "a.yml"
    arch.write_text("space: bert_tiny_homogeneous\nlayers: 2\nhidden: 36\nheads: 4\nffn_ratio: 2.5\n")
    run_cli(
        "export",
        "--checkpoint",
        str(tmp_path / "ckpt" / "checkpoint_last.pt"),
        "--arch",
        str(arch),
        "--out",
        str(tmp_path / "exp"),
    )
    # stock fairseq, without our plugin, loads it and scores the valid split with masked_lm
    code = (
        "import sys, torch\n"
        "from fairseq import checkpoint_utils\n"
        "models, cfg, task = checkpoint_utils.load_model_ensemble_and_task([sys.argv[1]])\n"
        "m = models[0].eval()\n"
        "print(type(m).__name__, cfg.model._name, cfg.task._name, sum(p.numel() for p in m.parameters()))\n"
    )
    proc = subprocess.run(
        [str(BIN / "python"), "-c", code, str(tmp_path / "exp" / "checkpoint.pt")],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    name, model_name, task_name, params = proc.stdout.split()[-4:]
    assert (name, model_name, task_name) == ("RobertaModel", "roberta", "masked_lm")
    record = json.loads((tmp_path / "exp" / "export.json").read_text())
    assert record["model"] == "roberta" and not record["needs_user_dir"] and record["max_logit_diff"] <= 1e-5
    assert int(params) == record["params"]  # parameters() yields the tied LM-head weight once, as we count

    # fine-tune the export with stock fairseq sentence_prediction on a GLUE-format (SST-2 layout) task
    lines = (synthetic_bin.parent / "raw" / "train.en").read_text().splitlines()[:240]
    median = sorted(len(line.split()) for line in lines)[len(lines) // 2]
    rows = ["sentence\tlabel"] + [f"{line}\t{int(len(line.split()) > median)}" for line in lines]
    (tmp_path / "train.tsv").write_text("\n".join(rows[:201]) + "\n")
    (tmp_path / "dev.tsv").write_text("\n".join(rows[:1] + rows[201:]) + "\n")
    run_cli(
        "prepare-glue",
        "--task",
        "SST-2",
        "--train",
        str(tmp_path / "train.tsv"),
        "--dev",
        str(tmp_path / "dev.tsv"),
        "--export-dir",
        str(tmp_path / "exp"),
        "--out",
        str(tmp_path / "glue"),
    )
    env = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}"}
    args = [
        "bash",
        str(tmp_path / "glue" / "finetune.sh"),
        "--max-update",
        "6",
        "--batch-size",
        "16",
        "--cpu",
        "--num-workers",
        "0",
        "--save-dir",
        str(tmp_path / "ft"),
        "--log-format",
        "simple",
        "--log-interval",
        "1",
        "--lr",
        "1e-3",
        "--warmup-updates",
        "1",
        "--total-num-update",
        "8",
    ]
    proc = subprocess.run(args, capture_output=True, text=True, env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    valid = [line for line in (proc.stdout + proc.stderr).splitlines() if "valid on 'valid' subset" in line]
    assert valid and "accuracy" in valid[-1]
    assert "Loaded checkpoint" in proc.stdout + proc.stderr and (tmp_path / "ft" / "checkpoint_last.pt").is_file()
    assert "loading pretrained model from" in proc.stdout + proc.stderr
    # a second launch resumes from the save dir's checkpoint_last.pt, not from the export
    args[args.index("--max-update") + 1] = "8"
    proc = subprocess.run(args, capture_output=True, text=True, env=env, cwd=tmp_path)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0 and "loading pretrained model from" not in out, out[-3000:]
    assert f"Loaded checkpoint {tmp_path / 'ft' / 'checkpoint_last.pt'} (epoch" in out and "num_updates=8" in out
    # predict-glue labels raw sentences as fairseq's validation did: the same accuracy on the dev TSV
    logged = float(re.findall(r"valid on 'valid' subset .*?\| accuracy ([0-9.]+)", out)[-1])
    scored = json.loads(
        predict_glue(
            str(tmp_path / "ft" / "checkpoint_last.pt"),
            str(tmp_path / "glue"),
            str(tmp_path / "dev.tsv"),
            "--task",
            "SST-2",
            "--json",
        ).stdout
    )
    assert scored["sentences"] == len(rows) - 201 and abs(scored["accuracy"] - logged) <= 0.05 + 1e-9
    blind = tmp_path / "blind.tsv"
    blind.write_text("sentence\n" + "".join(row.split("\t")[0] + "\n" for row in rows[201:211]))
    predict_glue(
        str(tmp_path / "ft" / "checkpoint_last.pt"),
        str(tmp_path / "glue"),
        str(blind),
        "--header",
        "--out",
        str(tmp_path / "pred.txt"),
    )
    assert (tmp_path / "pred.txt").read_text().split() and set((tmp_path / "pred.txt").read_text().split()) <= {
        "0",
        "1",
    }
    assert len((tmp_path / "pred.txt").read_text().splitlines()) == 10
    # the labels agree with the scored dev predictions of the same sentences
    dev_pred = tmp_path / "dev_pred.txt"
    predict_glue(
        str(tmp_path / "ft" / "checkpoint_last.pt"),
        str(tmp_path / "glue"),
        str(tmp_path / "dev.tsv"),
        "--task",
        "SST-2",
        "--out",
        str(dev_pred),
    )
    assert dev_pred.read_text().splitlines()[:10] == (tmp_path / "pred.txt").read_text().splitlines()
    # CoLA's layout (no header, label in column 2, sentence in column 4) selects on Matthews correlation
    for split, part in (("train", rows[1:201]), ("dev", rows[201:])):
        cola = "".join(f"src\t{r.split(chr(9))[1]}\t\t{r.split(chr(9))[0]}\n" for r in part)
        (tmp_path / f"cola_{split}.tsv").write_text(cola)
    run_cli(
        "prepare-glue",
        "--task",
        "CoLA",
        "--train",
        str(tmp_path / "cola_train.tsv"),
        "--dev",
        str(tmp_path / "cola_dev.tsv"),
        "--export-dir",
        str(tmp_path / "exp"),
        "--out",
        str(tmp_path / "cola"),
    )
    assert json.loads((tmp_path / "cola" / "glue.json").read_text())["metric"] == "mcc"
    cola_args = [str(tmp_path / "cola" / "finetune.sh"), *args[2:]]
    cola_args[cola_args.index("--save-dir") + 1] = str(tmp_path / "ft_cola")
    cola_args[cola_args.index("--max-update") + 1] = "4"
    proc = subprocess.run(["bash", *cola_args], capture_output=True, text=True, env=env, cwd=tmp_path)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0 and re.search(r"valid on 'valid' subset .*\| mcc -?[0-9.]+", out), out[-3000:]
    mcc = float(re.findall(r"valid on 'valid' subset .*?\| mcc (-?[0-9.]+)", out)[-1])
    scored = json.loads(
        predict_glue(
            str(tmp_path / "ft_cola" / "checkpoint_last.pt"),
            str(tmp_path / "cola"),
            str(tmp_path / "cola_dev.tsv"),
            "--task",
            "CoLA",
            "--json",
        ).stdout
    )
    assert abs(100 * scored["mcc"] - mcc) <= 0.05 + 1e-9
    # --bf16 (mixed precision on CPU) continues the fp32 fine-tuning of the stock roberta
    if bf16_capability() is not None:
        args[args.index("--max-update") + 1] = "10"
        proc = subprocess.run([*args, "--bf16"], capture_output=True, text=True, env=env, cwd=tmp_path)
        out = proc.stdout + proc.stderr
        assert proc.returncode == 0 and "bf16 mixed precision on CPU" in out and "num_updates=10" in out, out[-3000:]
        state = torch.load(tmp_path / "ft" / "checkpoint_last.pt")
        assert all(t.dtype == torch.float32 for t in state["model"].values() if t.is_floating_point())


def test_bert_search_on_perplexity_returns_a_shape_within_the_parameter_constraint(tiny_bert, mlm_bin, tmp_path):
    ckpt, _ = tiny_bert
    space = BertSpace.load("bert_tiny_bottleneck")
    vocab = len(Dictionary.load(str(mlm_bin / "dict.txt"))) + 1  # + <mask>
    sizes = sorted(BertArch.random(space, random.Random(i)).num_params(vocab) for i in range(50))
    limit = sizes[len(sizes) // 3]
    run_cli(
        "search",
        "--checkpoint",
        str(ckpt),
        "--param-constraint",
        str(limit),
        "--iterations",
        "3",
        "--population",
        "10",
        "--parents",
        "4",
        "--mutation",
        "4",
        "--crossover",
        "4",
        "--valid-max-sentences",
        "40",
        "--seed",
        "1",
        "--out",
        str(tmp_path / "s"),
        "--no-progress",
    )
    (pick,) = json.loads((tmp_path / "s" / "summary.json").read_text())
    assert pick["params"] <= limit and pick["hat_arch"] is None
    arch = BertArch.load(tmp_path / "s" / pick["arch"], space)
    assert arch.num_params(vocab) == pick["params"]
    # the fitness is the subnet's masked-LM loss: mos-nas evaluate gives the same number
    ev = json.loads(
        run_cli(
            "evaluate",
            "--checkpoint",
            str(ckpt),
            "--arch",
            str(tmp_path / "s" / pick["arch"]),
            "--valid-max-sentences",
            "40",
            "--json",
        ).stdout
    )
    assert ev["valid_loss"] == pytest.approx(pick["valid_loss"], abs=1e-5) and "bleu" not in ev
    assert 2 ** ev["valid_loss"] == pytest.approx(ev["valid_ppl"])


def test_bert_latency_is_measured_estimated_and_constrains_the_search(tiny_bert, mlm_bin, tmp_path):
    ckpt, _ = tiny_bert
    space = BertSpace.load("bert_tiny_bottleneck")
    vocab = len(Dictionary.load(str(mlm_bin / "dict.txt"))) + 1  # + <mask>
    lat = tmp_path / "lat" / "bert.csv"
    measure = [
        "measure-latency",
        "--space",
        "bert_tiny_bottleneck",
        "--data",
        str(mlm_bin),
        "--n-archs",
        "30",
        "--repeats",
        "5",
        "--warmup",
        "1",
        "--seq-len",
        "64",
        "--threads",
        "1",
        "--no-progress",
        "--out",
        str(lat),
    ]
    run_cli(*measure)
    with open(lat, newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 30 and list(rows[0])[3:7] == ["hidden_1", "hidden_2", "hidden_3", "model_params"]
    for row in rows:
        arch = BertArch.from_json(row["arch"], space)
        assert int(row["params"]) == arch.num_params(vocab) == float(row["model_params"])
        assert [float(row[f"hidden_{i + 1}"]) for i in range(3)] == list(arch.hidden)
        assert float(row["latency_mean_encoder"]) > 0 and float(row["latency_mean_decoder"]) == 0.0
    side = json.loads(lat.with_suffix(".json").read_text())
    assert side["protocol"]["src_len"] == 64 and side["protocol"]["vocab_size"] == vocab
    # a CSV of one space is never continued with another's columns
    other = run_cli(*[a if a != "bert_tiny_bottleneck" else "bert_tiny_homogeneous" for a in measure], check=False)
    assert other.returncode == 2 and "not a mos-nas latency CSV of this space" in other.stderr
    assert len(lat.read_text().splitlines()) == 31

    est = tmp_path / "est.safetensors"
    run_cli(
        "train-estimator", "--data", str(lat), "--out", str(est), "--hidden", "16", "--steps", "200", "--no-hat-recipe"
    )
    limit = sorted(float(r["latency_mean_encoder"]) for r in rows)[15]
    run_cli(
        "search",
        "--checkpoint",
        str(ckpt),
        "--estimator",
        str(est),
        "--latency-constraint",
        f"{limit:.4f}",
        "--iterations",
        "2",
        "--population",
        "10",
        "--parents",
        "4",
        "--mutation",
        "4",
        "--crossover",
        "4",
        "--valid-max-sentences",
        "40",
        "--seed",
        "1",
        "--out",
        str(tmp_path / "s"),
        "--no-progress",
    )
    (pick,) = json.loads((tmp_path / "s" / "summary.json").read_text())
    assert pick["predicted_latency_ms"] <= limit
    predicted = json.loads(
        run_cli(
            "predict-latency", "--estimator", str(est), "--arch", str(tmp_path / "s" / pick["arch"]), "--json"
        ).stdout
    )
    assert predicted["latency_ms"] == pytest.approx(pick["predicted_latency_ms"], abs=1e-3)


@pytest.mark.parametrize("kind", ["gbt", "mlp"])
def test_loss_predictor_json_reproduces_scikit_learn(kind, tmp_path):
    import numpy as np

    from mos_fairseq.base.json_models import fit_sklearn, to_json_model
    from mos_fairseq.search.predictor import LossPredictor

    rng = np.random.default_rng(0)
    x = rng.uniform(size=(120, 12))
    y = 3 + x[:, 0] * x[:, 1] - 0.5 * x[:, 11] + 0.05 * rng.normal(size=120)
    model = fit_sklearn(kind, x, y, seed=1)
    pred = LossPredictor(to_json_model(kind, model), {"space": "bert_tiny_bottleneck"})
    pred.save(tmp_path / "p.json")
    loaded = LossPredictor.load(tmp_path / "p.json")
    assert np.allclose(loaded.predict(x), model.predict(x), atol=1e-9)
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(UserError, match="not a loss predictor"):
        LossPredictor.load(tmp_path / "bad.json")


def test_perplexity_predictor_trains_reports_and_drives_the_search(tiny_bert, tmp_path):
    ckpt, _ = tiny_bert
    out = run_cli(
        "train-predictor",
        "--checkpoint",
        str(ckpt),
        "--n",
        "40",
        "--valid-max-sentences",
        "40",
        "--out",
        str(tmp_path / "pred.json"),
        "--report",
        str(tmp_path / "report.json"),
    ).stdout
    report = json.loads((tmp_path / "report.json").read_text())
    assert set(report["models"]) == {"gbt", "mlp", "least_squares"} and report["n_test"] == 8
    assert all(-1 <= m["kendall_tau"] <= 1 and m["rmse"] >= 0 for m in report["models"].values())
    assert "held-out 8" in out
    run_cli(
        "search",
        "--checkpoint",
        str(ckpt),
        "--predictor",
        str(tmp_path / "pred.json"),
        "--param-constraint",
        "45000",
        "--iterations",
        "3",
        "--population",
        "10",
        "--parents",
        "4",
        "--mutation",
        "4",
        "--crossover",
        "4",
        "--valid-max-sentences",
        "40",
        "--out",
        str(tmp_path / "s"),
        "--no-progress",
    )
    (pick,) = json.loads((tmp_path / "s" / "summary.json").read_text())
    assert pick["params"] <= 45000 and pick["evaluated_valid_loss"] > 0
    stats = json.loads((tmp_path / "s" / "search_stats.json").read_text())
    assert stats["evaluation_seconds"] == 0  # candidates were ranked by the predictor, not run


@pytest.mark.parametrize("config", ["dict", "namespace"])
def test_finetune_command_reads_max_positions_from_an_export_or_a_fairseq_train_checkpoint(
    tmp_path, monkeypatch, config
):
    """An export stores its model config as a dict; fairseq-train's own roberta checkpoints (a model
    pretrained alone) as an argparse Namespace: prepare-glue fine-tunes from either."""
    from argparse import Namespace

    from mos_fairseq.data.prepare_glue import finetune_command

    arch = {"space": "bert_cpu_homogeneous", "layers": 2, "hidden": 64, "heads": 2, "ffn_ratio": 4}
    (tmp_path / "export.json").write_text(json.dumps({"model": "roberta", "arch": arch}))
    model = {"max_positions": 96} if config == "dict" else Namespace(max_positions=96)
    monkeypatch.setattr("mos_fairseq.core.checkpoints.read_checkpoint", lambda path: {"cfg": {"model": model}})
    cmd = finetune_command(tmp_path / "glue", tmp_path, num_classes=2)
    assert cmd[cmd.index("--max-positions") + 1] == "96"
    assert cmd[cmd.index("--encoder-ffn-embed-dim") + 1] == "256"
