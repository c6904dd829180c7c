"""Mixed application writes to salesforce.teacher__c, with an exact model of what
was committed, for the write-back resilience tests.

Each Workload is one application session (its own connection) writing rows
whose Name is a key it made up ("WL<prefix>-<n>"; Name is not unique in
Salesforce, so a duplicate insert would show up as two records). It runs
transactions of 1 to 15 inserts, updates by id and deletes by id, rolls some
back, and records in `live` what the committed state is. `expected()` is then
what Salesforce must hold, and `diff()` says how Salesforce and Postgres
differ from it.
"""
import random
import threading

import psycopg

SUBJECTS = ["Mathematics", "Science", "English", "Art", "Music"]
# column -> Salesforce field, for the values the workload sets
FIELDS = {"first_name__c": "First_Name__c", "years__c": "Years__c", "subject__c": "Subject__c",
          "active__c": "Active__c"}
KEY_PREFIX = "WL"


class _Rollback(Exception):
    pass


class Workload:
    def __init__(self, url, prefix, seed, table="salesforce.teacher__c", external_id=None):
        self.url = url
        self.external_id = external_id   # a column the inserts also set to the key
        self.prefix = f"{KEY_PREFIX}{prefix}-"
        self.rng = random.Random(seed)
        self.table = table
        self.live = {}       # key -> {"id": pg id, column: value}
        self.next = 0
        self.ops = 0          # committed or rolled back statements
        self.rolled_back = 0
        self.error = None

    def _values(self):
        r = self.rng
        return {"first_name__c": f"F{r.randrange(10**6)}", "years__c": r.randrange(-50, 50),
                "subject__c": r.choice(SUBJECTS + [None]), "active__c": r.random() < 0.5}

    def _one_tx(self, conn, size):
        staged = {k: dict(v) for k, v in self.live.items()}
        rollback = self.rng.random() < 0.05
        try:
            with conn.transaction():
                for _ in range(size):
                    p = self.rng.random()
                    if p < 0.5 or not staged:
                        key = f"{self.prefix}{self.next}"
                        self.next += 1
                        vals = self._values()
                        ins = {"name": key, **({self.external_id: key} if self.external_id else {}), **vals}
                        rid = conn.execute(
                            f"INSERT INTO {self.table} ({', '.join(ins)}) VALUES "
                            f"({', '.join(['%s'] * len(ins))}) RETURNING id", list(ins.values())).fetchone()[0]
                        staged[key] = {"id": rid, **vals}
                    elif p < 0.85:
                        key = self.rng.choice(list(staged))
                        vals = self._values()
                        # a subset of the columns, sometimes the same value again
                        cols = self.rng.sample(list(vals), self.rng.randint(1, len(vals)))
                        sets = ", ".join(f"{c} = %s" for c in cols)
                        conn.execute(f"UPDATE {self.table} SET {sets} WHERE id = %s",
                                     [*(vals[c] for c in cols), staged[key]["id"]])
                        for c in cols:
                            staged[key][c] = vals[c]
                    else:
                        key = self.rng.choice(list(staged))
                        conn.execute(f"DELETE FROM {self.table} WHERE id = %s", (staged[key]["id"],))
                        del staged[key]
                    self.ops += 1
                if rollback:
                    raise _Rollback
        except _Rollback:
            self.rolled_back += 1
            return
        self.live = staged

    def run(self, n_ops, stop=None):
        """Write until n_ops more statements were run (or stop is set)."""
        goal = self.ops + n_ops
        with psycopg.connect(self.url, autocommit=True, application_name=f"workload {self.prefix}") as conn:
            while self.ops < goal and not (stop is not None and stop.is_set()):
                self._one_tx(conn, min(self.rng.randint(1, 15), goal - self.ops))

    def expected(self):
        """{Name: {Salesforce field: value}} of the records Salesforce must hold."""
        return {k: {FIELDS[c]: v[c] for c in FIELDS} for k, v in self.live.items()}


def run_parallel(workloads, n_each):
    """Run each workload for n_each statements on its own thread; re-raise the first error."""
    def body(w):
        try:
            w.run(n_each)
        except BaseException as exc:  # noqa: BLE001 - re-raised below
            w.error = exc

    threads = [threading.Thread(target=body, args=(w,), name=w.prefix) for w in workloads]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for w in workloads:
        if w.error is not None:
            raise w.error


def expected_of(workloads):
    out = {}
    for w in workloads:
        out.update(w.expected())
    return out


def diff(sf, db, workloads, max_report=15):
    """A list of problems (empty when Salesforce and Postgres both hold exactly
    what the workloads committed, each record once, linked by sfid)."""
    want = expected_of(workloads)
    fields = list(FIELDS.values())
    got = {}
    for rec in sf.query(f"SELECT Id, Name, {', '.join(fields)} FROM Teacher__c WHERE Name LIKE '{KEY_PREFIX}%'"):
        got.setdefault(rec["Name"], []).append(rec)
    problems = []
    dups = {k: [r["Id"] for r in v] for k, v in got.items() if len(v) > 1}
    missing = sorted(set(want) - set(got))
    extra = sorted(set(got) - set(want))
    wrong = []
    for k in sorted(set(want) & set(got)):
        rec = got[k][0]
        for f in fields:
            if rec.get(f) != want[k][f]:
                wrong.append(f"{k}.{f}: salesforce={rec.get(f)!r} committed={want[k][f]!r}")
    if dups:
        problems.append(f"{len(dups)} duplicated in Salesforce: {dict(list(dups.items())[:max_report])}")
    if missing:
        problems.append(f"{len(missing)} committed but not in Salesforce: {missing[:max_report]}")
    if extra:
        problems.append(f"{len(extra)} in Salesforce but deleted or rolled back: {extra[:max_report]}")
    if wrong:
        problems.append(f"{len(wrong)} values differ: {wrong[:max_report]}")

    rows = db.query_dicts(f"SELECT id, sfid, name, _hc_lastop, {', '.join(FIELDS)} FROM salesforce.teacher__c "
                          f"WHERE name LIKE '{KEY_PREFIX}%%'")
    by_name = {}
    for r in rows:
        by_name.setdefault(r["name"], []).append(r)
    pg_bad = []
    for k, v in want.items():
        rs = by_name.get(k, [])
        if len(rs) != 1:
            pg_bad.append(f"{k}: {len(rs)} rows in Postgres")
            continue
        r = rs[0]
        if r["sfid"] is None or (k in got and len(got[k]) == 1 and r["sfid"] != got[k][0]["Id"]):
            pg_bad.append(f"{k}: sfid {r['sfid']} (Salesforce: {[x['Id'] for x in got.get(k, [])]})")
        for col, f in FIELDS.items():
            if r[col] != want[k][f]:
                pg_bad.append(f"{k}.{col}: postgres={r[col]!r} committed={want[k][f]!r}")
        if r["_hc_lastop"] in ("FAILED", "PENDING"):
            pg_bad.append(f"{k}: _hc_lastop {r['_hc_lastop']}")
    ghosts = sorted(set(by_name) - set(want))
    if ghosts:
        pg_bad.append(f"rows in Postgres the app deleted or rolled back: {ghosts[:max_report]}")
    if pg_bad:
        problems.append(f"{len(pg_bad)} Postgres problems: {pg_bad[:max_report]}")
    return problems
