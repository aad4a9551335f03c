# The two front-door commands (see README):
#   make demo   set up (core only: no torch) and run the main job on the bundled default model
#   make test   set up (torch + every extra + system packages for GUI/browser/microphone tests)
#               and run the tests
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip -q
CORE := $(VENV)/.core-installed
FULL := $(VENV)/.full-installed
EXTRAS := neural,ssl,gui,serve,onnx,live,opensmile,ray,dev

.PHONY: setup setup-full demo test lint bench clean

$(CORE): pyproject.toml
	python3 -m venv $(VENV)
	# the core needs no torch: predict, evaluate, timeline, classical training, default model
	$(PIP) install -e .
	touch $(CORE)

$(FULL): $(CORE)
	# torch first and pinned: the local CPU wheel, so nothing later pulls CUDA builds.
	$(PIP) install torch==2.13.0
	$(PIP) install -e ".[$(EXTRAS)]"
	touch $(FULL)

setup: $(CORE)

setup-full: $(FULL)
	./scripts/system-deps.sh

demo: $(CORE)
	$(VENV)/bin/sertk predict examples/ --no-progress

# pytest-xdist (the dev extra) spreads the tests over the cores (at most 4 workers; tests sharing
# a module-scoped fixture stay on one worker, see tests/conftest.py); the 15 slowest tests are
# listed at the end. Without xdist the suite runs in one process.
test: setup-full
	$(PY) -m pytest -q --durations=15 $$($(PY) -c "import xdist" 2>/dev/null && echo "-n auto --maxprocesses=4 --dist loadgroup")

lint: $(FULL)
	$(VENV)/bin/ruff check src tests benchmarks

clean:
	rm -rf $(VENV) build .pytest_cache
