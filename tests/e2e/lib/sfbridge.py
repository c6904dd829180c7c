"""Run the sfbridge binary under test: CLI commands and the daemon.

The environment is built from scratch for each run: the caller's SF_*,
SFBRIDGE_*, PG* and DATABASE_URL variables are dropped, then DATABASE_URL and
the Salesforce settings of the test's localforce org are set, then any
overrides (SFBRIDGE_BULK_THRESHOLD=10, ...). A value of None removes a
variable (to test what happens when it is missing).
"""
import json
import os
import signal
import subprocess
from pathlib import Path

from .paths import sfbridge_bin
from .wait import WaitAbort, wait_for

SFBRIDGE_API_VERSION = "60.0"

# Test-friendly defaults: retries do not wait 30 s; an insert whose answer was
# lost is looked up 2 s after it was sent (localforce answers within that).
DEFAULT_OVERRIDES = {
    "SFBRIDGE_BACKOFF_CAP_MS": "1000",
    "SFBRIDGE_WRITE_SETTLE_MS": "2000",
    "SFBRIDGE_LOG_LEVEL": os.environ.get("SFBRIDGE_TEST_LOG_LEVEL", "info"),
}


def _clean_environ():
    return {k: v for k, v in os.environ.items()
            if not (k.startswith("SF_") or k.startswith("SFBRIDGE_") or k.startswith("PG")
                    or k == "DATABASE_URL")}


class SfbridgeError(AssertionError):
    pass


def describe_result(r):
    cmd = r.args if isinstance(r.args, str) else " ".join(map(str, r.args))
    return (f"command: {cmd}\nexit status: {r.returncode}\n"
            f"--- stdout ---\n{_tail(r.stdout)}\n--- stderr ---\n{_tail(r.stderr)}")


def _tail(text, n=12000):
    text = text or ""
    return text if len(text) <= n else "...\n" + text[-n:]


class Sfbridge:
    def __init__(self, workdir, database_url=None, localforce=None, overrides=None, binary=None):
        self.binary = Path(binary) if binary else sfbridge_bin()
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.base_env = {}
        if database_url:
            self.base_env["DATABASE_URL"] = database_url
        if localforce is not None:
            self.base_env.update({
                "SF_LOGIN_URL": localforce.url,
                "SF_CLIENT_ID": localforce.client_id,
                "SF_CLIENT_SECRET": localforce.client_secret,
                "SF_USERNAME": localforce.username,
                "SF_PASSWORD": localforce.password,
                "SF_API_VERSION": SFBRIDGE_API_VERSION,
            })
        self.base_env.update(DEFAULT_OVERRIDES)
        self.base_env.update({k: str(v) for k, v in (overrides or {}).items()})
        self.proc = None          # the daemon
        self._log_path = None
        self._nlogs = 0
        self.history = []         # every CompletedProcess, for failure messages

    # -- environment ---------------------------------------------------------
    def env(self, overrides=None, bare=False):
        """The environment of a run; bare=True starts from nothing of ours."""
        env = _clean_environ()
        if not bare:
            env.update(self.base_env)
        for k, v in (overrides or {}).items():
            if v is None:
                env.pop(k, None)
            else:
                env[k] = str(v)
        return env

    def set(self, **overrides):
        """Change the environment of later runs (None removes a variable)."""
        for k, v in overrides.items():
            if v is None:
                self.base_env.pop(k, None)
            else:
                self.base_env[k] = str(v)

    # -- CLI -----------------------------------------------------------------
    def run(self, *args, check=True, timeout=180, env=None, bare=False, input=None):
        """Run `sfbridge ARGS...` to completion; CompletedProcess (text).
        check=True fails the test (with the output) unless it exits 0."""
        cmd = [str(self.binary), *map(str, args)]
        try:
            r = subprocess.run(cmd, env=self.env(env, bare), cwd=self.workdir, capture_output=True,
                               text=True, errors="replace", timeout=timeout, input=input,
                               stdin=None if input is not None else subprocess.DEVNULL)
        except subprocess.TimeoutExpired as exc:
            raise SfbridgeError(f"sfbridge {' '.join(map(str, args))} did not finish within {timeout} s\n"
                                f"--- stdout ---\n{_tail(_s(exc.stdout))}\n"
                                f"--- stderr ---\n{_tail(_s(exc.stderr))}") from None
        self.history.append(r)
        if check and r.returncode != 0:
            raise SfbridgeError("sfbridge failed\n" + describe_result(r))
        return r

    def fails(self, *args, status=1, **kw):
        """Run, expect exit `status`; returns the CompletedProcess."""
        r = self.run(*args, check=False, **kw)
        if r.returncode != status:
            raise SfbridgeError(f"expected exit status {status}\n" + describe_result(r))
        return r

    def init(self, *extra):
        return self.run(*extra, "init")

    def add(self, obj, *args):
        """mapping add OBJECT ARGS... (default --all-fields)."""
        return self.run("mapping", "add", obj, *(args or ("--all-fields",)))

    def once(self, timeout=300, **kw):
        """run --once: pending loads, then one poll of every active mapping."""
        return self.run("run", "--once", timeout=timeout, **kw)

    def status_json(self, *args):
        """`status --json`; its exit status is the health verdict (0, 1 or 2), any of which is fine here."""
        r = self.run("status", "--json", *args, check=False)
        if r.returncode not in (0, 1, 2):
            raise SfbridgeError("status --json failed\n" + describe_result(r))
        try:
            return json.loads(r.stdout)
        except ValueError as exc:
            raise SfbridgeError(f"status --json printed no JSON ({exc})\n" + describe_result(r)) from None

    def mapping_status(self, obj):
        """The entry of `status --json` describing one mapping."""
        st = self.status_json()
        found = find_mapping_entry(st, obj)
        if found is None:
            raise SfbridgeError(f"status --json has no entry for {obj}:\n{json.dumps(st, indent=1)[:4000]}")
        return found

    def mapping_state(self, obj):
        return self.mapping_status(obj).get("state")

    def connection_state(self):
        st = self.status_json()
        conn = st.get("connection") if isinstance(st, dict) else None
        if isinstance(conn, dict) and "state" in conn:
            return conn["state"]
        if isinstance(st, dict) and isinstance(st.get("state"), str):
            return st["state"]
        raise SfbridgeError(f"status --json shows no connection state:\n{json.dumps(st, indent=1)[:4000]}")

    # -- daemon --------------------------------------------------------------
    def start(self, *global_args, env=None):
        """Start `sfbridge [GLOBAL_ARGS] run` in the background (output to a log file)."""
        assert self.proc is None or self.proc.poll() is not None, "a daemon is already running"
        self._nlogs += 1
        self._log_path = self.workdir / f"sfbridge-run-{self._nlogs}.log"
        cmd = [str(self.binary), *map(str, global_args), "run"]
        with open(self._log_path, "wb") as log:
            self.proc = subprocess.Popen(cmd, env=self.env(env), cwd=self.workdir, stdout=log,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        return self.proc

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def log(self, n=150):
        """Tail of the daemon's output."""
        if not self._log_path:
            return "(the daemon was not started)"
        try:
            lines = self._log_path.read_text(errors="replace").splitlines()[-n:]
        except OSError:
            return "(no daemon log)"
        state = "running" if self.running() else f"exited {self.proc.returncode if self.proc else '?'}"
        return f"--- sfbridge run output ({state}, tail) ---\n" + "\n".join(lines)

    def assert_running(self):
        if not self.running():
            raise SfbridgeError("the sfbridge daemon is not running\n" + self.log())

    def kill9(self):
        """SIGKILL the daemon, as a crash would."""
        assert self.proc is not None, "no daemon"
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)
        self.proc = None

    def stop(self, timeout=60):
        """SIGTERM; the daemon must exit 0 (a sanitizer report makes it non-zero)."""
        assert self.proc is not None, "no daemon"
        proc = self.proc
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                raise SfbridgeError(f"sfbridge run did not exit within {timeout} s of SIGTERM\n" + self.log())
        rc = proc.returncode
        if rc != 0:
            raise SfbridgeError(f"sfbridge run exited {rc} on SIGTERM (expected 0)\n" + self.log())
        self.proc = None
        return rc

    def cleanup(self):
        """Test teardown: kill a daemon the test left running."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                pass
        self.proc = None

    def recent_output(self, n=5):
        """The last CLI runs' output, for failure messages."""
        return "\n".join(describe_result(r) for r in self.history[-n:])


def _s(b):
    if b is None:
        return ""
    return b.decode("utf-8", "replace") if isinstance(b, bytes) else b


def find_mapping_entry(data, obj):
    """In status JSON of unknown exact shape, the dict describing mapping obj:
    one whose object/object_name/name value is obj and which has a state."""
    want = obj.lower()
    stack = [data]
    while stack:
        cur = stack.pop()
        if isinstance(cur, dict):
            for key in ("object_name", "object", "name", "sobject"):
                v = cur.get(key)
                if isinstance(v, str) and v.lower() == want and "state" in cur:
                    return cur
            # {"mappings": {"Teacher__c": {...}}}
            for k, v in cur.items():
                if isinstance(k, str) and k.lower() == want and isinstance(v, dict) and "state" in v:
                    return v
            stack.extend(cur.values())
        elif isinstance(cur, list):
            stack.extend(cur)
    return None


def wait_daemon(sfb, predicate, timeout=60, what="the condition", interval=0.05, max_interval=0.5):
    """wait_for with the daemon's log in the failure message, failing fast if it died."""
    def check():
        if sfb.proc is not None and sfb.proc.poll() is not None:
            raise WaitAbort(f"the sfbridge daemon exited ({sfb.proc.returncode}) while waiting for "
                            f"{what}\n" + sfb.log())
        return predicate()

    return wait_for(check, timeout=timeout, what=what, context=sfb.log, interval=interval,
                    max_interval=max_interval)
