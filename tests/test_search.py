"""Evolutionary search on a tiny trained supernet: constraints, determinism, resume, outputs."""

import csv
import json
import math
import random
from pathlib import Path
from types import SimpleNamespace

import pytest

from mos_fairseq.base.errors import UserError
from mos_fairseq.core.validation import SubnetEvaluator, ValidationBatches
from mos_fairseq.search.constraints import Constraint, parse_constraints, parse_number
from mos_fairseq.search.evolution import EvolutionarySearch, EvolutionConfig
from mos_fairseq.search.runner import SearchInputs, run_search
from mos_fairseq.translation.architecture import Architecture
from mos_fairseq.translation.evolution_ops import crossover, mutate
from mos_fairseq.translation.family import FAMILY as TRANSLATION
from mos_fairseq.translation.space import SearchSpace

from .conftest import run_cli

SMALL = [
    "--iterations",
    "3",
    "--population",
    "12",
    "--parents",
    "4",
    "--mutation",
    "4",
    "--crossover",
    "4",
    "--valid-max-sentences",
    "40",
    "--no-progress",
]


@pytest.fixture(scope="module")
def trained(searchable_supernet):
    return searchable_supernet


def latency_bounds(estimator_path):
    """Predicted latency of the smallest and largest tiny subnets (to place feasible constraints)."""
    from mos_fairseq.latency.estimator import LatencyEstimator

    est = LatencyEstimator.load(estimator_path)
    space = SearchSpace.load("tiny")
    preds = [est.predict_arch(Architecture.random(space, random.Random(i))) for i in range(200)]
    return sorted(preds)


def median_params(data) -> int:
    space, vocab = SearchSpace.load("tiny"), len_dict(data)
    counts = sorted(Architecture.random(space, random.Random(i)).num_params(vocab) for i in range(200))
    return counts[len(counts) // 2]


def search_args(trained, out, *extra):
    lat = latency_bounds(trained["est"])
    c1, c2 = lat[len(lat) // 3], lat[2 * len(lat) // 3]
    return [
        "search",
        "--checkpoint",
        str(trained["ckpt"]),
        "--data",
        str(trained["data"]),
        "--estimator",
        str(trained["est"]),
        "--latency-constraint",
        f"{c1:.4f}",
        f"{c2:.4f}",
        "--param-constraint",
        str(median_params(trained["data"])),
        "--seed",
        "3",
        "--out",
        str(out),
        *SMALL,
        *extra,
    ], (c1, c2)


def test_constraint_parsing():
    assert (
        parse_number("30M", "x") == 30e6 and parse_number("45000000", "x") == 45e6 and parse_number("1.5k", "x") == 1500
    )
    cs = parse_constraints(["100", "150"], ["30M"])
    assert [c.name for c in cs] == ["latency_100ms", "latency_150ms", "params_30M"]
    for bad in (["fast"], ["-5"], ["0"]):
        with pytest.raises(UserError):
            parse_constraints(bad, None)
    with pytest.raises(UserError, match="at least one"):
        parse_constraints(None, None)


def test_operators_stay_in_the_space(tiny_space):
    rng = random.Random(0)
    for _ in range(300):
        a, b = Architecture.random(tiny_space, rng), Architecture.random(tiny_space, rng)
        for child in (mutate(a, 0.5, rng), crossover(a, b, rng)):
            Architecture.from_json(child.to_json(), tiny_space)  # validates
    a = Architecture.random(tiny_space, rng)
    assert mutate(a, 0.0, rng) == a


def test_search_honours_constraints_and_is_deterministic(trained, tmp_path):
    args, (c1, c2) = search_args(trained, tmp_path / "a")
    run_cli(*args)
    summary = json.loads((tmp_path / "a" / "summary.json").read_text())
    assert [(s["kind"], s["constraint"]) for s in summary] == [
        ("latency", float(f"{c1:.4f}")),
        ("latency", float(f"{c2:.4f}")),
        ("params", float(median_params(trained["data"]))),
    ]
    from mos_fairseq.latency.estimator import LatencyEstimator

    est = LatencyEstimator.load(trained["est"])
    for s in summary:
        arch = Architecture.load(tmp_path / "a" / s["arch"])
        hat = Architecture.load(tmp_path / "a" / s["hat_arch"], arch.space)
        assert hat == arch
        assert arch.num_params(len_dict(trained["data"])) == s["params"]
        assert est.predict_arch(arch) == pytest.approx(s["predicted_latency_ms"], abs=1e-3)
        value = s["predicted_latency_ms"] if s["kind"] == "latency" else s["params"]
        assert value <= s["constraint"]
        assert isinstance(s["valid_loss"], float) and s["valid_loss"] > 0
    assert summary[0]["valid_loss"] >= summary[1]["valid_loss"] - 1e-9  # looser constraint, no worse pick
    rows = list(csv.DictReader(open(tmp_path / "a" / "candidates.csv")))
    assert len(rows) == len({r["arch"] for r in rows}) >= 12
    pareto = list(csv.DictReader(open(tmp_path / "a" / "pareto.csv")))
    lat = [float(r["predicted_latency_ms"]) for r in pareto]
    loss = [float(r["valid_loss"]) for r in pareto]
    assert lat == sorted(lat) and loss == sorted(loss, reverse=True)
    assert (tmp_path / "a" / "pareto.png").stat().st_size > 5000
    run_cli(*search_args(trained, tmp_path / "b")[0])
    for name in ("summary.json", "candidates.csv", "pareto.csv"):
        assert (tmp_path / "a" / name).read_text() == (tmp_path / "b" / name).read_text()


def len_dict(data):
    from fairseq.data import Dictionary

    return len(Dictionary.load(str(data / "dict.en.txt")))


def test_interrupted_search_resumes_to_the_same_result(trained, tmp_path, monkeypatch):
    args, _ = search_args(trained, tmp_path / "full")
    run_cli(*args)
    args, (c1, c2) = search_args(trained, tmp_path / "cut")
    inputs = SearchInputs(
        str(trained["ckpt"]),
        str(trained["data"]),
        parse_constraints([f"{c1:.4f}", f"{c2:.4f}"], [str(median_params(trained["data"]))]),
        EvolutionConfig(3, 12, 4, 4, 0.3, 4, 3),
        str(tmp_path / "cut"),
        estimator=str(trained["est"]),
        valid_max_sentences=40,
        progress=False,
    )
    calls = {"n": 0}
    real = SubnetEvaluator.compute

    def dying(self, arch, collapse=True):
        calls["n"] += 1
        if calls["n"] > 13:  # the first iteration evaluates 12: dies in the second
            raise KeyboardInterrupt
        return real(self, arch, collapse)

    monkeypatch.setattr(SubnetEvaluator, "compute", dying)
    with pytest.raises(KeyboardInterrupt):
        run_search(inputs)
    monkeypatch.setattr(SubnetEvaluator, "compute", real)
    state = json.loads((tmp_path / "cut" / "search_state.json").read_text())
    assert state["state"]["iteration"] == 1
    proc = run_cli(*args, check=False, fork=True)
    assert proc.returncode == 2 and "--resume" in proc.stderr
    run_cli(*args, "--resume")
    for name in ("summary.json", "candidates.csv", "pareto.csv"):
        assert (tmp_path / "cut" / name).read_text() == (tmp_path / "full" / name).read_text()


def test_infeasible_constraint_exits_2_without_output(trained, tmp_path):
    out = tmp_path / "none"
    proc = run_cli(
        "search",
        "--checkpoint",
        str(trained["ckpt"]),
        "--data",
        str(trained["data"]),
        "--param-constraint",
        "1000",
        "--out",
        str(out),
        *SMALL,
        check=False,
        fork=True,
    )
    assert proc.returncode == 2
    assert "infeasible constraint parameters <= 1,000" in proc.stderr and proc.stderr.strip().count("\n") == 0
    assert not out.exists()
    proc = run_cli(
        "search",
        "--checkpoint",
        str(trained["ckpt"]),
        "--latency-constraint",
        "5",
        "--out",
        str(out),
        *SMALL,
        check=False,
        fork=True,
    )
    assert proc.returncode == 2 and "needs --estimator" in proc.stderr


def test_fitness_ranks_and_fast_path(trained):
    from mos_fairseq.loading import load_supernet

    supernet, task, _ = load_supernet(trained["ckpt"], str(trained["data"]))
    evaluator = SubnetEvaluator(supernet, ValidationBatches.from_task(task, "valid", 40))
    space = supernet.space
    largest, smallest = Architecture.largest(space), Architecture.smallest(space)
    assert evaluator.loss(largest) < evaluator.loss(smallest)
    arch = Architecture.random(space, random.Random(4))
    assert evaluator.compute(arch, collapse=True) == pytest.approx(evaluator.compute(arch, collapse=False), abs=1e-4)
    assert evaluator.loss(arch) == evaluator.loss(arch) and evaluator.cache.hits == 1
    search = EvolutionarySearch(
        space,
        [Constraint("params", 1e9)],
        EvolutionConfig(1, 4, 2, 1, 0.3, 1, 1),
        lambda a: {"params": 1.0},
        evaluator.loss,
        TRANSLATION,
    )
    assert search.best(search.run())[0] is not None


def test_evaluate_cli_reports_loss_and_bleu(trained, tmp_path):
    arch = tmp_path / "largest.yml"
    Architecture.largest(SearchSpace.load("tiny")).save(arch)
    out = run_cli(
        "evaluate",
        "--checkpoint",
        str(trained["ckpt"]),
        "--data",
        str(trained["data"]),
        "--arch",
        str(arch),
        "--valid-max-sentences",
        "20",
        "--json",
    ).stdout
    res = json.loads(out)
    assert res["sentences"] == 20 and res["valid_loss"] > 0 and 0 <= res["bleu"] <= 100
    assert res["valid_ppl"] == pytest.approx(2 ** res["valid_loss"])


def test_verify_latency_measures_the_picks(trained, tmp_path):
    args, _ = search_args(trained, tmp_path / "v", "--verify-latency")
    args[args.index("--iterations") + 1] = "1"
    proc = run_cli(*args)
    summary = json.loads((tmp_path / "v" / "summary.json").read_text())
    for s in summary:
        assert s["measured_latency_ms"] > 0
        assert s["predicted_vs_measured"] == pytest.approx(
            s["predicted_latency_ms"] / s["measured_latency_ms"], rel=1e-3
        )
    assert "measured" in proc.stdout


def test_verify_latency_measures_with_the_estimators_thread_count(monkeypatch):
    """The check repeats the estimator's protocol, threads included, and restores the caller's threads."""
    import torch

    from mos_fairseq.latency import measure
    from mos_fairseq.latency.measure import LatencyStats
    from mos_fairseq.search.verify import verify_latency

    seen = []
    monkeypatch.setattr(measure, "build_model", lambda arch, dictionary, device: arch)
    monkeypatch.setattr(
        measure,
        "measure_model",
        lambda model, protocol: seen.append(torch.get_num_threads()) or LatencyStats(3.0, 1.0, 0, 0),
    )
    pick = fake_candidate("a", 5.0, 1.0)
    estimator = SimpleNamespace(info={"protocol": {"threads": 1, "src_len": 8, "tgt_len": 6, "beam": 2}})
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        picks, out = verify_latency([pick], [Constraint("latency", 10.0)], {None: estimator})
        assert seen == [1] and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
    assert picks == [pick]
    assert out == {
        "latency_10ms": {"measured_latency_ms": 4.0, "predicted_vs_measured": 1.25, "within_constraint": True}
    }


def fake_candidate(name: str, predicted: float, loss: float):
    arch = SimpleNamespace(name=name, to_json=lambda: name, describe=lambda: f"arch {name}")
    return SimpleNamespace(arch=arch, costs={"latency": predicted}, loss=loss)


def test_verify_latency_replaces_a_pick_over_its_constraint(monkeypatch):
    """A pick that measures over its constraint is flagged; the next-best admitted candidates are measured in
    loss order until one fits (at most VERIFY_MAX_TRIES measurements), which replaces it."""
    from mos_fairseq.latency import measure
    from mos_fairseq.latency.measure import LatencyStats
    from mos_fairseq.search import verify as runner

    truth = {"a": 11.0, "b": 10.5, "c": 9.0, "d": 8.0, "e": 12.0, "f": 12.5, "g": 13.0}
    timed = []
    monkeypatch.setattr(measure, "build_model", lambda arch, dictionary, device: arch)
    monkeypatch.setattr(
        measure,
        "measure_model",
        lambda arch, protocol: timed.append(arch.name) or LatencyStats(truth[arch.name], 0.0, 0, 0),
    )
    estimator = SimpleNamespace(info={"protocol": {"threads": 1, "src_len": 8, "tgt_len": 6, "beam": 2}})
    # loss order: a (the pick), b, c, d; x is not admitted by its predicted latency
    cands = [
        fake_candidate("d", 7.0, 4.0),
        fake_candidate("a", 9.5, 1.0),
        fake_candidate("c", 8.5, 3.0),
        fake_candidate("b", 9.8, 2.0),
        fake_candidate("x", 10.5, 0.5),
    ]
    pick = cands[1]
    picks, out = runner.verify_latency([pick], [Constraint("latency", 10.0)], {None: estimator}, cands)
    entry = out["latency_10ms"]
    assert picks[0].arch.name == "c" and timed == ["a", "b", "c"]
    assert entry["within_constraint"] is True and entry["measured_latency_ms"] == 9.0
    assert [t["architecture"] for t in entry["verify_tries"]] == ["arch a", "arch b", "arch c"]
    assert "replaced" in entry["verify_note"]
    # nothing within reach: the pick is kept, flagged, and no more than VERIFY_MAX_TRIES are measured
    cands = [fake_candidate(n, 9.0, i) for i, n in enumerate("aefgb")] + [fake_candidate("c", 9.0, 9.0)]
    timed.clear()
    picks, out = runner.verify_latency([cands[0]], [Constraint("latency", 10.0)], {None: estimator}, cands, max_tries=4)
    entry = out["latency_10ms"]
    assert picks[0] is cands[0] and entry["within_constraint"] is False and entry["measured_latency_ms"] == 11.0
    assert timed == ["a", "e", "f", "g"] and "kept and flagged" in entry["verify_note"]


def test_bleu_of_an_exported_pick_runs_fairseq_generate(trained, tmp_path):
    arch = tmp_path / "smallest.yml"
    Architecture.smallest(SearchSpace.load("tiny")).save(arch)
    run_cli(
        "export",
        "--checkpoint",
        str(trained["ckpt"]),
        "--arch",
        str(arch),
        "--out",
        str(tmp_path / "exp"),
        "--data",
        str(trained["data"]),
    )
    gen = tmp_path / "gen.txt"
    res = json.loads(
        run_cli(
            "bleu",
            "--path",
            str(tmp_path / "exp" / "checkpoint.pt"),
            "--data",
            str(trained["data"]),
            "--output",
            str(gen),
            "--json",
        ).stdout
    )
    from mos_fairseq.translation.bleu import parse_generate_output

    hyps, refs = parse_generate_output(gen.read_text())
    import sacrebleu

    assert res["sentences"] == len(refs) == 60
    assert res["bleu"] == pytest.approx(sacrebleu.corpus_bleu(hyps, [refs]).score, abs=1e-9)


def test_retrain_from_inherited_weights_starts_at_the_supernet_loss(trained, tmp_path):
    arch = tmp_path / "pick.yml"
    Architecture.random(SearchSpace.load("tiny"), random.Random(11)).save(arch)
    run_cli(
        "export",
        "--checkpoint",
        str(trained["ckpt"]),
        "--arch",
        str(arch),
        "--out",
        str(tmp_path / "exp"),
        "--data",
        str(trained["data"]),
    )
    supernet = json.loads(
        run_cli(
            "evaluate",
            "--checkpoint",
            str(trained["ckpt"]),
            "--data",
            str(trained["data"]),
            "--arch",
            str(arch),
            "--no-bleu",
            "--json",
        ).stdout
    )
    proc = run_cli(
        "retrain",
        "--export-dir",
        str(tmp_path / "exp"),
        "--data",
        str(trained["data"]),
        "--save-dir",
        str(tmp_path / "re"),
        "--",
        "--max-update",
        "1",
        "--lr",
        "1e-9",
        "--warmup-init-lr",
        "1e-9",
        "--log-format",
        "json",
        "--seed",
        "1",
    )
    valid = [
        json.loads(line[line.index("{") :])
        for line in (proc.stdout + proc.stderr).splitlines()
        if '"valid_nll_loss"' in line
    ]
    assert valid, proc.stdout[-2000:]
    assert float(valid[0]["valid_nll_loss"]) == pytest.approx(supernet["valid_loss"], abs=1e-3)
    dry = run_cli(
        "retrain",
        "--export-dir",
        str(tmp_path / "exp"),
        "--data",
        str(trained["data"]),
        "--save-dir",
        str(tmp_path / "s"),
        "--from-scratch",
        "--preset",
        "hat_wmt",
        "--dry-run",
        fork=True,
    ).stdout
    assert "--restore-file" not in dry and "--max-update 40000" in dry and "--subnet-arch" in dry
    (tmp_path / "fake").mkdir()
    (tmp_path / "fake" / "checkpoint.pt").write_bytes(trained["ckpt"].read_bytes())
    proc = run_cli(
        "retrain",
        "--export-dir",
        str(tmp_path / "fake"),
        "--data",
        str(trained["data"]),
        "--save-dir",
        str(tmp_path / "x"),
        check=False,
        fork=True,
    )
    assert proc.returncode == 2 and "not a checkpoint written by mos-nas export" in proc.stderr


def test_retrain_from_scratch_by_architecture_starts_near_uniform_loss(trained, tmp_path):
    """``retrain --arch`` needs no export; fresh weights start like the supernet's (about log2 V bits)."""
    space = SearchSpace.load("tiny")
    hetero, homo = tmp_path / "hetero.yml", tmp_path / "homo.yml"
    Architecture.random(space, random.Random(5)).save(hetero)
    homo.write_text(
        "space: tiny\nencoder: {embed_dim: 32, layers: 2, ffn_dim: [48, 48], heads: [4, 4]}\n"
        "decoder: {embed_dim: 32, layers: 1, ffn_dim: [48], self_heads: [4], cross_heads: [4], cross_span: [1]}\n"
    )
    dry = run_cli(
        "retrain",
        "--arch",
        str(homo),
        "--data",
        str(trained["data"]),
        "--save-dir",
        str(tmp_path / "h"),
        "--dry-run",
        fork=True,
    ).stdout
    assert "--arch transformer" in dry and "--restore-file" not in dry and "--user-dir" in dry  # allow-list on resume
    proc = run_cli(
        "retrain",
        "--arch",
        str(hetero),
        "--data",
        str(trained["data"]),
        "--save-dir",
        str(tmp_path / "s"),
        "--",
        "--max-update",
        "2",
        "--log-format",
        "json",
        "--log-interval",
        "1",
        "--seed",
        "1",
    )
    out = proc.stdout + proc.stderr
    assert "mos_static_transformer" in out
    inner = [json.loads(line[line.index("{") :]) for line in out.splitlines() if "| train_inner |" in line]
    assert inner, out[-2000:]
    vocab = len((Path(trained["data"]) / "dict.de.txt").read_text().splitlines()) + 4
    loss = float(inner[0]["loss"])  # bits (label-smoothed); an N(0, 1) embedding start gave ~10x this
    assert abs(loss - math.log2(vocab)) < 2.0, (loss, math.log2(vocab))
    assert (tmp_path / "s" / "checkpoint_last.pt").is_file()
    proc = run_cli(
        "retrain",
        "--arch",
        str(hetero),
        "--export-dir",
        str(tmp_path),
        "--data",
        str(trained["data"]),
        "--save-dir",
        str(tmp_path / "x"),
        check=False,
        fork=True,
    )
    assert proc.returncode == 2 and "exactly one of --export-dir" in proc.stderr


def test_search_under_several_devices_at_once(trained, tmp_path):
    """Named estimators in one search: a bound per device and a joined bound; every pick satisfies each
    device it names (predicted), the outputs carry each device's prediction, and --verify-latency
    measures the device that is this machine and says which it cannot measure here."""
    import csv as csvmod

    src = Path(trained["est"]).parent / "tiny_cpu.csv"
    with open(src) as f:
        reader = csvmod.DictReader(f)
        fields, rows = reader.fieldnames, list(reader)
    for r in rows:  # "another device": twice as fast, measured on another CPU
        for k in ("latency_mean_encoder", "latency_mean_decoder"):
            r[k] = f"{float(r[k]) * 0.5:.6f}"
    other = tmp_path / "other.csv"
    with open(other, "w", newline="") as f:
        w = csvmod.DictWriter(f, fieldnames=fields)
        w.writeheader()
        w.writerows(rows)
    side = json.loads(src.with_suffix(".json").read_text())
    side["device"]["cpu"] = "Another CPU"
    other.with_suffix(".json").write_text(json.dumps(side))
    run_cli(
        "train-estimator",
        "--data",
        str(other),
        "--out",
        str(tmp_path / "other.safetensors"),
        "--hidden",
        "32",
        "--steps",
        "300",
        "--recipe",
        "mlp",
        "--no-hat-recipe",
    )
    here_lat, other_lat = latency_bounds(trained["est"]), latency_bounds(tmp_path / "other.safetensors")
    h, o = here_lat[len(here_lat) // 2], other_lat[len(other_lat) // 3]
    out = tmp_path / "multi"
    run_cli(
        "search",
        "--checkpoint",
        str(trained["ckpt"]),
        "--data",
        str(trained["data"]),
        "--estimator",  # list options take the flag repeated as well as several values after one flag
        f"here={trained['est']}",
        "--estimator",
        f"other={tmp_path / 'other.safetensors'}",
        "--latency-constraint",
        f"here:{h:.4f}",
        f"other:{o:.4f}",
        "--latency-constraint",
        f"here:{h:.4f},other:{o:.4f}",
        "--seed",
        "3",
        "--out",
        str(out),
        "--verify-latency",
        *SMALL,
    )
    summary = json.loads((out / "summary.json").read_text())
    assert [s["arch"] for s in summary] == [
        f"best_latency_here_{h:.4f}ms.yml".replace(f"{h:.4f}", f"{float(f'{h:.4f}'):g}"),
        f"best_latency_other_{float(f'{o:.4f}'):g}ms.yml",
        f"best_latency_here_{float(f'{h:.4f}'):g}ms_latency_other_{float(f'{o:.4f}'):g}ms.yml",
    ]
    bound_h, bound_o = float(f"{h:.4f}"), float(f"{o:.4f}")
    assert summary[0]["predicted_latency_ms_here"] <= bound_h and summary[1]["predicted_latency_ms_other"] <= bound_o
    assert summary[2]["predicted_latency_ms_here"] <= bound_h and summary[2]["predicted_latency_ms_other"] <= bound_o
    assert summary[2]["constraint"] == {"latency:here": bound_h, "latency:other": bound_o}
    for s in summary:  # this machine is "here"'s device, not "other"'s
        assert s["measured_latency_ms_here"] > 0 and "measured_latency_ms_other" not in s
    assert "other" in summary[1]["not_measured_here"] and "Another CPU" in summary[1]["not_measured_here"]["other"]
    assert "not_measured_here" not in summary[0] and "within_constraint" in summary[0]
    header = (out / "candidates.csv").read_text().splitlines()[0].split(",")
    assert header[:5] == ["arch", "iteration", "params", "predicted_latency_ms_here", "predicted_latency_ms_other"]
    assert (out / "pareto.png").stat().st_size > 5000
    proc = run_cli(
        "search",
        "--checkpoint",
        str(trained["ckpt"]),
        "--estimator",
        f"here={trained['est']}",
        f"other={tmp_path / 'other.safetensors'}",
        "--latency-constraint",
        "5",
        "--out",
        str(tmp_path / "x"),
        check=False,
        fork=True,
    )
    assert proc.returncode == 2 and "name the device" in proc.stderr and not (tmp_path / "x").exists()


def test_joined_constraints_parse_and_name_their_devices():
    from mos_fairseq.search.constraints import AllOf

    cs = parse_constraints(["cpu:150", "gpu:40", "cpu:100,gpu:30"], ["30M"], ["cpu", "gpu"])
    assert [c.name for c in cs] == [
        "latency_cpu_150ms",
        "latency_gpu_40ms",
        "latency_cpu_100ms_latency_gpu_30ms",
        "params_30M",
    ]
    joined = cs[2]
    assert isinstance(joined, AllOf) and joined.describe() == "cpu latency <= 100 ms and gpu latency <= 30 ms"
    assert joined.allows({"latency:cpu": 99, "latency:gpu": 30}) and not joined.allows(
        {"latency:cpu": 99, "latency:gpu": 31}
    )
    assert parse_constraints(["150"], None, ["cpu"])[0].cost_key == "latency:cpu"
    assert parse_constraints(["150"], None)[0].to_dict() == {"kind": "latency", "value": 150.0}  # resumable as before
    for bad, match in (
        (["tpu:5"], "unknown device 'tpu'"),
        (["5"], "name the device"),
        (["cpu:-5"], "must be positive"),
        (["cpu:5,cpu:6"], "bounds one cost twice"),
    ):
        with pytest.raises(UserError, match=match):
            parse_constraints(bad, None, ["cpu", "gpu"])
