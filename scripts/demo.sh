#!/usr/bin/env bash
# make demo: the whole thing on one machine. Starts a private Postgres cluster
# and localforce with the Dream Project org, maps the Dream Project objects,
# runs sfbridge (initial load, then polling) and shows live status until
# Ctrl-C (or q), which stops everything this script started and exits 0.
#
# Settings (environment):
#   DEMO_PG_PORT       Postgres port (default: the one used last time, else 55432)
#   LOCALFORCE_PORT    localforce port (default 8111)
#   DEMO_HTTP_PORT     the dashboard's and management API's port (default 8112)
#   DEMO_POLL_SECONDS  the mappings' polling interval (default 300)
#   DEMO_DIR           where the cluster, the org and the logs live (default .demo)
#   SFBRIDGE_BIN, LOCALFORCE_BIN   the programs (default build/sfbridge, build/localforce)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
# Paths given relative to the caller's directory, resolved before the cd.
SFB=$(realpath -m "${SFBRIDGE_BIN:-$ROOT/build/sfbridge}")
LF=$(realpath -m "${LOCALFORCE_BIN:-$ROOT/build/localforce}")
RUN=$(realpath -m "${DEMO_DIR:-$ROOT/.demo}")
cd "$ROOT"
for v in DEMO_PG_PORT LOCALFORCE_PORT DEMO_HTTP_PORT DEMO_POLL_SECONDS; do
  [[ ${!v:-0} =~ ^[0-9]+$ ]] || { echo "demo: $v must be a number, not '${!v}'" >&2; exit 2; }
done
PORT=${LOCALFORCE_PORT:-8111}
HTTP_PORT=${DEMO_HTTP_PORT:-8112}
POLL=${DEMO_POLL_SECONDS:-300}
PG_PORT=${DEMO_PG_PORT:-$(cat "$RUN/pg/port" 2>/dev/null || true)} # else last run's port
[[ $PG_PORT =~ ^[0-9]+$ ]] || PG_PORT=55432
for b in "$SFB" "$LF"; do
  [[ -x $b ]] || { echo "demo: $b not found: run make demo (or make build)" >&2; exit 1; }
done
mkdir -p "$RUN"
chmod 755 "$RUN" # Postgres runs as nobody when the demo runs as root

# The mappings: OBJECT:ACCESS:UNIQUE_IDENTIFIER. Read-write mappings need a
# unique identifier (an External ID field), as Heroku Connect warns; objects
# without one are read-only.
MAPPINGS=(
  Account:read_write:External_Id__c
  Contact:read_only:
  Teacher__c:read_write:Email__c
  Student__c:read_write:Student_Number__c
  Course__c:read_write:Course_Code__c
  Enrollment__c:read_write:Enrollment_Key__c
  Attendance__c:read_only:
)

# --- stopping: every exit path stops what was started and restores the terminal
LF_PID='' SFB_PID='' TTY_SAVED=''
stop_all() {
  trap - INT TERM HUP EXIT
  set +e # (the terminal may be gone: stop everything all the same)
  echo
  echo "demo: stopping"
  [[ -n $SFB_PID ]] && kill "$SFB_PID" 2>/dev/null && wait "$SFB_PID" 2>/dev/null || true
  [[ -n $LF_PID ]] && kill "$LF_PID" 2>/dev/null && wait "$LF_PID" 2>/dev/null || true
  scripts/pgtmp.sh stop "$RUN/pg" || true
  [[ -n $TTY_SAVED ]] && stty "$TTY_SAVED" 2>/dev/null || true
  local kept=$RUN
  [[ -f $RUN/pg/location ]] && kept+=" and $(cat "$RUN/pg/location")" # (see scripts/pgtmp.sh)
  echo "demo: stopped (data kept in $kept; rm -rf $RUN for a fresh start)"
}
trap stop_all EXIT
trap 'stop_all; exit 0' INT TERM HUP # a Ctrl-C (or a kill) is the way to stop: status 0

# --- Postgres ------------------------------------------------------------------
echo "demo: starting Postgres on port $PG_PORT (private cluster in $RUN/pg)"
rc=0
DATABASE_URL=$(scripts/pgtmp.sh start "$RUN/pg" "$PG_PORT") || rc=$?
if ((rc == 3)); then
  echo "demo: port $PG_PORT is taken by another program; choose another with DEMO_PG_PORT, e.g." >&2
  echo "      DEMO_PG_PORT=55433 make demo" >&2
fi
((rc == 0)) || exit "$rc"

# --- localforce ----------------------------------------------------------------
# Over HTTPS, as Salesforce is: a self-signed certificate made once in $RUN/tls,
# which sfbridge (SF_CA_FILE) and the instructions' curl (--cacert) trust.
echo "demo: starting localforce with examples/dream-org.json on port $PORT (HTTPS)"
"$LF" serve --listen "127.0.0.1:$PORT" --org examples/dream-org.json --tls-self-signed "$RUN/tls" \
  --db "$RUN/dream-org.sqlite" >"$RUN/localforce.out" 2>"$RUN/localforce.log" &
LF_PID=$!
for ((i = 0; ; i++)); do
  grep -q listening "$RUN/localforce.out" 2>/dev/null && break
  if ! kill -0 "$LF_PID" 2>/dev/null || ((i == 300)); then
    tail -5 "$RUN/localforce.log" >&2
    echo "demo: localforce did not start; if port $PORT is taken, choose another with LOCALFORCE_PORT" >&2
    exit 1
  fi
  sleep 0.1
done
URL=$(sed -n 's/^localforce listening on //p' "$RUN/localforce.out")

# --- sfbridge: schema, mappings (brought to the settings above), load, daemon --
CA=$RUN/tls/localforce.crt
export DATABASE_URL SF_LOGIN_URL=$URL SF_CA_FILE=$CA SF_CLIENT_ID=sfbridge-demo-client SF_CLIENT_SECRET=sfbridge-demo-secret
export SF_USERNAME=demo@localforce.test SF_PASSWORD=localforce

# The value of "KEY": ... in a mapping's JSON (strings and numbers), or nothing.
json_value() {
  local re="\"$2\":[[:space:]]*\"?([^\",}[:space:]]*)"
  [[ $1 =~ $re ]] && echo "${BASH_REMATCH[1]}" || true
}

"$SFB" init 2>>"$RUN/sfbridge.log"
for m in "${MAPPINGS[@]}"; do
  IFS=: read -r obj access uid <<<"$m"
  if ! json=$("$SFB" mapping show "$obj" --json 2>/dev/null); then
    "$SFB" mapping add "$obj" --poll "$POLL" --access "$access" ${uid:+--upsert-field "$uid"} --accelerated \
      2>>"$RUN/sfbridge.log"
  elif [[ $(json_value "$json" access) != "$access" || $(json_value "$json" upsert_field) != "$uid" ||
    $(json_value "$json" sf_polling_seconds) != "$POLL" || $(json_value "$json" sf_notify_enabled) != true ]]; then
    # A mapping from an earlier run with other settings.
    if [[ -n $uid ]]; then idopt=(--upsert-field "$uid"); else idopt=(--no-upsert-field); fi
    "$SFB" mapping edit "$obj" --poll "$POLL" --access "$access" "${idopt[@]}" --accelerated 2>>"$RUN/sfbridge.log"
  fi
done
if (exec 9<>"/dev/tcp/127.0.0.1/$HTTP_PORT") 2>/dev/null; then
  echo "demo: port $HTTP_PORT (the dashboard) is taken by another program; choose another with" \
    "DEMO_HTTP_PORT, e.g. DEMO_HTTP_PORT=8113 make demo" >&2
  exit 1
fi
echo "demo: initial load"
"$SFB" load
"$SFB" run --http "127.0.0.1:$HTTP_PORT" 2>>"$RUN/sfbridge.log" &
SFB_PID=$!

# --- the instructions --------------------------------------------------------
cat <<MSG

  sfbridge is syncing the Dream Project org and Postgres (schema salesforce) both ways:
  Salesforce changes stream in as they happen (Change Data Capture; a poll every ${POLL} s is the
  safety net); Postgres changes are written to Salesforce at once.

  Dashboard:   http://127.0.0.1:$HTTP_PORT/  (open it in a browser: mappings, the Explorer, write errors)
  Settings:    DEMO_PG_PORT=$PG_PORT LOCALFORCE_PORT=$PORT DEMO_HTTP_PORT=$HTTP_PORT DEMO_POLL_SECONDS=$POLL (set them to change them)
  Postgres:    psql $DATABASE_URL
               SELECT name, email__c, subject__c FROM salesforce.teacher__c LIMIT 5;
  localforce:  $URL (user demo@localforce.test, password localforce; its certificate: $CA)
  Mappings:    read-write by unique identifier: Account (External_Id__c), Teacher__c (Email__c),
               Student__c (Student_Number__c), Course__c (Course_Code__c), Enrollment__c (Enrollment_Key__c);
               read-only (no External ID field): Contact, Attendance__c
  Logs:        $RUN/sfbridge.log, $RUN/localforce.log

  Change a teacher in Salesforce and watch it arrive (within a blink):
    TOKEN=\$(curl -s --cacert $CA $URL/services/oauth2/token -d grant_type=password \\
      -d client_id=sfbridge-demo-client -d client_secret=sfbridge-demo-secret \\
      -d username=demo@localforce.test -d password=localforce | sed 's/.*"access_token": *"\\([^"]*\\)".*/\\1/')
    ID=\$(psql -Atc "SELECT sfid FROM salesforce.teacher__c LIMIT 1" $DATABASE_URL)
    curl -s --cacert $CA -X PATCH -H "Authorization: Bearer \$TOKEN" -H 'Content-Type: application/json' \\
      $URL/services/data/v60.0/sobjects/Teacher__c/\$ID -d '{"Subject__c":"Art"}'
    psql -c "SELECT name, subject__c, systemmodstamp FROM salesforce.teacher__c WHERE sfid = '\$ID'" $DATABASE_URL

  Change a teacher in Postgres and watch it reach Salesforce (and sfid/_hc_lastop come back):
    psql $DATABASE_URL -c "UPDATE salesforce.teacher__c SET subject__c = 'Music' WHERE id = 1"
    psql $DATABASE_URL -c "INSERT INTO salesforce.teacher__c (name, first_name__c, last_name__c, email__c) VALUES ('Ada L', 'Ada', 'L', 'ada.l@dreamproject.test')"
    psql $DATABASE_URL -c "SELECT id, sfid, name, _hc_lastop, _hc_err FROM salesforce.teacher__c ORDER BY id DESC LIMIT 3"
    psql $DATABASE_URL -c "SELECT id, state, action, record_id, sfid, sf_message FROM salesforce._trigger_log_archive ORDER BY id DESC LIMIT 5"

  Press Ctrl-C (or q) to stop Postgres, localforce and sfbridge.

MSG

# --- live status -----------------------------------------------------------
status_block() {
  echo "  status at $(date +%T) (Ctrl-C or q stops the demo):"
  "$SFB" status 2>/dev/null | expand | sed 's/^/  /' || true
}

# Redraw in place: move up over the rows the last block took (its lines, as
# wrapped at the terminal's width) and clear to the end of the screen. The
# block is cut to fit the screen; after a change of width (the terminal may
# have rewrapped the old block) it is drawn afresh below.
exec 3>&1
LAST_ROWS=0 LAST_COLS=0
draw_in_place() { # $1: the block
  local LC_ALL=C.UTF-8 rows=0 cols=0 n=0 r line out=
  read -r rows cols < <(stty size <&3 2>/dev/null) || true
  ((rows > 2)) || rows=24
  ((cols > 0)) || cols=80
  ((LAST_ROWS > 0 && cols == LAST_COLS)) && out+=$'\e['"$LAST_ROWS"A
  out+=$'\r\e[J'
  while IFS= read -r line; do
    ((${#line} % cols == 0 && ${#line} > 0)) && line+=" " # no line ends exactly at the margin
    r=$(((${#line} + cols - 1) / cols)) && ((r > 0)) || r=1
    if ((n + r >= rows - 1)); then # keep the last row for saying so
      out+="  (more: a larger window shows it all)"$'\n'
      n=$((n + 1))
      break
    fi
    out+=$line$'\n'
    n=$((n + r))
  done <<<"$1"
  printf '%s' "$out"
  LAST_ROWS=$n LAST_COLS=$cols
}

# One key, or nothing after 2 s (the terminal's "min 0 time 20"). Ctrl-C and q
# stop. The terminal does not turn Ctrl-C into SIGINT meanwhile (-isig): make,
# in the same process group, would otherwise be interrupted too and report
# "Error 130". (Not bash's read -n: it turns ISIG back on while it waits.)
key_says_stop() {
  local key
  key=$(dd bs=1 count=1 2>/dev/null) || true
  [[ $key == $'\x03' || $key == q || $key == Q ]]
}

# On a terminal the block is redrawn every 2 s; into a pipe or a file it is
# printed every 10 s.
if [[ -t 0 ]]; then
  TTY_SAVED=$(stty -g)
  stty -echo -icanon -isig min 0 time 20
fi
tick=0
while kill -0 "$SFB_PID" 2>/dev/null; do
  if [[ -t 1 ]]; then
    draw_in_place "$(status_block)"
  elif ((tick % 5 == 0)); then
    status_block
    echo
  fi
  tick=$((tick + 1))
  if [[ -z $TTY_SAVED ]]; then
    sleep 2 &
    wait $! || true # (a signal's trap runs at once, not after the sleep)
  elif key_says_stop; then
    exit 0
  fi
done
# sfbridge exits 0 only when stopped by a signal: the Ctrl-C that reached it
# (and this script, whose trap a `sfbridge status` running at that moment may
# have kept from running: bash leaves a SIGINT to a child that handles it).
if wait "$SFB_PID" 2>/dev/null; then
  SFB_PID=
  exit 0 # the EXIT trap stops the rest
fi
echo "demo: sfbridge exited; see $RUN/sfbridge.log" >&2
exit 1
