#!/usr/bin/env bash
# sfbridge write-back benchmarks (issue 5), Postgres -> Salesforce (localforce
# with its org in an SQLite file):
#
#  1. latency at RATE writes/s: `sfbridge run` in the background; a psycopg
#     client commits one INSERT every 1/RATE s for N rows, noting the time
#     each COMMIT returned; a jsforce CDC subscriber on
#     /data/Teacher__ChangeEvent notes when each record arrived, i.e. when
#     localforce had accepted it (CDC delivery adds about 1 ms). Also from
#     the server side: _trigger_log_archive.processed_at (set once Salesforce
#     answered) minus the client's commit time.
#  2. throughput: the daemon stopped, ROWS inserts committed in Postgres in
#     four transactions, then one `sfbridge push` until done: records/s, API
#     calls per 1,000 records, every row with an sfid, localforce's count.
#  3. sfbridge's peak RSS during that push (/usr/bin/time -f %M).
#  4. where the push's time goes: Postgres statement time (the cluster's
#     statement log, taken during the push), sfbridge's own per-batch split
#     (its debug log), and localforce's time for the same collections of 200
#     Teacher__c records sent by a plain keep-alive client.
#
# Prints one JSON line per figure; bench/README.md keeps the latest figures.
#
#   bench/sfbridge-write.sh                       # N=3000 at RATE=100, ROWS=100000
#   BUILD=build-x ROWS=20000 bench/sfbridge-write.sh
#   ANALYZE_LOG=1 bench/sfbridge-write.sh         # diagnostic: ANALYZE _trigger_log before the push
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
N=${N:-3000}
RATE=${RATE:-100}
ROWS=${ROWS:-100000}
SEED=${SEED:-1000}
BUILD=${BUILD:-build}
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$BUILD" -j "$(nproc)" --target localforce lfbench sfbridge >/dev/null

PY=/usr/bin/python3
SFB="$ROOT/$BUILD/sfbridge"
WORK=$(mktemp -d /tmp/sfbwbench.XXXXXX)
chmod 755 "$WORK"
LF_PID= RUN_PID= SUB_PID=
cleanup() {
  for p in $SUB_PID $RUN_PID $LF_PID; do kill "$p" 2>/dev/null || true; done
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
[[ -n $URL ]] || { cat "$WORK/err"; exit 1; }
export DATABASE_URL SF_LOGIN_URL=$URL SF_CLIENT_ID=bench-client SF_CLIENT_SECRET=bench-secret
export SF_USERNAME=bench@localforce.test SF_PASSWORD=bench SFBRIDGE_LOG_LEVEL=warn
TOKEN=$("$BUILD/lfbench" login "$URL" bench-client bench-secret bench@localforce.test bench)
lf_count() { curl -sf "$URL/admin/health" | $PY -c 'import json,sys; print(json.load(sys.stdin)["objects"]["Teacher__c"])'; }
lf_calls() { curl -sf "$URL/admin/health" | $PY -c 'import json,sys; print(json.load(sys.stdin)["api_usage"])'; }
psqlq() { psql "$DATABASE_URL" -XAtq "$@"; }

# The Teacher__c values used everywhere (the fields of bench/bench-org.json).
COLS="name, email__c, phone__c, subject__c, grade_level__c, salary__c, rating__c, active__c, hire_date__c,
  last_login__c, bio__c, website__c, years__c"
VALUES_OF_K="'Teacher ' || k, 't' || k || '@school.test', '(510) 555-' || lpad((k % 10000)::text, 4, '0'),
  (ARRAY['Math', 'Science', 'English', 'History', 'Art'])[k % 5 + 1], k % 12 + 1, 40000 + k % 30000 + 0.5,
  k % 100 + 0.25, k % 3 <> 0, make_date(2005 + k % 20, k % 9 + 1, 10 + k % 9),
  make_timestamp(2026, k % 9 + 1, 10 + k % 9, k % 10, 10 + k % 10, 0),
  'Teaches with patience and a good sense of humour; runs the chess club.', 'https://school.test/t/' || k,
  k % 40 + 0.5"

echo "== $SEED Teacher__c records in localforce, a read-write mapping, initial load"
$PY - "$SEED" >"$WORK/seed.json" <<'PYEOF'
import json, sys
subjects = ["Math", "Science", "English", "History", "Art"]
print(json.dumps([{"Name": f"Seed {k}", "Email__c": f"s{k}@school.test", "Subject__c": subjects[k % 5],
                   "Grade_Level__c": k % 12 + 1, "Salary__c": 40000 + k, "Active__c": k % 3 != 0}
                  for k in range(int(sys.argv[1]))]))
PYEOF
curl -sf -X POST "$URL/admin/objects/Teacher__c/records" -H 'Content-Type: application/json' \
  --data-binary @"$WORK/seed.json" >/dev/null
"$SFB" mapping add Teacher__c --access read_write >/dev/null
"$SFB" load 2>/dev/null >/dev/null
[[ $(psqlq -c "SELECT count(*) FROM salesforce.teacher__c") == "$SEED" ]] || { echo "load failed" >&2; exit 1; }

echo "== latency: $N inserts at $RATE/s while 'sfbridge run' writes back"
"$SFB" run >"$WORK/run.out" 2>"$WORK/run.err" &
RUN_PID=$!
# The CDC subscriber (jsforce from tests/compat), one line per created record.
cat >"$WORK/cdc.mjs" <<'JSEOF'
import { createRequire } from 'node:module';
import fs from 'node:fs';
const require = createRequire(process.env.COMPAT + '/package.json');
const jsforce = require('jsforce');
const { StreamingExtension } = require('jsforce/lib/api/streaming.js');
const [url, token, prefix, want, outFile] = process.argv.slice(2);
const ch = '/data/Teacher__ChangeEvent';
const conn = new jsforce.Connection({ instanceUrl: url, accessToken: token, version: '60.0' });
const client = conn.streaming.createClient([new StreamingExtension.Replay(ch, -1)]);
const out = fs.openSync(outFile, 'w');
let seen = 0;
const sub = client.subscribe(ch, (data) => {
  const t = performance.timeOrigin + performance.now();
  const p = data.payload, h = p.ChangeEventHeader;
  if (h.changeType !== 'CREATE' || typeof p.Name !== 'string' || !p.Name.startsWith(prefix)) return;
  fs.writeSync(out, `${p.Name}\t${t.toFixed(3)}\t${h.commitTimestamp}\n`);
  if (++seen >= Number(want)) { fs.closeSync(out); process.exit(0); }
});
sub.then(() => console.log('subscribed'), (e) => { console.error('subscribe failed', e); process.exit(1); });
JSEOF
COMPAT="$ROOT/tests/compat" node "$WORK/cdc.mjs" "$URL" "$TOKEN" "Lat " "$N" "$WORK/cdc.tsv" >"$WORK/sub.out" 2>"$WORK/sub.err" &
SUB_PID=$!
for _ in $(seq 100); do grep -q subscribed "$WORK/sub.out" 2>/dev/null && break; sleep 0.1; done
grep -q subscribed "$WORK/sub.out" || { cat "$WORK/sub.err" >&2; exit 1; }
# Warm up: one write must come back with an sfid before the clock starts.
psqlq -c "INSERT INTO salesforce.teacher__c (name, email__c) VALUES ('Warm up', 'warm@school.test')"
for _ in $(seq 200); do
  [[ -n $(psqlq -c "SELECT sfid FROM salesforce.teacher__c WHERE name = 'Warm up'") ]] && break; sleep 0.05
done
[[ -n $(psqlq -c "SELECT sfid FROM salesforce.teacher__c WHERE name = 'Warm up'") ]] ||
  { echo "the daemon does not write back" >&2; cat "$WORK/run.err" >&2; exit 1; }
calls0=$(lf_calls)
$PY - "$DATABASE_URL" "$N" "$RATE" "$WORK/commits.tsv" <<'PYEOF'
import sys, time, psycopg
dsn, n, rate, out = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
subjects = ["Math", "Science", "English", "History", "Art"]
sql = ("INSERT INTO salesforce.teacher__c (name, email__c, phone__c, subject__c, grade_level__c, salary__c,"
       " rating__c, active__c, hire_date__c, last_login__c, bio__c, website__c, years__c)"
       " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)")
rows = []
with psycopg.connect(dsn, autocommit=True) as c:
    cur = c.cursor()
    t0 = time.time() + 0.05
    for i in range(n):
        target = t0 + i / rate
        d = target - time.time()
        if d > 0:
            time.sleep(d)
        cur.execute(sql, (f"Lat {i}", f"lat{i}@school.test", f"(415) 555-{i % 10000:04d}", subjects[i % 5],
                          i % 12 + 1, 50000 + i, i % 100 + 0.5, i % 2 == 0, f"2019-0{i % 9 + 1}-1{i % 9}",
                          f"2026-0{i % 9 + 1}-1{i % 9} 08:30:00", "Runs the robotics club.",
                          f"https://school.test/lat/{i}", i % 30 + 0.5))
        rows.append((f"Lat {i}", time.time() * 1000))  # autocommit: COMMIT has returned
    elapsed = time.time() - t0
with open(out, "w") as f:
    for name, t in rows:
        f.write(f"{name}\t{t:.3f}\n")
print(f"{n} commits in {elapsed:.1f} s ({n / elapsed:.1f}/s)", file=sys.stderr)
PYEOF
for _ in $(seq 300); do kill -0 "$SUB_PID" 2>/dev/null || break; sleep 0.1; done
kill "$SUB_PID" 2>/dev/null || true
wait "$SUB_PID" 2>/dev/null || true
SUB_PID=
# Let the writer finish and archive, then read the server-side times.
for _ in $(seq 100); do
  [[ $(psqlq -c "SELECT count(*) FROM salesforce._trigger_log WHERE state IN ('NEW', 'PENDING')") == 0 ]] && break
  sleep 0.1
done
calls1=$(lf_calls)
psqlq -c "SELECT t.name, extract(epoch FROM a.processed_at) * 1000, extract(epoch FROM a.created_at) * 1000
  FROM salesforce._trigger_log_archive a JOIN salesforce.teacher__c t ON t.id = a.record_id
  WHERE a.action = 'INSERT' AND a.state = 'SUCCESS' AND t.name LIKE 'Lat %'" -F $'\t' >"$WORK/processed.tsv" || true
$PY - "$WORK" "$N" "$RATE" "$((calls1 - calls0))" <<'PYEOF'
import json, sys
work, n, rate, calls = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
def load(path):
    d = {}
    for line in open(path):
        f = line.rstrip("\n").split("\t")
        if len(f) >= 2 and f[0]:
            d[f[0]] = [float(x) for x in f[1:]]
    return d
commits = load(f"{work}/commits.tsv")
def stats(lat):
    s = sorted(lat)
    q = lambda p: round(s[min(len(s) - 1, int(len(s) * p))], 1)
    return {"median_ms": q(0.5), "p90_ms": q(0.9), "p99_ms": q(0.99), "max_ms": round(s[-1], 1)} if s else {}
try:
    cdc = load(f"{work}/cdc.tsv")
except FileNotFoundError:
    cdc = {}
lat = [cdc[k][0] - commits[k][0] for k in commits if k in cdc]
print(json.dumps({"figure": "writeback_latency", "measure": "commit_to_cdc_event", "rate_per_s": rate, "rows": n,
                  "seen": len(lat), **stats(lat), "api_calls": calls,
                  "records_per_api_call": round(n / calls, 1) if calls else None}))
proc = load(f"{work}/processed.tsv")
lat2 = [proc[k][0] - commits[k][0] for k in commits if k in proc]
print(json.dumps({"figure": "writeback_latency", "measure": "commit_to_processed_at", "rate_per_s": rate,
                  "rows": n, "seen": len(lat2), **stats(lat2)}))
PYEOF
kill -TERM "$RUN_PID"
wait "$RUN_PID" || true
RUN_PID=

echo "== throughput: $ROWS inserts committed in Postgres, then 'sfbridge push'"
lf0=$(lf_count)
calls0=$(lf_calls)
base=$(psqlq -c "SELECT count(*) FROM salesforce.teacher__c")
t0=$(date +%s.%N)
for ((q = 0; q < 4; q++)); do
  lo=$((q * ROWS / 4 + 1)) hi=$(((q + 1) * ROWS / 4))
  psqlq -c "INSERT INTO salesforce.teacher__c ($COLS) SELECT $VALUES_OF_K FROM generate_series($lo, $hi) k"
done
t1=$(date +%s.%N)
echo "{\"figure\":\"writeback_capture\",\"rows\":$ROWS,\"transactions\":4,\"seconds\":$(awk "BEGIN{print $t1 - $t0}")}"
# Diagnostic only (ANALYZE_LOG=1): fresh planner statistics for the trigger log
# before the push; see "Write-back (issue 5)" in bench/README.md for why.
[[ ${ANALYZE_LOG:-0} == 1 ]] && psqlq -c "ANALYZE salesforce._trigger_log"
# Every statement's duration goes to the cluster's log during the push.
psqlq -c "ALTER SYSTEM SET log_min_duration_statement = 0" -c "SELECT pg_reload_conf()" >/dev/null
pglog_from=$(wc -c <"$WORK/pg/postgres.log")
t0=$(date +%s.%N)
SFBRIDGE_LOG_LEVEL=debug /usr/bin/time -f '%e %M %U %S' -o "$WORK/time" "$SFB" push >"$WORK/push.out" 2>"$WORK/push.err" ||
  { cat "$WORK/push.out"; grep -v ' debug ' "$WORK/push.err" | tail -5; }
t1=$(date +%s.%N)
psqlq -c "ALTER SYSTEM RESET log_min_duration_statement" -c "SELECT pg_reload_conf()" >/dev/null
tail -c +$((pglog_from + 1)) "$WORK/pg/postgres.log" >"$WORK/push.pglog"
read -r _ rss_kb cpu_user cpu_sys <"$WORK/time"
secs=$(awk "BEGIN{print $t1 - $t0}")
calls1=$(lf_calls)
lf1=$(lf_count)
read -r written refused retrying calls < <(sed -nE 's/^([0-9]+) records written, ([0-9]+) refused \(FAILED\), ([0-9]+) waiting to retry, ([0-9]+) API calls$/\1 \2 \3 \4/p' "$WORK/push.out") || true
with_sfid=$(psqlq -c "SELECT count(*) FROM salesforce.teacher__c WHERE name LIKE 'Teacher %' AND sfid IS NOT NULL AND _hc_lastop = 'INSERTED'")
echo "{\"figure\":\"writeback_throughput\",\"records\":$ROWS,\"seconds\":$secs,\"records_per_second\":$(awk "BEGIN{printf \"%d\", $ROWS / $secs}"),\"written\":${written:-0},\"refused\":${refused:-0},\"retrying\":${retrying:-0},\"api_calls\":${calls:-0},\"api_calls_per_1000\":$(awk "BEGIN{printf \"%.2f\", ${calls:-0} * 1000 / $ROWS}"),\"api_calls_seen_by_localforce\":$((calls1 - calls0)),\"rows_with_sfid\":$with_sfid,\"localforce_added\":$((lf1 - lf0)),\"postgres_rows\":$(($(psqlq -c "SELECT count(*) FROM salesforce.teacher__c") - base))}"
echo "{\"figure\":\"writeback_peak_rss\",\"records\":$ROWS,\"peak_rss_kb\":$rss_kb}"

echo "== where the push's time goes"
# localforce alone: the same collections of 200 Teacher__c records over one keep-alive connection.
$PY - "$URL" "$TOKEN" "$WORK/push.pglog" "$WORK/push.err" "$secs" "$cpu_user" "$cpu_sys" <<'PYEOF'
import http.client, json, re, statistics, sys, time, urllib.parse
url, token, pglog, errlog = sys.argv[1:5]
secs, cpu_user, cpu_sys = float(sys.argv[5]), float(sys.argv[6]), float(sys.argv[7])
subjects = ["Math", "Science", "English", "History", "Art"]
u = urllib.parse.urlparse(url)
c = http.client.HTTPConnection(u.hostname, u.port)
hdr = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
ms = []
for b in range(50):
    body = json.dumps({"allOrNone": False, "records": [
        {"attributes": {"type": "Teacher__c"}, "Name": f"Probe {b}-{i}", "Email__c": f"p{b}.{i}@school.test",
         "Phone__c": "(510) 555-0101", "Subject__c": subjects[i % 5], "Grade_Level__c": i % 12 + 1,
         "Salary__c": 40000.5 + i, "Rating__c": 12.25, "Active__c": i % 3 != 0, "Hire_Date__c": "2015-03-12",
         "Last_Login__c": "2026-03-12T03:13:00.000+0000",
         "Bio__c": "Teaches with patience and a good sense of humour; runs the chess club.",
         "Website__c": f"https://school.test/p/{b}/{i}", "Years__c": 7.5} for i in range(200)]}).encode()
    t0 = time.perf_counter()
    c.request("POST", "/services/data/v60.0/composite/sobjects", body, hdr)
    r = c.getresponse(); r.read()
    ms.append((time.perf_counter() - t0) * 1000)
    assert r.status == 200, r.status
# Postgres: sum of statement durations in the log written during the push, by statement.
tot, cnt = {}, {}
for line in open(pglog, errors="replace"):
    m = re.search(r"duration: ([\d.]+) ms\s+(statement|parse [^:]*|bind [^:]*|execute [^:]*):\s*(.*)", line)
    if not m:
        continue
    key = re.sub(r"\s+", " ", m.group(3))[:60]
    tot[key] = tot.get(key, 0) + float(m.group(1)); cnt[key] = cnt.get(key, 0) + 1
pg_ms = sum(tot.values())
top = sorted(tot.items(), key=lambda kv: -kv[1])[:6]
# sfbridge's own split per claimed batch (debug log): claim, fold, send+record.
split = [0, 0, 0]
for line in open(errlog, errors="replace"):
    m = re.search(r"claim (\d+) ms, fold (\d+) ms, send\+record (\d+) ms", line)
    if m:
        split = [a + int(b) for a, b in zip(split, m.groups())]
lf_ms = statistics.median(ms)
print(json.dumps({"figure": "writeback_time_split", "push_seconds": secs,
                  "sfbridge_cpu_seconds": {"user": cpu_user, "sys": cpu_sys},
                  "localforce_collection_of_200_ms": {"median": round(lf_ms, 1), "max": round(max(ms), 1)},
                  "localforce_alone_records_per_second": int(200 * 1000 / lf_ms),
                  "sfbridge_batches_ms": {"claim": split[0], "fold": split[1], "send_and_record": split[2]},
                  "postgres_statements_ms": round(pg_ms),
                  "postgres_top": [{"statement": k, "calls": cnt[k], "ms": round(v)} for k, v in top]}))
PYEOF
