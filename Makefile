# The few commands people type. The virtual environment is created on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Tests run in a zone far from UTC (UTC+13:45) so local-time bugs cannot hide.
TEST_TZ ?= Pacific/Chatham

.PHONY: demo test lint bench clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

demo: $(BIN)/.installed  ## generate a sample, build ./lake, show the report and example queries
	$(BIN)/clickstream demo

test: $(BIN)/.installed  ## the whole test suite
	TZ=$(TEST_TZ) $(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(BIN)/.installed
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy

bench: $(BIN)/.installed  ## benchmarks (print ratios measured side by side)
	$(BIN)/python bench/etl.py
	$(BIN)/python bench/spark.py
	$(BIN)/python bench/query.py
	$(BIN)/python bench/memory.py
	$(BIN)/python bench/stream.py

clean:
	rm -rf $(VENV) lake sample .pytest_cache .mypy_cache .ruff_cache
