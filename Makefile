# `make demo` and `make test` do all the set-up on a fresh Debian machine.
VENV    := .venv
BIN     := $(VENV)/bin
PYTHON  ?= python3

.PHONY: demo test lint bench system-packages clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $@

system-packages:
	@scripts/ensure-system-packages

demo: $(BIN)/.installed system-packages
	$(BIN)/rds-streams up --yes
	$(BIN)/rds-streams verify

lint: $(BIN)/.installed
	$(BIN)/ruff check orchestrator blueprints tests bench examples

test: $(BIN)/.installed system-packages lint
	$(BIN)/python -m pytest -q

bench: $(BIN)/.installed system-packages
	@for b in bench/bench_*.py; do $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) out .rds-streams .pytest_cache
