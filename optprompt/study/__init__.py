"""The study loop on Optuna: run, resume, and write results."""

from optprompt.study.runner import PREDICTIONS_FILE, RESULT_FILE, SPEC_FILE, StudyRunner, run_study

__all__ = ["PREDICTIONS_FILE", "RESULT_FILE", "SPEC_FILE", "StudyRunner", "run_study"]
