#!/usr/bin/env bash
# sfbridge benchmark (issue 13): what an idle poll costs after a burst. ROWS
# Teacher__c records are created in localforce (sObject Collections of 200,
# as an integration's burst arrives), one poll applies them, and then polls
# with nothing new are counted: API calls and records fetched (sfbridge's
# debug lines "poll page of N records"). Prints one JSON line per poll.
#
#   bench/sfbridge-poll.sh                        # 200,000 records
#   ROWS=20000 bench/sfbridge-poll.sh
#   SFB=/path/to/other/sfbridge bench/sfbridge-poll.sh   # another build, same run
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
ROWS=${ROWS:-200000}
IDLE=${IDLE:-3}
BUILD=${BUILD:-build}
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$BUILD" -j "$(nproc)" --target localforce lfbench sfbridge >/dev/null
SFB=${SFB:-$ROOT/$BUILD/sfbridge}

PY=/usr/bin/python3
WORK=$(mktemp -d /tmp/sfbpoll.XXXXXX)
chmod 755 "$WORK"
cleanup() {
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
[[ -n $URL ]] || { cat "$WORK/err"; exit 1; }
export DATABASE_URL SF_LOGIN_URL=$URL SF_CLIENT_ID=bench-client SF_CLIENT_SECRET=bench-secret
export SF_USERNAME=bench@localforce.test SF_PASSWORD=bench SFBRIDGE_LOG_LEVEL=debug

"$SFB" mapping add Teacher__c --fields Name,Email__c >/dev/null 2>&1
"$SFB" load >/dev/null 2>&1

echo "== creating $ROWS Teacher__c records through sObject Collections"
TOKEN=$("$BUILD/lfbench" login "$URL" bench-client bench-secret bench@localforce.test bench)
$PY - "$URL" "$TOKEN" "$ROWS" <<'PYEOF'
import json, sys, urllib.request
url, token, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
for i in range(0, n, 200):
    body = json.dumps({"allOrNone": False, "records": [
        {"attributes": {"type": "Teacher__c"}, "Name": f"Burst {k}", "Email__c": f"b{k}@school.test"}
        for k in range(i, min(n, i + 200))]})
    req = urllib.request.Request(f"{url}/services/data/v60.0/composite/sobjects", data=body.encode(),
                                 method="POST",
                                 headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    urllib.request.urlopen(req).read()
PYEOF

calls() { psql "$DATABASE_URL" -Atc "SELECT api_calls FROM salesforce._sfbridge_mapping"; }
poll() { # label
  local c0 c1 t0 t1 fetched
  c0=$(calls)
  t0=$(date +%s.%N)
  "$SFB" poll 2>"$WORK/poll.log" >/dev/null
  t1=$(date +%s.%N)
  c1=$(calls)
  fetched=$(sed -n 's/.*poll page of \([0-9]*\) records.*/\1/p' "$WORK/poll.log" | awk '{s += $1} END {print s + 0}')
  echo "{\"figure\":\"poll\",\"poll\":\"$1\",\"rows\":$ROWS,\"api_calls\":$((c1 - c0)),\"records_fetched\":$fetched,\"seconds\":$(awk "BEGIN{print $t1 - $t0}")}"
}
poll "first (applies the burst)"
sleep 3 # past the 2 s overlap, as any later poll is
for i in $(seq "$IDLE"); do poll "idle $i"; done
