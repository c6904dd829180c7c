"""A tiny ActiveRecord look-alike: the SQL a Rails app sends to Postgres, through psycopg.

It speaks to the mapped tables the way ActiveRecord 7 does on PostgreSQL: the
connection in autocommit mode with explicit BEGIN / COMMIT / ROLLBACK, nested
transactions as SAVEPOINT active_record_N, `INSERT ... RETURNING "id"`,
partial updates (only the changed attributes) by primary key,
`DELETE ... WHERE "id" = $1`, `SELECT "t".* FROM "t" WHERE "t"."id" = $1 LIMIT $2`,
and insert_all / update_all / delete_all as single statements. Values travel
as bound parameters (psycopg 3 binds server side, as the pg gem does).
"""
import contextlib

import psycopg
from psycopg.rows import dict_row

from .pgcluster import ident


class Connection:
    def __init__(self, url, schema="salesforce"):
        # Rails does not touch xmlbinary: the capture triggers see an app session
        self.conn = psycopg.connect(url, autocommit=True, application_name="rails-e2e")
        self.conn.execute(f"SET search_path TO {ident(schema)}, public")
        self.depth = 0
        self.log = []

    def close(self):
        self.conn.close()

    def exec(self, sql, params=None):
        self.log.append(sql)
        with self.conn.cursor(row_factory=dict_row) as cur:
            cur.execute(sql, params)
            return cur.fetchall() if cur.description else cur.rowcount

    @contextlib.contextmanager
    def transaction(self, requires_new=False):
        """ActiveRecord::Base.transaction: BEGIN ... COMMIT (ROLLBACK on an exception);
        nested with requires_new: SAVEPOINT active_record_N."""
        if self.depth and not requires_new:
            yield self
            return
        self.depth += 1
        sp = f"active_record_{self.depth - 1}"
        self.exec("BEGIN" if self.depth == 1 else f"SAVEPOINT {sp}")
        try:
            yield self
        except BaseException:
            self.exec("ROLLBACK" if self.depth == 1 else f"ROLLBACK TO SAVEPOINT {sp}")
            raise
        else:
            self.exec("COMMIT" if self.depth == 1 else f"RELEASE SAVEPOINT {sp}")
        finally:
            self.depth -= 1


class Rollback(Exception):
    """raise ActiveRecord::Rollback: undo the innermost transaction quietly."""


@contextlib.contextmanager
def swallow_rollback():
    try:
        yield
    except Rollback:
        pass


class Model:
    """Subclass with table = "teacher__c". Attributes are the row's columns."""
    table = None
    db = None  # a Connection, set by the test

    def __init__(self, **attrs):
        self.id = attrs.pop("id", None)
        self.attrs = dict(attrs)
        self.saved = {}          # the values as last read or written

    # attribute access like a Ruby model: teacher["name"], teacher.name = ...
    def __getitem__(self, k):
        return self.attrs.get(k)

    def __setitem__(self, k, v):
        self.attrs[k] = v

    @classmethod
    def _t(cls):
        return ident(cls.table)

    @property
    def new_record(self):
        return self.id is None

    def changed(self):
        return {k: v for k, v in self.attrs.items() if k != "id" and (k not in self.saved or self.saved[k] != v)}

    def save(self):
        """INSERT ... RETURNING "id" for a new record, else UPDATE of the changed
        attributes only; each in its own transaction, as save does."""
        db = self.db
        with db.transaction():
            if self.new_record:
                cols = {k: v for k, v in self.attrs.items() if k != "id"}
                names = ", ".join(ident(k) for k in cols)
                marks = ", ".join(["%s"] * len(cols))
                rows = db.exec(f"INSERT INTO {self._t()} ({names}) VALUES ({marks}) RETURNING \"id\"",
                               list(cols.values()))
                self.id = rows[0]["id"]
            else:
                ch = self.changed()
                if ch:
                    sets = ", ".join(f"{ident(k)} = %s" for k in ch)
                    db.exec(f"UPDATE {self._t()} SET {sets} WHERE {self._t()}.\"id\" = %s", [*ch.values(), self.id])
        self.saved = dict(self.attrs)
        return True

    @classmethod
    def create(cls, **attrs):
        m = cls(**attrs)
        m.save()
        return m

    def update(self, **attrs):
        self.attrs.update(attrs)
        return self.save()

    def destroy(self):
        with self.db.transaction():
            n = self.db.exec(f"DELETE FROM {self._t()} WHERE {self._t()}.\"id\" = %s", (self.id,))
        return n == 1

    def reload(self):
        rows = self.db.exec(f"SELECT {self._t()}.* FROM {self._t()} WHERE {self._t()}.\"id\" = %s LIMIT %s",
                            (self.id, 1))
        if not rows:
            raise LookupError(f"Couldn't find {self.table} with 'id'={self.id}")
        r = dict(rows[0])
        r.pop("id", None)
        self.attrs = r
        self.saved = dict(self.attrs)
        return self

    @classmethod
    def find(cls, rid):
        return cls(id=rid).reload()

    @classmethod
    def where(cls, **cond):
        conds = " AND ".join(f"{cls._t()}.{ident(k)} = %s" for k in cond)
        rows = cls.db.exec(f"SELECT {cls._t()}.* FROM {cls._t()} WHERE {conds}", list(cond.values()))
        out = []
        for r in rows:
            m = cls(**r)
            m.saved = dict(m.attrs)
            out.append(m)
        return out

    @classmethod
    def insert_all(cls, rows):
        """One multi-row INSERT ... ON CONFLICT DO NOTHING RETURNING "id"."""
        cols = list(rows[0])
        names = ", ".join(ident(c) for c in cols)
        tuples = ", ".join("(" + ", ".join(["%s"] * len(cols)) + ")" for _ in rows)
        params = [r[c] for r in rows for c in cols]
        res = cls.db.exec(f"INSERT INTO {cls._t()} ({names}) VALUES {tuples} ON CONFLICT DO NOTHING "
                          f"RETURNING \"id\"", params)
        return [r["id"] for r in res]

    @classmethod
    def update_all(cls, changes, **cond):
        sets = ", ".join(f"{ident(k)} = %s" for k in changes)
        conds = " AND ".join(f"{cls._t()}.{ident(k)} = %s" for k in cond)
        return cls.db.exec(f"UPDATE {cls._t()} SET {sets} WHERE {conds}", [*changes.values(), *cond.values()])

    @classmethod
    def delete_all(cls, **cond):
        conds = " AND ".join(f"{cls._t()}.{ident(k)} = %s" for k in cond)
        return cls.db.exec(f"DELETE FROM {cls._t()} WHERE {conds}", list(cond.values()))
