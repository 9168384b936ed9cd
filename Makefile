# One command to run AiKore, one to run the whole test suite; each installs what it needs.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test install lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(VENV)/bin/aikore $(ARGS)

test: $(STAMP)
	./scripts/test-deps
	$(PY) -m ruff check .
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(PY) -m ruff check .

# Also installs configurable-http-proxy (npm, bench/.node/), the ComfyUI frontend wheel (bench/.cache/)
# and, with ARGS=--profile, py-spy; prints the machine, the table and the goals.
bench: $(STAMP)
	./scripts/test-deps
	./bench/deps
	$(PY) bench/proxy_bench.py $(ARGS)

clean:
	rm -rf $(VENV) build dist *.egg-info
