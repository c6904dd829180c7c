"""The docs stay true: README.md and docs/sfbridge.md against the sfbridge binary.

- Every `sfbridge ...` command line of README.md and docs/sfbridge.md (in fenced code blocks, and
  inline code spans that start with `sfbridge `) runs against the Dream org (localforce serving
  examples/dream-org.json, what `make demo` serves), in document order, with a fresh database, and
  exits 0 (or the status the doc says).
- Every setting those docs name (DATABASE_URL, SF_*, SFBRIDGE_*) is one of sfbridge's (the table in
  src/sfbridge/core/config.c), and every setting of that table has a row, with its default, in
  docs/sfbridge.md's configuration table.
- The command list of docs/sfbridge.md and each command's --help name the same options, and every
  option the docs name exists (for the command they name it with, when they name one).

What the test needs to know is written in the docs themselves, visibly in the Markdown source:

  sfbridge init   # docs-test: skip (needs a real org)   in a code block: this line is not run
  sfbridge ...    # docs-test: exit 1                    in a code block: this line must exit 1
  <!-- docs-test: skip (REASON) -->    before a code block: none of its lines run; elsewhere:
                                       the next inline command does not run
  <!-- docs-test: exit N -->           likewise, for the expected exit status
  <!-- docs-test: fresh -->            the commands after it start again with a fresh database
                                       (a walk-through that starts from nothing)
  <!-- docs-test: synopsis -->         the next code block is the command list: not run, checked
                                       against each command's --help

The environment the commands run in (one per doc file, and again at each `fresh`): a new database,
`sfbridge init`, and Student__c mapped read-write (keyed by Student_Number__c), the object the
placeholder OBJECT stands for; the doc's own commands do the rest (map Teacher__c, load, ...). The
settings are the Dream org's, whatever `export` lines the doc shows (their names are checked against
config.c; their values are a real org's). The working directory holds export.json, a Heroku Connect
export of the Dream org (fixtures/dream-export.json), the file `heroku connect:export` would write.

`sfbridge run` (the daemon, which runs until stopped) is started as written, left to run until
`status` shows it alive (with its own pid) and every mapping that is not paused loaded and
DATA_SYNCED, then stopped with SIGINT (the Ctrl-C the docs mention), and must exit 0. That checks
what the docs claim of it (it starts, syncs what the earlier commands set up, stops cleanly on
Ctrl-C); replacing it by `run --once` would test another command. `status --watch N` is stopped the
same way after its first screen. Each command has TIMEOUT seconds. A failure names the doc file,
the line and the command as written, then the command as run with its output; every line of a
doc runs even after one failed, so one run lists every problem.
"""
import json
import re
import shlex
import shutil
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from lib.paths import FIXTURES, ROOT, localforce_bin, sfbridge_bin
from lib.sfbridge import describe_result
from lib.wait import wait_for

DREAM_ORG = ROOT / "examples" / "dream-org.json"
DREAM_EXPORT = FIXTURES / "dream-export.json"
CONFIG_C = ROOT / "src" / "sfbridge" / "core" / "config.c"
REFERENCE = "docs/sfbridge.md"
DOCS = ["README.md", REFERENCE]
TIMEOUT = 60  # seconds, for each command

# The placeholders the docs' commands may use, and what they stand for here. ID is the trigger
# log id of a FAILED write (one is made when there is none). "X ..." ("one or more") is X once.
PLACEHOLDERS = {
    "OBJECT": lambda env: "Student__c",
    "FILE": lambda env: "export.json",
    "ID": lambda env: env.failed_write_id(),
}

# The object of the prepared environment (see the module's docstring).
PREPARED = ["mapping", "add", "Student__c", "--access", "read_write", "--upsert-field", "Student_Number__c"]


# ---- reading the docs ---------------------------------------------------------------------------

@dataclass
class Command:
    doc: str
    line: int
    text: str                    # as written (continuation lines joined)
    argv: list = field(default_factory=list)   # after `sfbridge`, placeholders not yet substituted
    env: dict = field(default_factory=dict)    # NAME=value words before `sfbridge`
    expect: int = 0
    skip: str = None
    fresh: bool = False          # a fresh environment before this command

    def where(self):
        return f"{self.doc}:{self.line}: {self.text}"


@dataclass
class Doc:
    name: str
    text: str
    commands: list               # Command, in document order
    synopsis: list               # (line number, line) of the command list block
    spans: list                  # (line number, text) of every inline code span
    block_lines: list            # (line number, line) of every fenced block line (synopsis apart)


FENCE_RE = re.compile(r"^\s*(```+|~~~+)\s*([\w+-]*)\s*$")
DIRECTIVE_RE = re.compile(r"<!--\s*docs-test:\s*(.*?)\s*-->", re.S)
SPAN_RE = re.compile(r"(?<!`)`([^`]+)`(?!`)")
SHELL_LANGS = {"", "sh", "bash", "shell", "console"}


def parse_directive(text, where):
    """'skip (reason)' / 'exit N' / 'fresh' / 'synopsis' -> (kind, value)."""
    m = re.fullmatch(r"skip\s*(?:\((.+)\)|[:,]\s*(.+))", text.strip())
    if m:
        return "skip", (m.group(1) or m.group(2)).strip()
    m = re.fullmatch(r"exit\s+(\d+)", text.strip())
    if m:
        return "exit", int(m.group(1))
    m = re.fullmatch(r"(fresh|synopsis)\b.*", text.strip(), re.S)
    if m:
        return m.group(1), True
    raise AssertionError(f"{where}: unknown docs-test annotation '{text}' (known: skip (REASON), "
                         f"exit N, fresh, synopsis)")


def apply_directives(cmd, directives):
    for kind, value in directives:
        if kind == "skip":
            cmd.skip = value
        elif kind == "exit":
            cmd.expect = value
        elif kind == "fresh":
            cmd.fresh = True


def command_from(doc, line, text):
    """A Command when text is an sfbridge command line (`NAME=v ... sfbridge ARGS`), else None."""
    text = " ".join(text.split())
    if text.startswith("$ "):
        text = text[2:]
    m = re.search(r"#\s*docs-test:\s*(.*)$", text)
    directives = [parse_directive(m.group(1), f"{doc}:{line}")] if m else []
    try:
        words = shlex.split(text, comments=True)
    except ValueError as exc:
        raise AssertionError(f"{doc}:{line}: cannot split '{text}' as a shell line: {exc}") from None
    env = {}
    while words and re.fullmatch(r"[A-Z_][A-Z0-9_]*=.*", words[0]):
        k, v = words.pop(0).split("=", 1)
        env[k] = v
    if not words or not (words[0] == "sfbridge" or words[0].endswith("/sfbridge")):
        return None
    shown = text.split(" #")[0].strip() if " #" in text else text
    cmd = Command(doc, line, shown, words[1:], env)
    apply_directives(cmd, directives)
    return cmd


def read_doc(name, text=None):
    """The commands, command list, code spans and code lines of a Markdown file (or of text)."""
    if text is None:
        text = (ROOT / name).read_text()
    lines = text.split("\n")
    commands, synopsis, block_lines = [], [], []
    prose = []           # the lines outside fenced blocks ("" for those inside)
    events = []          # (line index, column, kind, payload), in document order
    i = 0
    while i < len(lines):
        m = FENCE_RE.match(lines[i])
        if not m:
            prose.append(lines[i])
            i += 1
            continue
        fence, lang = m.group(1), m.group(2)
        start = i
        body = []
        i += 1
        while i < len(lines) and not lines[i].strip().startswith(fence):
            body.append((i + 1, lines[i]))
            i += 1
        prose.extend([""] * (i - start + 1))
        i += 1
        events.append((start, 0, "block", (lang, body)))
    prose_text = "\n".join(prose)
    offsets = [0]
    for ln in prose:
        offsets.append(offsets[-1] + len(ln) + 1)

    def line_of(pos):
        lo, hi = 0, len(offsets) - 1
        while lo < hi - 1:
            mid = (lo + hi) // 2
            if offsets[mid] <= pos:
                lo = mid
            else:
                hi = mid
        return lo, pos - offsets[lo]

    for m in DIRECTIVE_RE.finditer(prose_text):
        ln, col = line_of(m.start())
        events.append((ln, col, "directive", parse_directive(m.group(1), f"{name}:{ln + 1}")))
    spans = []
    for m in SPAN_RE.finditer(prose_text):
        if "\n\n" in m.group(1):
            continue
        ln, col = line_of(m.start())
        spans.append((ln + 1, " ".join(m.group(1).split())))
        events.append((ln, col, "span", " ".join(m.group(1).split())))
    events.sort(key=lambda e: (e[0], e[1]))

    pending = []
    for ln, _col, kind, payload in events:
        if kind == "directive":
            pending.append(payload)
            continue
        if kind == "span":
            if not payload.startswith("sfbridge "):
                continue
            cmd = command_from(name, ln + 1, payload)
            if cmd is not None:
                apply_directives(cmd, pending)
                pending = []
                commands.append(cmd)
            continue
        lang, body = payload
        if any(k == "synopsis" for k, _ in pending):
            synopsis = body
            pending = []
            continue
        block_lines.extend(body)
        if lang not in SHELL_LANGS:
            _unused(name, ln, pending)
            continue
        joined = []  # continuation lines joined
        for bl, btext in body:
            if joined and joined[-1][1].endswith("\\"):
                joined[-1] = (joined[-1][0], joined[-1][1][:-1] + " " + btext.strip())
            else:
                joined.append((bl, btext))
        block_cmds = [c for c in (command_from(name, bl, bt) for bl, bt in joined) if c is not None]
        if not block_cmds:
            _unused(name, ln, pending)
        for c in block_cmds:
            apply_directives(c, pending)
            pending = [p for p in pending if p[0] != "fresh"]  # fresh: before the first only
        pending = []
        commands.extend(block_cmds)
    _unused(name, len(lines), pending)
    return Doc(name, text, commands, synopsis, spans, block_lines)


def _unused(name, ln, pending):
    """An annotation that no command follows is a mistake (a typo'd command, a moved block)."""
    if pending:
        raise AssertionError(f"{name}:{ln + 1}: the annotation(s) {pending} before this point apply "
                             f"to no sfbridge command")


# ---- sfbridge's settings, commands and options --------------------------------------------------

def config_settings():
    """{name: default or None} from config.c's table, and the names it reads with getenv()."""
    src = CONFIG_C.read_text()
    start = re.search(r"\bkeys\[\]\s*=\s*\{", src)
    assert start, f"no settings table (keys[] = {{...}}) in {CONFIG_C}"
    table = src[start.end():src.index("};", start.end())]
    # one entry per macro call: X("NAME", field, default, ...) with default NULL or "text"
    settings = {m.group(1): (None if m.group(2) == "NULL" else m.group(2).strip('"'))
                for m in re.finditer(r'\b[A-Z]\(\s*"([A-Z0-9_]+)"\s*,\s*\w+\s*,\s*(NULL|"[^"]*")', table)}
    assert len(settings) >= 10, f"could not read the settings table of {CONFIG_C}"
    getenv = set(re.findall(r'getenv\("([A-Z0-9_]+)"\)', src))
    return settings, getenv


SETTING_RE = re.compile(r"\b(?:DATABASE_URL|SF_[A-Z0-9_]+|SFBRIDGE_[A-Z0-9_]+)\b\*?")
OPTION_RE = re.compile(r"(?<![\w-])--(\[no-\])?([a-z][a-z0-9-]*)")


def options_in(text):
    """The long options text names; --[no-]x stands for --x and --no-x."""
    out = set()
    for m in OPTION_RE.finditer(text):
        out.add("--" + m.group(2))
        if m.group(1):
            out.add("--no-" + m.group(2))
    return out


def synopsis_entries(synopsis):
    """docs/sfbridge.md's command list -> (global options, {command words: (line, options)})."""
    globals_, entries, current = set(), {}, None
    for ln, text in synopsis:
        if not text.strip():
            continue
        if text.startswith("sfbridge"):
            globals_ |= options_in(text)
            current = None
            continue
        if not text[0].isspace():
            usage = re.split(r"\s{2,}", text.strip(), maxsplit=1)[0]
            words = []
            for w in usage.split():
                if not re.fullmatch(r"[a-z][a-z-]*", w) or len(words) == 2:
                    break
                words.append(w)
            current = tuple(words)
            entries[current] = (ln, options_in(text))
        elif current is not None:
            entries[current] = (entries[current][0], entries[current][1] | options_in(text))
    return globals_, entries


def help_text(*words):
    r = subprocess.run([str(sfbridge_bin()), *words, "--help"], capture_output=True, text=True,
                       timeout=30, stdin=subprocess.DEVNULL, env={"PATH": "/usr/bin:/bin"})
    assert r.returncode == 0, f"sfbridge {' '.join(words)} --help exited {r.returncode}\n{r.stderr}"
    return r.stdout


def listed_commands(help_out):
    """Command words a help lists under its "commands:"/"subcommands:" heading."""
    out, inside = set(), False
    for line in help_out.split("\n"):
        if re.fullmatch(r"\s*(sub)?commands\s*:\s*", line, re.I):
            inside = True
            continue
        if inside:
            if not line.strip():
                break
            m = re.match(r"\s+(?:sfbridge\s+)?(?:mapping\s+)?([a-z][a-z-]*)\b", line)
            if m and not line.strip().startswith("-"):
                out.add(m.group(1))
    return out


# ---- the environment the commands run in ----------------------------------------------------

class DocEnv:
    def __init__(self, doc, new_database, sfbridge_factory, localforce, workdir):
        self.doc = doc
        self.new_database = new_database
        self.sfbridge_factory = sfbridge_factory
        self.localforce = localforce
        self.workdir = workdir
        self.generation = 0
        self.bad_rows = 0
        self.fresh()

    def fresh(self):
        self.generation += 1
        self.database = self.new_database()
        self.sfb = self.sfbridge_factory(self.database.url, self.localforce,
                                         name=f"docs-{Path(self.doc).stem}-{self.generation}")
        self.sfb.workdir = self.workdir
        for args in (["init"], PREPARED):
            r = self.sfb.run(*args, check=False, timeout=TIMEOUT)
            assert r.returncode == 0, (f"preparing the environment for {self.doc}: "
                                       f"sfbridge {' '.join(args)} failed\n{describe_result(r)}")

    def failed_write_id(self):
        """The trigger log id of a FAILED write; makes one (a Student__c row without its required
        Last_Name__c, pushed) when there is none."""
        sql = ("SELECT id FROM salesforce._trigger_log WHERE state = 'FAILED' UNION ALL "
               "SELECT id FROM salesforce._trigger_log_archive WHERE state = 'FAILED' ORDER BY 1 DESC LIMIT 1")
        found = self.database.scalar(sql)
        if found is None:
            self.bad_rows += 1
            self.database.execute(
                "INSERT INTO salesforce.student__c (first_name__c, student_number__c) VALUES (%s, %s)",
                ("Docs", f"DOCS-{self.generation}-{self.bad_rows}"))
            self.sfb.run("push", check=False, timeout=TIMEOUT)
            found = self.database.scalar(sql)
            assert found is not None, ("could not make a FAILED write for the placeholder ID\n"
                                       + self.sfb.recent_output(2))
        return str(found)

    # -- one command ---------------------------------------------------------------------------
    def argv_of(self, cmd):
        """The command's words with placeholders substituted; AssertionError on one with none."""
        out, i = [], 0
        words = cmd.argv
        while i < len(words):
            w = words[i]
            if w in PLACEHOLDERS:
                out.append(PLACEHOLDERS[w](self))
                if i + 1 < len(words) and words[i + 1] == "...":
                    i += 1
            elif re.fullmatch(r"[A-Z][A-Z0-9_]*", w) or "..." in w or re.search(r"[\[\]<>|]", w):
                raise AssertionError(f"'{w}' is a placeholder (or synopsis) the test "
                                     f"cannot fill: add it to PLACEHOLDERS in {Path(__file__).name}, "
                                     f"write a runnable command, or annotate the line "
                                     f"('# docs-test: skip (why)')")
            else:
                out.append(w)
            i += 1
        return out

    def run(self, cmd):
        """Run one doc command; None when it did what the doc says, else why not."""
        if cmd.fresh:
            self.fresh()
        argv = self.argv_of(cmd)
        if _is_daemon(argv):
            return self._run_until_synced(cmd, argv)
        if "status" in argv and "--watch" in argv:
            return self._run_one_screen(cmd, argv)
        r = self.sfb.run(*argv, check=False, timeout=TIMEOUT, env=cmd.env)
        # `status` exits with its health verdict (0 healthy, 1 degraded, 2 down: docs/sfbridge.md),
        # which depends on whether a daemon runs at that point of the document; it must still work.
        if _is_status(argv) and cmd.expect == 0 and r.returncode in (1, 2) and r.stdout.strip():
            return None
        if r.returncode != cmd.expect:
            return f"exit status {r.returncode}, expected {cmd.expect}\n{describe_result(r)}"
        return None

    def _popen(self, cmd, argv, out):
        return subprocess.Popen([str(self.sfb.binary), *argv], env=self.sfb.env(cmd.env),
                                cwd=self.workdir, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)

    def _stop(self, proc, log):
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            return f"did not stop within 30 s of SIGINT (Ctrl-C)\n{_tail(log)}"
        if proc.returncode != 0:
            return f"exited {proc.returncode} on SIGINT (Ctrl-C), expected 0\n{_tail(log)}"
        return None

    def _run_until_synced(self, cmd, argv):
        log = self.workdir / f"run-{cmd.line}.log"
        with open(log, "wb") as out:
            proc = self._popen(cmd, argv, out)
        problem = []

        def synced():
            if proc.poll() is not None:
                return True
            r = self.sfb.run(*_global_args(argv), "status", "--json", check=False, timeout=TIMEOUT,
                             env=cmd.env)
            if r.returncode not in (0, 1, 2) or not r.stdout.strip():
                return False
            st = json.loads(r.stdout)
            maps = st.get("mappings") or []
            stuck = [m for m in maps if m.get("state") in ("BAD_CONFIG", "NEED_AUTHENTICATION")]
            if stuck:
                problem.append(f"mappings stopped: {json.dumps(stuck)[:2000]}")
                return True
            conn = st.get("connection") or {}
            return (conn.get("daemon_alive") and conn.get("daemon_pid") == proc.pid
                    and all(m.get("paused") or (m.get("loaded") and m.get("state") == "DATA_SYNCED")
                            for m in maps))

        why = None
        try:
            wait_for(synced, timeout=TIMEOUT, interval=0.2, context=lambda: _tail(log),
                     what="the daemon to show in status (its pid) with every mapping loaded and DATA_SYNCED")
            if proc.poll() is not None:
                why = f"the daemon exited ({proc.returncode}) by itself\n{_tail(log)}"
            elif problem:
                why = problem[0] + "\n" + _tail(log)
        except AssertionError as exc:
            why = str(exc)
        stopped = self._stop(proc, log) if proc.poll() is None else None
        return why or stopped

    def _run_one_screen(self, cmd, argv):
        log = self.workdir / f"watch-{cmd.line}.log"
        with open(log, "wb") as out:
            proc = self._popen(cmd, argv, out)
        try:
            wait_for(lambda: proc.poll() is not None or "connection" in log.read_text(errors="replace"),
                     timeout=TIMEOUT, what="the first screen of status --watch", context=lambda: _tail(log))
        except AssertionError as exc:
            proc.kill()
            proc.wait()
            return str(exc)
        if proc.poll() is not None:
            return f"exited {proc.returncode} before it was stopped\n{_tail(log)}"
        return self._stop(proc, log)


GLOBAL_OPTIONS = ("--config", "--schema", "--log-level")


def _global_args(argv):
    """The global options of a command line (before or after the command), with their values."""
    out = []
    for i, w in enumerate(argv[:-1]):
        if w in GLOBAL_OPTIONS:
            out += [w, argv[i + 1]]
    return out


def _is_status(argv):
    """`status`: the command word is the first word that is not a global option."""
    i = 0
    while i < len(argv) and argv[i].startswith("-"):
        i += 2 if argv[i] in GLOBAL_OPTIONS else 1
    return i < len(argv) and argv[i] == "status"


def _is_daemon(argv):
    """`run` without --once: the command word is the first word that is not a global option."""
    i = 0
    while i < len(argv) and argv[i].startswith("-"):
        i += 2 if argv[i] in GLOBAL_OPTIONS else 1
    return i < len(argv) and argv[i] == "run" and "--once" not in argv


def _tail(path, n=60):
    try:
        lines = Path(path).read_text(errors="replace").splitlines()[-n:]
    except OSError:
        return "(no output)"
    return "--- output (tail) ---\n" + "\n".join(lines)


# ---- the tests ----------------------------------------------------------------------------------

@pytest.mark.parametrize("doc", DOCS)
def test_doc_commands_run_against_the_dream_org(doc, new_database, sfbridge_factory, localforce_factory,
                                                tmp_path):
    parsed = read_doc(doc)
    assert parsed.commands, f"{doc}: no sfbridge command found (is the parser broken?)"
    workdir = tmp_path / "cwd"
    workdir.mkdir()
    shutil.copy(DREAM_EXPORT, workdir / "export.json")
    lf = localforce_factory(org=DREAM_ORG)
    env = DocEnv(doc, new_database, sfbridge_factory, lf, workdir)
    failures, ran, skipped = [], 0, []
    for cmd in parsed.commands:
        if cmd.skip:
            skipped.append(cmd)
            if cmd.fresh:
                env.fresh()
            continue
        try:
            why = env.run(cmd)
        except AssertionError as exc:
            why = str(exc)
        ran += 1
        if why:
            failures.append(f"{cmd.where()}\n  {why}")
    for cmd in skipped:
        print(f"not run: {cmd.where()} ({cmd.skip})")
    assert not failures, (f"{len(failures)} of {ran} command lines of {doc} do not do what the doc says:\n\n"
                          + "\n\n".join(failures))


def test_settings_named_in_the_docs_exist():
    """sfbridge's settings (and make demo's, in the README) that the docs name exist."""
    settings, getenv = config_settings()
    known = set(settings) | getenv
    bad = []
    for doc in DOCS:
        for n, line in enumerate((ROOT / doc).read_text().split("\n"), 1):
            for m in SETTING_RE.finditer(line):
                name = m.group(0)
                if name.endswith("_*"):  # SF_CLIENT_*: a family of settings
                    prefix = name.rstrip("*")
                    if not any(k.startswith(prefix) for k in known):
                        bad.append(f"{doc}:{n}: {name} matches no setting")
                elif name not in known:
                    bad.append(f"{doc}:{n}: {name} is not a setting of sfbridge (src/sfbridge/core/config.c)")
    demo = (ROOT / "scripts" / "demo.sh").read_text()
    for n, line in enumerate((ROOT / "README.md").read_text().split("\n"), 1):
        for name in re.findall(r"\b(DEMO_[A-Z0-9_]+|LOCALFORCE_PORT)\b", line):
            if not re.search(rf"\b{name}\b", demo):
                bad.append(f"README.md:{n}: {name} is not a setting of make demo (scripts/demo.sh)")
    assert not bad, "\n".join(bad)


def test_every_setting_is_documented_with_its_default():
    settings, getenv = config_settings()
    rows = {}
    for n, line in enumerate((ROOT / REFERENCE).read_text().split("\n"), 1):
        cells = [c.strip() for c in line.strip().strip("|").split("|")] if line.startswith("| `") else []
        if len(cells) >= 3:
            for name in re.findall(r"`([A-Z][A-Z0-9_]+)`", cells[0]):
                rows[name] = (n, cells[-1])
    bad = []
    for name, default in settings.items():
        if name not in rows:
            bad.append(f"{name} (default {default!r}) has no row in {REFERENCE}'s configuration table")
            continue
        n, doc_default = rows[name]
        shown = re.findall(r"`([^`]*)`", doc_default)
        if default is None:
            if shown:
                bad.append(f"{REFERENCE}:{n}: {name} has no default in config.c, the doc says {doc_default}")
        elif shown[:1] != [default]:
            bad.append(f"{REFERENCE}:{n}: {name}'s default is `{default}` in config.c, the doc says "
                       f"'{doc_default}'")
    for name in getenv:
        if name not in (ROOT / REFERENCE).read_text():
            bad.append(f"{name} (read by config.c) is not mentioned in {REFERENCE}")
    assert not bad, "\n".join(bad)


def _reference_synopsis():
    doc = read_doc(REFERENCE)
    assert doc.synopsis, f"{REFERENCE} has no command list marked <!-- docs-test: synopsis -->"
    return doc, synopsis_entries(doc.synopsis)


def test_command_list_matches_each_commands_help():
    doc, (globals_, entries) = _reference_synopsis()
    bad = []
    top = help_text()
    for opt in sorted(globals_ - options_in(top)):
        bad.append(f"{REFERENCE}: global option {opt} is not in sfbridge --help")
    all_doc = set(globals_).union(*(o for _, o in entries.values()))
    for opt in sorted(options_in(top) - all_doc - {"--help"}):
        bad.append(f"sfbridge --help names {opt}, which {REFERENCE}'s command list does not")
    tops = {w[0] for w in entries}
    listed = listed_commands(top)
    for c in sorted(listed - tops):
        bad.append(f"sfbridge --help lists the command '{c}', which {REFERENCE}'s command list does not")
    for c in sorted(tops - listed):
        bad.append(f"{REFERENCE}'s command list has '{c}', which sfbridge --help does not list")
    subs = {w[1] for w in entries if len(w) == 2 and w[0] == "mapping"}
    listed_subs = listed_commands(help_text("mapping"))
    for c in sorted(listed_subs ^ subs):
        bad.append(f"mapping {c}: in {'sfbridge mapping --help' if c in listed_subs else REFERENCE} only")
    for words, (ln, doc_opts) in entries.items():
        if words == ("mapping",):
            continue
        helped = options_in(help_text(*words)) - {"--help"}
        for opt in sorted(doc_opts - helped - {"--help"}):
            bad.append(f"{REFERENCE}:{ln}: {' '.join(words)} {opt} is not in `sfbridge {' '.join(words)} --help`")
        for opt in sorted(helped - doc_opts - globals_):
            bad.append(f"`sfbridge {' '.join(words)} --help` names {opt}, which {REFERENCE}:{ln} does not")
    assert not bad, "\n".join(bad)


def test_options_named_in_the_docs_exist():
    """Every --option in the docs belongs to the command it is shown with (`mapping edit OBJECT
    --accelerated`), or, shown alone (`--poll 600`), to some command; README's localforce lines
    may name localforce's options."""
    _, (globals_, entries) = _reference_synopsis()
    by_cmd = {words: options_in(help_text(*words)) | globals_ for words in entries if words != ("mapping",)}
    any_opt = set(globals_).union(*by_cmd.values()) | {"--help"}
    lf = subprocess.run([str(localforce_bin()), "--help"], capture_output=True, text=True, timeout=30)
    lf_opts = options_in(lf.stdout + lf.stderr) | {"--help"}
    bad = []
    for name in DOCS:
        doc = read_doc(name)
        pieces = list(doc.spans) + list(doc.block_lines)
        for ln, text in pieces:
            opts = options_in(text)
            if not opts:
                continue
            words = text.split()
            if words and words[0] in ("sfbridge",) or (words and words[0].endswith("/sfbridge")):
                words = words[1:]
            while words and words[0] in GLOBAL_OPTIONS:
                words = words[2:]
            cmd = None
            if len(words) >= 2 and (words[0], words[1]) in by_cmd:
                cmd = (words[0], words[1])
            elif words and (words[0],) in by_cmd:
                cmd = (words[0],)
            for opt in sorted(opts):
                if cmd is not None and opt not in by_cmd[cmd] | {"--help"}:
                    bad.append(f"{name}:{ln}: {opt} is not an option of `sfbridge {' '.join(cmd)}`: {text}")
                elif cmd is None and opt not in any_opt | (lf_opts if name == "README.md" else set()):
                    bad.append(f"{name}:{ln}: {opt} is no option of sfbridge: {text}")
    assert not bad, "\n".join(bad)


ANNOTATED = """\
Run `sfbridge init` first; `sfbridge mapping
add OBJECT` maps it. <!-- docs-test: skip (needs a real org) --> Then `sfbridge load`.

<!-- docs-test: exit 2 -->
```sh
export SF_USERNAME=x
SFBRIDGE_SCHEMA=org sfbridge status \\
  --watch   # needs a value
```

<!-- docs-test: fresh -->
```sh
sfbridge init          # docs-test: skip (needs a real org)
$ sfbridge run --once  # docs-test: exit 1
```

<!-- docs-test: synopsis -->
```
sfbridge [--config FILE] COMMAND
status [--json]   shows it
```
"""


def test_annotations_are_read():
    doc = read_doc("annotated.md", ANNOTATED)
    got = [(c.line, c.argv, c.env, c.expect, c.skip, c.fresh) for c in doc.commands]
    assert got == [
        (1, ["init"], {}, 0, None, False),
        (1, ["mapping", "add", "OBJECT"], {}, 0, None, False),
        (2, ["load"], {}, 0, "needs a real org", False),
        (7, ["status", "--watch"], {"SFBRIDGE_SCHEMA": "org"}, 2, None, False),
        (13, ["init"], {}, 0, "needs a real org", True),
        (14, ["run", "--once"], {}, 1, None, False),
    ], got
    assert synopsis_entries(doc.synopsis) == ({"--config"}, {("status",): (20, {"--json"})})
    with pytest.raises(AssertionError, match="unknown docs-test annotation"):
        read_doc("bad.md", "<!-- docs-test: maybe -->\n`sfbridge init`\n")
