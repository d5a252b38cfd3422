"""The BLEU wrapper: sacreBLEU on known files, HAT's compound splitting, fairseq-generate parsing."""

import json

import pytest
import sacrebleu

from mos_fairseq.base.errors import DataError
from mos_fairseq.translation.bleu import compound_split, parse_generate_output, score, target_lang_of

from .conftest import run_cli

REFS = [
    "Das Haus-Boot liegt am Ufer.",
    "Er sagte, dass er morgen kommt.",
    "Die Katze schläft auf dem Sofa.",
    "Wir haben das Software-Update installiert.",
    "Es regnet seit drei Tagen.",
]
HYPS = [
    "Das Hausboot liegt am Ufer.",
    "Er sagte, er kommt morgen.",
    "Die Katze schläft auf dem Sofa.",
    "Wir haben das Software-Update installiert.",
    "Es regnet drei Tage.",
]


def test_detokenised_bleu_equals_sacrebleu_on_known_files(tmp_path):
    result = score(HYPS, REFS, "de")
    expected = sacrebleu.corpus_bleu(HYPS, [REFS])
    assert result.sacrebleu == pytest.approx(expected.score, abs=1e-9)
    assert "tok:13a" in result.signature and result.sentences == 5
    assert score(REFS, REFS).sacrebleu == pytest.approx(100.0)
    (tmp_path / "h.txt").write_text("\n".join(HYPS) + "\n")
    (tmp_path / "r.txt").write_text("\n".join(REFS) + "\n")
    out = json.loads(
        run_cli("bleu", "--hyps", str(tmp_path / "h.txt"), "--refs", str(tmp_path / "r.txt"), "--json").stdout
    )
    assert out["bleu"] == pytest.approx(expected.score, abs=1e-9) and out["sentences"] == 5


def test_tokenised_bleu_splits_german_compounds_like_hat():
    assert (
        compound_split("Das Haus-Boot , Software-Update")
        == "Das Haus ##AT##-##AT## Boot , Software ##AT##-##AT## Update"
    )
    assert compound_split("a - b") == "a - b"
    split = [compound_split(s) for s in ("Das Haus-Boot liegt am Ufer .",)]
    manual = sacrebleu.corpus_bleu(["Das Hausboot liegt am Ufer ."], [split], tokenize="none", force=True).score
    assert score(
        ["Das Hausboot liegt am Ufer."], ["Das Haus-Boot liegt am Ufer."], "de"
    ).tokenized_bleu == pytest.approx(manual)
    assert score(HYPS, REFS, "en").tokenized_bleu != score(HYPS, REFS, "de").tokenized_bleu


def test_target_language_comes_from_the_binaries_when_the_checkpoint_has_none(tmp_path, monkeypatch):
    # fairseq-train without --target-lang infers the pair from the binaries and stores target_lang None;
    # without the language, German compound splitting (HAT-comparable BLEU) was silently skipped
    import mos_fairseq.core.checkpoints as checkpoints

    task = {"_name": "translation", "target_lang": None}
    monkeypatch.setattr(checkpoints, "read_checkpoint", lambda path: {"cfg": {"task": task}})
    data = tmp_path / "bin"
    data.mkdir()
    for name in ("dict.en.txt", "dict.de.txt", "train.en-de.en.bin", "train.en-de.de.bin"):
        (data / name).write_text("")
    assert target_lang_of("checkpoint.pt") == ""
    assert target_lang_of("checkpoint.pt", str(data)) == "de"
    task["target_lang"] = "fr"
    assert target_lang_of("checkpoint.pt", str(data)) == "fr"  # the checkpoint's own setting wins


def test_generate_output_parsing_orders_by_id_and_refuses_gaps():
    text = "\n".join(
        [
            "S-1\tsource one",
            "T-1\tref one",
            "H-1\t-0.5\thyp one",
            "D-1\t-0.5\thyp one",
            "P-1\t-0.1 -0.2",
            "S-0\tsource zero",
            "T-0\tref zero",
            "H-0\t-0.3\thyp zero",
            "Generate test with beam=4: BLEU4 = 1.0",
        ]
    )
    assert parse_generate_output(text) == (["hyp zero", "hyp one"], ["ref zero", "ref one"])
    with pytest.raises(DataError, match="no hypothesis for 1 sentence"):
        parse_generate_output("T-0\tref\nT-1\tref two\nH-0\t-1\thyp")
    with pytest.raises(DataError, match="no references"):
        parse_generate_output("H-0\t-1\thyp")
    with pytest.raises(DataError, match="3 hypotheses but 2 references"):
        score(["a", "b", "c"], ["a", "b"])


def test_batching_keeps_every_sentence():
    """ve-fairseq's compiled batch_by_size drops the last batch's remainder; register() repairs it."""
    import numpy as np
    from fairseq.data import data_utils

    from mos_fairseq.plugin import register

    register()
    sizes = np.random.RandomState(0).randint(5, 50, size=100)
    idx = np.argsort(sizes, kind="mergesort")
    for kw in (
        dict(max_sentences=64, required_batch_size_multiple=8),
        dict(max_tokens=1024, required_batch_size_multiple=8),
        dict(max_sentences=10, required_batch_size_multiple=8),
    ):
        batches = data_utils.batch_by_size(idx, lambda i: sizes[i], **kw)
        assert sorted(np.concatenate(batches).tolist()) == list(range(100))
        assert all(len(b) <= kw.get("max_sentences", 100) for b in batches)
        if "max_tokens" in kw:
            assert all(len(b) * max(sizes[b]) <= 1024 for b in batches)


def test_gap_statistics_on_fixed_numbers():
    from mos_fairseq.translation.gap import gap_stats, gap_table

    supernet = [20.0, 22.0, 25.0, 24.0]
    standalone = [21.0, 23.5, 26.0, 27.0]  # 5 concordant pairs, 1 discordant
    stats = gap_stats(supernet, standalone)
    assert stats["mae"] == pytest.approx((1 + 1.5 + 1 + 3) / 4)
    assert stats["kendall_tau"] == pytest.approx((5 - 1) / 6)
    assert gap_stats([1, 2, 3], [3, 2, 1])["kendall_tau"] == pytest.approx(-1.0)
    with pytest.raises(DataError):
        gap_stats([1.0], [1.0])
    table = gap_table({"supernets": {"s.pt": {"bleu": stats, "loss": gap_stats([1, 2], [1.5, 2.5])}}})
    assert "| s.pt | 1.62 | 0.667 | 0.5000 | 1.000 | 4 / 2 |" in table  # loss over 2 architectures only


def test_gap_measures_every_standalone_checkpoint_and_refuses_an_architecture_without_one(tmp_path, monkeypatch):
    """Both sides of every architecture are measured here (and cached); an architecture without its standalone
    checkpoint is refused before anything is written."""
    import mos_fairseq.translation.gap as gap
    from mos_fairseq.base.errors import UserError

    archs, standalone = tmp_path / "archs", tmp_path / "standalone"
    archs.mkdir()
    for name in ("a0", "a1", "a2"):
        (archs / f"{name}.yml").write_text(f"space: tiny\n# {name}\n")
        (standalone / name).mkdir(parents=True)
        (standalone / name / "checkpoint_best.pt").write_bytes(b"stand-in")
    supernet = tmp_path / "supernet.pt"
    supernet.write_bytes(b"stand-in")
    alone = {"a0": (2.0, 30.0), "a1": (2.1, 31.0), "a2": (2.6, 25.0)}
    measured = []
    monkeypatch.setattr(
        gap,
        "standalone_metrics",
        lambda ckpt, *a: (
            measured.append(ckpt.parent.name) or dict(zip(("valid_loss", "bleu"), alone[ckpt.parent.name]))
        ),
    )
    inherited = {"a0": (2.5, 28.0), "a1": (2.4, 29.0), "a2": (3.0, 20.0)}
    monkeypatch.setattr(
        gap, "supernet_metrics", lambda ckpt, data, arch, *a: dict(zip(("valid_loss", "bleu"), inherited[arch.stem]))
    )
    result = gap.run_gap([str(supernet)], str(archs), str(standalone), "data", str(tmp_path / "gap"))
    assert measured == ["a0", "a1", "a2"]
    stats = result["supernets"][str(supernet)]
    assert stats["bleu"]["mae"] == pytest.approx((2 + 2 + 5) / 3) and stats["bleu"]["n"] == 3
    assert stats["loss"]["mae"] == pytest.approx((0.5 + 0.3 + 0.4) / 3)
    assert json.loads((tmp_path / "gap" / "gap.json").read_text())["standalone"]["a1"] == {
        "valid_loss": 2.1,
        "bleu": 31.0,
    }
    again = gap.run_gap([str(supernet)], str(archs), str(standalone), "data", str(tmp_path / "gap"))
    assert measured == ["a0", "a1", "a2"] and again["standalone"] == result["standalone"]  # from the cache
    (standalone / "a2" / "checkpoint_best.pt").unlink()
    with pytest.raises(UserError) as e:
        gap.run_gap([str(supernet)], str(archs), str(standalone), "data", str(tmp_path / "gap2"))
    assert str(e.value) == f"no standalone checkpoint for a2 (expected {standalone}/<name>/checkpoint_best.pt)"
    assert not (tmp_path / "gap2").exists()
