#!/usr/bin/env bash
# Install the Debian 12 packages that are missing, and only those. Safe to run
# again and again.
#
#   scripts/deps.sh demo   what `make demo` needs: build sfbridge and localforce, run Postgres
#   scripts/deps.sh demo -- COMMAND [ARG...]
#                          the same, but runs COMMAND (make demo's build) once the build's
#                          packages are in, while the rest (Postgres, curl) install alongside;
#                          fails when either fails (then COMMAND's status)
#   scripts/deps.sh        everything (also `all` or `test`): the demo's packages, plus the
#                          tests', lint's and the fuzzers' and the jsforce suite's npm packages
set -euo pipefail
cd "$(dirname "$0")/.."
what=${1:-all}

# Building the demo.
DEMO_BUILD_PKGS=(
  gcc make libc6-dev cmake pkg-config     # toolchain (C only)
  libjansson-dev                          # JSON parsing
  libmicrohttpd-dev                       # localforce's HTTP server
  libsqlite3-dev                          # localforce's storage
  libxml2-dev                             # SOAP login envelopes
  libssl-dev                              # HMAC-SHA256 for OAuth signatures
  libcurl4-openssl-dev libpq-dev          # sfbridge: Salesforce client, Postgres
)
# Only for running it.
DEMO_RUN_PKGS=(
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
  chromium                                # test_dashboard.py's headless browser (tests/browser)
)

# The packages of $@ that are not installed.
not_installed() {
  local p
  for p; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || echo "$p"
  done
}
SUDO=()
[[ $(id -u) -ne 0 ]] && SUDO=(sudo)
# apt-get install, quietly (errors only). -n: never ask for a password (sudo -n).
# env: sudo would drop DEBIAN_FRONTEND.
apt_install() {
  local sudo=("${SUDO[@]}")
  if [[ $1 == -n ]]; then
    shift
    ((${#sudo[@]} == 0)) || sudo+=(-n)
  fi
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

case $what in
demo)
  [[ $# -le 1 || ($2 == -- && $# -ge 3) ]] || { echo "usage: scripts/deps.sh demo [-- COMMAND...]" >&2; exit 2; }
  mapfile -t build < <(not_installed "${DEMO_BUILD_PKGS[@]}")
  mapfile -t run < <(not_installed "${DEMO_RUN_PKGS[@]}")
  if [[ ${2-} != -- ]]; then # all at once
    build+=("${run[@]}") run=()
  fi
  if ((${#build[@]} + ${#run[@]})); then
    ((${#build[@]} == 0)) || echo "deps: installing ${build[*]}"
    "${SUDO[@]}" apt-get update -qq
  fi
  ((${#build[@]} == 0)) || apt_install "${build[@]}"
  [[ ${2-} == -- ]] || exit 0
  shift 2
  # Postgres and curl while COMMAND builds: a second apt-get cannot run at the
  # same time as the first, but it can alongside the compiler. sudo -n: no
  # password prompt in the background (sudo remembers the one just given); if
  # it fails all the same, or apt-get does, it is tried again below, in the
  # foreground, where its messages show.
  pid=
  if ((${#run[@]})); then
    echo "deps: installing ${run[*]} while the demo builds"
    apt_install -n "${run[@]}" >/dev/null 2>&1 &
    pid=$!
  fi
  rc=0
  "$@" || rc=$?
  if [[ -n $pid ]] && ! wait "$pid" && ((rc == 0)); then
    echo "deps: installing ${run[*]} (again, in the foreground)"
    apt_install "${run[@]}"
  fi
  exit "$rc"
  ;;
all | test)
  PKGS=("${DEMO_BUILD_PKGS[@]}" "${DEMO_RUN_PKGS[@]}" "${TEST_PKGS[@]}")
  command -v node >/dev/null 2>&1 || PKGS+=(nodejs)
  command -v npm >/dev/null 2>&1 || PKGS+=(npm)
  ;;
*) echo "usage: scripts/deps.sh [demo [-- COMMAND...]|all]" >&2; exit 2 ;;
esac

# Debian packages.
mapfile -t missing < <(not_installed "${PKGS[@]}")
if ((${#missing[@]})); then
  echo "deps: installing ${missing[*]}"
  "${SUDO[@]}" apt-get update -qq
  apt_install "${missing[@]}"
fi

# Test clients (jsforce) for the compatibility suite, pinned by package-lock.json.
if [[ $what != demo && -f tests/compat/package.json && ! -d tests/compat/node_modules ]]; then
  echo "deps: installing the compatibility suite's npm packages"
  (cd tests/compat && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
fi

# The Salesforce CLI suite's npm packages: @salesforce/cli and the Node 22 it needs (Debian 12
# has Node 20), both pinned by package-lock.json.
if [[ $what != demo && -f tests/sfcli/package.json && ! -d tests/sfcli/node_modules ]]; then
  echo "deps: installing the Salesforce CLI suite's npm packages"
  (cd tests/sfcli && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
fi

# The dashboard tests' browser driver (playwright-core, axe-core), pinned by package-lock.json.
if [[ $what != demo && -f tests/browser/package.json && ! -d tests/browser/node_modules ]]; then
  echo "deps: installing the dashboard tests' npm packages"
  (cd tests/browser && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
fi
