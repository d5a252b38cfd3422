"""How a latency estimator is fitted (:mod:`mos_fairseq.latency.estimator`): :class:`TrainRecipe` and
the recipes ``train-estimator`` chooses among, and the fitting they name: a least-squares linear
term, MLPs on its residual, gradient-boosted trees.

Our MLP recipe differs from HAT's (Adam 1e-5, 5000 steps, no validation) in two ways that
matter on noisy measurements: a least-squares linear term carries the first-order trend and the
3x400 MLP learns only what is left (its residual), and training stops at the step with the
lowest loss on a validation slice of the training rows (10%), so the MLP cannot fit measurement
noise and drift. When there is nothing non-linear to learn, it degrades to the linear fit rather
than below it.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import Any, cast

import numpy as np
import torch
from torch import nn

from mos_fairseq.base.json_models import fit_sklearn, to_json_model


@dataclass(frozen=True)
class TrainRecipe:
    """How an estimator is fitted: ``kind`` ``mlp`` (a least-squares linear term and MLPs on its
    residual; ``steps`` 0: least squares alone, :data:`LEAST_SQUARES`; no linear term: HAT's MLP,
    :data:`HAT_RECIPE`), ``gbt`` (boosted trees, :data:`GBT_RECIPE`) or ``ensemble`` (the mean of the
    two). :data:`OUR_RECIPE` is the default. The MLP fields size and train the MLPs."""

    name: str = "mlp"
    kind: str = "mlp"  # mlp: linear term + MLP (steps 0: least squares); gbt: boosted trees; ensemble: mean of both
    hidden: int = 400
    layers: int = 3
    lr: float = 1e-3
    steps: int = 5000
    batch_size: int = 128
    weight_decay: float = 1e-4
    cosine: bool = True  # cosine decay of the learning rate to zero
    standardize: bool = True  # z-score features and target (HAT: features / norm, target / max)
    ensemble: int = 1  # models averaged (different seeds)
    linear_skip: bool = True  # least-squares linear term; the MLP fits its residual
    early_stop: float = 0.1  # fraction of training rows for early stopping (0: train all steps)
    eval_every: int = 50  # steps between early-stopping evaluations
    patience: int = 1000  # stop after this many steps without a better validation loss

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


OUR_RECIPE = TrainRecipe()
HAT_RECIPE = TrainRecipe(
    name="hat_recipe", lr=1e-5, weight_decay=0.0, cosine=False, standardize=False, linear_skip=False, early_stop=0.0
)
LEAST_SQUARES = TrainRecipe(name="least_squares", steps=0, early_stop=0.0)  # the linear term alone
GBT_RECIPE = TrainRecipe(name="gbt", kind="gbt")
ENSEMBLE_RECIPE = TrainRecipe(name="ensemble", kind="ensemble")  # mean of OUR_RECIPE's model and the trees
RECIPE_KINDS = ("mlp", "gbt", "ensemble")
FORMER_RECIPE_NAMES = {"linear_features": "least_squares"}  # as files written before the rename call them


def recipe_from_dict(data: dict[str, Any]) -> TrainRecipe:
    """A recipe as an estimator file records it (a former name read as today's)."""
    name = data.get("name", TrainRecipe.name)
    return TrainRecipe(**{**data, "name": FORMER_RECIPE_NAMES.get(name, name)})


def candidate_recipes(mlp: TrainRecipe = OUR_RECIPE, hat: bool = True) -> list[TrainRecipe]:
    """The recipes ``train-estimator`` chooses among by cross-validation (``mlp`` may carry the CLI's sizes)."""
    out = [mlp, *([HAT_RECIPE] if hat else []), LEAST_SQUARES, GBT_RECIPE]
    return out + [replace(mlp, name="ensemble", kind="ensemble")]


def fit_trees(x: np.ndarray, y: np.ndarray, seed: int) -> dict[str, Any]:
    """Gradient-boosted trees (scikit-learn) as plain arrays (:mod:`mos_fairseq.base.json_models`)."""
    return to_json_model("gbt", fit_sklearn("gbt", x, y, seed))


def build_mlp(n_in: int, hidden: int, layers: int) -> nn.Sequential:
    mods: list[nn.Module] = []
    width = n_in
    for _ in range(layers):
        mods += [nn.Linear(width, hidden), nn.ReLU()]
        width = hidden
    mods.append(nn.Linear(width, 1))
    return nn.Sequential(*mods)


def fit_linear_and_mlps(
    xs: np.ndarray, ys: np.ndarray, recipe: TrainRecipe, seed: int
) -> tuple[tuple[list[float], float], list[nn.Sequential]]:
    """An ``mlp`` recipe's linear term (least squares; zero without ``linear_skip``) and its MLPs on the
    residual, early-stopped on a seeded ``early_stop`` share of the rows (none when too few rows)."""
    order = np.random.default_rng(seed).permutation(len(xs))
    n_val = int(round(len(xs) * recipe.early_stop))
    n_val = n_val if len(xs) - n_val >= 2 else 0
    val, rows = order[:n_val], order[n_val:]
    linear: tuple[list[float], float] = ([0.0] * xs.shape[1], 0.0)
    if recipe.linear_skip:
        coef = np.linalg.lstsq(np.c_[xs[rows], np.ones(len(rows))], ys[rows], rcond=None)[0]
        linear = (coef[:-1].tolist(), float(coef[-1]))
    if recipe.steps <= 0:
        return linear, []
    xt = torch.tensor(xs, dtype=torch.float32)
    rt = torch.tensor(ys - (xs @ np.asarray(linear[0]) + linear[1]), dtype=torch.float32).unsqueeze(1)
    return linear, [train_mlp(xt[rows], rt[rows], xt[val], rt[val], recipe, seed + k) for k in range(recipe.ensemble)]


def train_mlp(
    x: torch.Tensor, y: torch.Tensor, x_val: torch.Tensor, y_val: torch.Tensor, recipe: TrainRecipe, seed: int
) -> nn.Sequential:
    """Fit one MLP; with a validation slice, return the state with the lowest validation loss
    (an untrained-output state, i.e. zero residual, competes too)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = build_mlp(x.shape[1], recipe.hidden, recipe.layers)
    opt = (
        torch.optim.AdamW(model.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)
        if recipe.weight_decay
        else torch.optim.Adam(model.parameters(), lr=recipe.lr)
    )
    n = len(x)
    bs = min(recipe.batch_size, n)
    if recipe.linear_skip:  # start from a zero residual so "stop at step 0" means "linear only"
        with torch.no_grad():
            last = cast(nn.Linear, model[-1])
            last.weight.zero_()
            last.bias.zero_()
    best_loss, best_state, best_step = float("inf"), None, 0

    def validate(step: int) -> None:
        nonlocal best_loss, best_state, best_step
        if len(x_val) == 0:
            return
        with torch.no_grad():
            loss = nn.functional.mse_loss(model(x_val), y_val).item()
        if loss < best_loss:
            best_loss, best_step = loss, step
            best_state = {k: v.clone() for k, v in model.state_dict().items()}

    validate(0)
    for step in range(recipe.steps):
        if recipe.cosine:
            for group in opt.param_groups:
                group["lr"] = 0.5 * recipe.lr * (1 + math.cos(math.pi * step / recipe.steps))
        idx = torch.randint(0, n, (bs,), generator=gen)
        loss = nn.functional.mse_loss(model(x[idx]), y[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if (step + 1) % recipe.eval_every == 0 or step + 1 == recipe.steps:
            validate(step + 1)
            if best_state is not None and step + 1 - best_step >= recipe.patience:
                break
    if best_state is not None:
        model.load_state_dict(best_state)
    return model.eval()
