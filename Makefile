# The two commands a newcomer needs: `make run` and `make test`.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat requirements.txt requirements-dev.txt | cksum | cut -d' ' -f1)
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20

.PHONY: venv test lint unit invoke run clean

# Create or refresh the virtualenv whenever a requirements file changes.
$(STAMP): requirements.txt requirements-dev.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@rm -f $(VENV)/.installed-*
	@touch $@

venv: $(STAMP)

lint: venv
	$(BIN)/ruff check functions sandbox local tests
	$(BIN)/ruff format --check functions sandbox local tests
	$(BIN)/mypy functions

# Every test: lint, then all tiers of pytest.
test: lint
	$(BIN)/pytest

# Invoke a handler on an event file against moto and the sandbox: make invoke EVENT=events/api-post-im.json
EVENT ?= events/api-post-im.json
invoke: venv
	$(BIN)/python -m local.invoke $(EVENT)

clean:
	rm -rf $(VENV) cdk.out build .pytest_cache .mypy_cache .ruff_cache
