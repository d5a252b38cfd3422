"""How well predicted latencies match measured ones: the figures every estimator report gives
(RMSE, MAE, MAPE, share within ±10%, R^2, Kendall's tau)."""

from __future__ import annotations

import numpy as np


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
