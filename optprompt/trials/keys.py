"""Names of the trial and study attributes optprompt stores in Optuna's storage.

Only :mod:`optprompt.trials` reads them back (through :class:`~optprompt.trials.TrialRecord`);
the study loop writes them through :func:`~optprompt.trials.write`. Plugins keep their own
attributes under their own prefix and read them with :meth:`TrialRecord.attr`.
"""

ROLE = "optprompt.role"  # "baseline" on trial 0, "combined" for a candidate combined at the end
CANDIDATE = "optprompt.candidate"  # the candidate as a dict
HASH = "optprompt.hash"  # the candidate's content hash
METRICS = "optprompt.metrics"  # every metric on dev
FAIL_REASON = "optprompt.fail_reason"  # why a trial failed or was pruned
CACHED_FROM = "optprompt.cached_from"  # trial number whose score was reused
SPEC_KEY = "optprompt.spec_key"  # study attribute: what the study was created with
OFFSETS = "optprompt.offsets"  # calibration offsets found on dev (calibrated candidates)
FORMAT_FAILURES = "optprompt.format_failures"  # generated answers the extraction could not parse
POSITION = "optprompt.position"  # the trial's position in the budget (seeds the sampler)
DEV_SCORED = "optprompt.dev_scored"  # dev examples scored for this trial (0 for a repeat)
ARTIFACT = "optprompt.artifact"  # a file or directory kept for the candidate, relative to the output
FAMILY = "optprompt.family"  # the family of candidates a trial belongs to (strategies spanning several)
TRAINED_EXAMPLES = "optprompt.trained_examples"  # train examples times epochs a trained candidate ran
