# `make run`  : create .venv when missing, then launch the app on its built-in demo.
# `make test` : create .venv when missing, run the house-rule checks, then the whole test suite (what CI runs).
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test check lint bench wheel snapshots clean-venv

$(STAMP): pyproject.toml constraints.txt
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "error: $(PYTHON) not found; install Python 3.11 or run 'make PYTHON=python3 ...'"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade --quiet pip
	$(PY) -m pip install --quiet -c constraints.txt -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	$(PY) main.py

# House rules: lint and format, the engine never imports Qt or app, mypy clean on the engine,
# the app's mypy error count no higher than scripts/mypy_baseline.json.
check: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy
	$(PY) scripts/check_mypy.py app

# The suite includes tests/test_packaging.py: it builds the wheel and runs the installed `maskscope`.
test: check
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest -q -p no:cacheprovider tests

lint: check

# After an intended change of the looks: rewrite tests/gui/snapshots/*.png, then look at them before committing.
snapshots: $(STAMP)
	$(PY) scripts/update_snapshots.py

wheel: $(STAMP)
	$(PY) -m pip wheel --no-deps --no-build-isolation -w dist .

bench: $(STAMP)
	for b in bench/bench_*.py; do $(PY) $$b || exit 1; done

clean-venv:
	rm -rf $(VENV)
