#!/usr/bin/env bash
# localforce benchmarks (issue 2): REST query paging over 1,000,000 records,
# creates through sObject collections of 200, and localforce's memory while it
# serves the big query. Prints one JSON line per figure; bench/README.md holds
# the latest figures and how they were taken.
#
#   bench/run.sh            # 1,000,000 records (ROWS=... to change), in memory
#   DB=file bench/run.sh    # the same with the org in an SQLite file (WAL)
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS=${ROWS:-1000000}
CREATES=${CREATES:-100000}
BUILD=${BUILD:-build}
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$BUILD" -j "$(nproc)" --target localforce lfbench >/dev/null

PY=/usr/bin/python3
WORK=$(mktemp -d)
trap 'kill $LF_PID 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$WORK"' EXIT

DB=${DB:-:memory:}
[[ $DB == file ]] && DB=$WORK/bench.sqlite
"$BUILD/localforce" serve --listen 127.0.0.1:0 --org bench/bench-org.json --db "$DB" \
  --log-level warn >"$WORK/out" 2>"$WORK/err" &
LF_PID=$!
for _ in $(seq 100); do grep -q listening "$WORK/out" 2>/dev/null && break; sleep 0.1; done
URL=$(sed -n 's/^localforce listening on //p' "$WORK/out")
[[ -n $URL ]] || { cat "$WORK/err"; exit 1; }
TOKEN=$("$BUILD/lfbench" login "$URL" bench-client bench-secret bench@localforce.test bench)

rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$LF_PID/status"; }
hwm_kb() { awk '/^VmHWM/ {print $2}' "/proc/$LF_PID/status"; }

echo "== loading $ROWS Item__c records through the admin API"
t0=$(date +%s.%N)
CHUNK=50000
for ((i = 0; i < ROWS; i += CHUNK)); do
  n=$((ROWS - i < CHUNK ? ROWS - i : CHUNK))
  $PY - "$i" "$n" >"$WORK/chunk.json" <<'PYEOF'
import json, sys
start, n = int(sys.argv[1]), int(sys.argv[2])
print(json.dumps([{"Name": f"Item {k}", "Code__c": f"C{k:08d}", "Amount__c": k % 1000 + 0.5,
                   "Active__c": k % 2 == 0, "Note__c": "a realistic note about this item"}
                  for k in range(start, start + n)]))
PYEOF
  curl -sf -X POST "$URL/admin/objects/Item__c/records" -H 'Content-Type: application/json' \
    --data-binary @"$WORK/chunk.json" >/dev/null
done
t1=$(date +%s.%N)
echo "{\"figure\":\"admin_load\",\"records\":$ROWS,\"seconds\":$(awk "BEGIN{print $t1 - $t0}")}"

SOQL="SELECT Id, Name, Code__c, Amount__c, Active__c, Note__c, SystemModstamp FROM Item__c"
for limit in 100000 "$ROWS"; do
  echo 5 >"/proc/$LF_PID/clear_refs" # reset VmHWM to the current RSS
  before=$(rss_kb)
  res=$("$BUILD/lfbench" query "$URL" "$TOKEN" "$SOQL LIMIT $limit")
  echo "{\"figure\":\"rest_query\",\"limit\":$limit,\"result\":$res,\"rss_before_kb\":$before,\"peak_rss_kb\":$(hwm_kb)}"
done

echo "== Bulk API 2.0 query job over all $ROWS rows, results in pages of 250,000"
JOB=$(curl -sf -X POST "$URL/services/data/v62.0/jobs/query" -H "Authorization: Bearer $TOKEN" \
  -H 'Content-Type: application/json' \
  -d "{\"operation\":\"query\",\"query\":\"$SOQL\"}" | $PY -c 'import json,sys;print(json.load(sys.stdin)["id"])')
for _ in $(seq 600); do
  state=$(curl -sf "$URL/services/data/v62.0/jobs/query/$JOB" -H "Authorization: Bearer $TOKEN" |
    $PY -c 'import json,sys;print(json.load(sys.stdin)["state"])')
  [[ $state == JobComplete ]] && break
  sleep 0.1
done
echo 5 >"/proc/$LF_PID/clear_refs"
before=$(rss_kb)
t0=$(date +%s.%N)
locator="" rows=0 pages=0
while :; do
  q="maxRecords=250000"
  [[ -n $locator ]] && q="$q&locator=$locator"
  curl -sf -D "$WORK/h" -o "$WORK/page.csv" "$URL/services/data/v62.0/jobs/query/$JOB/results?$q" \
    -H "Authorization: Bearer $TOKEN"
  n=$(tr -d '\r' <"$WORK/h" | awk -F': ' 'tolower($1)=="sforce-numberofrecords"{print $2}')
  rows=$((rows + n)); pages=$((pages + 1))
  locator=$(tr -d '\r' <"$WORK/h" | awk -F': ' 'tolower($1)=="sforce-locator"{print $2}')
  [[ $locator == null || -z $locator ]] && break
done
t1=$(date +%s.%N)
echo "{\"figure\":\"bulk_query_results\",\"rows\":$rows,\"pages\":$pages,\"seconds\":$(awk "BEGIN{print $t1 - $t0}"),\"rows_per_s\":$(awk "BEGIN{printf \"%d\", $rows / ($t1 - $t0)}"),\"rss_before_kb\":$before,\"peak_rss_kb\":$(hwm_kb)}"

for conns in 1 4; do
  res=$("$BUILD/lfbench" create "$URL" "$TOKEN" Order__c "$CREATES" "$conns")
  echo "{\"figure\":\"collections_create\",\"result\":$res}"
done
echo "{\"figure\":\"final_rss_kb\",\"value\":$(rss_kb)}"
