# Entry points for a fresh machine: `make demo`, `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
DEMO_OUT ?= demo_out
PACKAGE_DIRS := academicodec manifests pipelines models training tokenizer evaluation

.PHONY: install demo test lint format bench gpu-check clean

install: $(STAMP)

# Re-installs whenever the dependency declarations change. The editable package is byte-compiled
# once: pip compiles what it installs, not an editable install's folders, and where
# PYTHONDONTWRITEBYTECODE is set (as on this project's VMs) every CLI and rank process of the
# suite would compile ours again (~0.2 s each). Python checks each .pyc against its source.
$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e '.[dev]'
	$(PY) -m compileall -q $(PACKAGE_DIRS) > /dev/null
	touch $(STAMP)

demo: install
	$(VENV)/bin/academicodec demo $(DEMO_OUT)

test: install
	$(PY) -m pytest -n 2 --dist worksteal --durations=15 tests
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

bench: install
	for b in bench/*.py; do $(PY) $$b || exit 1; done

# The CUDA path end to end in < 11 minutes on one GPU (prints "skipped" without CUDA).
gpu-check: install
	$(PY) bench/gpu_check.py

clean:
	rm -rf $(VENV) $(DEMO_OUT) .pytest_cache .ruff_cache *.egg-info
