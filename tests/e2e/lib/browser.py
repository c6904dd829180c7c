"""A real headless browser for the dashboard tests: Debian's chromium, driven by
tests/browser/driver.mjs (playwright-core) over JSON lines on its stdin/stdout.

    with Browser(log_path) as b:
        b.goto(url)
        b.click("#add-mapping")
        b.wait_text("Read-write mappings require ...")
        b.screenshot(path)

Every call waits for its answer (with the driver's own timeout, in seconds here,
plus a margin) and raises BrowserError with the driver's message on failure.
Waits in the page are the driver's (playwright's auto-waiting), never sleeps.
"""
import itertools
import json
import os
import shutil
import subprocess
import threading
from pathlib import Path

from .paths import ROOT

BROWSER_DIR = ROOT / "tests" / "browser"
DRIVER = BROWSER_DIR / "driver.mjs"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")


class BrowserError(AssertionError):
    pass


def missing():
    """Why the browser cannot run here (None when it can)."""
    if not shutil.which("node"):
        return "node is not installed"
    if not Path(CHROMIUM).exists():
        return f"{CHROMIUM} is not installed (apt-get install chromium)"
    if not (BROWSER_DIR / "node_modules" / "playwright-core").is_dir():
        return "tests/browser/node_modules is missing (cd tests/browser && npm ci)"
    return None


class Browser:
    def __init__(self, log_path=None, timeout=10.0):
        self.timeout = timeout
        self.log_path = Path(log_path) if log_path else None
        self._ids = itertools.count(1)
        self._lines = []
        self._cond = threading.Condition()
        self._closed = False
        err = open(self.log_path, "wb") if self.log_path else subprocess.DEVNULL
        self.proc = subprocess.Popen(["node", str(DRIVER)], cwd=BROWSER_DIR, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=err, env={**os.environ, "CHROMIUM": CHROMIUM})
        if err is not subprocess.DEVNULL:
            err.close()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self._wait_answer(0, 60)  # the ready line

    def _read(self):
        for raw in self.proc.stdout:
            try:
                msg = json.loads(raw)
            except ValueError:
                continue
            with self._cond:
                self._lines.append(msg)
                self._cond.notify_all()
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def _wait_answer(self, rid, timeout):
        with self._cond:
            ok = self._cond.wait_for(lambda: self._closed or any(m.get("id") == rid for m in self._lines), timeout)
            for i, m in enumerate(self._lines):
                if m.get("id") == rid:
                    del self._lines[i]
                    return m
        if not ok:
            raise BrowserError(f"the browser driver did not answer within {timeout:g} s{self._log_tail()}")
        raise BrowserError(f"the browser driver exited ({self.proc.poll()}){self._log_tail()}")

    def _log_tail(self):
        if not self.log_path or not self.log_path.exists():
            return ""
        return "\n--- driver stderr ---\n" + self.log_path.read_text(errors="replace")[-3000:]

    def call(self, cmd, **args):
        """Send one command; its value, or BrowserError."""
        rid = next(self._ids)
        if "timeout" in args:
            wait = args["timeout"] + 15
            args["timeout"] = int(args["timeout"] * 1000)
        else:
            wait = self.timeout + 15
        line = json.dumps({"id": rid, "cmd": cmd, "args": args}) + "\n"
        try:
            self.proc.stdin.write(line.encode())
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            raise BrowserError(f"the browser driver is gone{self._log_tail()}") from None
        answer = self._wait_answer(rid, wait)
        if not answer.get("ok"):
            raise BrowserError(f"{cmd} {json.dumps(args)[:300]} failed: {answer.get('error')}")
        return answer.get("value")

    # -- the page --------------------------------------------------------------
    def new_context(self, width=1280, height=860, username=None, password=None, mobile=False, scale=1):
        a = {"viewport": {"width": width, "height": height}, "is_mobile": mobile, "scale": scale}
        if username is not None or password is not None:
            a.update(username=username or "", password=password or "")
        return self.call("new_context", **a)

    def goto(self, url, timeout=None):
        return self.call("goto", url=url, **_t(timeout))

    def url(self):
        return self.call("url")

    def set_viewport(self, width, height):
        return self.call("set_viewport", width=width, height=height)

    def click(self, selector, has_text=None, timeout=None):
        return self.call("click", selector=selector, **_ht(has_text), **_t(timeout))

    def fill(self, selector, value, timeout=None):
        return self.call("fill", selector=selector, value=value, **_t(timeout))

    def press(self, key, selector=None, timeout=None):
        args = {"key": key, **_t(timeout)}
        if selector:
            args["selector"] = selector
        return self.call("press", **args)

    def check(self, selector, value=True, timeout=None):
        return self.call("check", selector=selector, value=value, **_t(timeout))

    def select(self, selector, value, timeout=None):
        return self.call("select", selector=selector, value=value, **_t(timeout))

    def upload(self, selector, path, timeout=None):
        return self.call("upload", selector=selector, path=str(path), **_t(timeout))

    def download(self, selector, path, timeout=None):
        """Click selector; save what it downloads to path; the suggested file name."""
        return self.call("download", selector=selector, path=str(path), **_t(timeout))

    def text(self, selector, has_text=None, timeout=None):
        return self.call("text", selector=selector, **_ht(has_text), **_t(timeout))

    def texts(self, selector):
        return self.call("texts", selector=selector)

    def value(self, selector, timeout=None):
        return self.call("value", selector=selector, **_t(timeout))

    def attr(self, selector, name, timeout=None):
        return self.call("attr", selector=selector, name=name, **_t(timeout))

    def count(self, selector):
        return self.call("count", selector=selector)

    def visible(self, selector, has_text=None):
        return self.call("visible", selector=selector, **_ht(has_text))

    def checked(self, selector, timeout=None):
        return self.call("checked", selector=selector, **_t(timeout))

    def wait(self, selector, has_text=None, state="visible", timeout=None):
        """Wait until selector (containing has_text, when given) is in `state`."""
        return self.call("wait_for", selector=selector, state=state, **_ht(has_text), **_t(timeout))

    def wait_text(self, text, exact=False, state="visible", timeout=None):
        """Wait until text shows anywhere in the page."""
        return self.call("wait_for", text=text, exact=exact, state=state, **_t(timeout))

    def wait_url(self, contains, timeout=None):
        return self.call("wait_url", contains=contains, **_t(timeout))

    def eval(self, fn, arg=None):
        """Run a JavaScript function's source, e.g. "(a) => document.title", in the page."""
        return self.call("eval", fn=fn, arg=arg)

    def focused(self):
        return self.call("focused")

    def screenshot(self, path, full_page=True):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        return self.call("screenshot", path=str(path), full_page=full_page)

    def axe(self):
        """axe-core's violations on the current page."""
        return self.call("axe", timeout=60)

    def console(self):
        """The page's console errors and warnings since the last call."""
        return self.call("console")

    def close(self):
        if self.proc.poll() is None:
            try:
                self.call("close", timeout=20)
            except BrowserError:
                pass
            try:
                self.proc.stdin.close()
            except OSError:
                pass
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _t(timeout):
    return {} if timeout is None else {"timeout": timeout}


def _ht(has_text):
    return {} if has_text is None else {"has_text": has_text}
