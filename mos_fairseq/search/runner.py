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
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mos_fairseq.core.errors import DataError, UserError
from mos_fairseq.core.files import write_text_atomic
from mos_fairseq.registry import family_of
from mos_fairseq.search.constraints import AnyConstraint
from mos_fairseq.search.evolution import EvolutionarySearch, EvolutionConfig, SearchState
from mos_fairseq.search.fitness import FitnessCache, SubnetEvaluator, ValidationBatches

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


def run_search(inputs: SearchInputs) -> list[dict]:
    from mos_fairseq.core.checkpoints import num_updates
    from mos_fairseq.loading import load_supernet

    device = resolve_device(inputs.device)
    out = Path(inputs.out)
    state_path = out / STATE_FILE
    if state_path.exists() and not inputs.resume:
        raise UserError(f"{out} holds a search already; pass --resume to continue it or choose another --out")
    if out.exists() and not out.is_dir():
        raise UserError(f"--out '{out}' exists and is not a directory")
    if out.exists() and any(out.iterdir()) and not state_path.exists():
        raise UserError(f"{out} is not empty and holds no search; choose another --out")
    supernet, task, ckpt_state = load_supernet(inputs.checkpoint, inputs.data)
    family = family_of(supernet.space)
    space = supernet.space
    if inputs.space:
        space = family.narrower_space(inputs.space, supernet.space)
    estimators = load_estimators(inputs, space.name)
    if any(c.kind == "latency" for c in inputs.constraints) and not estimators:
        raise UserError("--latency-constraint needs --estimator FILE (a trained latency estimator)")

    def costs(arch) -> dict[str, float]:
        result = {"params": float(supernet.num_params(arch))}
        for device, estimator in estimators.items():
            result["latency" if device is None else f"latency:{device}"] = estimator.predict_arch(arch)
        return result

    identity = _identity(inputs, space, num_updates(ckpt_state))
    state = None
    if state_path.exists():
        saved = json.loads(state_path.read_text())
        if saved.get("identity") != identity:
            diff = [k for k in identity if saved.get("identity", {}).get(k) != identity[k]]
            raise UserError(
                f"{state_path}: the search there used other inputs ({', '.join(diff)}); "
                "resume with the same arguments or choose another --out"
            )
        state = SearchState.from_json_dict(saved["state"])
    cache = FitnessCache()
    if state is not None:
        cache.losses.update({k: v["loss"] for k, v in state.evaluated.items()})
    predictor = None
    if inputs.predictor:
        from mos_fairseq.search.predictor import LossPredictor

        predictor = LossPredictor.load(inputs.predictor)
        if predictor.info.get("space") not in (None, space.name):
            raise UserError(
                f"predictor '{inputs.predictor}' was trained on space '{predictor.info['space']}', "
                f"the search runs in '{space.name}'"
            )

    def fitness(arch) -> float:
        if predictor is None:
            return evaluator.loss(arch)
        key = arch.to_json()
        if key not in cache.losses:
            cache.losses[key] = predictor.predict_arch(arch)
            cache.misses += 1
        else:
            cache.hits += 1
        return cache.losses[key]

    search = EvolutionarySearch(space, inputs.constraints, inputs.config, costs, fitness, family)
    search.check_feasible()
    batches = ValidationBatches.from_task(task, inputs.valid_subset, inputs.valid_max_sentences)
    evaluator = SubnetEvaluator(supernet, batches, cache, device)

    def save(st: SearchState) -> None:
        write_text_atomic(state_path, json.dumps({"identity": identity, "state": st.to_json_dict()}) + "\n")

    out.mkdir(parents=True, exist_ok=True)
    state = search.run(state, on_iteration=save, progress=inputs.progress)
    best = search.best(state)
    extra: dict[str, dict] = {}
    if inputs.verify_latency:
        from mos_fairseq.search.verify import verify_latency

        best, extra = verify_latency(best, inputs.constraints, estimators, search.candidates(state))
    if predictor is not None:  # the picks scored for real: predicted vs measured loss
        for c, b in zip(inputs.constraints, best):
            assert b is not None  # check_feasible: every constraint admits a candidate
            extra.setdefault(c.name, {})["evaluated_valid_loss"] = round(evaluator.compute(b.arch), 6)
    from mos_fairseq.search.outputs import write_outputs

    summary = write_outputs(out, search.candidates(state), inputs.constraints, best, list(estimators), extra)
    stats = {
        "evaluations": cache.misses,
        "cache_hits": cache.hits,
        "cache_hit_rate": cache.hits / max(1, cache.hits + cache.misses),
        "evaluation_seconds": round(cache.seconds, 2),
        "candidates": len(state.evaluated),
        "validation_sentences": batches.sentences,
        "validation_tokens": batches.tokens,
    }
    write_text_atomic(out / "search_stats.json", json.dumps(stats, indent=2) + "\n")
    return summary


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
) -> dict[str, Any]:
    """Validation loss (bits/token) and detokenised BLEU of one subnet inside a supernet."""
    from mos_fairseq.loading import load_supernet

    supernet, task, _ = load_supernet(checkpoint, data)
    arch = supernet.arch_type.load(arch_path, supernet.space)
    bleu = bleu and family_of(supernet.space).supports_bleu  # BERT: perplexity only
    batches = ValidationBatches.from_task(task, valid_subset, max_sentences)
    evaluator = SubnetEvaluator(supernet, batches, device=resolve_device(device))
    batches = evaluator.batches
    result: dict[str, Any] = {
        "arch": arch_path,
        "valid_subset": valid_subset,
        "sentences": batches.sentences,
        "valid_loss": evaluator.loss(arch),
        "params": supernet.num_params(arch),
    }
    result["valid_ppl"] = 2 ** result["valid_loss"]
    if bleu:
        result["bleu"] = subnet_bleu(supernet, task, arch, batches, beam, lenpen)
    return result


def subnet_bleu(supernet, task, arch: Any, batches: ValidationBatches, beam: int, lenpen: float) -> float:
    return model_bleu(supernet.extract_static(arch), task.target_dictionary, batches, beam, lenpen)


def model_bleu(model, tgt, batches: ValidationBatches, beam: int = 4, lenpen: float = 0.6) -> float:
    """Detokenised sacreBLEU of a translation model over ``batches``: beam search with fairseq's
    SequenceGenerator (fairseq-generate's defaults, max length 200), sentencepiece removed."""
    import sacrebleu
    import torch
    from fairseq.sequence_generator import SequenceGenerator

    gen = SequenceGenerator([model], tgt, beam_size=beam, len_penalty=lenpen, max_len_a=0, max_len_b=200)
    hyps, refs = [], []
    with torch.inference_mode():
        for sample in batches.samples:
            out = gen.generate([model], sample)
            for i, hypos in enumerate(out):
                hyps.append(tgt.string(hypos[0]["tokens"].int().cpu(), "sentencepiece"))
                ref = sample["target"][i]
                refs.append(tgt.string(ref[ref.ne(tgt.pad())].int().cpu(), "sentencepiece"))
    if not hyps:
        raise DataError("no sentences to translate")
    score = sacrebleu.corpus_bleu(hyps, [refs]).score
    return float(score) if math.isfinite(score) else 0.0
