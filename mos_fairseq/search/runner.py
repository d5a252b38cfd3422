"""``mos-nas search`` and ``mos-nas evaluate``: wiring a supernet checkpoint, its validation data,
a latency estimator and constraints into :mod:`mos_fairseq.search.evolution`.

Nothing is written before the inputs are checked (checkpoint kind, space, estimator space,
feasibility of every constraint). The search state goes to ``DIR/search_state.json`` after every
iteration; ``--resume`` continues it and must be given the same inputs (``--iterations`` may grow:
a finished search then continues as if it had been started with more).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from mos_fairseq.base.errors import UserError
from mos_fairseq.base.files import write_text_atomic
from mos_fairseq.core.validation import FitnessCache, SubnetEvaluator, ValidationBatches
from mos_fairseq.registry import family_of
from mos_fairseq.search.constraints import AnyConstraint
from mos_fairseq.search.evolution import EvolutionarySearch, EvolutionConfig, SearchState
from mos_fairseq.search.outputs import write_outputs
from mos_fairseq.search.predictor import LossPredictor

STATE_FILE = "search_state.json"


@dataclass
class SearchInputs:
    checkpoint: str
    data: str | None
    constraints: list[AnyConstraint]
    config: EvolutionConfig
    out: str
    space: str | None = None
    estimator: str | None = None  # the one unnamed estimator, or ...
    valid_subset: str = "valid"
    valid_max_sentences: int | None = None
    resume: bool = False
    verify_latency: bool = False
    progress: bool = True
    device: str = "cpu"
    predictor: str | None = None  # rank candidates by a trained loss predictor instead of scoring each
    estimators: dict[str, str] = field(default_factory=dict)  # ... named estimators, device -> file


def _identity(inputs: SearchInputs, space: Any, updates: int) -> dict[str, Any]:
    return {
        "checkpoint": str(Path(inputs.checkpoint).resolve()),
        "checkpoint_updates": updates,
        "space": space.to_dict(),
        "constraints": [c.to_dict() for c in inputs.constraints],
        "config": {k: v for k, v in dataclasses.asdict(inputs.config).items() if k != "iterations"},
        "estimator": str(Path(inputs.estimator).resolve()) if inputs.estimator else None,
        **(
            {"estimators": {d: str(Path(f).resolve()) for d, f in inputs.estimators.items()}}
            if inputs.estimators
            else {}
        ),
        "valid_subset": inputs.valid_subset,
        "valid_max_sentences": inputs.valid_max_sentences,
        **({"predictor": str(Path(inputs.predictor).resolve())} if inputs.predictor else {}),
    }


def resolve_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda: no CUDA device is available to this torch build")
    return device


def load_estimators(inputs: SearchInputs, space_name: str) -> dict:
    """``{device: estimator}`` (``{None: estimator}`` for the one unnamed ``--estimator FILE``), each
    checked to be of the searched space."""
    from mos_fairseq.latency.estimator import LatencyEstimator

    if inputs.estimator and inputs.estimators:
        raise UserError("give one --estimator FILE or named ones (--estimator NAME=FILE ...), not both")
    files: dict = (
        dict(inputs.estimators) if inputs.estimators else ({None: inputs.estimator} if inputs.estimator else {})
    )
    out = {}
    for device, path in files.items():
        estimator = LatencyEstimator.load(path)
        est_space = (estimator.space or {}).get("name")
        if est_space is not None and est_space != space_name:
            raise UserError(f"estimator '{path}' was trained on space '{est_space}', the search runs in '{space_name}'")
        out[device] = estimator
    return out


def _check_out_dir(out: Path, state_path: Path, resume: bool) -> None:
    if state_path.exists() and not resume:
        raise UserError(f"{out} holds a search already; pass --resume to continue it or choose another --out")
    if out.exists() and not out.is_dir():
        raise UserError(f"--out '{out}' exists and is not a directory")
    if out.exists() and any(out.iterdir()) and not state_path.exists():
        raise UserError(f"{out} is not empty and holds no search; choose another --out")


def _saved_state(state_path: Path, identity: dict[str, Any]) -> SearchState | None:
    """The state of the search in ``state_path``, refused when it ran on other inputs; None: no search yet."""
    if not state_path.exists():
        return None
    saved = json.loads(state_path.read_text())
    if saved.get("identity") != identity:
        diff = [k for k in identity if saved.get("identity", {}).get(k) != identity[k]]
        raise UserError(
            f"{state_path}: the search there used other inputs ({', '.join(diff)}); "
            "resume with the same arguments or choose another --out"
        )
    return SearchState.from_json_dict(saved["state"])


def load_predictor(path: str, space_name: str) -> LossPredictor:
    """``search --predictor``: a loss predictor, checked to be of the searched space."""
    predictor = LossPredictor.load(path)
    if predictor.info.get("space") not in (None, space_name):
        raise UserError(
            f"predictor '{path}' was trained on space '{predictor.info['space']}', the search runs in '{space_name}'"
        )
    return predictor


def _costs(supernet, estimators: dict) -> Callable[[Any], dict[str, float]]:
    """A candidate's parameters and its predicted latency on every estimator's device."""

    def costs(arch) -> dict[str, float]:
        result = {"params": float(supernet.num_params(arch))}
        for device, estimator in estimators.items():
            result["latency" if device is None else f"latency:{device}"] = estimator.predict_arch(arch)
        return result

    return costs


def _predicted_loss(predictor: LossPredictor, cache: FitnessCache) -> Callable[[Any], float]:
    """Fitness by the loss predictor (``search --predictor``), cached by architecture like measured losses."""

    def loss(arch) -> float:
        key = arch.to_json()
        if key not in cache.losses:
            cache.losses[key] = predictor.predict_arch(arch)
            cache.misses += 1
        else:
            cache.hits += 1
        return cache.losses[key]

    return loss


def run_search(inputs: SearchInputs) -> list[dict]:
    from mos_fairseq.core.checkpoints import num_updates
    from mos_fairseq.loading import load_supernet

    device = resolve_device(inputs.device)
    out = Path(inputs.out)
    state_path = out / STATE_FILE
    _check_out_dir(out, state_path, inputs.resume)
    supernet, task, ckpt_state = load_supernet(inputs.checkpoint, inputs.data)
    family = family_of(supernet.space)
    space = family.narrower_space(inputs.space, supernet.space) if inputs.space else supernet.space
    estimators = load_estimators(inputs, space.name)
    if any(c.kind == "latency" for c in inputs.constraints) and not estimators:
        raise UserError("--latency-constraint needs --estimator FILE (a trained latency estimator)")
    identity = _identity(inputs, space, num_updates(ckpt_state))
    state = _saved_state(state_path, identity)
    cache = FitnessCache()
    if state is not None:
        cache.losses.update({k: v["loss"] for k, v in state.evaluated.items()})
    predictor = load_predictor(inputs.predictor, space.name) if inputs.predictor else None
    batches = ValidationBatches.from_task(task, inputs.valid_subset, inputs.valid_max_sentences)
    evaluator = SubnetEvaluator(supernet, batches, cache, device)
    fitness = evaluator.loss if predictor is None else _predicted_loss(predictor, cache)
    search = EvolutionarySearch(space, inputs.constraints, inputs.config, _costs(supernet, estimators), fitness, family)
    search.check_feasible()

    def save(st: SearchState) -> None:
        write_text_atomic(state_path, json.dumps({"identity": identity, "state": st.to_json_dict()}) + "\n")

    out.mkdir(parents=True, exist_ok=True)
    state = search.run(state, on_iteration=save, progress=inputs.progress)
    best, extra = _picks(search, state, inputs, estimators, evaluator if predictor is not None else None)
    summary = write_outputs(out, search.candidates(state), inputs.constraints, best, list(estimators), extra)
    stats = {
        "evaluations": cache.misses,
        "cache_hits": cache.hits,
        "cache_hit_rate": cache.hits / max(1, cache.hits + cache.misses),
        "evaluation_seconds": round(cache.seconds, 2),
        "candidates": len(state.evaluated),
        "validation_sentences": evaluator.batches.sentences,
        "validation_tokens": evaluator.batches.tokens,
    }
    write_text_atomic(out / "search_stats.json", json.dumps(stats, indent=2) + "\n")
    return summary


def _picks(
    search: EvolutionarySearch, state: SearchState, inputs: SearchInputs, estimators: dict, rescore: Any
) -> tuple[list, dict[str, dict]]:
    """The best candidate per constraint (``--verify-latency``: measured, replaced when over its bound)
    and what the summary adds per constraint; ``rescore`` (an evaluator, with a loss predictor) scores
    the picks for real."""
    best = search.best(state)
    extra: dict[str, dict] = {}
    if inputs.verify_latency:
        from mos_fairseq.search.verify import verify_latency

        best, extra = verify_latency(best, inputs.constraints, estimators, search.candidates(state))
    if rescore is not None:  # the picks scored for real: predicted vs measured loss
        for c, b in zip(inputs.constraints, best):
            assert b is not None  # check_feasible: every constraint admits a candidate
            extra.setdefault(c.name, {})["evaluated_valid_loss"] = round(rescore.compute(b.arch), 6)
    return best, extra


def evaluate_subnet(
    checkpoint: str,
    data: str | None,
    arch_path: str,
    valid_subset: str = "valid",
    max_sentences: int | None = None,
    bleu: bool = True,
    beam: int = 4,
    lenpen: float = 0.6,
    device: str = "cpu",
    bf16: bool = False,
) -> dict[str, Any]:
    """Validation loss (bits/token) and, where the family has it, detokenised BLEU of one subnet inside
    a supernet (``mos-nas evaluate``); ``bf16``: its static model with bf16 weights, on CPU."""
    import torch

    from mos_fairseq.loading import load_supernet

    dtype = None
    if bf16:
        from mos_fairseq.core.cpu_bf16 import require_cpu_bf16

        if device == "cuda" or (device == "auto" and torch.cuda.is_available()):
            raise UserError("--bf16 evaluates on CPU: give --device cpu (or auto on a machine without CUDA)")
        require_cpu_bf16()
        dtype = torch.bfloat16
    supernet, task, _ = load_supernet(checkpoint, data)
    arch = supernet.arch_type.load(arch_path, supernet.space)
    batches = ValidationBatches.from_task(task, valid_subset, max_sentences)
    evaluator = SubnetEvaluator(supernet, batches, device=resolve_device(device), dtype=dtype or torch.float32)
    batches = evaluator.batches
    result: dict[str, Any] = {
        "arch": arch_path,
        "valid_subset": valid_subset,
        "sentences": batches.sentences,
        "valid_loss": evaluator.loss(arch),
        "params": supernet.num_params(arch),
    }
    result["valid_ppl"] = 2 ** result["valid_loss"]
    score = family_of(supernet.space).subnet_bleu(supernet, task, arch, batches, beam, lenpen, dtype) if bleu else None
    if score is not None:  # BERT: perplexity only
        result["bleu"] = score
    return result
