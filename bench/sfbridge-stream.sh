#!/usr/bin/env bash
# sfbridge accelerated sync (issue 6): latency from a change committed in
# localforce to the row changed in Postgres, at RATE changes per second for
# SECONDS, through Change Data Capture streaming (polling set to an hour, so
# only the stream can deliver). A trigger added to the table for the bench
# records clock_timestamp() of each applied change; the client notes when each
# REST update returned (the commit is before that). Prints one JSON line.
#
#   bench/sfbridge-stream.sh          # RATE=100 SECONDS=20
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
RATE=${RATE:-100}
SECS=${SECONDS_RUN:-20}
BUILD=${BUILD:-build}
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$BUILD" -j "$(nproc)" --target localforce lfbench sfbridge >/dev/null
PY=/usr/bin/python3
WORK=$(mktemp -d /tmp/sfbstream.XXXXXX)
chmod 755 "$WORK"
cleanup() {
  [[ -n ${SFB_PID:-} ]] && kill "$SFB_PID" 2>/dev/null || true
  kill "$LF_PID" 2>/dev/null || true
  wait 2>/dev/null || true
  scripts/pgtmp.sh stop "$WORK/pg"
  rm -rf "$WORK"
}
trap cleanup EXIT
DATABASE_URL=$(scripts/pgtmp.sh start "$WORK/pg")
"$BUILD/localforce" serve --listen 127.0.0.1:0 --org bench/bench-org.json --db "$WORK/lf.sqlite" \
  --log-level warn >"$WORK/out" 2>"$WORK/err" &
LF_PID=$!
for _ in $(seq 100); do grep -q listening "$WORK/out" 2>/dev/null && break; sleep 0.1; done
URL=$(sed -n 's/^localforce listening on //p' "$WORK/out")
export DATABASE_URL SF_LOGIN_URL=$URL SF_CLIENT_ID=bench-client SF_CLIENT_SECRET=bench-secret
export SF_USERNAME=bench@localforce.test SF_PASSWORD=bench SFBRIDGE_LOG_LEVEL=warn
curl -sf -X POST "$URL/admin/objects/Teacher__c/records" -H 'Content-Type: application/json' \
  --data-binary "$($PY -c 'import json; print(json.dumps([{"Name": f"T{k}", "Years__c": 0} for k in range(100)]))')" >/dev/null
SFB="$ROOT/$BUILD/sfbridge"
"$SFB" mapping add Teacher__c --accelerated --poll 3600 >/dev/null
"$SFB" load 2>/dev/null
psql -q "$DATABASE_URL" <<'SQL'
CREATE TABLE salesforce.bench_applied (v double precision PRIMARY KEY, at timestamptz);
CREATE FUNCTION salesforce.bench_note() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO salesforce.bench_applied VALUES (NEW.years__c, clock_timestamp()) ON CONFLICT DO NOTHING;
  RETURN NULL;
END $$;
CREATE TRIGGER bench_note AFTER UPDATE ON salesforce.teacher__c FOR EACH ROW
  WHEN (NEW.years__c IS DISTINCT FROM OLD.years__c) EXECUTE FUNCTION salesforce.bench_note();
SQL
"$SFB" run 2>"$WORK/sfb.log" &
SFB_PID=$!
for _ in $(seq 100); do
  [[ $("$SFB" status --json 2>/dev/null | $PY -c 'import json,sys; print(json.load(sys.stdin)["mappings"][0]["stream"]["state"])') == CONNECTED ]] && break
  sleep 0.1
done
TOKEN=$("$BUILD/lfbench" login "$URL" bench-client bench-secret bench@localforce.test bench)
$PY - "$URL" "$TOKEN" "$DATABASE_URL" "$RATE" "$SECS" <<'PYEOF'
import json, sys, time, urllib.request, statistics, psycopg
url, token, dsn, rate, secs = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4]), float(sys.argv[5])
hdr = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
q = urllib.request.Request(f"{url}/services/data/v60.0/query?q=SELECT+Id+FROM+Teacher__c", headers=hdr)
ids = [r["Id"] for r in json.load(urllib.request.urlopen(q))["records"]]
sent = {}
n = int(rate * secs)
start = time.time()
for k in range(n):
    due = start + k / rate
    time.sleep(max(0.0, due - time.time()))
    v = 1000.0 + k
    req = urllib.request.Request(f"{url}/services/data/v60.0/sobjects/Teacher__c/{ids[k % len(ids)]}",
                                 data=json.dumps({"Years__c": v}).encode(), method="PATCH", headers=hdr)
    urllib.request.urlopen(req).read()
    sent[v] = time.time()
with psycopg.connect(dsn) as c:
    deadline = time.time() + 30
    while time.time() < deadline:
        got = {float(v): float(t) for v, t in c.execute("SELECT v, extract(epoch FROM at) FROM salesforce.bench_applied").fetchall()}
        if len(got) >= n:
            break
        time.sleep(0.2)
lat = sorted((got[v] - t) * 1000 for v, t in sent.items() if v in got)
q = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))]
print(json.dumps({"figure": "stream_latency", "rate_per_s": rate, "changes": n, "applied": len(lat),
                  "median_ms": round(statistics.median(lat), 1), "p90_ms": round(q(0.90), 1),
                  "p99_ms": round(q(0.99), 1), "max_ms": round(lat[-1], 1)}))
PYEOF
