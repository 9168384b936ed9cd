# One command to run AiKore, one to run the whole test suite; each installs what it needs.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# Two stamps: running needs AiKore and persistent mode (Selkies); the test toolchain (Playwright,
# Gradio, schemathesis, uv, ...) is several hundred MB more and comes only with `make test`.
RUN_STAMP := $(VENV)/.installed-run
TEST_STAMP := $(VENV)/.installed-test

.PHONY: run test install lint bench clean

$(RUN_STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[persistent]'
	touch $@

$(TEST_STAMP): $(RUN_STAMP)
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

install: $(RUN_STAMP)

run: $(RUN_STAMP)
	$(VENV)/bin/aikore $(ARGS)

test: $(TEST_STAMP)
	./scripts/test-deps
	$(PY) -m ruff check .
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(TEST_STAMP)
	$(PY) -m ruff check .

# Also installs configurable-http-proxy (npm, bench/.node/), the ComfyUI frontend wheel (bench/.cache/)
# and, with ARGS=--profile, py-spy; prints the machine, the table and the goals.
bench: $(TEST_STAMP)
	./scripts/test-deps
	./bench/deps
	$(PY) bench/proxy_bench.py $(ARGS)

clean:
	rm -rf $(VENV) build dist *.egg-info
