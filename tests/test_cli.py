"""mos-nas sample / info / prepare-data from the command line, including bad input."""

import json

import yaml

from mos_fairseq.translation.architecture import Architecture
from mos_fairseq.translation.space import SearchSpace

from .conftest import REPO, run_cli
from .helpers.forked_cli import run_cli_forked


def test_sample_writes_n_valid_architectures(tmp_path):
    run_cli(
        "sample",
        "--space",
        "configs/spaces/hat_wmt14_en_de.yml",
        "--n",
        "5",
        "--seed",
        "3",
        "--largest",
        "--smallest",
        "--out",
        str(tmp_path),
    )
    files = sorted(p.name for p in tmp_path.glob("*.yml"))
    assert files == [
        "arch_0000.yml",
        "arch_0001.yml",
        "arch_0002.yml",
        "arch_0003.yml",
        "arch_0004.yml",
        "largest.yml",
        "smallest.yml",
    ]
    space = SearchSpace.load("hat_wmt14_en_de")
    assert Architecture.load(tmp_path / "largest.yml") == Architecture.largest(space)
    again = tmp_path / "again"
    run_cli("sample", "--space", "hat_wmt14_en_de", "--n", "5", "--seed", "3", "--out", str(again))
    assert (again / "arch_0003.yml").read_text() == (tmp_path / "arch_0003.yml").read_text()


def test_info_json(tmp_path):
    space = SearchSpace.load("hat_wmt14_en_de")
    arch = Architecture.largest(space)
    arch.save(tmp_path / "a.yml", hat_format=True)
    proc = run_cli(
        "info", "--arch", str(tmp_path / "a.yml"), "--space", "hat_wmt14_en_de", "--json", "--vocab-size", "32768"
    )
    info = json.loads(proc.stdout)
    assert info["params"] == arch.num_params(32768) and isinstance(info["params"], int)
    assert info["features"] == arch.normalized_features() and len(info["features"]) == 10


def test_bad_inputs_exit_2_with_one_line(tmp_path):
    arch = Architecture.largest(SearchSpace.load("tiny")).to_dict()
    arch["decoder"]["ffn_dim"][1] = 100
    (tmp_path / "bad.yml").write_text(yaml.safe_dump(arch))
    cases = [
        (["info", "--arch", str(tmp_path / "bad.yml")], "decoder.ffn_dim[1]=100 is not in the space's choices"),
        (["info", "--arch", str(tmp_path / "nope.yml")], "not found"),
        (["sample", "--space", "no_such_space", "--n", "2", "--out", str(tmp_path / "x")], "not found"),
        (
            [
                "prepare-data",
                "--src",
                "en",
                "--tgt",
                "de",
                "--train",
                str(tmp_path / "missing"),
                "--valid",
                str(tmp_path / "missing"),
                "--vocab-size",
                "100",
                "--out",
                str(tmp_path / "bin"),
            ],
            "missing corpus file",
        ),
    ]
    for args, message in cases:
        proc = run_cli_forked(*args, cwd=REPO)
        assert proc.returncode == 2, proc.stderr
        assert message in proc.stderr
        assert "Traceback" not in proc.stderr
        assert len([l for l in proc.stderr.splitlines() if "error" in l]) == 1
    assert not (tmp_path / "bin").exists() and not (tmp_path / "x").exists()


def test_prepare_data_refuses_mismatched_and_empty_corpora(tmp_path):
    (tmp_path / "t.en").write_text("a b\nc d\n")
    (tmp_path / "t.de").write_text("x y\n")
    (tmp_path / "e.en").write_text("")
    (tmp_path / "e.de").write_text("")
    base = ["prepare-data", "--src", "en", "--tgt", "de", "--vocab-size", "20", "--out", str(tmp_path / "bin")]
    proc = run_cli(*base, "--train", str(tmp_path / "t"), "--valid", str(tmp_path / "t"), check=False, fork=True)
    assert proc.returncode == 2 and "has 2 lines but" in proc.stderr
    proc = run_cli(*base, "--train", str(tmp_path / "e"), "--valid", str(tmp_path / "e"), check=False, fork=True)
    assert proc.returncode == 2 and "is empty" in proc.stderr
    assert not (tmp_path / "bin").exists()


def test_prepare_data_never_overwrites_existing_output(tmp_path, synthetic_bin):
    out = tmp_path / "bin"
    out.mkdir()
    (out / "keep.txt").write_text("precious")
    raw = synthetic_bin.parent / "raw"
    proc = run_cli(
        "prepare-data",
        "--src",
        "en",
        "--tgt",
        "de",
        "--train",
        str(raw / "train"),
        "--valid",
        str(raw / "valid"),
        "--vocab-size",
        "100",
        "--out",
        str(out),
        check=False,
        fork=True,
    )
    assert proc.returncode == 2 and "not empty" in proc.stderr
    assert (out / "keep.txt").read_text() == "precious"


def test_synthetic_corpus_is_deterministic_and_not_word_for_word(synthetic_bin, tmp_path):
    run_cli("make-synthetic", "--out", str(tmp_path), "--train", "3000", "--valid", "100", "--test", "60")
    raw = synthetic_bin.parent / "raw"
    assert (tmp_path / "train.de").read_text() == (raw / "train.de").read_text()
    en = (tmp_path / "train.en").read_text().splitlines()
    de = (tmp_path / "train.de").read_text().splitlines()
    assert len(set(en)) == len(en) == 3000
    # reordering: a fronted time adverb puts the German verb before the subject
    pairs = [(e, g) for e, g in zip(en, de) if e.startswith("Yesterday the dog sees")]
    assert all(g.startswith("Gestern sieht der Hund") for _, g in pairs)
    # agreement: the masculine object takes 'den'
    assert any(" den " in g for g in de)
    assert (synthetic_bin / "spm.model").is_file() and (synthetic_bin / "dict.en.txt").is_file()


def test_forked_runner_matches_a_real_process(tmp_path):
    """The bad-input catalogue runs in forks of the test process: same streams and exit codes as a real one."""
    arch = tmp_path / "a.yml"
    Architecture.smallest(SearchSpace.load("tiny")).save(arch)
    for args in (["info", "--arch", str(arch)], ["info", "--arch", str(tmp_path / "nope.yml")], ["no-such-command"]):
        real, forked = run_cli(*args, check=False), run_cli_forked(*args, cwd=REPO)
        assert (forked.returncode, forked.stdout) == (real.returncode, real.stdout), args
        assert forked.stderr.splitlines()[-1:] == real.stderr.splitlines()[-1:], (forked.stderr, real.stderr)


def test_every_list_option_takes_the_flag_repeated_and_several_values():
    """--estimator a=x --estimator b=y c=z gives all three (not the last), on every list-valued option of
    every command; a repeated flag replaces the option's default once, then extends."""
    import argparse

    from mos_fairseq.cli import build_parser
    from mos_fairseq.cli.options import ExtendList

    parser = build_parser()
    args = parser.parse_args(
        [
            "search",
            "--checkpoint",
            "c.pt",
            "--estimator",
            "a=x",
            "--estimator",
            "b=y",
            "c=z",
            "--param-constraint",
            "5M",
            "--param-constraint",
            "6M",
            "--out",
            "o",
        ]
    )
    assert args.estimator == ["a=x", "b=y", "c=z"] and args.param_constraint == ["5M", "6M"]
    assert parser.parse_args(["average", "--inputs", "a", "--inputs", "b", "--out", "o"]).inputs == ["a", "b"]
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    lists = [
        (name, action.option_strings[0])
        for name, command in sub.choices.items()
        for action in command._actions
        if action.option_strings and action.nargs in ("+", "*")
    ]
    assert len(lists) >= 8 and all(
        isinstance(a, ExtendList)
        for c in sub.choices.values()
        for a in c._actions
        if a.option_strings and a.nargs in ("+", "*")
    ), lists
    p = argparse.ArgumentParser()
    p.add_argument("--x", nargs="+", default=["d"], action=ExtendList)
    assert p.parse_args([]).x == ["d"] and p.parse_args(["--x", "a", "--x", "b"]).x == ["a", "b"]
