# The two commands: `make run` (the whole stack on localhost with demo models) and `make test` (everything).
BUILD_DIR ?= build
JOBS ?= $(shell nproc)
CTEST_ARGS ?=

.PHONY: deps configure build run test bench soak sanitize tsan fuzz format clean

deps:
	./deploy/install-deps.sh

configure: deps
	@if [ ! -f $(BUILD_DIR)/build.ninja ]; then \
	  cmake -S . -B $(BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=Release; \
	fi

build: configure
	cmake --build $(BUILD_DIR) -j $(JOBS)

run: build
	./deploy/local/run.sh --build_dir $(BUILD_DIR)

test: build
	cd $(BUILD_DIR) && ctest --output-on-failure -j $(JOBS) $(CTEST_ARGS)

# Benchmarks against the reference implementations, side by side in one script (not part of `make test`).
bench: build
	PYTHONPATH=$(BUILD_DIR)/python MAAS_BUILD_DIR=$(BUILD_DIR) .venv/bin/python bench/classify_vs_sklearn.py
	MAAS_BUILD_DIR=$(BUILD_DIR) .venv/bin/python bench/generative_vs_numpy.py
	MAAS_BUILD_DIR=$(BUILD_DIR) .venv/bin/python bench/fit_memory.py
	MAAS_BUILD_DIR=$(BUILD_DIR) .venv/bin/python bench/serve_vs_mlserver.py
	MAAS_BUILD_DIR=$(BUILD_DIR) .venv/bin/python bench/gateway_overhead.py --h2front --relay
	MAAS_BUILD_DIR=$(BUILD_DIR) .venv/bin/python bench/gateway_overhead.py --h2front --gateway_args=--h2_front=false

# Mixed load through the gateway (not part of `make test`; a short run of it is): SOAK_SECONDS (default 600) with
# SOAK_STREAMS (default 64) concurrent calls; prints errors, p99 and each process's RSS at start, peak and end.
SOAK_SECONDS ?= 600
SOAK_STREAMS ?= 64
soak: build
	MAAS_BUILD_DIR=$(BUILD_DIR) .venv/bin/python tests/soak/gateway_soak.py --duration $(SOAK_SECONDS) --streams $(SOAK_STREAMS)

# The whole test suite under AddressSanitizer + UndefinedBehaviorSanitizer (Debug, separate build dir). GCC's
# -Wmaybe-uninitialized gives false positives inside libstdc++/Catch2 at -O1 with sanitizers, so it is not an error.
SANITIZE_DIR ?= build-asan
sanitize: deps
	@if [ ! -f $(SANITIZE_DIR)/build.ninja ]; then \
	  cmake -S . -B $(SANITIZE_DIR) -G Ninja -DCMAKE_BUILD_TYPE=Debug \
	    -DCMAKE_CXX_FLAGS="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer -O1 -Wno-maybe-uninitialized"; \
	fi
	cmake --build $(SANITIZE_DIR) -j $(JOBS)
	cd $(SANITIZE_DIR) && ctest --output-on-failure -j $(JOBS) $(CTEST_ARGS)

# The whole test suite under ThreadSanitizer (Debug at -O1, separate build dir). Debian's Abseil is not instrumented
# and absl::Mutex synchronises through atomics TSan cannot see, so tests/tsan_absl_sync.sh first builds Abseil's
# synchronization library (same release, installed headers) with TSan into $(TSAN_DIR)/absl-tsan, which
# LD_LIBRARY_PATH puts in front of the installed one for our binaries and for the gRPC inside them (sources from
# Debian's release tarball, sha256-pinned; ABSL_SRC=<an abseil-cpp checkout at 20220623.1> instead).
# tests/tsan_include keeps protobuf's map fields in the library's layout (see the file). gRPC and protobuf stay
# uninstrumented: tests/tsan.supp lists the reports that lie inside them, each with its reason, and
# common/adapter/grpc_order.h tells TSan the order gRPC's callback API promises. GCC 12 warns that TSan does not
# instrument std::atomic_thread_fence (-Wtsan, from library headers) and gives the same -Wmaybe-uninitialized false
# positives as above. A report fails its test (exitcode=66, printed by ctest); the servers the e2e tests start inherit
# TSAN_OPTIONS (add log_path=... to collect their reports in files).
TSAN_DIR ?= build-tsan
TSAN_OPTIONS ?= halt_on_error=0 exitcode=66 second_deadlock_stack=1 suppressions=$(CURDIR)/tests/tsan.supp
tsan: deps
	./tests/tsan_absl_sync.sh $(TSAN_DIR)/absl-tsan
	@if [ ! -f $(TSAN_DIR)/build.ninja ]; then \
	  cmake -S . -B $(TSAN_DIR) -G Ninja -DCMAKE_BUILD_TYPE=Debug \
	    -DCMAKE_CXX_FLAGS="-fsanitize=thread -fno-omit-frame-pointer -O1 -Wno-maybe-uninitialized -Wno-tsan \
	      -I$(CURDIR)/tests/tsan_include"; \
	fi
	cmake --build $(TSAN_DIR) -j $(JOBS)
	cd $(TSAN_DIR) && LD_LIBRARY_PATH=$(abspath $(TSAN_DIR))/absl-tsan TSAN_OPTIONS="$(TSAN_OPTIONS)" \
	  ctest --output-on-failure -j $(JOBS) $(CTEST_ARGS)

# Coverage-guided fuzzing (libFuzzer + ASan/UBSan, clang 14 installed if missing), FUZZ_SECONDS per target.
# `make test` runs each target briefly under a deterministic mutation driver (gcc build) instead.
FUZZ_DIR ?= build-fuzz
FUZZ_SECONDS ?= 60
fuzz: build
	./tests/fuzz/run_fuzz.sh $(BUILD_DIR) $(FUZZ_DIR) $(FUZZ_SECONDS)

format:
	git ls-files '*.cc' '*.h' | xargs clang-format -i

clean:
	rm -rf $(BUILD_DIR)
