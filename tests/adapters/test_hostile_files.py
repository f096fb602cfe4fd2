"""Adapters and cards are files people share: saving one on a full disk fails that trial
alone, with the OS's reason; loading one never runs code (safetensors only, no pickle,
no model that ships its own code, no path that leads out of the export)."""

from __future__ import annotations

import errno
import json
import os
import shutil
from pathlib import Path

import optuna
import pytest
import torch
from optprompt_testdata import soft_study_dict, write_sentiment_jsonl
from safetensors.torch import load_file

import optprompt
from optprompt.config import spec_from_dict
from optprompt.errors import ModelError, OptpromptError
from optprompt.kinds.prompt.card import PromptCard
from optprompt.kinds.soft import load_adapter
from optprompt.study import StudyRunner
from optprompt.trials import keys as attrs

ENOSPC = os.strerror(errno.ENOSPC)


@pytest.fixture(scope="module")
def full_disk_study(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path, tiny_model):  # type: ignore[no-untyped-def]
    """A 4-trial LoRA study whose first adapter save meets a full disk."""
    import peft.peft_model

    root = tmp_path_factory.mktemp("full-disk")
    data = write_sentiment_jsonl(root / "data.jsonl", n=48)
    spec = spec_from_dict(
        soft_study_dict(data, tiny_model_dir, root / "out", trials=4, methods=["lora"], epochs=[1, 1], batch_size=8)
    )
    real = peft.peft_model.safe_save_file
    calls = []

    def disk_fills_once(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(args[1])
        if len(calls) == 1:
            Path(args[1]).write_bytes(b"\0" * 100)  # part written, then the disk is full
            raise OSError(errno.ENOSPC, ENOSPC)
        return real(*args, **kwargs)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(peft.peft_model, "safe_save_file", disk_fills_once)
        result = StudyRunner(spec, model=tiny_model, progress=False).run().to_dict()
    trials = optuna.load_study(study_name=spec.name, storage=f"sqlite:///{root / 'out' / 'study.db'}").trials
    return root / "out", result, trials


def test_disk_full_while_saving_an_adapter_fails_that_trial_with_the_os_reason(full_disk_study) -> None:  # type: ignore[no-untyped-def]
    out, result, trials = full_disk_study
    failed = [t for t in trials if t.state == optuna.trial.TrialState.FAIL]
    assert len(failed) == 1
    reason = failed[0].user_attrs[attrs.FAIL_REASON]
    assert "cannot save the adapter to" in reason and str(out / "artifacts") in reason and ENOSPC in reason
    # Nothing else was lost: the other trials finished, each with its adapter; no half-written folder.
    assert [t.state for t in trials].count(optuna.trial.TrialState.COMPLETE) == 3
    assert result["failure_reasons"] == {"OptpromptError": 1}
    saved = [t.user_attrs[attrs.ARTIFACT] for t in trials if attrs.ARTIFACT in t.user_attrs]
    assert len(saved) == 2 and all((out / a / "adapter_model.safetensors").is_file() for a in saved)
    assert not [p for p in (out / "artifacts").rglob(".*") if ".tmp-" in p.name]
    assert (out / "result.json").is_file()


def _an_adapter(full_disk_study, tmp_path: Path) -> Path:  # type: ignore[no-untyped-def]
    out, _, trials = full_disk_study
    saved = next(t.user_attrs[attrs.ARTIFACT] for t in trials if attrs.ARTIFACT in t.user_attrs)
    copy = tmp_path / "shared-adapter"
    shutil.copytree(out / saved, copy)
    return copy


def test_an_adapter_whose_weights_are_a_pickle_is_refused(full_disk_study, tmp_path: Path, tiny_model) -> None:  # type: ignore[no-untyped-def]
    adapter = _an_adapter(full_disk_study, tmp_path)
    with load_adapter(adapter, tiny_model, check_fingerprint=False) as soft:  # the safetensors original loads
        assert soft.predict(["a great movie"])
    weights = adapter / "adapter_model.safetensors"
    torch.save(load_file(weights), adapter / "adapter_model.bin")  # the same weights as a pickle
    weights.unlink()
    with pytest.raises(OptpromptError, match=r"no adapter_model.safetensors; adapter_model.bin is a pickle.*refused"):
        load_adapter(adapter, tiny_model, check_fingerprint=False)


@pytest.fixture
def remote_code_model(tmp_path: Path, tiny_model_dir: Path) -> Path:
    """The tiny model, with a config that asks to run the code beside it (which would leave a mark)."""
    model = tmp_path / "remote-code-model"
    shutil.copytree(tiny_model_dir, model)
    config = json.loads((model / "config.json").read_text())
    config["auto_map"] = {"AutoConfig": "evil.EvilConfig", "AutoModelForCausalLM": "evil.EvilModel"}
    (model / "config.json").write_text(json.dumps(config))
    (model / "evil.py").write_text(f"open({str(tmp_path / 'ran')!r}, 'w').write('ran')\n")
    return model


def test_a_card_naming_a_model_with_its_own_code_is_refused(
    full_disk_study, tmp_path: Path, remote_code_model: Path
) -> None:  # type: ignore[no-untyped-def]
    adapter = _an_adapter(full_disk_study, tmp_path)
    manifest = json.loads((adapter / "optprompt_adapter.json").read_text())
    card = PromptCard.from_dict({**manifest["card"], "model": {"ref": str(remote_code_model)}})
    card.save(tmp_path / "card")
    with pytest.raises(ModelError, match="asks to run its own code.*trust_remote_code stays off"):
        optprompt.load(tmp_path / "card")
    manifest["model"]["ref"] = str(remote_code_model)  # an adapter's manifest naming it
    (adapter / "optprompt_adapter.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelError, match="asks to run its own code"):
        load_adapter(adapter)
    assert not (tmp_path / "ran").exists()


def test_an_ensemble_whose_member_path_leads_out_is_refused(tmp_path: Path) -> None:
    export = tmp_path / "ensemble"
    export.mkdir()
    for members, message in (
        (["member-0", "../elsewhere"], "'../elsewhere' leads out of"),
        (["member-0", "/etc"], "'/etc' must be a folder name inside"),
    ):
        (export / "ensemble.json").write_text(json.dumps({"members": members}))
        with pytest.raises(OptpromptError, match=f"ensemble.json: members: {message}"):
            optprompt.load(export, model="unused")
