"""A private Postgres cluster for the tests, and one fresh database per test.

The cluster lives in a temporary directory, listens on a free 127.0.0.1 port
and on a unix socket in that directory, and runs with fsync off (the data is
thrown away). Postgres refuses to run as root, so when the tests run as root
(CI does) initdb and pg_ctl run as `nobody` through runuser, and the directory
is handed to nobody.

The server's time zone is deliberately not UTC: sfbridge must store
Salesforce datetimes as UTC whatever the server's setting.
"""
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import psycopg
from psycopg.rows import dict_row

SERVER_TIMEZONE = "Pacific/Auckland"


def pg_bindir():
    """$PG_BINDIR, else /usr/lib/postgresql/15/bin, else `pg_config --bindir`."""
    env = os.environ.get("PG_BINDIR")
    if env:
        return Path(env)
    debian = Path("/usr/lib/postgresql/15/bin")
    if (debian / "initdb").exists():
        return debian
    out = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True, check=True)
    return Path(out.stdout.strip())


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PgCluster:
    def __init__(self, bindir=None):
        self.bindir = Path(bindir) if bindir else pg_bindir()
        self.base = None
        self.port = None
        self.running = False
        self._ndb = 0
        self._as_nobody = os.geteuid() == 0

    # -- processes ---------------------------------------------------------
    def _cmd(self, name, *args):
        prefix = ["runuser", "-u", "nobody", "--"] if self._as_nobody else []
        return prefix + [str(self.bindir / name), *map(str, args)]

    def _run(self, name, *args, timeout=120):
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env["LC_ALL"] = "C.UTF-8"
        proc = subprocess.run(self._cmd(name, *args), cwd=self.base, env=env, capture_output=True,
                              text=True, errors="replace", timeout=timeout)
        return proc

    @property
    def data(self):
        return self.base / "data"

    @property
    def logfile(self):
        return self.base / "postgres.log"

    def log_tail(self, n=60):
        try:
            return "\n".join(self.logfile.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return "(no postgres log)"

    def start(self):
        self.base = Path(tempfile.mkdtemp(prefix="sfbridge-e2e-pg-"))
        os.chmod(self.base, 0o755)  # nobody must be able to traverse it
        if self._as_nobody:
            nobody = pwd.getpwnam("nobody")
            os.chown(self.base, nobody.pw_uid, nobody.pw_gid)
        r = self._run("initdb", "-D", self.data, "-U", "postgres", "--auth=trust", "-E", "UTF8",
                      "--locale=C", "--no-sync")
        if r.returncode != 0:
            raise RuntimeError(f"initdb failed ({r.returncode}):\n{r.stdout}\n{r.stderr}")
        last = ""
        for _ in range(5):  # another process may take the port between probe and bind
            self.port = free_port()
            opts = " ".join([
                f"-c port={self.port}",
                "-c listen_addresses=127.0.0.1",
                f"-c unix_socket_directories={self.base}",
                "-c fsync=off",
                "-c synchronous_commit=off",
                "-c full_page_writes=off",
                "-c max_connections=200",
                f"-c timezone={SERVER_TIMEZONE}",
                "-c log_min_messages=warning",
            ])
            r = self._run("pg_ctl", "-D", self.data, "-l", self.logfile, "-o", opts, "-w", "-t", "60",
                          "start")
            if r.returncode == 0:
                self.running = True
                return self
            last = f"{r.stdout}\n{r.stderr}\n{self.log_tail()}"
        raise RuntimeError(f"pg_ctl start failed:\n{last}")

    def restart(self, mode="fast"):
        """pg_ctl restart (mode fast, or immediate: a crash and recovery); same
        port and options. Every connection is cut."""
        r = self._run("pg_ctl", "-D", self.data, "-l", self.logfile, "-m", mode, "-w", "-t", "60", "restart")
        if r.returncode != 0:
            raise RuntimeError(f"pg_ctl restart -m {mode} failed:\n{r.stdout}\n{r.stderr}\n{self.log_tail()}")

    def stop(self):
        if self.running:
            self._run("pg_ctl", "-D", self.data, "-m", "fast", "-w", "-t", "60", "stop")
            self.running = False
        if self.base is not None:
            shutil.rmtree(self.base, ignore_errors=True)
            self.base = None

    # -- databases ---------------------------------------------------------
    def url(self, dbname="postgres"):
        return f"postgresql://postgres@127.0.0.1:{self.port}/{dbname}"

    def connect(self, dbname="postgres", **kw):
        return psycopg.connect(self.url(dbname), autocommit=True, **kw)

    def create_database(self):
        self._ndb += 1
        name = f"test_{self._ndb}"
        with self.connect() as c:
            c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            c.execute(f'CREATE DATABASE "{name}"')
        return Database(self, name)

    def drop_database(self, name):
        with self.connect() as c:
            c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class Database:
    """One test database, with small helpers to look at what sfbridge made."""

    def __init__(self, cluster, name):
        self.cluster = cluster
        self.name = name
        self.url = cluster.url(name)
        self._conn = None

    def connect(self, **kw):
        return psycopg.connect(self.url, autocommit=True, **kw)

    @property
    def conn(self):
        """A shared autocommit connection (reopened if it was lost)."""
        if self._conn is None or self._conn.closed or self._conn.broken:
            self._conn = self.connect()
        return self._conn

    def close(self):
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def query(self, sql, params=None):
        with self.conn.cursor() as cur:
            cur.execute(sql, params)
            return cur.fetchall() if cur.description else []

    def query_dicts(self, sql, params=None):
        with self.conn.cursor(row_factory=dict_row) as cur:
            cur.execute(sql, params)
            return cur.fetchall() if cur.description else []

    def scalar(self, sql, params=None):
        rows = self.query(sql, params)
        return rows[0][0] if rows else None

    def execute(self, sql, params=None):
        self.conn.execute(sql, params)

    def table_exists(self, table, schema="salesforce"):
        return self.scalar(
            "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = %s AND c.relname = %s AND c.relkind IN ('r', 'p')", (schema, table)) == 1

    def schema_exists(self, schema):
        return self.scalar("SELECT count(*) FROM pg_namespace WHERE nspname = %s", (schema,)) == 1

    def tables(self, schema="salesforce"):
        return {r[0] for r in self.query(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = %s AND c.relkind IN ('r', 'p')", (schema,))}

    def columns(self, table, schema="salesforce"):
        """{column: type as format_type writes it}, in column order."""
        rows = self.query(
            "SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a "
            "JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = %s AND c.relname = %s AND a.attnum > 0 AND NOT a.attisdropped "
            "ORDER BY a.attnum", (schema, table))
        return {name: typ for name, typ in rows}

    def column_default(self, table, column, schema="salesforce"):
        return self.scalar(
            "SELECT column_default FROM information_schema.columns "
            "WHERE table_schema = %s AND table_name = %s AND column_name = %s", (schema, table, column))

    def indexes(self, table, schema="salesforce"):
        """{index name: (unique, primary, [columns])}."""
        rows = self.query(
            "SELECT i.relname, x.indisunique, x.indisprimary, "
            "       array(SELECT a.attname FROM unnest(x.indkey) WITH ORDINALITY k(attnum, ord) "
            "             JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = k.attnum "
            "             ORDER BY k.ord) "
            "FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid "
            "JOIN pg_class t ON t.oid = x.indrelid JOIN pg_namespace n ON n.oid = t.relnamespace "
            "WHERE n.nspname = %s AND t.relname = %s", (schema, table))
        return {name: (uniq, prim, list(cols)) for name, uniq, prim, cols in rows}

    def count(self, table, schema="salesforce", where=None, params=None):
        sql = f'SELECT count(*) FROM {ident(schema)}.{ident(table)}'
        if where:
            sql += f" WHERE {where}"
        return self.scalar(sql, params)

    def rows_by_sfid(self, table, schema="salesforce"):
        rows = self.query_dicts(f'SELECT * FROM {ident(schema)}.{ident(table)}')
        return {r["sfid"]: r for r in rows}


def ident(name):
    """A quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'
