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
	$(PYTHON) -m quant.bench_train --device cpu --threads 2 --out docs/benchmarks
	$(PYTHON) -m sim.bench_cycles --lanes 8 16 --samples 100 --rtl-samples 2 --rtl-lanes 8 --out docs/benchmarks/cycles
	$(PYTHON) -m host.bench_link --samples 1000 --lanes 8 --out docs/benchmarks/link
	$(PYTHON) -m quant.bench_encoder --out docs/results/encoder.json
	$(PYTHON) -m host.fuzz --rounds 500 --images 200 --out docs/results/fuzz.json
	for m in latency rate; do d=arty_a7_35-$$m-784-224-100-P8; \
		$(PYTHON) -m hdl.build --board arty_a7 --model quant/assets/$$m/model.npz --out runs/build/$$d; \
		mkdir -p docs/builds/$$d; cp runs/build/$$d/report.json runs/build/$$d/report.md docs/builds/$$d/; done
	for p in 10 11 12 13 14; do d=arty_a7_35-latency-784-224-100-P$$p; \
		$(PYTHON) -m hdl.build --board arty_a7 --lanes $$p --out runs/build/$$d; \
		mkdir -p docs/builds/$$d; cp runs/build/$$d/report.json runs/build/$$d/report.md docs/builds/$$d/; done
	$(PYTHON) -m quant.quantize --model docs/results/models/mnist-rate-src-784-512-100.safetensors --limit-test 100 \
		--out runs/build/q512.npz
	d=arty_a7_100-rate-784-512-100-P16; \
		$(PYTHON) -m hdl.build --board arty_a7_100 --model runs/build/q512.npz --lanes 16 --out runs/build/$$d; \
		mkdir -p docs/builds/$$d; cp runs/build/$$d/report.json runs/build/$$d/report.md docs/builds/$$d/
	$(PYTHON) -m hdl.build --board ulx3s_85f --seeds 1 2 3 4 --out runs/build/ulx3s_85f-latency-784-224-100-P8
	$(PYTHON) -m hdl.build --reseed runs/build/ulx3s_85f-latency-784-224-100-P8 --seeds 5 6 7 8
	mkdir -p docs/builds/ulx3s_85f-latency-784-224-100-P8
	cp runs/build/ulx3s_85f-latency-784-224-100-P8/report.* docs/builds/ulx3s_85f-latency-784-224-100-P8/
	$(PYTHON) -m sim.bench_cycles --network docs/results/models/fashion-rate-src-784-128-R128-100/model.npz \
		--dataset fashion-mnist --rtl-samples 2 --out docs/benchmarks/cycles-recurrent
	d=arty_a7_35-recurrent-784-128-R128-100-P8; \
		$(PYTHON) -m hdl.build --board arty_a7 --model docs/results/models/fashion-rate-src-784-128-R128-100/model.npz \
		--out runs/build/$$d; mkdir -p docs/builds/$$d; cp runs/build/$$d/report.json runs/build/$$d/report.md docs/builds/$$d/
	$(PYTHON) -m hdl.unit_timing encoder accumulate update lane --out runs/unit_timing
	cp runs/unit_timing/report.json docs/benchmarks/unit_timing.json
	$(PYTHON) -m host.defaults --out docs/results/defaults.json
	$(PYTHON) -m host.results
