# Set-up is automatic: the first `make demo` or `make test` creates .venv and installs lmlab.
# `make demo` installs the core and plotting only (.[plot]: what the demo draws with); `make test`
# installs every extra (.[dev]: transformers, lm-eval, ray, tensorboard, wandb, pyarrow...), upgrading
# a demo install in place. One stamp per install, so each runs again when pyproject.toml changes.
# torch is pinned first because any looser spec pulls the multi-GB CUDA build on a CPU box;
# override with `make TORCH=torch test` where that is what you want.
PYTHON ?= python3
TORCH ?= torch==2.13.0
VENV := .venv
BIN := $(VENV)/bin
TORCH_STAMP := $(VENV)/.lmlab-torch
DEMO_STAMP := $(VENV)/.lmlab-plot
DEV_STAMP := $(VENV)/.lmlab-dev

.PHONY: install demo test bench clean browser

install: $(DEV_STAMP)

$(TORCH_STAMP):
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q $(TORCH)
	touch $@

$(DEMO_STAMP): pyproject.toml | $(TORCH_STAMP)
	$(BIN)/python -m pip install -q -e '.[plot]'
	touch $@

# .[dev] holds .[plot]: the demo stamp is touched too, so a later `make demo` installs nothing more
$(DEV_STAMP): pyproject.toml | $(TORCH_STAMP)
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $@ $(DEMO_STAMP)

demo: $(DEMO_STAMP)
	$(BIN)/lmlab demo

# one worker per core (pytest-xdist); tests/conftest.py gives each its share of the cores
test: $(DEV_STAMP) browser
	$(BIN)/python -m pytest -q -n auto

# The report's browser test opens pages in Debian's chromium (a pip-downloaded browser cannot be fetched in CI).
# Installed with apt when missing (as root, or through sudo); with no apt the test itself fails with instructions.
browser:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
	{ if command -v apt-get >/dev/null 2>&1; then \
	    SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	    $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium \
	      || echo "make: could not install chromium; the report's browser test will fail" >&2; \
	  else echo "make: chromium is missing and apt-get is not available; install chromium" >&2; fi; }

clean:
	rm -rf $(VENV) runs .pytest_cache
