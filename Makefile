# The two commands of the README:
#   make reproduce   run every numbered notebook with papermill (PROFILE=smoke by default)
#   make test        ruff, then unit tests + nbval over the notebooks (what CI runs)
#   make book        the executed notebooks as an offline HTML book in book/_build/html (never re-executes)
# Both create or reuse a local virtual environment from requirements.txt.

PYTHON  ?= python3
VENV    ?= .venv
PROFILE ?= smoke
# Optional: DEVICE=cuda, ONLY=00_ (a notebook-name substring), SET="name=value ..." (notebook parameters)
DEVICE  ?=
ONLY    ?=
SET     ?=

BIN   := $(VENV)/bin
# The stamp is rebuilt only when the pins or the package metadata change, so a second
# `make test` starts in seconds.
STAMP := $(VENV)/.installed
# Jupyter kernels started by papermill/nbval resolve "python" through PATH: point it at the venv.
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: venv reproduce test book clean-smoke capability-matrix

venv: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	@touch $@

reproduce: $(STAMP)
	$(BIN)/python -m fusionlib.study.reproduce --profile $(PROFILE) $(if $(DEVICE),--device $(DEVICE)) $(if $(ONLY),--only $(ONLY)) $(foreach s,$(SET),--set $(s))

# Two pytest processes side by side, one thread each (2 cores): the unit tests, and the notebooks (nbval)
# in name order in one process (90-92 read what the paper notebooks wrote; 21 and 22 share a training run).
# The notebooks' report is printed after the unit tests'; the target fails if either fails.
NBVAL_LOG := .cache/nbval.log
test: $(STAMP)
	@mkdir -p .cache
	$(BIN)/ruff check fusionlib data_prep tests notebooks
	@export OMP_NUM_THREADS=1 TQDM_DISABLE=1 MPLBACKEND=Agg; \
	$(BIN)/python -m pytest -q -p no:cacheprovider --nbval-lax notebooks > $(NBVAL_LOG) 2>&1 & nb=$$!; \
	$(BIN)/python -m pytest -q -p no:cacheprovider tests; unit=$$?; \
	wait $$nb; notebooks=$$?; echo "--- notebooks (nbval) ---"; cat $(NBVAL_LOG); \
	test $$unit -eq 0 -a $$notebooks -eq 0

book: $(STAMP)
	$(BIN)/python -m fusionlib.study.book

# Float results differ in the last digits across CPU kernels and threads. Run a test selection under each
# ATEN_CPU_CAPABILITY (one the CPU lacks falls back to the best it has) with 1 and 2 threads, and print the
# agreements the tests measure (the bounds of tests/dcmif/test_control.py come from them; docs/dcmif.md).
CAPS  ?= default avx2 avx512
TESTS ?= tests/dcmif/test_control.py
capability-matrix: $(STAMP)
	@for cap in $(CAPS); do for t in 1 2; do echo "== ATEN_CPU_CAPABILITY=$$cap, $$t thread(s)"; \
	  out=$$(ATEN_CPU_CAPABILITY=$$cap OMP_NUM_THREADS=$$t $(BIN)/python -m pytest -q -s -p no:cacheprovider $(TESTS) 2>&1); \
	  rc=$$?; echo "$$out" | grep -oE "agreement [A-Z]+: .*|[0-9]+ (passed|failed|error).*"; test $$rc -eq 0 || exit 1; done; done

clean-smoke:
	rm -rf reports/smoke reports/executed/smoke
