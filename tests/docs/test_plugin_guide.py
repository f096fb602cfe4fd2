"""docs/writing-a-strategy-plugin.md cannot drift: every code block is either a whole file
(marked ``<!-- file: PATH -->``) or a console transcript; the files equal the example
plugin's, and the package extracted from the guide alone installs and passes its
conformance tests. The README's own example strategy passes the suite with ``trials: 4``
(its search space, three candidates, is exhausted early, and the study says so)."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from optprompt_testplugins import install_plugin, plugin_env

from optprompt.testing.fixtures import scratch_dir

ROOT = Path(__file__).resolve().parents[2]
GUIDE = ROOT / "docs" / "writing-a-strategy-plugin.md"
EXAMPLE = ROOT / "plugins" / "examples"
BLOCK = re.compile(
    r"(?:<!-- file: (?P<path>\S+) -->\n)?^(?P<indent>[ \t]*)```(?P<lang>[a-z]*)\n(?P<body>.*?)\n(?P=indent)```",
    re.S | re.M,
)


def guide_blocks(text: str) -> list[tuple[str | None, str, str]]:
    """(file path or None, language, body) of each fenced block, in order."""
    return [(m["path"], m["lang"], m["body"]) for m in BLOCK.finditer(text)]


def test_every_block_is_a_whole_file_or_a_transcript() -> None:
    text = GUIDE.read_text()
    blocks = guide_blocks(text)
    assert len(blocks) * 2 == text.count("```"), "an unclosed or nested code fence"
    loose = [(lang, body[:60]) for path, lang, body in blocks if path is None and lang not in ("console", "text", "")]
    assert loose == [], f"code blocks without a file name (mark them <!-- file: PATH -->): {loose}"
    files = [path for path, _, _ in blocks if path]
    assert len(files) == len(set(files))
    assert {"optprompt-example-strategy/pyproject.toml", "keyword-study.yaml"} <= set(files)


def test_the_guide_files_are_the_example_plugin() -> None:
    for path, _, body in guide_blocks(GUIDE.read_text()):
        if path and path.startswith("optprompt-example-strategy/"):
            shipped = (EXAMPLE / path).read_text()
            assert body + "\n" == shipped, f"{path}: the guide and plugins/examples/{path} differ"


def test_the_guide_study_file_validates(tmp_path: Path) -> None:
    from optprompt.config import load_spec

    blocks = {path: body for path, _, body in guide_blocks(GUIDE.read_text()) if path}
    study = tmp_path / "keyword-study.yaml"
    data = yaml.safe_load(blocks["keyword-study.yaml"])
    data["task"]["data"] = str(ROOT / data["task"]["data"])
    study.write_text(yaml.safe_dump(data))
    spec = load_spec(study)
    sys.path.insert(0, str(EXAMPLE / "optprompt-example-strategy"))
    try:
        from optprompt_example_strategy import KeywordInstructionsConfig

        options = {k: v for k, v in spec.strategy.model_dump().items() if k != "name"}
        config = KeywordInstructionsConfig.model_validate(options)
    finally:
        sys.path.remove(str(EXAMPLE / "optprompt-example-strategy"))
        for name in [m for m in sys.modules if m.startswith("optprompt_example_strategy")]:
            del sys.modules[name]
    assert config.trials == 20 and config.rewrite


#: Files of the example plugin the guide does not show: extra tests and its README.
NOT_IN_GUIDE = {"README.md", "tests/test_keywords.py"}


def test_the_guide_shows_every_file_the_example_plugin_needs() -> None:
    """The guide's files are the example plugin's minus :data:`NOT_IN_GUIDE`, so the package
    extracted from the guide is the one tests/testing/test_example_plugin.py installs and runs
    the conformance suite of (its tests/test_conformance.py is the guide's)."""
    shown = {
        path.removeprefix("optprompt-example-strategy/")
        for path, _, _ in guide_blocks(GUIDE.read_text())
        if path and path.startswith("optprompt-example-strategy/")
    }
    root = EXAMPLE / "optprompt-example-strategy"
    shipped = {
        str(p.relative_to(root))
        for p in root.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and ".egg-info" not in str(p)
    }
    assert shown == shipped - NOT_IN_GUIDE, (
        f"guide-only: {shown - shipped}; not in the guide: {shipped - shown - NOT_IN_GUIDE}"
    )
    assert "tests/test_conformance.py" in shown


def test_the_package_extracted_from_the_guide_installs_and_is_listed() -> None:
    """The guide's files alone build, install and register the strategy (its conformance suite
    runs once, in test_example_plugin.py, on the same files)."""
    with scratch_dir("optprompt-guide-") as tmp:
        tmp = Path(tmp)
        for path, _, body in guide_blocks(GUIDE.read_text()):
            if path and path.startswith("optprompt-example-strategy/"):
                target = tmp / "src" / path
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(body + "\n")
        site = install_plugin(tmp / "src" / "optprompt-example-strategy", tmp / "site")
        listed = subprocess.run(
            [sys.executable, "-m", "optprompt.cli.main", "plugins", "keyword_instructions"],
            env=plugin_env(site), capture_output=True, text=True, timeout=120, cwd=tmp,
        )  # fmt: skip
        assert listed.returncode == 0, listed.stderr
        assert listed.stdout.startswith(
            "keyword_instructions (strategy, from entry point optprompt:keyword_instructions in "
            "optprompt-example-strategy 0.1.0)"
        )
        assert "max_keywords" in listed.stdout and "Most cue words shown per label." in listed.stdout


def _readme_example() -> str:
    """The example strategy of the README's plugin section (or of the docs page it moved to)."""
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for _, lang, body in guide_blocks(page.read_text()):
            if lang == "python" and "class MyStrategy(BaseStrategy)" in body:
                return body
    raise AssertionError("the README's example strategy (class MyStrategy) is gone")


def test_the_readme_example_strategy_conforms_with_four_trials(tmp_path: Path) -> None:
    from optprompt.testing import (
        check_proposes_valid_candidates,
        check_registration,
        check_reproducible_with_seed,
        check_respects_budget,
        check_survives_resume,
        make_tiny_study_env,
    )

    module_file = tmp_path / "readme_example_strategy.py"
    module_file.write_text(_readme_example())
    spec = importlib.util.spec_from_file_location("readme_example_strategy", module_file)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["readme_example_strategy"] = module
    sys.path.insert(0, str(tmp_path))
    try:
        spec.loader.exec_module(module)
        options = {"trials": 4}
        env = make_tiny_study_env(tmp_path / "env")
        kw = {"extra_plugins": [module], "env": env}
        check_registration("my_strategy", options, **kw)  # env= accepted by every check
        check_proposes_valid_candidates("my_strategy", options, **kw)
        check_respects_budget("my_strategy", options, **kw)
        check_survives_resume("my_strategy", options, **kw)
        check_reproducible_with_seed("my_strategy", options, **kw)
    finally:
        sys.path.remove(str(tmp_path))
        del sys.modules["readme_example_strategy"]
    observed = next(v for k, v in env.memo.items() if k[0] == "observed")
    assert observed.run.counted == 3
    assert any(w.startswith("search space exhausted") for w in observed.run.result.warnings)


@pytest.mark.parametrize("page", ["docs/writing-a-strategy-plugin.md"])
def test_the_guide_names_every_sampler(page: str) -> None:
    text = (ROOT / page).read_text()
    assert all(f"`{s}`" in text for s in ("auto", "tpe", "random", "nsga2"))
