"""Experiment tracking: a finished study logged to MLflow (``tracking: {mlflow: URI}`` in
the study file, ``optprompt track``); needs the optional extra ``optprompt[mlflow]``."""

from optprompt.tracking.mlflow_runs import log_study

__all__ = ["log_study"]
