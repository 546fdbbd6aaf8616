# Two commands on a fresh clone: `make demo` and `make test`. Everything else is set up by them.
# Any Python from 3.11 on: `make demo PYTHON=python3.12`; a venv of another Python is rebuilt.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PYVER  := $(shell $(PYTHON) -c 'import sys; print("%d.%d" % sys.version_info[:2])')
# the demo needs only the core (wheels, no C compiler); the tests add the dev extra (durable_rules
# builds a C extension there, on the Pythons it supports)
CORE   := $(VENV)/.core-$(PYVER)
DEV    := $(VENV)/.dev-$(PYVER)
# the Rust core (native/, backend="native"), built where cargo is on PATH; optional
NATIVE := $(VENV)/.native-$(PYVER)

.PHONY: demo test lint bench clean

$(CORE): pyproject.toml
	@test -n "$(PYVER)" || { echo "make: $(PYTHON) is not a Python; try PYTHON=python3.12"; exit 2; }
	@if [ -x $(BIN)/python ] && [ "$$($(BIN)/python -c 'import sys; print("%d.%d" % sys.version_info[:2])')" != "$(PYVER)" ]; then \
		echo "make: $(VENV) holds another Python; rebuilding it with $(PYTHON) ($(PYVER))"; rm -rf $(VENV); fi
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e .
	touch $(CORE)

$(DEV): $(CORE)
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(DEV)

$(NATIVE): $(CORE) native/Cargo.toml native/Cargo.lock native/pyproject.toml $(wildcard native/src/*.rs)
	@if ! command -v cargo >/dev/null; then \
		echo "make: no cargo: the Python engine is used (backend=\"native\" falls back to it)"; \
	elif $(BIN)/pip install --quiet ./native; then touch $(NATIVE); \
	else echo "make: the Rust core did not build: the Python engine is used (see pip's output above)"; fi

demo: $(CORE) $(NATIVE)
	$(BIN)/python examples/demo.py

test: $(DEV) $(NATIVE)
	@if [ -f $(NATIVE) ]; then cd native && cargo test --release --quiet; fi
	$(BIN)/python -m pytest

lint: $(DEV)
	$(BIN)/ruff check src tests examples $(wildcard benchmarks)
	$(BIN)/mypy
	$(BIN)/lint-imports

bench: $(DEV)
	$(BIN)/python benchmarks/bench.py

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info
