"""Did-you-mean suggestions."""

from __future__ import annotations

from optprompt._suggest import close_matches, did_you_mean


def test_close_spellings_then_short_forms() -> None:
    assert did_you_mean("max_demo", ["max_demos", "demo_pool", "trials"]) == " (did you mean 'max_demos'?)"
    assert did_you_mean("smollm2", ["smollm2-135m-instruct"]) == " (did you mean 'smollm2-135m-instruct'?)"
    assert did_you_mean("Accuracy", ["accuracy", "token_f1"]) == " (did you mean 'accuracy'?)"
    assert did_you_mean("scorng", ["scoring", "storage", "seed"]) == " (did you mean 'scoring' or 'storage'?)"


def test_nothing_close_says_nothing() -> None:
    assert did_you_mean("xyzzy", ["accuracy", "bleu"]) == ""
    assert did_you_mean("ab", ["abc-long-name"]) == ""  # too short to be taken for a short form
    assert close_matches("x", []) == []
