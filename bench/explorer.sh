#!/usr/bin/env bash
# sfbridge benchmark (issue 16): the Explorer's pages over a ROWS-row mapped
# table, through the management API (GET /api/v3/mappings/Teacher__c/records),
# as the dashboard asks for them: the first page, a page deep in the table
# (keyset cursor), pages sorted by an indexed and an unindexed column, a
# filter on sfid, and a search. The rows are written straight into the mapped
# table (a read-only mapping, so nothing goes to Salesforce). Prints one JSON
# line per kind of page: the median and worst of REPEAT requests, in ms.
#
#   bench/explorer.sh                 # 1,000,000 rows
#   ROWS=100000 bench/explorer.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
ROWS=${ROWS:-1000000}
REPEAT=${REPEAT:-20}
BUILD=${BUILD:-build}
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$BUILD" -j "$(nproc)" --target localforce sfbridge >/dev/null
SFB=$ROOT/$BUILD/sfbridge

WORK=$(mktemp -d /tmp/sfbexplore.XXXXXX)
chmod 755 "$WORK"
cleanup() {
  kill "$SFB_PID" "$LF_PID" 2>/dev/null || true
  wait 2>/dev/null || true
  scripts/pgtmp.sh stop "$WORK/pg"
  rm -rf "$WORK"
}
trap cleanup EXIT

DATABASE_URL=$(scripts/pgtmp.sh start "$WORK/pg")
"$BUILD/localforce" serve --listen 127.0.0.1:0 --org bench/bench-org.json --log-level warn \
  >"$WORK/out" 2>"$WORK/err" &
LF_PID=$!
for _ in $(seq 100); do grep -q listening "$WORK/out" 2>/dev/null && break; sleep 0.1; done
URL=$(sed -n 's/^localforce listening on //p' "$WORK/out")
[[ -n $URL ]] || { cat "$WORK/err"; exit 1; }
export DATABASE_URL SF_LOGIN_URL=$URL SF_CLIENT_ID=bench-client SF_CLIENT_SECRET=bench-secret
export SF_USERNAME=bench@localforce.test SF_PASSWORD=bench SFBRIDGE_LOG_LEVEL=warn

"$SFB" mapping add Teacher__c --fields Name,Email__c,Subject__c,Years__c >/dev/null 2>&1
"$SFB" load >/dev/null 2>&1
echo "== $ROWS rows into salesforce.teacher__c"
psql "$DATABASE_URL" -q <<SQL
INSERT INTO salesforce.teacher__c (sfid, name, email__c, subject__c, years__c, systemmodstamp, isdeleted)
SELECT 'a01' || lpad(to_hex(g), 12, '0') || 'AAA', 'Teacher ' || g, 't' || g || '@school.test',
       (ARRAY['Math','Science','English','History','Art'])[g % 5 + 1], g % 40,
       now() - make_interval(secs => g), false
FROM generate_series(1, $ROWS) g;
ANALYZE salesforce.teacher__c;
SQL

SFBRIDGE_LOG_LEVEL=info "$SFB" run --http 127.0.0.1:0 2>"$WORK/sfb.log" &
SFB_PID=$!
for _ in $(seq 300); do grep -q "management API on" "$WORK/sfb.log" && break; sleep 0.1; done
API=$(sed -n 's/.*management API on \(http:[^ ]*\) .*/\1/p' "$WORK/sfb.log")
[[ -n $API ]] || { cat "$WORK/sfb.log"; exit 1; }

/usr/bin/python3 - "$API" "$ROWS" "$REPEAT" "$DATABASE_URL" <<'PYEOF'
import json, statistics, subprocess, sys, time, urllib.parse, urllib.request
api, rows, repeat, db = sys.argv[1].rstrip("/"), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
base = f"{api}/api/v3/mappings/Teacher__c/records"

def get(q):
    with urllib.request.urlopen(f"{base}?{q}", timeout=60) as r:
        return json.loads(r.read())

def measure(name, q):
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        page = get(q)
        times.append((time.perf_counter() - t0) * 1000)
    print(json.dumps({"figure": "explorer_page", "page": name, "rows": rows, "results": len(page["results"]),
                      "median_ms": round(statistics.median(times), 1), "max_ms": round(max(times), 1)}))
    return page

mid = subprocess.run(["psql", db, "-Atc", f"SELECT id FROM salesforce.teacher__c ORDER BY id OFFSET {rows // 2} LIMIT 1"],
                     capture_output=True, text=True, check=True).stdout.strip()
sfid = subprocess.run(["psql", db, "-Atc", f"SELECT sfid FROM salesforce.teacher__c WHERE id = {mid}"],
                      capture_output=True, text=True, check=True).stdout.strip()
measure("first page (50, by id)", "limit=50")
measure("the middle of the table (keyset)", "limit=50&after=" + urllib.parse.quote(json.dumps([int(mid)])))
p = get("limit=50&sort=systemmodstamp&dir=desc")
measure("sorted by systemmodstamp (indexed), second page", "limit=50&sort=systemmodstamp&dir=desc&after=" + urllib.parse.quote(p["next"]))
measure("sorted by name (no index), first page", "limit=50&sort=name")
measure("filter sfid = one record", "field=sfid&value=" + sfid)
measure("search by sfid", "q=" + sfid)
PYEOF
