"""Compare a mapped Postgres table with the Salesforce records it mirrors.

Every column of the table except id, _hc_lastop and _hc_err is matched to a
Salesforce field by lowercased name (sfid is Id); the Salesforce records are
read with SOQL (query, or queryAll when deleted records are kept as
tombstones) and compared row by row by sfid, with the values normalised by the
field's type: datetimes as UTC to the microsecond, dates, times, doubles,
integers, booleans, text exactly.
"""
import datetime as dt
import math

from .pgcluster import ident
from .wait import wait_for

SYSTEM_COLUMNS = {"id", "_hc_lastop", "_hc_err"}
MAX_REPORTED = 25


class Diff:
    def __init__(self, obj, table):
        self.obj, self.table = obj, table
        self.problems = []        # table-level problems
        self.missing = []         # sfids in Salesforce, not in Postgres
        self.extra = []           # sfids in Postgres that should not be there
        self.fields = []          # (sfid, field, sf value, pg value)
        self.sf_count = self.pg_count = 0

    def __bool__(self):
        return bool(self.problems or self.missing or self.extra or self.fields)

    def __str__(self):
        if not self:
            return f"{self.table} equals {self.obj} ({self.pg_count} rows)"
        out = [f"Postgres table {self.table} differs from {self.obj} in Salesforce "
               f"({self.sf_count} records expected, {self.pg_count} rows in Postgres):"]
        out += [f"  {p}" for p in self.problems]
        if self.missing:
            out.append(f"  {len(self.missing)} record(s) missing from Postgres: "
                       + ", ".join(self.missing[:MAX_REPORTED]) + (" ..." if len(self.missing) > MAX_REPORTED else ""))
        if self.extra:
            out.append(f"  {len(self.extra)} row(s) in Postgres that Salesforce does not have (live): "
                       + ", ".join(self.extra[:MAX_REPORTED]) + (" ..." if len(self.extra) > MAX_REPORTED else ""))
        if self.fields:
            out.append(f"  {len(self.fields)} value difference(s):")
            for sfid, field, sv, pv in self.fields[:MAX_REPORTED]:
                out.append(f"    {sfid} {field}: salesforce={sv!r} postgres={pv!r}")
            if len(self.fields) > MAX_REPORTED:
                out.append("    ...")
        return "\n".join(out)


# -- normalisation -------------------------------------------------------------
def parse_sf_datetime(s):
    """'2024-01-02T03:04:05.000+0000' / '...Z' / '...+01:00' -> naive UTC datetime."""
    s = s.strip()
    if s.endswith("Z"):
        s = s[:-1] + "+00:00"
    elif len(s) >= 5 and s[-5] in "+-" and s[-4:].isdigit():
        s = s[:-2] + ":" + s[-2:]
    d = dt.datetime.fromisoformat(s)
    if d.tzinfo is not None:
        d = d.astimezone(dt.timezone.utc).replace(tzinfo=None)
    return d


def parse_sf_time(s):
    """'03:04:05.000Z' -> datetime.time."""
    s = s.strip().rstrip("Z")
    return dt.time.fromisoformat(s)


def normalise(sftype, value, side):
    """A comparable form of a value from Salesforce (side='sf') or Postgres ('pg')."""
    if value is None:
        return None
    if sftype == "datetime":
        if side == "sf":
            d = parse_sf_datetime(value)
        elif isinstance(value, dt.datetime):
            d = value.astimezone(dt.timezone.utc).replace(tzinfo=None) if value.tzinfo else value
        else:
            d = parse_sf_datetime(str(value))
        return d.isoformat(sep=" ", timespec="microseconds")
    if sftype == "date":
        if isinstance(value, dt.date):
            return value.isoformat()
        return dt.date.fromisoformat(str(value)[:10]).isoformat()
    if sftype == "time":
        t = value if isinstance(value, dt.time) else parse_sf_time(str(value))
        return t.replace(tzinfo=None).isoformat(timespec="microseconds")
    if sftype == "boolean":
        if isinstance(value, str):
            return value.lower() in ("true", "t", "1")
        return bool(value)
    if sftype in ("int", "long"):
        return int(value)
    if sftype in ("double", "currency", "percent"):
        return float(value)
    return str(value)


def values_equal(sftype, a, b):
    if a is None or b is None:
        return a is None and b is None
    if sftype in ("double", "currency", "percent"):
        return math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-12)
    return a == b


# -- comparison ------------------------------------------------------------------
def mapped_fields(sf, obj, db, table, schema, ignore=()):
    """[(column, field name, type)] for the table's columns; problems for the others
    (columns named in ignore are left out)."""
    types = {}
    for f in sf.describe(obj)["fields"]:
        types[f["name"].lower()] = (f["name"], f["type"])
    cols = db.columns(table, schema)
    fields, problems = [], []
    if not cols:
        return fields, [f"table {schema}.{table} does not exist (or has no columns)"]
    if "sfid" not in cols:
        problems.append("no sfid column")
    for col in cols:
        if col in SYSTEM_COLUMNS or col in ignore:
            continue
        key = "id" if col == "sfid" else col
        if key not in types:
            problems.append(f"column {col} matches no field of {obj}")
            continue
        name, ftype = types[key]
        fields.append((col, name, ftype))
    return fields, problems


def diff_pg_sf(sf, db, obj, schema="salesforce", table=None, fields=None, deleted="absent", ignore=()):
    """What differs between schema.table and obj's records in Salesforce.

    fields: only these Salesforce fields (default: every mapped column).
    deleted: "absent" (deleted records must not be in Postgres) or
             "tombstone" (they may stay, with isdeleted = true and the values
             they had when deleted).
    ignore: columns left out (e.g. a relationship column such as
            school__r__external_id__c, which matches no field of obj).
    """
    assert deleted in ("absent", "tombstone")
    table = table or obj.lower()
    diff = Diff(obj, f"{schema}.{table}")
    mapped, problems = mapped_fields(sf, obj, db, table, schema, ignore)
    diff.problems += problems
    if problems and not mapped:
        return diff
    if fields is not None:
        want = {f.lower() for f in fields} | {"id"}
        mapped = [m for m in mapped if m[1].lower() in want]
        missing_cols = want - {m[1].lower() for m in mapped}
        if missing_cols:
            diff.problems.append("no column for " + ", ".join(sorted(missing_cols)))
    names = [m[1] for m in mapped]
    if "Id" not in names:
        return diff
    select = list(names)
    if deleted == "tombstone" and "IsDeleted" not in select:
        select.append("IsDeleted")
    soql = f"SELECT {', '.join(select)} FROM {obj}"
    sf_records = sf.query_all(soql) if deleted == "tombstone" else sf.query(soql)
    sf_by_id = {r["Id"]: r for r in sf_records}
    live = {i for i, r in sf_by_id.items() if not r.get("IsDeleted")}

    cols_sql = ", ".join(ident(m[0]) for m in mapped)
    pg_rows = db.query_dicts(f"SELECT {cols_sql} FROM {ident(schema)}.{ident(table)}")
    pg_by_id = {}
    for row in pg_rows:
        if row["sfid"] in pg_by_id:
            diff.problems.append(f"sfid {row['sfid']} appears more than once")
        pg_by_id[row["sfid"]] = row
    diff.sf_count, diff.pg_count = len(live), len(pg_rows)

    diff.missing = sorted(live - pg_by_id.keys())
    for sfid in sorted(pg_by_id):
        if sfid in live:
            continue
        if deleted == "tombstone" and sfid in sf_by_id:
            if "IsDeleted" not in names and pg_by_id[sfid].get("isdeleted") is not True:
                diff.fields.append((sfid, "IsDeleted", True, pg_by_id[sfid].get("isdeleted")))
            continue
        diff.extra.append(sfid)
    for sfid, row in pg_by_id.items():
        rec = sf_by_id.get(sfid)
        if rec is None or (sfid not in live and deleted != "tombstone"):
            continue
        for col, name, ftype in mapped:
            sv = normalise(ftype, rec.get(name), "sf")
            pv = normalise(ftype, row[col], "pg")
            if not values_equal(ftype, sv, pv):
                diff.fields.append((sfid, name, sv, pv))
    diff.fields.sort()
    return diff


def assert_pg_equals_sf(sf, db, obj, **kw):
    """Fail with a readable list of differences unless the table mirrors obj.
    Returns the number of rows compared."""
    diff = diff_pg_sf(sf, db, obj, **kw)
    if diff:
        raise AssertionError(str(diff))
    return diff.pg_count


def wait_pg_equals_sf(sf, db, obj, timeout=60, context=None, **kw):
    """Poll until the table mirrors obj (e.g. while the daemon runs)."""
    last = {}

    def check():
        d = diff_pg_sf(sf, db, obj, **kw)
        last["diff"] = d
        return not d

    def ctx():
        parts = [str(last.get("diff", "(no comparison finished)"))]
        if context is not None:
            parts.append(str(context()))
        return "\n".join(parts)

    wait_for(check, timeout=timeout, what=f"Postgres to equal Salesforce for {obj}", interval=0.2, context=ctx)
