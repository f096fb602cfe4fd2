"""The conformance checks catch strategies that break their contracts.

Each broken strategy below breaks one contract; the check for it must fail with a message
that says what broke (and the others are not run on it: they would pass or fail for the
same reason).
"""

from __future__ import annotations

import random
from collections.abc import Iterator

import pytest
from pydantic import ConfigDict

from optprompt.prompts import PromptCandidate
from optprompt.strategies import BaseStrategy, StrategyConfig
from optprompt.testing import (
    ConformanceError,
    TinyStudyEnv,
    check_proposes_valid_candidates,
    check_registration,
    check_reproducible_with_seed,
    check_respects_budget,
    check_survives_resume,
    make_tiny_study_env,
)
from optprompt.testing.fixtures import scratch_dir

TRIALS = {"trials": 4}


@pytest.fixture(scope="module")
def env() -> Iterator[TinyStudyEnv]:
    with scratch_dir("optprompt-checks-") as tmp:
        yield make_tiny_study_env(tmp)


class _Variants(BaseStrategy):
    """Baseline instruction with a numbered suffix (a valid, seeded strategy)."""

    name = "variants_test"

    def variant(self, i: int) -> PromptCandidate:
        b = self.context.baseline
        return PromptCandidate(
            instruction=f"{b.instruction} (variant {i})", template=b.template, verbalizer=b.verbalizer
        )

    def propose(self, trial):  # type: ignore[no-untyped-def]
        return self.variant(trial.suggest_int("i", 0, 10_000))


class _Crashes(_Variants):
    """Raises a plain exception for an odd variant instead of CandidateRejected."""

    name = "crashes_test"

    def propose(self, trial):  # type: ignore[no-untyped-def]
        if trial.number == 2:
            raise ValueError("variant is odd")
        return super().propose(trial)


class _Unseeded(_Variants):
    """Draws from an unseeded random generator."""

    name = "unseeded_test"

    def propose(self, trial):  # type: ignore[no-untyped-def]
        return self.variant(random.SystemRandom().randrange(10**9))


class _Forgetful(_Variants):
    """Keeps its place in the search in the instance: a resumed run starts over."""

    name = "forgetful_test"

    def propose(self, trial):  # type: ignore[no-untyped-def]
        self.i = getattr(self, "i", 0) + 1
        return self.variant(self.i)


class _Chatty(_Variants):
    """Generates text with the model but declares no rewriter calls in its budget."""

    name = "chatty_test"

    def propose(self, trial):  # type: ignore[no-untyped-def]
        text = self.context.generator().generate(["Say something."], max_new_tokens=2)[0]
        return self.variant(len(text) * 1000 + trial.suggest_int("i", 0, 999))


class _LooseConfig(StrategyConfig):
    model_config = ConfigDict(extra="allow", frozen=True)


class _Loose(_Variants):
    """Accepts any option, so a typo in a study file goes unnoticed."""

    name = "loose_test"
    config_class = _LooseConfig


def test_a_conforming_strategy_passes(env: TinyStudyEnv) -> None:
    check_registration(_Variants, TRIALS)
    report = check_proposes_valid_candidates(_Variants, TRIALS, env=env)
    assert report == {"proposed": 3, "candidates": 3, "rejected": 0}
    check_respects_budget(_Variants, TRIALS, env=env)
    check_survives_resume(_Variants, TRIALS, env=env)
    check_reproducible_with_seed(_Variants, TRIALS, env=env)


def test_another_exception_than_candidate_rejected_fails(env: TinyStudyEnv) -> None:
    with pytest.raises(ConformanceError, match=r"trial 2: propose raised ValueError: variant is odd \(raise Candidate"):
        check_proposes_valid_candidates(_Crashes, TRIALS, env=env)


def test_unseeded_randomness_fails_reproducibility(env: TinyStudyEnv) -> None:
    differ = r"unseeded_test: a run in a fresh process and a run in this process, both with seed 0, differ"
    with pytest.raises(ConformanceError, match=differ):
        check_reproducible_with_seed(_Unseeded, TRIALS, env=env)


def test_state_kept_only_in_the_instance_fails_resume(env: TinyStudyEnv) -> None:
    with pytest.raises(ConformanceError, match=r"(?s)forgetful_test: does not survive resume.*other candidates"):
        check_survives_resume(_Forgetful, TRIALS, env=env)


def test_undeclared_generation_fails_the_budget(env: TinyStudyEnv) -> None:
    with pytest.raises(ConformanceError, match=r"generated \d+ texts with a model; the budget declares 0 rewriter"):
        check_respects_budget(_Chatty, TRIALS, env=env)


def test_a_config_accepting_unknown_keys_fails_registration() -> None:
    with pytest.raises(ConformanceError, match="accepts unknown keys"):
        check_registration(_Loose, TRIALS)


def test_an_unknown_strategy_name_is_a_clear_error() -> None:
    from optprompt.errors import PluginError

    with pytest.raises(PluginError, match=r"unknown strategy 'nope_test'; known: .*template_search"):
        check_registration("nope_test")


class _GlobalRandom(_Variants):
    """Draws from the module-level ``random`` generator (which the study seeds once per run,
    so two runs in one process used to agree; a resumed run does not)."""

    name = "global_random_test"

    def propose(self, trial):  # type: ignore[no-untyped-def]
        return self.variant(random.randrange(10**9))


def test_the_global_random_generator_fails_reproducibility(env: TinyStudyEnv) -> None:
    differ = r"global_random_test: a run in a fresh process and a run in this process, both with seed 0, differ"
    with pytest.raises(ConformanceError, match=differ):
        check_reproducible_with_seed(_GlobalRandom, TRIALS, env=env)


def test_a_strategy_defined_in_a_function_is_checked_in_process_with_a_warning(env: TinyStudyEnv) -> None:
    class Local(_Variants):
        """A valid strategy that a new process cannot import."""

        name = "local_test"

    with pytest.warns(UserWarning, match="both seeded runs are made in this process"):
        check_reproducible_with_seed(Local, TRIALS, env=env)
