"""The MLP latency estimator: architecture features in, milliseconds out (HAT's 10 features for
translation spaces; a BERT space's shape and parameter count, ``BertSpace.latency_feature_names``).

Search asks it for the latency of thousands of candidates in microseconds. It is trained on a
latency dataset (:mod:`mos_fairseq.latency.dataset`); :mod:`mos_fairseq.latency.evaluation`
compares it with baselines and HAT's own training recipe. Features are divided by the space's
HAT normalisation and then standardised; the target is standardised too.

Recipes (:class:`TrainRecipe`): an MLP (ours or HAT's), least squares on the features, gradient-
boosted trees, or the mean of our MLP and the trees; ``train-estimator`` chooses among them by
cross-validation on the training rows (:mod:`mos_fairseq.latency.evaluation`) and records the choice.
Our MLP recipe differs from HAT's (Adam 1e-5, 5000 steps, no validation) in two ways that
matter on noisy measurements: a least-squares linear term carries the first-order trend and the
3x400 MLP learns only what is left (its residual), and training stops at the step with the
lowest loss on a validation slice of the training rows (10%), so the MLP cannot fit measurement
noise and drift. When there is nothing non-linear to learn, it degrades to the linear fit rather
than below it. Saved as safetensors
(tensors) with a JSON header (normalisation, space, provenance): nothing is unpickled on load.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence, cast

import numpy as np
import torch
from torch import nn

from mos_fairseq.core.errors import CheckpointError, UserError
from mos_fairseq.core.files import current_umask
from mos_fairseq.translation.architecture import FEATURE_NAMES, Architecture
from mos_fairseq.translation.space import HAT_FEATURE_NORM

FORMAT_TAG = "mos-fairseq-latency-estimator"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class TrainRecipe:
    """How an MLP is fitted. :data:`OUR_RECIPE` is the default; :data:`HAT_RECIPE` is HAT's."""

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
LEAST_SQUARES = TrainRecipe(name="linear_features", steps=0, early_stop=0.0)  # the linear term alone
GBT_RECIPE = TrainRecipe(name="gbt", kind="gbt")
ENSEMBLE_RECIPE = TrainRecipe(name="ensemble", kind="ensemble")  # mean of OUR_RECIPE's model and the trees
RECIPE_KINDS = ("mlp", "gbt", "ensemble")


def candidate_recipes(mlp: TrainRecipe = OUR_RECIPE, hat: bool = True) -> list[TrainRecipe]:
    """The recipes ``train-estimator`` chooses among by cross-validation (``mlp`` may carry the CLI's sizes)."""
    import dataclasses

    out = [mlp, *([HAT_RECIPE] if hat else []), LEAST_SQUARES, GBT_RECIPE]
    return out + [dataclasses.replace(mlp, name="ensemble", kind="ensemble")]


def fit_trees(x: np.ndarray, y: np.ndarray, seed: int) -> dict[str, Any]:
    """Gradient-boosted trees (scikit-learn) as plain arrays (the loss predictor's JSON form)."""
    from mos_fairseq.search.predictor import fit_sklearn, to_json_model

    return to_json_model("gbt", fit_sklearn("gbt", x, y, seed))


def build_mlp(n_in: int, hidden: int, layers: int) -> nn.Sequential:
    mods: list[nn.Module] = []
    width = n_in
    for _ in range(layers):
        mods += [nn.Linear(width, hidden), nn.ReLU()]
        width = hidden
    mods.append(nn.Linear(width, 1))
    return nn.Sequential(*mods)


@dataclass
class LatencyEstimator:
    """Fitted MLP(s) plus the normalisation that maps raw features to their input."""

    recipe: TrainRecipe
    feature_norm: tuple[float, ...]
    x_mean: list[float]
    x_std: list[float]
    y_mean: float
    y_scale: float
    models: list[nn.Sequential]
    linear: tuple[Sequence[float], float] = ((), 0.0)  # weights and bias in standardised units
    space: dict | None = None
    info: dict[str, Any] = field(default_factory=dict)
    feature_names: tuple[str, ...] = FEATURE_NAMES
    trees: dict[str, Any] | None = None  # gbt / ensemble recipes: boosted trees on the standardised features
    adaptation: dict[str, Any] | None = None  # recalibration to another device (latency.adaptation), applied last

    # ---- fitting ---------------------------------------------------------------------------
    @classmethod
    def fit(
        cls,
        features: np.ndarray,
        latency_ms: np.ndarray,
        recipe: TrainRecipe = OUR_RECIPE,
        feature_norm: Sequence[float] = HAT_FEATURE_NORM,
        seed: int = 1,
        space: dict | None = None,
        feature_names: Sequence[str] = FEATURE_NAMES,
    ) -> LatencyEstimator:
        if len(features) < 2:
            raise UserError(f"need at least 2 training rows to fit an estimator, got {len(features)}")
        if recipe.kind not in RECIPE_KINDS:
            raise UserError(f"unknown estimator recipe kind {recipe.kind!r} (one of {list(RECIPE_KINDS)})")
        x = np.asarray(features, dtype=np.float64) / np.asarray(feature_norm, dtype=np.float64)
        y = np.asarray(latency_ms, dtype=np.float64)
        if recipe.standardize:
            x_mean, x_std = x.mean(0), x.std(0)
            x_std[x_std == 0] = 1.0
            y_mean, y_scale = float(y.mean()), float(y.std() or 1.0)
        else:  # HAT: features divided by the space norm only, latency divided by its maximum
            x_mean, x_std = np.zeros(x.shape[1]), np.ones(x.shape[1])
            y_mean, y_scale = 0.0, float(np.abs(y).max() or 1.0)
        xs, ys = (x - x_mean) / x_std, (y - y_mean) / y_scale
        order = np.random.default_rng(seed).permutation(len(xs))
        n_val = int(round(len(xs) * recipe.early_stop))
        n_val = n_val if len(xs) - n_val >= 2 else 0
        val, fit_rows = order[:n_val], order[n_val:]
        linear: tuple[list[float], float] = ([0.0] * x.shape[1], 0.0)
        trees = fit_trees(xs, ys, seed) if recipe.kind in ("gbt", "ensemble") else None
        if recipe.kind == "gbt":
            return cls(
                recipe,
                tuple(float(v) for v in feature_norm),
                x_mean.tolist(),
                x_std.tolist(),
                y_mean,
                y_scale,
                [],
                linear,
                space,
                {},
                tuple(feature_names),
                trees,
            )
        if recipe.linear_skip:
            design = np.c_[xs[fit_rows], np.ones(len(fit_rows))]
            coef = np.linalg.lstsq(design, ys[fit_rows], rcond=None)[0]
            linear = (coef[:-1].tolist(), float(coef[-1]))
        residual = ys - (xs @ np.asarray(linear[0]) + linear[1])
        xt = torch.tensor(xs, dtype=torch.float32)
        rt = torch.tensor(residual, dtype=torch.float32).unsqueeze(1)
        models = (
            [_train_one(xt[fit_rows], rt[fit_rows], xt[val], rt[val], recipe, seed + k) for k in range(recipe.ensemble)]
            if recipe.steps > 0
            else []
        )
        if len(feature_norm) != x.shape[1] or len(feature_names) != x.shape[1]:
            raise UserError(
                f"{x.shape[1]} feature columns, but {len(feature_names)} names and {len(feature_norm)} normalisers"
            )
        return cls(
            recipe,
            tuple(float(v) for v in feature_norm),
            x_mean.tolist(),
            x_std.tolist(),
            y_mean,
            y_scale,
            models,
            linear,
            space,
            {},
            tuple(feature_names),
            trees,
        )

    # ---- prediction ----------------------------------------------------------------------------
    def standardized(self, features: np.ndarray | Sequence[Sequence[float]]) -> np.ndarray:
        """Raw feature rows as the models see them (divided by the space norm, standardised)."""
        x = np.asarray(features, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != len(self.feature_names):
            raise UserError(f"estimator expects rows of {len(self.feature_names)} features, got shape {x.shape}")
        return (x / np.asarray(self.feature_norm) - np.asarray(self.x_mean)) / np.asarray(self.x_std)

    def predict(self, features: np.ndarray | Sequence[Sequence[float]]) -> np.ndarray:
        """Milliseconds (never negative) for raw (un-normalised) feature rows ``[n, features]``."""
        x = self.standardized(features)
        out = self._mlp_part(x) if self.recipe.kind != "gbt" else None
        if self.trees is not None:
            from mos_fairseq.search.predictor import predict_json_model

            trees = predict_json_model(self.trees, x)
            out = trees if out is None else (out + trees) / 2
        out = cast(np.ndarray, out)  # set: a gbt recipe has its trees
        ms = out * self.y_scale + self.y_mean
        if self.adaptation:  # another device: a * (this estimator) + b + ridge correction on the features
            a = self.adaptation
            ms = a["scale"] * ms + a["offset"] + x @ np.asarray(a["correction"], dtype=np.float64)
        # far outside its training data a regressor can go below zero; a latency cannot
        return np.maximum(ms, 0.0)

    def _mlp_part(self, x: np.ndarray) -> np.ndarray:
        """The linear term plus the mean of the MLPs (standardised units)."""
        out = x @ np.asarray(self.linear[0], dtype=np.float64) + self.linear[1]
        if self.models:
            xt = torch.tensor(x, dtype=torch.float32)
            with torch.no_grad():
                out = out + torch.stack([m(xt) for m in self.models]).mean(0).squeeze(1).double().numpy()
        return out

    def predict_arch(self, arch: Architecture) -> float:
        """The latency of a translation or BERT subnet (parameters counted with the measured vocabulary)."""
        if self.space is not None and arch.space.name != self.space.get("name"):
            raise UserError(
                f"estimator was trained on space '{self.space.get('name')}', the architecture is in '{arch.space.name}'"
            )
        vocab = (self.info.get("protocol") or {}).get("vocab_size")
        return float(self.predict([arch.latency_features(vocab)])[0])

    # ---- persistence ---------------------------------------------------------------------------
    def header(self) -> dict[str, Any]:
        return {
            "format": FORMAT_TAG,
            "version": FORMAT_VERSION,
            "recipe": self.recipe.to_dict(),
            "features": list(self.feature_names),
            "feature_norm": list(self.feature_norm),
            "x_mean": self.x_mean,
            "x_std": self.x_std,
            "y_mean": self.y_mean,
            "y_scale": self.y_scale,
            "space": self.space,
            "linear_weight": list(self.linear[0]),
            "linear_bias": self.linear[1],
            "target": "encoder + decoder mean latency (ms)",
            "info": self.info,
            **({"trees": self.trees} if self.trees is not None else {}),
            **({"adaptation": self.adaptation} if self.adaptation else {}),
        }

    def save(self, path: str | Path) -> None:
        """Write safetensors atomically (temp file + rename)."""
        from safetensors.torch import save_file

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tensors = {
            f"model{k}.{name}": t.detach().contiguous()
            for k, m in enumerate(self.models)
            for name, t in m.state_dict().items()
        }
        tmp = path.with_name(f".{path.name}.tmp")
        save_file(tensors, str(tmp), metadata={"mos_fairseq": json.dumps(self.header())})
        os.chmod(tmp, 0o666 & ~current_umask())
        tmp.replace(path)

    @classmethod
    def load(cls, path: str | Path) -> LatencyEstimator:
        from safetensors import SafetensorError, safe_open

        path = Path(path)
        if not path.is_file():
            raise CheckpointError(f"estimator file '{path}' does not exist")
        try:
            with safe_open(str(path), framework="pt") as f:
                meta = (f.metadata() or {}).get("mos_fairseq")
                tensors = {k: f.get_tensor(k) for k in f.keys()}
        except (SafetensorError, OSError, ValueError) as exc:
            raise CheckpointError(f"{path}: not a safetensors latency estimator ({str(exc).splitlines()[0]})") from None
        try:
            head = json.loads(meta) if meta else {}
        except json.JSONDecodeError:
            head = {}
        if head.get("format") != FORMAT_TAG:
            raise CheckpointError(f"{path}: safetensors file without a mos-fairseq latency estimator header")
        if head.get("version") != FORMAT_VERSION:
            raise CheckpointError(
                f"{path}: estimator format version {head.get('version')}, this code reads {FORMAT_VERSION}"
            )
        recipe = TrainRecipe(**head["recipe"])
        models = []
        n_models = recipe.ensemble if recipe.kind != "gbt" and recipe.steps > 0 else 0
        for k in range(n_models):
            m = build_mlp(len(head.get("features", FEATURE_NAMES)), recipe.hidden, recipe.layers)
            prefix = f"model{k}."
            try:
                m.load_state_dict({n[len(prefix) :]: t for n, t in tensors.items() if n.startswith(prefix)})
            except RuntimeError as exc:
                raise CheckpointError(
                    f"{path}: tensors do not match the recorded MLP shape ({str(exc).splitlines()[0]})"
                ) from None
            models.append(m.eval())
        return cls(
            recipe,
            tuple(head["feature_norm"]),
            head["x_mean"],
            head["x_std"],
            head["y_mean"],
            head["y_scale"],
            models,
            (head["linear_weight"], head["linear_bias"]),
            head.get("space"),
            head.get("info", {}),
            tuple(head.get("features", FEATURE_NAMES)),
            head.get("trees"),
            head.get("adaptation"),
        )


def _train_one(
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
