"""Regression models as plain JSON (the base layer): scikit-learn fits gradient-boosted trees or an
MLP, :func:`to_json_model` keeps only their numbers (tree arrays, weight matrices) and
:func:`predict_json_model` predicts with numpy, so a saved model is loaded without unpickling.

The loss predictor (``search.predictor``) and the latency estimator's tree recipes
(``latency.estimator``) store their models this way.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mos_fairseq.base.errors import UserError

KINDS = ("gbt", "mlp")


def fit_sklearn(kind: str, x: np.ndarray, y: np.ndarray, seed: int) -> Any:
    """A fitted scikit-learn regressor: ``gbt`` (300 trees of depth 3) or ``mlp`` (64x64, early stopping)."""
    if kind == "gbt":
        from sklearn.ensemble import GradientBoostingRegressor

        return GradientBoostingRegressor(
            n_estimators=300, learning_rate=0.05, max_depth=3, subsample=0.8, random_state=seed
        ).fit(x, y)
    if kind == "mlp":
        from sklearn.neural_network import MLPRegressor

        return MLPRegressor(
            hidden_layer_sizes=(64, 64), max_iter=3000, early_stopping=True, random_state=seed, learning_rate_init=1e-3
        ).fit(x, y)
    raise UserError(f"--kind must be one of {list(KINDS)}, got {kind!r}")


def to_json_model(kind: str, model: Any) -> dict[str, Any]:
    """The fitted model as plain numbers."""
    if kind == "gbt":
        trees = []
        for est in model.estimators_[:, 0]:
            t = est.tree_
            trees.append(
                {
                    "left": t.children_left.tolist(),
                    "right": t.children_right.tolist(),
                    "feature": t.feature.tolist(),
                    "threshold": t.threshold.tolist(),
                    "value": t.value[:, 0, 0].tolist(),
                }
            )
        return {
            "kind": kind,
            "init": float(np.ravel(model.init_.constant_)[0]),
            "learning_rate": model.learning_rate,
            "trees": trees,
        }
    return {
        "kind": kind,
        "weights": [w.tolist() for w in model.coefs_],
        "biases": [b.tolist() for b in model.intercepts_],
    }


def predict_json_model(spec: dict[str, Any], x: np.ndarray) -> np.ndarray:
    """Predictions of a :func:`to_json_model` model for the rows ``x``."""
    x = np.asarray(x, dtype=np.float64)
    if spec["kind"] == "gbt":
        out = np.full(len(x), spec["init"])
        for tree in spec["trees"]:
            left, right, feature, threshold, value = (
                np.asarray(tree[k]) for k in ("left", "right", "feature", "threshold", "value")
            )
            node = np.zeros(len(x), dtype=np.int64)
            for _ in range(64):  # deeper than any tree we fit
                leaf = left[node] == -1
                if leaf.all():
                    break
                go_left = x[np.arange(len(x)), np.maximum(feature[node], 0)] <= threshold[node]
                node = np.where(leaf, node, np.where(go_left, left[node], right[node]))
            out += spec["learning_rate"] * value[node]
        return out
    h = x
    for i, (w, b) in enumerate(zip(spec["weights"], spec["biases"])):
        h = h @ np.asarray(w) + np.asarray(b)
        if i < len(spec["weights"]) - 1:
            h = np.maximum(h, 0.0)
    return h[:, 0]
