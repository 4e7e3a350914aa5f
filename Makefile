# Every target builds its own virtual environment from nothing but Python 3.11+.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test lint bench bench-inference clean

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/activate
	$(BIN)/python -m pip install --quiet -e '.[dev,model,infra]'
	touch $@

demo: $(VENV)/.installed  ## run the checker on sample photos (moto-backed until the local stack lands)
	$(BIN)/bincheck demo $(ARGS)

test: $(VENV)/.installed  ## lint, then the whole test suite
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy lambdas/checker/domain lambdas/checker/settings.py
	$(BIN)/pytest $(ARGS)

bench: $(VENV)/.installed  ## checker throughput and cold import time
	$(BIN)/python benchmarks/checker_throughput.py $(ARGS)

bench-inference: $(VENV)/.installed  ## per-request handler vs bincheck serve, side by side
	$(BIN)/python benchmarks/inference_throughput.py $(ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
