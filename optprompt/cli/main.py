"""The ``optprompt`` command line. Heavy libraries are imported inside the commands only.

Exit codes: 0 success, 1 unexpected failure, 2 bad input (study file, data, model
name, plugin; the message says which), 130 interrupted.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

__all__ = ["main", "build_parser"]

EXIT_OK, EXIT_FAILURE, EXIT_BAD_INPUT, EXIT_INTERRUPTED, EXIT_TERMINATED = 0, 1, 2, 130, 143


class Terminated(KeyboardInterrupt):
    """SIGTERM, handled like Ctrl-C: the running trial is recorded as interrupted and
    everything finished stays saved."""


def _terminate(signum: int, frame: object) -> None:
    import signal

    # One SIGTERM is the request; a second must not cut the clean-up it started short.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise Terminated()


def _overrides(spec, args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from optprompt.config.spec import StrategySpec

    update = {}
    if getattr(args, "output", None):
        update["output"] = args.output
    if getattr(args, "storage", None):
        update["storage"] = args.storage
    if getattr(args, "trials", None) is not None:
        update["strategy"] = StrategySpec.model_validate({**spec.strategy.model_dump(), "trials": args.trials})
    return spec.model_copy(update=update) if update else spec


def _run(spec, args: argparse.Namespace) -> int:  # type: ignore[no-untyped-def]
    from optprompt.cli.output import print_result
    from optprompt.scoring.backends.threads import announce_worker
    from optprompt.study.runner import StudyRunner

    announce_worker()  # torch threads are shared among the studies running on this machine
    import signal

    signal.signal(signal.SIGTERM, _terminate)
    from optprompt.study.exclusive import output_lock, worker_output_lock

    if spec.tracking.mlflow:  # fail before the study, not after it, when MLflow is missing
        from optprompt.tracking.mlflow_runs import check_available

        check_available()
    own = args.command == "worker" and not getattr(args, "output", None)  # OUTPUT/workers/HOST-N
    with (worker_output_lock if own else output_lock)(spec.output) as output:
        spec = spec.model_copy(update={"output": str(output)})
        runner = StudyRunner(spec, progress=not args.quiet, worker=args.command == "worker")
        result = runner.run()
    print_result(result, output=spec.output, wide=getattr(args, "wide", False))
    if spec.tracking.mlflow:
        from optprompt.tracking import log_study

        run_id = log_study(spec.output, spec.tracking.mlflow, experiment=spec.tracking.experiment)
        print(f"logged to MLflow at {spec.tracking.mlflow}: run {run_id} (a child run per trial)")
    if args.command == "worker":
        print(f"this worker ran {runner.trials_run} of the study's {result.n_trials} trials")
    return EXIT_OK


def _cmd_run(args: argparse.Namespace) -> int:
    from optprompt.config.loading import load_spec

    spec = _overrides(load_spec(args.study), args)
    if args.command == "worker" and not spec.storage:
        from optprompt.errors import ConfigError

        raise ConfigError("a worker joins a shared study: give --storage URL (or `storage:` in the study file)")
    return _run(spec, args)


def _cmd_resume(args: argparse.Namespace) -> int:
    from optprompt.study.runner import read_spec

    return _run(_overrides(read_spec(args.output_dir), args), args)


def _cmd_show(args: argparse.Namespace) -> int:
    from optprompt.cli.show_cmd import show_study

    show_study(args.output_dir, top=args.top, wide=args.wide, trial=args.trial, as_json=args.json)
    return EXIT_OK


def _cmd_export(args: argparse.Namespace) -> int:
    from optprompt.export import export_card, export_trial

    if args.trial is not None:
        if args.pick or args.front:
            from optprompt.errors import OptpromptError

            raise OptpromptError("--trial exports one trial; it does not combine with --pick or --front")
        path = export_trial(args.output_dir, args.trial, args.to)
    else:
        path = export_card(args.output_dir, args.to, pick=args.pick, front=args.front)
    if args.front:
        print(f"wrote the Pareto front's cards and their index {path}")
    elif (path.parent / "adapter_config.json").is_file():
        print(
            f"wrote the winning adapter to {path.parent}: PEFT files, optprompt_adapter.json (manifest) "
            f"and the prompt card around the input; load it with optprompt.load_adapter({str(path.parent)!r})"
        )
    else:
        print(f"wrote {path} and {path.parent / 'prompt.txt'}")
    if not args.front and (path.parent / "serving.json").is_file():
        extra = (
            " and the answer set as answers.schema.json / answers.gbnf"
            if (path.parent / "answers.gbnf").is_file()
            else ""
        )
        print(f"for serving stacks: serving.json (chat messages / completion prompt){extra}")
    if args.trial is None and not args.front and not args.pick:
        _print_distilled_export(args.output_dir, args.to)
    return EXIT_OK


def _print_distilled_export(output_dir: str, to: str) -> None:
    from optprompt.export.distilled import DISTILLED_EXPORT_DIR
    from optprompt.results import load_result

    if load_result(output_dir).distillation is not None:
        distilled = Path(to) / DISTILLED_EXPORT_DIR
        print(
            f"wrote the winner's distilled form (distill) to {distilled}: load it with "
            f"optprompt.load({str(distilled)!r})"
        )


def _cmd_plugins(args: argparse.Namespace) -> int:
    from optprompt.cli.plugins_cmd import print_plugin_help, print_plugins

    if args.name:
        print_plugin_help(args.name)
    else:
        print_plugins()
    return EXIT_OK


def _cmd_new_plugin(args: argparse.Namespace) -> int:
    from optprompt.cli.scaffold import scaffold_plugin

    root, files = scaffold_plugin(args.name, args.dir)
    print(f"wrote {root}/ ({', '.join(files)})")
    print(f"next: pip install -e {root} && optprompt plugins {args.name} && pytest {root}")
    return EXIT_OK


def _cmd_track(args: argparse.Namespace) -> int:
    from optprompt.tracking import log_study

    run_id = log_study(args.output_dir, args.mlflow, experiment=args.experiment, report=not args.no_report)
    print(f"logged {args.output_dir} to MLflow at {args.mlflow}: run {run_id} (a child run per trial)")
    return EXIT_OK


def _cmd_models_pull(args: argparse.Namespace) -> int:
    from optprompt.models.loading import fingerprint_dir, resolve_model_path
    from optprompt.plugins.manager import load_plugins

    plugins = load_plugins()
    if args.name not in plugins.models and not Path(args.name).expanduser().exists():
        from optprompt._suggest import did_you_mean
        from optprompt.errors import ModelError

        raise ModelError(
            f"unknown model {args.name!r}{did_you_mean(args.name, plugins.models.names())}; "
            f"give a registered name ({', '.join(plugins.models.names())}) or a .gguf file"
        )
    kind, path = resolve_model_path(args.name, plugins)
    if kind == "local":
        from optprompt.errors import ModelError

        raise ModelError(f"{args.name!r} is a model directory already: nothing to pull; use it as `model:` directly")
    print(f"{args.name}: {path} (fingerprint {fingerprint_dir(path)})")
    return EXIT_OK


def _cmd_models_list(args: argparse.Namespace) -> int:
    from optprompt.models.gguf import list_converted
    from optprompt.models.home import optprompt_home
    from optprompt.plugins.manager import load_plugins

    home = optprompt_home()
    for e in load_plugins().models:
        pulled = (home / "models" / e.name).is_dir()
        print(f"{e.name}\t{'pulled' if pulled else 'not pulled'}\t{e.description}\t[{e.source}]")
    for m in list_converted(home):
        sha = str(m.get("gguf_sha256", "?"))[:16]
        print(f"{m.get('name', '?')}\tconverted\tGGUF sha256 {sha}\t[{m.get('source', '?')}]")
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    from optprompt._version import __version__

    parser = argparse.ArgumentParser(prog="optprompt", description="Plugin-based automated prompt optimizer.")
    parser.add_argument("--version", action="version", version=f"optprompt {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log more")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("run", help="run a study, or resume it if it was interrupted")
    p.add_argument("study", help="study YAML file")
    p.add_argument("--output", help="override the study's output directory")
    p.add_argument("--storage", help="Optuna storage URL (default: SQLite in the output directory)")
    p.add_argument("--trials", type=int, help="override strategy.trials")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.add_argument("--wide", action="store_true", help="print the summary's long fields in full, uncut")
    p.set_defaults(func=_cmd_run)

    p = sub.add_parser("resume", help="resume the study in an output directory (no study file needed)")
    p.add_argument("output_dir", help="the study's output directory")
    p.add_argument("--trials", type=int, help="raise or lower strategy.trials")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.add_argument("--wide", action="store_true", help="print the summary's long fields in full, uncut")
    p.set_defaults(func=_cmd_resume)

    p = sub.add_parser("worker", help="join a study shared through a database; many workers split its budget")
    p.add_argument("study", help="study YAML file")
    p.add_argument("--storage", help="shared Optuna storage URL, e.g. postgresql://user@host/db")
    p.add_argument("--output", help="this worker's output directory (default: OUTPUT/workers/HOST-N, the first free)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.add_argument("--wide", action="store_true", help="print the summary's long fields in full, uncut")
    p.set_defaults(func=_cmd_run)

    p = sub.add_parser("show", help="print a study's leaderboard and result")
    p.add_argument("output_dir", help="the study's output directory")
    p.add_argument("--top", type=int, default=10, help="rows of the leaderboard (default 10)")
    p.add_argument("--wide", action="store_true", help="print long fields in full instead of cutting them")
    p.add_argument("--trial", type=int, help="print one trial in full: state, scores, every candidate field")
    p.add_argument("--json", action="store_true", help="print the leaderboard and result as JSON (for scripts)")
    p.set_defaults(func=_cmd_show)

    p = sub.add_parser("export", help="export the winning prompt (or --trial N) as a prompt card")
    p.add_argument("output_dir", help="a finished study's output directory")
    p.add_argument("--to", required=True, help="directory to write prompt_card.json and prompt.txt into")
    p.add_argument("--pick", help="multi-objective: pick from the Pareto front, e.g. 'prompt_tokens<=200'")
    p.add_argument("--front", action="store_true", help="multi-objective: export every Pareto-front prompt")
    p.add_argument("--trial", type=int, help="export this trial's candidate instead of the winner (dev scores only)")
    p.set_defaults(func=_cmd_export)

    p = sub.add_parser("plugins", help="list strategies, metrics, loaders and models, and where each comes from")
    p.add_argument("name", nargs="?", help="show this plugin's description and options (defaults, descriptions)")
    p.set_defaults(func=_cmd_plugins)

    p = sub.add_parser("track", help="log a finished study to MLflow (one run, a child run per trial)")
    p.add_argument("output_dir", help="a finished study's output directory")
    p.add_argument("--mlflow", required=True, help="MLflow tracking URI, e.g. http://127.0.0.1:5000")
    p.add_argument("--experiment", help="experiment name (default: the study's name)")
    p.add_argument("--no-report", action="store_true", help="do not attach the HTML report")
    p.set_defaults(func=_cmd_track)

    p = sub.add_parser("new-plugin", help="write a strategy plugin package that passes the conformance suite")
    p.add_argument("name", help="the strategy's name, a lower-case Python identifier (e.g. my_strategy)")
    p.add_argument("--dir", default=".", help="where to create optprompt-NAME/ (default: here)")
    p.set_defaults(func=_cmd_new_plugin)

    p = sub.add_parser("models", help="manage models")
    msub = p.add_subparsers(dest="models_command", required=True, metavar="ACTION")
    q = msub.add_parser("pull", help="fetch and convert a registered model, or convert a .gguf file, into the cache")
    q.add_argument("name", help="a registered model name, or a .gguf file (or a directory holding one)")
    q.set_defaults(func=_cmd_models_pull)
    q = msub.add_parser("list", help="list registered model names and converted GGUF files")
    q.set_defaults(func=_cmd_models_list)

    from optprompt.cli.evaluate_cmd import add_evaluate_parser
    from optprompt.cli.postgres_cmd import add_postgres_parser
    from optprompt.cli.registry_cmd import add_registry_parser
    from optprompt.cli.report_cmd import add_report_parser

    add_evaluate_parser(sub)
    add_postgres_parser(sub)
    add_report_parser(sub)
    add_registry_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="optprompt: %(levelname)s: %(message)s"
    )
    from optprompt.cli.notices import warnings_as_messages
    from optprompt.errors import OptpromptError

    try:
        with warnings_as_messages():
            return args.func(args)
    except OptpromptError as e:
        print(f"optprompt: error: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except BrokenPipeError:  # `optprompt plugins | head`: the reader left; not an error
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except KeyboardInterrupt as e:
        what = "terminated (SIGTERM)" if isinstance(e, Terminated) else "interrupted"
        print(f"optprompt: {what}; finished trials are saved, run the same command to resume", file=sys.stderr)
        return EXIT_TERMINATED if isinstance(e, Terminated) else EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
