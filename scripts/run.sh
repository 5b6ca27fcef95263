#!/usr/bin/env bash
# The main job on a fresh Debian/Ubuntu machine: installs what is missing,
# builds fraglab (build/release), then validates the simulator against this
# kernel on the default scenario (scenarios/quick.toml: about 1.5 GiB for a
# few seconds, every setting restored) and writes the HTML report.
#
# As root with BPF the scenario runs on the kernel (generator + tracker) and
# in the simulator started from the kernel run's recorded start state;
# otherwise `fraglab validate` runs the simulator only and says why.
# Outputs: fraglab-validate/ (traces) and fraglab-validate/report/index.html.
# Exit code: validate's (0 all metrics agree, 1 some disagree or a side
# failed, 2 usage). Extra arguments go to `fraglab validate`.
set -euo pipefail
cd "$(dirname "$0")/.."
JOBS=${JOBS:-$(nproc)}
SCENARIO=${SCENARIO:-scenarios/quick.toml}
OUT=${OUT:-fraglab-validate}
scripts/setup.sh
cmake -S . -B build/release -G Ninja -DCMAKE_BUILD_TYPE=Release \
      -DFRAGLAB_BUILD_TESTS=OFF -DFRAGLAB_BUILD_BENCH=OFF >/dev/null
cmake --build build/release -j "$JOBS" --target fraglab
rc=0
build/release/cli/fraglab validate "$SCENARIO" -o "$OUT" --report "$OUT/report" "$@" || rc=$?
if [[ -f "$OUT/report/index.html" ]]; then
  echo "report: $OUT/report/index.html"
fi
exit "$rc"
