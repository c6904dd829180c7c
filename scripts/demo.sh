#!/usr/bin/env bash
# make demo: the whole thing on one machine. Starts a private Postgres cluster
# and localforce with the Dream Project org, maps the Dream Project objects,
# runs sfbridge (initial load, then polling) and shows live status until
# Ctrl-C, which stops everything this script started.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
RUN=$ROOT/.demo
mkdir -p "$RUN"
chmod 755 "$RUN"
PORT=${LOCALFORCE_PORT:-8111}
POLL=${DEMO_POLL_SECONDS:-300}
OBJECTS=(Account Contact Teacher__c Student__c Course__c Enrollment__c Attendance__c)

LF_PID= SFB_PID=
stop_all() {
  trap - INT TERM EXIT
  echo
  echo "demo: stopping"
  [[ -n $SFB_PID ]] && kill "$SFB_PID" 2>/dev/null && wait "$SFB_PID" 2>/dev/null || true
  [[ -n $LF_PID ]] && kill "$LF_PID" 2>/dev/null && wait "$LF_PID" 2>/dev/null || true
  scripts/pgtmp.sh stop "$RUN/pg"
  echo "demo: stopped (data kept in $RUN; rm -rf $RUN for a fresh start)"
}
trap stop_all INT TERM EXIT

echo "demo: starting Postgres (private cluster in $RUN/pg)"
DATABASE_URL=$(scripts/pgtmp.sh start "$RUN/pg")

echo "demo: starting localforce with examples/dream-org.json on port $PORT"
build/localforce serve --listen "127.0.0.1:$PORT" --org examples/dream-org.json \
  --db "$RUN/dream-org.sqlite" >"$RUN/localforce.out" 2>"$RUN/localforce.log" &
LF_PID=$!
for _ in $(seq 100); do
  grep -q listening "$RUN/localforce.out" 2>/dev/null && break
  kill -0 "$LF_PID" 2>/dev/null || { cat "$RUN/localforce.log"; exit 1; }
  sleep 0.1
done
URL=$(sed -n 's/^localforce listening on //p' "$RUN/localforce.out")

export DATABASE_URL SF_LOGIN_URL=$URL SF_CLIENT_ID=sfbridge-demo-client SF_CLIENT_SECRET=sfbridge-demo-secret
export SF_USERNAME=demo@localforce.test SF_PASSWORD=localforce
SFB=$ROOT/build/sfbridge

"$SFB" init
for o in "${OBJECTS[@]}"; do
  if ! "$SFB" mapping show "$o" >/dev/null 2>&1; then
    "$SFB" mapping add "$o" --poll "$POLL" --access read_write --accelerated 2>>"$RUN/sfbridge.log"
  fi
done
echo "demo: initial load"
"$SFB" load
"$SFB" run 2>>"$RUN/sfbridge.log" &
SFB_PID=$!

cat <<MSG

  sfbridge is syncing the Dream Project org and Postgres (schema salesforce) both ways:
  Salesforce changes stream in as they happen (Change Data Capture; a poll every ${POLL} s is the
  safety net); Postgres changes are written to Salesforce at once.

  Postgres:    psql $DATABASE_URL
               SELECT name, email__c, subject__c FROM salesforce.teacher__c LIMIT 5;
  localforce:  $URL (user demo@localforce.test, password localforce)
  Logs:        $RUN/sfbridge.log, $RUN/localforce.log

  Change a teacher in Salesforce and watch it arrive (within a blink):
    TOKEN=\$(curl -s $URL/services/oauth2/token -d grant_type=password \\
      -d client_id=sfbridge-demo-client -d client_secret=sfbridge-demo-secret \\
      -d username=demo@localforce.test -d password=localforce |
      python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
    ID=\$(psql -Atc "SELECT sfid FROM salesforce.teacher__c LIMIT 1" $DATABASE_URL)
    curl -s -X PATCH -H "Authorization: Bearer \$TOKEN" -H 'Content-Type: application/json' \\
      $URL/services/data/v60.0/sobjects/Teacher__c/\$ID -d '{"Subject__c":"Art"}'
    psql -c "SELECT name, subject__c, systemmodstamp FROM salesforce.teacher__c WHERE sfid = '\$ID'" $DATABASE_URL

  Change a teacher in Postgres and watch it reach Salesforce (and sfid/_hc_lastop come back):
    psql $DATABASE_URL -c "UPDATE salesforce.teacher__c SET subject__c = 'Music' WHERE id = 1"
    psql $DATABASE_URL -c "INSERT INTO salesforce.teacher__c (name, first_name__c, last_name__c) VALUES ('Ada L', 'Ada', 'L')"
    psql $DATABASE_URL -c "SELECT id, sfid, name, _hc_lastop, _hc_err FROM salesforce.teacher__c ORDER BY id DESC LIMIT 3"
    psql $DATABASE_URL -c "SELECT id, state, action, record_id, sfid, sf_message FROM salesforce._trigger_log_archive ORDER BY id DESC LIMIT 5"

  Press Ctrl-C to stop Postgres, localforce and sfbridge.

MSG
sleep 2
if [[ -t 1 ]]; then
  sleep 3
  # Live status below the instructions, redrawn in place.
  tput sc 2>/dev/null || true
  while kill -0 "$SFB_PID" 2>/dev/null; do
    tput rc 2>/dev/null || true; tput ed 2>/dev/null || true
    "$SFB" status 2>/dev/null | sed 's/^/  /'
    sleep 2
  done
else
  while kill -0 "$SFB_PID" 2>/dev/null; do
    "$SFB" status 2>/dev/null | sed 's/^/  /'
    echo
    sleep 10
  done
fi
echo "demo: sfbridge exited; see $RUN/sfbridge.log"
