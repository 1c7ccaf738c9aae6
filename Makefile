# The product's one Python (Lambda runtime, processing image, tests): .python-version, which
# pyenv also reads, so `python3.12` resolves here where pyenv provides it.
PYTHON := $(strip $(file < .python-version))
PY ?= python$(PYTHON)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# A venv of another Python (or none) is rebuilt from scratch.
VENV_PYTHON := $(VENV)/.python-$(PYTHON)
SAMPLE := sample-data
STORE := ltv-runs

.PHONY: demo test bench install clean

$(VENV_PYTHON):
	@$(PY) -c 'import sys; sys.exit("%d.%d" % sys.version_info[:2] != "$(PYTHON)")' 2>/dev/null || \
		{ echo "make: $(PY) is not Python $(PYTHON) (.python-version); try make PY=/path/to/python$(PYTHON)"; exit 1; }
	rm -rf $(VENV)
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	touch $@

$(STAMP): pyproject.toml $(VENV_PYTHON)
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/ltv sample --out $(SAMPLE)
	$(BIN)/ltv forecast --events $(SAMPLE)/events.csv --installs $(SAMPLE)/installs.csv \
		--spend $(SAMPLE)/spend.csv --out $(STORE)

test: $(STAMP)
	bash scripts/ensure-chromium.sh
	sh scripts/ensure-node-deps.sh  # the CDK CLI and asl-validator, pinned in package-lock.json
	$(BIN)/python -m infra.synth_env  # the sagemaker SDK's own venv, once (build/synth-env/)
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/python -m benchmarks

clean:
	rm -rf $(VENV) $(SAMPLE) $(STORE) .bench warehouse
