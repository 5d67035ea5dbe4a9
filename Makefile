# One-line entry points. `make demo` and `make test` are the README's two commands.
CARGO ?= cargo
MMUSIM := target/release/mmusim

.PHONY: demo test bench lint ci build

build:
	$(CARGO) build --release --locked

## The main job on a bundled real trace: a Skylake-like machine with 4 KiB pages, then with
## transparent huge pages, on a random-access kernel; summaries land in results/demo/.
demo: build
	$(MMUSIM) run --config configs/skylake.toml --trace traces/randaccess.lackey.zst --out results/demo/skylake-4k
	$(MMUSIM) run --config configs/skylake.toml --set pages.policy=thp --trace traces/randaccess.lackey.zst --out results/demo/skylake-thp

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
