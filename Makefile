PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SAMPLE := sample-data
STORE := ltv-runs

.PHONY: demo test bench install clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/ltv sample --out $(SAMPLE)
	$(BIN)/ltv forecast --events $(SAMPLE)/events.csv --installs $(SAMPLE)/installs.csv \
		--spend $(SAMPLE)/spend.csv --out $(STORE)

test: $(STAMP)
	bash scripts/ensure-chromium.sh
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/python -m benchmarks

clean:
	rm -rf $(VENV) $(SAMPLE) $(STORE) .bench warehouse
