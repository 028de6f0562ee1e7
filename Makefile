# ptmalloc-rs: build, demonstrate and test the LD_PRELOAD malloc.
LIB := target/release/libptmalloc_rs.so

.PHONY: all setup build test demo stress soak bench help clean lint fuzz libfuzzer mutants

all: build ## build target/release/libptmalloc_rs.so (the default)

build: ## build the library (cargo build --release)
	cargo build --release

setup: ## install what make test needs and this machine lacks (apt-get as root; else prints the line)
	scripts/setup test

test: setup build ## unit tests, layer and no-panic checks, every c_tests/ program under the preload in each profile (misuse programs also on glibc), real programs (default and fast); ends "N passed, M failed, K skipped"
	scripts/run-tests

demo: ## the per-thread arena walkthrough: /proc/PID/maps and strace at each stage
	scripts/setup demo
	cargo build --release
	scripts/walkthrough

stress: build ## the multithreaded stress test for a minute with 32 threads (STRESS_SECONDS, STRESS_THREADS)
	STRESS_SECONDS=$${STRESS_SECONDS:-60} STRESS_THREADS=$${STRESS_THREADS:-32} TEST_TIMEOUT=$$(( $${STRESS_SECONDS:-60} + 120 )) scripts/run-tests --only mt_stress

soak: build ## the soak test for 5 minutes with 32 threads: cross-thread frees, forks, RSS bound (SOAK_SECONDS, SOAK_THREADS)
	SOAK_SECONDS=$${SOAK_SECONDS:-300} SOAK_THREADS=$${SOAK_THREADS:-32} TEST_TIMEOUT=$$(( $${SOAK_SECONDS:-300} + 300 )) scripts/run-tests --only soak

mutants: build ## every c_tests/ program with a free that does nothing: each must fail (about 5 minutes)
	scripts/run-tests --free-noop

bench: build ## time workloads under glibc, ptmalloc-rs (each profile), jemalloc, tcmalloc, mimalloc -> bench/results.md, results.png, scaling.png (QUICK=1: about a minute)
	scripts/bench $(if $(QUICK),--quick)

fuzz: ## long randomized model run with the heap checker after every call (FUZZ_SEQUENCES, default 200000; SEED)
	PTMALLOC_RS_FUZZ_SEQUENCES=$${FUZZ_SEQUENCES:-200000} $(if $(SEED),PTMALLOC_RS_MODEL_SEED=$(SEED)) cargo test --release --lib -- --ignored fuzz --nocapture

libfuzzer: ## coverage-guided cargo fuzz of malloc-family calls + the checker (FUZZ_SECONDS, default 300; needs the nightly toolchain)
	command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz
	cargo +nightly fuzz run -s none ops -- -max_total_time=$${FUZZ_SECONDS:-300} -max_len=1024

lint: ## cargo fmt --check and cargo clippy
	cargo fmt --check
	cargo clippy --release --all-targets -- -D warnings

clean: ## remove build products
	cargo clean
	rm -rf build fuzz/target

help: ## this list
	@grep -E '^[a-z]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | awk -F'\t' '{printf "  make %-9s %s\n", $$1, $$2}'
