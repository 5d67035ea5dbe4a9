# One-line entry points. `make demo` and `make test` are the README's two commands.
CARGO ?= cargo
MMUSIM := target/release/mmusim

.PHONY: demo test bench lint ci build

build:
	$(CARGO) build --release --locked

## The main job on the bundled real traces: four real-machine presets, with 4 KiB pages and
## with transparent huge pages, on four programs (configs/sweeps/demo.toml); results/demo/
## gets metrics.csv (one row per configuration x trace), histograms.csv and a directory per run.
demo: build
	$(MMUSIM) sweep configs/sweeps/demo.toml --out results/demo

## Every test: unit, property, golden and command-line.
test:
	$(CARGO) test --workspace --locked

## Throughput on this machine (release build; inputs are generated under target/bench-data).
bench:
	$(CARGO) bench --locked --bench throughput

lint:
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings

ci: lint test demo
