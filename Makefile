# One-line entry points. `make demo` and `make test` are the README's two commands.
CARGO ?= cargo
MMUSIM := target/release/mmusim

.PHONY: demo test bench lint ci build

build:
	$(CARGO) build --release --locked

## The main job on the bundled real traces: inspect them, then convert one to mmusim's binary format.
demo: build
	$(MMUSIM) trace info traces/sort.lackey.zst traces/randaccess.lackey.zst
	mkdir -p results/demo
	$(MMUSIM) convert traces/randaccess.lackey.zst results/demo/randaccess.mmt
	$(MMUSIM) trace info results/demo/randaccess.mmt

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
