"""GGUF model files: `model:` may be a .gguf file or a directory holding one."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from tiny_gguf import write_tiny_gguf

from optprompt.cli.main import main
from optprompt.errors import ModelError
from optprompt.models import load_model
from optprompt.models.gguf import file_sha256, find_gguf, gguf_cache_dir


@pytest.fixture(scope="session")
def tiny_gguf(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny chat Llama written as a float32 GGUF file, alone in its directory."""
    return write_tiny_gguf(tiny_model_dir, tmp_path_factory.mktemp("gguf") / "tiny-llama.F32.gguf")


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh model cache ($OPTPROMPT_HOME) per test."""
    path = tmp_path / "home"
    monkeypatch.setenv("OPTPROMPT_HOME", str(path))
    return path


def _logits(loaded, text: str):  # type: ignore[no-untyped-def]
    import torch

    ids = loaded.tokenizer(text, return_tensors="pt").input_ids
    with torch.no_grad():
        return ids, loaded.model(ids).logits


def test_gguf_file_loads_as_the_model_it_was_written_from(tiny_gguf: Path, tiny_model, home: Path, plugins) -> None:
    loaded = load_model(str(tiny_gguf), plugins, device="cpu", progress=False)
    sha = file_sha256(tiny_gguf)
    # converted once into the model cache, keyed by the file's content
    cache = gguf_cache_dir(home, sha)
    assert cache == home / "models" / f"gguf-{sha[:16]}"
    assert (cache / "model.safetensors").is_file()
    marker = json.loads((cache / "optprompt-model.json").read_text())
    assert marker["gguf_sha256"] == sha and marker["name"] == "tiny-llama.F32"
    assert loaded.fingerprint == f"gguf:{sha[:16]}"
    assert loaded.family == "causal" and loaded.ref == str(tiny_gguf)
    # tokenizer and chat template come from the file
    assert loaded.has_chat_template
    assert loaded.tokenizer.chat_template == tiny_model.tokenizer.chat_template
    messages = [{"role": "user", "content": "the food was great"}]
    assert loaded.chat_formatter()(messages) == tiny_model.chat_formatter()(messages)
    text = "the staff was rude but the room lovely <|im_end|>"
    ids, logits = _logits(loaded, text)
    ref_ids, ref_logits = _logits(tiny_model, text)
    assert ids.tolist() == ref_ids.tolist()
    assert (logits - ref_logits).abs().max().item() < 1e-5


def test_second_use_does_not_convert_again(tiny_gguf: Path, home: Path, plugins, monkeypatch) -> None:
    first = load_model(str(tiny_gguf), plugins, device="cpu", progress=False)

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("converted twice")

    monkeypatch.setattr("optprompt.models.gguf.convert_gguf", refuse)
    again = load_model(str(tiny_gguf), plugins, device="cpu", progress=False)
    assert again.fingerprint == first.fingerprint


def test_a_copy_under_another_name_reuses_the_conversion(tiny_gguf: Path, tmp_path: Path, home: Path, plugins) -> None:
    load_model(str(tiny_gguf), plugins, device="cpu", progress=False)
    copy = tmp_path / "renamed" / "model.gguf"
    copy.parent.mkdir()
    shutil.copy(tiny_gguf, copy)
    loaded = load_model(str(copy.parent), plugins, device="cpu", progress=False)  # the directory holding it
    assert loaded.fingerprint == f"gguf:{file_sha256(tiny_gguf)[:16]}"
    assert len([d for d in (home / "models").glob("gguf-*") if d.is_dir()]) == 1


def test_directory_with_several_gguf_files_names_them(tiny_gguf: Path, tmp_path: Path, plugins, home) -> None:
    for name in ("a.gguf", "b.gguf"):
        shutil.copy(tiny_gguf, tmp_path / name)
    with pytest.raises(ModelError, match=r"several GGUF files \(a\.gguf, b\.gguf\); give the file's path"):
        load_model(str(tmp_path), plugins, device="cpu", progress=False)


def test_a_transformers_directory_is_not_taken_for_gguf(tiny_model_dir: Path, tiny_gguf: Path) -> None:
    assert find_gguf(tiny_model_dir) is None
    assert find_gguf(tiny_gguf) == tiny_gguf
    assert find_gguf(tiny_gguf.parent) == tiny_gguf


def test_other_files_and_broken_gguf_are_refused_with_the_path(tmp_path: Path, plugins, home) -> None:
    other = tmp_path / "weights.bin"
    other.write_bytes(b"\0" * 16)
    with pytest.raises(ModelError, match="is a file but not a .gguf file"):
        load_model(str(other), plugins, device="cpu", progress=False)
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"not a gguf file at all")
    with pytest.raises(ModelError, match="could not read GGUF file .*broken.gguf"):
        load_model(str(broken), plugins, device="cpu", progress=False)
    assert not list((home / "models").glob("gguf-*/optprompt-model.json"))


def test_models_pull_converts_ahead_of_time_and_list_shows_it(tiny_gguf: Path, home: Path, capsys) -> None:
    assert main(["models", "pull", str(tiny_gguf)]) == 0
    out = capsys.readouterr().out
    sha = file_sha256(tiny_gguf)
    assert str(gguf_cache_dir(home, sha)) in out and f"gguf:{sha[:16]}" in out
    assert main(["models", "list"]) == 0
    listed = capsys.readouterr().out
    assert "tiny-llama.F32\tconverted" in listed and str(tiny_gguf.resolve()) in listed


def test_unknown_model_name_suggests_the_registered_one(plugins, home, capsys) -> None:
    with pytest.raises(ModelError, match=r"did you mean 'smollm2-135m-instruct'\?"):
        load_model("smollm2", plugins, device="cpu", progress=False)
    assert main(["models", "pull", "smollm-135m-instruct"]) == 2
    assert "did you mean 'smollm2-135m-instruct'?" in capsys.readouterr().err


def test_study_on_a_gguf_file(study_dict: dict, tiny_gguf: Path, home: Path) -> None:
    from optprompt.config import spec_from_dict
    from optprompt.study.runner import run_study

    spec = spec_from_dict({**study_dict, "model": str(tiny_gguf), "strategy": {"name": "template_search", "trials": 2}})
    result = run_study(spec, progress=False).to_dict()
    assert result["model"]["ref"] == str(tiny_gguf)
    assert result["model"]["fingerprint"] == f"gguf:{file_sha256(tiny_gguf)[:16]}"
    assert result["n_scored"] == 2
