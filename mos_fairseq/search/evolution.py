"""HAT's evolutionary search, run once for several constraints at a time.

HAT runs one search per constraint: a population of ``population`` architectures, the best
``parents`` (lowest validation loss) kept, ``mutation`` children made by resampling each gene
with probability ``mutation_prob`` and ``crossover`` children taking each gene from one of two
parents, and candidates breaking the constraint never admitted (resampled until they satisfy it).

Here one population serves all constraints: every constraint keeps its own parents (the best
members of the population that it allows), the children budget is split between the
constraints (each child is made from, and must satisfy, one constraint's parents), and
evaluations are cached by architecture, so a candidate that several constraints admit is scored
once. The best architecture per constraint is the lowest-loss evaluated candidate it allows. All
randomness comes from one ``random.Random(seed)``; the state after every iteration (population,
generator state, evaluated losses) is JSON, so a resumed search ends exactly like an
uninterrupted one.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any, Callable

from mos_fairseq.base.errors import ArchError, UserError
from mos_fairseq.core.family import Arch, ModelFamily
from mos_fairseq.search.constraints import AnyConstraint

MAX_TRIES = 2000  # attempts to draw one admissible child before giving up on that slot


@dataclass(frozen=True)
class EvolutionConfig:
    iterations: int = 30
    population: int = 125
    parents: int = 25
    mutation: int = 50
    mutation_prob: float = 0.3
    crossover: int = 50
    seed: int = 1

    def __post_init__(self) -> None:
        for name in ("iterations", "population", "parents"):
            if getattr(self, name) < 1:
                raise UserError(f"--{name} must be >= 1, got {getattr(self, name)}")
        if self.mutation < 0 or self.crossover < 0:
            raise UserError("--mutation and --crossover must be >= 0")
        if not 0 <= self.mutation_prob <= 1:
            raise UserError(f"--mutation-prob must be in [0, 1], got {self.mutation_prob}")
        if self.parents > self.population:
            raise UserError(f"--parents ({self.parents}) cannot exceed --population ({self.population})")


@dataclass
class Candidate:
    arch: Arch
    costs: dict[str, float]
    loss: float
    iteration: int  # first iteration it was evaluated in


@dataclass
class SearchState:
    """Everything needed to continue a search (see :meth:`to_json_dict`)."""

    iteration: int = 0  # iterations completed
    population: list[str] = field(default_factory=list)  # arch JSON of the next generation to evaluate
    rng_state: list | None = None
    evaluated: dict[str, dict] = field(default_factory=dict)  # arch JSON -> {loss, iteration}
    best_history: list[dict[str, float | None]] = field(default_factory=list)

    def to_json_dict(self) -> dict:
        return {
            "iteration": self.iteration,
            "population": self.population,
            "rng_state": self.rng_state,
            "evaluated": self.evaluated,
            "best_history": self.best_history,
        }

    @classmethod
    def from_json_dict(cls, data: dict) -> SearchState:
        return cls(data["iteration"], data["population"], data["rng_state"], data["evaluated"], data["best_history"])


def rng_state_to_json(rng: random.Random) -> list:
    version, internal, gauss = rng.getstate()
    return [version, list(internal), gauss]


def rng_from_json(state: list) -> random.Random:
    rng = random.Random()
    rng.setstate((state[0], tuple(state[1]), state[2]))
    return rng


# ---- the search ---------------------------------------------------------------------------------
class EvolutionarySearch:
    """``costs(arch)`` gives ``{"params": ..., "latency": ...}``; ``loss(arch)`` the fitness (cached by the caller)."""

    def __init__(
        self,
        space: Any,
        constraints: list[AnyConstraint],
        config: EvolutionConfig,
        costs: Callable[[Any], dict[str, float]],
        loss: Callable[[Any], float],
        family: ModelFamily,
    ):
        self.space, self.constraints, self.config = space, constraints, config
        self.arch_type = family.arch_type
        self.mutate, self.crossover = family.mutate, family.crossover
        self._costs, self._loss = costs, loss
        self._cost_cache: dict[str, dict[str, float]] = {}

    def costs(self, arch: Arch) -> dict[str, float]:
        key = arch.to_json()
        if key not in self._cost_cache:
            self._cost_cache[key] = self._costs(arch)
        return self._cost_cache[key]

    def allowed(self, arch: Arch, c: AnyConstraint) -> bool:
        return c.allows(self.costs(arch))

    def check_feasible(self, rng_seed: int = 12345, samples: int = 2000) -> None:
        """Refuse (UserError) a constraint no architecture satisfies: smallest subnet + random samples."""
        rng = random.Random(rng_seed)
        smallest = self.arch_type.smallest(self.space)
        pool = [smallest] + [self.arch_type.random(self.space, rng) for _ in range(samples)]
        for c in self.constraints:
            if not any(self.allowed(a, c) for a in pool):
                costs = self.costs(smallest)
                have = ", ".join(
                    f"{costs[p.cost_key]:,.2f} ms (predicted{' on ' + p.device if p.device else ''})"
                    if p.kind == "latency"
                    else f"{costs[p.cost_key]:,.0f} parameters"
                    for p in c.parts
                )
                raise UserError(
                    f"infeasible constraint {c.describe()}: the smallest subnet has {have} "
                    f"and none of {samples} random subnets satisfies it"
                )

    def _random_admissible(self, c: AnyConstraint, rng: random.Random, taken: set[str]) -> Arch | None:
        for _ in range(MAX_TRIES):
            arch = self.arch_type.random(self.space, rng)
            if arch.to_json() not in taken and self.allowed(arch, c):
                return arch
        return None

    def _child(self, make: Callable[[], Arch], c: AnyConstraint, taken: set[str]) -> Arch | None:
        for _ in range(MAX_TRIES):
            try:
                arch = make()
            except ArchError:
                continue
            if arch.to_json() not in taken and self.allowed(arch, c):
                return arch
        return None

    def _split(self, total: int) -> list[int]:
        k = len(self.constraints)
        return [total // k + (1 if i < total % k else 0) for i in range(k)]

    def initial_population(self, rng: random.Random) -> list[Arch]:
        taken: set[str] = set()
        pop: list[Arch] = []
        for c, n in zip(self.constraints, self._split(self.config.population)):
            for _ in range(n):
                arch = self._random_admissible(c, rng, taken)
                if arch is not None:
                    taken.add(arch.to_json())
                    pop.append(arch)
        return pop

    def parents_of(self, population: list[Arch], losses: dict[str, float], c: AnyConstraint) -> list[Arch]:
        admitted = [a for a in population if self.allowed(a, c)]
        admitted.sort(key=lambda a: (losses[a.to_json()], a.to_json()))
        return admitted[: self.config.parents]

    def next_population(self, parents: list[list[Arch]], rng: random.Random) -> list[Arch]:
        taken: set[str] = set()
        pop: list[Arch] = []
        for group in parents:
            for a in group:
                if a.to_json() not in taken:
                    taken.add(a.to_json())
                    pop.append(a)
        p = self.config.mutation_prob
        for c, group, n_mut, n_cross in zip(
            self.constraints, parents, self._split(self.config.mutation), self._split(self.config.crossover)
        ):
            for _ in range(n_mut):
                child = (
                    self._child(lambda: self.mutate(rng.choice(group), p, rng), c, taken)  # noqa: B023 (called at once)
                    if group
                    else self._random_admissible(c, rng, taken)
                )
                if child is not None:
                    taken.add(child.to_json())
                    pop.append(child)
            for _ in range(n_cross):
                child = (
                    self._child(lambda: self.crossover(rng.choice(group), rng.choice(group), rng), c, taken)  # noqa: B023
                    if group
                    else self._random_admissible(c, rng, taken)
                )
                if child is not None:
                    taken.add(child.to_json())
                    pop.append(child)
        return pop

    def run(
        self,
        state: SearchState | None = None,
        on_iteration: Callable[[SearchState], None] | None = None,
        progress: bool = False,
    ) -> SearchState:
        """Run (or continue) the search; ``on_iteration`` gets the state after every iteration."""
        cfg = self.config
        state = state or SearchState()
        if state.rng_state is None:
            rng = random.Random(cfg.seed)
            population = self.initial_population(rng)
        else:
            rng = rng_from_json(state.rng_state)
            population = [self.arch_type.from_json(s, self.space) for s in state.population]
        from tqdm import tqdm

        bar = tqdm(total=cfg.iterations, initial=state.iteration, unit="iter", disable=not progress, desc="search")
        while state.iteration < cfg.iterations:
            losses = {}
            for arch in population:
                key = arch.to_json()
                losses[key] = self._loss(arch)
                state.evaluated.setdefault(key, {"loss": losses[key], "iteration": state.iteration})
            parents = [self.parents_of(population, losses, c) for c in self.constraints]
            best = self.best(state)
            state.best_history.append({c.name: (b.loss if b else None) for c, b in zip(self.constraints, best)})
            state.iteration += 1
            # always breed the next generation, so that a finished search can be extended
            # (--resume with more --iterations) exactly as if it had run longer
            population = self.next_population(parents, rng)
            state.population = [a.to_json() for a in population]
            state.rng_state = rng_state_to_json(rng)
            if on_iteration:
                on_iteration(state)
            bar.update(1)
            bar.set_postfix({c.name: (f"{b.loss:.3f}" if b else "-") for c, b in zip(self.constraints, best)})
        bar.close()
        return state

    def candidates(self, state: SearchState) -> list[Candidate]:
        out = []
        for key, rec in state.evaluated.items():
            arch = self.arch_type.from_json(key, self.space)
            out.append(Candidate(arch, self.costs(arch), rec["loss"], rec["iteration"]))
        return out

    def best(self, state: SearchState) -> list[Candidate | None]:
        cands = self.candidates(state)
        result = []
        for c in self.constraints:
            ok = [x for x in cands if c.allows(x.costs)]
            result.append(min(ok, key=lambda x: (x.loss, x.arch.to_json())) if ok else None)
        return result
