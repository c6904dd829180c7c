#!/usr/bin/env bash
# Install the Debian 12 packages that are missing, and only those. Safe to run
# again and again.
#
#   scripts/deps.sh demo   what `make demo` needs: build sfbridge and localforce, run Postgres
#   scripts/deps.sh        everything (also `all` or `test`): the demo's packages, plus the
#                          tests', lint's and the fuzzers' and the jsforce suite's npm packages
set -euo pipefail
cd "$(dirname "$0")/.."
what=${1:-all}

# Building and running the demo.
DEMO_PKGS=(
  gcc make libc6-dev cmake pkg-config     # toolchain (C only)
  libjansson-dev                          # JSON parsing
  libmicrohttpd-dev                       # localforce's HTTP server
  libsqlite3-dev                          # localforce's storage
  libxml2-dev                             # SOAP login envelopes
  libssl-dev                              # HMAC-SHA256 for OAuth signatures
  libcurl4-openssl-dev libpq-dev          # sfbridge: Salesforce client, Postgres
  postgresql                              # the database sfbridge syncs into (and psql)
  curl ca-certificates                    # the demo's example commands
)
# Only for the tests, lint and fuzzing.
TEST_PKGS=(
  build-essential clang                   # the usual toolchain; clang builds the libFuzzer harnesses
  libcmocka-dev                           # C unit tests
  python3-pytest python3-psycopg          # end-to-end tests
  python3-pyte                            # test_demo.py's terminal emulator
  python3-prometheus-client               # test_api.py parses /metrics with it
  python3-yaml man-db groff-base          # test_packaging.py: the compose example, the man pages
  clang-format universal-ctags            # make lint: formatting, function lengths
)

case $what in
demo) PKGS=("${DEMO_PKGS[@]}") ;;
all | test)
  PKGS=("${DEMO_PKGS[@]}" "${TEST_PKGS[@]}")
  command -v node >/dev/null 2>&1 || PKGS+=(nodejs)
  command -v npm >/dev/null 2>&1 || PKGS+=(npm)
  ;;
*) echo "usage: scripts/deps.sh [demo|all]" >&2; exit 2 ;;
esac

# Debian packages.
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "deps: installing ${missing[*]}"
  SUDO=""
  [[ $(id -u) -ne 0 ]] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Test clients (jsforce) for the compatibility suite, pinned by package-lock.json.
if [[ $what != demo && -f tests/compat/package.json && ! -d tests/compat/node_modules ]]; then
  echo "deps: installing the compatibility suite's npm packages"
  (cd tests/compat && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
fi
