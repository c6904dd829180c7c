#!/usr/bin/env bash
# A private Postgres cluster for the demo and the benchmarks.
#
#   scripts/pgtmp.sh start DIR [PORT]   initdb (once) and start; prints the DATABASE_URL
#   scripts/pgtmp.sh stop DIR
#
# The port: PORT when given (exit 3, with a message, when another program has
# it); else the one DIR's cluster used last time (DIR/port) while it is free;
# else any free port. A cluster of DIR still running (a run killed before it
# could stop it) is reused when it has the port asked for, else restarted.
#
# Postgres refuses to run as root; when run as root the cluster belongs to
# the unprivileged user "nobody", and when nobody cannot reach DIR (a clone
# under /root) the cluster lives in /var/tmp/sfbridge-pg-*, named in
# DIR/location (a new DIR gets a new cluster). It listens on 127.0.0.1 only,
# with trust authentication for local use: never point it at real data.
set -euo pipefail
BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[[ -x $BIN/initdb ]] || { echo "pgtmp: Postgres server binaries not found (apt install postgresql)" >&2; exit 1; }
cmd=${1:?usage: pgtmp.sh start|stop DIR [PORT]}
dir=$(realpath -m "${2:?usage: pgtmp.sh start|stop DIR [PORT]}")
as_owner() { if [[ $(id -u) == 0 ]]; then (cd / && runuser -u nobody -- "$@"); else "$@"; fi; }

free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# Something already accepts connections on 127.0.0.1:PORT.
port_taken() { (: <"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
taken_msg() { echo "pgtmp: port $1 is already in use by another program" >&2; exit 3; }
# Where DIR's cluster lives (see above).
home_of() {
  if [[ -f $dir/location ]]; then
    cat "$dir/location"
  elif [[ $(id -u) == 0 ]] && ! runuser -u nobody -- test -x "$dir/.."; then
    echo "/var/tmp/sfbridge-pg-$(printf %s "$dir" | md5sum | cut -c1-16)"
  else
    echo "$dir"
  fi
}
# The port of the running cluster in $pg (line 4 of postmaster.pid), or nothing.
running_port() {
  [[ -f $pg/data/postmaster.pid ]] && as_owner "$BIN/pg_ctl" -D "$pg/data" status >/dev/null 2>&1 &&
    sed -n 4p "$pg/data/postmaster.pid"
}

case $cmd in
start)
  mkdir -p "$dir"
  [[ $(id -u) == 0 ]] && chown nobody:nogroup "$dir" && chmod 755 "$(dirname "$dir")" 2>/dev/null || true
  pg=$(home_of)
  if [[ $pg != "$dir" && ! -f $dir/location ]]; then # a new DIR: a new cluster elsewhere
    [[ -f $pg/data/postmaster.pid ]] && as_owner "$BIN/pg_ctl" -D "$pg/data" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$pg"
    mkdir -p "$pg" && chown nobody:nogroup "$pg" && chmod 755 "$pg"
    echo "$pg" >"$dir/location"
  fi
  running=$(running_port || true)
  if [[ -n ${3:-} ]]; then
    port=$3
  elif [[ -n $running ]]; then
    port=$running
  else
    port=$(cat "$dir/port" 2>/dev/null || true)
    [[ $port =~ ^[0-9]+$ ]] && ! port_taken "$port" || port=$(free_port)
  fi
  if [[ -n $running && $running == "$port" ]]; then # left running by an earlier run: reuse it
    echo "$port" >"$dir/port"
    echo "postgresql://postgres@127.0.0.1:$port/postgres"
    exit 0
  fi
  [[ -n $running ]] && as_owner "$BIN/pg_ctl" -D "$pg/data" -m fast stop >/dev/null
  port_taken "$port" && taken_msg "$port"
  if [[ ! -f $pg/data/PG_VERSION ]]; then
    as_owner "$BIN/initdb" -D "$pg/data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 ||
      { cat "$dir/initdb.log" >&2; exit 1; }
  fi
  seen=$(wc -l 2>/dev/null <"$pg/postgres.log" || echo 0) # the log is appended to: look at this start's lines
  as_owner "$BIN/pg_ctl" -D "$pg/data" -w -l "$pg/postgres.log" \
    -o "-p $port -k $pg -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
    start >/dev/null 2>"$dir/pg_ctl.err" || {
    tail -n +$((seen + 1)) "$pg/postgres.log" | grep -q "Address already in use" && taken_msg "$port"
    cat "$dir/pg_ctl.err" >&2; tail -20 "$pg/postgres.log" >&2; exit 1; }
  echo "$port" >"$dir/port"
  echo "postgresql://postgres@127.0.0.1:$port/postgres"
  ;;
stop)
  pg=$(home_of)
  [[ -f $pg/data/postmaster.pid ]] && as_owner "$BIN/pg_ctl" -D "$pg/data" -m fast stop >/dev/null || true
  ;;
*) echo "usage: pgtmp.sh start|stop DIR [PORT]" >&2; exit 2 ;;
esac
