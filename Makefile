# crlgen: `make demo` and `make test` set everything up themselves (.venv from pyproject).
PY ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
DEMO_OUT ?= out/spring_demo.zarr

.PHONY: demo demo-video test venv bench clean schema

$(BIN)/python:
	@$(PY) -c 'import sys; assert sys.version_info[:2] == (3, 11), "make demo/test need Python 3.11 (the Blender engine, bpy 5.0.1, is 3.11-only); set PY=/path/to/python3.11"'
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

# what the demo needs: the core and the Blender engine
$(VENV)/.stamp-demo: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e ".[blender]"
	@touch $@

# what the tests need: every engine crlgen tests, and the test tools
$(VENV)/.stamp-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e ".[test]"
	@touch $@ $(VENV)/.stamp-demo

venv: $(VENV)/.stamp-test

demo: $(VENV)/.stamp-demo
	$(BIN)/crlgen run static/spring --samples 300 --out $(DEMO_OUT)
	$(BIN)/crlgen inspect $(DEMO_OUT)

demo-video: $(VENV)/.stamp-test
	$(BIN)/crlgen run physics/collision_simple --samples 24 --out out/collision_demo.zarr
	$(BIN)/crlgen inspect out/collision_demo.zarr

# pytest's own script (not `python -m pytest`), so the checkout itself is not on sys.path
test: $(VENV)/.stamp-test
	$(BIN)/pytest -q

bench: $(VENV)/.stamp-test
	$(BIN)/python benchmarks/bench_scm.py
	$(BIN)/python benchmarks/bench_pipeline.py --samples 400
	$(BIN)/python benchmarks/bench_physics.py

schema: $(VENV)/.stamp-test
	$(BIN)/crlgen schema --write

clean:
	rm -rf out .pytest_cache dist build
