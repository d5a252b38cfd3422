"""Held-out evaluation of latency estimators against baselines (``mos-nas train-estimator``).

One seeded split of a latency dataset; on it our MLP recipe, HAT's recipe (same code, HAT's
hyper-parameters), linear regression on the normalised features and linear regression on the
parameter count alone are fitted on the training part and scored on the held-out part: RMSE and
MAE in ms, R^2 and Kendall's tau. Also the scatter plot of predicted versus measured latency.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from mos_fairseq.arch import write_text_atomic
from mos_fairseq.errors import UserError
from mos_fairseq.latency.dataset import LatencyDataset
from mos_fairseq.latency.estimator import HAT_RECIPE, OUR_RECIPE, LatencyEstimator, TrainRecipe
from mos_fairseq.space import HAT_FEATURE_NORM


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
    return {
        "rmse": float(np.sqrt(mean_squared_error(measured, predicted))),
        "mae": float(mean_absolute_error(measured, predicted)),
        "r2": float(r2_score(measured, predicted)),
        "kendall_tau": float(tau) if np.isfinite(tau) else 0.0,
    }


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


def evaluate(data: LatencyDataset, recipe: TrainRecipe = OUR_RECIPE, holdout: float = 0.2, seed: int = 1,
             feature_norm=HAT_FEATURE_NORM, space: dict | None = None,
             hat_recipe: TrainRecipe | None = HAT_RECIPE) -> Evaluation:
    """Fit every model on the training part and score it on the hold-out (``hat_recipe=None``: skip it)."""
    split = holdout_split(len(data), holdout, seed)
    x, y = data.features, data.total_ms
    xn = x / np.asarray(feature_norm, dtype=np.float64)
    estimator = LatencyEstimator.fit(x[split.train], y[split.train], recipe, feature_norm, seed, space,
                                     data.feature_names)
    predictions = {recipe.name: estimator.predict(x[split.test])}
    if hat_recipe is not None:
        hat = LatencyEstimator.fit(x[split.train], y[split.train], hat_recipe, feature_norm, seed, space,
                                   data.feature_names)
        predictions[hat_recipe.name] = hat.predict(x[split.test])
    predictions["linear_features"] = _linear(xn[split.train], y[split.train])(xn[split.test])
    p = data.params[:, None] / 1e6
    predictions["linear_params"] = _linear(p[split.train], y[split.train])(p[split.test])
    measured = y[split.test]
    report = {
        "data": data.path, "format": data.format, "rows": len(data), "n_train": int(len(split.train)),
        "n_test": int(len(split.test)), "holdout": holdout, "seed": seed, "target": "encoder + decoder mean latency (ms)",
        "latency_range_ms": [float(y.min()), float(y.max())],
        "recipe": recipe.to_dict(),
        "models": {name: scores(measured, pred) for name, pred in predictions.items()},
    }
    estimator.info = {"trained_on": data.path, "rows_train": int(len(split.train)),
                      "holdout_scores": report["models"][recipe.name], "holdout": holdout, "seed": seed}
    return Evaluation(estimator, report, predictions, measured)


def format_report(report: dict[str, Any]) -> str:
    lines = [f"{report['data']}: {report['rows']} rows ({report['format']} format), "
             f"held out {report['n_test']} (seed {report['seed']}); latency "
             f"{report['latency_range_ms'][0]:.1f}-{report['latency_range_ms'][1]:.1f} ms",
             f"{'model':<16} {'RMSE ms':>9} {'MAE ms':>9} {'R^2':>8} {'Kendall':>8}"]
    for name, s in report["models"].items():
        lines.append(f"{name:<16} {s['rmse']:>9.3f} {s['mae']:>9.3f} {s['r2']:>8.4f} {s['kendall_tau']:>8.4f}")
    return "\n".join(lines)


def write_report(report: dict[str, Any], path: str | Path) -> None:
    write_text_atomic(Path(path), json.dumps(report, indent=2) + "\n")


def scatter_plot(evaluation: Evaluation, path: str | Path, title: str = "") -> None:
    """Predicted vs measured on the hold-out: our estimator in front, baselines behind."""
    from mos_fairseq.plotting import pyplot

    plt = pyplot()

    y = evaluation.measured
    fig, ax = plt.subplots(figsize=(5.5, 5.5))
    styles = {"linear_params": ("tab:gray", 8, 0.35), "linear_features": ("tab:orange", 8, 0.45),
              "hat_recipe": ("tab:green", 10, 0.5)}
    main = evaluation.estimator.recipe.name
    for name, pred in evaluation.predictions.items():
        color, size, alpha = styles.get(name, ("tab:blue", 14, 0.9))
        s = evaluation.report["models"][name]
        ax.scatter(y, pred, s=size, alpha=alpha, color=color, zorder=3 if name == main else 2,
                   label=f"{name}: RMSE {s['rmse']:.2f} ms, R² {s['r2']:.3f}, τ {s['kendall_tau']:.3f}")
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
