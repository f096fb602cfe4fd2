from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from optprompt.errors import OptpromptError
from optprompt.export import card_from_result
from optprompt.registry import PromptRegistry, RegistryError, load_prompt


def test_round_trip(tmp_path: Path, make_card) -> None:
    card = make_card()
    reg = PromptRegistry(tmp_path / "reg")
    v = reg.add(card, name="sentiment")
    assert (v.ref, v.version, v.added, v.stages) == ("sentiment@1", 1, True, ())
    assert (v.path / "prompt_card.json").is_file() and (v.path / "prompt.txt").is_file()
    assert v.path == tmp_path / "reg" / "sentiment" / "versions" / "1"
    assert (tmp_path / "reg" / "sentiment" / "index.json").is_file()
    assert not [p for p in v.path.parent.iterdir() if p.name.startswith(".")]  # no temp dirs left

    got = reg.get("sentiment@1")
    assert got == v
    back = got.load_card()
    assert back == card
    text = "The battery died after two days."
    assert back.format(text) == card.format(text)
    assert (v.path / "prompt.txt").read_text() == card.format("{input}") + "\n"

    # provenance
    assert got.study == "sentiment-demo"
    assert got.model == {"ref": "smollm2-135m-instruct", "fingerprint": "model-fp-1"}
    assert got.data == {"task": "sentiment", "fingerprint": "data-fp-1"}
    assert got.scores == {
        "metric": "accuracy",
        "dev": 0.7,
        "test": 0.65,
        "baseline_dev": 0.5,
        "baseline_test": 0.55,
    }
    assert got.optprompt_version == card.optprompt_version
    assert got.created.endswith("Z") and got.source is None
    assert len(got.hash) == 64


def test_versions_increment_and_identical_content_dedupes(tmp_path: Path, make_card) -> None:
    reg = PromptRegistry(tmp_path)
    a, b = make_card(), make_card(instruction="Is this review negative or positive?")
    assert reg.add(a, name="s").version == 1
    assert reg.add(b, name="s").version == 2
    again = reg.add(make_card(), name="s")  # equal content, new object
    assert (again.version, again.added) == (1, False)
    assert [v.version for v in reg.list("s")] == [1, 2]
    assert reg.get("s@latest").version == 2 and reg.get("s").version == 2
    # versions are per name; the name defaults to the card's study name
    assert reg.add(a).ref == "sentiment-demo@1"
    assert reg.names() == ["s", "sentiment-demo"]
    assert [v.ref for v in reg.list()] == ["s@1", "s@2", "sentiment-demo@1"]


def test_promote_and_load_prompt(tmp_path: Path, make_card, monkeypatch: pytest.MonkeyPatch) -> None:
    reg = PromptRegistry(tmp_path)
    first, second = make_card(), make_card(instruction="Say negative or positive.")
    reg.add(first, name="s")
    reg.add(second, name="s")

    v = reg.promote("s@1")
    assert v.stages == ("production",)
    assert load_prompt("s@production", root=tmp_path) == first
    monkeypatch.setenv("OPTPROMPT_REGISTRY", str(tmp_path))
    assert load_prompt("s@production").format("x") == first.format("x")

    reg.promote("s@2")  # moves the alias
    assert load_prompt("s@production") == second
    assert reg.get("s@1").stages == () and reg.get("s@2").stages == ("production",)
    assert reg.stages("s") == {"production": 2}

    reg.promote("s@2")  # already there: no new history entry
    reg.promote("s@1", stage="staging")
    reg.promote("s@staging", stage="production")  # promote what staging holds
    assert reg.stages("s") == {"production": 1, "staging": 1}
    hist = reg.history("s")
    assert [(h["stage"], h["version"], h["previous"]) for h in hist] == [
        ("production", 1, None),
        ("production", 2, 1),
        ("staging", 1, None),
        ("production", 1, 2),
    ]
    assert all(h["time"].endswith("Z") for h in hist)
    # a new version does not move production
    reg.add(make_card(instruction="Third."), name="s")
    assert reg.get("s@production").version == 1 and reg.get("s@latest").version == 3


def test_diff_shows_prompt_text_and_changed_fields(tmp_path: Path, make_card) -> None:
    reg = PromptRegistry(tmp_path)
    reg.add(make_card(), name="s")
    reg.add(
        make_card(
            instruction="Is the review negative or positive?",
            verbalizer={"negative": "bad", "positive": "good"},
            calibration={"method": "mean", "offsets": [-0.25, 0.25]},
            demos=[],
            scores={
                "dev": {"value": 0.8, "metric": "accuracy"},
                "test": {"value": 0.75, "metric": "accuracy"},
            },
            model={"ref": "smollm2-135m-instruct", "fingerprint": "model-fp-2"},
        ),
        name="s",
    )
    out = reg.diff("s@1", "s@2")
    assert "--- s@1/prompt.txt" in out and "+++ s@2/prompt.txt" in out
    assert "-Classify the sentiment of the review as negative or positive." in out
    assert "+Is the review negative or positive?" in out
    assert "scores.dev (accuracy): 0.7000 -> 0.8000 (+0.1000)" in out
    assert "scores.test (accuracy): 0.6500 -> 0.7500 (+0.1000)" in out
    assert 'verbalizer: {"negative": "negative", "positive": "positive"} -> ' in out
    assert "calibration: none -> mean [-0.2500, 0.2500]" in out
    assert "demos: 1 -> 0" in out
    assert "model.fingerprint: model-fp-1 -> model-fp-2" in out
    assert "baseline_scores" not in out and "data.fingerprint" not in out
    assert reg.diff("s@1", "s@1") == "no differences between s@1 and s@1"


@pytest.mark.parametrize(
    "ref",
    [
        "",
        "@1",
        "s@",
        "s@@1",
        "s@1@2",
        "s@0",
        "../s@1",
        "s t@1",
        "s@prod uction",
        ".hidden@1",
        "s@-1",
    ],
)
def test_bad_references_are_clear_errors(tmp_path: Path, ref: str) -> None:
    with pytest.raises(RegistryError, match="invalid prompt reference"):
        PromptRegistry(tmp_path).get(ref)


def test_unknown_names_versions_and_stages(tmp_path: Path, make_card) -> None:
    reg = PromptRegistry(tmp_path / "reg")
    with pytest.raises(
        RegistryError,
        match=r"reg: no prompt named 'nope' \(reference 'nope@1'\); the registry is empty",
    ):
        reg.get("nope@1")
    reg.add(make_card(), name="s")
    with pytest.raises(RegistryError, match=r"no prompt named 'nope'.*registered: s"):
        load_prompt("nope@production", root=tmp_path / "reg")
    with pytest.raises(RegistryError, match=r"'s@9': 's' has no version 9 \(versions: 1\)"):
        reg.get("s@9")
    with pytest.raises(RegistryError, match=r"'s@production': no stage 'production' for 's' \(no stage is set"):
        reg.get("s@production")
    with pytest.raises(RegistryError, match="promote needs NAME@VERSION, got 's'"):
        reg.promote("s")
    with pytest.raises(RegistryError, match="invalid stage 'latest'"):
        reg.promote("s@1", stage="latest")
    with pytest.raises(RegistryError, match="invalid prompt name 'a/b'"):
        reg.add(make_card(), name="a/b")
    with pytest.raises(RegistryError, match="invalid prompt name 'my study'.*give a name explicitly"):
        reg.add(make_card(study="my study"))
    assert issubclass(RegistryError, OptpromptError)
    assert str(tmp_path / "reg") in str(pytest.raises(RegistryError, reg.get, "s@9").value)


def test_corrupt_index_names_the_file(tmp_path: Path, make_card) -> None:
    reg = PromptRegistry(tmp_path)
    reg.add(make_card(), name="s")
    index = tmp_path / "s" / "index.json"
    index.write_text(json.dumps({"format": 99}))
    with pytest.raises(RegistryError, match=r"index.json: unsupported registry index format 99"):
        reg.get("s@1")
    index.write_text("{not json")
    with pytest.raises(OptpromptError, match=r"index.json: not valid JSON"):
        reg.get("s@1")


def _result(card_instruction: str = "Classify: {labels}.") -> dict:
    split = {"value": 0.8, "metric": "accuracy", "n": 10}
    return {
        "name": "tiny-study",
        "optprompt_version": "0.1.0",
        "seed": 0,
        "model": {"ref": "tiny", "fingerprint": "fp-m", "device": "cpu", "dtype": "float32"},
        "task": {
            "name": "tiny-study",
            "type": "classification",
            "labels": ["neg", "pos"],
            "metric": "accuracy",
            "fingerprint": "fp-d",
        },
        "best": {
            "candidate": {
                "instruction": card_instruction,
                "template": "Input: {input}\nAnswer:",
                "verbalizer": [["neg", "bad"], ["pos", "good"]],
            },
            "demos": [{"input": "meh", "answer": "bad"}],
            "chat": False,
            "calibration": {"method": "none", "offsets": None},
            "dev": split,
            "test": split,
        },
        "baseline": {"dev": split, "test": split},
        "warnings": [],
    }


def test_add_from_study_output_dir_and_card_dir(tmp_path: Path) -> None:
    out = tmp_path / "runs" / "tiny"
    out.mkdir(parents=True)
    (out / "result.json").write_text(json.dumps(_result()))
    reg = PromptRegistry(tmp_path / "reg")
    v = reg.add(out)
    assert v.ref == "tiny-study@1" and v.source == str(out.resolve())
    assert v.model["fingerprint"] == "fp-m" and v.data["fingerprint"] == "fp-d"
    assert reg.load("tiny-study@1").instruction == "Classify: bad, good."
    # the exported card of the same study is the same content
    card_from_result(_result()).save(tmp_path / "card")
    assert reg.add(tmp_path / "card", name="tiny-study").version == 1
    assert reg.add(tmp_path / "card" / "prompt_card.json", name="other").source.endswith("prompt_card.json")

    with pytest.raises(RegistryError, match="neither a finished study's output directory"):
        reg.add(tmp_path / "runs")
    with pytest.raises(RegistryError, match="not found"):
        reg.add(tmp_path / "missing")
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "result.json").write_text(json.dumps({"name": "x"}))
    with pytest.raises(RegistryError, match="not a complete study result"):
        reg.add(bad)


_WORKER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    sys.path.insert(0, {tests!r})
    from conftest import build_card
    from optprompt.registry import PromptRegistry

    root, worker, go = sys.argv[1], sys.argv[2], Path(sys.argv[3])
    while not go.exists():
        time.sleep(0.005)
    reg = PromptRegistry(root)
    for i in range(5):
        v = reg.add(build_card(instruction=f"worker {{worker}} prompt {{i}}"), name="shared")
        print(v.version, v.added)
    v = reg.add(build_card(), name="shared")  # the same content from every worker
    print(v.version, v.added)
""")


def test_concurrent_adds_get_distinct_versions(tmp_path: Path) -> None:
    code = _WORKER.format(tests=str(Path(__file__).parent))
    go = tmp_path / "go"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, str(tmp_path / "reg"), str(w), str(go)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for w in range(4)
    ]
    go.touch()
    outputs = []
    for p in procs:
        out, err = p.communicate(timeout=60)
        assert p.returncode == 0, err
        outputs.append([line.split() for line in out.split("\n") if line])
    distinct = [int(v) for lines in outputs for v, _ in lines[:5]]
    shared = {int(lines[5][0]) for lines in outputs}
    assert len(shared) == 1  # registered once, found by the others
    assert len(set(distinct)) == 20 and set(distinct) | shared == set(range(1, 22))
    assert sum(lines[5][1] == "True" for lines in outputs) == 1
    reg = PromptRegistry(tmp_path / "reg")
    versions = [v.version for v in reg.list("shared")]
    assert versions == list(range(1, 22))
    on_disk = sorted(int(d.name) for d in (tmp_path / "reg" / "shared" / "versions").iterdir())
    assert on_disk == versions
    assert len({v.hash for v in reg.list("shared")}) == 21
