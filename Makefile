# Every target builds its own virtual environment from nothing but Python 3.11+, with what
# that target needs: the CDK app's targets (synth, deploy, destroy) only the base and infra
# extras, no PyTorch; the rest everything. One .venv: a later target adds what it lacks.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test java chromium lint bench bench-inference bench-local synth deploy destroy clean

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/activate
	$(BIN)/python -m pip install --quiet -e '.[dev,local,model,training,infra]'
	touch $@ $(VENV)/.installed-infra

$(VENV)/.installed-infra: pyproject.toml | $(BIN)/activate
	$(BIN)/python -m pip install --quiet -e '.[infra]'
	touch $@

demo: $(VENV)/.installed  ## the whole system locally on real photos (ARGS="--photos DIR --keep-running")
	$(BIN)/bincheck demo $(ARGS)

# TorchServe, which tests/test_toolkit_serving.py starts as the endpoint's container does,
# runs on Java 17: Debian's package where java is missing (as root), else a message and
# that test is skipped.
java:
	@command -v java >/dev/null 2>&1 || { \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
			{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
				apt-get install -y -qq --no-install-recommends openjdk-17-jre-headless; } \
				|| echo "make: apt-get could not install openjdk-17-jre-headless: no java: the TorchServe serving test will be skipped."; \
		else \
			echo "make: no java: the TorchServe serving test will be skipped." \
				"Install Java 17 (Debian/Ubuntu: sudo apt-get install openjdk-17-jre-headless)."; \
		fi; }

# The review page's browser test drives Debian's chromium: installed the same way.
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
			{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
				apt-get install -y -qq --no-install-recommends chromium chromium-driver; } \
				|| echo "make: apt-get could not install chromium chromium-driver: no chromium: the review page's browser test will be skipped."; \
		else \
			echo "make: no chromium: the review page's browser test will be skipped." \
				"Install it (Debian/Ubuntu: sudo apt-get install chromium chromium-driver)."; \
		fi; }

test: $(VENV)/.installed java chromium  ## lint, then the whole test suite
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy contract lambdas/checker/settings.py \
		lambdas/retraining/request.py lambdas/retraining/fields.py lambdas/retraining/plan.py \
		lambdas/retraining/decision.py lambdas/retraining/runs.py \
		lambdas/retraining/instance_types.py lambdas/review/inputs.py lambdas/review/errors.py \
		lambdas/review/settings.py lambdas/review/views.py
	$(BIN)/pytest $(ARGS)

bench: $(VENV)/.installed  ## checker throughput and cold import time
	$(BIN)/python benchmarks/checker_throughput.py $(ARGS)

bench-inference: $(VENV)/.installed  ## per-request handler vs bincheck serve, side by side
	$(BIN)/python benchmarks/inference_throughput.py $(ARGS)

bench-local: $(VENV)/.installed  ## 2,000 uploads through the local stack, faults and duplicates
	$(BIN)/python benchmarks/local_stack_load.py $(ARGS)

CDK := node_modules/.bin/cdk
$(CDK): package.json
	npm install --no-audit --no-fund --silent
	touch $@

synth: $(VENV)/.installed-infra $(CDK)  ## cdk synth (offline, no Docker); ARGS for -c bincheck=...
	JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION=20 $(CDK) synth $(ARGS)

deploy: $(VENV)/.installed-infra $(CDK)  ## cdk deploy to the account and region of your AWS profile
	JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION=20 $(CDK) deploy $(ARGS)

destroy: $(VENV)/.installed-infra $(CDK)
	JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION=20 $(CDK) destroy $(ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache node_modules cdk.out
