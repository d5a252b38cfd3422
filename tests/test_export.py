"""Export of subnets (standard, layer-wise and neuron-wise MoS supernets) to plain fairseq checkpoints."""

import dataclasses
import json
import random
import subprocess
from pathlib import Path

import pytest
import torch
import yaml
from fairseq import checkpoint_utils, options
from fairseq.sequence_generator import SequenceGenerator
from fairseq_cli import generate

from mos_fairseq.base.errors import ArchError, CheckpointError, UserError
from mos_fairseq.export import export_subnet
from mos_fairseq.loading import describe_checkpoint, load_supernet
from mos_fairseq.translation.architecture import Architecture
from mos_fairseq.translation.export import stock_transformer_mismatch
from mos_fairseq.translation.space import SearchSpace

from .conftest import BIN, REPO, run_cli
from .conftest import TRAIN_ARGS as TRAIN

KINDS = ("none", "layer", "neuron")
HOMOGENEOUS = {
    "space": "tiny",
    "encoder": {"embed_dim": 32, "ffn_dim": [48, 48, 48], "heads": [4, 4, 4]},
    "decoder": {
        "embed_dim": 32,
        "ffn_dim": [64, 64],
        "self_heads": [2, 2],
        "cross_heads": [2, 2],
        "cross_span": [1, 1],
    },
}


@pytest.fixture(scope="module")
def supernets(synthetic_bin, tmp_path_factory) -> dict:
    """One 20-update sandwich-trained supernet per MoS kind (fairseq-train, same seed and data)."""
    root = tmp_path_factory.mktemp("mos_supernets")
    out = {}
    for kind in KINDS:
        save = root / kind
        cmd = [
            str(BIN / "fairseq-train"),
            str(synthetic_bin),
            *TRAIN,
            "--save-dir",
            str(save),
            "--max-update",
            "20",
            "--mos",
            kind,
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr[-3000:]
        out[kind] = save / "checkpoint_last.pt"
    return out


def _batches(task, split="test"):
    task.load_dataset(split)
    itr = task.get_batch_iterator(task.dataset(split), max_tokens=1500, seed=1).next_epoch_itr(shuffle=False)
    return list(itr)


def _beam_search(model, task, batches) -> dict:
    """fairseq's SequenceGenerator (what fairseq-generate runs), beam 4, over the whole test split."""
    generator = SequenceGenerator([model], task.target_dictionary, beam_size=4, max_len_b=30)
    out = {}
    for sample in batches:
        for sid, hyps in zip(sample["id"].tolist(), generator.generate([model], sample)):
            out[sid] = (hyps[0]["tokens"].tolist(), float(hyps[0]["score"]))
    return out


def _generate(data: Path, results: Path, *extra: str) -> dict:
    parser = options.get_generation_parser()
    args = options.parse_args_and_arch(
        parser,
        [
            str(data),
            "--gen-subset",
            "test",
            "--beam",
            "4",
            "--max-len-b",
            "30",
            "--batch-size",
            "32",
            "--cpu",
            "--results-path",
            str(results),
            *extra,
        ],
    )
    generate.main(args)
    lines = (results / "generate-test.txt").read_text().splitlines()
    return {l.split("\t")[0]: (float(l.split("\t")[1]), l.split("\t")[2]) for l in lines if l.startswith("H-")}


def _same_hypotheses(a: dict, b: dict) -> None:
    assert a.keys() == b.keys() and len(a) == 60
    for key in a:
        assert a[key][1] == b[key][1], key
        assert abs(a[key][0] - b[key][0]) < 2e-3, key


@pytest.mark.parametrize("kind", KINDS)
def test_ten_random_subnets_export_to_models_with_equal_logits_and_beams(kind, supernets, synthetic_bin, tmp_path):
    supernet, task, _ = load_supernet(supernets[kind], data=str(synthetic_bin))
    assert supernet.mos.kind == kind
    batches = _batches(task)
    sample = batches[0]
    space = supernet.space
    rng = random.Random(11)
    user_dir = ["--user-dir", str(REPO / "user_dir")]
    for i in range(10):
        arch = Architecture.random(space, rng)
        arch.save(tmp_path / f"arch{i}.yml")
        result = export_subnet(
            supernets[kind], tmp_path / f"arch{i}.yml", tmp_path / f"export{i}", data=str(synthetic_bin)
        )
        assert result.needs_user_dir == bool(stock_transformer_mismatch(arch))
        models, _, _ = checkpoint_utils.load_model_ensemble_and_task(
            [result.checkpoint], arg_overrides={"data": str(synthetic_bin)}
        )
        exported = models[0].eval()
        assert "Super" not in type(exported).__name__ and not any(
            "experts" in n for n, _ in exported.named_parameters()
        )
        with torch.no_grad():
            ours = supernet.bind(arch)(**sample["net_input"])[0]
            theirs = exported(**sample["net_input"])[0]
        assert (ours - theirs).abs().max() < 1e-5, f"arch {i}: {arch.describe()}"
        assert sum(p.numel() for p in exported.parameters()) == result.params == arch.num_params(len(task.src_dict))
        beams_super, beams_export = (
            _beam_search(supernet.bind(arch), task, batches),
            _beam_search(exported, task, batches),
        )
        assert beams_super.keys() == beams_export.keys() and len(beams_super) == 60
        for sid, (tokens, score) in beams_super.items():
            assert beams_export[sid][0] == tokens and abs(beams_export[sid][1] - score) < 1e-4, (i, sid)
        if i == 0:  # and the full fairseq-generate round trip from the files
            hyps_super = _generate(
                synthetic_bin,
                tmp_path / f"gen_super{i}",
                *user_dir,
                "--task",
                "supernet_translation",
                "--path",
                str(supernets[kind]),
                "--subnet",
                str(tmp_path / f"arch{i}.yml"),
            )
            hyps_export = _generate(synthetic_bin, tmp_path / f"gen_export{i}", *user_dir, "--path", result.checkpoint)
            _same_hypotheses(hyps_super, hyps_export)


@pytest.mark.parametrize("kind", ["neuron"])
def test_homogeneous_subnet_exports_to_stock_transformer_without_user_dir(kind, supernets, synthetic_bin, tmp_path):
    (tmp_path / "homog.yml").write_text(yaml.safe_dump(HOMOGENEOUS))
    out = tmp_path / "export"
    proc = run_cli(
        "export",
        "--checkpoint",
        str(supernets[kind]),
        "--arch",
        str(tmp_path / "homog.yml"),
        "--out",
        str(out),
        "--data",
        str(synthetic_bin),
    )
    assert "stock fairseq `transformer`" in proc.stdout
    assert sorted(p.name for p in out.iterdir()) == [
        "arch.yml",
        "checkpoint.pt",
        "dict.de.txt",
        "dict.en.txt",
        "export.json",
        "spm.model",
    ]
    state = torch.load(out / "checkpoint.pt")  # weights_only: plain containers only
    assert state["cfg"]["model"]["_name"] == "transformer"
    # a fresh process without our plugin: nothing of mos_fairseq may be imported
    # (--required-batch-size-multiple 1: without our plugin, the ve-fairseq wheel's batching drops sentences)
    cmd = [
        str(BIN / "fairseq-generate"),
        str(synthetic_bin),
        "--path",
        str(out / "checkpoint.pt"),
        "--gen-subset",
        "test",
        "--beam",
        "4",
        "--max-len-b",
        "30",
        "--batch-size",
        "32",
        "--cpu",
        "--required-batch-size-multiple",
        "1",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    stock = {
        l.split("\t")[0]: (float(l.split("\t")[1]), l.split("\t")[2])
        for l in proc.stdout.splitlines()
        if l.startswith("H-")
    }
    ours = _generate(
        synthetic_bin,
        tmp_path / "gen_super",
        "--user-dir",
        str(REPO / "user_dir"),
        "--task",
        "supernet_translation",
        "--path",
        str(supernets[kind]),
        "--subnet",
        str(tmp_path / "homog.yml"),
    )
    _same_hypotheses(ours, stock)
    info = json.loads(run_cli("info", "--checkpoint", str(out / "checkpoint.pt"), "--json").stdout)
    assert info["kind"] == "static transformer" and info["exported_at_update"] == 20
    assert info["params"] == json.loads((out / "export.json").read_text())["params"]


def test_info_tells_supernets_and_exports_apart(supernets, synthetic_bin, tmp_path):
    info = describe_checkpoint(supernets["layer"])
    assert info["kind"] == "supernet" and info["space"] == "tiny" and info["updates"] == 20
    assert info["mos"].startswith("layer-wise, 2 experts")
    assert set(info["best_valid_losses"]) == {"largest", "smallest"}
    assert info["best_valid_losses"]["largest"] < info["best_valid_losses"]["smallest"] < 10
    text = run_cli("info", "--checkpoint", str(supernets["none"])).stdout
    assert "kind: supernet" in text and "MoS: none" in text and "training updates: 20" in text
    Architecture.smallest(SearchSpace.load("tiny")).save(tmp_path / "small.yml")
    run_cli(
        "export",
        "--checkpoint",
        str(supernets["neuron"]),
        "--arch",
        str(tmp_path / "small.yml"),
        "--out",
        str(tmp_path / "small"),
        "--data",
        str(synthetic_bin),
    )
    text = run_cli("info", "--checkpoint", str(tmp_path / "small" / "checkpoint.pt")).stdout
    assert "kind: static subnet (model 'mos_static_transformer')" in text and "MoS: neuron (collapsed)" in text


def _refused(tmp_path, *args) -> str:
    out = tmp_path / "refused"
    proc = run_cli("export", *args, "--out", str(out), check=False, fork=True)
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert not out.exists() and not list(tmp_path.glob(".refused*"))
    return proc.stderr


def test_export_refuses_non_supernets_and_foreign_architectures(supernets, synthetic_bin, tmp_path):
    (tmp_path / "homog.yml").write_text(yaml.safe_dump(HOMOGENEOUS))
    run_cli(
        "export",
        "--checkpoint",
        str(supernets["none"]),
        "--arch",
        str(tmp_path / "homog.yml"),
        "--out",
        str(tmp_path / "plain"),
        "--data",
        str(synthetic_bin),
    )
    err = _refused(
        tmp_path, "--checkpoint", str(tmp_path / "plain" / "checkpoint.pt"), "--arch", str(tmp_path / "homog.yml")
    )
    assert "is not a supernet checkpoint (its model is 'transformer'" in err
    bad = json.loads(json.dumps(HOMOGENEOUS))
    bad["encoder"]["embed_dim"] = 40
    (tmp_path / "bad.yml").write_text(yaml.safe_dump(bad))
    err = _refused(
        tmp_path,
        "--checkpoint",
        str(supernets["layer"]),
        "--arch",
        str(tmp_path / "bad.yml"),
        "--data",
        str(synthetic_bin),
    )
    assert "encoder.embed_dim=40 is not in the space's choices [24, 32]" in err
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    err = _refused(tmp_path, "--checkpoint", str(tmp_path / "junk.pt"), "--arch", str(tmp_path / "homog.yml"))
    assert "is not a readable fairseq checkpoint" in err
    err = _refused(
        tmp_path,
        "--checkpoint",
        str(supernets["layer"]),
        "--arch",
        str(tmp_path / "homog.yml"),
        "--data",
        str(tmp_path / "nowhere"),
    )
    assert "not found" in err
    with pytest.raises(ArchError):
        export_subnet(supernets["layer"], tmp_path / "bad.yml", tmp_path / "x", data=str(synthetic_bin))
    with pytest.raises(CheckpointError):
        export_subnet(tmp_path / "plain" / "checkpoint.pt", tmp_path / "homog.yml", tmp_path / "x")


def test_export_keeps_an_existing_output_unless_overwrite(supernets, synthetic_bin, tmp_path):
    (tmp_path / "homog.yml").write_text(yaml.safe_dump(HOMOGENEOUS))
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    proc = run_cli(
        "export",
        "--checkpoint",
        str(supernets["none"]),
        "--arch",
        str(tmp_path / "homog.yml"),
        "--out",
        str(out),
        "--data",
        str(synthetic_bin),
        check=False,
        fork=True,
    )
    assert proc.returncode == 2 and "is not empty" in proc.stderr
    assert (out / "keep.txt").read_text() == "mine"
    run_cli(
        "export",
        "--checkpoint",
        str(supernets["none"]),
        "--arch",
        str(tmp_path / "homog.yml"),
        "--out",
        str(out),
        "--data",
        str(synthetic_bin),
        "--overwrite",
    )
    assert (out / "checkpoint.pt").is_file() and not (out / "keep.txt").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_gap_of_a_supernet_against_its_own_exports_is_zero_and_resumes(supernets, synthetic_bin, tmp_path, monkeypatch):
    """`mos-nas gap` with exports of the supernet's own subnets as the "standalone" models: equal
    losses and BLEU (MAE 0); a re-run takes every number from its cache; a checkpoint that changed
    is measured again."""
    import shutil

    import mos_fairseq.translation.gap as gap

    space = SearchSpace.load("tiny")
    rng = random.Random(5)
    archs, standalone = tmp_path / "archs", tmp_path / "standalone"
    for i in range(3):
        Architecture.random(space, rng).save(archs / f"a{i}.yml")
        result = export_subnet(
            supernets["neuron"], archs / f"a{i}.yml", tmp_path / f"export{i}", data=str(synthetic_bin)
        )
        (standalone / f"a{i}").mkdir(parents=True)
        shutil.copy(result.checkpoint, standalone / f"a{i}" / "checkpoint_best.pt")
    ckpt = tmp_path / "supernet.pt"
    shutil.copy(supernets["neuron"], ckpt)
    run_cli(
        "gap",
        "--supernet",
        str(ckpt),
        "--archs",
        str(archs),
        "--standalone",
        str(standalone),
        "--data",
        str(synthetic_bin),
        "--max-sentences",
        "40",
        "--out",
        str(tmp_path / "gap"),
    )  # fresh process
    first = json.loads((tmp_path / "gap" / "gap.json").read_text())
    assert first["max_sentences"] == 40
    stats = first["supernets"][str(ckpt)]
    assert stats["loss"]["mae"] < 1e-4 and stats["bleu"]["mae"] == 0.0 and stats["bleu"]["n"] == 3
    assert len({round(m["valid_loss"], 4) for m in first["standalone"].values()}) == 3  # three different subnets
    assert (tmp_path / "gap" / "gap.png").is_file() and len(list((tmp_path / "gap" / "cache").glob("*.json"))) == 6

    def no_measuring(*args, **kwargs):
        raise AssertionError("measured although cached")

    monkeypatch.setattr(gap, "supernet_metrics", no_measuring)
    monkeypatch.setattr(gap, "standalone_metrics", no_measuring)
    assert (
        gap.run_gap(
            [str(ckpt)], str(archs), str(standalone), str(synthetic_bin), str(tmp_path / "gap"), max_sentences=40
        )
        == first
    )
    assert any(
        stock_transformer_mismatch(Architecture.load(a, space)) for a in archs.glob("*.yml")
    )  # static models too

    entry = next(p for p in (tmp_path / "gap" / "cache").glob("*.json") if "standalone a1" in p.read_text())
    entry.write_text("{truncated")  # an unreadable entry is measured again and rewritten
    remeasured = []
    monkeypatch.setattr(gap, "standalone_metrics", lambda *a, **k: remeasured.append(a[0]) or first["standalone"]["a1"])
    assert (
        gap.run_gap(
            [str(ckpt)], str(archs), str(standalone), str(synthetic_bin), str(tmp_path / "gap"), max_sentences=40
        )
        == first
    )
    assert [p.parent.name for p in remeasured] == ["a1"] and json.loads(entry.read_text())["label"] == "standalone a1"

    calls = []
    monkeypatch.setattr(gap, "supernet_metrics", lambda *a, **k: calls.append(a[2]) or {"valid_loss": 1.0, "bleu": 2.0})
    shutil.copy(supernets["layer"], ckpt)  # another state under the same path
    again = gap.run_gap(
        [str(ckpt)], str(archs), str(standalone), str(synthetic_bin), str(tmp_path / "gap"), max_sentences=40
    )
    assert len(calls) == 3 and again["standalone"] == first["standalone"]
    assert again["supernets"][str(ckpt)]["loss"]["mae"] > 0


HUB_SCRIPT = """
import sys
import mos_fairseq  # registering the plugin is part of the import
from fairseq import hub_utils
d = sys.argv[1]
x = hub_utils.from_pretrained(d, "checkpoint.pt", d, bpe="sentencepiece", sentencepiece_model=d + "/spm.model")
hub = hub_utils.GeneratorHubInterface(x["args"], x["task"], x["models"])
print(type(hub.models[0]).__name__)
print(hub.translate(sys.argv[2], beam=4))
"""


def test_an_export_translates_through_fairseqs_hub_after_import(supernets, synthetic_bin, tmp_path):
    """`import mos_fairseq` is enough for fairseq's hub to load a `mos_static_transformer` export
    (before, it failed with KeyError "'_name'" unless the plugin was registered by hand), and the hub
    translates a sentence exactly as fairseq-generate's beam search does."""
    space = SearchSpace.load("tiny")
    rng = random.Random(3)
    arch = Architecture.random(space, rng)
    while not stock_transformer_mismatch(arch):
        arch = Architecture.random(space, rng)
    arch.save(tmp_path / "hetero.yml")
    result = export_subnet(supernets["neuron"], tmp_path / "hetero.yml", tmp_path / "export", data=str(synthetic_bin))
    assert result.model == "mos_static_transformer" and (tmp_path / "export" / "spm.model").is_file()
    line = (synthetic_bin.parent / "raw" / "test.en").read_text().splitlines()[0]
    proc = subprocess.run(
        [str(BIN / "python"), "-c", HUB_SCRIPT, str(tmp_path / "export"), line],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    model_name, translation = proc.stdout.strip().splitlines()[-2:]
    assert model_name == "StaticTransformerModel" and translation.strip()


def test_a_pre_norm_supernet_exports_with_its_last_layer_norms_and_retrains_pre_norm(synthetic_bin, tmp_path):
    """--encoder/decoder-normalize-before: stock and static exports reload from disk computing the subnet's
    logits (fairseq drops a last layer norm from a state without version buffers), and retraining keeps pre-norm."""
    from mos_fairseq.translation.retrain import RetrainJob, retrain_command

    save = tmp_path / "supernet"
    pre = ["--encoder-normalize-before", "--decoder-normalize-before"]
    cmd = [str(BIN / "fairseq-train"), str(synthetic_bin), *TRAIN, *pre, "--save-dir", str(save), "--max-update", "8"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    supernet, task, _ = load_supernet(str(save / "checkpoint_last.pt"), str(synthetic_bin))
    assert supernet.encoder.layer_norm is not None and supernet.decoder.layer_norm is not None
    (tmp_path / "homog.yml").write_text(yaml.safe_dump(HOMOGENEOUS))
    hetero = Architecture.random(supernet.space, random.Random(5))
    (tmp_path / "hetero.yml").write_text(yaml.safe_dump(hetero.to_dict()))
    batch = _batches(task)[0]["net_input"]
    for name, kind in (("homog", "TransformerModel"), ("hetero", "StaticTransformerModel")):
        out = tmp_path / f"export_{name}"
        run_cli(
            "export",
            "--checkpoint",
            str(save / "checkpoint_last.pt"),
            "--arch",
            str(tmp_path / f"{name}.yml"),
            "--out",
            str(out),
            "--data",
            str(synthetic_bin),
        )
        models, _, _ = checkpoint_utils.load_model_ensemble_and_task([str(out / "checkpoint.pt")])
        reloaded = models[0].eval()
        assert type(reloaded).__name__ == kind
        assert reloaded.encoder.layer_norm is not None and reloaded.decoder.layer_norm is not None
        arch = Architecture.load(str(tmp_path / f"{name}.yml"), supernet.space)
        with torch.no_grad():
            ours = supernet.bind(arch).eval()(**batch)[0]
            theirs = reloaded(**batch)[0]
        torch.testing.assert_close(ours, theirs, atol=1e-4, rtol=0)
        retrain = retrain_command(
            RetrainJob(data=str(synthetic_bin), save_dir=str(tmp_path / "r"), export_dir=str(out))
        )
        assert all(flag in retrain for flag in pre)
        with pytest.raises(UserError, match="--no-encoder-normalize-before: the export's architecture itself has"):
            retrain_command(
                RetrainJob(
                    data=str(synthetic_bin),
                    save_dir=str(tmp_path / "r"),
                    export_dir=str(out),
                    preset="multi30k",
                    extra=("--no-encoder-normalize-before",),
                )
            )


def test_retrain_turns_a_preset_switch_off_with_its_no_form(synthetic_bin, tmp_path):
    """fairseq switches have no off form: --no-KEY drops the preset's KEY: true, other --no-... options stay."""
    from mos_fairseq.translation.retrain import RetrainJob, retrain_command

    arch = tmp_path / "a.yml"
    arch.write_text(yaml.safe_dump(HOMOGENEOUS))
    job = RetrainJob(data=str(synthetic_bin), save_dir=str(tmp_path / "r"), arch=str(arch), preset="multi30k")
    assert "--encoder-normalize-before" in retrain_command(job)
    off = ("--no-encoder-normalize-before", "--no-epoch-checkpoints", "--lr", "1e-3")
    cmd = retrain_command(dataclasses.replace(job, extra=off))
    assert "--encoder-normalize-before" not in cmd and "--no-encoder-normalize-before" not in cmd
    assert "--decoder-normalize-before" in cmd and cmd[-3:] == ["--no-epoch-checkpoints", "--lr", "1e-3"]
