"""Running one trial: the baseline or the strategy's proposal, scored through its kind.

A candidate already scored in this study is not scored again (a repeat reuses the score
and costs no budget). Whatever happens, the trial ends recorded: complete, pruned (by the
pruner, or rejected), or failed with its reason.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from optprompt.errors import CandidateRejected, OptpromptError, ServerUnavailable
from optprompt.study.objectives import values_of
from optprompt.study.resilience import Heartbeat, trial_timeout
from optprompt.trials import FailureKind, Role, write

if TYPE_CHECKING:
    import optuna

    from optprompt.config.spec import StudySpec
    from optprompt.kinds.base import Candidate
    from optprompt.kinds.registry import CandidateKinds
    from optprompt.scoring.evaluate import Evaluation
    from optprompt.study.ledger import KnownScore, TrialLedger
    from optprompt.study.session import StudySession

__all__ = ["TrialExecutor"]

logger = logging.getLogger("optprompt")


class TrialExecutor:
    """Runs trials of one study: propose (or the baseline), score, record."""

    def __init__(self, spec: StudySpec, session: StudySession, ledger: TrialLedger, kinds: CandidateKinds) -> None:
        self.spec = spec
        self.session = session
        self.ledger = ledger
        self.kinds = kinds

    def prompt_tokens(self, candidate: Candidate) -> int:
        """Tokens the model reads around the input (its kind counts them)."""
        return self.kinds.of(candidate).prompt_tokens(candidate, self.session.kind_context)

    def run(self, study: optuna.Study, trial: optuna.Trial, scored: dict[str, KnownScore]) -> float | None:
        """Run ``trial``; its task score, or None when it did not complete."""
        from optuna.trial import TrialState

        from optprompt.errors import TrialPruned
        from optprompt.study.ledger import BaselineState, KnownScore

        session, ledger = self.session, self.ledger
        is_baseline = ledger.baseline_state(study) is BaselineState.FREE
        try:
            with (
                Heartbeat(ledger.storage, ledger.trial_id(trial.number), self.spec.workers.heartbeat_interval),
                trial_timeout(self.spec.trial_timeout),
            ):
                if is_baseline:
                    write(trial, role=Role.BASELINE)
                    candidate: Candidate = session.baseline
                else:
                    candidate = session.strategy.propose(trial)
                kind = self.kinds.of(candidate)
                write(trial, candidate=candidate.to_dict(), hash=candidate.hash)
                evaluation: Evaluation | None = None
                known = scored.get(candidate.hash)
                if known is not None:
                    write(trial, cached_from=known.trial, dev_scored=0)
                    values, metrics, offsets = known.values, known.metrics, known.offsets
                else:
                    # The baseline is never pruned: pruners compare the others against it.
                    evaluation = kind.score(trial, candidate, session.kind_context, prunable=not is_baseline)
                    metrics, offsets = evaluation.metrics, evaluation.offsets
                    values = values_of(
                        self.spec.objectives,
                        evaluation.value,
                        self.prompt_tokens(candidate),
                        evaluation.seconds / max(1, len(session.dev)),
                    )
                    write(trial, dev_scored=evaluation.extra.get("dev_scored", len(session.dev)))
                    if evaluation.extra.get("artifact"):
                        write(trial, artifact=evaluation.extra["artifact"])
                    if evaluation.extra.get("trained_examples"):
                        write(trial, trained_examples=evaluation.extra["trained_examples"])
                    scored[candidate.hash] = KnownScore(values, metrics, trial.number, offsets)
                write(trial, metrics=metrics)
                if evaluation is not None and evaluation.format_failures:
                    write(trial, format_failures=evaluation.format_failures)
                if offsets is not None:
                    write(trial, offsets=offsets)
            ledger.tell(study, trial, values)
            if evaluation is not None and not is_baseline:
                session.strategy.observe(trial, candidate, evaluation)
            return values[0]
        except TrialPruned as e:
            ledger.close(study, trial, f"pruned: {e}", TrialState.PRUNED, dev_scored=getattr(e, "scored", 0))
            return None
        except CandidateRejected as e:
            ledger.close(study, trial, f"{FailureKind.REJECTED.value}: {e}", TrialState.PRUNED)
            if is_baseline:
                raise OptpromptError(f"the baseline prompt was rejected: {e}") from None
            return None
        except ServerUnavailable as e:  # every later trial would fail too: void, and stop
            ledger.close(study, trial, f"{FailureKind.SERVER_LOST.value}: {e}"[:2000])
            raise
        except Exception as e:  # Ctrl-C / SIGTERM: the run loop records the trial as interrupted
            reason = f"{type(e).__name__}: {e}"
            ledger.close(study, trial, reason[:2000])
            if is_baseline:
                raise OptpromptError(f"scoring the baseline prompt failed: {reason}") from e
            logger.warning("trial %d failed: %s", trial.number, reason)
            return None
