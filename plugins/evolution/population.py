"""The evolution's state, rebuilt from the study's trials, and selection.

Nothing lives only in memory: each proposal reads the trials (lineage attributes, values)
and works out which generation is in progress, which of its slots are still empty, and
the population the next children are bred from. A killed or interrupted run therefore
continues at the first empty slot, with the same seeds.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from optprompt.trials import TrialRecord

if TYPE_CHECKING:
    import optuna

__all__ = [
    "Individual",
    "History",
    "ATTR",
    "select_parents",
    "fills_slot",
    "PRUNED_OR_FAILED",
]

# Trial user attributes this strategy writes (``evolution.*``).
ATTR = {
    "generation": "evolution.generation",  # 0 = the initial population
    "individual": "evolution.individual",  # slot in the generation, 0..population-1
    "parents": "evolution.parents",  # trial numbers of the parents
    "operator": "evolution.operator",  # e.g. "ga:llm_crossover+llm_mutate", "init:edit_swap"
    "attempt": "evolution.attempt",  # how many earlier trials tried this slot
    "rejected": "evolution.rejected",  # why rewrites were thrown away (junk or duplicate)
    "repairs": "evolution.repairs",  # repairs applied to the rewrite that was used
    "rewriter_calls": "evolution.rewriter_calls",  # LLM calls made in this trial
    "fallback": "evolution.fallback",  # why edits replaced the LLM: junk, rewriter_budget/_error
}
# Fitness of a child that was pruned or failed: it fills its slot but never survives
# selection against a scored one (and has no weight in roulette selection).
PRUNED_OR_FAILED = float("-inf")


def fills_slot(t: optuna.trial.FrozenTrial) -> bool:
    """Does this finished trial produce its slot's individual? Exactly the trials that use
    up budget: scored (not a repeat), pruned part-way, or failed with a reason (as
    ``-inf``, when it got as far as a candidate). Repeats, rejected and void trials do not,
    so the slot is tried again with the next seed."""
    record = TrialRecord.from_frozen(t)
    if record.is_complete:
        return record.uses_budget and t.value is not None
    # Pruned or failed: it fills its slot (as -inf) when it got as far as a candidate and
    # used up budget (not rejected, not void: those are tried again).
    return record.candidate is not None and record.uses_budget


@dataclass(frozen=True)
class Individual:
    """One scored member of the evolution."""

    trial: int
    generation: int
    slot: int
    instruction: str
    demo_ids: tuple[str, ...]
    value: float
    hash: str
    operator: str = "baseline"
    parents: tuple[int, ...] = ()


def _sort_key(ind: Individual) -> tuple[float, int]:
    return (-ind.value, ind.trial)  # best first; ties: the older one


class History:
    """The evolution so far, from the study's trials.

    Args:
        trials: All trials of the study (any state).
        population: Individuals per generation.
        generations: Generations after the initial one.
        mode: ``ga`` (best ``population`` of parents and children survive, or
            ``elitism`` parents plus the best children) or ``de`` (per slot, the child
            replaces its target parent when it scores at least as well).
        elitism: GA only; None keeps the best of parents and children together.
    """

    def __init__(
        self,
        trials: Iterable[optuna.trial.FrozenTrial],
        *,
        population: int,
        generations: int,
        mode: str,
        elitism: int | None = None,
    ) -> None:
        from optuna.trial import TrialState

        self.size = population
        self.generations = generations
        self.mode = mode
        self.elitism = elitism
        self.children: list[dict[int, Individual]] = [{} for _ in range(generations + 1)]
        self.attempts: Counter[tuple[int, int]] = Counter()
        self.hashes: set[str] = set()
        self.rewriter_calls = 0
        self.rejected: Counter[str] = Counter()
        self.repairs: Counter[str] = Counter()
        self.fallbacks: Counter[str] = Counter()
        for t in sorted(trials, key=lambda t: t.number):
            record = TrialRecord.from_frozen(t)
            ua = record.attrs  # this plugin's own attributes (ATTR)
            self.rewriter_calls += int(ua.get(ATTR["rewriter_calls"], 0))
            if record.is_complete and record.hash:
                self.hashes.add(record.hash)
            if record.is_baseline:
                if t.state == TrialState.COMPLETE:
                    self._fill(t, 0, 0)
                continue
            if ATTR["generation"] not in ua or not t.state.is_finished():
                continue
            self.rejected.update(ua.get(ATTR["rejected"], []))
            self.repairs.update(ua.get(ATTR["repairs"], []))
            if ua.get(ATTR["fallback"]):
                self.fallbacks[ua[ATTR["fallback"]]] += 1
            gen, slot = int(ua[ATTR["generation"]]), int(ua[ATTR["individual"]])
            if record.is_void:
                continue  # re-done with the same seed, as if it never ran
            self.attempts[(gen, slot)] += 1
            if fills_slot(t) and 0 <= gen <= generations:
                self._fill(t, gen, slot)
        self.populations: list[list[Individual]] = []
        for gen in range(generations + 1):
            if len(self.children[gen]) < population:
                break
            kids = [self.children[gen][s] for s in range(population)]
            self.populations.append(kids if gen == 0 else self._survivors(self.populations[-1], kids))

    def _fill(self, t: optuna.trial.FrozenTrial, gen: int, slot: int) -> None:
        if slot in self.children[gen] or not 0 <= slot < self.size:
            return  # a second worker's copy of a filled slot: not part of the evolution
        record = TrialRecord.from_frozen(t)
        ua = record.attrs  # this plugin's own attributes (ATTR)
        cand: dict[str, Any] = record.candidate or {}
        value = float(t.value) if t.value is not None else PRUNED_OR_FAILED
        self.children[gen][slot] = Individual(
            trial=t.number,
            generation=gen,
            slot=slot,
            instruction=cand.get("instruction", ""),
            demo_ids=tuple(cand.get("demo_ids", ())),
            value=value,
            hash=record.hash or "",
            operator=ua.get(ATTR["operator"], "baseline"),
            parents=tuple(ua.get(ATTR["parents"], ())),
        )

    def _survivors(self, parents: list[Individual], kids: list[Individual]) -> list[Individual]:
        if self.mode == "de":
            return [k if k.value >= p.value else p for p, k in zip(parents, kids, strict=True)]
        if self.elitism is None:
            return sorted([*parents, *kids], key=_sort_key)[: self.size]
        elite = sorted(parents, key=_sort_key)[: self.elitism]
        return sorted([*elite, *sorted(kids, key=_sort_key)[: self.size - self.elitism]], key=_sort_key)

    # --- where we are -----------------------------------------------------------------
    def next_slot(self) -> tuple[int, int] | None:
        """``(generation, slot)`` of the next individual to produce; None when all are done."""
        for gen in range(self.generations + 1):
            for slot in range(self.size):
                if slot not in self.children[gen]:
                    return gen, slot
        return None

    def parents_of(self, gen: int) -> list[Individual]:
        """The population generation ``gen`` breeds from (the survivors of ``gen - 1``)."""
        return self.populations[gen - 1]

    def fitness(self) -> list[dict[str, Any]]:
        """Per generation: best and mean dev score of the population after selection and of
        the children made in it (generation 0: the initial population)."""

        def stats(group: list[Individual]) -> tuple[float | None, float | None]:
            values = [i.value for i in group if i.value != PRUNED_OR_FAILED]
            return (max(values), sum(values) / len(values)) if values else (None, None)

        rows = []
        for gen, pop in enumerate(self.populations):
            kids = [self.children[gen][s] for s in sorted(self.children[gen])]
            best, mean = stats(pop)
            kids_best, kids_mean = stats(kids)
            rows.append(
                {
                    "generation": gen,
                    "best": best,
                    "mean": mean,
                    "children_best": kids_best,
                    "children_mean": kids_mean,
                    "children_unscored": sum(k.value == PRUNED_OR_FAILED for k in kids),
                    "best_trial": min(pop, key=_sort_key).trial,
                }
            )
        return rows


def select_parents(population: Sequence[Individual], k: int, rng: random.Random, method: str) -> list[Individual]:
    """``k`` distinct parents (when the population allows): roulette wheel (fitness
    proportional, as EvoPrompt), binary tournament, or uniform."""
    pool = list(population)
    chosen: list[Individual] = []
    for _ in range(min(k, len(pool))):
        if method == "roulette" and sum(max(i.value, 0.0) for i in pool) > 0:
            pick = rng.choices(pool, weights=[max(i.value, 0.0) for i in pool])[0]
        elif method == "tournament" and len(pool) > 1:
            pick = min(rng.sample(pool, 2), key=_sort_key)
        else:
            pick = rng.choice(pool)
        chosen.append(pick)
        pool.remove(pick)
    return chosen
