# Two commands set everything up: `make demo` and `make test`. Each creates or updates
# .venv with a Python >= 3.12 found by scripts/find-python.sh (override: make PYTHON=...).
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
PYTEST_ARGS ?=

.PHONY: demo test test-fast lint format bench docs clean venv

venv: $(STAMP)

$(STAMP): pyproject.toml scripts/find-python.sh
	@set -e; \
	if [ ! -x $(PY) ] || ! $(PY) -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null; then \
	    base=$$(sh scripts/find-python.sh); \
	    echo "creating $(VENV) with $$base"; \
	    rm -rf $(VENV); "$$base" -m venv $(VENV); \
	fi
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	@touch $(STAMP)

demo: $(STAMP)
	$(PY) -m clvbayes demo --out reports/cdnow

test: $(STAMP)
	$(PY) -m pytest -n 2 --durations=25 $(PYTEST_ARGS)

test-fast: $(STAMP)
	$(PY) -m pytest -n 2 -m "not slow" --durations=25 $(PYTEST_ARGS)

lint: $(STAMP)
	$(PY) -m ruff check clvbayes tests benchmarks notebooks scripts
	$(PY) -m ruff format --check clvbayes tests benchmarks notebooks scripts

format: $(STAMP)
	$(PY) -m ruff format clvbayes tests benchmarks notebooks scripts
	$(PY) -m ruff check --fix clvbayes tests benchmarks notebooks scripts

# The documentation site into docs/_build/html, warnings as errors; renders the notebooks
# from their stored outputs (never executes them).
docs: $(STAMP)
	$(PY) -m sphinx -W --keep-going -b html docs docs/_build/html

bench: $(STAMP)
	$(PY) benchmarks/bench_rfm.py --sizes 1000000 10000000 --timeout 600
	$(PY) benchmarks/bench_fit.py --sizes 100000 --synthetic-models bgnbd --pareto --anchor-max 1
	$(PY) benchmarks/bench_predict.py --sizes 10000 100000 --anchor-max 100000

clean:
	rm -rf $(VENV) reports .pytest_cache build *.egg-info docs/_build docs/api/generated docs/notebooks
