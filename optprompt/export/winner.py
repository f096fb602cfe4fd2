"""``optprompt export``: a finished study's winner, written by its candidate kind."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from optprompt._io import atomic_write_json
from optprompt.errors import OptpromptError
from optprompt.export.distilled import DISTILLED_EXPORT_DIR, export_distilled
from optprompt.export.serving import write_serving_files_under
from optprompt.kinds.prompt.card import CARD_FILE
from optprompt.results import load_result

if TYPE_CHECKING:
    from optprompt.plugins.manager import Plugins

__all__ = ["export_card"]


def export_card(
    output_dir: str | os.PathLike[str],
    to: str | os.PathLike[str],
    *,
    pick: str | None = None,
    front: bool = False,
    plugins: Plugins | None = None,
) -> Path:
    """Export the winner of the finished study in ``output_dir`` into ``to``, in its
    kind's format (a prompt card; an adapter with its manifest and card...).

    Args:
        pick: Multi-objective studies: constraints choosing another Pareto-front member,
            e.g. ``"prompt_tokens<=200"`` (the best score that fits).
        front: Multi-objective studies: write every Pareto-front member into
            ``to/trial-N/`` plus ``to/pareto.json``; returns that index.
        plugins: Loaded plugins (their candidate kinds); discovered when None.

    A study with ``distill`` has its winner's distilled adapter exported too, into
    ``to/distilled/`` (loadable on its own with ``optprompt.load``).
    """
    from optprompt.kinds.registry import candidate_kinds
    from optprompt.plugins.manager import load_plugins
    from optprompt.study.objectives import parse_rule, select

    kinds = candidate_kinds(plugins or load_plugins())
    output, to = Path(output_dir), Path(to)
    result = load_result(output)
    pareto = list(result.pareto or [])
    if (pick or front) and not pareto:
        raise OptpromptError(
            f"{output_dir}: the study has a single objective, so there is no Pareto front to pick from"
        )
    if pick or front:
        fixed = [kinds.of_dict(m.candidate) for m in pareto]
        fixed = [k for k in fixed if not k.exports_front_members]
        if fixed:
            raise OptpromptError(
                f"{output_dir}: the Pareto front holds {fixed[0].label}s; --pick/--front export "
                "front members only when every one can be exported. Export the winner (no --pick/--front), "
                "or load any trial's artifact from OUTPUT/artifacts with optprompt.load"
            )
    if front:
        index = []
        for m in pareto:
            kinds.of_dict(m.candidate).export(result, output, to / f"trial-{m.trial}", m)
            write_serving_files_under(to / f"trial-{m.trial}")
            index.append(
                {
                    "trial": m.trial,
                    "objectives": dict(m.objectives),
                    "card": f"trial-{m.trial}/{CARD_FILE}",
                    "winner": m.trial == result.best.trial,
                }
            )
        return atomic_write_json(to / "pareto.json", index)
    member = None
    if pick:
        picked = select([m.to_dict() for m in pareto], parse_rule(pick, result.objectives, key="--pick"))
        if picked is None:
            raise OptpromptError(
                f"no Pareto-front prompt meets {pick!r}; front: "
                + "; ".join(f"trial {m.trial} {dict(m.objectives)}" for m in pareto)
            )
        member = next(m for m in pareto if m.trial == picked["trial"])
    chosen = member or result.best
    path = kinds.of_dict(chosen.candidate).export(result, output, to, member)
    write_serving_files_under(to)
    if member is None and result.distillation is not None:
        export_distilled(result, output, to / DISTILLED_EXPORT_DIR, kinds)
        write_serving_files_under(to / DISTILLED_EXPORT_DIR)
    return path
