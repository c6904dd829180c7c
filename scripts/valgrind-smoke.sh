#!/usr/bin/env bash
# Run localforce under valgrind (memcheck) through its end-to-end paths: OAuth
# and SOAP login, describe, query paging with a two-level relationship,
# create, a failing allOrNone collection, upsert and a SOQL error. Fails if
# valgrind reports an error or a leak. Slow (valgrind), so not part of make test.
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
kill -TERM "$VG"
rc=0; wait "$VG" || rc=$?
grep -E "ERROR SUMMARY|in use at exit" "$W/err"
rm -rf "$W"
if ((rc != 0)); then echo "valgrind: FAILED (exit $rc)"; exit 1; fi
echo "valgrind: clean"
