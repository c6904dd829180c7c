"""Start and stop a localforce server (a fresh in-memory org) for one test.

With db=PATH the org lives in a SQLite file instead, so restart() (SIGTERM,
then the same command on the same port) keeps its records, events and jobs,
as a restart of a real org's pod would; sessions are lost, as documented."""
import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

from .paths import SCHOOL_ORG, localforce_bin
from .salesforce import SfClient

READY_RE = re.compile(r"localforce listening on (https?://\S+)")
# A Bulk query's resultPages name pages of this many rows (localforce's own
# default is 100,000): the tests' loads of thousands of rows then span several
# pages fetched side by side, as SFBRIDGE_BULK_PAGE=2000 does for pages fetched
# one after the other. A test's own --result-page-rows comes later and wins.
RESULT_PAGE_ROWS = 2000


class Localforce:
    def __init__(self, workdir, org=SCHOOL_ORG, args=(), env=None, binary=None, db=None):
        self.binary = Path(binary) if binary else localforce_bin()
        self.db = str(db) if db else ":memory:"
        self.port = 0
        self.org = Path(org)
        self.workdir = Path(workdir)
        self.args = list(args)
        self.extra_env = dict(env or {})
        self.proc = None
        self.url = None
        self.returncode = None
        org_def = json.loads(self.org.read_text())
        app = org_def["connected_apps"][0]
        user = next(u for u in org_def["users"] if u["username"] == app["run_as"])
        self.client_id = app["client_id"]
        self.client_secret = app["client_secret"]
        self.username = user["username"]
        self.password = user["password"]

    @property
    def stdout_path(self):
        return self.workdir / "localforce.out"

    @property
    def stderr_path(self):
        return self.workdir / "localforce.err"

    def start(self, timeout=30):
        self.workdir.mkdir(parents=True, exist_ok=True)
        cmd = [str(self.binary), "serve", "--listen", f"127.0.0.1:{self.port}", "--org", str(self.org),
               "--db", self.db, "--result-page-rows", str(RESULT_PAGE_ROWS), *self.args]
        env = {**os.environ, **self.extra_env}
        self.starts = getattr(self, "starts", 0) + 1
        if self.starts > 1:  # keep the earlier runs' output for failure messages
            for p in (self.stdout_path, self.stderr_path):
                if p.exists():
                    p.rename(p.with_name(f"{p.name}.{self.starts - 1}"))
        with open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(cmd, stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=env)
        deadline = time.monotonic() + timeout
        while True:
            m = READY_RE.search(self.stdout_path.read_text(errors="replace"))
            if m:
                self.url = m.group(1).rstrip("/")
                self.port = int(self.url.rsplit(":", 1)[1])
                return self
            if self.proc.poll() is not None:
                raise RuntimeError(f"localforce exited ({self.proc.returncode}) before it was ready\n"
                                   f"command: {' '.join(cmd)}\n{self.log()}")
            if time.monotonic() > deadline:
                self.proc.kill()
                raise RuntimeError(f"localforce printed no ready line within {timeout} s\n{self.log()}")
            time.sleep(0.02)

    def log(self, n=80):
        parts = []
        for p in (self.stdout_path, self.stderr_path):
            try:
                lines = p.read_text(errors="replace").splitlines()[-n:]
            except OSError:
                lines = []
            parts.append(f"--- {p.name} (tail) ---\n" + "\n".join(lines))
        return "\n".join(parts)

    def client(self, username=None, **kw):
        """A new SfClient (not logged in yet) for this org's integration user, or for
        another of the org file's users by username."""
        if username is None:
            return SfClient(self.url, self.client_id, self.client_secret, self.username, self.password, **kw)
        user = next(u for u in json.loads(self.org.read_text())["users"] if u["username"] == username)
        return SfClient(self.url, self.client_id, self.client_secret, username, user["password"], **kw)

    def restart(self, timeout=30, sig=signal.SIGTERM):
        """Stop (SIGTERM by default; SIGKILL to crash it) and start again on the
        same port with the same database. Needs db= (an in-memory org would come
        back empty). Returns the exit status of the stopped server."""
        assert self.db != ":memory:", "restart() needs a database file (db=...)"
        assert self.proc is not None, "localforce is not running"
        if sig == signal.SIGTERM:
            rc = self.stop(timeout)
        else:
            self.proc.send_signal(sig)
            self.proc.wait(timeout)
            rc = self.returncode = self.proc.returncode
            self.proc = None
        last = None
        for _ in range(50):  # the port may linger for a moment
            try:
                self.start(timeout)
                return rc
            except RuntimeError as exc:
                last = exc
                time.sleep(0.2)
        raise RuntimeError(f"localforce did not come back on port {self.port}: {last}")

    def stop(self, timeout=30):
        """SIGTERM and wait; returns the exit status (0 expected)."""
        if self.proc is None:
            return self.returncode
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.returncode = self.proc.returncode
        self.proc = None
        return self.returncode
