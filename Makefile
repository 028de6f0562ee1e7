# ptmalloc-rs: build, demonstrate and test the LD_PRELOAD malloc.
LIB := target/release/libptmalloc_rs.so

.PHONY: all setup build test demo stress soak bench help clean lint fuzz libfuzzer mutants install install-files uninstall

all: build ## build target/release/libptmalloc_rs.so (the default)

build: ## build the library (cargo build --release)
	cargo build --release

setup: ## install what make test needs and this machine lacks (apt-get as root; else prints the line)
	scripts/setup test

test: setup build ## unit tests, layer and no-panic checks, every c_tests/ program under the preload in each profile (misuse programs also on glibc), real programs (default and fast); ends "N passed, M failed, K skipped"
	scripts/run-tests

demo: ## the per-thread arena walkthrough: /proc/PID/maps and strace at each stage, then its recording and the page that replays it (build/walkthrough-page/)
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

# make install: PREFIX (default /usr/local) and DESTDIR (a staging root) as
# usual.  PREFIX/lib gets the library, PREFIX/bin the wrapper ptmalloc-rs and
# the inspection scripts of TOOLS that exist in scripts/; those scripts
# themselves go to PREFIX/lib/ptmalloc-rs/, beside their heaplib/, each
# reached by a small PREFIX/bin/TOOL that runs it with LIB (the library
# strace-malloc preloads) defaulting to the installed one.  Everything finds
# everything else relative to itself: a staged or moved tree still works.
PREFIX ?= /usr/local
TOOLS := heap-inspect heap-map strace-malloc heap-explain heap-timeline

install: build ## install the library, scripts/ptmalloc-rs and the inspection scripts under PREFIX (/usr/local; DESTDIR too)
	@$(MAKE) --no-print-directory install-files

# install-files: the same from the library already built (or LIB=PATH), with
# no cargo build (make test's scripts/real-programs/install.sh uses it).
install-files:
	@test -f '$(LIB)' || { echo "make install: $(LIB) is missing: build it first (make)" >&2; exit 1; }
	@set -e; d='$(DESTDIR)$(PREFIX)'; \
	install -d "$$d/bin" "$$d/lib/ptmalloc-rs"; \
	install -p -m 755 '$(LIB)' "$$d/lib/libptmalloc_rs.so"; \
	install -m 755 scripts/ptmalloc-rs "$$d/bin/ptmalloc-rs"; \
	rm -rf "$$d/lib/ptmalloc-rs/heaplib"; install -d "$$d/lib/ptmalloc-rs/heaplib"; \
	for f in scripts/heaplib/*; do [ ! -f "$$f" ] || install -m 644 "$$f" "$$d/lib/ptmalloc-rs/heaplib/"; done; \
	tools=; for t in $(TOOLS); do \
	  [ -f "scripts/$$t" ] || continue; tools="$$tools $$t"; \
	  install -m 755 "scripts/$$t" "$$d/lib/ptmalloc-rs/$$t"; \
	  printf '#!/bin/sh\n# %s of ptmalloc-rs, put here by make install: runs the script in\n# ../lib/ptmalloc-rs/ (beside its heaplib/), with LIB defaulting to the\n# installed library.\nprefix=$$(dirname "$$(dirname "$$(readlink -f "$$0")")")\n: "$${LIB:=$$prefix/lib/libptmalloc_rs.so}"\nexport LIB\nexec "$$prefix/lib/ptmalloc-rs/%s" "$$@"\n' "$$t" "$$t" >"$$d/bin/$$t"; \
	  chmod 755 "$$d/bin/$$t"; \
	done; \
	echo "installed in $$d: lib/libptmalloc_rs.so, lib/ptmalloc-rs/ (heaplib/ and the scripts), bin/: ptmalloc-rs$$tools"

uninstall: ## remove what make install put under PREFIX (and DESTDIR)
	@d='$(DESTDIR)$(PREFIX)'; \
	for f in "$$d"/lib/ptmalloc-rs/*; do [ ! -f "$$f" ] || rm -f "$$d/bin/$${f##*/}"; done; \
	rm -rf "$$d/lib/ptmalloc-rs"; rm -f "$$d/lib/libptmalloc_rs.so" "$$d/bin/ptmalloc-rs"; \
	echo "removed ptmalloc-rs from $$d"

clean: ## remove build products
	cargo clean
	rm -rf build fuzz/target

help: ## this list
	@grep -E '^[a-z]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | awk -F'\t' '{printf "  make %-9s %s\n", $$1, $$2}'
