#!/usr/bin/env bash
# Build the libFuzzer harnesses with clang and run each on its seed corpus for
# FUZZ_SECONDS (default 60). New inputs go to a scratch copy of the corpus.
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${FUZZ_SECONDS:-60}
CC=clang cmake -S . -B build-fuzz -DFUZZ=ON -DCMAKE_BUILD_TYPE=Debug >/dev/null
for h in soql json_request csv bayeux sfbridge; do
  cmake --build build-fuzz -j "$(nproc)" --target "fuzz_$h" >/dev/null
  scratch=$(mktemp -d)
  cp -r "tests/fuzz/corpus/$h/." "$scratch/"
  echo "== fuzz_$h for ${SECS}s"
  LF_SRCDIR=$PWD ./build-fuzz/"fuzz_$h" -max_total_time="$SECS" -timeout=10 -rss_limit_mb=2048 \
    "$scratch" 2>&1 | tail -3
  rm -rf "$scratch"
done
