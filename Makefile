# Two commands: `make demo` and `make test`. Both create/refresh .venv only when
# pyproject.toml or requirements.lock changed (the stamp file records the last install).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# pip prints hundreds of harmless "Location ... is ignored" lines on these machines
QUIET  := 2>&1 | grep -v "is ignored" || true

.PHONY: demo test test-all bench scoreboard repro lock clean venv

venv: $(STAMP)

$(STAMP): pyproject.toml requirements.lock
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip $(QUIET)
	# torch + torchvision first (large; from the machine's wheel store), then the locked rest
	$(PY) -m pip install -q $$(grep -E '^(torch|torchvision)==' requirements.lock) $(QUIET)
	$(PY) -m pip install -q -r requirements.lock $(QUIET)
	$(PY) -m pip install -q --no-deps -e . $(QUIET)
	$(PY) -c "import actionops, torch, torchvision, ray, mlflow, av, cv2, typer"
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/actionops demo

test: $(STAMP)
	$(PY) -m pytest -q

test-all: $(STAMP)
	$(PY) -m pytest -q -m ""

# The DVC pipeline (dvc.yaml): every stage of both pipelines on generated data; a second run does nothing.
repro: $(STAMP)
	PATH=$(CURDIR)/$(VENV)/bin:$$PATH DVC_NO_ANALYTICS=1 $(VENV)/bin/dvc repro

bench: $(STAMP)
	@for b in benchmarks/[a-z]*.py; do $(PY) -m benchmarks.$$(basename $$b .py) || exit 1; done

# Every registered method with the shipped params.yaml on the real datasets at hand (../shared/data):
# one table, benchmarks/results/scoreboard.json (README: Scoreboard).
scoreboard: $(STAMP)
	$(PY) -m benchmarks.scoreboard

# Re-resolve the environment from pyproject.toml and write the lock file.
lock: $(STAMP)
	$(PY) -m pip install -q -e ".[test]" $(QUIET)
	$(PY) -m pip freeze --exclude-editable | grep -v '^-e' > requirements.lock

clean:
	rm -rf $(VENV) mlruns data/demo .pytest_cache
