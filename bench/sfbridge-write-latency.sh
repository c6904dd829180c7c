#!/usr/bin/env bash
# sfbridge write-back at a real org's round-trip time (issue 13): localforce
# answers every /services/data call LATENCY_MS late (its latency fault), and
# `sfbridge push` writes ROWS rows committed in Postgres, once per
# SFBRIDGE_WRITE_CONCURRENCY value in CONCURRENCY, side by side in one run,
# against the Dream Project org (examples/dream-org.json: Teacher__c's Email__c
# is an External ID):
# inserts (no unique identifier: sObject Collections) and upserts by Email__c
# (the unique identifier: collections too while the org has requests to spare,
# Bulk API 2.0 jobs with SFBRIDGE_BULK_WRITE_USAGE=0). Prints one JSON line per
# push: records/s, API calls, peak RSS.
#
#   bench/sfbridge-write-latency.sh                          # 10,000 rows, 1,000 ms, 1 16 64
#   LATENCY_MS=150 ROWS=10000 CONCURRENCY="1 8" bench/sfbridge-write-latency.sh
#   LATENCY_MS=0 ROWS=100000 CONCURRENCY="1 8" KINDS=insert bench/sfbridge-write-latency.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
ROWS=${ROWS:-10000}
LATENCY_MS=${LATENCY_MS:-1000}
CONCURRENCY=${CONCURRENCY:-1 16 64}
KINDS=${KINDS:-insert upsert}
BUILD=${BUILD:-build}
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$BUILD" -j "$(nproc)" --target localforce sfbridge >/dev/null
SFB=${SFB:-$ROOT/$BUILD/sfbridge}

WORK=$(mktemp -d /tmp/sfbwlat.XXXXXX)
chmod 755 "$WORK"
LF_PID=
cleanup() {
  [[ -n $LF_PID ]] && kill "$LF_PID" 2>/dev/null || true
  wait 2>/dev/null || true
  scripts/pgtmp.sh stop "$WORK/pg"
  rm -rf "$WORK"
}
trap cleanup EXIT

DATABASE_URL=$(scripts/pgtmp.sh start "$WORK/pg")
FAULTS=()
((LATENCY_MS > 0)) && FAULTS=(--faults "latency=$LATENCY_MS,path=/services/data/*")
"$BUILD/localforce" serve --listen 127.0.0.1:0 --org examples/dream-org.json --db "$WORK/lf.sqlite" \
  --log-level warn "${FAULTS[@]}" >"$WORK/out" 2>"$WORK/err" &
LF_PID=$!
for _ in $(seq 100); do grep -q listening "$WORK/out" 2>/dev/null && break; sleep 0.1; done
URL=$(sed -n 's/^localforce listening on //p' "$WORK/out")
[[ -n $URL ]] || { cat "$WORK/err"; exit 1; }
export DATABASE_URL SF_LOGIN_URL=$URL SF_CLIENT_ID=sfbridge-demo-client SF_CLIENT_SECRET=sfbridge-demo-secret
export SF_USERNAME=demo@localforce.test SF_PASSWORD=localforce SFBRIDGE_LOG_LEVEL=warn
psqlq() { psql "$DATABASE_URL" -XAtq "$@"; }

run=0
for kind in $KINDS; do
  for c in $CONCURRENCY; do
    run=$((run + 1))
    schema="s${run}"
    export SFBRIDGE_SCHEMA=$schema
    if [[ $kind == upsert ]]; then up=(--upsert-field Email__c); else up=(); fi
    "$SFB" mapping add Teacher__c --access read_write --fields Name,First_Name__c,Last_Name__c,Email__c,Subject__c \
      "${up[@]}" >/dev/null 2>&1
    "$SFB" load >/dev/null 2>&1
    psqlq -c "INSERT INTO $schema.teacher__c (name, first_name__c, last_name__c, email__c, subject__c)
      SELECT 'W$run ' || k, 'W$run', 'T' || k, 'w$run.' || k || '@school.test', 'Mathematics'
      FROM generate_series(1, $ROWS) k"
    t0=$(date +%s.%N)
    SFBRIDGE_WRITE_CONCURRENCY=$c /usr/bin/time -f '%M' -o "$WORK/rss" "$SFB" push >/dev/null 2>"$WORK/push.err" ||
      { tail -5 "$WORK/push.err"; }
    t1=$(date +%s.%N)
    done_rows=$(psqlq -c "SELECT count(*) FROM $schema.teacher__c WHERE sfid IS NOT NULL AND name LIKE 'W$run %'")
    secs=$(awk "BEGIN{print $t1 - $t0}")
    echo "{\"figure\":\"push_at_latency\",\"kind\":\"$kind\",\"latency_ms\":$LATENCY_MS,\"concurrency\":$c,\"rows\":$ROWS,\"written\":$done_rows,\"seconds\":$secs,\"records_per_second\":$(awk "BEGIN{printf \"%d\", $done_rows / $secs}"),\"peak_rss_kb\":$(tail -1 "$WORK/rss")}"
  done
done
