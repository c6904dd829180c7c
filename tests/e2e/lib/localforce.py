"""Start and stop a localforce server (a fresh in-memory org) for one test."""
import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

from .paths import SCHOOL_ORG, localforce_bin
from .salesforce import SfClient

READY_RE = re.compile(r"localforce listening on (http://\S+)")


class Localforce:
    def __init__(self, workdir, org=SCHOOL_ORG, args=(), env=None, binary=None):
        self.binary = Path(binary) if binary else localforce_bin()
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
        cmd = [str(self.binary), "serve", "--listen", "127.0.0.1:0", "--org", str(self.org),
               "--db", ":memory:", *self.args]
        env = {**os.environ, **self.extra_env}
        with open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(cmd, stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=env)
        deadline = time.monotonic() + timeout
        while True:
            m = READY_RE.search(self.stdout_path.read_text(errors="replace"))
            if m:
                self.url = m.group(1).rstrip("/")
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

    def client(self, **kw):
        """A new SfClient for this org's integration user (not logged in yet)."""
        return SfClient(self.url, self.client_id, self.client_secret, self.username, self.password, **kw)

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
