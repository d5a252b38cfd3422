"""Choosing and scoring latency estimators (``mos-nas train-estimator``).

One seeded split of a latency dataset. The recipe is chosen by k-fold cross-validation on the
training part among the candidates (our MLP on a linear term, HAT's recipe, least squares on the
features, gradient-boosted trees, the mean of our MLP and the trees: lowest CV RMSE wins), so the
estimator is never knowingly worse than the simple models it is compared with; then every
candidate and linear regression on the parameter count alone are fitted on the whole training part
and scored on the held-out part: RMSE, MAE and MAPE, the share of predictions within ±10% of the
measurement, R^2 and Kendall's tau. Also the scatter plot of predicted versus measured latency.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from mos_fairseq.core.errors import UserError
from mos_fairseq.core.files import write_text_atomic
from mos_fairseq.latency.dataset import LatencyDataset
from mos_fairseq.latency.estimator import HAT_RECIPE, LatencyEstimator, TrainRecipe, candidate_recipes
from mos_fairseq.translation.space import HAT_FEATURE_NORM


@dataclass
class Split:
    train: np.ndarray
    test: np.ndarray


def holdout_split(n: int, holdout: float, seed: int) -> Split:
    if not 0 < holdout < 1:
        raise UserError(f"--holdout must be in (0, 1), got {holdout}")
    n_test = int(round(n * holdout))
    if n_test < 2 or n - n_test < 2:
        raise UserError(f"{n} rows are too few for a {holdout:.0%} hold-out (need >= 2 rows on each side)")
    order = np.random.default_rng(seed).permutation(n)
    return Split(np.sort(order[n_test:]), np.sort(order[:n_test]))


def scores(measured: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    from scipy.stats import kendalltau
    from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

    tau = kendalltau(measured, predicted).statistic
    relative = np.abs(np.asarray(predicted) - measured) / np.maximum(np.abs(measured), 1e-12)
    return {
        "rmse": float(np.sqrt(mean_squared_error(measured, predicted))),
        "mae": float(mean_absolute_error(measured, predicted)),
        "mape": float(100 * relative.mean()),
        "within_10pct": float(100 * (relative <= 0.10).mean()),
        "r2": float(r2_score(measured, predicted)),
        "kendall_tau": float(tau) if np.isfinite(tau) else 0.0,
    }


def check_estimator(estimator: LatencyEstimator, data: LatencyDataset) -> dict[str, Any]:
    """``predict-latency --data``: an estimator against fresh measurements (a latency CSV of the same
    features): RMSE, MAE, MAPE, share within +-10%, R^2 and Kendall tau, and one prediction per row."""
    if tuple(data.feature_names) != tuple(estimator.feature_names):
        raise UserError(
            f"{data.path}: feature columns {list(data.feature_names)} are not the estimator's "
            f"{list(estimator.feature_names)}"
        )
    if len(data.total_ms) < 2:
        raise UserError(f"{data.path}: needs at least 2 rows to score an estimator")
    predicted = estimator.predict(data.features)
    return {
        "data": data.path,
        "rows": len(predicted),
        **scores(data.total_ms, predicted),
        "predictions": [
            {"row": i, "measured_ms": round(float(m), 4), "predicted_ms": round(float(q), 4)}
            for i, (m, q) in enumerate(zip(data.total_ms, predicted))
        ],
    }


def cross_validate(
    x: np.ndarray, y: np.ndarray, recipes: list[TrainRecipe], folds: int, seed: int, feature_norm, feature_names
) -> dict[str, dict[str, float]]:
    """Out-of-fold scores of every recipe over ``folds`` seeded folds of ``(x, y)``."""
    n = len(y)
    folds = min(folds, n // 2)
    if folds < 2:
        raise UserError(f"{n} training rows are too few to cross-validate the estimator recipes (need >= 4)")
    fold_of = np.random.default_rng(seed + 7919).permutation(n) % folds
    out = {}
    for recipe in recipes:
        pred = np.empty(n)
        for k in range(folds):
            train, test = fold_of != k, fold_of == k
            est = LatencyEstimator.fit(x[train], y[train], recipe, feature_norm, seed, None, feature_names)
            pred[test] = est.predict(x[test])
        out[recipe.name] = scores(y, pred)
    return out


def _linear(x_train: np.ndarray, y_train: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    from sklearn.linear_model import LinearRegression

    model = LinearRegression().fit(x_train, y_train)
    return model.predict


@dataclass
class Evaluation:
    estimator: LatencyEstimator
    report: dict[str, Any]
    predictions: dict[str, np.ndarray]  # model name -> held-out predictions
    measured: np.ndarray


def evaluate(
    data: LatencyDataset,
    recipe: TrainRecipe | None = None,
    holdout: float = 0.2,
    seed: int = 1,
    feature_norm=HAT_FEATURE_NORM,
    space: dict | None = None,
    hat_recipe: TrainRecipe | None = HAT_RECIPE,
    candidates: list[TrainRecipe] | None = None,
    folds: int = 5,
) -> Evaluation:
    """Choose the recipe (``recipe=None``: by ``folds``-fold cross-validation on the training part among
    ``candidates``, default :func:`candidate_recipes`) or take ``recipe``; fit every model on the training
    part and score it on the hold-out (``hat_recipe=None``: no HAT recipe)."""
    split = holdout_split(len(data), holdout, seed)
    x, y = data.features, data.total_ms
    xn = x / np.asarray(feature_norm, dtype=np.float64)
    selection = None
    if recipe is None:
        pool = candidates or candidate_recipes(hat=hat_recipe is not None)
        cv = cross_validate(x[split.train], y[split.train], pool, folds, seed, feature_norm, data.feature_names)
        recipe = next(r for r in pool if r.name == min(cv, key=lambda name: (cv[name]["rmse"], name)))
        selection = {
            "folds": min(folds, len(split.train) // 2),
            "chosen": recipe.name,
            "cv": cv,
            "by": "lowest cross-validated RMSE on the training rows",
        }
        fitted = pool
    else:
        fitted = [recipe] + ([hat_recipe] if hat_recipe is not None and hat_recipe.name != recipe.name else [])
    estimators = {
        r.name: LatencyEstimator.fit(x[split.train], y[split.train], r, feature_norm, seed, space, data.feature_names)
        for r in fitted
    }
    estimator = estimators[recipe.name]
    predictions = {name: est.predict(x[split.test]) for name, est in estimators.items()}
    if "linear_features" not in predictions:
        predictions["linear_features"] = _linear(xn[split.train], y[split.train])(xn[split.test])
    p = data.params[:, None] / 1e6
    predictions["linear_params"] = _linear(p[split.train], y[split.train])(p[split.test])
    measured = y[split.test]
    report: dict[str, Any] = {
        "data": data.path,
        "format": data.format,
        "rows": len(data),
        "n_train": int(len(split.train)),
        "n_test": int(len(split.test)),
        "holdout": holdout,
        "seed": seed,
        "target": "encoder + decoder mean latency (ms)",
        "latency_range_ms": [float(y.min()), float(y.max())],
        "recipe": recipe.to_dict(),
        "chosen": recipe.name,
        "models": {name: scores(measured, pred) for name, pred in predictions.items()},
    }
    if selection is not None:
        report["selection"] = selection
    estimator.info = {
        "trained_on": data.path,
        "rows_train": int(len(split.train)),
        "holdout_scores": report["models"][recipe.name],
        "holdout": holdout,
        "seed": seed,
        **({"recipe_selection": selection} if selection else {}),
    }
    return Evaluation(estimator, report, predictions, measured)


def add_adapted(ev: Evaluation, data: LatencyDataset, source: LatencyEstimator, source_path: str) -> None:
    """``train-estimator --init-from``: ``source`` recalibrated on the same training rows as ``ev``'s
    from-scratch fit, scored on the same hold-out; it becomes the estimator ``ev`` writes."""
    from mos_fairseq.latency.adaptation import adapt

    if tuple(source.feature_names) != tuple(data.feature_names):
        raise UserError(
            f"--init-from: the estimator's features {list(source.feature_names)} are not the data's "
            f"{list(data.feature_names)}"
        )
    report = ev.report
    split = holdout_split(len(data), report["holdout"], report["seed"])
    adapted = adapt(source, data.features[split.train], data.total_ms[split.train])
    ev.predictions["adapted"] = adapted.predict(data.features[split.test])
    report["models"]["adapted"] = scores(ev.measured, ev.predictions["adapted"])
    report["adapted_from"] = {
        "estimator": str(source_path),
        "trained_on": source.info.get("trained_on"),
        "measured": source.info.get("measured"),
        "recalibration": adapted.adaptation,
    }
    report["chosen"] = "adapted"
    adapted.info = {
        "trained_on": data.path,
        "rows_train": int(len(split.train)),
        "holdout": report["holdout"],
        "seed": report["seed"],
        "holdout_scores": report["models"]["adapted"],
        "adapted_from": report["adapted_from"],
        "from_scratch_holdout_scores": report["models"][ev.estimator.recipe.name],
    }
    ev.estimator = adapted


def format_report(report: dict[str, Any]) -> str:
    lines = [
        f"{report['data']}: {report['rows']} rows ({report['format']} format), "
        f"held out {report['n_test']} (seed {report['seed']}); latency "
        f"{report['latency_range_ms'][0]:.1f}-{report['latency_range_ms'][1]:.1f} ms"
    ]
    sel = report.get("selection")
    if sel:
        cv = ", ".join(f"{name} {s['rmse']:.3f}" for name, s in sel["cv"].items())
        lines.append(f"recipe: {sel['chosen']} (lowest {sel['folds']}-fold CV RMSE on the training rows: {cv} ms)")
    else:
        lines.append(f"recipe: {report.get('chosen', report['recipe']['name'])} (given)")
    if report.get("adapted_from"):
        r = report["adapted_from"]["recalibration"]
        lines.append(
            f"adapted from {report['adapted_from']['estimator']}: latency = {r['scale']:.4f} x known "
            f"{r['offset']:+.3f} ms + ridge correction (lambda {r['ridge']:g}, {r['rows']} rows)"
        )
    lines.append(f"{'model':<16} {'RMSE ms':>9} {'MAE ms':>9} {'MAPE %':>8} {'±10% %':>8} {'R^2':>8} {'Kendall':>8}")
    for name, s in report["models"].items():
        mark = " *" if name == report.get("chosen") else ""
        lines.append(
            f"{name:<16} {s['rmse']:>9.3f} {s['mae']:>9.3f} {s['mape']:>8.2f} {s['within_10pct']:>8.1f} "
            f"{s['r2']:>8.4f} {s['kendall_tau']:>8.4f}{mark}"
        )
    return "\n".join(lines)


def write_report(report: dict[str, Any], path: str | Path) -> None:
    write_text_atomic(Path(path), json.dumps(report, indent=2) + "\n")


def scatter_plot(evaluation: Evaluation, path: str | Path, title: str = "") -> None:
    """Predicted vs measured on the hold-out: our estimator in front, baselines behind."""
    from mos_fairseq.core.plotting import pyplot

    plt = pyplot()

    y = evaluation.measured
    fig, ax = plt.subplots(figsize=(5.5, 5.5))
    styles = {
        "linear_params": ("tab:gray", 8, 0.35),
        "linear_features": ("tab:orange", 8, 0.45),
        "hat_recipe": ("tab:green", 10, 0.5),
    }
    main = evaluation.report.get("chosen", evaluation.estimator.recipe.name)
    for name, pred in evaluation.predictions.items():
        color, size, alpha = styles.get(name, ("tab:blue", 14, 0.9))
        s = evaluation.report["models"][name]
        ax.scatter(
            y,
            pred,
            s=size,
            alpha=alpha,
            color=color,
            zorder=3 if name == main else 2,
            label=f"{name}: RMSE {s['rmse']:.2f} ms, R² {s['r2']:.3f}, τ {s['kendall_tau']:.3f}",
        )
    lo = float(min(y.min(), min(p.min() for p in evaluation.predictions.values())))
    hi = float(max(y.max(), max(p.max() for p in evaluation.predictions.values())))
    ax.plot([lo, hi], [lo, hi], color="black", lw=1, zorder=1)
    ax.set_xlabel("measured latency (ms)")
    ax.set_ylabel("predicted latency (ms)")
    ax.set_title(title or f"held-out {len(y)} architectures")
    ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=120)
    plt.close(fig)
    tmp.replace(path)
