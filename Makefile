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

# Tools the deployment tests use beside the Python packages: an SSH server and rsync for
# `ray up` against 127.0.0.1 (Debian's openssh-server and rsync) and Azurite for abfs:// (npm).
# A machine without apt-get (or not root) or without npm gets a message; those tests then skip
# naming what is missing.
AZURITE_VERSION := 3.37.0
$(VENV)/.stamp-tools: | $(BIN)/python
	@ok=1; \
	if { ! command -v sshd && [ ! -x /usr/sbin/sshd ]; } >/dev/null || ! command -v rsync >/dev/null; then \
	  if command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
	    echo "installing openssh-server and rsync (apt-get) for the ray-up test"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openssh-server rsync >/dev/null || ok=0; \
	  else \
	    echo "make: sshd or rsync is missing and apt-get is unavailable (or not root): install openssh-server and rsync, or tests/deploy/test_cluster.py skips" >&2; ok=0; \
	  fi; \
	fi; \
	if command -v npm >/dev/null; then \
	  npm install --silent --no-audit --no-fund --prefix $(VENV)/npm azurite@$(AZURITE_VERSION) || ok=0; \
	else \
	  echo "make: npm is missing: install Node.js and npm for the Azurite (abfs://) tests, or they skip" >&2; ok=0; \
	fi; \
	if [ $$ok = 1 ]; then touch $@; fi

venv: $(VENV)/.stamp-test $(VENV)/.stamp-tools

demo: $(VENV)/.stamp-demo
	$(BIN)/crlgen run static/spring --samples 300 --out $(DEMO_OUT)
	$(BIN)/crlgen inspect $(DEMO_OUT)

demo-video: $(VENV)/.stamp-test
	$(BIN)/crlgen run physics/collision_simple --samples 24 --out out/collision_demo.zarr
	$(BIN)/crlgen inspect out/collision_demo.zarr

# pytest's own script (not `python -m pytest`), so the checkout itself is not on sys.path.
# Two pytest-xdist workers, a module (or a contract class) each at a time: the suite waits on
# servers, Ray and subprocesses much of the time, so two share two cores well; every test starts
# its own servers on free loopback ports and private temp dirs. TEST_WORKERS=0 runs it serially.
TEST_WORKERS ?= 2
test: $(VENV)/.stamp-test $(VENV)/.stamp-tools
	$(BIN)/pytest -q -n $(TEST_WORKERS) --dist loadscope --durations=30

bench: $(VENV)/.stamp-test
	$(BIN)/python benchmarks/bench_scm.py
	$(BIN)/python benchmarks/bench_pipeline.py --samples 400
	$(BIN)/python benchmarks/bench_physics.py

schema: $(VENV)/.stamp-test
	$(BIN)/crlgen schema --write

clean:
	rm -rf out .pytest_cache dist build
