# The two commands a newcomer needs: `make run` and `make test`.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
# Every install is from a lock of locks/ with its hashes (README: Dependencies): an artifact
# whose hash changed fails the install. One stamp per lock, named after its checksum: a new
# lock (`make lock`) installs again. --no-compile: bytecode is written on first import, for the
# modules that are used, rather than at install for every file (the dev set's install took 82 s
# with it, 31 s without, on a fresh clone here).
PIP_INSTALL := -m pip install --quiet --disable-pip-version-check --require-hashes --no-compile
STAMP := $(VENV)/.installed-$(shell cat locks/dev.txt | cksum | cut -d' ' -f1)
LOCAL_STAMP := $(VENV)/.installed-local-$(shell cat locks/local.txt | cksum | cut -d' ' -f1)
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20

.PHONY: venv test check lint invoke run redrive reconcile clean build synth deploy lock lock-check

# Create or refresh the virtualenv whenever the dev lock changes. The dev set includes the
# local one (at the same versions), so `make run` after `make test` installs nothing. The
# lock pins pip itself, so the first install also brings the pinned pip.
$(STAMP): locks/dev.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python $(PIP_INSTALL) -r locks/dev.txt
	@rm -f $(VENV)/.installed-*
	@touch $@ $(LOCAL_STAMP)

# Only what `make run` needs, for a fast first start.
$(LOCAL_STAMP): locks/local.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python $(PIP_INSTALL) -r locks/local.txt
	@rm -f $(VENV)/.installed-local-*
	@touch $@

# Resolve every requirements file again into locks/ with hashes (uv; tools/lock.py), for
# the tools' Python and for the Lambda runtime's Python on arm64. Run it after editing a
# requirements file; `make test` fails until then.
lock: venv
	$(BIN)/python -m tools.lock --layer-python $(LAMBDA_PYTHON_VERSION)

# Does every lock still match the requirements it was made from? (Standard library only.)
lock-check:
	$(PYTHON) -m tools.lock --check

# checkov in a virtualenv of its own (its dependencies clash with ours), refreshed when
# its lock (from requirements-checkov.txt) changes; tests/infra runs it on the synthesized templates.
CHECKOV_VENV := .venv-checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed-$(shell cat locks/checkov.txt | cksum | cut -d' ' -f1)

$(CHECKOV_STAMP): locks/checkov.txt
	@test -x $(CHECKOV_VENV)/bin/python || $(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python $(PIP_INSTALL) -r locks/checkov.txt
	@rm -f $(CHECKOV_VENV)/.installed-*
	@touch $@

# The Node tools package.json pins (the CDK CLI; Redocly CLI, which tests/integration runs on the
# OpenAPI description), installed again only when package.json or package-lock.json changes: after
# the first install, `make test` needs no network for them.
NODE_STAMP := node_modules/.package-lock.json

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund

venv: $(STAMP)

lint: lock-check venv
	$(BIN)/ruff check functions sandbox local tools bench tests infra
	$(BIN)/ruff format --check functions sandbox local tools bench tests infra
	$(BIN)/mypy functions
	$(BIN)/actionlint

# pytest on every core (pytest-xdist): a test file runs whole on one worker, so a file's services
# (make run, moto, the sandbox) start once per file as before. TEST_WORKERS=0 runs in one process.
TEST_WORKERS ?= auto
PARALLEL := -n $(TEST_WORKERS) --dist loadfile

# The inner loop (README: Tests): lint, types, and the unit and integration tiers but the tests
# marked slow (the benchmarks' smoke run), in under two minutes here. `make test` runs
# everything, as CI does. Both install the pinned Node tools first (the OpenAPI lint needs them).
check: lint $(NODE_STAMP)
	$(BIN)/pytest $(PARALLEL) -m "not slow" tests/unit tests/integration

# Every test: lint, then all tiers of pytest. tests/infra checks the real layer and runs
# checkov, so both are made first (instant when up to date), as are the Node tools.
# The steps before pytest run side by side where they can (checkov's virtualenv and the Node
# tools install while the dev virtualenv does), each one's output kept together.
test:
	@$(MAKE) --no-print-directory --jobs=4 --output-sync=target lint build $(CHECKOV_STAMP) $(NODE_STAMP)
	$(BIN)/pytest $(PARALLEL)

# Invoke a handler on an event file against moto and the sandbox: make invoke EVENT=events/api-post-im.json
EVENT ?= events/api-post-im.json
invoke: venv
	$(BIN)/python -m local.invoke $(EVENT)

# Move dead letters back to the queue once their cause is fixed (README: Dead letters and replay).
# Against AWS, pass the stage's queue URLs: make redrive REDRIVE_ARGS="--queue-url ... --dead-letter-queue-url ..."
REDRIVE_ARGS ?=
redrive: $(LOCAL_STAMP)
	$(BIN)/python -m tools.redrive $(REDRIVE_ARGS)

# Settle sends whose outcome is unknown now (README: No outcome stays unknown). Against AWS:
# make reconcile RECONCILE_ARGS="--function <ScheduledFunction output>"
RECONCILE_ARGS ?=
reconcile: $(LOCAL_STAMP)
	$(BIN)/python -m tools.reconcile $(RECONCILE_ARGS)

# The whole service on 127.0.0.1, no AWS account, no Docker (README: Running it locally).
# Flags go in RUN_ARGS, e.g. make run RUN_ARGS="--verbose"; PORT=3100 make run moves the ports.
RUN_ARGS ?=
run: $(LOCAL_STAMP)
	@$(BIN)/python -m local.run $(RUN_ARGS)

# --- Infrastructure (infra/, AWS CDK v2 in Python; README: Deploying to AWS) ---
# No Docker: the layer is built with pip's cross-platform install for the Lambda
# runtime (arm64) and compiled to checked-hash bytecode by that runtime's Python
# (infra/artifacts.py). The runtime's version has one home, the context key
# lambdaPythonVersion in cdk.json; `make build LAMBDA_PYTHON_VERSION=3.12` builds
# and deploys for another (synth and deploy pass it on to the app, which refuses
# a layer built for another version). Extra CDK options go in CDK_ARGS, e.g.
# make deploy CDK_ARGS="-c stage=dev -c alarmEmail=ops@example.com".
CDK := npx --no-install cdk
CDK_ARGS ?=
LAMBDA_PYTHON_VERSION ?= $(shell sed -n 's/^ *"lambdaPythonVersion": *"\([0-9.]*\)".*$$/\1/p' cdk.json)
CDK_CONTEXT := -c lambdaPythonVersion=$(LAMBDA_PYTHON_VERSION)

# The dependency layer into build/layer. Rebuilt when requirements.txt, the runtime
# version or the recipe changes (the build's stamp records them); otherwise instant.
# Stops, and ships nothing, when no Python of the runtime's version is found.
build: $(STAMP)
	@test -n "$(LAMBDA_PYTHON_VERSION)" || { echo "lambdaPythonVersion not found in cdk.json" >&2; exit 1; }
	$(BIN)/python -m infra.artifacts layer --python-version $(LAMBDA_PYTHON_VERSION) --out build/layer

# The runtime version the Makefile builds for (tests/infra checks it is cdk.json's).
.PHONY: lambda-python-version
lambda-python-version:
	@echo $(LAMBDA_PYTHON_VERSION)

# Synthesize into cdk.out, with cdk-nag (AwsSolutions) as a validation plugin.
synth: $(NODE_STAMP) build
	$(CDK) synth --quiet $(CDK_CONTEXT) $(CDK_ARGS)

# Needs AWS credentials and a bootstrapped account (npx cdk bootstrap).
deploy: $(NODE_STAMP) build
	$(CDK) deploy $(CDK_CONTEXT) $(CDK_ARGS)

clean:
	rm -rf $(VENV) $(CHECKOV_VENV) cdk.out build .pytest_cache .mypy_cache .ruff_cache

# --- Benchmarks (issue 6; bench/) ---
# Cold start, warm overhead, SQS batch and bulk, each against its target; the table goes
# to stdout and the figures to bench/results/latest.json. Flags go in BENCH_ARGS, e.g.
# make bench BENCH_ARGS="--smoke" or BENCH_ARGS="--only warm-overhead --profile".
BENCH_ARGS ?=
.PHONY: bench
bench: venv
	$(BIN)/python -m bench $(BENCH_ARGS)
