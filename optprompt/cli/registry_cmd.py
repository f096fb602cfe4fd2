"""``optprompt registry``: add, list, show, diff and promote versioned prompt cards.

Output is plain text, one record per line where there are several, so scripts can
``cut``/``awk`` it. Errors are raised as :class:`~optprompt.errors.OptpromptError`;
``optprompt``'s ``main`` turns them into exit code 2.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from optprompt.registry import PromptRegistry, RegistryVersion

__all__ = ["add_registry_parser"]


def _registry(args: argparse.Namespace) -> PromptRegistry:
    from optprompt.registry import PromptRegistry

    return PromptRegistry(getattr(args, "root", None))


def _num(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, int | float) else "-"


def _summary(v: RegistryVersion) -> str:
    s = v.scores
    fields = [
        v.ref,
        f"stages={','.join(v.stages) or '-'}",
        f"dev={_num(s.get('dev'))}",
        f"test={_num(s.get('test'))}",
        f"metric={s.get('metric') or '-'}",
        f"study={v.study or '-'}",
        f"created={v.created}",
        f"hash={v.hash[:12]}",
    ]
    return "\t".join(fields)


def _cmd_add(args: argparse.Namespace) -> int:
    v = _registry(args).add(args.source, name=args.name)
    if v.added:
        print(f"{v.ref} added (hash {v.hash[:12]})")
    else:
        print(f"{v.ref} unchanged: identical content is already registered (hash {v.hash[:12]})")
    return 0


def _cmd_list(args: argparse.Namespace) -> int:
    reg = _registry(args)
    if args.name:
        for v in reg.list(args.name):
            print(_summary(v))
        return 0
    for name in reg.names():
        versions = reg.list(name)
        stages = reg.stages(name)
        shown = ",".join(f"{s}:{n}" for s, n in sorted(stages.items())) or "-"
        print(f"{name}\tversions={len(versions)}\tlatest={versions[-1].version}\tstages={shown}")
    return 0


def _cmd_show(args: argparse.Namespace) -> int:
    v = _registry(args).get(args.ref)
    s = v.scores
    lines = [
        ("ref", v.ref),
        ("stages", ", ".join(v.stages) or "-"),
        ("created", v.created),
        ("hash", v.hash),
        ("study", v.study or "-"),
        ("model", v.model.get("ref") or "-"),
        ("model fingerprint", v.model.get("fingerprint") or "-"),
        ("data", v.data.get("task") or "-"),
        ("data fingerprint", v.data.get("fingerprint") or "-"),
        ("metric", s.get("metric") or "-"),
        ("dev", f"{_num(s.get('dev'))} (baseline {_num(s.get('baseline_dev'))})"),
        ("test", f"{_num(s.get('test'))} (baseline {_num(s.get('baseline_test'))})"),
        ("optprompt version", v.optprompt_version or "-"),
        ("source", v.source or "-"),
        ("path", str(v.path)),
    ]
    for key, value in lines:
        print(f"{key}: {value}")
    print()
    print(v.load_card().template_text())
    return 0


def _cmd_diff(args: argparse.Namespace) -> int:
    print(_registry(args).diff(args.a, args.b))
    return 0


def _cmd_promote(args: argparse.Namespace) -> int:
    from optprompt.registry import parse_ref

    reg = _registry(args)
    name = parse_ref(args.ref).name
    before = reg.stages(name).get(args.stage)
    v = reg.promote(args.ref, stage=args.stage)
    if before == v.version:
        print(f"{v.ref} is already {args.stage}")
    else:
        was = f"{name}@{before}" if before is not None else "unset"
        print(f"{v.ref} -> {args.stage} (was {was})")
    return 0


def add_registry_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``registry`` command and its actions to ``optprompt``'s subparsers.

    Args:
        subparsers: What ``ArgumentParser.add_subparsers()`` returned.

    Returns:
        The ``registry`` parser.
    """
    root_help = "registry directory (default: $OPTPROMPT_REGISTRY or $OPTPROMPT_HOME/registry)"
    # --root is accepted before or after the action; SUPPRESS keeps an action from
    # overwriting a --root given before it.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--root", metavar="DIR", default=argparse.SUPPRESS, help=root_help)

    p = subparsers.add_parser(
        "registry",
        help="versioned prompt cards: add, list, show, diff, promote",
        description="A local registry of prompt cards with versions, provenance and stages.",
    )
    p.add_argument("--root", metavar="DIR", default=None, help=root_help)
    rsub = p.add_subparsers(dest="registry_command", required=True, metavar="ACTION")

    q = rsub.add_parser(
        "add",
        parents=[common],
        help="register a study's winner or a prompt card as the next version",
    )
    q.add_argument(
        "source",
        metavar="OUTPUT_DIR_OR_CARD",
        help="finished study output directory, prompt card directory or prompt_card.json",
    )
    q.add_argument("--name", help="prompt name (default: the study name)")
    q.set_defaults(func=_cmd_add)

    q = rsub.add_parser("list", parents=[common], help="list prompts, or the versions of one")
    q.add_argument("name", nargs="?", metavar="NAME")
    q.set_defaults(func=_cmd_list)

    q = rsub.add_parser("show", parents=[common], help="a version's provenance and prompt text")
    q.add_argument("ref", metavar="NAME@VERSION", help="NAME@3, NAME@production, NAME@latest")
    q.set_defaults(func=_cmd_show)

    q = rsub.add_parser("diff", parents=[common], help="differences between two versions")
    q.add_argument("a", metavar="A", help="NAME@VERSION")
    q.add_argument("b", metavar="B", help="NAME@VERSION")
    q.set_defaults(func=_cmd_diff)

    q = rsub.add_parser("promote", parents=[common], help="point a stage at a version")
    q.add_argument("ref", metavar="NAME@VERSION")
    q.add_argument("--stage", default="production", help="stage to move (default: production)")
    q.set_defaults(func=_cmd_promote)
    return p
