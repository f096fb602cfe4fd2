"""The ``evolution`` strategy: EvoPrompt's GA and DE with an LLM rewriter, GrIPS edits."""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from optprompt_plugins.evolution.config import EvolutionConfig, check_config
from optprompt_plugins.evolution.junk import JunkFilter, normalize
from optprompt_plugins.evolution.operators import (
    DEFAULT_SYNONYMS,
    PhraseEditor,
    Rewriter,
    demo_crossover,
    demo_mutate,
    derive_seed,
    random_demos,
)
from optprompt_plugins.evolution.population import ATTR, History, Individual, select_parents

from optprompt.errors import CandidateRejected, ConfigError, OptpromptError
from optprompt.prompts import PromptCandidate, fill_labels, fits_answers
from optprompt.strategies import BaseStrategy, Budget, Family, StrategyContext
from optprompt.tasks import Example, balanced_sample

if TYPE_CHECKING:
    import optuna

__all__ = ["Evolution"]

logger = logging.getLogger("optprompt")

_EDIT_TRIES = 12  # model-free edits are cheap: this many tries for a child not scored before


@dataclass
class _Child:
    """What one proposal produced, and what it cost."""

    instruction: str
    demo_ids: tuple[str, ...]
    operator: str
    parents: tuple[int, ...] = ()


@dataclass
class _Log:
    rejected: list[str] = field(default_factory=list)
    repairs: list[str] = field(default_factory=list)
    fallback: str | None = None


class Evolution(BaseStrategy):
    """Evolutionary prompt search: GA or DE with LLM rewrites and phrase edits.

    EvoPrompt's genetic algorithm and differential evolution, with an LLM (the task model
    or ``rewriter``) as the variation operator, mixed with GrIPS's model-free phrase
    edits (delete, swap, add, paraphrase), or edits alone (``operators: edit``).
    Every individual is one trial; its lineage is stored as trial attributes
    (``evolution.generation``, ``.individual``, ``.parents``, ``.operator``...), and the
    state is rebuilt from storage on every proposal, so a stopped run resumes at the
    first individual it had not produced yet. Rewrites that are junk (empty, copied, an
    example or answer leaked, runaway length, an ``{input}`` placeholder) are repaired
    or rejected and counted (``evolution.rejected``, ``evolution.repairs``); after
    ``retries`` rejected rewrites a model-free edit takes over.

    A family of ``auto`` (the default way to ask for the best winner): its options and
    stored attribute names are stable.
    """

    name = "evolution"
    config_class = EvolutionConfig
    config: EvolutionConfig
    sets_own_trials = True  # population x generations
    family = Family(cost=2, share=1)  # scores candidates and generates text (rewrites)

    def __init__(self, config: EvolutionConfig, context: StrategyContext) -> None:
        super().__init__(config, context)
        check_config(config)
        task = context.task
        base = context.baseline
        if (
            config.calibration != "none"
            and not task.has_fixed_labels
            and not (config.calibration == "content_free" and task.has_options)
        ):
            raise ConfigError(
                f"strategy 'evolution': strategy.calibration: {config.calibration!r} "
                f"applies to classification (and content_free to multiple choice), this task is {task.type}"
            )
        words = [w for _, w in base.verbalizer]
        self.words = words
        self.junk = JunkFilter(
            [ex.input for ex in (*task.train, *task.dev)],
            words,
            max_chars=config.max_instruction_chars,
        )
        self.editor = PhraseEditor(
            config.edit_ops,
            [p for p in (*task.task_type.instruction_phrases, *config.phrases) if fits_answers(p, words)],
            [*DEFAULT_SYNONYMS, *config.synonyms],
        )
        self.pool = (
            _demo_pool(task.train, config.demo_pool, context.seed, by_label=task.has_fixed_labels)
            if config.max_demos
            else []
        )
        seeds = ([base.instruction] if config.calibration != "none" else []) + [
            task.task_type.default_instruction,
            *config.instructions,
        ]
        taken = set() if config.calibration != "none" else {normalize(base.instruction)}
        self.seeds: list[str] = []
        for s in seeds:
            if normalize(s) not in taken:
                taken.add(normalize(s))
                self.seeds.append(s)
        self._rewriter: Rewriter | None = None

    # --- budget -----------------------------------------------------------------------
    def budget(self) -> Budget:
        """``population * (generations + 1)`` trials and dev scorings (or ``trials`` if
        smaller); rewriter calls: ``max_rewriter_calls``, else the worst case."""
        trials = self.config.trials or self.config.individuals
        return Budget(trials=trials, dev_scorings=trials, rewriter_calls=self.rewriter_budget())

    def rewriter_budget(self) -> int:
        """Most rewriter calls the run makes: every LLM child retried ``retries`` times,
        two calls per GA/DE child (crossover, then mutation) and one per initial paraphrase.
        Calls beyond it are not made: the children are made by edits instead."""
        c = self.config
        if c.operators == "edit":
            return 0
        if c.max_rewriter_calls is not None:
            return c.max_rewriter_calls
        return (c.population - 1 + 2 * c.population * c.generations) * (c.retries + 1)

    def create_sampler(self) -> optuna.samplers.BaseSampler:
        import optuna

        return optuna.samplers.RandomSampler(seed=self.context.seed)  # no suggest_* calls are made

    # --- proposals ----------------------------------------------------------------------
    def history(self, study: optuna.Study) -> History:
        """The evolution so far, rebuilt from ``study``'s trials."""
        c = self.config
        return History(
            study.get_trials(deepcopy=False),
            population=c.population,
            generations=c.generations,
            mode=c.mode,
            elitism=c.elitism,
        )

    def propose(self, trial: optuna.Trial) -> PromptCandidate:
        history = self.history(trial.study)
        where = history.next_slot()
        if where is None:
            raise CandidateRejected(f"all {self.config.generations} generations are complete")
        gen, slot = where
        attempt = history.attempts[(gen, slot)]
        rng = random.Random(derive_seed(self.context.seed, "evolution", gen, slot, attempt))
        log = _Log()
        budget_left = self.rewriter_budget() - history.rewriter_calls
        ctx = _Proposal(self, history, rng, log, budget_left, seed=(self.context.seed, gen, slot, attempt))
        if gen == 0:
            child = ctx.initial(slot)
        elif self.config.mode == "ga":
            child = ctx.ga_child(history.parents_of(gen))
        else:
            child = ctx.de_child(history.parents_of(gen), slot)
        trial.set_user_attr(ATTR["generation"], gen)
        trial.set_user_attr(ATTR["individual"], slot)
        trial.set_user_attr(ATTR["parents"], list(child.parents))
        trial.set_user_attr(ATTR["operator"], child.operator)
        trial.set_user_attr(ATTR["attempt"], attempt)
        trial.set_user_attr(ATTR["rewriter_calls"], ctx.calls)
        if log.rejected:
            trial.set_user_attr(ATTR["rejected"], log.rejected)
        if log.repairs:
            trial.set_user_attr(ATTR["repairs"], log.repairs)
        if log.fallback:
            trial.set_user_attr(ATTR["fallback"], log.fallback)
        return self.candidate(child.instruction, child.demo_ids)

    def candidate(self, instruction: str, demo_ids: tuple[str, ...] = ()) -> PromptCandidate:
        """An individual as a candidate: the baseline's format, its own instruction and demos."""
        b = self.context.baseline
        return PromptCandidate(
            instruction=instruction,
            template=b.template,
            demo_ids=demo_ids,
            verbalizer=b.verbalizer,
            choice_format=b.choice_format,
            separator=b.separator,
            calibration=self.config.calibration,
            output_format=b.output_format,
        )

    def rewriter(self) -> Rewriter:
        """The LLM operators on the rewriter model (loaded on first use)."""
        if self._rewriter is None:
            words = list(self.words)
            self._rewriter = Rewriter(
                self.context.generator(self.config.rewriter),
                self.config.templates.model_dump(),
                temperature=self.config.temperature,
                max_new_tokens=self.config.max_new_tokens,
                show=lambda s: fill_labels(s, words) if words else s,
            )
        return self._rewriter

    # --- reporting ----------------------------------------------------------------------
    def summary(self, study: optuna.Study) -> dict[str, Any]:
        """Evolution summary for result.json: fitness per generation, rejected and
        repaired rewrites, fallbacks to edits, rewriter calls."""
        h = self.history(study)
        return {
            "mode": self.config.mode,
            "operators": self.config.operators,
            "population": self.config.population,
            "generations_planned": self.config.generations,
            "generations_done": max(0, len(h.populations) - 1),
            "fitness": h.fitness(),
            "rewriter_calls": h.rewriter_calls,
            "rewriter_budget": self.rewriter_budget(),
            "rejected_rewrites": sum(h.rejected.values()),
            "rejected_by_reason": dict(sorted(h.rejected.items())),
            "repairs": dict(sorted(h.repairs.items())),
            "fallbacks_to_edits": dict(sorted(h.fallbacks.items())),
        }


class _Proposal:
    """Produces one child: operator choice, retries, junk handling, duplicate avoidance."""

    def __init__(
        self,
        strategy: Evolution,
        history: History,
        rng: random.Random,
        log: _Log,
        budget_left: int,
        seed: tuple[int, ...],
    ) -> None:
        self.strategy = strategy
        self.config = strategy.config
        self.history = history
        self.rng = rng
        self.log = log
        self.budget_left = budget_left
        self.seed = seed
        self.calls = 0

    # --- shared machinery -------------------------------------------------------------
    def _new(self, instruction: str, demo_ids: tuple[str, ...]) -> bool:
        return self.strategy.candidate(instruction, demo_ids).hash not in self.history.hashes

    def _use_llm(self) -> bool:
        draw = self.rng.random()  # drawn in every mode: the same seed gives the same parents
        if self.config.operators == "edit":
            return False
        return self.config.operators == "llm" or draw >= self.config.edit_rate

    def _rewrite(self, op: str, parents: list[str], tag: str, **fields: str) -> str | None:
        """One LLM call, cleaned; None (and the reason logged) when unusable."""
        if self.calls >= self.budget_left:
            self.log.fallback = self.log.fallback or "rewriter_budget"
            return None
        self.calls += 1
        try:
            raw = self.strategy.rewriter()(op, derive_seed(*self.seed, tag, op), **fields)
        except OptpromptError:  # the user's to fix (an unknown rewriter model...): the trial fails
            raise
        except Exception as e:  # a rewriter that breaks must not end the run: edits take over
            logger.warning("rewriter failed (%s: %s); using a model-free edit", type(e).__name__, e)
            self.log.fallback = "rewriter_error"
            self.budget_left = 0
            return None
        verdict = self.strategy.junk.check(raw, parents)
        if not verdict.ok:
            assert verdict.rejected is not None
            self.log.rejected.append(verdict.rejected)
            return None
        self.log.repairs.extend(verdict.repairs)
        return verdict.text

    def _llm_tries(
        self, make: Callable[[int], tuple[str, str] | None], demo_ids: tuple[str, ...]
    ) -> tuple[str, str] | None:
        """Up to ``retries + 1`` LLM children that are usable and not scored before."""
        if self.budget_left <= 0:
            self.log.fallback = "rewriter_budget"
            return None
        for i in range(self.config.retries + 1):
            out = make(i)
            if out is None:
                if self.log.fallback in ("rewriter_budget", "rewriter_error"):
                    return None
                continue
            if self._new(out[0], demo_ids):
                return out
            self.log.rejected.append("duplicate")
        self.log.fallback = self.log.fallback or "junk"
        return None

    def _edit_tries(
        self,
        make: Callable[[], tuple[str, str] | None],
        demo_ids: tuple[str, ...],
        fallback: tuple[str, str],
    ) -> tuple[str, str]:
        """A model-free child not scored before (the last try, or ``fallback``, if none is new)."""
        last = None
        for _ in range(_EDIT_TRIES):
            out = make()
            if out is None or len(out[0]) > self.config.max_instruction_chars:
                continue
            last = out
            if self._new(out[0], demo_ids):
                return out
        return last or fallback

    def _mutate_edit(self, text: str, extra: list[str]) -> tuple[str, str] | None:
        out = self.strategy.editor.mutate(text, self.rng, extra)
        return (out[0], f"edit_{out[1]}") if out else None

    def _demos(self, *parents: Individual, crossover: bool) -> tuple[str, ...]:
        if not self.config.max_demos:
            return ()
        ids = demo_crossover(parents[0].demo_ids, parents[-1].demo_ids, self.rng) if crossover else parents[0].demo_ids
        if self.rng.random() < 0.5:
            ids = demo_mutate(ids, self.rng, self.strategy.pool, self.config.max_demos)
        return ids

    @staticmethod
    def _trials(*parents: Individual) -> tuple[int, ...]:
        return tuple(dict.fromkeys(p.trial for p in parents))

    # --- generation 0 -------------------------------------------------------------------
    def initial(self, slot: int) -> _Child:
        if slot == 0:
            raise RuntimeError("the baseline trial (individual 0 of generation 0) is missing")
        produced = [self.history.children[0][s] for s in sorted(self.history.children[0])]
        demos = random_demos(self.strategy.pool, self.rng, self.config.max_demos) if self.config.max_demos else ()
        use_llm = self._use_llm()
        if slot - 1 < len(self.strategy.seeds):
            seed = self.strategy.seeds[slot - 1]
            if self._new(seed, demos):
                return _Child(seed, demos, "init:seed")
        source = self.rng.choice(produced)
        extra = [p.instruction for p in produced]
        if use_llm:
            out = self._llm_tries(lambda i: self._paraphrase(source.instruction, i), demos)
            if out:
                return _Child(out[0], demos, f"init:{out[1]}", (source.trial,))

        def edit() -> tuple[str, str] | None:
            first = self._mutate_edit(source.instruction, extra)
            if first and self.rng.random() < 0.5:  # sometimes two edits, for more diverse seeds
                second = self._mutate_edit(first[0], extra)
                return (second[0], f"{first[1]}+{second[1]}") if second else first
            return first

        text, op = self._edit_tries(edit, demos, (source.instruction, "copy"))
        return _Child(text, demos, f"init:{op}", (source.trial,))

    def _paraphrase(self, text: str, i: int) -> tuple[str, str] | None:
        out = self._rewrite("paraphrase", [text], f"try{i}", prompt=text)
        return (out, "llm_paraphrase") if out else None

    # --- GA -------------------------------------------------------------------------------
    def ga_child(self, population: list[Individual]) -> _Child:
        p1, p2 = select_parents(population, 2, self.rng, self.config.selection)
        crossover = self.rng.random() < self.config.crossover_rate
        demos = self._demos(p1, p2, crossover=crossover)
        extra = [p.instruction for p in population]
        parents = self._trials(p1, p2) if crossover else self._trials(p1)
        if self._use_llm():
            out = self._llm_tries(lambda i: self._ga_llm(p1.instruction, p2.instruction, crossover, i), demos)
            if out:
                return _Child(out[0], demos, f"ga:{out[1]}", parents)

        def edit() -> tuple[str, str] | None:
            text, ops = p1.instruction, []
            if crossover:
                x = self.strategy.editor.crossover(p1.instruction, p2.instruction, self.rng)
                if x:
                    text, ops = x, ["edit_crossover"]
            m = self._mutate_edit(text, extra)
            if m:
                text, ops = m[0], [*ops, m[1]]
            return (text, "+".join(ops)) if ops else None

        text, op = self._edit_tries(edit, demos, (p1.instruction, "copy"))
        return _Child(text, demos, f"ga:{op}", parents)

    def _ga_llm(self, a: str, b: str, crossover: bool, i: int) -> tuple[str, str] | None:
        """EvoPrompt's GA step: cross the parents over, then mutate the result."""
        text, ops = a, []
        if crossover:
            x = self._rewrite("crossover", [a, b], f"try{i}", prompt1=a, prompt2=b)
            if x is None:
                return None
            text, ops = x, ["llm_crossover"]
        m = self._rewrite("mutate", [text], f"try{i}", prompt=text)
        if m is not None:
            text, ops = m, [*ops, "llm_mutate"]
        return (text, "+".join(ops)) if ops else None

    # --- DE -------------------------------------------------------------------------------
    def de_child(self, population: list[Individual], slot: int) -> _Child:
        target = population[slot]
        best = min(population, key=lambda i: (-i.value, i.trial))
        others = [p for j, p in enumerate(population) if j != slot and p is not best]
        if len(others) < 2:
            others = [p for j, p in enumerate(population) if j != slot]
        b, c = self.rng.sample(others, 2)
        crossover = self.rng.random() < self.config.crossover_rate
        demos = self._demos(best, target, crossover=crossover)
        parents = self._trials(target, best, b, c)
        if self._use_llm():
            out = self._llm_tries(lambda i: self._de_llm(target, best, b, c, crossover, i), demos)
            if out:
                return _Child(out[0], demos, f"de:{out[1]}", parents)
        extra = [p.instruction for p in population]

        def edit() -> tuple[str, str] | None:
            mutant = self.strategy.editor.differential(best.instruction, b.instruction, c.instruction, self.rng)
            ops = ["edit_differential"] if mutant else []
            if mutant is None:
                m = self._mutate_edit(best.instruction, extra)
                if m is None:
                    return None
                mutant, ops = m[0], [m[1]]
            if crossover and target is not best:
                x = self.strategy.editor.crossover(mutant, target.instruction, self.rng)
                if x:
                    mutant, ops = x, [*ops, "edit_crossover"]
            return mutant, "+".join(ops)

        text, op = self._edit_tries(edit, demos, (target.instruction, "copy"))
        return _Child(text, demos, f"de:{op}", parents)

    def _de_llm(
        self,
        target: Individual,
        best: Individual,
        b: Individual,
        c: Individual,
        crossover: bool,
        i: int,
    ) -> tuple[str, str] | None:
        """EvoPrompt's DE step: mutate the best where the donors differ, then cross over
        with the target."""
        mutant = self._rewrite(
            "de",
            [best.instruction],
            f"try{i}",
            best=best.instruction,
            prompt1=b.instruction,
            prompt2=c.instruction,
        )
        if mutant is None:
            return None
        if not crossover or target is best:
            return mutant, "llm_de"
        x = self._rewrite(
            "crossover",
            [mutant, target.instruction],
            f"try{i}",
            prompt1=mutant,
            prompt2=target.instruction,
        )
        return (x, "llm_de+llm_crossover") if x else (mutant, "llm_de")


def _demo_pool(train: list[Example], size: int, seed: int, by_label: bool) -> list[str]:
    """Ids of a label-balanced, seeded sample of the train split."""
    rng = random.Random(derive_seed(seed, "evolution-demos"))
    return [ex.id for ex in balanced_sample(train, size, rng, by_label=by_label)]
