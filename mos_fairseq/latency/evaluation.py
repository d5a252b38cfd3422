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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from mos_fairseq.base.errors import UserError
from mos_fairseq.base.files import write_text_atomic
from mos_fairseq.latency.adaptation import fold_ids
from mos_fairseq.latency.dataset import LatencyDataset
from mos_fairseq.latency.estimator import LatencyEstimator
from mos_fairseq.latency.recipes import HAT_RECIPE, TrainRecipe, candidate_recipes
from mos_fairseq.latency.scores import scores
from mos_fairseq.registry import hat_latency_format


@dataclass
class Split:
    train: np.ndarray
    test: np.ndarray


def holdout_split(n: int, holdout: float, seed: int) -> Split:
    """A seeded split of ``n`` rows; ``holdout`` 0: every row trains (the report gives CV figures only)."""
    if not 0 <= holdout < 1:
        raise UserError(f"--holdout must be in [0, 1), got {holdout}")
    if holdout == 0:
        return Split(np.arange(n), np.arange(0))
    n_test = int(round(n * holdout))
    if n_test < 2 or n - n_test < 2:
        raise UserError(f"{n} rows are too few for a {holdout:.0%} hold-out (need >= 2 rows on each side)")
    order = np.random.default_rng(seed).permutation(n)
    return Split(np.sort(order[n_test:]), np.sort(order[:n_test]))


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


def out_of_fold(
    x: np.ndarray,
    y: np.ndarray,
    recipes: list[TrainRecipe],
    fold_of: np.ndarray,
    seed: int,
    feature_norm,
    feature_names,
) -> dict[str, np.ndarray]:
    """Every recipe's out-of-fold predictions over the folds ``fold_of`` (:func:`fold_ids`)."""
    out = {}
    for recipe in recipes:
        pred = np.empty(len(y))
        for k in np.unique(fold_of):
            train, test = fold_of != k, fold_of == k
            est = LatencyEstimator.fit(x[train], y[train], recipe, feature_norm, seed, None, feature_names)
            pred[test] = est.predict(x[test])
        out[recipe.name] = pred
    return out


def cross_validate(
    x: np.ndarray, y: np.ndarray, recipes: list[TrainRecipe], folds: int, seed: int, feature_norm, feature_names
) -> dict[str, dict[str, float]]:
    """Out-of-fold scores of every recipe over ``folds`` seeded folds of ``(x, y)``."""
    oof = out_of_fold(x, y, recipes, fold_ids(len(y), folds, seed), seed, feature_norm, feature_names)
    return {name: scores(y, pred) for name, pred in oof.items()}


def _linear(x_train: np.ndarray, y_train: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    from sklearn.linear_model import LinearRegression

    model = LinearRegression().fit(x_train, y_train)
    return model.predict


@dataclass
class Evaluation:
    estimator: LatencyEstimator
    report: dict[str, Any]
    predictions: dict[str, np.ndarray]  # model name -> held-out predictions (--holdout 0: out-of-fold ones)
    measured: np.ndarray  # what ``predictions`` predict
    estimators: dict[str, LatencyEstimator] = field(default_factory=dict)  # every recipe fitted on the training rows
    oof: dict[str, np.ndarray] = field(default_factory=dict)  # recipe -> out-of-fold predictions on the training rows
    fold_of: np.ndarray | None = None  # the folds of ``oof``


def _choose_recipe(
    xtr: np.ndarray, ytr: np.ndarray, pool: list[TrainRecipe], fold_of: np.ndarray, seed: int, feature_norm, names
) -> tuple[TrainRecipe, dict[str, Any], dict[str, np.ndarray]]:
    """The pool's recipe with the lowest out-of-fold RMSE, the selection record and every recipe's predictions."""
    oof = out_of_fold(xtr, ytr, pool, fold_of, seed, feature_norm, names)
    cv = {name: scores(ytr, pred) for name, pred in oof.items()}
    recipe = next(r for r in pool if r.name == min(cv, key=lambda name: (cv[name]["rmse"], name)))
    selection = {
        "folds": int(len(np.unique(fold_of))),
        "chosen": recipe.name,
        "cv": cv,
        "by": "lowest cross-validated RMSE on the training rows",
    }
    return recipe, selection, oof


def _baselines(data: LatencyDataset, split: Split, fold_of: np.ndarray, feature_norm) -> dict[str, np.ndarray]:
    """Linear regression on the features and on the parameter count alone: held-out predictions, or
    out-of-fold ones when nothing is held out."""
    xn = data.features / np.asarray(feature_norm, dtype=np.float64)
    out = {}
    for name, x in (("least_squares", xn), ("linear_params", data.params[:, None] / 1e6)):
        xtr, ytr = x[split.train], data.total_ms[split.train]
        if len(split.test):
            out[name] = _linear(xtr, ytr)(x[split.test])
            continue
        pred = np.empty(len(ytr))
        for k in np.unique(fold_of):
            pred[fold_of == k] = _linear(xtr[fold_of != k], ytr[fold_of != k])(xtr[fold_of == k])
        out[name] = pred
    return out


def evaluate(
    data: LatencyDataset,
    recipe: TrainRecipe | None = None,
    holdout: float = 0.2,
    seed: int = 1,
    feature_norm: Sequence[float] | None = None,
    space: dict | None = None,
    hat_recipe: TrainRecipe | None = HAT_RECIPE,
    candidates: list[TrainRecipe] | None = None,
    folds: int = 5,
) -> Evaluation:
    """Choose the recipe (``recipe=None``: by ``folds``-fold cross-validation on the training part among
    ``candidates``, default :func:`candidate_recipes`) or take ``recipe``; fit every model on the training
    part and score it on the hold-out (``hat_recipe=None``: no HAT recipe). ``holdout`` 0: every row
    trains, and every model is scored by its out-of-fold predictions instead (``report["scored_on"]``).
    ``feature_norm`` None: HAT's (HAT's latency files)."""
    feature_norm = hat_latency_format().feature_norm if feature_norm is None else feature_norm
    split = holdout_split(len(data), holdout, seed)
    x, y = data.features, data.total_ms
    xtr, ytr = x[split.train], y[split.train]
    fold_of = fold_ids(len(ytr), folds, seed)
    selection: dict[str, Any] | None = None
    oof: dict[str, np.ndarray] = {}
    if recipe is None:
        pool = candidates or candidate_recipes(hat=hat_recipe is not None)
        recipe, selection, oof = _choose_recipe(xtr, ytr, pool, fold_of, seed, feature_norm, data.feature_names)
        fitted = pool
    else:
        fitted = [recipe] + ([hat_recipe] if hat_recipe is not None and hat_recipe.name != recipe.name else [])
    if not len(split.test) and not oof:  # nothing held out: every model is scored out of fold
        oof = out_of_fold(xtr, ytr, fitted, fold_of, seed, feature_norm, data.feature_names)
    estimators = {
        r.name: LatencyEstimator.fit(xtr, ytr, r, feature_norm, seed, space, data.feature_names) for r in fitted
    }
    if len(split.test):
        predictions, measured = {name: est.predict(x[split.test]) for name, est in estimators.items()}, y[split.test]
    else:
        predictions, measured = {name: oof[name] for name in estimators}, ytr
    predictions = {
        **predictions,
        **{k: v for k, v in _baselines(data, split, fold_of, feature_norm).items() if k not in predictions},
    }
    report = _report(
        data, split, holdout, seed, recipe, {name: scores(measured, pred) for name, pred in predictions.items()}
    )
    if selection is not None:
        report["selection"] = selection
    estimator = estimators[recipe.name]
    estimator.info = {
        "trained_on": data.path,
        "rows_train": int(len(split.train)),
        ("holdout_scores" if len(split.test) else "cv_scores"): report["models"][recipe.name],
        "holdout": holdout,
        "seed": seed,
        **({"recipe_selection": selection} if selection else {}),
    }
    return Evaluation(estimator, report, predictions, measured, estimators, oof, fold_of)


def _report(
    data: LatencyDataset, split: Split, holdout: float, seed: int, recipe: TrainRecipe, models: dict[str, Any]
) -> dict[str, Any]:
    y = data.total_ms
    return {
        "data": data.path,
        "format": data.format,
        "rows": len(data),
        "n_train": int(len(split.train)),
        "n_test": int(len(split.test)),
        "holdout": holdout,
        "seed": seed,
        "scored_on": "held-out rows"
        if len(split.test)
        else "out-of-fold predictions on the training rows (--holdout 0: no held-out rows)",
        "target": "encoder + decoder mean latency (ms)",
        "latency_range_ms": [float(y.min()), float(y.max())],
        "recipe": recipe.to_dict(),
        "chosen": recipe.name,
        "models": models,
    }


def add_adapted(ev: Evaluation, data: LatencyDataset, source: LatencyEstimator, source_path: str) -> None:
    """``train-estimator --init-from``: between ``source`` recalibrated on the same training rows as
    ``ev``'s from-scratch fits, those fits, and blends of the two, the one with the lowest out-of-fold
    RMSE on those rows (:func:`~mos_fairseq.latency.adaptation.choose`), scored like every other model;
    it becomes the estimator ``ev`` writes."""
    from mos_fairseq.latency.adaptation import build_choice, choose

    if tuple(source.feature_names) != tuple(data.feature_names):
        raise UserError(
            f"--init-from: the estimator's features {list(source.feature_names)} are not the data's "
            f"{list(data.feature_names)}"
        )
    report = ev.report
    split = holdout_split(len(data), report["holdout"], report["seed"])
    xtr, ytr = data.features[split.train], data.total_ms[split.train]
    fold_of = ev.fold_of if ev.fold_of is not None else fold_ids(len(ytr), 5, report["seed"])
    missing = [e.recipe for name, e in ev.estimators.items() if name not in ev.oof]
    norm, names = ev.estimator.feature_norm, data.feature_names
    ev.oof.update(out_of_fold(xtr, ytr, missing, fold_of, report["seed"], norm, names))
    choice, chosen_oof = choose(source, xtr, ytr, fold_of, {n: ev.oof[n] for n in ev.estimators})
    adapted = build_choice(choice, source, ev.estimators.get(choice.recipe or ""), xtr, ytr)
    ev.predictions["adapted"] = adapted.predict(data.features[split.test]) if len(split.test) else chosen_oof
    report["models"]["adapted"] = scores(ev.measured, ev.predictions["adapted"])
    report["adapted_from"] = {
        "estimator": str(source_path),
        "trained_on": source.info.get("trained_on"),
        "measured": source.info.get("measured"),
        "choice": choice.to_dict(),
        "recalibration": (adapted.blend["estimator"] if adapted.blend else adapted).adaptation,
    }
    from_scratch = report["models"][ev.estimator.recipe.name]
    report["chosen"] = "adapted"
    adapted.info = {
        "trained_on": data.path,
        "rows_train": int(len(split.train)),
        "holdout": report["holdout"],
        "seed": report["seed"],
        ("holdout_scores" if len(split.test) else "cv_scores"): report["models"]["adapted"],
        "adapted_from": report["adapted_from"],
        "from_scratch_scores": from_scratch,
    }
    ev.estimator = adapted


def format_report(report: dict[str, Any]) -> str:
    held = (
        f"held out {report['n_test']} (seed {report['seed']})"
        if report["n_test"]
        else "none held out (--holdout 0): every figure below is out-of-fold, from the cross-validation"
    )
    lines = [
        f"{report['data']}: {report['rows']} rows ({report['format']} format), {held}; latency "
        f"{report['latency_range_ms'][0]:.1f}-{report['latency_range_ms'][1]:.1f} ms"
    ]
    sel = report.get("selection")
    if sel:
        cv = ", ".join(f"{name} {s['rmse']:.3f}" for name, s in sel["cv"].items())
        lines.append(f"recipe: {sel['chosen']} (lowest {sel['folds']}-fold CV RMSE on the training rows: {cv} ms)")
    else:
        lines.append(f"recipe: {report.get('chosen', report['recipe']['name'])} (given)")
    if report.get("adapted_from"):
        lines += _adaptation_lines(report["adapted_from"])
    lines.append(f"{'model':<16} {'RMSE ms':>9} {'MAE ms':>9} {'MAPE %':>8} {'±10% %':>8} {'R^2':>8} {'Kendall':>8}")
    for name, s in report["models"].items():
        mark = " *" if name == report.get("chosen") else ""
        lines.append(
            f"{name:<16} {s['rmse']:>9.3f} {s['mae']:>9.3f} {s['mape']:>8.2f} {s['within_10pct']:>8.1f} "
            f"{s['r2']:>8.4f} {s['kendall_tau']:>8.4f}{mark}"
        )
    return "\n".join(lines)


def _adaptation_lines(adapted: dict[str, Any]) -> list[str]:
    """What ``--init-from`` chose, and every candidate's cross-validated RMSE."""
    choice, r = adapted["choice"], adapted["recalibration"]
    cv = ", ".join(f"{name} {s['rmse']:.3f}" for name, s in choice["cv"].items())
    what = {
        "recalibrated": "the known estimator recalibrated",
        "scratch": f"a fit from scratch ({choice['recipe']})",
        "blend": f"{choice['weight']:g} x recalibrated + {1 - choice['weight']:g} x from scratch ({choice['recipe']})",
    }[choice["kind"]]
    lines = [
        f"adapted from {adapted['estimator']}: {what}, lowest CV RMSE on the new rows among: {cv} ms",
    ]
    if r and r.get("space") in ("linear", "log", None):
        form = "x known" if r.get("space", "linear") == "linear" else "x log known, in log ms"
        lines.append(
            f"  recalibration ({r.get('space', 'linear')}): {r['scale']:.4f} {form} {r['offset']:+.3f} + ridge "
            f"correction (lambda {r['ridge']:g}, {r['rows']} rows)"
        )
    return lines


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
        "least_squares": ("tab:orange", 8, 0.45),
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
