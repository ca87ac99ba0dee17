# Attention Lab — two commands for users: `make lab` and `make test`.
# Both create .venv and install everything the first time; afterwards a stamp
# keyed on the requirements' hash makes the install step a no-op.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   ?= .venv
BIN    := $(VENV)/bin
# `make test-latest` builds this one from pyproject.toml's bounds, newest releases first
LATEST ?= .venv-latest
# d2l pins numpy 1.23.5 & co., which break on current Python: install it
# without its pins (its real runtime needs are in pyproject.toml and requirements.txt).
D2L    := d2l==1.0.3
KERNEL := attention-lab
# this project, editable, with the front ends and the checks (pyproject.toml's extras)
PROJECT := -e ".[lab,test]"
HASH   := $(shell cat requirements.txt pyproject.toml | sha256sum | cut -c1-16)
STAMP  := $(VENV)/.installed-$(HASH)
# JupyterLab refuses to run as root unless told to.
ROOT_FLAG := $(if $(filter 0,$(shell id -u)),--allow-root,)
NOTEBOOKS := $(sort $(wildcard notebooks/*.ipynb))
# notebooks that train a model and store it in attention_lab/weights/ (make checkpoints):
# the ones that call checkpoints.train_or_load
TRAINED   := $(shell grep -l train_or_load notebooks/*.ipynb)
# `make nbval-portable`: other CPU kernels than this machine's, on one thread.
# ATen's portable kernels instead of its AVX2/AVX-512 ones, and MKL's reproducible
# SSE2 code path instead of the one it picks for this CPU (MKL_ENABLE_INSTRUCTIONS
# changes nothing on an AMD CPU; MKL_CBWR=COMPATIBLE changes the results there and
# on Intel). A stored output that depends on the CPU or the thread count fails here.
PORTABLE ?= ATEN_CPU_CAPABILITY=default OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 MKL_CBWR=COMPATIBLE
# `make gpu-check` writes benchmarks/results/<date>-cuda.json
GPU_RESULT := benchmarks/results/$(shell date +%F)-cuda.json

.PHONY: lab notebook7 test install lint unit nbval nbval-portable notebooks checkpoints e2e bench \
	bench-cummax bench-ui test-latest gpu-check clean

lab: install  ## open JupyterLab on notebooks/
	$(BIN)/jupyter lab --notebook-dir=notebooks $(ROOT_FLAG)

notebook7: install  ## open Jupyter Notebook 7 on notebooks/
	$(BIN)/jupyter notebook --notebook-dir=notebooks $(ROOT_FLAG)

test: install lint  ## every check: ruff, unit/property/parity tests, strict nbval (twice), browser test
	$(BIN)/pytest
	$(MAKE) --no-print-directory nbval-portable
	@if $(BIN)/python tests/e2e/browser.py --check; then $(MAKE) --no-print-directory e2e; \
	else echo "No Chromium found: browser test skipped (CI installs one; see README)."; fi

install: $(STAMP)

# $(call venv,DIR,PIP ARGUMENTS): DIR made with $(PYTHON) (refused if made with another
# Python), the arguments installed, d2l without its pins, the notebooks' kernel.
define venv
	@test ! -x $(1)/bin/python || test "$$($(1)/bin/python -c 'import sys; print(sys.version_info[:2])')" \
		= "$$($(PYTHON) -c 'import sys; print(sys.version_info[:2])')" || { echo "$(1) was made \
	with another Python than $(PYTHON): remove it, or name another folder (VENV=, LATEST=)" >&2; \
	exit 1; }
	test -x $(1)/bin/python || $(PYTHON) -m venv $(1)
	$(1)/bin/python -m pip install --upgrade --quiet pip setuptools
	$(1)/bin/pip install --quiet --no-build-isolation $(2)
	$(1)/bin/pip install --quiet --no-deps $(D2L)
	$(1)/bin/python -m ipykernel install --sys-prefix --name $(KERNEL) \
		--display-name "Python (Attention Lab)"
endef

# The pins and pyproject's bounds in one resolve: a pin outside its bound is a
# resolver error here, not a silent upgrade.
$(STAMP): requirements.txt pyproject.toml
	$(call venv,$(VENV),-r requirements.txt $(PROJECT))
	rm -f $(VENV)/.installed-*
	touch $@

lint: install
	$(BIN)/ruff check .

unit: install  ## unit, property and parity tests only
	$(BIN)/pytest tests

nbval: install  ## strict nbval on every notebook
	$(BIN)/pytest notebooks

nbval-portable: install  ## strict nbval again on other CPU kernels and one thread ($(PORTABLE))
	$(PORTABLE) $(BIN)/pytest notebooks

# No stamp: every run asks for the newest releases, so a release that breaks the
# series fails here the day it appears.
test-latest:  ## unit tests and strict nbval on the newest releases pyproject.toml allows
	$(call venv,$(LATEST),--upgrade --upgrade-strategy eager $(PROJECT))
	$(LATEST)/bin/python tests/test_dependencies.py
	$(LATEST)/bin/pytest

notebooks: install  ## re-execute every notebook top to bottom and save it with outputs
	@for nb in $(NOTEBOOKS); do echo "executing $$nb"; \
		$(BIN)/jupyter nbconvert --to notebook --execute --inplace \
			--ExecutePreprocessor.timeout=600 --ExecutePreprocessor.record_timing=False \
			--ExecutePreprocessor.store_widget_state=False "$$nb" || exit 1; \
	done

checkpoints: install  ## retrain every model the notebooks load (attention_lab/weights/*.pt)
	@for nb in $(TRAINED); do echo "training $$nb"; \
		ATTENTION_LAB_RETRAIN=1 $(BIN)/jupyter nbconvert --to notebook --execute --stdout \
			--ExecutePreprocessor.timeout=3600 "$$nb" > /dev/null || exit 1; \
	done

e2e: install  ## JupyterLab and Notebook 7 in a real browser: every control moved, screenshots saved
	$(BIN)/pytest -m e2e tests/e2e

bench: install  ## attention implementations' cost and the whole series' run time
	$(BIN)/python benchmarks/bench_attention.py
	$(BIN)/python benchmarks/bench_notebooks.py

bench-cummax: install  ## chapter 10's claims at the article's scale (hidden 512, 8 heads, 6 layers)
	$(BIN)/python benchmarks/bench_cummax.py

bench-ui: install  ## key press -> new figure latency of every explorer, in a real browser
	$(BIN)/python tests/e2e/bench_ui.py

gpu-check: install  ## on a CUDA GPU: CUDA tests, every explorer on CUDA vs CPU, GPU benchmark
	@$(BIN)/python -c "import sys, torch; torch.cuda.is_available() or sys.exit('gpu-check: \
	no CUDA device (torch.cuda.is_available() is False here): run it on a machine with an \
	NVIDIA GPU and a CUDA build of torch')"
	$(BIN)/pytest tests -k "cuda or gpu" -rs
	$(BIN)/python benchmarks/bench_attention.py --device cuda --out $(GPU_RESULT)

clean:
	rm -rf $(VENV) $(LATEST) .ruff_cache
