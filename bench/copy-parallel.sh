#!/usr/bin/env bash
# Postgres alone (issue 13): ROWS rows of a Teacher__c-like CSV (about 360
# bytes a row) COPYed into an unindexed table by one COPY, then by WORKERS
# COPYs side by side (the CSV split in as many parts), into tables of the same
# layout, on a private Postgres. What SFBRIDGE_LOAD_WORKERS can gain where
# Postgres has cores to spare (a real org is remote; localforce is not).
#
#   bench/copy-parallel.sh                  # 1,000,000 rows, 2 workers
#   ROWS=200000 WORKERS=3 bench/copy-parallel.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS=${ROWS:-1000000}
WORKERS=${WORKERS:-2}
WORK=$(mktemp -d /tmp/sfbpcopy.XXXXXX)
chmod 755 "$WORK"
cleanup() {
  scripts/pgtmp.sh stop "$WORK/pg"
  rm -rf "$WORK"
}
trap cleanup EXIT
DB=$(scripts/pgtmp.sh start "$WORK/pg")
q() { psql "$DB" -XAtq "$@"; }
cols="sfid varchar(18), name varchar(80), first_name__c varchar(80), last_name__c varchar(80),
  email__c varchar(80), subject__c varchar(255), school__c varchar(18), createddate timestamp,
  systemmodstamp timestamp, isdeleted boolean, notes__c text"
names="sfid, name, first_name__c, last_name__c, email__c, subject__c, school__c, createddate,
  systemmodstamp, isdeleted, notes__c"
for t in one side_by_side; do
  q -c "CREATE TABLE $t (id serial PRIMARY KEY, $cols, _hc_lastop varchar(32), _hc_err text)"
done
q -c "\\copy (SELECT 'a0B' || lpad(k::text, 15, '0'), 'Teacher ' || k, 'First' || k, 'Last' || k,
  'teacher.' || k || '@school.example.org', 'Mathematics', 'a0A' || lpad((k % 1000)::text, 15, '0'),
  '2026-11-01T10:00:00.000Z', '2026-11-01T10:00:00.000Z', 'false', repeat('x', 180)
  FROM generate_series(1, $ROWS) k) TO '$WORK/rows.csv' WITH (FORMAT csv)"
split -n "l/$WORKERS" -d "$WORK/rows.csv" "$WORK/part."
now() { date +%s.%N; }
q -c CHECKPOINT
t0=$(now)
q -c "\\copy one ($names) FROM '$WORK/rows.csv' WITH (FORMAT csv)"
t1=$(now)
q -c CHECKPOINT
t2=$(now)
for f in "$WORK"/part.*; do q -c "\\copy side_by_side ($names) FROM '$f' WITH (FORMAT csv)" & done
wait
t3=$(now)
[[ $(q -c "SELECT count(*) FROM side_by_side") == "$ROWS" ]] || { echo "rows missing" >&2; exit 1; }
echo "{\"figure\":\"copy_side_by_side\",\"rows\":$ROWS,\"workers\":$WORKERS,\"one_copy_seconds\":$(awk "BEGIN{print $t1 - $t0}"),\"side_by_side_seconds\":$(awk "BEGIN{print $t3 - $t2}"),\"bytes\":$(stat -c %s "$WORK/rows.csv")}"
