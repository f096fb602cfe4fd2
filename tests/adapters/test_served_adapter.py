"""An exported LoRA adapter loaded through a model server, against the stand-in server (which
lists adapters as vLLM does): which served adapter is the export's, and the errors when none
is. That vLLM applies the adapter exactly as in-process is checked on the real server
(tests/served/test_vllm_lora.py)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from optprompt_testdata import export_lora
from served_standin import StandIn

import optprompt
from optprompt.adapters.artifact import MANIFEST_FILE
from optprompt.cli.main import main as cli_main
from optprompt.errors import ModelError, OptpromptError
from optprompt.kinds.soft.served import ServedAdapter
from optprompt.models import connect


@pytest.fixture
def export(soft_runner, tmp_path: Path) -> Path:
    return export_lora(soft_runner, tmp_path / "lora-export")


@pytest.fixture
def standin(tiny_model, tiny_model_dir):
    server = StandIn(tiny_model, root=str(tiny_model_dir)).start()
    yield server
    server.stop()


def test_the_served_adapter_is_found_by_the_exports_directory(export: Path, standin: StandIn) -> None:
    standin.adapters = {"other": str(export.parent), "sentiment-lora": str(export)}
    with optprompt.load(export, {"url": standin.url}) as predictor:
        assert isinstance(predictor, ServedAdapter) and predictor.adapter == "sentiment-lora"
        before = len(standin.requests)
        predictor.predict(["a good film", "a bad film"])
    scoring = ("/v1/completions", "/generative_scoring")
    asked = {r["body"]["model"] for r in standin.requests[before:] if r["path"] in scoring}
    assert asked == {"sentiment-lora"}  # every scoring request goes to the adapter


def test_a_copy_with_the_same_weights_is_the_same_adapter(export: Path, standin: StandIn, tmp_path: Path) -> None:
    copy = shutil.copytree(export, tmp_path / "elsewhere" / "served-copy")
    standin.adapters = {"copied": str(copy)}
    with optprompt.load(export, standin.url) as predictor:
        assert predictor.adapter == "copied"


def test_a_server_that_does_not_serve_the_export_is_an_error_naming_what_it_serves(
    export: Path, standin: StandIn
) -> None:
    with pytest.raises(ModelError, match="it serves: none.*--enable-lora --lora-modules NAME="):
        optprompt.load(export, standin.url)
    standin.adapters = {"someone-elses": "/models/adapters/other"}
    with pytest.raises(ModelError, match=r"it serves: someone-elses \(/models/adapters/other\)"):
        optprompt.load(export, standin.url)
    with pytest.raises(ModelError, match="serves no LoRA adapter 'nope'; it serves the adapters: someone-elses"):
        optprompt.load(export, {"url": standin.url, "adapter": "nope"})


def test_a_named_adapter_with_other_weights_is_refused(
    export: Path, soft_runner, standin: StandIn, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    other = export_lora(soft_runner, tmp_path / "other-export", lr=0.05)
    standin.adapters = {"other": str(other)}
    with pytest.raises(ModelError, match="adapter 'other' from .*other-export, whose weights are not this export's"):
        optprompt.load(export, {"url": standin.url, "adapter": "other"})
    standin.adapters = {"remote": "/not/on/this/machine"}  # trusted by name: its files cannot be compared
    with optprompt.load(export, {"url": standin.url, "adapter": "remote"}) as predictor:
        assert predictor.adapter == "remote"


def test_the_adapter_is_part_of_the_served_fingerprint(export: Path, standin: StandIn) -> None:
    standin.adapters = {"sentiment-lora": str(export)}
    base, adapted = connect(standin.url), connect({"url": standin.url, "adapter": "sentiment-lora"})
    try:
        assert adapted.model_id == "sentiment-lora" and base.model_id == "stand-in"
        assert adapted.root == base.root and adapted.adapter_root == str(export)
        assert adapted.fingerprint != base.fingerprint  # adapted scores never share the base's cache entries
    finally:
        base.close()
        adapted.close()


def test_prompt_learning_adapters_are_refused_before_connecting(export: Path, tmp_path: Path) -> None:
    tuned = shutil.copytree(export, tmp_path / "tuned")
    manifest = json.loads((tuned / MANIFEST_FILE).read_text())
    manifest["candidate"]["method"] = "prompt_tuning"
    (tuned / MANIFEST_FILE).write_text(json.dumps(manifest))
    with pytest.raises(OptpromptError, match="a prompt_tuning adapter cannot be served .*LoRA adapters only"):
        optprompt.load(tuned, "http://127.0.0.1:9/v1")  # refused before any connection is tried


def test_the_cli_adapter_option_goes_with_a_served_model(export: Path, sentiment_file: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    argv = ["evaluate", str(export), "--data", str(sentiment_file), "--model", "some/dir", "--adapter", "x"]
    assert cli_main(argv) != 0
    assert "--adapter go(es) with a served --model" in capsys.readouterr().err
