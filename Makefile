# Two commands do everything on a fresh machine:
#   make lab    set up, then open JupyterLab on notebooks/
#   make test   set up, then run the whole test suite (what CI runs)
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python

# The Binder replay in `make test` runs the notebooks that use every toolchain, engine and edge platform postBuild
# installs (all of them ran under nbval just before, in the dev venv); `make binder-check` runs every notebook.
BINDER_SMOKE = notebooks/01_quick_start.ipynb notebooks/02_runtimes_side_by_side.ipynb \
	notebooks/15_one_handler_three_platforms.ipynb

.PHONY: setup lab demo test lint fuzz binder-check binder-link clean

setup:
	@bash scripts/setup.sh

lab: setup
	$(VENV)/bin/jupyter lab --notebook-dir=notebooks $(if $(filter 0,$(shell id -u)),--allow-root,)

demo: setup
	$(VENV)/bin/wasmlab demo

lint: setup  # style, the import layers of pyproject.toml's [tool.importlinter] (the data path one way), types
	$(VENV)/bin/ruff check wasmlab tests benchmarks scripts ui-tests/*.py
	$(VENV)/bin/lint-imports --no-cache
	$(VENV)/bin/mypy

test: setup lint
	$(PY) -m pytest -q -ra
	PLOTLY_RENDERER=plotly_mimetype $(PY) -m pytest -q -ra -p no:cacheprovider --nbval --nbval-current-env \
		--nbval-sanitize-with notebooks/sanitize.cfg notebooks/*.ipynb
	$(PY) -m pytest -q -ra -p no:cacheprovider ui-tests
	bash scripts/binder_check.sh $(BINDER_SMOKE)

fuzz: setup
	$(PY) -m tests.fuzz

binder-check:
	bash scripts/binder_check.sh

binder-link:  # the Binder launch link and badge for this checkout's origin remote
	@python3 scripts/binder_link.py

clean:
	rm -rf $(VENV) .venv-py310 tools/npm/node_modules js/node_modules js/lib wasmlab/labextension/static
