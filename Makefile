# The two commands a newcomer needs: `make run` and `make test`. Both build .venv first on a fresh machine.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test check unit contract integration e2e bench clean lint

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
	$(PY) -m pytest -q tests/unit tests/services

## make contract: the store contracts against both implementations (memory and DynamoDB on moto)
contract: $(STAMP)
	$(PY) -m pytest -q tests/contract

integration: $(STAMP)
	$(PY) -m pytest -q tests/integration

e2e: $(STAMP)
	$(PY) -m pytest -q tests/e2e

## make bench: benchmarks on the local stack; writes BENCHMARKS.md (BENCH_QUICK=1 for the short CI run)
bench: $(STAMP)
	$(PY) -m bench.run

## make lint: ruff's pyflakes rules (unused imports and names, undefined names) on the code and the tests
lint: $(STAMP)
	$(VENV)/bin/ruff check --select F,E9 --line-length 120 app.py chalicelib local infra tools bench tests

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis artifacts

## make package STAGE=prod: the deployable template build/$(STAGE)/sam.json + deployment.zip (Lambdas, API, infra/)
STAGE ?= dev
package: $(STAMP)
	$(PY) infra/build_template.py --stage $(STAGE) --out build/$(STAGE)

## make lint-template STAGE=prod: cfn-lint on the packaged template (the state machine definition included), and on
## the template as CloudFormation expands it (the SAM transform, run offline by infra/sam_transform.py)
lint-template: package
	$(VENV)/bin/cfn-lint build/$(STAGE)/sam.json
	$(PY) infra/sam_transform.py build/$(STAGE)/sam.json build/$(STAGE)/transformed.json
	$(VENV)/bin/cfn-lint build/$(STAGE)/transformed.json

## make deploy STAGE=prod ARTIFACT_BUCKET=my-artifacts PARAMETERS='TokenJwksUrl=... TokenIssuer=...' (docs/DEPLOY.md)
## The template is over CloudFormation's 51,200-byte inline limit: both the code and the template go through the
## artifact bucket. PARAMETERS may be left out on later deploys (the stack keeps its previous values).
STACK ?= trust-safety-alerts-$(STAGE)
AWS ?= aws
ARTIFACT_BUCKET ?=
PARAMETERS ?=
deploy: artifact-bucket-given lint-template
	$(AWS) cloudformation package --template-file build/$(STAGE)/sam.json \
	  --s3-bucket $(ARTIFACT_BUCKET) --s3-prefix $(STACK) --output-template-file build/$(STAGE)/packaged.yaml
	$(AWS) cloudformation deploy --template-file build/$(STAGE)/packaged.yaml --stack-name $(STACK) \
	  --s3-bucket $(ARTIFACT_BUCKET) --s3-prefix $(STACK) \
	  --capabilities CAPABILITY_IAM CAPABILITY_AUTO_EXPAND --no-fail-on-empty-changeset \
	  $(if $(PARAMETERS),--parameter-overrides $(PARAMETERS))

## make check-sms ORIGINATION_NUMBER=+18005550100 [STACK=...]: the account's SMS setup (number, resource policies,
## two-way SMS to the stack's topic, sandbox, spend limit), read-only; exit 1 on anything missing (docs/DEPLOY.md)
ORIGINATION_NUMBER ?=
check-sms: $(STAMP)
	@test -n "$(ORIGINATION_NUMBER)" || { echo "ORIGINATION_NUMBER=+1... is required" >&2; exit 2; }
	$(PY) tools/check_sms_setup.py --origination-number "$(ORIGINATION_NUMBER)" --stack $(STACK)

## make smoke API_URL=<EndpointURL> SMOKE_ADMIN_TOKEN=<admin token> SMOKE_PHONE=+1... [INBOUND_SMS_TOPIC_ARN=...]
## The last step of a deploy: health, a test responder, a `test` incident paged to it, its ACK, clean-up (tools/smoke.py)
smoke: $(STAMP)
	$(PY) tools/smoke.py

artifact-bucket-given:
	@test -n "$(ARTIFACT_BUCKET)" || { echo "ARTIFACT_BUCKET=<bucket> is required (docs/DEPLOY.md, step 2)" >&2; exit 2; }

.PHONY: package lint-template deploy artifact-bucket-given check-sms smoke
