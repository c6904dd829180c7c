#!/usr/bin/env bash
# Run localforce under valgrind (memcheck) through its end-to-end paths: OAuth
# and SOAP login, describe, query paging with a two-level relationship,
# create, a failing allOrNone collection, upsert and a SOQL error. Then runs
# sfbridge under valgrind through its paths against that localforce and a
# private Postgres: init, mapping add, a Bulk initial load, a poll, a push of
# inserts/updates/deletes with a refused record, a drift check, and the daemon
# (pull loop + writer thread, the management API and the webhook, a SIGHUP
# reload) stopped by SIGTERM, and status, errors, diagnose, notifications, ack.
# Fails if valgrind reports an
# error or a leak. Slow (valgrind), so not part of make test.
set -euo pipefail
cd "$(dirname "$0")/.."
make build >/dev/null
W=$(mktemp -d)
valgrind --leak-check=full --errors-for-leak-kinds=definite,indirect --error-exitcode=9 \
  build/localforce serve --listen 127.0.0.1:0 --org examples/dream-org.json --db :memory: \
  >"$W/out" 2>"$W/err" &
VG=$!
for _ in $(seq 150); do grep -q listening "$W/out" 2>/dev/null && break; sleep 0.2; done
URL=$(sed -n 's/^localforce listening on //p' "$W/out")
TOKEN=$(curl -sf "$URL/services/oauth2/token" -d grant_type=password -d client_id=sfbridge-demo-client \
  -d client_secret=sfbridge-demo-secret -d username=demo@localforce.test -d password=localforce |
  /usr/bin/python3 -c 'import json,sys;print(json.load(sys.stdin)["access_token"])')
H="Authorization: Bearer $TOKEN"
D=$URL/services/data/v62.0
curl -sf -H "$H" "$D/sobjects/Teacher__c/describe" >/dev/null
NEXT=$(curl -sf -H "$H" -H "Sforce-Query-Options: batchSize=200" \
  "$D/query?q=SELECT+Id,Name,Enrollment__r.Student__r.Name+FROM+Attendance__c" |
  /usr/bin/python3 -c 'import json,sys;print(json.load(sys.stdin)["nextRecordsUrl"])')
curl -sf -H "$H" "$URL$NEXT" >/dev/null
curl -sf -H "$H" -H 'Content-Type: application/json' -X POST "$D/sobjects/Teacher__c" \
  -d '{"First_Name__c":"Val","Last_Name__c":"Grind","Email__c":"vg@x.org"}' >/dev/null
curl -sf -H "$H" -H 'Content-Type: application/json' -X POST "$D/composite/sobjects" \
  -d '{"allOrNone":true,"records":[{"attributes":{"type":"Teacher__c"},"First_Name__c":"A"},{"attributes":{"type":"Teacher__c"},"Email__c":"bad"}]}' >/dev/null
curl -sf -H "$H" -H 'Content-Type: application/json' -X PATCH "$D/sobjects/Teacher__c/Email__c/vg2@x.org" \
  -d '{"First_Name__c":"Up","Last_Name__c":"Sert"}' >/dev/null
curl -s -X POST "$URL/services/Soap/u/62.0" -H 'Content-Type: text/xml' -H 'SOAPAction: ""' \
  -d '<?xml version="1.0"?><se:Envelope xmlns:se="http://schemas.xmlsoap.org/soap/envelope/"><se:Body><login xmlns="urn:partner.soap.sforce.com"><username>demo@localforce.test</username><password>localforce</password></login></se:Body></se:Envelope>' >/dev/null
curl -s -H "$H" "$D/query?q=SELECT+Nope+FROM+Teacher__c" >/dev/null

# --- sfbridge ----------------------------------------------------------------
chmod 755 "$W"
export DATABASE_URL=$(scripts/pgtmp.sh start "$W/pg")
export SF_LOGIN_URL=$URL SF_CLIENT_ID=sfbridge-demo-client SF_CLIENT_SECRET=sfbridge-demo-secret
export SF_USERNAME=demo@localforce.test SF_PASSWORD=localforce SFBRIDGE_LOG_LEVEL=warn SFBRIDGE_BULK_THRESHOLD=20
VGS=(valgrind -q --leak-check=full --errors-for-leak-kinds=definite,indirect --error-exitcode=9)
src=0
sfb() { "${VGS[@]}" build/sfbridge "$@" >>"$W/sfb.out" 2>>"$W/sfb.err" || { echo "sfbridge $* failed under valgrind ($?)"; src=1; }; }
# status and diagnose exit 0, 1 or 2 with their verdict; 9 is valgrind's.
sfb_verdict() {
  local rc=0
  "${VGS[@]}" build/sfbridge "$@" >>"$W/sfb.out" 2>>"$W/sfb.err" || rc=$?
  ((rc <= 2)) || { echo "sfbridge $* failed under valgrind ($rc)"; src=1; }
}
sfb init
sfb mapping add Teacher__c --access read_write --fields Name,First_Name__c,Last_Name__c,Email__c,School__r.External_Id__c
sfb mapping add Student__c
sfb load
sfb poll
psql -q "$DATABASE_URL" -c "INSERT INTO salesforce.teacher__c (name, first_name__c, last_name__c, email__c) VALUES ('V One','V','One','v1@x.org'), ('V Bad','V','Bad','bad')" \
  -c "UPDATE salesforce.teacher__c SET first_name__c = 'Vee' WHERE id = 1" -c "DELETE FROM salesforce.teacher__c WHERE id = 2"
"${VGS[@]}" build/sfbridge push >>"$W/sfb.out" 2>>"$W/sfb.err" || true
sfb drift
sfb_verdict status
sfb errors
sfb_verdict diagnose
sfb notifications --all
sfb ack --all
# The daemon with the management API and a webhook nobody answers (retried).
HP=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
SFBRIDGE_HTTP=127.0.0.1:$HP SFBRIDGE_WEBHOOK_URL=http://127.0.0.1:9/hook SFBRIDGE_LOG_FORMAT=json \
  "${VGS[@]}" build/sfbridge run >>"$W/sfb.out" 2>>"$W/sfb.err" &
SP=$!
sleep 4
psql -q "$DATABASE_URL" -c "UPDATE salesforce.teacher__c SET last_name__c = 'Daemon' WHERE id = 3"
A=http://127.0.0.1:$HP
for p in /healthz /readyz /metrics /api/v3/connections /api/v3/connections/default/mappings \
  /api/v3/connections/default/errors /api/v3/connections/default/notifications?all=1 \
  /api/v3/connections/default/export /api/v3/mappings/Teacher__c /api/v3/nope \
  / /ui/app.js /ui/nope.js /api/v3/connections/default/objects \
  /api/v3/connections/default/objects/Teacher__c /api/v3/connections/default/objects/Nope__c \
  "/api/v3/connections/default/activity?hours=24" "/api/v3/mappings/Teacher__c/records?limit=2" \
  "/api/v3/mappings/Teacher__c/records?sort=name&dir=desc&limit=2&after=%5B%22V%22%2C1%5D" \
  "/api/v3/mappings/Teacher__c/records?q=vee&field=bogus" /api/v3/mappings/Teacher__c/records/1; do
  curl -s "$A$p" >/dev/null || true
done
J=(-H 'Content-Type: application/json')
curl -s "${J[@]}" -X PATCH -d '{"config":{"sf_polling_seconds":120}}' "$A/api/v3/mappings/Teacher__c" >/dev/null
curl -s "${J[@]}" -X POST -d '{"object_name":"Nope__c","config":{"fields":["Name"]}}' \
  "$A/api/v3/connections/default/mappings" >/dev/null
curl -s "${J[@]}" -X POST -d '{}' "$A/api/v3/errors/all/actions/retry" >/dev/null
curl -s -X POST -H 'Content-Type: application/json' -d '{}' "$A/api/v3/mappings/Student__c/actions/pause" >/dev/null
curl -s -X POST -H 'Content-Type: application/json' -d '{}' "$A/api/v3/mappings/Student__c/actions/resume" >/dev/null
curl -s -X POST -H 'Content-Type: application/json' -d '{}' "$A/api/v3/notifications/all/actions/acknowledge" >/dev/null
kill -HUP "$SP" # reload: threads, connections and the API start over
sleep 3
kill -TERM "$SP"; wait "$SP" || { echo "sfbridge run failed under valgrind ($?)"; src=1; }
scripts/pgtmp.sh stop "$W/pg"
grep -E "==[0-9]+==" "$W/sfb.err" | head -40 || true
grep -q "FAILED" "$W/sfb.out" || true

kill -TERM "$VG"
rc=0; wait "$VG" || rc=$?
((src == 0)) || rc=1
grep -E "ERROR SUMMARY|in use at exit" "$W/err"
rm -rf "$W"
if ((rc != 0)); then echo "valgrind: FAILED (exit $rc)"; exit 1; fi
echo "valgrind: clean"
