# `make test` works on a fresh machine: it creates .venv, installs bgpd with its test
# extras and runs the whole suite.  `make demo` runs the main job.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?=

.PHONY: venv test test-fast demo lint format bench-codec bench-rr clean lab

$(BIN)/.installed: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $@

venv: $(BIN)/.installed

demo: venv
	$(BIN)/python examples/demo.py $(DEMO_ARGS)

test: venv
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

# The developer's quick loop: everything but the long scenario tests (marked `slow` in
# tests/conftest.py). `make test` runs them all and is the test command (CI: .ci/run).
test-fast: venv
	$(BIN)/python -m pytest -q -m "not slow" $(PYTEST_ARGS)

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: venv
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

$(BIN)/.bench: $(BIN)/.installed
	$(BIN)/pip install -q -e '.[test,bench]'
	touch $@

bench-codec: $(BIN)/.bench
	$(BIN)/python bench/codec.py

bench-rr: $(BIN)/.bench
	$(BIN)/python bench/rr.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache

# The Calico cluster lab (tests/lab/README.md): every scenario, bgpd-bird and BIRD 1.6.8
# side by side; root, iproute2, bird2, BIRD 1.6.8 (tools/bird16.sh). The figures table is
# printed at the end and written to $(LAB_FIGURES) (and .json beside it).
LAB_FIGURES ?= .cache/lab-figures.md
lab: venv
	mkdir -p $(dir $(LAB_FIGURES))
	BGPD_LAB_FULL=1 BGPD_LAB_FIGURES=$(LAB_FIGURES) $(BIN)/python -m pytest -q tests/lab $(PYTEST_ARGS)

# Fuzzing (fuzz/README.md). `make fuzz`: atheris, coverage-guided, FUZZ_RUNS inputs per target
# (decoder, fsm, fsm_ops; 10 million each take 6-7 hours on one core; FUZZ_ARGS go to
# libFuzzer, e.g. FUZZ_ARGS=-fork=4). `make fuzz-short`: the CI version, the built-in mutator,
# 20,000 inputs per target in about 12 s, no extra dependency.
.PHONY: fuzz fuzz-short
FUZZ_RUNS ?= 10000000
fuzz: venv
	$(BIN)/pip install -q atheris
	$(BIN)/python fuzz/run.py all --engine atheris --runs $(FUZZ_RUNS) -- $(FUZZ_ARGS)

fuzz-short: venv
	$(BIN)/python fuzz/run.py all --engine builtin --runs 20000 --seed $(or $(FUZZ_SEED),1)
