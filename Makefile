# Set-up, tests and the demo on a fresh Debian machine with Python 3.11.
#   make test   installs the Debian tools and the Python environment, then runs the test suite
#   make demo   installs the same, then `vircam demo`: simulates a tiny VIRCAM night and reduces it
#               with the chain engine (master calibrations, then the tile, its catalogue, the Phase 3
#               set and the QC report); reruns resume
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMPS := .stamps
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
DEBIAN_PACKAGES := source-extractor scamp swarp gnuastro psfex plplot-driver-cairo \
                   esorex cpl-plugin-hawki chromium
PYTEST_ARGS ?= -n 2
DEMO_DIR ?= demo_out

.PHONY: setup test demo lint clean debian python

setup: debian python

debian: $(STAMPS)/debian
$(STAMPS)/debian: Makefile  # a changed package list installs what is new
	@mkdir -p $(STAMPS)
	@if dpkg -s $(DEBIAN_PACKAGES) >/dev/null 2>&1; then \
	  echo "Debian tools already installed"; \
	else \
	  $(SUDO) apt-get update && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y --no-install-recommends \
	    $(DEBIAN_PACKAGES); \
	fi
	@touch $@

python: $(STAMPS)/python
$(STAMPS)/python: pyproject.toml
	@mkdir -p $(STAMPS)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[test]'
	@touch $@

test: setup
	VIRCAM_STRICT_PLUGINS=1 $(BIN)/python -m pytest $(PYTEST_ARGS)

lint: python
	$(BIN)/ruff check vircamframe recipes plugins tests benchmarks

demo: setup
	$(BIN)/vircam demo --out $(DEMO_DIR)

clean:
	rm -rf $(VENV) $(STAMPS) $(DEMO_DIR) .pytest_cache .ruff_cache
