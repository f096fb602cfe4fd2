"""Building a study's session: everything a trial needs, made once before trial 0.

The task (after distillation, when a teacher labels it), the strategy, the task model and
its backend, the renderer, the evaluator, the baseline prompt, the split of dev into the
part the search scores and the part the winner is picked on, and the kinds' context.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from optprompt.errors import CandidateRejected, ConfigError, OptpromptError
from optprompt.kinds.base import KindContext
from optprompt.prompts.candidate import PromptCandidate, baseline_candidate
from optprompt.prompts.context import check_context, context_limited_renderer
from optprompt.prompts.retrieval import Retrievers
from optprompt.strategies.base import BaseStrategy, StrategyContext
from optprompt.strategies.services import StrategyServices
from optprompt.study.storage import spec_key_part
from optprompt.tasks.sampling import holdout_split

if TYPE_CHECKING:
    from optprompt.config.spec import StudySpec
    from optprompt.models.loading import LoadedModel
    from optprompt.plugins.manager import Plugins
    from optprompt.prompts.render import PromptRenderer
    from optprompt.scoring.backends.base import Backend
    from optprompt.scoring.evaluate import Evaluator
    from optprompt.study.models import ModelPool
    from optprompt.study.teacher_labels import TeacherLabels
    from optprompt.tasks.task import Example, Task

__all__ = ["StudySession", "build_session", "build_strategy", "hold_out", "spec_key", "MIN_HOLDOUT"]

logger = logging.getLogger("optprompt")
#: The fewest examples each part of a split dev may have (selection.holdout).
MIN_HOLDOUT = 4


@dataclass
class StudySession:
    """What every trial of one study works with (built by :func:`build_session`).

    Attributes:
        task: The task (its train labels the teacher's, with distillation).
        strategy: The strategy proposing candidates.
        model: The task model.
        backend: Its scoring backend.
        renderer: The one renderer of scored prompts and exported cards.
        evaluator: Scores candidates on examples.
        chat: Whether prompts go through the model's chat template.
        baseline: The baseline prompt (trial 0).
        dev: The part of dev the search scores, in one seeded order.
        holdout: The part of dev no trial sees; the winner is picked there (``selection``).
        kind_context: What candidate kinds score and train with.
        notes: Warnings of the set-up for result.json (e.g. dev too small to hold out).
        teacher: Distillation: what the teacher labelled.
    """

    task: Task
    strategy: BaseStrategy
    model: LoadedModel
    backend: Backend
    renderer: PromptRenderer
    evaluator: Evaluator
    chat: bool
    baseline: PromptCandidate
    dev: list[Example]
    holdout: list[Example]
    kind_context: KindContext
    notes: list[str] = field(default_factory=list)
    teacher: TeacherLabels | None = None


def build_strategy(spec: StudySpec, task: Task, plugins: Plugins, pool: ModelPool) -> BaseStrategy:
    """The study's strategy, its options validated (before any model is loaded)."""
    context = StrategyContext(
        task=task,
        seed=spec.seed,
        baseline=baseline_candidate(task, chat=False),
        services=StrategyServices(pool.for_strategy, default_ref=spec.model),
        objectives=tuple(spec.objectives),
        strategies=lambda name: plugins.strategies.get(name).obj,
        strategy_names=tuple(plugins.strategies.names()),
        can_train=pool.can_train(),
        can_embed=pool.can_embed(),
    )
    strategy = plugins.strategies.get(spec.strategy.name).obj.from_options(spec.strategy.options(), context)
    if strategy.trains and not context.can_train:
        raise ConfigError(
            f"strategy {spec.strategy.name!r} trains on the model's weights, and model {spec.model} is served: give a "
            "local copy of the served weights (model: {url: ..., weights: DIR}) or a strategy that does not train"
        )
    return strategy


def _chat(spec: StudySpec, model: LoadedModel, plugins: Plugins) -> bool:
    can_chat = model.has_chat_template and plugins.backends.get(model.family).obj.supports_chat
    chat = can_chat if spec.scoring.chat == "auto" else spec.scoring.chat == "on"
    if chat and not can_chat:
        raise OptpromptError(
            f"scoring.chat is 'on' but model {spec.model!r} ({model.family}) has no chat template it can be scored with"
        )
    return chat


def hold_out(spec: StudySpec, ordered: list[Example]) -> tuple[list[Example], list[Example], str | None]:
    """(what the search scores, what the winner is picked on, a note when the default could not hold out)."""
    selection = spec.selection
    if not selection.used(spec.objectives):
        return ordered, [], None
    searched, held = holdout_split(ordered, selection.holdout)
    if len(held) < MIN_HOLDOUT or len(searched) < MIN_HOLDOUT:
        if "holdout" not in selection.model_fields_set:  # the default, on a small dev set
            note = (
                f"selection: {len(ordered)} dev examples are too few to hold {selection.holdout:.0%} out "
                f"(each part needs at least {MIN_HOLDOUT}); the winner is the best on dev as the search saw it"
            )
            logger.warning("%s", note)
            return ordered, [], note
        raise ConfigError(
            f"selection.holdout: {selection.holdout} of the {len(ordered)} dev examples leaves {len(searched)} "
            f"to search and {len(held)} to pick the winner on; each needs at least {MIN_HOLDOUT}. "
            "Give more dev examples, or set selection.holdout: 0 to pick the best on dev"
        )
    return searched, held, None


def build_session(
    spec: StudySpec,
    task: Task,
    plugins: Plugins,
    pool: ModelPool,
    *,
    output: Path,
    teacher: TeacherLabels | None = None,
) -> StudySession:
    """Build the strategy first (bad options fail before the model loads), then the rest."""
    from optprompt.scoring.backends.base import GenerationSettings
    from optprompt.scoring.evaluate import Evaluator

    strategy = build_strategy(spec, task, plugins, pool)
    model = pool.task_model()
    chat = _chat(spec, model, plugins)
    renderer = context_limited_renderer(task, model, chat, spec.task, retrievers=Retrievers(pool.embedder))
    backend = pool.task_backend()
    ts = spec.task
    evaluator = Evaluator(
        task,
        backend,
        renderer,
        plugins.metrics,
        generation=GenerationSettings(ts.max_new_tokens, tuple(ts.stop)),
        extract=ts.extract,
    )
    baseline = baseline_candidate(task, chat)
    # Every candidate sees dev in one seeded order (paired scores; fidelity slices).
    ordered = random.Random(spec.seed).sample(task.dev, len(task.dev))
    dev, holdout, note = hold_out(spec, ordered)
    # Render the baseline once up front: a broken template fails here, not in trial 0.
    try:
        renderer.request(baseline, task.dev[0])
    except CandidateRejected as e:
        raise OptpromptError(f"the baseline prompt cannot be rendered: {e}") from None
    check_context(renderer, baseline, task)  # task.truncate: error stops here
    kind_context = KindContext(
        task=task,
        model=pool.training_model(),
        renderer=renderer,
        evaluator=evaluator,
        dev=dev,
        pruning=spec.pruning,
        artifacts=output / "artifacts",
        output=output,
        chat=chat,
        study_name=spec.name,
        seed=spec.seed,
        objectives=tuple(spec.objectives),
    )
    return StudySession(
        task=task,
        strategy=strategy,
        model=model,
        backend=backend,
        renderer=renderer,
        evaluator=evaluator,
        chat=chat,
        baseline=baseline,
        dev=dev,
        holdout=holdout,
        kind_context=kind_context,
        notes=[note] if note else [],
        teacher=teacher,
    )


def spec_key(spec: StudySpec, task: Task, holdout: int) -> dict[str, str]:
    """What a stored study was created with: a study file changed since must not resume it."""
    return {
        "model": spec_key_part(spec.model),
        "task": task.fingerprint,
        "prompt": spec_key_part(
            [task.instruction, task.template, task.verbalizer] + task.task_type.fingerprint_part(task)
        ),
        "strategy": spec_key_part(
            [spec.strategy.name, {k: v for k, v in spec.strategy.options().items() if k != "trials"}]
        ),
        "seed": str(spec.seed),
        "objectives": spec_key_part(spec.objectives),
        # Trials of a study that held out part of dev saw only the rest.
        **({"holdout": str(holdout)} if holdout else {}),
    }
