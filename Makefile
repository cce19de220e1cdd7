# crlgen: `make demo` and `make test` set everything up themselves (.venv from pyproject).
PY ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
DEMO_OUT ?= out/spring_demo.zarr

.PHONY: demo demo-video test venv bench clean schema

$(STAMP): pyproject.toml
	@$(PY) -c 'import sys; assert sys.version_info[:2] == (3, 11), "crlgen needs Python 3.11 (bpy wheels are 3.11-only); set PY=/path/to/python3.11"'
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[test]"
	@touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/crlgen run static/spring --samples 300 --out $(DEMO_OUT)
	$(BIN)/crlgen inspect $(DEMO_OUT)

demo-video: $(STAMP)
	$(BIN)/crlgen run physics/collision_simple --samples 24 --out out/collision_demo.zarr
	$(BIN)/crlgen inspect out/collision_demo.zarr

test: $(STAMP)
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_scm.py
	$(BIN)/python benchmarks/bench_pipeline.py --samples 400
	$(BIN)/python benchmarks/bench_physics.py

schema: $(STAMP)
	$(BIN)/crlgen schema --write

clean:
	rm -rf out .pytest_cache
