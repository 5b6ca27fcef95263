#!/usr/bin/env bash
# The main job on a fresh Debian/Ubuntu machine: installs what is missing,
# builds fraglab (build/release), and shows this machine's memory with
# `fraglab snapshot`. Extra arguments go to `fraglab snapshot`.
set -euo pipefail
cd "$(dirname "$0")/.."
JOBS=${JOBS:-$(nproc)}
scripts/setup.sh
cmake -S . -B build/release -G Ninja -DCMAKE_BUILD_TYPE=Release \
      -DFRAGLAB_BUILD_TESTS=OFF -DFRAGLAB_BUILD_BENCH=OFF >/dev/null
cmake --build build/release -j "$JOBS" --target fraglab
exec build/release/cli/fraglab snapshot "$@"
