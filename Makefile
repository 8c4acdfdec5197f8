# The two commands a newcomer needs: `make run` and `make test`.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
# One stamp per requirement set, named after its files' checksum: editing one installs again.
STAMP := $(VENV)/.installed-$(shell cat requirements.txt requirements-local.txt requirements-dev.txt | cksum | cut -d' ' -f1)
LOCAL_STAMP := $(VENV)/.installed-local-$(shell cat requirements.txt requirements-local.txt | cksum | cut -d' ' -f1)
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20

.PHONY: venv test lint invoke run redrive reconcile clean build synth deploy

# Create or refresh the virtualenv whenever a requirements file changes. The dev set
# includes the local one, so `make run` after `make test` installs nothing.
$(STAMP): requirements.txt requirements-local.txt requirements-dev.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@rm -f $(VENV)/.installed-*
	@touch $@ $(LOCAL_STAMP)

# Only what `make run` needs, for a fast first start. --no-compile: bytecode is written
# on first import, for the modules the service uses, rather than now for every file.
$(LOCAL_STAMP): requirements.txt requirements-local.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-compile -r requirements-local.txt
	@rm -f $(VENV)/.installed-local-*
	@touch $@

venv: $(STAMP)

lint: venv
	$(BIN)/ruff check functions sandbox local tools bench tests infra
	$(BIN)/ruff format --check functions sandbox local tools bench tests infra
	$(BIN)/mypy functions

# Every test: lint, then all tiers of pytest.
test: lint
	$(BIN)/pytest

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
# make reconcile RECONCILE_ARGS="--function <ScheduledFunctionName output>"
RECONCILE_ARGS ?=
reconcile: $(LOCAL_STAMP)
	$(BIN)/python -m tools.reconcile $(RECONCILE_ARGS)

# The whole service on 127.0.0.1, no AWS account, no Docker (README: Running it locally).
# Flags go in RUN_ARGS, e.g. make run RUN_ARGS="--verbose"; PORT=3100 make run moves the ports.
RUN_ARGS ?=
run: $(LOCAL_STAMP)
	@$(BIN)/python -m local.run $(RUN_ARGS)

# --- Infrastructure (infra/, AWS CDK v2 in Python; README: Deploying to AWS) ---
# No Docker: the layer is built with pip's cross-platform install for the
# Lambda runtime (arm64, names.LAMBDA_PYTHON_VERSION). Extra CDK options go in
# CDK_ARGS, e.g. make deploy CDK_ARGS="-c stage=dev -c alarmEmail=ops@example.com".
CDK := npx --no-install cdk
CDK_ARGS ?=
NODE_STAMP := node_modules/.package-lock.json
LAMBDA_PYTHON_VERSION := $(shell sed -n 's/^LAMBDA_PYTHON_VERSION = "\(.*\)"$$/\1/p' functions/gateway/names.py)
LAYER_DIR := build/layer
LAYER_STAMP := build/.layer-py$(LAMBDA_PYTHON_VERSION)-$(shell cat requirements.txt | cksum | cut -d' ' -f1)
# Left out of the layer: boto3, botocore and s3transfer come with Lambda's
# Python runtime; the gateway calls only phonenumbers.parse, is_valid_number and
# format_number (tests/infra checks), so the geocoder, carrier and time zone
# data (over 40 MB) go too.
LAYER_PRUNE := bin boto3 boto3-*.dist-info botocore botocore-*.dist-info s3transfer s3transfer-*.dist-info \
	phonenumbers/geodata phonenumbers/carrierdata phonenumbers/tzdata \
	phonenumbers/geocoder.py* phonenumbers/carrier.py* phonenumbers/timezone.py*

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund

# The dependency layer, rebuilt when requirements.txt or the runtime version changes.
$(LAYER_STAMP): requirements.txt | $(STAMP)
	@test -n "$(LAMBDA_PYTHON_VERSION)" || { echo "LAMBDA_PYTHON_VERSION not found in names.py" >&2; exit 1; }
	rm -rf $(LAYER_DIR) build/.layer-*
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-compile \
		--only-binary=:all: --platform manylinux2014_aarch64 --implementation cp \
		--python-version $(LAMBDA_PYTHON_VERSION) --target $(LAYER_DIR)/python -r requirements.txt
	cd $(LAYER_DIR)/python && rm -rf $(LAYER_PRUNE)
	find $(LAYER_DIR) -name __pycache__ -type d -prune -exec rm -rf {} +
	@du -sh $(LAYER_DIR)
	@touch $@

build: $(LAYER_STAMP)

# Synthesize into cdk.out, with cdk-nag (AwsSolutions) as a validation plugin.
synth: $(NODE_STAMP) $(LAYER_STAMP) | $(STAMP)
	$(CDK) synth --quiet $(CDK_ARGS)

# Needs AWS credentials and a bootstrapped account (npx cdk bootstrap).
deploy: $(NODE_STAMP) $(LAYER_STAMP) | $(STAMP)
	$(CDK) deploy $(CDK_ARGS)

clean:
	rm -rf $(VENV) cdk.out build .pytest_cache .mypy_cache .ruff_cache

# --- Benchmarks (issue 6; bench/) ---
# Cold start, warm overhead, SQS batch and bulk, each against its target; the table goes
# to stdout and the figures to bench/results/latest.json. Flags go in BENCH_ARGS, e.g.
# make bench BENCH_ARGS="--smoke" or BENCH_ARGS="--only warm-overhead --profile".
BENCH_ARGS ?=
.PHONY: bench
bench: venv
	$(BIN)/python -m bench $(BENCH_ARGS)
