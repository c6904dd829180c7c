#!/usr/bin/env bash
# A private Postgres cluster for the demo and the benchmarks.
#
#   scripts/pgtmp.sh start DIR [PORT]   initdb (once) and start; prints the DATABASE_URL
#   scripts/pgtmp.sh stop DIR
#
# Postgres refuses to run as root; when run as root the cluster belongs to
# the unprivileged user "nobody". It listens on 127.0.0.1 only, with trust
# authentication for local use: never point it at real data.
set -euo pipefail
BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[[ -x $BIN/initdb ]] || { echo "pgtmp: Postgres server binaries not found (apt install postgresql)" >&2; exit 1; }
cmd=${1:?usage: pgtmp.sh start|stop DIR [PORT]}
dir=$(realpath -m "${2:?usage: pgtmp.sh start|stop DIR [PORT]}")
as_owner() { if [[ $(id -u) == 0 ]]; then runuser -u nobody -- "$@"; else "$@"; fi; }

free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

case $cmd in
start)
  port=${3:-$(free_port)}
  mkdir -p "$dir"
  [[ $(id -u) == 0 ]] && chown nobody:nogroup "$dir" && chmod 755 "$(dirname "$dir")" 2>/dev/null || true
  if [[ ! -f $dir/data/PG_VERSION ]]; then
    as_owner "$BIN/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 ||
      { cat "$dir/initdb.log" >&2; exit 1; }
  fi
  as_owner "$BIN/pg_ctl" -D "$dir/data" -w -l "$dir/postgres.log" \
    -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
    start >/dev/null || { tail -20 "$dir/postgres.log" >&2; exit 1; }
  echo "$port" >"$dir/port"
  echo "postgresql://postgres@127.0.0.1:$port/postgres"
  ;;
stop)
  [[ -f $dir/data/postmaster.pid ]] && as_owner "$BIN/pg_ctl" -D "$dir/data" -m fast stop >/dev/null || true
  ;;
*) echo "usage: pgtmp.sh start|stop DIR [PORT]" >&2; exit 2 ;;
esac
