# The two commands of the README: `make demo` and `make test`. Both install what they need first.
PYTHON ?= python3
PIP := $(PYTHON) -m pip

.PHONY: install demo test test-all results
install: .installed
.installed: pyproject.toml
	# torch is pinned to the CPU build first, so that nothing pulls a multi-GB CUDA build.
	$(PIP) install --quiet torch==2.13.0
	$(PIP) install --quiet -e '.[dev]'
	# The fused SRC kernels (C, OpenMP), built once into the user's cache; training falls back to PyTorch without them.
	$(PYTHON) -m quant.kernels || echo "warning: the fused SRC kernels did not build; training will use the PyTorch path"
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

# Regenerates every committed benchmark, build report and fuzz result, then the tables of
# docs/RESULTS.md (python -m host.results). Long: the board builds take tens of minutes.
results: .installed
	$(PYTHON) -m quant.quantize --model docs/results/models/mnist-rate-src-784-512-100.safetensors --out runs/q512.npz
	$(PYTHON) -m quant.bench_train --device cpu --threads 2 --out docs/benchmarks
	$(PYTHON) -m sim.bench_cycles --network quant/assets/model.npz runs/q512.npz --lanes 1 8 32 --samples 20 \
		--rtl-samples 1 --rtl-lanes 8 --out docs/benchmarks/cycles
	$(PYTHON) -m host.bench_link --samples 100 --lanes 8 --out docs/benchmarks/link
	$(PYTHON) -m host.fuzz --rounds 500 --images 200 --out docs/results/fuzz.json
	$(PYTHON) -m hdl.build --board arty_a7 --out runs/build/arty_a7_35
	$(PYTHON) -m hdl.build --board ulx3s_85f --out runs/build/ulx3s_85f
	for b in arty_a7_35 ulx3s_85f; do mkdir -p docs/builds/$$b-784-128-100-P8; \
		cp runs/build/$$b/report.json runs/build/$$b/report.md docs/builds/$$b-784-128-100-P8/; done
	$(PYTHON) -m host.results
