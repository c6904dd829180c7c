#!/usr/bin/env bash
# Build everything twice (plain, and with ASan+UBSan), run the C unit tests in
# both builds, run the jsforce compatibility suite against the sanitizer build
# of localforce, and end with one line: "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
JOBS=$(nproc)
PASS=0
FAIL=0
FAILED_NAMES=()

build() { # dir, extra cmake args...
  local dir=$1; shift
  cmake -S . -B "$dir" "$@" >/dev/null && cmake --build "$dir" -j "$JOBS" >"$dir/build-output.log" 2>&1 || {
    cat "$dir/build-output.log"; echo "build in $dir failed"; echo "0 passed, 1 failed"; exit 1; }
}

# Count TAP lines of one unit test binary; a crash with no TAP failure counts as one failure.
run_unit() { # label, binary
  local label=$1 bin=$2 out rc ok notok
  out=$(CMOCKA_MESSAGE_OUTPUT=TAP "$bin" 2>&1); rc=$?
  ok=$(grep -c '^ok ' <<<"$out")
  notok=$(grep -c '^not ok ' <<<"$out")
  if ((rc != 0 && notok == 0)); then notok=1; fi
  PASS=$((PASS + ok)); FAIL=$((FAIL + notok))
  if ((notok)); then
    FAILED_NAMES+=("$label")
    echo "$out" | grep -v '^ok ' | sed "s|^|  [$label] |"
  fi
  printf '%-28s %4d passed, %d failed\n' "$label" "$ok" "$notok"
}

echo "== build (plain and ASan+UBSan)"
build build -DCMAKE_BUILD_TYPE=RelWithDebInfo
build build-asan -DCMAKE_BUILD_TYPE=Debug -DSANITIZE=ON
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:halt_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

echo "== C unit tests"
for src in tests/unit/test_*.c; do
  name=$(basename "$src" .c)
  run_unit "unit/$name" "build/$name"
  run_unit "unit-asan/$name" "build-asan/$name"
done

echo "== jsforce compatibility suite (against the ASan+UBSan localforce, over HTTPS)"
if [[ -d tests/compat/node_modules ]]; then
  # localforce's self-signed certificate, made once, trusted the way Node trusts one
  # (NODE_EXTRA_CA_CERTS, read when node starts); each test's server reuses it.
  tls=$(mktemp -d)
  "$ROOT/build/localforce" serve --listen 127.0.0.1:0 --tls-self-signed "$tls" >"$tls/out" 2>&1 &
  lfp=$!
  for _ in $(seq 100); do grep -q listening "$tls/out" && break; sleep 0.1; done
  kill "$lfp" 2>/dev/null; wait "$lfp" 2>/dev/null
  out=$(cd tests/compat && LOCALFORCE_TLS_DIR="$tls" NODE_EXTRA_CA_CERTS="$tls/localforce.crt" \
        LOCALFORCE_BIN="$ROOT/build-asan/localforce" \
        node --test --test-reporter=tap --test-concurrency=1 ./*.test.mjs 2>&1); rc=$?
  rm -rf "$tls"
  p=$(grep -E '^# pass ' <<<"$out" | awk '{print $3}'); p=${p:-0}
  f=$(grep -E '^# fail ' <<<"$out" | awk '{print $3}'); f=${f:-0}
  if ((rc != 0 && f == 0)); then f=1; fi
  PASS=$((PASS + p)); FAIL=$((FAIL + f))
  if ((f)); then FAILED_NAMES+=("compat"); echo "$out" | grep -B2 -A30 '^\s*not ok' | head -200; fi
  printf '%-28s %4d passed, %d failed\n' "compat (jsforce)" "$p" "$f"
else
  echo "tests/compat/node_modules missing: run scripts/deps.sh"; FAIL=$((FAIL + 1))
fi

echo "== Salesforce CLI compatibility suite (sf against the ASan+UBSan localforce, over HTTPS)"
if [[ -x tests/sfcli/node_modules/.bin/node ]]; then # the suite's own Node 22 (the CLI needs it)
  out=$(cd tests/sfcli && LOCALFORCE_BIN="$ROOT/build-asan/localforce" node_modules/.bin/node \
        --test --test-reporter=tap --test-concurrency=1 ./*.test.mjs 2>&1); rc=$?
  p=$(grep -E '^# pass ' <<<"$out" | awk '{print $3}'); p=${p:-0}
  f=$(grep -E '^# fail ' <<<"$out" | awk '{print $3}'); f=${f:-0}
  if ((rc != 0 && f == 0)); then f=1; fi
  PASS=$((PASS + p)); FAIL=$((FAIL + f))
  if ((f)); then FAILED_NAMES+=("sfcli"); echo "$out" | grep -B2 -A30 '^\s*not ok' | head -200; fi
  printf '%-28s %4d passed, %d failed\n' "sfcli (Salesforce CLI)" "$p" "$f"
else
  echo "tests/sfcli/node_modules missing: run scripts/deps.sh"; FAIL=$((FAIL + 1))
fi

echo "== end-to-end suite (pytest: private Postgres, localforce, the ASan+UBSan sfbridge)"
# Counted from pytest's JUnit XML: passed = tests - failures - errors - skipped;
# failures + errors (teardown errors included) count as failed.
junit="$ROOT/build-asan/e2e-junit.xml"
rm -f "$junit"
out=$(SFBRIDGE_BIN="$ROOT/build-asan/sfbridge" LOCALFORCE_BIN="$ROOT/build/localforce" \
      /usr/bin/python3 -m pytest -q -p no:cacheprovider -rfE --junitxml="$junit" tests/e2e 2>&1); rc=$?
read -r p f < <(/usr/bin/python3 -c '
import sys, xml.etree.ElementTree as ET
r = ET.parse(sys.argv[1]).getroot()
s = r if r.tag == "testsuite" else r.find("testsuite")
t, fl, er, sk = (int(s.get(k, 0)) for k in ("tests", "failures", "errors", "skipped"))
print(t - fl - er - sk, fl + er)' "$junit" 2>/dev/null)
p=${p:-0}; f=${f:-0}
if ((rc != 0 && f == 0)); then f=1; fi
PASS=$((PASS + p)); FAIL=$((FAIL + f))
if ((f)); then FAILED_NAMES+=("e2e"); echo "$out" | tail -n 300 | sed 's/^/  [e2e] /'; fi
printf '%-28s %4d passed, %d failed\n' "e2e (pytest)" "$p" "$f"

echo "== lint (clang-format, file and function lengths, line width)"
out=$(scripts/lint.sh 2>&1); rc=$?; p=$(grep -c '^ok ' <<<"$out"); f=$(grep -c '^not ok ' <<<"$out")
if ((rc != 0 && f == 0)); then f=1; fi; PASS=$((PASS + p)); FAIL=$((FAIL + f))
if ((f)); then FAILED_NAMES+=("lint"); echo "$out" | grep -v '^ok \|^lint:' | sed 's/^/  [lint] /'; fi
printf '%-28s %4d passed, %d failed\n' "lint" "$p" "$f"

((${#FAILED_NAMES[@]})) && echo "failed: ${FAILED_NAMES[*]}"
echo "$PASS passed, $FAIL failed"
((FAIL == 0))
