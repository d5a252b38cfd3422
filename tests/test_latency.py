"""Latency measurement protocol, crash-safe datasets, HAT import and the latency estimator."""

import csv
import dataclasses
import json
import math
import random
from pathlib import Path

import numpy as np
import pytest
import torch

from mos_fairseq.base.errors import CheckpointError, DataError, UserError
from mos_fairseq.latency.dataset import HAT_COLUMNS, our_columns, read_latency_csv
from mos_fairseq.latency.estimator import LatencyEstimator
from mos_fairseq.latency.evaluation import evaluate
from mos_fairseq.latency.measure import build_model, measure_model, measure_space, synthetic_dictionary
from mos_fairseq.latency.protocol import Protocol, time_encoder_decoder, trimmed_stats
from mos_fairseq.latency.recipes import HAT_RECIPE, TrainRecipe
from mos_fairseq.translation.architecture import Architecture
from mos_fairseq.translation.family import params_from_features
from mos_fairseq.translation.space import SearchSpace

from .conftest import REPO, run_cli

HAT_SAMPLE = REPO / "tests" / "data" / "hat_latency_sample.csv"
ENC_MS = [5, 1, 3, 100, 2, 4, 3, 2, 3, 0.5]  # one outlier each way: 100 and 0.5 are dropped
DEC_MS = [40, 41, 39, 400, 42, 38, 40, 40, 1, 41]


def fake_clock(enc_ms, dec_ms, warmup_ticks: int = 0):
    """A timer whose successive readings make the encoder and decoder take the given times."""
    ticks, now = [], 1000.0
    for e, d in zip(enc_ms, dec_ms):
        ticks += [now, now + e / 1000, now + (e + d) / 1000]
        now += (e + d) / 1000 + 1.0
    it = iter(ticks)
    return lambda: next(it)


def expected_stats(samples):
    kept = sorted(samples)[1:-1]
    mean = sum(kept) / len(kept)
    return mean, math.sqrt(sum((v - mean) ** 2 for v in kept) / len(kept))


def test_trimmed_stats_drop_ten_percent_each_end():
    assert trimmed_stats(ENC_MS, 0.1) == pytest.approx((2.875, math.sqrt(1.359375)), abs=1e-12)
    assert trimmed_stats([7.0, 1.0, 4.0], 0.1) == pytest.approx((4.0, math.sqrt(6.0)))  # n*0.1 < 1: keep all
    assert trimmed_stats(list(range(20)), 0.1)[0] == pytest.approx(9.5)  # drops 0,1 and 18,19
    with pytest.raises(ValueError):
        trimmed_stats([], 0.1)


def test_protocol_times_encoder_and_decoder_separately_after_warmup():
    calls = {"enc": 0, "dec": 0}

    def encode():
        calls["enc"] += 1
        return "encoded"

    def decode(out):
        assert out == "encoded"
        calls["dec"] += 1

    enc, dec = time_encoder_decoder(encode, decode, repeats=10, warmup=3, timer=fake_clock(ENC_MS, DEC_MS))
    assert calls == {"enc": 13, "dec": 13}
    assert enc == pytest.approx(ENC_MS, abs=1e-6)
    assert dec == pytest.approx(DEC_MS, abs=1e-6)


def test_measure_model_on_fake_clock_gives_exact_trimmed_numbers(tiny_space):
    arch = Architecture.random(tiny_space, random.Random(3))
    model = build_model(arch, synthetic_dictionary(100), "cpu")
    protocol = Protocol(repeats=10, warmup=1, vocab_size=100, src_len=7, tgt_len=5, beam=2)
    stats = measure_model(model, protocol, timer=fake_clock(ENC_MS, DEC_MS))
    assert (stats.encoder_mean, stats.encoder_std) == pytest.approx(expected_stats(ENC_MS), abs=1e-6)
    assert (stats.decoder_mean, stats.decoder_std) == pytest.approx(expected_stats(DEC_MS), abs=1e-6)


class ClockThatDies:
    """Fake clock for whole runs: each architecture takes ``enc_ms``/``dec_ms`` per run;
    raises KeyboardInterrupt when architecture number ``die_at`` starts timing."""

    def __init__(self, repeats: int, enc_ms: float, die_at: int | None = None):
        self.reads, self.repeats, self.enc_ms, self.die_at, self.now = 0, repeats, enc_ms, die_at, 0.0

    def __call__(self) -> float:
        arch_no = self.reads // (3 * self.repeats)
        if self.die_at is not None and arch_no >= self.die_at:
            raise KeyboardInterrupt
        phase = self.reads % 3
        self.reads += 1
        self.now += {0: 1.0, 1: self.enc_ms / 1000, 2: 0.05}[phase]
        return self.now


def read_rows(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_interrupted_run_resumes_without_duplicates_or_lost_rows(tiny_space, tmp_path):
    protocol = Protocol(repeats=3, warmup=0, vocab_size=64, src_len=5, tgt_len=3, beam=2)
    ref = tmp_path / "ref.csv"
    measure_space(tiny_space, protocol, 5, seed=7, out=ref, progress=False, timer=ClockThatDies(3, 2.0))
    out = tmp_path / "run.csv"
    with pytest.raises(KeyboardInterrupt):
        measure_space(tiny_space, protocol, 5, seed=7, out=out, progress=False, timer=ClockThatDies(3, 9.0, die_at=2))
    assert [r["arch_id"] for r in read_rows(out)] == ["0", "1"]
    with open(out, "a") as f:  # a crash in the middle of writing row 2
        f.write('2,"{""decoder"": {""cross_hea')
    measured = measure_space(tiny_space, protocol, 5, seed=7, out=out, progress=False, timer=ClockThatDies(3, 2.0))
    assert measured == 3
    rows, ref_rows = read_rows(out), read_rows(ref)
    assert [r["arch_id"] for r in rows] == ["0", "1", "2", "3", "4"]
    assert [r["arch"] for r in rows] == [r["arch"] for r in ref_rows]  # same architectures, same order
    assert float(rows[0]["latency_mean_encoder"]) == pytest.approx(9.0)  # kept from the first run
    assert float(rows[4]["latency_mean_encoder"]) == pytest.approx(2.0)
    assert len({r["arch"] for r in rows}) == 5
    # finished: nothing to do; more archs: continues the same sample sequence
    assert measure_space(tiny_space, protocol, 5, seed=7, out=out, progress=False, timer=ClockThatDies(3, 2.0)) == 0
    measure_space(tiny_space, protocol, 7, seed=7, out=out, progress=False, timer=ClockThatDies(3, 2.0))
    assert [r["arch"] for r in read_rows(out)][:5] == [r["arch"] for r in ref_rows]
    assert len(read_rows(out)) == 7


def test_resume_refuses_another_protocol_and_leaves_file_untouched(tiny_space, tmp_path):
    out = tmp_path / "run.csv"
    protocol = Protocol(repeats=3, warmup=0, vocab_size=64, src_len=5, tgt_len=3, beam=2)
    measure_space(tiny_space, protocol, 2, seed=1, out=out, progress=False, timer=ClockThatDies(3, 2.0))
    before = out.read_bytes(), out.with_suffix(".json").read_bytes()
    other = Protocol(repeats=5, warmup=0, vocab_size=64, src_len=5, tgt_len=3, beam=2)
    with pytest.raises(DataError, match="another protocol"):
        measure_space(tiny_space, other, 4, seed=1, out=out, progress=False, timer=ClockThatDies(5, 2.0))
    with pytest.raises(DataError, match="another seed"):
        measure_space(tiny_space, protocol, 4, seed=2, out=out, progress=False, timer=ClockThatDies(3, 2.0))
    assert (out.read_bytes(), out.with_suffix(".json").read_bytes()) == before
    out.with_suffix(".json").unlink()
    with pytest.raises(DataError, match="has rows but no sidecar"):
        measure_space(tiny_space, protocol, 4, seed=1, out=out, progress=False, timer=ClockThatDies(3, 2.0))
    assert out.read_bytes() == before[0]
    foreign = tmp_path / "foreign.csv"
    foreign.write_text("a,b\n1,2\n")
    with pytest.raises(DataError, match="not a mos-nas latency CSV"):
        measure_space(tiny_space, protocol, 2, seed=1, out=foreign, progress=False)
    assert foreign.read_text() == "a,b\n1,2\n"


def write_csv(path: Path, header, rows) -> Path:
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


def test_malformed_csvs_are_refused_naming_the_problem(tmp_path):
    good = [list(range(10)) + [1.0, 2.0, 0.1, 0.1] for _ in range(4)]
    missing = write_csv(tmp_path / "missing.csv", HAT_COLUMNS[:-2], [r[:-2] for r in good])
    with pytest.raises(DataError, match="missing column.*latency_std_encoder"):
        read_latency_csv(missing)
    bad = [list(r) for r in good]
    bad[2][11] = "fast"
    nonnum = write_csv(tmp_path / "nonnum.csv", HAT_COLUMNS, bad)
    with pytest.raises(DataError, match=r"row 3: column 'latency_mean_decoder' is not a number: 'fast'"):
        read_latency_csv(nonnum)
    bad[2][11] = "nan"
    with pytest.raises(DataError, match="row 3.*not finite"):
        read_latency_csv(write_csv(tmp_path / "nan.csv", HAT_COLUMNS, bad))
    with pytest.raises(DataError, match="no data rows"):
        read_latency_csv(write_csv(tmp_path / "empty.csv", HAT_COLUMNS, []))
    (tmp_path / "blank.csv").write_text("")
    with pytest.raises(DataError, match="empty file"):
        read_latency_csv(tmp_path / "blank.csv")
    proc = run_cli(
        "train-estimator", "--data", str(nonnum), "--out", str(tmp_path / "e.safetensors"), check=False, fork=True
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "row 3" in proc.stderr
    assert not (tmp_path / "e.safetensors").exists()


def test_hat_format_import_of_the_sample_file():
    data = read_latency_csv(HAT_SAMPLE)
    assert data.format == "hat" and len(data) == 30
    with open(HAT_SAMPLE) as f:
        first = next(csv.DictReader(f))
    assert data.features[0].tolist() == [float(first[c]) for c in HAT_COLUMNS[:10]]
    assert data.total_ms[0] == pytest.approx(
        float(first["latency_mean_encoder"]) + float(first["latency_mean_decoder"])
    )
    assert np.all(data.params > 0)


def test_params_from_features_equals_exact_count(hat_space):
    rng = random.Random(0)
    for _ in range(20):
        arch = Architecture.random(hat_space, rng)
        assert params_from_features(arch.features(), 512, 32768) == pytest.approx(arch.num_params(32768), abs=1e-3)


def synthetic_latency(n: int, seed: int = 0):
    """Tiny-space features and a non-linear latency (decoder layers x width interaction)."""
    space = SearchSpace.load("tiny")
    rng = random.Random(seed)
    feats = np.array([Architecture.random(space, rng).features() for _ in range(n)])
    noise = np.random.default_rng(seed).normal(0, 0.2, n)
    y = 2 + 3 * feats[:, 5] * (feats[:, 6] / 64) ** 2 + feats[:, 1] * feats[:, 0] / 32 + noise
    return space, feats, y


def test_estimator_learns_and_round_trips_through_safetensors(tmp_path):
    space, x, y = synthetic_latency(240)
    recipe = TrainRecipe(hidden=64, layers=3, steps=1500)
    est = LatencyEstimator.fit(x[:200], y[:200], recipe, space.feature_norm, seed=1, space=space.to_dict())
    pred = est.predict(x[200:])
    rmse = float(np.sqrt(np.mean((pred - y[200:]) ** 2)))
    linear = np.linalg.lstsq(np.c_[x[:200], np.ones(200)], y[:200], rcond=None)[0]
    lin_rmse = float(np.sqrt(np.mean((np.c_[x[200:], np.ones(40)] @ linear - y[200:]) ** 2)))
    assert rmse < 0.6 * lin_rmse  # the MLP captures the interaction the linear term cannot
    path = tmp_path / "est.safetensors"
    est.save(path)
    loaded = LatencyEstimator.load(path)
    assert np.array_equal(loaded.predict(x[200:]), pred)
    assert loaded.space == space.to_dict() and loaded.recipe == recipe
    arch = Architecture.random(space, random.Random(5))
    assert loaded.predict_arch(arch) == pytest.approx(float(est.predict([arch.features()])[0]))
    with pytest.raises(UserError, match="trained on space 'tiny'"):
        loaded.predict_arch(Architecture.smallest(SearchSpace.load("hat_wmt14_en_de")))
    assert path.read_bytes()[8:9] == b"{"  # safetensors: 8-byte header length, then a JSON header


def test_estimator_load_refuses_other_files(tmp_path):
    torch.save({"model": {}}, tmp_path / "ckpt.pt")
    (tmp_path / "text.safetensors").write_text("hello")
    from safetensors.torch import save_file

    save_file({"w": torch.zeros(2)}, str(tmp_path / "plain.safetensors"))
    for name, match in (
        ("ckpt.pt", "not a safetensors"),
        ("text.safetensors", "not a safetensors"),
        ("plain.safetensors", "without a mos-fairseq latency estimator header"),
        ("absent.safetensors", "does not exist"),
    ):
        with pytest.raises(CheckpointError, match=match):
            LatencyEstimator.load(tmp_path / name)


def test_evaluation_reports_every_model_on_the_same_split():
    _, x, y = synthetic_latency(200, seed=1)
    from mos_fairseq.latency.dataset import LatencyDataset

    data = LatencyDataset(
        "synthetic", "hat", x, y * 0.1, y * 0.9, np.array([params_from_features(f, 32, 1000) for f in x])
    )
    ev = evaluate(
        data,
        TrainRecipe(hidden=32, steps=600),
        holdout=0.2,
        seed=3,
        feature_norm=SearchSpace.load("tiny").feature_norm,
        hat_recipe=dataclasses.replace(HAT_RECIPE, hidden=32, steps=300),
    )
    assert set(ev.report["models"]) == {"mlp", "hat_recipe", "least_squares", "linear_params"}
    assert ev.report["n_test"] == 40 and ev.report["n_train"] == 160
    for s in ev.report["models"].values():
        assert set(s) == {"rmse", "mae", "mape", "within_10pct", "r2", "kendall_tau"} and s["rmse"] >= s["mae"] - 1e-9
        assert 0 <= s["within_10pct"] <= 100 and s["mape"] >= 0
    assert ev.report["models"]["mlp"]["r2"] > ev.report["models"]["linear_params"]["r2"]
    assert (HAT_RECIPE.hidden, HAT_RECIPE.layers, HAT_RECIPE.lr, HAT_RECIPE.steps, HAT_RECIPE.batch_size) == (
        400,
        3,
        1e-5,
        5000,
        128,
    )


def test_recipe_is_chosen_by_cross_validation_and_recorded(tmp_path):
    """With no recipe given, k-fold CV on the training rows picks the recipe (lowest CV RMSE); the pick is
    recorded in the report and the estimator file, and the trees of a gbt/ensemble pick round-trip."""
    from mos_fairseq.latency.dataset import LatencyDataset
    from mos_fairseq.latency.evaluation import cross_validate
    from mos_fairseq.latency.recipes import GBT_RECIPE, LEAST_SQUARES

    space, x, y = synthetic_latency(160, seed=2)
    data = LatencyDataset(
        "synthetic", "hat", x, y * 0.1, y * 0.9, np.array([params_from_features(f, 32, 1000) for f in x])
    )
    mlp = TrainRecipe(hidden=32, steps=400)
    pool = [mlp, LEAST_SQUARES, GBT_RECIPE, dataclasses.replace(mlp, name="ensemble", kind="ensemble")]
    ev = evaluate(
        data, None, holdout=0.2, seed=3, feature_norm=space.feature_norm, hat_recipe=None, candidates=pool, folds=4
    )
    sel = ev.report["selection"]
    assert set(sel["cv"]) == {"mlp", "least_squares", "gbt", "ensemble"} and sel["folds"] == 4
    assert sel["chosen"] == min(sel["cv"], key=lambda n: sel["cv"][n]["rmse"]) == ev.estimator.recipe.name
    assert set(ev.report["models"]) == {"mlp", "least_squares", "gbt", "ensemble", "linear_params"}
    # the interaction in the data is non-linear: least squares must not win the CV
    assert sel["cv"]["least_squares"]["rmse"] > min(s["rmse"] for s in sel["cv"].values())
    assert ev.estimator.info["recipe_selection"]["chosen"] == sel["chosen"]
    cv_again = cross_validate(x[:128], y[:128], [LEAST_SQUARES], 4, 3, space.feature_norm, data.feature_names)
    lstsq = np.linalg.lstsq(np.c_[x[:96] / space.feature_norm, np.ones(96)], y[:96], rcond=None)[0]  # sanity: LS is LS
    assert cv_again["least_squares"]["rmse"] > 0 and np.isfinite(lstsq).all()
    for recipe in (GBT_RECIPE, pool[-1], LEAST_SQUARES):
        est = LatencyEstimator.fit(x[:128], y[:128], recipe, space.feature_norm, seed=1, space=space.to_dict())
        est.save(tmp_path / f"{recipe.name}.safetensors")
        loaded = LatencyEstimator.load(tmp_path / f"{recipe.name}.safetensors")
        assert np.allclose(loaded.predict(x[128:]), est.predict(x[128:])) and loaded.recipe == recipe
        assert (loaded.trees is not None) == (recipe.kind != "mlp") and (len(loaded.models) > 0) == (
            recipe.kind != "gbt" and recipe.steps > 0
        )
    ls = LatencyEstimator.fit(x[:128], y[:128], LEAST_SQUARES, space.feature_norm, seed=1)
    sk = np.c_[x[:128] / space.feature_norm, np.ones(128)]
    coef = np.linalg.lstsq(sk, y[:128], rcond=None)[0]
    assert np.allclose(
        ls.predict(x[128:]), np.maximum(np.c_[x[128:] / space.feature_norm, np.ones(32)] @ coef, 0), atol=1e-6
    )


def test_cli_measure_train_predict(tmp_path):
    csv_path = tmp_path / "latency_data" / "tiny_cpu.csv"
    run_cli(
        "measure-latency",
        "--space",
        "tiny",
        "--n-archs",
        "12",
        "--repeats",
        "3",
        "--warmup",
        "0",
        "--src-len",
        "6",
        "--tgt-len",
        "4",
        "--beam",
        "2",
        "--threads",
        "1",
        "--vocab-size",
        "64",
        "--no-progress",
        "--out",
        str(csv_path),
    )
    side = json.loads(csv_path.with_suffix(".json").read_text())
    assert side["protocol"]["repeats"] == 3 and side["device"]["torch_threads"] == 1 and side["space"]["name"] == "tiny"
    assert list(read_rows(csv_path)[0]) == list(our_columns(HAT_COLUMNS[:10])) and len(read_rows(csv_path)) == 12
    est, report = tmp_path / "tiny.safetensors", tmp_path / "report.json"
    proc = run_cli(
        "train-estimator",
        "--data",
        str(csv_path),
        "--out",
        str(est),
        "--report",
        str(report),
        "--hidden",
        "16",
        "--steps",
        "200",
        "--holdout",
        "0.25",
        "--no-hat-recipe",
        "--recipe",
        "mlp",
    )
    assert "least_squares" in proc.stdout and est.with_suffix(".png").stat().st_size > 1000
    assert "recipe: mlp (given)" in proc.stdout
    scores = json.loads(report.read_text())["models"]
    assert set(scores) == {"mlp", "least_squares", "linear_params"}
    arch = tmp_path / "a.yml"
    Architecture.largest(SearchSpace.load("tiny")).save(arch)
    out = run_cli("predict-latency", "--estimator", str(est), "--arch", str(arch), "--json").stdout
    expected = LatencyEstimator.load(est).predict_arch(Architecture.load(arch))
    assert json.loads(out)["latency_ms"] == pytest.approx(expected, abs=1e-3) and expected >= 0


def test_remeasure_replaces_only_the_given_rows(tiny_space, tmp_path):
    out = tmp_path / "run.csv"
    protocol = Protocol(repeats=3, warmup=0, vocab_size=64, src_len=5, tgt_len=3, beam=2)
    measure_space(tiny_space, protocol, 4, seed=2, out=out, progress=False, timer=ClockThatDies(3, 2.0))
    before = read_rows(out)
    assert (
        measure_space(
            tiny_space, protocol, 4, seed=2, out=out, progress=False, timer=ClockThatDies(3, 7.0), remeasure=[1, 2]
        )
        == 2
    )
    after = read_rows(out)
    assert [r["arch"] for r in after] == [r["arch"] for r in before]
    assert after[0] == before[0] and after[3] == before[3]
    assert (
        float(after[1]["latency_mean_encoder"])
        == pytest.approx(7.0)
        == pytest.approx(float(after[2]["latency_mean_encoder"]))
    )
    assert json.loads(out.with_suffix(".json").read_text())["remeasured"][0]["rows"] == [1, 2]
    with pytest.raises(UserError, match=r"row id\(s\) \[9\] are not in"):
        measure_space(tiny_space, protocol, 4, seed=2, out=out, progress=False, remeasure=[9])


def test_predict_latency_checks_an_estimator_against_a_latency_csv(tmp_path):
    """`predict-latency --data`: every row predicted in row order, and RMSE / MAPE / ±10% / Kendall τ
    computed against the measured latencies (checked here independently); HAT's format too."""
    from scipy.stats import kendalltau

    space = SearchSpace.load("hat_wmt14_en_de")
    data = read_latency_csv(HAT_SAMPLE)
    est = LatencyEstimator.fit(
        data.features[:20],
        data.total_ms[:20],
        TrainRecipe(steps=0, early_stop=0.0),
        space.feature_norm,
        seed=1,
        space=space.to_dict(),
    )
    est.save(tmp_path / "e.safetensors")
    out = json.loads(
        run_cli(
            "predict-latency", "--estimator", str(tmp_path / "e.safetensors"), "--data", str(HAT_SAMPLE), "--json"
        ).stdout
    )
    pred = est.predict(data.features)
    assert out["rows"] == len(data) == len(out["predictions"])
    assert [p["predicted_ms"] for p in out["predictions"]] == pytest.approx(pred.tolist(), abs=1e-3)
    assert [p["measured_ms"] for p in out["predictions"]] == pytest.approx(data.total_ms.tolist(), abs=1e-3)
    rel = np.abs(pred - data.total_ms) / data.total_ms
    assert out["rmse"] == pytest.approx(float(np.sqrt(np.mean((pred - data.total_ms) ** 2))))
    assert out["mape"] == pytest.approx(100 * rel.mean()) and out["within_10pct"] == pytest.approx(
        100 * (rel <= 0.1).mean()
    )
    assert out["kendall_tau"] == pytest.approx(kendalltau(data.total_ms, pred).statistic)
    text = run_cli("predict-latency", "--estimator", str(tmp_path / "e.safetensors"), "--data", str(HAT_SAMPLE)).stdout
    assert f"RMSE {out['rmse']:.3f} ms" in text and "Kendall tau" in text
    proc = run_cli("predict-latency", "--estimator", str(tmp_path / "e.safetensors"), check=False, fork=True)
    assert proc.returncode == 2 and "give --arch" in proc.stderr


def test_spread_order_covers_the_space_early_and_resumes(tmp_path):
    """--order spread: the first architectures cover decoder depth and widths in balance, the order does
    not depend on n, and resuming in another order is refused."""
    from mos_fairseq.latency.orders import spread_architectures

    space = SearchSpace.load("hat_wmt14_en_de")
    spread = spread_architectures(space, 24, 1)
    assert [a.to_json() for a in spread_architectures(space, 10, 1)] == [a.to_json() for a in spread[:10]]
    assert len({a.to_json() for a in spread}) == 24

    depths = [a.decoder_layers for a in spread[:12]]  # every depth early, and in balance
    assert sorted(depths[:6]) == sorted(space.decoder["layers"]) and all(depths.count(d) == 2 for d in set(depths))
    widths = [a.encoder_embed_dim for a in spread[:12]]
    assert all(widths.count(w) == 6 for w in space.encoder["embed_dim"])
    out = tmp_path / "s.csv"
    args = [
        "measure-latency",
        "--space",
        "tiny",
        "--n-archs",
        "3",
        "--repeats",
        "2",
        "--warmup",
        "0",
        "--src-len",
        "4",
        "--tgt-len",
        "3",
        "--beam",
        "1",
        "--threads",
        "1",
        "--vocab-size",
        "32",
        "--no-progress",
        "--out",
        str(out),
    ]
    run_cli(*args, "--order", "spread")
    rows = read_rows(out)
    tiny_spread = spread_architectures(SearchSpace.load("tiny"), 3, 1)
    assert [json.loads(r["arch"]) for r in rows] == [json.loads(a.to_json()) for a in tiny_spread]
    assert json.loads(out.with_suffix(".json").read_text())["order"] == "spread"
    before = out.read_bytes()
    proc = run_cli(*args[:4], "4", *args[5:], check=False, fork=True)  # resume in the default (uniform) order
    assert proc.returncode == 2 and "spread order" in proc.stderr and out.read_bytes() == before


def test_adapting_an_estimator_to_a_new_device_from_few_rows(tmp_path):
    """--init-from: an estimator of one device recalibrated on 12 rows of another (which is 1.7x slower,
    +3 ms, with decoder depth costing relatively more) predicts the new device far better than
    fitting those 12 rows from scratch; the file is an ordinary estimator; the CLI report compares both."""
    from mos_fairseq.latency.adaptation import adapt

    space, x, y = synthetic_latency(300)
    source = LatencyEstimator.fit(
        x[:240],
        y[:240],
        TrainRecipe(hidden=64, layers=3, steps=1500),
        space.feature_norm,
        seed=1,
        space=space.to_dict(),
    )
    y_new = 1.7 * y + 3 + 0.4 * x[:, 5]
    adapted = adapt(source, x[:12], y_new[:12])
    scratch = LatencyEstimator.fit(
        x[:12],
        y_new[:12],
        TrainRecipe(hidden=64, layers=3, steps=1500),
        space.feature_norm,
        seed=1,
        space=space.to_dict(),
    )
    rmse = lambda est: float(np.sqrt(np.mean((est.predict(x[240:]) - y_new[240:]) ** 2)))  # noqa: E731
    assert rmse(adapted) < 0.5 * rmse(scratch)
    assert adapted.adaptation["scale"] == pytest.approx(1.7, rel=0.15) and adapted.adaptation["rows"] == 12
    adapted.save(tmp_path / "a.safetensors")
    assert np.allclose(LatencyEstimator.load(tmp_path / "a.safetensors").predict(x[240:]), adapted.predict(x[240:]))
    again = adapt(adapted, x[12:30], 2 * y_new[12:30])  # adapting an adapted estimator composes the two
    assert np.allclose(again.predict(x[240:]), 2 * y_new[240:], rtol=0.2)
    with pytest.raises(UserError, match="at least 3 rows"):
        adapt(source, x[:2], y_new[:2])
    # the CLI: train-estimator --init-from reports adapted beside from-scratch on the same hold-out
    source.save(tmp_path / "source.safetensors")
    rows = [[*map(float, f), float(t) / 2, float(t) / 2, 0.0, 0.0] for f, t in zip(x[:60], y_new[:60])]
    csv_path = write_csv(tmp_path / "new.csv", HAT_COLUMNS, rows)
    report = tmp_path / "r.json"
    out = run_cli(
        "train-estimator",
        "--data",
        str(csv_path),
        "--init-from",
        str(tmp_path / "source.safetensors"),
        "--out",
        str(tmp_path / "new.safetensors"),
        "--recipe",
        "mlp",
        "--no-hat-recipe",
        "--holdout",
        "0.5",
        "--steps",
        "300",
        "--report",
        str(report),
    ).stdout
    rep = json.loads(report.read_text())
    assert rep["chosen"] == "adapted" and "mlp" in rep["models"] and "adapted from" in out
    assert rep["models"]["adapted"]["rmse"] < rep["models"]["mlp"]["rmse"]
    assert LatencyEstimator.load(tmp_path / "new.safetensors").adaptation is not None


def test_adaptation_chooses_by_cross_validation_and_is_never_worse_than_scratch(tmp_path):
    """The choice of --init-from: a source that carries over is recalibrated and beats the fit from
    scratch; with a source of an unrelated device (its latencies shuffled) the lowest CV error still
    wins and the chosen estimator predicts about as well as the fit from scratch; a blend survives
    save/load."""
    from mos_fairseq.latency.adaptation import Choice, build_choice, choose, fold_ids
    from mos_fairseq.latency.evaluation import out_of_fold
    from mos_fairseq.latency.recipes import LEAST_SQUARES

    space, x, y = synthetic_latency(300)
    recipe = TrainRecipe(hidden=32, layers=2, steps=400)
    source = LatencyEstimator.fit(x[:200], y[:200], recipe, space.feature_norm, seed=1)
    unrelated = LatencyEstimator.fit(
        x[:200], np.random.default_rng(3).permutation(y[:200]), recipe, space.feature_norm, seed=1
    )
    new_x, new_y = x[200:260], 1.5 * y[200:260] + 1.0
    fold_of = fold_ids(len(new_y), 5, seed=1)
    oof = out_of_fold(new_x, new_y, [LEAST_SQUARES], fold_of, 1, space.feature_norm, space.latency_feature_names)
    scratch = LatencyEstimator.fit(
        new_x, new_y, LEAST_SQUARES, space.feature_norm, 1, None, space.latency_feature_names
    )
    rmse = lambda est: float(np.sqrt(np.mean((est.predict(x[260:]) - (1.5 * y[260:] + 1.0)) ** 2)))  # noqa: E731
    good, _ = choose(source, new_x, new_y, fold_of, oof)
    bad, bad_oof = choose(unrelated, new_x, new_y, fold_of, oof)
    assert good.kind in ("recalibrated", "blend") and set(good.cv) >= {
        "recalibrated_linear",
        "recalibrated_log",
        "scratch_linear_features".replace("linear_features", LEAST_SQUARES.name),
    }
    assert bad.cv[bad.name]["rmse"] == min(c["rmse"] for c in bad.cv.values())  # the lowest CV error wins
    assert bad.cv[bad.name]["rmse"] < bad.cv["recalibrated_linear"]["rmse"] or bad.kind == "recalibrated"
    assert len(bad_oof) == len(new_y)
    chosen_bad = build_choice(bad, unrelated, scratch, new_x, new_y)
    assert rmse(chosen_bad) <= 1.05 * rmse(scratch) and rmse(build_choice(good, source, scratch, new_x, new_y)) < rmse(
        scratch
    )
    blend = build_choice(
        Choice("blend_0.5", "blend", "log", LEAST_SQUARES.name, 0.5, {}), source, scratch, new_x, new_y
    )
    expected = 0.5 * scratch.predict(x[260:]) + 0.5 * build_choice(
        Choice("r", "recalibrated", "log", None, 1.0, {}), source, None, new_x, new_y
    ).predict(x[260:])
    assert np.allclose(blend.predict(x[260:]), expected)
    blend.save(tmp_path / "blend.safetensors")
    assert np.allclose(LatencyEstimator.load(tmp_path / "blend.safetensors").predict(x[260:]), expected)


def test_train_estimator_holdout_zero_fits_every_row_and_reports_cross_validation(tmp_path):
    """--holdout 0: every row trains, the report says nothing is held out and gives out-of-fold figures,
    with and without --init-from."""
    space, x, y = synthetic_latency(40)
    rows = [[*map(float, f), float(t) / 2, float(t) / 2, 0.0, 0.0] for f, t in zip(x, y)]
    csv_path = write_csv(tmp_path / "few.csv", HAT_COLUMNS, rows)
    source = LatencyEstimator.fit(
        *synthetic_latency(200, seed=5)[1:], TrainRecipe(hidden=16, layers=1, steps=100), space.feature_norm
    )
    source.save(tmp_path / "source.safetensors")
    for extra in ([], ["--init-from", str(tmp_path / "source.safetensors")]):
        report = tmp_path / f"r{len(extra)}.json"
        out = run_cli(
            "train-estimator",
            "--data",
            str(csv_path),
            "--out",
            str(tmp_path / f"e{len(extra)}.safetensors"),
            "--holdout",
            "0",
            "--steps",
            "100",
            "--hidden",
            "16",
            "--no-hat-recipe",
            "--report",
            str(report),
            *extra,
        ).stdout
        rep = json.loads(report.read_text())
        assert rep["n_train"] == 40 and rep["n_test"] == 0 and "out-of-fold" in rep["scored_on"]
        assert "none held out (--holdout 0)" in out and rep["models"][rep["chosen"]]["rmse"] > 0
        est = LatencyEstimator.load(tmp_path / f"e{len(extra)}.safetensors")
        assert est.info["rows_train"] == 40 and "cv_scores" in est.info and "holdout_scores" not in est.info
    assert rep["chosen"] == "adapted" and "choice" in rep["adapted_from"] and "lowest CV RMSE" in out
    proc = run_cli(
        "train-estimator",
        "--data",
        str(csv_path),
        "--out",
        str(tmp_path / "x.safetensors"),
        "--holdout",
        "1",
        check=False,
        fork=True,
    )
    assert (
        proc.returncode == 2
        and "--holdout must be in [0, 1)" in proc.stderr
        and not (tmp_path / "x.safetensors").exists()
    )


TORCH_ONLY = """
import runpy, sys
sys.modules["fairseq"] = None  # the runner must work where neither is installed
sys.modules["mos_fairseq"] = None
sys.argv = ["torch_latency.py", *sys.argv[1:]]
runpy.run_path(sys.argv[0].replace("torch_latency.py", r"{script}"), run_name="__main__")
"""


def test_torch_only_runner_times_a_plan_into_our_csv_format(tmp_path):
    """measure-latency --plan + scripts/torch_latency.py (torch only): the same architectures, parameters
    and features as measure-latency writes, positive latencies, a sidecar mos-nas reads, and a rerun
    that continues instead of repeating."""
    import subprocess
    import sys

    common = [
        "--space",
        "tiny",
        "--n-archs",
        "5",
        "--repeats",
        "3",
        "--warmup",
        "1",
        "--src-len",
        "6",
        "--tgt-len",
        "4",
        "--beam",
        "2",
        "--threads",
        "1",
        "--vocab-size",
        "48",
        "--order",
        "spread",
    ]
    run_cli("measure-latency", *common, "--plan", str(tmp_path / "plan.json"))
    run_cli("measure-latency", *common, "--out", str(tmp_path / "host.csv"), "--no-progress")
    code = TORCH_ONLY.format(script=str(REPO / "scripts" / "torch_latency.py"))
    cmd = [sys.executable, "-c", code, "--plan", str(tmp_path / "plan.json"), "--out", str(tmp_path / "board.csv")]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    host, board = read_latency_csv(tmp_path / "host.csv"), read_latency_csv(tmp_path / "board.csv")
    assert board.archs == host.archs and np.array_equal(board.features, host.features)
    assert np.array_equal(board.params, host.params) and np.all(board.total_ms > 0)
    side = json.loads((tmp_path / "board.json").read_text())
    assert side["protocol"]["repeats"] == 3 and side["order"] == "spread" and side["device"]["torch_threads"] == 1
    before = (tmp_path / "board.csv").read_text()
    again = subprocess.run(cmd, capture_output=True, text=True)
    assert again.returncode == 0 and (tmp_path / "board.csv").read_text() == before


def test_interleaved_checkpoint_latency_rotates_the_order_and_takes_each_models_median(tmp_path, monkeypatch):
    """--rounds: every round times each model once, in a rotated order, and each model's latency is its
    median over rounds, so a slow spell of the host (here: the whole second round) biases none of them."""
    from mos_fairseq.latency import checkpoint_latency as cl
    from mos_fairseq.latency.measure import LatencyStats

    names = ["a", "b", "c"]
    paths = []
    for n in names:
        (tmp_path / f"{n}.pt").write_bytes(n.encode())
        paths.append(tmp_path / f"{n}.pt")
    base_ms = {"a": 10.0, "b": 20.0, "c": 30.0}
    order: list[str] = []

    class Model(torch.nn.Module):
        def __init__(self, name: str):
            super().__init__()
            self.name, self.w = name, torch.nn.Parameter(torch.zeros(len(name) + 1))

    def fake_measure(model, protocol, timer):
        order.append(model.name)
        slowdown = 1.5 if 4 <= len(order) <= 6 else 1.0  # the host runs slow for one round's worth
        return LatencyStats(1.0, base_ms[model.name] * slowdown - 1.0, 0.1, 0.2)

    monkeypatch.setattr(cl, "load_translation_model", lambda p: Model(Path(p).stem))
    monkeypatch.setattr(cl, "measure_model", fake_measure)
    out = tmp_path / "models.json"
    data = cl.measure_checkpoints(paths, Protocol(threads=1, repeats=2, warmup=0), out, rounds=3)
    assert order == ["a", "b", "c", "b", "c", "a", "c", "a", "b"]
    entries = {Path(k).stem: v for k, v in data["models"].items()}
    for n in names:
        e = entries[n]
        assert len(e["rounds_ms"]) == 3 and e["latency_ms"] == sorted(e["rounds_ms"])[1]
        assert e["measured_with"] == 3 and e["params"] == 2
    assert len({e["measured_at"] for e in entries.values()}) == 1
    # timed one after the other, the model measured in the slow spell would read 1.5x; here none does
    assert {n: entries[n]["latency_ms"] for n in names} == pytest.approx(base_ms)
    assert max(entries["b"]["rounds_ms"]) == pytest.approx(1.5 * base_ms["b"])
    assert json.loads(out.read_text()) == data
    # an interleaved call re-measures what it is given, even if the file holds it already
    cl.measure_checkpoints(paths[:2], Protocol(threads=1, repeats=2, warmup=0), out, rounds=2)
    assert order[9:] == ["a", "b", "b", "a"]
    before = out.read_bytes()
    with pytest.raises(UserError, match="--rounds must be >= 1"):
        cl.measure_checkpoints(paths, Protocol(threads=1, repeats=2, warmup=0), out, rounds=0)
    assert out.read_bytes() == before


def test_an_estimator_file_naming_least_squares_by_its_former_name_loads(tmp_path):
    """Files written before the recipe was called ``least_squares`` record ``linear_features``; they load
    as today's recipe and predict what they predicted; ``--recipe linear_features`` still chooses it."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    from mos_fairseq.cli import build_parser
    from mos_fairseq.latency.recipes import LEAST_SQUARES

    space, x, y = synthetic_latency(60)
    est = LatencyEstimator.fit(x, y, LEAST_SQUARES, space.feature_norm, seed=1)
    est.save(tmp_path / "new.safetensors")
    with safe_open(str(tmp_path / "new.safetensors"), framework="pt") as f:
        head = json.loads(f.metadata()["mos_fairseq"])
    head["recipe"]["name"] = "linear_features"
    save_file({}, str(tmp_path / "old.safetensors"), metadata={"mos_fairseq": json.dumps(head)})
    old = LatencyEstimator.load(tmp_path / "old.safetensors")
    assert old.recipe == LEAST_SQUARES and old.recipe.name == "least_squares"
    assert np.array_equal(old.predict(x[:5]), est.predict(x[:5]))
    args = build_parser().parse_args(
        ["train-estimator", "--data", "d.csv", "--out", "e", "--recipe", "linear_features"]
    )
    assert args.recipe == "least_squares"
