# The two commands a newcomer needs: `make run` and `make test`. Both build .venv first on a fresh machine.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test check unit integration e2e bench clean

$(STAMP): requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

## make run: the whole service on an embedded local AWS (ports LOCAL_AWS_PORT/PORT/DEV_PORT, SEED=0 to skip the demo roster)
run: $(STAMP)
	$(PY) -m local.stack

## make test: every test (unit, integration against moto, end-to-end against the local stack)
test: $(STAMP)
	$(PY) -m pytest -q

## make check: the whole suite with the full-size load test (1,000 presses)
check: $(STAMP)
	LOAD_PRESSES=1000 $(PY) -m pytest -q

unit: $(STAMP)
	$(PY) -m pytest -q tests/unit

integration: $(STAMP)
	$(PY) -m pytest -q tests/integration

e2e: $(STAMP)
	$(PY) -m pytest -q tests/e2e

## make bench: benchmarks on the local stack; writes BENCHMARKS.md (BENCH_QUICK=1 for the short CI run)
bench: $(STAMP)
	$(PY) -m bench.run

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis artifacts

## make package STAGE=prod: the deployable template build/$(STAGE)/sam.json + deployment.zip (Lambdas, API, infra/)
STAGE ?= dev
package: $(STAMP)
	$(PY) infra/build_template.py --stage $(STAGE) --out build/$(STAGE)

## make lint-template STAGE=prod: cfn-lint on the packaged template (the state machine definition included)
lint-template: package
	$(VENV)/bin/cfn-lint build/$(STAGE)/sam.json

.PHONY: package lint-template
