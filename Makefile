# Every target sets up .venv first if needed; a second run installs nothing.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.pypaddle-installed
OUT ?= demo-output

.PHONY: setup demo test test-fast bench lint format docs dist clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip
	# torch first, pinned, so that the project's range finds it installed. pip picks the
	# build for the platform (on Linux from the public index that is the CUDA build); for a
	# CPU-only .venv, install torch from https://download.pytorch.org/whl/cpu before this.
	$(BIN)/python -m pip install torch==2.13.0
	$(BIN)/python -m pip install -e '.[all,dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/pypaddle demo --out $(OUT)

# The whole suite: with the slow tests, which include the strict build of the docs site.
test: lint
	$(BIN)/python -m pytest -n 2 -q

# Every test not marked slow.
test-fast: lint
	$(BIN)/python -m pytest -n 2 -q -m "not slow"


# deepstruct pins torch<2, so it comes without its dependencies; beyond what pypaddle
# installs it only needs Deprecated (and that, wrapt). Torch-Pruning needs only torch and
# numpy; --no-deps keeps pip from touching torch for it too.
bench: $(STAMP)
	$(BIN)/python -m pip install --quiet deepstruct==0.10.0 Deprecated==1.3.1 wrapt==2.5.2 torch-pruning==1.6.1 --no-deps
	$(BIN)/python benchmarks/run.py

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff format src tests benchmarks
	$(BIN)/ruff check --fix src tests benchmarks

# The documentation site into site/; --strict fails on a broken link or cross-reference.
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

dist: $(STAMP)
	rm -rf dist
	$(BIN)/python -m build
	$(BIN)/twine check --strict dist/*

clean:
	rm -rf $(VENV) dist build demo-output site .pytest_cache
