# llmarch: two commands do all set-up.
#   make test   - create/refresh .venv, then run every test (unit, doctests, docs pages, site build, browser)
#   make serve  - create/refresh .venv, build the whole site (executing notebooks) and serve it on 127.0.0.1:8000
# The virtual environment is re-installed only when pyproject.toml is newer than .venv/.stamp.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.stamp
TORCH  ?= torch==2.13.0
PYTEST_ARGS ?=

export NO_MKDOCS_2_WARNING := 1
export PIP_DISABLE_PIP_VERSION_CHECK := 1
export MPLBACKEND := Agg

.PHONY: test serve build venv clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip
	$(BIN)/python -m pip install "$(TORCH)"
	$(BIN)/python -m pip install -e '.[test,docs,hf]'
	touch $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest -rs $(PYTEST_ARGS)

build: $(STAMP)
	$(BIN)/mkdocs build --strict

serve: $(STAMP)
	$(BIN)/mkdocs serve --strict -a 127.0.0.1:8000

clean:
	rm -rf site .cache .artifacts docs/figures/_build
