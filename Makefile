# brokerlink developer tasks. `make demo` and `make test` are the two entry points.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
UV := $(shell command -v uv 2>/dev/null || echo "$(PYTHON) -m uv")

.PHONY: install demo test check lint format types bench lock clean

# Build .venv from requirements.lock with the package installed editable (bootstraps uv if missing).
install: $(BIN)/brokerlink

$(BIN)/brokerlink: requirements.lock pyproject.toml
	@$(UV) --version >/dev/null 2>&1 || $(PYTHON) -m pip install -q uv
	$(UV) venv -q --allow-existing --python 3.11 $(VENV)
	$(UV) pip sync -q --python $(BIN)/python requirements.lock
	$(UV) pip install -q --python $(BIN)/python --no-deps -e .
	@touch $@

# Run the main job on the embedded defaults (offline sandboxes).
demo: install
	$(BIN)/brokerlink demo

# Install what the tests need and run lint, types and the test-suite.
test: install
	sh scripts/system-deps.sh
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy
	$(BIN)/python -m pytest -q

# Format, lint, type-check and test.
check: format test

# Reformat the code.
format: install
	$(BIN)/ruff format src tests bench
	$(BIN)/ruff check --fix src tests bench

# Benchmarks, each printing ratios against a baseline measured in the same run.
bench: install
	sh scripts/system-deps.sh
	$(BIN)/python -m bench

# Re-pin requirements.lock from pyproject.toml (no registry addresses are written).
lock:
	$(UV) pip compile -q pyproject.toml --group dev --python-version 3.11 -o requirements.lock

# Remove the virtual environment and caches.
clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
