"""The latency estimator: architecture features in, milliseconds out (HAT's 10 features for
translation spaces; a BERT space's shape and parameter count, ``BertSpace.latency_feature_names``).

Search asks it for the latency of thousands of candidates in microseconds. It is trained on a
latency dataset (:mod:`mos_fairseq.latency.dataset`) with one of the recipes of
:mod:`mos_fairseq.latency.recipes` (a linear term and MLPs, HAT's MLP, least squares, boosted trees
or a mean of MLP and trees); :mod:`mos_fairseq.latency.evaluation` chooses the recipe and compares
it with baselines. Features are divided by the space's normalisation and then standardised; the
target is standardised too (:class:`Scaling`). Saved as safetensors (tensors) with a JSON header
(recipe, normalisation, space, provenance, trees as plain arrays): nothing is unpickled on load.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence, cast

import numpy as np
import torch
from torch import nn

from mos_fairseq.base.errors import CheckpointError, UserError
from mos_fairseq.base.files import current_umask
from mos_fairseq.base.json_models import predict_json_model
from mos_fairseq.core.family import Arch
from mos_fairseq.latency.recalibration import apply_recalibration
from mos_fairseq.latency.recipes import (
    OUR_RECIPE,
    RECIPE_KINDS,
    TrainRecipe,
    build_mlp,
    fit_linear_and_mlps,
    fit_trees,
    recipe_from_dict,
)
from mos_fairseq.registry import hat_latency_format

FORMAT_TAG = "mos-fairseq-latency-estimator"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class Scaling:
    """Raw feature rows to the models' inputs (divided by the space's normalisation, then
    standardised) and the target's scale (HAT's recipe: features / norm only, latency / its maximum)."""

    feature_norm: tuple[float, ...]
    x_mean: list[float]
    x_std: list[float]
    y_mean: float
    y_scale: float

    @classmethod
    def fit(
        cls, features: np.ndarray, latency_ms: np.ndarray, feature_norm: Sequence[float], standardize: bool
    ) -> Scaling:
        x = np.asarray(features, dtype=np.float64) / np.asarray(feature_norm, dtype=np.float64)
        y = np.asarray(latency_ms, dtype=np.float64)
        if standardize:
            x_mean, x_std = x.mean(0), x.std(0)
            x_std[x_std == 0] = 1.0
            y_mean, y_scale = float(y.mean()), float(y.std() or 1.0)
        else:
            x_mean, x_std = np.zeros(x.shape[1]), np.ones(x.shape[1])
            y_mean, y_scale = 0.0, float(np.abs(y).max() or 1.0)
        return cls(tuple(float(v) for v in feature_norm), x_mean.tolist(), x_std.tolist(), y_mean, y_scale)

    def inputs(self, x: np.ndarray) -> np.ndarray:
        return (x / np.asarray(self.feature_norm) - np.asarray(self.x_mean)) / np.asarray(self.x_std)


@dataclass
class LatencyEstimator:
    """A fitted recipe (linear term and MLPs, boosted trees, or both) plus the scaling of its inputs."""

    recipe: TrainRecipe
    scaling: Scaling
    feature_names: tuple[str, ...]
    models: list[nn.Sequential] = field(default_factory=list)
    linear: tuple[Sequence[float], float] = ((), 0.0)  # weights and bias in standardised units
    trees: dict[str, Any] | None = None  # gbt / ensemble recipes: boosted trees on the standardised features
    space: dict | None = None
    info: dict[str, Any] = field(default_factory=dict)
    adaptation: dict[str, Any] | None = None  # recalibration to another device (latency.adaptation), applied last
    blend: dict[str, Any] | None = None  # {"weight": w, "estimator": E}: (1 - w) * this + w * E (latency.adaptation)

    @property
    def feature_norm(self) -> tuple[float, ...]:
        return self.scaling.feature_norm

    # ---- fitting ---------------------------------------------------------------------------
    @classmethod
    def fit(
        cls,
        features: np.ndarray,
        latency_ms: np.ndarray,
        recipe: TrainRecipe = OUR_RECIPE,
        feature_norm: Sequence[float] | None = None,
        seed: int = 1,
        space: dict | None = None,
        feature_names: Sequence[str] | None = None,
    ) -> LatencyEstimator:
        """``recipe`` fitted on raw feature rows; without ``feature_norm``/``feature_names``, those of
        HAT's latency files."""
        hat = hat_latency_format()
        norm = hat.feature_norm if feature_norm is None else tuple(feature_norm)
        names = hat.feature_names if feature_names is None else tuple(feature_names)
        x = np.asarray(features, dtype=np.float64)
        if len(x) < 2:
            raise UserError(f"need at least 2 training rows to fit an estimator, got {len(x)}")
        if recipe.kind not in RECIPE_KINDS:
            raise UserError(f"unknown estimator recipe kind {recipe.kind!r} (one of {list(RECIPE_KINDS)})")
        if len(norm) != x.shape[1] or len(names) != x.shape[1]:
            raise UserError(f"{x.shape[1]} feature columns, but {len(names)} names and {len(norm)} normalisers")
        scaling = Scaling.fit(x, latency_ms, norm, recipe.standardize)
        xs = scaling.inputs(x)
        ys = (np.asarray(latency_ms, dtype=np.float64) - scaling.y_mean) / scaling.y_scale
        est = cls(recipe=recipe, scaling=scaling, feature_names=names, linear=([0.0] * x.shape[1], 0.0), space=space)
        if recipe.kind in ("gbt", "ensemble"):
            est.trees = fit_trees(xs, ys, seed)
        if recipe.kind != "gbt":
            est.linear, est.models = fit_linear_and_mlps(xs, ys, recipe, seed)
        return est

    # ---- prediction ----------------------------------------------------------------------------
    def standardized(self, features: np.ndarray | Sequence[Sequence[float]]) -> np.ndarray:
        """Raw feature rows as the models see them (divided by the space norm, standardised)."""
        x = np.asarray(features, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != len(self.feature_names):
            raise UserError(f"estimator expects rows of {len(self.feature_names)} features, got shape {x.shape}")
        return self.scaling.inputs(x)

    def predict(self, features: np.ndarray | Sequence[Sequence[float]]) -> np.ndarray:
        """Milliseconds (never negative) for raw (un-normalised) feature rows ``[n, features]``."""
        x = self.standardized(features)
        out = self._mlp_part(x) if self.recipe.kind != "gbt" else None
        if self.trees is not None:
            trees = predict_json_model(self.trees, x)
            out = trees if out is None else (out + trees) / 2
        out = cast(np.ndarray, out)  # set: a gbt recipe has its trees
        ms = out * self.scaling.y_scale + self.scaling.y_mean
        ms = apply_recalibration(self.adaptation, ms, x)  # another device (latency.adaptation), if adapted
        if self.blend:  # a from-scratch fit blended with a recalibrated one (latency.adaptation)
            w = float(self.blend["weight"])
            ms = (1 - w) * ms + w * self.blend["estimator"].predict(features)
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

    def predict_arch(self, arch: Arch) -> float:
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
            "feature_norm": list(self.scaling.feature_norm),
            "x_mean": self.scaling.x_mean,
            "x_std": self.scaling.x_std,
            "y_mean": self.scaling.y_mean,
            "y_scale": self.scaling.y_scale,
            "space": self.space,
            "linear_weight": list(self.linear[0]),
            "linear_bias": self.linear[1],
            "target": "encoder + decoder mean latency (ms)",
            "info": self.info,
            **({"trees": self.trees} if self.trees is not None else {}),
            **({"adaptation": self.adaptation} if self.adaptation else {}),
            **(
                {"blend": {"weight": self.blend["weight"], "header": self.blend["estimator"].header()}}
                if self.blend
                else {}
            ),
        }

    def tensors(self) -> dict[str, torch.Tensor]:
        """The MLPs' tensors by file key (a blended estimator's under ``blend.``)."""
        out = {
            f"model{k}.{name}": t.detach().contiguous()
            for k, m in enumerate(self.models)
            for name, t in m.state_dict().items()
        }
        if self.blend:
            out.update({f"blend.{k}": t for k, t in self.blend["estimator"].tensors().items()})
        return out

    def save(self, path: str | Path) -> None:
        """Write safetensors atomically (temp file + rename)."""
        from safetensors.torch import save_file

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        save_file(self.tensors(), str(tmp), metadata={"mos_fairseq": json.dumps(self.header())})
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
        return cls.from_header(head, tensors, str(path))

    @classmethod
    def from_header(cls, head: dict[str, Any], tensors: dict[str, torch.Tensor], path: str) -> LatencyEstimator:
        """The estimator a file's header and tensors describe (``path`` names it in errors)."""
        recipe = recipe_from_dict(head["recipe"])
        names = tuple(head.get("features", hat_latency_format().feature_names))  # without: HAT's 10
        n_models = recipe.ensemble if recipe.kind != "gbt" and recipe.steps > 0 else 0
        scaling = Scaling(tuple(head["feature_norm"]), head["x_mean"], head["x_std"], head["y_mean"], head["y_scale"])
        return cls(
            recipe=recipe,
            scaling=scaling,
            feature_names=names,
            models=[_load_mlp(tensors, f"model{k}.", len(names), recipe, path) for k in range(n_models)],
            linear=(head["linear_weight"], head["linear_bias"]),
            trees=head.get("trees"),
            space=head.get("space"),
            info=head.get("info", {}),
            adaptation=head.get("adaptation"),
            blend=cls._blend_of(head, tensors, path),
        )

    @classmethod
    def _blend_of(cls, head: dict[str, Any], tensors: dict[str, torch.Tensor], path: str) -> dict[str, Any] | None:
        if "blend" not in head:
            return None
        inner = {k[len("blend.") :]: t for k, t in tensors.items() if k.startswith("blend.")}
        return {"weight": head["blend"]["weight"], "estimator": cls.from_header(head["blend"]["header"], inner, path)}


def _load_mlp(
    tensors: dict[str, torch.Tensor], prefix: str, n_in: int, recipe: TrainRecipe, path: str
) -> nn.Sequential:
    """One MLP of an estimator file, from the tensors under ``prefix``."""
    m = build_mlp(n_in, recipe.hidden, recipe.layers)
    try:
        m.load_state_dict({n[len(prefix) :]: t for n, t in tensors.items() if n.startswith(prefix)})
    except RuntimeError as exc:
        raise CheckpointError(
            f"{path}: tensors do not match the recorded MLP shape ({str(exc).splitlines()[0]})"
        ) from None
    return m.eval()
