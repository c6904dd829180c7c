#!/usr/bin/env bash
# sfbridge benchmarks (issue 4): initial load of ROWS Teacher__c records (a
# dozen fields of mixed types) from localforce into Postgres, against plain
# COPY of the same rows into an identical table in the same run; sfbridge's
# peak memory; and an incremental sync of CHANGES updated records (seconds and
# API calls). Prints one JSON line per figure; bench/README.md keeps the
# latest figures.
#
#   bench/sfbridge-load.sh                 # 1,000,000 rows
#   ROWS=100000 bench/sfbridge-load.sh     # the memory comparison point
#   SFB_BEFORE=/old/build/sfbridge bench/sfbridge-load.sh  # and another build's load, same run
#   LATENCY_MS=1000 SFBRIDGE_BULK_PAGE=50000 bench/sfbridge-load.sh  # at a real org's round trip
#   BEFORE_ENV=SFBRIDGE_LOAD_FETCHERS=1 LATENCY_MS=1000 bench/sfbridge-load.sh
#       # and the load with other settings (here pages one after the other), same run
#   RELOAD=1 BEFORE_ENV=SFBRIDGE_LOAD_FETCHERS=1 LATENCY_MS=1000 bench/sfbridge-load.sh
#       # and then a reload (its Bulk job's pages into the stage), the same way before and now
# RESULT_PAGE_ROWS: rows per page of a resultPages listing (default 50000, as
# SFBRIDGE_BULK_PAGE's default, so both ways of fetching read the same pages).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
ROWS=${ROWS:-1000000}
CHANGES=${CHANGES:-10000}
BUILD=${BUILD:-build}
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$BUILD" -j "$(nproc)" --target localforce lfbench sfbridge >/dev/null

PY=/usr/bin/python3
WORK=$(mktemp -d /tmp/sfbbench.XXXXXX)
chmod 755 "$WORK"
cleanup() {
  kill "$LF_PID" 2>/dev/null || true
  wait 2>/dev/null || true
  scripts/pgtmp.sh stop "$WORK/pg"
  rm -rf "$WORK"
}
trap cleanup EXIT

DATABASE_URL=$(scripts/pgtmp.sh start "$WORK/pg")
# LATENCY_MS: every API call answered that much later, as a real org's (the admin loads are not)
FAULTS=()
[[ -n ${LATENCY_MS:-} ]] && FAULTS=(--faults "latency=$LATENCY_MS,path=/services/data/*")
"$BUILD/localforce" serve --listen 127.0.0.1:0 --org bench/bench-org.json --db "$WORK/lf.sqlite" \
  --log-level warn --result-page-rows "${RESULT_PAGE_ROWS:-50000}" "${FAULTS[@]}" >"$WORK/out" 2>"$WORK/err" &
LF_PID=$!
for _ in $(seq 100); do grep -q listening "$WORK/out" 2>/dev/null && break; sleep 0.1; done
URL=$(sed -n 's/^localforce listening on //p' "$WORK/out")
[[ -n $URL ]] || { cat "$WORK/err"; exit 1; }
export DATABASE_URL SF_LOGIN_URL=$URL SF_CLIENT_ID=bench-client SF_CLIENT_SECRET=bench-secret
export SF_USERNAME=bench@localforce.test SF_PASSWORD=bench SFBRIDGE_LOG_LEVEL=warn

echo "== loading $ROWS Teacher__c records into localforce"
CHUNK=50000
for ((i = 0; i < ROWS; i += CHUNK)); do
  n=$((ROWS - i < CHUNK ? ROWS - i : CHUNK))
  $PY - "$i" "$n" >"$WORK/chunk.json" <<'PYEOF'
import json, sys
start, n = int(sys.argv[1]), int(sys.argv[2])
subjects = ["Math", "Science", "English", "History", "Art"]
print(json.dumps([{"Name": f"Teacher {k}", "Email__c": f"t{k}@school.test", "Phone__c": f"(510) 555-{k % 10000:04d}",
                   "Subject__c": subjects[k % 5], "Grade_Level__c": k % 12 + 1, "Salary__c": 40000 + k % 30000 + 0.5,
                   "Rating__c": k % 100 + 0.25, "Active__c": k % 3 != 0, "Hire_Date__c": f"20{k % 20 + 5:02d}-0{k % 9 + 1}-1{k % 9}",
                   "Last_Login__c": f"2026-0{k % 9 + 1}-1{k % 9}T0{k % 10}:1{k % 10}:00.000+0000",
                   "Bio__c": "Teaches with patience and a good sense of humour; runs the chess club.",
                   "Website__c": f"https://school.test/t/{k}", "Years__c": (k % 40) + 0.5}
                  for k in range(start, start + n)]))
PYEOF
  curl -sf -X POST "$URL/admin/objects/Teacher__c/records" -H 'Content-Type: application/json' \
    --data-binary @"$WORK/chunk.json" >/dev/null
done

SFB="$ROOT/$BUILD/sfbridge"
if [[ -n ${SFB_BEFORE:-}${BEFORE_ENV:-} ]]; then # another build's (or settings') load, same run, own schema
  SFB_BEFORE=${SFB_BEFORE:-$SFB}
  read -ra benv <<<"${BEFORE_ENV:-}"
  echo "== $SFB_BEFORE ${BEFORE_ENV:-}: initial load into schema before"
  SFBRIDGE_SCHEMA=before "$SFB_BEFORE" init >/dev/null
  SFBRIDGE_SCHEMA=before "$SFB_BEFORE" mapping add Teacher__c >/dev/null
  /usr/bin/time -f '%e %M' -o "$WORK/time" env SFBRIDGE_SCHEMA=before "${benv[@]}" "$SFB_BEFORE" load 2>/dev/null
  read -r bsecs brss_kb <"$WORK/time"
  echo "{\"figure\":\"before_initial_load\",\"rows\":$ROWS,\"seconds\":$bsecs,\"rows_per_second\":$(awk "BEGIN{printf \"%d\", $ROWS / $bsecs}"),\"peak_rss_kb\":$brss_kb}"
  psql "$DATABASE_URL" -qc "SET client_min_messages = warning" -c "DROP SCHEMA before CASCADE"
fi
"$SFB" mapping add Teacher__c >/dev/null
echo "== sfbridge initial load (Bulk API 2.0 -> COPY)"
/usr/bin/time -f '%e %M %U %S' -o "$WORK/time" env SFBRIDGE_LOG_LEVEL=info "$SFB" load 2>"$WORK/load.log"
grep -E "via|indexes built|complete" "$WORK/load.log" || true
read -r secs rss_kb usr sys <"$WORK/time"
echo "{\"figure\":\"sfbridge_initial_load\",\"rows\":$ROWS,\"seconds\":$secs,\"rows_per_second\":$(awk "BEGIN{printf \"%d\", $ROWS / $secs}"),\"peak_rss_kb\":$rss_kb,\"sfbridge_cpu_seconds\":$(awk "BEGIN{print $usr + $sys}")}"

if [[ -n ${RELOAD:-} ]]; then # a reload's Bulk job into the stage: SFB_BEFORE / BEFORE_ENV, then this build
  read -ra benv <<<"${BEFORE_ENV:-}"
  for kind in before now; do
    [[ $kind == before && -z ${SFB_BEFORE:-}${BEFORE_ENV:-} ]] && continue
    env=() bin=$SFB
    [[ $kind == before ]] && env=("${benv[@]}") bin=$SFB_BEFORE
    "$bin" reload Teacher__c >/dev/null
    /usr/bin/time -f '%e %M' -o "$WORK/time" env "${env[@]}" "$bin" load 2>/dev/null
    read -r rsecs rrss_kb <"$WORK/time"
    echo "{\"figure\":\"reload\",\"build\":\"$kind\",\"settings\":\"${env[*]}\",\"rows\":$ROWS,\"seconds\":$rsecs,\"peak_rss_kb\":$rrss_kb}"
  done
fi

echo "== plain COPY of the same rows into an identical table (its indexes, no trigger)"
cols=$(psql "$DATABASE_URL" -Atc "SELECT string_agg(quote_ident(column_name), ',' ORDER BY ordinal_position)
  FROM information_schema.columns WHERE table_schema = 'salesforce' AND table_name = 'teacher__c'
  AND column_name NOT IN ('id', '_hc_lastop', '_hc_err')")
psql "$DATABASE_URL" -qc "\\copy (SELECT $cols FROM salesforce.teacher__c) TO '$WORK/rows.csv' WITH (FORMAT csv)"
psql "$DATABASE_URL" -q <<SQL
CREATE TABLE salesforce.copy_baseline (LIKE salesforce.teacher__c INCLUDING ALL);
SQL
t0=$(date +%s.%N)
psql "$DATABASE_URL" -qc "\\copy salesforce.copy_baseline ($cols) FROM '$WORK/rows.csv' WITH (FORMAT csv)"
t1=$(date +%s.%N)
csecs=$(awk "BEGIN{print $t1 - $t0}")
echo "{\"figure\":\"plain_copy\",\"rows\":$ROWS,\"seconds\":$csecs,\"rows_per_second\":$(awk "BEGIN{printf \"%d\", $ROWS / $csecs}"),\"sfbridge_vs_copy\":$(awk "BEGIN{printf \"%.2f\", $csecs / $secs}"),\"bytes\":$(stat -c %s "$WORK/rows.csv")}"

TOKEN=$("$BUILD/lfbench" login "$URL" bench-client bench-secret bench@localforce.test bench)
echo "== localforce alone: the same Bulk query job, its result pages read and thrown away"
soql="SELECT $(sed 's/"//g; s/\bsfid\b/Id/' <<<"$cols") FROM Teacher__c"
$PY - "$URL" "$TOKEN" "$soql" "${SFBRIDGE_BULK_PAGE:-50000}" "$ROWS" <<'PYEOF'
import json, sys, time, urllib.request
url, token, soql, page, rows = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
api = f"{url}/services/data/v60.0/jobs/query"
def call(method, path, body=None):
    req = urllib.request.Request(api + path, data=body and json.dumps(body).encode(), method=method,
                                 headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    return urllib.request.urlopen(req)
t0 = time.monotonic()
job = json.load(call("POST", "", {"operation": "query", "query": soql}))["id"]
while json.load(call("GET", f"/{job}"))["state"] != "JobComplete":
    time.sleep(0.05)
loc, size = None, 0
while True:
    r = call("GET", f"/{job}/results?maxRecords={page}" + (f"&locator={loc}" if loc else ""))
    while chunk := r.read(1 << 16):
        size += len(chunk)
    loc = r.headers.get("Sforce-Locator")
    if not loc or loc == "null":
        break
secs = time.monotonic() - t0
print(json.dumps({"figure": "localforce_alone", "rows": rows, "seconds": round(secs, 2),
                  "rows_per_second": int(rows / secs), "bytes": size}))
PYEOF

echo "== incremental sync of $CHANGES updated records"
update() { # first n ids -> PATCH through sObject collections of 200
  psql "$DATABASE_URL" -Atc "SELECT sfid FROM salesforce.teacher__c ORDER BY id LIMIT $1" >"$WORK/ids"
  $PY - "$URL" "$TOKEN" "$WORK/ids" <<'PYEOF'
import json, sys, urllib.request
url, token = sys.argv[1], sys.argv[2]
ids = open(sys.argv[3]).read().split()
for i in range(0, len(ids), 200):
    body = json.dumps({"allOrNone": False, "records": [
        {"attributes": {"type": "Teacher__c"}, "id": x, "Years__c": 99.5, "Subject__c": "Art"} for x in ids[i:i + 200]]})
    req = urllib.request.Request(f"{url}/services/data/v60.0/composite/sobjects", data=body.encode(), method="PATCH",
                                 headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    urllib.request.urlopen(req).read()
PYEOF
}
# Steady state first: the load's last records are older than the poll overlap
# and one change has moved the watermark past them, as in a running system.
sleep 3
update 1
"$SFB" poll 2>/dev/null
sleep 3
update "$CHANGES"
calls0=$(psql "$DATABASE_URL" -Atc "SELECT api_calls FROM salesforce._sfbridge_mapping")
t0=$(date +%s.%N)
"$SFB" poll 2>/dev/null
t1=$(date +%s.%N)
calls1=$(psql "$DATABASE_URL" -Atc "SELECT api_calls FROM salesforce._sfbridge_mapping")
changed=$(psql "$DATABASE_URL" -Atc "SELECT count(*) FROM salesforce.teacher__c WHERE years__c = 99.5")
echo "{\"figure\":\"incremental_sync\",\"changed\":$CHANGES,\"applied\":$changed,\"seconds\":$(awk "BEGIN{print $t1 - $t0}"),\"api_calls\":$((calls1 - calls0))}"
