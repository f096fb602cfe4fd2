"""The study's progress line: best value, examples/s and the running trial's note."""

from __future__ import annotations

from optprompt.study.progress import StudyProgress


def test_note_shows_until_the_trial_ends() -> None:
    bar = StudyProgress(total=3, enabled=False)
    with bar:
        bar.note("trial 1: lora epoch 1/2, step 3/23, loss 0.512")
        assert bar._desc().endswith("· trial 1: lora epoch 1/2, step 3/23, loss 0.512")
        bar.advance(0.75, examples=10)
        assert bar._desc().startswith("trials (best dev 0.750")
        assert "·" not in bar._desc()
        bar.advance(0.5)
        assert bar.best == 0.75 and bar.done == 2
