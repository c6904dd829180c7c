#!/usr/bin/env bash
# make demo: start localforce with the Dream Project org and show how to use it.
# (sfbridge's sync joins the demo with its own milestone: see docs/architecture.md.)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
RUN=$ROOT/.demo
mkdir -p "$RUN"
PORT=${LOCALFORCE_PORT:-8111}

if [[ -f $RUN/localforce.pid ]] && kill -0 "$(cat "$RUN/localforce.pid")" 2>/dev/null; then
  echo "demo: localforce is already running (pid $(cat "$RUN/localforce.pid")); stop it with: kill $(cat "$RUN/localforce.pid")"
  exit 0
fi

build/localforce serve --listen "127.0.0.1:$PORT" --org examples/dream-org.json \
  --db "$RUN/dream-org.sqlite" >"$RUN/localforce.out" 2>"$RUN/localforce.log" &
echo $! >"$RUN/localforce.pid"
for _ in $(seq 100); do
  grep -q listening "$RUN/localforce.out" 2>/dev/null && break
  kill -0 "$(cat "$RUN/localforce.pid")" 2>/dev/null || { cat "$RUN/localforce.log"; exit 1; }
  sleep 0.1
done
URL=$(sed -n 's/^localforce listening on //p' "$RUN/localforce.out")
cat <<MSG

  localforce is running the Dream Project org at $URL
  (data kept in $RUN/dream-org.sqlite, log in $RUN/localforce.log)

  Objects and record counts:
$(curl -s "$URL/admin/health" | /usr/bin/python3 -c '
import json, sys
for name, n in json.load(sys.stdin)["objects"].items():
    print(f"    {name:<16} {n:>6}")')

  Try it:
    TOKEN=\$(curl -s $URL/services/oauth2/token -d grant_type=password \\
      -d client_id=sfbridge-demo-client -d client_secret=sfbridge-demo-secret \\
      -d username=demo@localforce.test -d password=localforce |
      python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
    curl -s -H "Authorization: Bearer \$TOKEN" \\
      "$URL/services/data/v62.0/query?q=SELECT+Name,Email__c,School__r.Name+FROM+Teacher__c+LIMIT+5"

  Log in from jsforce with loginUrl $URL, client id sfbridge-demo-client,
  secret sfbridge-demo-secret, user demo@localforce.test, password localforce.

  Stop it with:  kill $(cat "$RUN/localforce.pid")
MSG
