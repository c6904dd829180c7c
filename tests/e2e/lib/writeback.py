"""Helpers of the write-back tests (Postgres -> Salesforce; docs/sfbridge.md,
"Writing back to Salesforce").

  App                  an application's own Postgres session (xmlbinary left at
                       base64, so its writes are captured), with ActiveRecord-
                       like insert / update / delete by id
  log_entries          the trigger log and its archive as one list, values and
                       old parsed from hstore
  push_until_done      `sfbridge push` until nothing transient is left
  wait_writer_idle     while the daemon runs: nothing NEW or PENDING is left
  sf_by_key            Salesforce records grouped by a field the test sets
                       (duplicates show up as lists longer than one)
  add_course_object    Course__c, a child of Teacher__c with a required field,
                       a restricted picklist, an email and a long textarea
"""
import contextlib
import json

import psycopg
from psycopg.rows import dict_row

from .pgcluster import ident
from .wait import WaitAbort, wait_for

SCHEMA = "salesforce"
TLOG_COLUMNS = ("id", "txid", "created_at", "updated_at", "processed_at", "processed_tx", "state", "action",
                "table_name", "record_id", "sfid", "old", "values", "sf_result", "sf_message")
OPEN_STATES = ("NEW", "PENDING")
IGNORED_STATES = ("IGNORE", "IGNORED")

# A child of Teacher__c, added to the org at run time (admin API) by the tests
# that need one: a required field, a restricted picklist, an email, a textarea
# longer than Postgres' varchar limit (so a too-long value reaches Salesforce),
# an external id, and the lookup to its teacher.
COURSE_OBJECT = "Course__c"
COURSE_FIELDS = {
    "Title__c": {"type": "string", "length": 40, "required": True},
    "Code__c": {"type": "string", "length": 20, "unique": True, "external_id": True},
    "Level__c": {"type": "picklist", "values": ["Intro", "Intermediate", "Advanced"], "restricted": True},
    "Contact_Email__c": {"type": "email"},
    "Syllabus__c": {"type": "textarea", "length": 5000},
    "Teacher__c": {"type": "reference", "reference_to": "Teacher__c"},
}


def add_course_object(sf):
    """Add Course__c (see COURSE_FIELDS) to the running org."""
    sf.add_object(COURSE_OBJECT, label="Course", fields=COURSE_FIELDS)


# -- sfbridge ---------------------------------------------------------------------
def map_rw(sfbridge, obj, *args):
    """mapping add OBJ --access read_write, with --all-fields unless fields are given."""
    extra = list(args)
    if not any(a in ("--fields", "--all-fields") for a in extra):
        extra = ["--all-fields", *extra]
    return sfbridge.run("mapping", "add", obj, "--access", "read_write", *extra)


def push(sfbridge):
    """One `sfbridge push`; its exit status must be 0 or 1 (1: transient failures remain)."""
    r = sfbridge.run("push", check=False, timeout=300)
    if r.returncode not in (0, 1):
        from .sfbridge import SfbridgeError, describe_result
        raise SfbridgeError("sfbridge push must exit 0 or 1\n" + describe_result(r))
    return r


def push_until_done(sfbridge, db=None, timeout=120, schema=SCHEMA):
    """`sfbridge push` again and again until it exits 0 (everything went through or
    failed for good) and, given the database, no trigger-log entry is NEW or
    PENDING any more. Waits between rounds as wait_for does; a crash (exit
    status other than 0 or 1) fails at once."""
    def once():
        r = sfbridge.run("push", check=False, timeout=300)
        if r.returncode not in (0, 1):
            from .sfbridge import describe_result
            raise WaitAbort("sfbridge push must exit 0 or 1\n" + describe_result(r))
        if r.returncode != 0:
            return False
        return db is None or open_entries(db, schema) == 0

    def ctx():
        out = sfbridge.recent_output(2)
        if db is not None:
            out += "\n--- open trigger-log entries ---\n" + describe_entries(
                log_entries(db, "state IN ('NEW', 'PENDING')", schema=schema)[:20])
        return out

    return wait_for(once, timeout=timeout, what="sfbridge push to exit 0 with no NEW or PENDING entry left",
                    interval=0.2, max_interval=1.0, context=ctx)


def open_entries(db, schema=SCHEMA):
    return db.scalar(f"SELECT count(*) FROM {ident(schema)}._trigger_log WHERE state IN ('NEW', 'PENDING')")


def wait_writer_idle(sfbridge, db, timeout=60, schema=SCHEMA):
    """While the daemon runs: wait until no trigger-log entry is NEW or PENDING."""
    from .sfbridge import wait_daemon
    return wait_daemon(sfbridge, lambda: open_entries(db, schema) == 0, timeout=timeout,
                       what="the writer to send every NEW entry (none NEW or PENDING)")


# -- the trigger log ----------------------------------------------------------------
def log_entries(db, where="TRUE", params=None, schema=SCHEMA):
    """Entries of _trigger_log and _trigger_log_archive (where: SQL on their
    columns), oldest first, as dicts with 'archived' (bool) and 'values'/'old'
    parsed into {column: text or None}."""
    cols = ", ".join(ident(c) for c in TLOG_COLUMNS if c not in ("old", "values"))
    sel = (f"{cols}, hstore_to_json(old::hstore) AS old, hstore_to_json(\"values\"::hstore) AS \"values\"")
    sql = (f"SELECT * FROM (SELECT {sel}, false AS archived FROM {ident(schema)}._trigger_log "
           f"UNION ALL SELECT {sel}, true AS archived FROM {ident(schema)}._trigger_log_archive) e "
           f"WHERE {where} ORDER BY id")
    return db.query_dicts(sql, params)


def record_entries(db, table, record_id, schema=SCHEMA):
    return log_entries(db, "table_name = %s AND record_id = %s", (table, record_id), schema)


def describe_entries(entries):
    keep = ("id", "state", "action", "table_name", "record_id", "sfid", "sf_message", "archived")
    return "\n".join(str({k: e.get(k) for k in keep}) for e in entries)


def hc_err(row):
    """The row's _hc_err parsed as JSON (AssertionError naming the text if it is not)."""
    text = row["_hc_err"]
    assert text is not None, f"_hc_err is NULL: {row}"
    try:
        return json.loads(text)
    except ValueError:
        raise AssertionError(f"_hc_err is not JSON: {text!r}") from None


# -- an application's session -----------------------------------------------------------
class App:
    """An application writing to the mapped tables with plain SQL, as an ORM
    does: one session, default settings (so xmlbinary is base64 and the capture
    triggers record its writes), transactions by hand or autocommit."""

    def __init__(self, db, schema=SCHEMA, application_name="e2e-app"):
        self.schema = schema
        self.conn = psycopg.connect(db.url, autocommit=True, application_name=application_name)

    def close(self):
        self.conn.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _t(self, table):
        return f"{ident(self.schema)}.{ident(table)}"

    @contextlib.contextmanager
    def transaction(self):
        with self.conn.transaction():
            yield self

    def execute(self, sql, params=None):
        with self.conn.cursor(row_factory=dict_row) as cur:
            cur.execute(sql, params)
            return cur.fetchall() if cur.description else []

    def insert(self, table, **cols):
        """INSERT ... RETURNING id; the new row's id."""
        names = ", ".join(ident(c) for c in cols)
        marks = ", ".join(["%s"] * len(cols))
        rows = self.execute(f"INSERT INTO {self._t(table)} ({names}) VALUES ({marks}) RETURNING id",
                            list(cols.values()))
        return rows[0]["id"]

    def update(self, table, row_id, **cols):
        """UPDATE ... WHERE id = ...; how many rows changed."""
        sets = ", ".join(f"{ident(c)} = %s" for c in cols)
        with self.conn.cursor() as cur:
            cur.execute(f"UPDATE {self._t(table)} SET {sets} WHERE id = %s", [*cols.values(), row_id])
            return cur.rowcount

    def delete(self, table, row_id):
        with self.conn.cursor() as cur:
            cur.execute(f"DELETE FROM {self._t(table)} WHERE id = %s", (row_id,))
            return cur.rowcount

    def row(self, table, row_id):
        rows = self.execute(f"SELECT * FROM {self._t(table)} WHERE id = %s", (row_id,))
        return rows[0] if rows else None


def row(db, table, row_id, schema=SCHEMA):
    rows = db.query_dicts(f"SELECT * FROM {ident(schema)}.{ident(table)} WHERE id = %s", (row_id,))
    return rows[0] if rows else None


# -- Salesforce ----------------------------------------------------------------------------
def sf_by_key(sf, obj, key, fields, where=None):
    """{value of key: [records]} of obj's live records (where: SOQL condition)."""
    names = ["Id", key, *[f for f in fields if f not in ("Id", key)]]
    soql = f"SELECT {', '.join(names)} FROM {obj}" + (f" WHERE {where}" if where else "")
    out = {}
    for rec in sf.query(soql):
        out.setdefault(rec[key], []).append(rec)
    return out


def api_usage(sf):
    """API requests the org has counted today (localforce /admin/health)."""
    return sf.health()["api_usage"]


def assert_sf_fields(sf, obj, rec_id, expected):
    """The Salesforce record has these values ({Field: value}; values as Python or
    Salesforce writes them), compared by field type as lib.compare does."""
    from .compare import normalise, values_equal
    types = sf.field_types(obj)
    rec = sf.get(obj, rec_id, list(expected))
    bad = []
    for name, want in expected.items():
        t = types[name]
        a, b = normalise(t, rec.get(name), "sf"), normalise(t, want, "pg")
        if not values_equal(t, a, b):
            bad.append(f"{name}: salesforce={rec.get(name)!r} expected={want!r}")
    assert not bad, f"{obj} {rec_id} differs:\n  " + "\n  ".join(bad)
    return rec


def sf_refusal(sf, obj, fields):
    """(errorCode, message) with which Salesforce refuses to create this record
    (asked through the tests' own client); AssertionError if it accepts it."""
    from .salesforce import SfError
    try:
        rec_id = sf.create(obj, fields)
    except SfError as exc:
        body = json.loads(exc.body)
        return body[0]["errorCode"], body[0]["message"]
    sf.delete(obj, rec_id)
    raise AssertionError(f"Salesforce accepted {obj} {fields}: the test expected a refusal")
