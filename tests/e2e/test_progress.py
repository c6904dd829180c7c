"""The progress bar of `sfbridge load` (issue 17): on a terminal it is redrawn in place below the
log lines and its last frame ends its line; piped, it is a line every 2 s plus the first and the
last; no frame says "0 rows/s"."""
import os
import pty
import re
import select
import subprocess
import time

import pytest

STAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z ")
FINAL = re.compile(r"^(\S+)\s+\[#{30}\] (\d+)/(\d+) rows in \d+\.\d s")


def screen(raw):
    """The lines a terminal shows for raw output: \\r, \\n and ESC[K (erase to end of line)."""
    lines, col = [""], 0
    i = 0
    while i < len(raw):
        ch = raw[i]
        if raw.startswith("\x1b[K", i):
            lines[-1] = lines[-1][:col]
            i += 3
            continue
        if ch == "\r":
            col = 0
        elif ch == "\n":
            lines.append("")
            col = 0
        else:
            cur = lines[-1]
            lines[-1] = cur[:col] + ch + cur[col + 1:]
            col += 1
        i += 1
    return [line for line in lines if line]


def run_on_pty(sfbridge, *args, timeout=120):
    """Run sfbridge with stderr (and stdout) on a pseudo-terminal; (exit status, what it wrote)."""
    master, slave = pty.openpty()
    p = subprocess.Popen([str(sfbridge.binary), *args], env=sfbridge.env(), cwd=sfbridge.workdir,
                         stdin=subprocess.DEVNULL, stdout=slave, stderr=slave)
    os.close(slave)
    out = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.5)
        if ready:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            out += chunk
        elif p.poll() is not None:
            break
    os.close(master)
    rc = p.wait(timeout=10)
    return rc, out.decode("utf-8", "replace")


@pytest.fixture
def mapped(sfbridge):
    sfbridge.init()
    sfbridge.add("Account", "--fields", "Name")
    sfbridge.add("Teacher__c", "--fields", "Name,Email__c")
    return sfbridge


def _finals(lines):
    return {m.group(1): (int(m.group(2)), int(m.group(3))) for m in map(FINAL.match, lines) if m}


def test_on_a_terminal_the_bar_stays_below_the_log_lines(mapped, database):
    rc, raw = run_on_pty(mapped, "load")
    assert rc == 0, raw
    lines = screen(raw)
    finals = _finals(lines)
    n = database.count("teacher__c")
    assert finals.get("Teacher__c") == (n, n), "\n".join(lines)
    assert "Account" in finals, "\n".join(lines)
    for line in lines:
        # a log line starts its own line: never glued to a frame
        assert not (re.search(r"\] \d+/\d+ rows", line) and re.search(r"\d{4}-\d\d-\d\dT\d\d:", line)), lines
        assert "0 rows/s" not in line or re.search(r"[1-9]0 rows/s", line), line
    assert raw.count("\x1b[K") >= 2, "frames are drawn in place"


def test_piped_every_object_gets_its_last_line(mapped, database):
    r = mapped.run("load")
    lines = [line for line in r.stderr.splitlines() if line]
    assert "\r" not in r.stderr and "\x1b" not in r.stderr, "no terminal codes in a pipe"
    n = database.count("teacher__c")
    assert _finals(lines).get("Teacher__c") == (n, n), r.stderr
    assert not any(re.search(r"\b0 rows/s", line) for line in lines), r.stderr


def test_piped_a_reload_ends_with_its_last_line(mapped, database):
    mapped.run("load")
    mapped.run("reload", "Teacher__c")
    r = mapped.run("load")
    lines = [line for line in r.stderr.splitlines() if line and not STAMP.match(line)]
    n = database.count("teacher__c")
    assert _finals(lines).get("Teacher__c") == (n, n), r.stderr
    assert lines[-1].startswith("Teacher__c"), r.stderr
