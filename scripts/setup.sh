#!/usr/bin/env bash
# Installs what fraglab needs to build, test and run, from Debian/Ubuntu
# packages. Idempotent: does nothing when everything is present.
# Usage: scripts/setup.sh        (as root, or with sudo available)
set -euo pipefail

PACKAGES=(
  build-essential cmake ninja-build pkg-config git
  clang libclang-rt-dev           # BPF programs (clang -target bpf) and libFuzzer
  libbpf-dev bpftool libelf-dev zlib1g-dev
  libabsl-dev libcli11-dev libnuma-dev libzstd-dev liburing-dev
  libtomlplusplus-dev nlohmann-json3-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  gnuplot-nox                      # plots for reports
  e2fsprogs xfsprogs               # fraglab run: page cache on ext4/xfs loop filesystems (mkfs)
  chromium                         # live_report_chromium: loads the report page headless, checks console and images
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

echo "setup: installing ${missing[*]}" >&2
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then
    SUDO="sudo"
  else
    echo "setup: missing packages (${missing[*]}) and not root; install them with apt-get" >&2
    exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
