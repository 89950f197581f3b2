#!/usr/bin/env bash
# Installs everything sdm needs to build, test and run on Debian 12 (bookworm).
# Idempotent: re-running it only installs what is missing. Needs root (or sudo).
# Used by README and .ci/run, so the two can never drift apart.
set -euo pipefail

PACKAGES=(
  # toolchain
  build-essential cmake ninja-build git pkg-config ca-certificates
  # runtime stack
  libtorch-dev libopenblas0-pthread
  libopenmpi-dev openmpi-bin
  libhdf5-openmpi-dev hdf5-tools hdf5-plugin-lzf liblzf1
  libyaml-cpp-dev libspdlog-dev libfmt-dev
  libcli11-dev nlohmann-json3-dev zlib1g-dev
  libgtest-dev libgmock-dev
  # LLM tokenizers: tokenizer.json split regexes (PCRE2); python3-sentencepiece is the tests' reference
  libpcre2-dev
  # the Slurm tests start a single-node Slurm (munge comes with it)
  slurm-wlm
  # figures (`sdm plot`, `sdm report`: gnuplot's svg and pdfcairo terminals, with a font) and the report's
  # headless-browser test
  gnuplot-nox fonts-dejavu-core chromium
  # fuzzing (tools/fuzz.sh): clang with libFuzzer and the sanitizer runtimes
  clang libclang-rt-dev
  # independent references for tests (always /usr/bin/python3)
  python3 python3-anndata python3-h5py python3-numpy python3-scipy python3-torch python3-sklearn python3-yaml python3-sentencepiece
)

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PACKAGES[@]} packages present"
  exit 0
fi

echo "install-deps: installing ${#missing[@]} packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
echo "install-deps: done"
