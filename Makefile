# gcmalloc — two commands on a fresh Debian 12 machine:
#     make demo     build and run the demo
#     make test     build and run every test
# Each installs missing Debian packages first (apt-get as root; otherwise it
# prints the exact command), configures with CMake and builds.
#
# Other targets: make build | test-asan | test-tsan | bench | install | clean
# Variables: BUILD=dir (default build), CMAKE_FLAGS=..., PREFIX=/usr/local

BUILD       ?= build
PREFIX      ?= /usr/local
JOBS        ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE_FLAGS ?=

# CI builds with -Werror (and so may anyone: make CI=true test).
ifeq ($(CI),true)
  CMAKE_FLAGS += -DGCMALLOC_WERROR=ON
endif

# Build and test dependencies (Debian 12 package names).
PACKAGES := gcc make cmake pkg-config libgc-dev libmimalloc-dev libcmocka-dev \
            zlib1g-dev golang-go libunwind-dev python3 ruby \
            libapr1-dev libtalloc-dev sqlite3 libmicrohttpd-dev libiberty-dev \
            protobuf-compiler golang-github-google-pprof-dev
# Only `make bench` needs these: peers it compares against.
BENCH_PACKAGES := libjemalloc2

.PHONY: all deps configure build test demo bench test-asan test-tsan install clean

all: build

deps:
	@bash scripts/install-deps.sh $(PACKAGES)

configure: deps
	@cmake -S . -B $(BUILD) -DCMAKE_INSTALL_PREFIX=$(PREFIX) $(CMAKE_FLAGS) >/dev/null

build: configure
	@cmake --build $(BUILD) -j$(JOBS)

test: build
	@ctest --test-dir $(BUILD) --output-on-failure -j$(JOBS)

# The strategies side by side (demo/; about half a minute on two cores).
demo: build
	@$(BUILD)/demo/gcmalloc-demo --out $(BUILD)/demo-out

# Every benchmark of docs/performance.md, one after another (about twenty
# minutes on two cores); each one's output is kept in $(BUILD)/bench-out/.
BENCH_OUT = $(BUILD)/bench-out
bench: SHELL := /bin/bash
bench: .SHELLFLAGS := -o pipefail -ec
bench: build
	@bash scripts/install-deps.sh $(PACKAGES) $(BENCH_PACKAGES)
	@mkdir -p $(BENCH_OUT)
	$(BUILD)/bench/gc_pacing all | tee $(BENCH_OUT)/gc_pacing.txt
	$(BUILD)/bench/bench_gc -benchtime 1s | tee $(BENCH_OUT)/bench_gc.txt
	$(BUILD)/bench/bench_arena | tee $(BENCH_OUT)/bench_arena.txt
	$(BUILD)/bench/bench_arena_place | tee $(BENCH_OUT)/bench_arena_place.txt
	$(BUILD)/bench/bench_prof -benchtime 1s | tee $(BENCH_OUT)/bench_prof.txt
	bash bench/run_pool.sh $(BUILD) 1s 2>&1 | tee $(BENCH_OUT)/bench_pool.txt
	$(BUILD)/bench/bench_strategies -benchtime 1s | tee $(BENCH_OUT)/bench_strategies.txt
	bash bench/preload_bench.sh $(BUILD) 7 | tee $(BENCH_OUT)/preload_bench.txt
	bash bench/pointer_align.sh $(BUILD) 3 | tee $(BENCH_OUT)/pointer_align.txt
	bash bench/peer_bench.sh $(BUILD) 5 | tee $(BENCH_OUT)/peer_bench.txt

# Sanitizer builds live in their own trees so they never mix with the main one.
test-asan: deps
	@cmake -S . -B $(BUILD)-asan -DGCMALLOC_SANITIZE=address -DCMAKE_BUILD_TYPE=Debug \
	    -DGCMALLOC_DEBUG=ON $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(BUILD)-asan -j$(JOBS)
	@ASAN_OPTIONS=detect_leaks=0:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1 \
	    ctest --test-dir $(BUILD)-asan --output-on-failure -j$(JOBS) -L unit

test-tsan: deps
	@cmake -S . -B $(BUILD)-tsan -DGCMALLOC_SANITIZE=thread -DCMAKE_BUILD_TYPE=Debug \
	    $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(BUILD)-tsan -j$(JOBS)
	@ctest --test-dir $(BUILD)-tsan --output-on-failure -j$(JOBS) -L threads

install: build
	@cmake --install $(BUILD)

clean:
	@rm -rf $(BUILD) $(BUILD)-asan $(BUILD)-tsan
