#!/usr/bin/env bash
# Install the Debian 12 packages the build, the tests and the demo need, and
# only those that are missing. Safe to run again and again.
set -euo pipefail
cd "$(dirname "$0")/.."

PKGS=(
  build-essential cmake pkg-config clang  # toolchain; clang builds the libFuzzer harnesses
  libjansson-dev                          # JSON parsing
  libmicrohttpd-dev                       # localforce's HTTP server
  libsqlite3-dev                          # localforce's storage
  libxml2-dev                             # SOAP login envelopes
  libssl-dev                              # HMAC-SHA256 for OAuth signatures
  libcurl4-openssl-dev libpq-dev          # sfbridge: Salesforce client, Postgres
  libcmocka-dev                           # C unit tests
  python3-pytest python3-psycopg          # end-to-end tests
  clang-format universal-ctags            # make lint: formatting, function lengths
  postgresql                              # the database sfbridge syncs into
  curl ca-certificates
)
command -v node >/dev/null 2>&1 || PKGS+=(nodejs)
command -v npm  >/dev/null 2>&1 || PKGS+=(npm)

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
if [[ -f tests/compat/package.json && ! -d tests/compat/node_modules ]]; then
  echo "deps: installing the compatibility suite's npm packages"
  (cd tests/compat && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
fi
