# Two commands for a newcomer: `make demo` and `make test`. Both set up .venv when missing.
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: venv test test-fast lint demo replay benchmarks clean prometheus

venv: $(STAMP)

# torch first, pinned: the CPU build lies on this machine's disk; an unpinned torch pulls a
# multi-GB CUDA build (the Dockerfile is where that one belongs).
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

prometheus:
	@bash scripts/ensure-prometheus.sh

lint: venv
	$(VENV)/bin/ruff check training streaming service tests benchmarks examples

# Two workers: the integration tests in order on one, the in-process tests on the other
# (tests/conftest.py says why); PYTEST_WORKERS=0 runs everything in this process.
PYTEST_WORKERS ?= 2

test: venv prometheus lint
	$(PY) -m pytest -n $(PYTEST_WORKERS) --dist loadgroup

test-fast: venv
	$(PY) -m pytest -n $(PYTEST_WORKERS) -m "not integration and not slow"

# The closed loop on embedded defaults: broker, bootstrap, trainer, service, traffic (~5 min).
demo: venv
	$(VENV)/bin/perennial demo --json demo.json --plot demo.png

replay: venv
	$(VENV)/bin/perennial replay --stream agrawal-drift --json replay.json --plot replay.png

clean:
	rm -rf $(VENV) .perennial .pytest_cache
