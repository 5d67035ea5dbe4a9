# One-line entry points. `make demo` and `make test` are the README's two commands.
CARGO ?= cargo
MMUSIM := target/release/mmusim

.PHONY: demo test bench lint ci build ci-check ci-bless golden-bless test-cluster fuzz fuzz-smoke

build:
	$(CARGO) build --release --locked

## The main job on the bundled real traces: four real-machine presets, with 4 KiB pages and
## with transparent huge pages, on four programs (configs/sweeps/demo.toml); results/demo/
## gets metrics.csv (one row per configuration x trace), histograms.csv and a directory per run,
## and results/demo/report/index.html shows it in figures.
demo: build
	$(MMUSIM) sweep configs/sweeps/demo.toml --out results/demo
	$(MMUSIM) report results/demo

## Every test: unit, property, golden and command-line.
test:
	$(CARGO) test --workspace --locked

## Throughput on this machine (release build; inputs are generated under target/bench-data).
bench:
	$(CARGO) bench --locked --bench throughput

## CI's regression guard: a small sweep (configs/ci/sweep.toml) whose every metric must equal
## the committed baseline in results/ci-baseline/ (fresh outputs each time: a sweep resumes
## from results it finds, and those may be from before a change).
ci-check: build
	rm -rf results/ci
	$(MMUSIM) sweep configs/ci/sweep.toml --quiet --out results/ci
	$(MMUSIM) check results/ci-baseline results/ci --json results/ci/check.json

## Accept a deliberate change of metrics: make the CI sweep's results the new baseline.
ci-bless: build
	rm -rf results/ci
	$(MMUSIM) sweep configs/ci/sweep.toml --quiet --out results/ci
	$(MMUSIM) check results/ci-baseline results/ci --bless

## Accept a deliberate change of metrics in the golden runs (every preset on every
## committed trace, checked by `make test`): their tables become the new
## results/golden-baseline/.
golden-bless:
	MMUSIM_BLESS=1 $(CARGO) test --locked -p mmusim-report --test integration golden::every_preset_on_every_real_trace

## A real single-node Slurm cluster on this machine runs a sharded sweep (installs slurm-wlm).
test-cluster: build
	tests/cluster/slurm-sweep.sh

## Coverage-guided fuzzing (AFL++ through cargo-afl) of every parser: FUZZ_SECONDS per target
## (default 600); findings in fuzz/findings/; exit 1 if any target found a crash or a hang.
FUZZ_SECONDS ?= 600
fuzz:
	scripts/fuzz.sh $(FUZZ_SECONDS)

## CI's smoke run of the same: 20 seconds per target.
fuzz-smoke:
	scripts/fuzz.sh 20

lint:
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings

ci: lint test demo ci-check
