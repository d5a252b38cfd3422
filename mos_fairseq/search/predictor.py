"""A loss (perplexity) predictor for the search, as SuperShaper's: a regressor from the
architecture encoding to the subnet's validation loss, trained on sampled subnets scored inside
the supernet. With ``mos-nas search --predictor FILE`` the evolution ranks candidates by the
prediction instead of running each one (the picks are then scored for real).

Models: gradient-boosted trees (scikit-learn's ``GradientBoostingRegressor``) or an MLP
(``MLPRegressor``). Both are written as plain JSON (tree arrays, weight matrices) and predicted
with numpy (:mod:`mos_fairseq.base.json_models`), so loading never unpickles. ``train-predictor``
reports held-out RMSE, R² and Kendall's tau of both models and of least squares on the same split.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from mos_fairseq.base.errors import DataError, UserError
from mos_fairseq.base.files import write_text_atomic
from mos_fairseq.base.json_models import KINDS, fit_sklearn, predict_json_model, to_json_model

FORMAT_TAG = "mos-fairseq/loss-predictor"


def scores(pred: np.ndarray, y: np.ndarray) -> dict[str, float]:
    from scipy.stats import kendalltau

    err = pred - y
    ss = float(((y - y.mean()) ** 2).sum())
    return {
        "rmse": float(np.sqrt((err**2).mean())),
        "mae": float(np.abs(err).mean()),
        "r2": 1.0 - float((err**2).sum()) / ss if ss > 0 else 0.0,
        "kendall_tau": float(kendalltau(pred, y).statistic),
    }


class LossPredictor:
    """Predicts a subnet's validation loss (bits) from its normalised encoding."""

    def __init__(self, spec: dict[str, Any], info: dict[str, Any]):
        self.spec, self.info = spec, info

    @classmethod
    def fit(
        cls, x: np.ndarray, y: np.ndarray, kind: str = "gbt", seed: int = 1, info: dict | None = None
    ) -> LossPredictor:
        return cls(to_json_model(kind, fit_sklearn(kind, x, y, seed)), dict(info or {}))

    def predict(self, x: np.ndarray | Sequence[Sequence[float]]) -> np.ndarray:
        return predict_json_model(self.spec, np.asarray(x, dtype=np.float64))

    def predict_arch(self, arch) -> float:
        space = self.info.get("space")
        if space is not None and arch.space.name != space:
            raise UserError(f"predictor was trained on space '{space}', the architecture is in '{arch.space.name}'")
        return float(self.predict([arch.normalized_features()])[0])

    def save(self, path: str | Path) -> None:
        write_text_atomic(Path(path), json.dumps({"format": FORMAT_TAG, "info": self.info, "model": self.spec}) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> LossPredictor:
        path = Path(path)
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError, UnicodeDecodeError):
            raise UserError(f"'{path}' is not a loss predictor (mos-nas train-predictor writes JSON)") from None
        if not isinstance(data, dict) or data.get("format") != FORMAT_TAG:
            raise UserError(f"'{path}' is not a loss predictor (mos-nas train-predictor writes JSON)")
        return cls(data["model"], data.get("info", {}))


def sample_scored_subnets(supernet, batches, n: int, seed: int, device: str = "cpu") -> tuple[list, np.ndarray]:
    """``n`` distinct random subnets (plus the largest and smallest) and their validation losses."""
    from mos_fairseq.core.validation import SubnetEvaluator

    evaluator = SubnetEvaluator(supernet, batches, device=device)
    rng = random.Random(seed)
    arch_type, space = supernet.arch_type, supernet.space
    archs = [arch_type.largest(space), arch_type.smallest(space)]
    seen: set[str] = set()
    seen.update(a.to_json() for a in archs)
    for _ in range(50 * n):
        if len(archs) >= n:
            break
        a = arch_type.random(space, rng)
        if a.to_json() not in seen:
            seen.add(a.to_json())
            archs.append(a)
    if len(archs) < 10:
        raise DataError(f"the space has too few distinct subnets ({len(archs)}) to train a predictor")
    return archs, np.array([evaluator.loss(a) for a in archs])


def holdout_report(x: np.ndarray, y: np.ndarray, holdout: float, seed: int) -> dict[str, Any]:
    """Held-out scores of both predictor kinds and of least squares on one split."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(y))
    n_test = max(2, int(round(holdout * len(y))))
    test, train = order[:n_test], order[n_test:]
    report: dict[str, Any] = {"n_train": int(len(train)), "n_test": int(len(test)), "models": {}}
    for kind in KINDS:
        model = LossPredictor.fit(x[train], y[train], kind, seed)
        report["models"][kind] = scores(model.predict(x[test]), y[test])
    a = np.c_[x[train], np.ones(len(train))]
    coef = np.linalg.lstsq(a, y[train], rcond=None)[0]
    report["models"]["least_squares"] = scores(np.c_[x[test], np.ones(len(test))] @ coef, y[test])
    return report
