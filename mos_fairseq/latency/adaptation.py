"""A latency estimator for a new device from a few of its measurements: ``train-estimator --init-from``.

Two ways to use a known device's estimator on a new device's rows, and the choice between them:

- **Recalibration**: the known estimator keeps its shape and the new rows fit a step on top of it,
  ``a * latency_known(x) + b + c . z(x)`` (``linear``) or ``exp(a * log latency_known(x) + b + c . z(x))``
  (``log``: for devices whose costs differ by factors), ``z`` the known estimator's standardised
  features, ``a`` and ``b`` free and ``c`` a ridge correction whose strength is chosen by
  leave-one-out error on the new rows (exact, closed form). Stored in the estimator's header
  (:mod:`mos_fairseq.latency.recalibration`); the result is an ordinary estimator file.
- **From scratch**: the new rows alone, with the estimator recipes of ``train-estimator``.

Which one a device pair wants cannot be known beforehand (a recalibration that carries over
between two thread counts of one CPU may not between two CPUs), so :func:`choose` decides by
k-fold cross-validation on the new rows: both recalibrations, every from-scratch recipe, and blends
of the best recalibration with the best from-scratch fit are scored out of fold on the same folds,
and the lowest RMSE wins (ties: the simpler model). The choice and every candidate's CV figures go
into the report.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

from mos_fairseq.base.errors import UserError
from mos_fairseq.latency.estimator import LatencyEstimator
from mos_fairseq.latency.recalibration import LOG_FLOOR_MS, apply_recalibration, compose
from mos_fairseq.latency.scores import scores

RIDGE_GRID = (1e-3, 1e-2, 0.1, 1.0, 10.0, 100.0, 1e3, 1e4, 1e6)
MIN_ROWS = 3
RECALIBRATIONS = ("linear", "log")
BLEND_WEIGHTS = (0.25, 0.5, 0.75)  # weight of the recalibrated estimator in a blend


def _ridge(x: np.ndarray, y: np.ndarray, lam: float) -> tuple[np.ndarray, np.ndarray]:
    """Coefficients and leave-one-out residuals; the first two columns (scale, offset) are not penalised."""
    penalty = np.diag([0.0, 0.0] + [lam] * (x.shape[1] - 2))
    inv = np.linalg.pinv(x.T @ x + penalty)
    coef = inv @ x.T @ y
    hat = np.einsum("ij,jk,ik->i", x, inv, x)
    loo = (y - x @ coef) / np.maximum(1.0 - hat, 1e-9)
    return coef, loo


def _check(source: LatencyEstimator, x: np.ndarray, y: np.ndarray) -> None:
    if len(y) < MIN_ROWS:
        raise UserError(f"--init-from needs at least {MIN_ROWS} rows of the new device, got {len(y)}")
    if x.shape[1] != len(source.feature_names):
        raise UserError(f"the new device's rows have {x.shape[1]} features, the estimator {len(source.feature_names)}")


def adapt(
    source: LatencyEstimator,
    features: np.ndarray,
    latency_ms: np.ndarray,
    grid: tuple[float, ...] = RIDGE_GRID,
    space: str = "linear",
) -> LatencyEstimator:
    """``source`` recalibrated (``space`` ``linear`` or ``log``) to the rows ``(features, latency_ms)`` of another device."""
    if space not in RECALIBRATIONS:
        raise UserError(f"unknown recalibration {space!r} (one of {list(RECALIBRATIONS)})")
    x = np.asarray(features, dtype=np.float64)
    y = np.asarray(latency_ms, dtype=np.float64)
    _check(source, x, y)
    base = source.predict(x)
    if space == "log":
        base, y = np.log(np.maximum(base, LOG_FLOOR_MS)), np.log(np.maximum(y, LOG_FLOOR_MS))
    design = np.c_[base, np.ones(len(base)), source.standardized(x)]
    fits = {lam: _ridge(design, y, lam) for lam in grid}
    lam = min(grid, key=lambda g: (float(np.mean(fits[g][1] ** 2)), -g))  # ties: the stronger pull to the source
    coef = fits[lam][0]
    step = {
        "space": space,
        "scale": float(coef[0]),
        "offset": float(coef[1]),
        "correction": [float(v) for v in coef[2:]],
        "ridge": lam,
        "loo_rmse": float(np.sqrt(np.mean(fits[lam][1] ** 2))),
        "rows": int(len(y)),
    }
    return dataclasses.replace(source, info={}, adaptation=compose(source.adaptation, step))


def fold_ids(n: int, folds: int, seed: int) -> np.ndarray:
    """The fold of each of ``n`` rows (``folds`` at most ``n // 2``): the same assignment for every
    candidate, so that their out-of-fold predictions are compared on equal terms."""
    folds = min(folds, n // 2)
    if folds < 2:
        raise UserError(f"{n} training rows are too few to cross-validate the estimator recipes (need >= 4)")
    return np.random.default_rng(seed + 7919).permutation(n) % folds


def recalibration_oof(
    source: LatencyEstimator, x: np.ndarray, y: np.ndarray, fold_of: np.ndarray, space: str
) -> np.ndarray:
    """Out-of-fold predictions of :func:`adapt` over the folds ``fold_of``."""
    pred = np.empty(len(y))
    for k in np.unique(fold_of):
        train, test = fold_of != k, fold_of == k
        if train.sum() < MIN_ROWS:
            raise UserError(f"{len(y)} rows are too few to cross-validate the recalibration")
        pred[test] = adapt(source, x[train], y[train], space=space).predict(x[test])
    return pred


@dataclass(frozen=True)
class Choice:
    """What :func:`choose` picked: ``kind`` recalibrated / scratch / blend, the recalibration's space,
    the from-scratch recipe, the blend's weight of the recalibrated part, and every candidate's CV scores."""

    name: str
    kind: str
    recalibration: str | None
    recipe: str | None
    weight: float
    cv: dict[str, dict[str, float]]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def candidate_oof(
    source: LatencyEstimator, x: np.ndarray, y: np.ndarray, fold_of: np.ndarray, scratch_oof: dict[str, np.ndarray]
) -> dict[str, tuple[tuple[str, str | None, str | None, float], np.ndarray]]:
    """Every candidate's out-of-fold predictions, by name: ``(kind, recalibration, recipe, weight)`` and the predictions."""
    out: dict[str, tuple[tuple[str, str | None, str | None, float], np.ndarray]] = {}
    for space in RECALIBRATIONS:
        out[f"recalibrated_{space}"] = (
            ("recalibrated", space, None, 1.0),
            recalibration_oof(source, x, y, fold_of, space),
        )
    for recipe, pred in scratch_oof.items():
        out[f"scratch_{recipe}"] = (("scratch", None, recipe, 0.0), np.asarray(pred, dtype=np.float64))
    rmse = {name: float(np.sqrt(np.mean((pred - y) ** 2))) for name, (_, pred) in out.items()}
    best_recal = min((n for n in out if n.startswith("recalibrated_")), key=lambda n: (rmse[n], n))
    scratch = [n for n in out if n.startswith("scratch_")]
    if scratch:
        best_scratch = min(scratch, key=lambda n: (rmse[n], n))
        recal_pred, scratch_pred = out[best_recal][1], out[best_scratch][1]
        best_space, best_recipe = out[best_recal][0][1], out[best_scratch][0][2]
        for w in BLEND_WEIGHTS:
            out[f"blend_{w:g}"] = (("blend", best_space, best_recipe, w), w * recal_pred + (1 - w) * scratch_pred)
    return out


def choose(
    source: LatencyEstimator, x: np.ndarray, y: np.ndarray, fold_of: np.ndarray, scratch_oof: dict[str, np.ndarray]
) -> tuple[Choice, np.ndarray]:
    """The candidate with the lowest out-of-fold RMSE on the new rows (``scratch_oof``: each from-scratch
    recipe's out-of-fold predictions over the same ``fold_of``), and its out-of-fold predictions. Ties
    go to the simpler model: from scratch, then recalibrated, then a blend."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    _check(source, x, y)
    cands = candidate_oof(source, x, y, fold_of, scratch_oof)
    cv = {name: scores(y, pred) for name, (_, pred) in cands.items()}
    order = {"scratch": 0, "recalibrated": 1, "blend": 2}
    best = min(cv, key=lambda n: (round(cv[n]["rmse"], 9), order[cands[n][0][0]], n))
    kind, space, recipe, weight = cands[best][0]
    return Choice(best, kind, space, recipe, weight, cv), cands[best][1]


def build_choice(
    choice: Choice, source: LatencyEstimator, scratch: LatencyEstimator | None, x: np.ndarray, y: np.ndarray
) -> LatencyEstimator:
    """The estimator ``choice`` names, fitted on all of ``(x, y)`` (``scratch``: the from-scratch fit of
    the chosen recipe on the same rows, needed unless the choice is a pure recalibration)."""
    if choice.kind == "recalibrated":
        return adapt(source, x, y, space=choice.recalibration or "linear")
    if scratch is None:
        raise UserError(f"the choice {choice.name} needs the from-scratch fit of recipe {choice.recipe}")
    if choice.kind == "scratch":
        return scratch
    recalibrated = adapt(source, x, y, space=choice.recalibration or "linear")
    return dataclasses.replace(scratch, blend={"weight": choice.weight, "estimator": recalibrated})


__all__ = ["Choice", "adapt", "apply_recalibration", "build_choice", "choose", "fold_ids", "recalibration_oof"]
