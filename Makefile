# Attention Lab — two commands for users: `make lab` and `make test`.
# Both create .venv and install everything the first time; afterwards a stamp
# keyed on the requirements' hash makes the install step a no-op.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
# d2l pins numpy 1.23.5 & co., which break on current Python: install it
# without its pins (its real runtime needs are in requirements.txt).
D2L    := d2l==1.0.3
KERNEL := attention-lab
HASH   := $(shell cat requirements.txt pyproject.toml | sha256sum | cut -c1-16)
STAMP  := $(VENV)/.installed-$(HASH)
# JupyterLab refuses to run as root unless told to.
ROOT_FLAG := $(if $(filter 0,$(shell id -u)),--allow-root,)
NOTEBOOKS := $(sort $(wildcard notebooks/*.ipynb))
# notebooks that train a model and store it in attention_lab/weights/ (make checkpoints)
TRAINED   := $(shell grep -l save_checkpoint notebooks/*.ipynb)

.PHONY: lab test install lint unit nbval notebooks checkpoints e2e bench bench-ui clean

lab: install  ## open JupyterLab on notebooks/
	$(BIN)/jupyter lab --notebook-dir=notebooks $(ROOT_FLAG)

test: install lint  ## every check: ruff, unit/property/parity tests, strict nbval, browser test
	$(BIN)/pytest
	@if $(BIN)/python tests/e2e/browser.py --check; then $(MAKE) --no-print-directory e2e; \
	else echo "No Chromium found: browser test skipped (CI installs one; see README)."; fi

install: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade --quiet pip
	$(BIN)/pip install --quiet -r requirements.txt
	$(BIN)/pip install --quiet --no-deps $(D2L)
	$(BIN)/pip install --quiet --no-deps --no-build-isolation -e .
	$(BIN)/python -m ipykernel install --sys-prefix --name $(KERNEL) \
		--display-name "Python (Attention Lab)"
	rm -f $(VENV)/.installed-*
	touch $@

lint: install
	$(BIN)/ruff check .

unit: install  ## unit, property and parity tests only
	$(BIN)/pytest tests

nbval: install  ## strict nbval on every notebook
	$(BIN)/pytest notebooks

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

e2e: install  ## JupyterLab in a real browser: every slider moved, screenshots saved
	$(BIN)/pytest -m e2e tests/e2e

bench: install  ## attention implementations' cost and the whole series' run time
	$(BIN)/python benchmarks/bench_attention.py
	$(BIN)/python benchmarks/bench_notebooks.py

bench-ui: install  ## key press -> new figure latency of every explorer, in a real browser
	$(BIN)/python tests/e2e/bench_ui.py

clean:
	rm -rf $(VENV) .ruff_cache
