#!/usr/bin/env bash
# The whole test suite, from scratch, as on a fresh Debian/Ubuntu machine:
#   1. installs missing packages (scripts/setup.sh),
#   2. configures and builds everything (build/test), runs every test with
#      ctest: unit tests, and live tests that need root/BPF/tracefs (these
#      skip with a reason where the machine cannot run them),
#   3. builds the unit tests with ASan+UBSan (build/asan) and runs them,
#   4. builds the libFuzzer targets with clang (build/fuzz) and runs each
#      briefly on its seed corpus.
# Environment: FRAGLAB_FUZZ_SECONDS (default 20), FRAGLAB_SKIP_ASAN=1,
# FRAGLAB_SKIP_FUZZ=1, JOBS (default: nproc).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
JOBS=${JOBS:-$(nproc)}
FUZZ_SECONDS=${FRAGLAB_FUZZ_SECONDS:-20}

step() { printf '\n=== %s\n' "$*"; }

step "setup: packages"
scripts/setup.sh

step "build: build/test (RelWithDebInfo)"
rm -rf build/test
cmake -S . -B build/test -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build/test -j "$JOBS"

step "test: all (unit + live)"
(cd build/test && ctest --output-on-failure -j "$JOBS" --timeout 600)

step "install: cmake --install into a temporary prefix"
prefix=$(mktemp -d)
cmake --install build/test --prefix "$prefix" >/dev/null
for f in bin/fraglab share/fraglab/scenarios/quick.toml share/doc/fraglab/README.md \
         share/doc/fraglab/scenario-format.md; do
  [ -e "$prefix/$f" ] || { echo "install: $f missing under $prefix" >&2; exit 1; }
done
"$prefix/bin/fraglab" --version
rm -rf "$prefix"

if [ "${FRAGLAB_SKIP_ASAN:-0}" != 1 ]; then
  step "build: build/asan (ASan+UBSan, unit tests)"
  rm -rf build/asan
  cmake -S . -B build/asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DFRAGLAB_SANITIZE=ON \
        -DFRAGLAB_BUILD_BENCH=OFF >/dev/null
  cmake --build build/asan -j "$JOBS"
  step "test: unit tests under ASan+UBSan"
  (cd build/asan && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
     ctest --output-on-failure -j "$JOBS" -L unit --timeout 600)
fi

if [ "${FRAGLAB_SKIP_FUZZ:-0}" != 1 ] && ls fuzz/*_fuzzer.cc >/dev/null 2>&1; then
  step "build: build/fuzz (clang, libFuzzer)"
  rm -rf build/fuzz
  CC=clang CXX=clang++ cmake -S . -B build/fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
        -DFRAGLAB_FUZZ=ON -DFRAGLAB_BUILD_TESTS=OFF -DFRAGLAB_BUILD_BENCH=OFF \
        -DFRAGLAB_BPF=OFF >/dev/null
  fuzzers=()
  for f in fuzz/*_fuzzer.cc; do fuzzers+=("$(basename "${f%.cc}")"); done
  cmake --build build/fuzz -j "$JOBS" --target "${fuzzers[@]}"
  for name in "${fuzzers[@]}"; do
    step "fuzz: $name for ${FUZZ_SECONDS}s"
    corpus=$(mktemp -d)
    seeds="fuzz/corpus/${name%_fuzzer}"
    if [ -d "$seeds" ]; then cp -r "$seeds"/. "$corpus"/; fi
    "build/fuzz/fuzz/$name" -max_total_time="$FUZZ_SECONDS" -print_final_stats=1 \
        -rss_limit_mb=2048 -max_len=65536 "$corpus" 2>&1 | tail -n 12
    rm -rf "$corpus"
  done
fi

step "all tests passed"
