"""make demo (scripts/demo.sh) as a newcomer sees it, on a pseudo-terminal.

Each test runs the demo in a private directory (DEMO_DIR) on free ports
(DEMO_PG_PORT, LOCALFORCE_PORT), with $SFBRIDGE_BIN and $LOCALFORCE_BIN,
and reads the terminal through pyte, a terminal emulator: what is on the
screen and what scrolled off it. Checked: the instructions appear once and
the live status redraws in place below them (also on a small terminal);
Ctrl-C (and q) stop everything with status 0, also through make; the
Postgres port is the one asked for and the same on the next start, and a
taken port is named with DEMO_PG_PORT; the mappings are read-write by a
unique identifier (Teacher__c by Email__c) or read-only, and an older run's
mappings are brought to that; piped, the status is printed (no terminal
codes); as root, a run directory that nobody (Postgres) cannot enter works.
"""
import fcntl
import json
import os
import pty
import re
import select
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import termios
import urllib.request
from pathlib import Path

import psycopg
import pytest

from lib.paths import ROOT, localforce_bin, sfbridge_bin
from lib.pgcluster import free_port
from lib.wait import WaitAbort, wait_for

pyte = pytest.importorskip("pyte", reason="needs python3-pyte (scripts/deps.sh installs it)")

STATUS_RE = re.compile(rb"status at (\d\d:\d\d:\d\d)")
INSTRUCTIONS_END = "Press Ctrl-C (or q) to stop"


def demo_env(run_dir, pg_port, lf_port, extra=None, http_port=None):
    """The caller's environment without sfbridge's settings, plus the demo's."""
    env = {k: v for k, v in os.environ.items()
           if not (k.startswith(("SF_", "SFBRIDGE_", "PG", "DEMO_")) or k in ("DATABASE_URL", "LOCALFORCE_PORT"))}
    env.update(DEMO_DIR=str(run_dir), LOCALFORCE_PORT=str(lf_port), TERM="xterm", LC_ALL="C.UTF-8",
               SFBRIDGE_BIN=str(sfbridge_bin()), LOCALFORCE_BIN=str(localforce_bin()))
    if pg_port is not None:
        env["DEMO_PG_PORT"] = str(pg_port)
    if http_port is not None:
        env["DEMO_HTTP_PORT"] = str(http_port)
    env.update(extra or {})
    return env


class Demo:
    """One run of a command (scripts/demo.sh, or make demo) on a pseudo-terminal
    of cols x rows, its output fed to a pyte screen as it comes."""

    def __init__(self, argv, env, cols=100, rows=40):
        self.cols, self.rows = cols, rows
        self.screen = pyte.HistoryScreen(cols, rows, history=100000)
        self.stream = pyte.ByteStream(self.screen)
        self.raw = b""
        self.returncode = None
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # the child: the pty is its controlling terminal
            try:
                os.chdir(ROOT)
                os.execvpe(argv[0], argv, env)
            finally:
                os._exit(127)
        fcntl.ioctl(self.fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))

    def pump(self):
        """Read what the program wrote so far; note its exit."""
        while True:
            ready, _, _ = select.select([self.fd], [], [], 0)
            if not ready:
                break
            try:
                data = os.read(self.fd, 65536)
            except OSError:  # EIO: the terminal's other side is closed
                data = b""
            if not data:
                break
            self.raw += data
            self.stream.feed(data)
        if self.returncode is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
                self.pump_rest()
        return self

    def pump_rest(self):
        while select.select([self.fd], [], [], 0.1)[0]:
            try:
                data = os.read(self.fd, 65536)
            except OSError:
                return
            if not data:
                return
            self.raw += data
            self.stream.feed(data)

    def text(self):
        return self.raw.decode(errors="replace")

    def tail(self, n=4000):
        return "--- demo output (tail) ---\n" + self.text()[-n:]

    def wait_text(self, needle, timeout=60):
        def seen():
            self.pump()
            if needle in self.text():
                return True
            if self.returncode is not None:
                raise WaitAbort(f"the demo exited ({self.returncode}) before printing {needle!r}\n{self.tail()}")
            return False
        wait_for(seen, timeout=timeout, what=repr(needle), context=self.tail, interval=0.1, max_interval=0.2)

    def redraws(self):
        """How many status blocks with distinct times were drawn."""
        return len(set(STATUS_RE.findall(self.raw)))

    def wait_redraws(self, n, timeout=30):
        wait_for(lambda: self.pump().redraws() >= n, timeout=timeout, what=f"{n} status redraws",
                 context=self.tail, interval=0.1, max_interval=0.2)

    def press(self, key):
        os.write(self.fd, key)

    def wait_exit(self, timeout=30):
        wait_for(lambda: self.pump().returncode is not None, timeout=timeout, what="the demo to exit",
                 context=self.tail, interval=0.05, max_interval=0.2)
        return self.returncode

    def terminal_flags(self):
        """The terminal's local modes (ISIG, ICANON, ECHO) as the program left them."""
        return termios.tcgetattr(self.fd)[3]

    def all_rows(self):
        """Every row the terminal showed: scrolled off the top, then the screen."""
        cols = self.screen.columns
        history = ["".join(line[x].data for x in range(cols)) for line in self.screen.history.top]
        return history + list(self.screen.display)

    def rows_with(self, needle):
        return sum(needle in row for row in self.all_rows())

    def close(self):
        if self.returncode is None:
            try:
                os.killpg(self.pid, signal.SIGTERM)
                self.wait_exit(timeout=20)
            except (OSError, AssertionError):
                os.killpg(self.pid, signal.SIGKILL)
                os.waitpid(self.pid, 0)
        os.close(self.fd)


def settings(demo):
    """The instructions' Settings line: {DEMO_PG_PORT: ..., ...}."""
    m = re.search(r"Settings: +(.*)", demo.text())
    assert m, f"the instructions have no Settings line\n{demo.tail()}"
    return dict(re.findall(r"(\w+)=(\d+)", m.group(1)))


def _get(url):
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.read().decode() if r.status == 200 else None
    except OSError:
        return None


def port_open(port):
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


def processes_of(dirs, pg_port):
    """PIDs of processes the demo started: Postgres and localforce name their
    directory on their command line, sfbridge has the demo's DATABASE_URL."""
    found = []
    markers = [str(d).encode() for d in dirs]
    url = f"127.0.0.1:{pg_port}/".encode()
    for p in Path("/proc").iterdir():
        if not p.name.isdigit() or int(p.name) == os.getpid():
            continue
        try:
            cmdline = (p / "cmdline").read_bytes()
            environ = (p / "environ").read_bytes()
        except OSError:
            continue
        if any(m in cmdline for m in markers) or url in environ:
            found.append((int(p.name), cmdline.replace(b"\0", b" ").decode(errors="replace")))
    return found


class Setup:
    """A private demo directory and free ports; stops what a failed test left."""

    def __init__(self):
        self.base = Path(tempfile.mkdtemp(prefix="sfbridge-demo-"))
        os.chmod(self.base, 0o755)  # Postgres runs as nobody when the tests run as root
        self.run_dir = self.base / "demo"
        self.pg_port = free_port()
        self.lf_port = free_port()
        while self.lf_port == self.pg_port:
            self.lf_port = free_port()
        self.http_port = free_port()
        while self.http_port in (self.pg_port, self.lf_port):
            self.http_port = free_port()
        self.demos = []

    def env(self, pg_port="given", extra=None):
        return demo_env(self.run_dir, self.pg_port if pg_port == "given" else pg_port, self.lf_port, extra,
                        self.http_port)

    def start(self, argv=("scripts/demo.sh",), cols=100, rows=40, **kw):
        demo = Demo(list(argv), self.env(**kw), cols, rows)
        self.demos.append(demo)
        return demo

    def sfbridge(self, *args):
        env = {k: v for k, v in self.env().items() if not k.startswith("DEMO_")}
        env.update(DATABASE_URL=f"postgresql://postgres@127.0.0.1:{self.pg_port}/postgres",
                   SF_LOGIN_URL=f"http://127.0.0.1:{self.lf_port}", SF_CLIENT_ID="sfbridge-demo-client",
                   SF_CLIENT_SECRET="sfbridge-demo-secret", SF_USERNAME="demo@localforce.test",
                   SF_PASSWORD="localforce")
        r = subprocess.run([str(sfbridge_bin()), *args], env=env, capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, f"sfbridge {' '.join(args)}: {r.returncode}\n{r.stdout}\n{r.stderr}"
        return r.stdout

    def mapping(self, obj):
        config = json.loads(self.sfbridge("mapping", "show", obj, "--json"))["config"]
        return config["access"], config.get("upsert_field")

    def cluster_dirs(self):
        """The run directory, and where pgtmp.sh put the cluster when nobody cannot reach it."""
        location = self.run_dir / "pg" / "location"
        return [self.run_dir] + ([Path(location.read_text().strip())] if location.exists() else [])

    def processes(self):
        return processes_of(self.cluster_dirs(), self.pg_port)

    def assert_all_stopped(self):
        wait_for(lambda: not self.processes(), timeout=10, what="the demo's processes to end",
                 context=self.processes)
        assert not port_open(self.pg_port), "Postgres still listens"
        assert not port_open(self.lf_port), "localforce still listens"
        assert not port_open(self.http_port), "the dashboard still listens"

    def cleanup(self):
        for demo in self.demos:
            demo.close()
        subprocess.run([str(ROOT / "scripts/pgtmp.sh"), "stop", str(self.run_dir / "pg")], capture_output=True)
        for pid, _ in self.processes():
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        for d in reversed(self.cluster_dirs()):
            shutil.rmtree(d, ignore_errors=True)
        shutil.rmtree(self.base, ignore_errors=True)


@pytest.fixture
def setup():
    s = Setup()
    yield s
    s.cleanup()


def test_instructions_then_status_redrawn_in_place_and_ctrl_c_stops_everything(setup):
    demo = setup.start(cols=100, rows=40)
    demo.wait_text(INSTRUCTIONS_END)
    assert settings(demo) == {"DEMO_PG_PORT": str(setup.pg_port), "LOCALFORCE_PORT": str(setup.lf_port),
                              "DEMO_HTTP_PORT": str(setup.http_port), "DEMO_POLL_SECONDS": "300"}
    assert f"psql postgresql://postgres@127.0.0.1:{setup.pg_port}/postgres" in demo.text()
    # the dashboard the instructions point at answers
    dash = f"http://127.0.0.1:{setup.http_port}/"
    assert f"Dashboard:   {dash}" in demo.text()
    page = wait_for(lambda: _get(dash), timeout=60, what="the dashboard to answer")
    assert "<html" in page.lower()
    demo.wait_redraws(4)
    demo.pump()
    # Everything the terminal ever showed holds the instructions once and one status block.
    assert demo.rows_with(INSTRUCTIONS_END) == 1, demo.tail()
    assert demo.rows_with("status at") == 1, "\n".join(demo.all_rows()[-60:])
    teacher_rows = [r for r in demo.all_rows() if re.search(r"Teacher__c +[A-Z_]+ +read_write", r)]
    assert len(teacher_rows) == 1, "\n".join(demo.all_rows()[-60:])
    assert re.search(rb"\x1b\[\d+A\r\x1b\[J", demo.raw), "no cursor-up + clear before a redraw"
    assert not demo.terminal_flags() & termios.ISIG, "Ctrl-C would still send SIGINT to make"

    demo.press(b"\x03")
    assert demo.wait_exit() == 0, demo.tail()
    assert "demo: stopped" in demo.text()
    assert demo.terminal_flags() & termios.ISIG and demo.terminal_flags() & termios.ECHO, \
        "the terminal was not restored"
    setup.assert_all_stopped()


def test_small_terminal_status_is_cut_to_fit_and_q_stops(setup):
    demo = setup.start(cols=60, rows=12)
    demo.wait_text(INSTRUCTIONS_END)
    demo.wait_redraws(3)
    demo.pump()
    assert demo.rows_with(INSTRUCTIONS_END) == 1, demo.tail()
    assert demo.rows_with("status at") == 1, "\n".join(demo.all_rows()[-30:])
    screen = "\n".join(demo.screen.display)
    assert "status at" in screen and "(more: a larger window shows it all)" in screen, screen
    demo.press(b"q")
    assert demo.wait_exit() == 0, demo.tail()
    setup.assert_all_stopped()


def test_mappings_have_unique_identifiers_and_the_port_stays(setup):
    demo = setup.start()
    demo.wait_text(INSTRUCTIONS_END)
    expected = {"Account": ("read_write", "External_Id__c"), "Contact": ("read_only", None),
                "Teacher__c": ("read_write", "Email__c"), "Student__c": ("read_write", "Student_Number__c"),
                "Course__c": ("read_write", "Course_Code__c"),
                "Enrollment__c": ("read_write", "Enrollment_Key__c"), "Attendance__c": ("read_only", None)}
    assert {obj: setup.mapping(obj) for obj in expected} == expected

    # The instructions' insert (it sets the unique identifier) reaches Salesforce.
    insert = re.search(r'-c "(INSERT INTO salesforce\.teacher__c .*?)"', demo.text()).group(1)
    url = f"postgresql://postgres@127.0.0.1:{setup.pg_port}/postgres"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(insert)
        wait_for(lambda: conn.execute("SELECT sfid FROM salesforce.teacher__c "
                                      "WHERE email__c = 'ada.l@dreamproject.test'").fetchone()[0],
                 timeout=30, what="the inserted teacher's sfid", context=demo.tail)

    # An older run's mapping (read-write without a unique identifier) ...
    setup.sfbridge("mapping", "edit", "Teacher__c", "--access", "read_only", "--no-upsert-field")
    demo.press(b"\x03")
    assert demo.wait_exit() == 0, demo.tail()

    # ... is brought back; and without DEMO_PG_PORT the port is last run's.
    again = setup.start(pg_port=None)
    again.wait_text(INSTRUCTIONS_END)
    assert settings(again)["DEMO_PG_PORT"] == str(setup.pg_port)
    assert f"psql {url}" in again.text()
    assert setup.mapping("Teacher__c") == ("read_write", "Email__c")
    again.press(b"\x03")
    assert again.wait_exit() == 0, again.tail()
    setup.assert_all_stopped()


def test_port_taken_names_demo_pg_port(setup):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        taken = s.getsockname()[1]
        r = subprocess.run([str(ROOT / "scripts/demo.sh")], env=setup.env(pg_port=taken), cwd=ROOT,
                           stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
    assert r.returncode != 0
    assert f"port {taken} is taken" in r.stderr and "DEMO_PG_PORT" in r.stderr, r.stderr
    assert "sfbridge is syncing" not in r.stdout


def run_piped(setup):
    """scripts/demo.sh into a pipe, stopped by Ctrl-C (SIGINT to its process
    group) once it printed a status block; its exit status and output."""
    proc = subprocess.Popen([str(ROOT / "scripts/demo.sh")], env=setup.env(), cwd=ROOT,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)
    out = b""
    try:
        os.set_blocking(proc.stdout.fileno(), False)

        def status_printed():
            nonlocal out
            out += proc.stdout.read() or b""
            if proc.poll() is not None:
                raise WaitAbort(f"the demo exited ({proc.returncode})\n{out.decode(errors='replace')}")
            return b"status at" in out and b"Teacher__c " in out.split(b"status at")[-1]
        wait_for(status_printed, timeout=60, what="a status block", interval=0.1, max_interval=0.2,
                 context=lambda: out.decode(errors="replace")[-3000:])
        os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C: the whole foreground group
        rc = proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    out += proc.stdout.read() or b""
    return rc, out


def _logs(setup):
    """The demo's sfbridge and localforce logs, for a failure's message."""
    text = []
    for name in ("sfbridge.log", "localforce.log"):
        p = setup.run_dir / name
        text.append(f"--- {name} ---\n" + (p.read_text(errors="replace")[-3000:] if p.exists() else "(none)"))
    return "\n".join(text)


def test_piped_output_prints_status_and_sigint_stops(setup):
    rc, out = run_piped(setup)
    assert rc == 0, out.decode(errors="replace")[-3000:] + "\n" + _logs(setup)
    assert b"\x1b[" not in out.split(INSTRUCTIONS_END.encode())[-1], "terminal codes written into a pipe"
    assert b"demo: stopped" in out
    setup.assert_all_stopped()


@pytest.mark.skipif(os.geteuid() != 0, reason="Postgres runs as nobody only when the demo runs as root")
def test_run_dir_that_nobody_cannot_enter(setup):
    # As in a clone under /root: Postgres, run as nobody, cannot reach the run directory.
    os.chmod(setup.base, 0o700)
    rc, out = run_piped(setup)
    assert rc == 0, out.decode(errors="replace")[-3000:] + "\n" + _logs(setup)
    location = (setup.run_dir / "pg" / "location").read_text().strip()
    assert location.startswith("/var/tmp/sfbridge-pg-")
    assert f"data kept in {setup.run_dir} and {location}".encode() in out
    setup.assert_all_stopped()


def test_make_demo_ctrl_c_exits_0_without_an_error_line(setup):
    # DEPS= BUILD=: no package check, no build; make runs scripts/demo.sh with $SFBRIDGE_BIN.
    make = shutil.which("make")
    if make is None:
        pytest.skip("make not installed")
    demo = setup.start(argv=(make, "demo", "DEPS=", "BUILD="))
    demo.wait_text(INSTRUCTIONS_END)
    demo.wait_redraws(2)
    demo.press(b"\x03")
    assert demo.wait_exit() == 0, demo.tail()
    assert "make:" not in demo.text() and "Error" not in demo.text(), demo.tail()
    setup.assert_all_stopped()
