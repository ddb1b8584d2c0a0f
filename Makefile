# The two commands of the README: `make demo` and `make test`. Both install what they need first.
PYTHON ?= python3
PIP := $(PYTHON) -m pip

.PHONY: install demo test test-all
install: .installed
.installed: pyproject.toml
	# torch is pinned to the CPU build first, so that nothing pulls a multi-GB CUDA build.
	$(PIP) install --quiet torch==2.13.0
	$(PIP) install --quiet -e '.[dev]'
	# Icarus Verilog runs the cocotb benches (Debian package; needs root, as on CI).
	command -v iverilog >/dev/null || { apt-get update -qq && apt-get install -y -qq iverilog; } \
		|| echo "warning: could not install iverilog; the cocotb benches will be skipped"
	touch .installed

demo: .installed
	$(PYTHON) -m quant.demo
	$(PYTHON) -m host.infer --emulate

test: .installed
	$(PYTHON) -m pytest -q

test-all: .installed
	$(PYTHON) -m pytest -q --run-slow
