"""sfbridge as a service: make install, the Debian package, the systemd unit, the man pages,
the example configuration and the Docker image (packaging/, docs/operations.md).

The package test builds the .deb from the tree (`make deb`, reusing the programs already built
in $SFBRIDGE_PKG_BUILD, default build/: a plain build, not the sanitizer one), installs it on this
machine with dpkg, runs the installed daemon as the unit says (ExecStart, as User=, with a
NOTIFY_SOCKET of its own) against the test's Postgres and localforce, and purges it, leaving the
machine as it was. It needs root and dpkg, and a machine with no sfbridge installed; otherwise
it is skipped, saying why. systemd is not PID 1 on the development machines, so the unit is
checked with `systemd-analyze verify` and `security --offline`, and its command line is run by
the test; Docker has no daemon there, so the Dockerfile is checked against `ldd` and dpkg.
"""
import grp
import json
import os
import pwd
import re
import shlex
import shutil
import signal
import socket
import stat
import subprocess
from pathlib import Path

import pytest

from lib.paths import ROOT, localforce_bin, sfbridge_bin
from lib.sfbridge import SFBRIDGE_API_VERSION, find_mapping_entry
from lib.wait import WaitAbort, wait_for

PACKAGING = ROOT / "packaging"
UNIT_SRC = PACKAGING / "sfbridge.service"
EXAMPLE_CONF = PACKAGING / "sfbridge.conf.example"
MAN_PAGES = {"sfbridge": ROOT / "docs/man/sfbridge.1", "localforce": ROOT / "docs/man/localforce.1"}
PKG_BUILD = (ROOT / os.environ.get("SFBRIDGE_PKG_BUILD", "build")).resolve()
RUNTIME_LIBS = ["libcurl4", "libjansson4", "libmicrohttpd12", "libpq5", "libsqlite3-0", "libssl3", "libxml2"]

# What the package puts on the machine, and what must be gone after a purge.
INSTALLED_PATHS = [
    "/usr/bin/sfbridge", "/usr/bin/localforce", "/lib/systemd/system/sfbridge.service",
    "/etc/sfbridge", "/etc/systemd/system/multi-user.target.wants/sfbridge.service",
    "/var/lib/systemd/deb-systemd-helper-enabled/sfbridge.service.dsh-also",
    "/usr/share/doc/sfbridge", "/usr/share/man/man1/sfbridge.1.gz",
]
CONF = Path("/etc/sfbridge/sfbridge.conf")


def sh(*cmd, check=True, timeout=600, **kw):
    r = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, errors="replace",
                       timeout=timeout, **kw)
    if check and r.returncode != 0:
        raise AssertionError(f"{' '.join(map(str, cmd))} exited {r.returncode}\n"
                             f"--- stdout ---\n{r.stdout[-4000:]}\n--- stderr ---\n{r.stderr[-4000:]}")
    return r


def source_version():
    for h in sorted((ROOT / "src/sfbridge").rglob("*.h")) + sorted((ROOT / "src/sfbridge").rglob("*.c")):
        m = re.search(r'^#define SFBRIDGE_VERSION "([^"]+)"', h.read_text(errors="replace"), re.M)
        if m:
            return m.group(1)
    raise AssertionError("no #define SFBRIDGE_VERSION under src/sfbridge")


def unit_settings(text):
    """A unit file as {key: [values]} (sections merged: the keys here do not repeat across them)."""
    out = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";", "[")):
            continue
        k, _, v = line.partition("=")
        out.setdefault(k.strip(), []).append(v.strip())
    return out


def doc_settings():
    """The setting names of docs/sfbridge.md's Configuration table, and of the settings table in
    src/sfbridge/core/config.c (so that a setting not yet in the docs is not missed here)."""
    text = (ROOT / "docs/sfbridge.md").read_text()
    section = text.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    names = []
    for row in re.findall(r"^\| (`[A-Z_]+`(?:, `[A-Z_]+`)*) \|", section, re.M):
        names += re.findall(r"`([A-Z_]+)`", row)
    assert len(names) >= 20, f"docs/sfbridge.md's Configuration table not found: {names}"
    code = re.findall(r'^\s+[A-Z]\("([A-Z][A-Z0-9_]+)",', (ROOT / "src/sfbridge/core/config.c").read_text(), re.M)
    assert len(code) >= 20, f"the settings table of src/sfbridge/core/config.c not found: {code}"
    return list(dict.fromkeys(names + code))


def roff_text(path):
    """A man page's source with its escapes undone enough to search it for words and options."""
    t = Path(path).read_text()
    t = re.sub(r"\\f[BIRP]|\\f\[[A-Z]*\]|\\%|\\&|\\c", "", t)
    return t.replace("\\-", "-").replace("\\e", "\\")


# --- the package -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def deb_file():
    """make deb in $SFBRIDGE_PKG_BUILD: builds the two programs there (a no-op when they are
    up to date) and packs them."""
    if not shutil.which("dpkg-deb"):
        pytest.skip("dpkg-deb is missing (Debian's dpkg): no package to build")
    r = sh("make", "deb", f"BUILD={PKG_BUILD}", cwd=ROOT, timeout=900)
    path = Path(r.stdout.strip().splitlines()[-1])
    assert path.is_file() and path.parent == PKG_BUILD, r.stdout
    return path


def test_deb_names_version_dependencies_and_files(deb_file, tmp_path):
    version = source_version()
    arch = sh("dpkg", "--print-architecture").stdout.strip()
    assert deb_file.name == f"sfbridge_{version}_{arch}.deb"
    fields = {k: sh("dpkg-deb", "-f", deb_file, k).stdout.strip()
              for k in ("Package", "Version", "Architecture", "Depends")}
    assert (fields["Package"], fields["Version"], fields["Architecture"]) == ("sfbridge", version, arch)
    depends = {d.strip().split()[0] for d in fields["Depends"].split(",")}
    missing = set(RUNTIME_LIBS + ["libc6", "adduser"]) - depends
    assert not missing, f"Depends lacks {missing}: {fields['Depends']}"
    files = {line.split()[-1].lstrip(".") for line in sh("dpkg-deb", "-c", deb_file).stdout.splitlines()}
    for f in ("/usr/bin/sfbridge", "/usr/bin/localforce", "/lib/systemd/system/sfbridge.service",
              "/usr/share/man/man1/sfbridge.1.gz", "/usr/share/man/man1/localforce.1.gz",
              "/usr/share/doc/sfbridge/sfbridge.conf.example", "/usr/share/doc/sfbridge/operations.md",
              "/usr/share/sfbridge/sfbridge.conf.example"):
        assert f in files, f"{f} is not in the package"
    assert not any(f.startswith("/etc/") for f in files), "the package ships no file under /etc"
    sh("dpkg-deb", "-x", deb_file, tmp_path)
    assert (tmp_path / "lib/systemd/system/sfbridge.service").read_text() == UNIT_SRC.read_text()
    assert (tmp_path / "usr/share/sfbridge/sfbridge.conf.example").read_text() == EXAMPLE_CONF.read_text()


def dpkg(*args):
    """dpkg ARGS, waiting out a lock another apt or dpkg holds (never breaking it)."""
    last = {}

    def attempt():
        r = sh("dpkg", *args, check=False, timeout=300, env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
        last["r"] = r
        if r.returncode == 0:
            return r
        if "lock" not in r.stderr:
            raise WaitAbort(f"dpkg {' '.join(map(str, args))} exited {r.returncode}\n{r.stdout}\n{r.stderr}")
        return None

    return wait_for(attempt, timeout=300, what=f"dpkg {' '.join(map(str, args))} (dpkg is locked)",
                    interval=1, max_interval=5, context=lambda: last.get("r") and last["r"].stderr)


def traces_of_sfbridge():
    """What of an sfbridge installation is on this machine (empty when there is none)."""
    found = [p for p in INSTALLED_PATHS if os.path.lexists(p)]
    st = sh("dpkg-query", "-W", "-f=${db:Status-Status}", "sfbridge", check=False).stdout.strip()
    if st and st != "not-installed":
        found.append(f"package sfbridge ({st})")
    for what, lookup in (("user", pwd.getpwnam), ("group", grp.getgrnam)):
        try:
            lookup("sfbridge")
            found.append(f"{what} sfbridge")
        except KeyError:
            pass
    return found


@pytest.fixture(scope="module")
def installed(deb_file):
    """The package installed with dpkg -i, purged at the end; the machine as it was before."""
    if os.geteuid() != 0:
        pytest.skip("installing the .deb needs root (dpkg -i); run the suite as root")
    if not shutil.which("dpkg"):
        pytest.skip("dpkg is missing: not a Debian machine")
    before = traces_of_sfbridge()
    if before:
        pytest.skip("sfbridge is already (partly) installed here, and this test installs and purges "
                    f"its own: {', '.join(before)}. Remove it (dpkg --purge sfbridge) to run the test")
    try:
        dpkg("-i", deb_file)
        yield deb_file
    finally:
        dpkg("--purge", "sfbridge")
        left = traces_of_sfbridge()
        assert not left, f"dpkg --purge sfbridge left {left}"


def test_installed_package(installed):
    version = source_version()
    assert sh("/usr/bin/sfbridge", "--version").stdout.strip() == f"sfbridge {version}"
    assert sh("/usr/bin/localforce", "version").stdout.startswith("localforce ")
    user, group = pwd.getpwnam("sfbridge"), grp.getgrnam("sfbridge")
    assert user.pw_uid < 1000 and user.pw_gid == group.gr_gid, "a system user in its own group"
    assert user.pw_shell in ("/usr/sbin/nologin", "/bin/false") and user.pw_dir == "/nonexistent"
    for path, mode in ((Path("/etc/sfbridge"), 0o750), (CONF, 0o640)):
        st = path.stat()
        assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid) == (mode, 0, group.gr_gid), \
            f"{path}: {oct(st.st_mode)} {st.st_uid}:{st.st_gid}, not {oct(mode)} root:sfbridge"
    assert CONF.read_text() == EXAMPLE_CONF.read_text()
    if shutil.which("man"):
        for page in ("sfbridge", "localforce"):
            assert sh("man", "-w", page).stdout.strip() == f"/usr/share/man/man1/{page}.1.gz"
    else:
        assert Path("/usr/share/man/man1/sfbridge.1.gz").is_file()
    # Enabled (deb-systemd-helper's link, made with or without a running systemd), not started.
    link = Path("/etc/systemd/system/multi-user.target.wants/sfbridge.service")
    assert link.is_symlink() and os.readlink(link) == "/lib/systemd/system/sfbridge.service"
    if Path("/run/systemd/system").is_dir():
        assert sh("systemctl", "is-active", "sfbridge", check=False).stdout.strip() == "inactive"
    if shutil.which("systemd-analyze"):
        r = sh("systemd-analyze", "verify", "/lib/systemd/system/sfbridge.service", check=False)
        assert r.returncode == 0 and "sfbridge" not in r.stdout + r.stderr, r.stdout + r.stderr


def test_reinstall_keeps_an_edited_configuration(installed):
    group = grp.getgrnam("sfbridge")
    CONF.write_text("# edited by the administrator\nSFBRIDGE_LOG_LEVEL = warn\n")
    os.chmod(CONF, 0o600)  # a choice of the administrator's, kept too
    dpkg("-i", installed)  # same version again: prerm upgrade, postinst configure 0.2.0
    assert CONF.read_text() == "# edited by the administrator\nSFBRIDGE_LOG_LEVEL = warn\n"
    st = CONF.stat()
    assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid) == (0o600, 0, group.gr_gid)
    os.chmod(CONF, 0o640)


def exec_start():
    """The installed unit's ExecStart as argv, and its User= and Group=."""
    u = unit_settings(Path("/lib/systemd/system/sfbridge.service").read_text())
    argv = shlex.split(u["ExecStart"][-1].lstrip("-@+!:"))
    return argv, u["User"][-1], u["Group"][-1]


def as_service_user(user, group):
    """Popen/run keywords that run a program as systemd runs the unit's (User=, Group=, a
    fresh environment), without su's or runuser's watching parent between it and our signals."""
    env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"}
    return {"user": user, "group": group, "extra_groups": [], "env": env, "cwd": "/"}


class NotifyListener:
    """An abstract datagram socket standing in for systemd's $NOTIFY_SOCKET."""

    def __init__(self):
        self.name = f"@sfbridge-test-notify-{os.getpid()}"
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind("\0" + self.name[1:])
        self.sock.settimeout(0.2)
        self.messages = []

    def received(self, assignment):
        while True:
            try:
                self.messages.append(self.sock.recv(4096).decode())
            except (socket.timeout, BlockingIOError):
                break
        return any(assignment in m.split("\n") for m in self.messages)

    def close(self):
        self.sock.close()


def test_installed_service_syncs_and_stops_on_sigterm(installed, database, localforce, tmp_path):
    argv, user, group = exec_start()
    assert argv == ["/usr/bin/sfbridge", "--config", str(CONF), "run"]
    CONF.write_text("\n".join([
        "# written by tests/e2e/test_packaging.py",
        f"DATABASE_URL = {database.url}",
        f"SF_LOGIN_URL = {localforce.url}",
        f"SF_CLIENT_ID = {localforce.client_id}",
        f"SF_CLIENT_SECRET = {localforce.client_secret}",
        f"SF_USERNAME = {localforce.username}",
        f"SF_PASSWORD = '{localforce.password}'",
        f"SF_API_VERSION = {SFBRIDGE_API_VERSION}",
        "SFBRIDGE_BACKOFF_CAP_MS = 1000", ""]))
    os.chown(CONF, 0, grp.getgrnam(group).gr_gid)
    os.chmod(CONF, 0o640)
    svc = as_service_user(user, group)
    cli = [argv[0], *argv[1:3]]  # sfbridge --config /etc/sfbridge/sfbridge.conf

    sh(*cli, "init", **svc)
    sh(*cli, "mapping", "add", "Account", "--poll", "1", **svc)
    notify = NotifyListener()
    log = tmp_path / "sfbridge-service.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                **{**svc, "env": {**svc["env"], "NOTIFY_SOCKET": notify.name}})
    tail = lambda: "--- the service's output ---\n" + log.read_text(errors="replace")[-6000:]  # noqa: E731
    try:
        def alive(pred):
            def check():
                if proc.poll() is not None:
                    raise WaitAbort(f"the service exited {proc.returncode}\n{tail()}")
                return pred()
            return check

        # sdnotify is the daemon's once src/sfbridge calls it; until then READY=1 is not awaited.
        notifies = b"READY=1" in Path(argv[0]).read_bytes()
        if notifies:
            wait_for(alive(lambda: notify.received("READY=1")), timeout=60, what="READY=1 on NOTIFY_SOCKET",
                     context=tail)

        def account_synced():
            r = sh(*cli, "status", "--json", check=False, **svc)
            entry = find_mapping_entry(json.loads(r.stdout), "Account") if r.stdout.strip() else None
            return entry if entry and entry.get("state") == "DATA_SYNCED" else None

        wait_for(alive(account_synced), timeout=90, what="Account DATA_SYNCED in status --json", context=tail)
        assert database.scalar("SELECT count(*) FROM salesforce.account") == 3
        client = localforce.client()
        client.login()
        sfid = client.create("Account", {"Name": "Installed Package Ltd"})
        wait_for(alive(lambda: database.scalar("SELECT name FROM salesforce.account WHERE sfid = %s",
                                               (sfid,)) == "Installed Package Ltd"),
                 timeout=60, what="a new Account polled into Postgres by the service", context=tail)

        if notifies:  # ExecReload: SIGHUP reads the configuration again, and the daemon goes on
            notify.messages.clear()
            proc.send_signal(signal.SIGHUP)
            wait_for(alive(lambda: notify.received("RELOADING=1") and notify.received("READY=1")),
                     timeout=30, what="RELOADING=1, then READY=1, after SIGHUP", context=tail)

        timeout_stop = int(unit_settings(Path("/lib/systemd/system/sfbridge.service").read_text())
                           ["TimeoutStopSec"][-1].rstrip("s"))
        proc.send_signal(signal.SIGTERM)  # KillSignal=, to the main process (KillMode=mixed)
        rc = proc.wait(timeout_stop)
        assert rc == 0, f"the service exited {rc} on SIGTERM\n{tail()}"
        if notifies:
            assert notify.received("STOPPING=1"), f"no STOPPING=1: {notify.messages}"
        # A clean run and stop: nothing to warn about.
        noisy = re.findall(r"^\S+ (?:warn|error) .*$", log.read_text(errors="replace"), re.M)
        assert not noisy, "warnings from a clean run:\n" + "\n".join(noisy)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)
        notify.close()


# --- make install --------------------------------------------------------------------------------
def files_under(root):
    return sorted(str(p.relative_to(root)) for p in Path(root).rglob("*") if p.is_file() or p.is_symlink())


def test_make_install_and_uninstall(tmp_path, deb_file):
    # (deb_file: the programs are built in PKG_BUILD)
    stage = tmp_path / "stage"
    make = ["make", f"BUILD={PKG_BUILD}", f"DESTDIR={stage}"]
    sh(*make, "PREFIX=/usr", "install", cwd=ROOT)
    docs = ["README.md", "examples/dream-org.json", "localforce.md", "operations.md", "org-file.md",
            "sfbridge.conf.example", "sfbridge.md"]
    expected = sorted(["usr/bin/sfbridge", "usr/bin/localforce", "usr/lib/systemd/system/sfbridge.service",
                       "usr/share/man/man1/sfbridge.1", "usr/share/man/man1/localforce.1"]
                      + [f"usr/share/doc/sfbridge/{d}" for d in docs])
    assert files_under(stage) == expected
    assert os.access(stage / "usr/bin/sfbridge", os.X_OK)
    assert (stage / "usr/lib/systemd/system/sfbridge.service").read_text() == UNIT_SRC.read_text()
    assert (stage / "usr/share/doc/sfbridge/sfbridge.conf.example").read_text() == EXAMPLE_CONF.read_text()
    assert sh(stage / "usr/bin/sfbridge", "--version").stdout.strip() == f"sfbridge {source_version()}"

    # Another prefix: the unit is an example naming the binary where it went.
    sh(*make, "PREFIX=/opt/sfb", "install", cwd=ROOT)
    example = stage / "opt/sfb/share/sfbridge/sfbridge.service"
    assert "ExecStart=/opt/sfb/bin/sfbridge --config /etc/sfbridge/sfbridge.conf run" in example.read_text()
    assert not (stage / "opt/sfb/lib").exists()

    # uninstall removes what install put there, and nothing else.
    (stage / "usr/bin/other-program").write_text("#!/bin/sh\n")
    sh(*make, "PREFIX=/usr", "uninstall", cwd=ROOT)
    sh(*make, "PREFIX=/opt/sfb", "uninstall", cwd=ROOT)
    assert files_under(stage) == ["usr/bin/other-program"]
    assert sorted(str(p.relative_to(stage)) for p in stage.rglob("*")) == ["usr", "usr/bin", "usr/bin/other-program"]


# --- the unit ---------------------------------------------------------------------------------------
def test_unit_file_settings():
    u = unit_settings(UNIT_SRC.read_text())
    one = {k: v[-1] for k, v in u.items()}
    assert one["Type"] == "notify"
    assert one["ExecStart"] == "/usr/bin/sfbridge --config /etc/sfbridge/sfbridge.conf run"
    assert one["ExecReload"] == "/bin/kill -HUP $MAINPID"
    assert (one["User"], one["Group"]) == ("sfbridge", "sfbridge")
    assert one["Restart"] == "on-failure" and one["RestartSec"] and one["StartLimitBurst"]
    assert one["KillMode"] in ("mixed", "process") and one["KillSignal"] == "SIGTERM"
    assert one["TimeoutStopSec"]
    assert one["WantedBy"] == "multi-user.target"
    assert one["CapabilityBoundingSet"] == ""
    assert one["RestrictAddressFamilies"].split() == ["AF_UNIX", "AF_INET", "AF_INET6"]
    for k in ("NoNewPrivileges", "ProtectHome", "PrivateTmp", "PrivateDevices", "ProtectKernelTunables",
              "ProtectKernelModules", "ProtectKernelLogs", "ProtectControlGroups", "LockPersonality",
              "MemoryDenyWriteExecute", "RestrictNamespaces", "RestrictRealtime", "RestrictSUIDSGID"):
        assert one.get(k) == "yes", f"{k}={one.get(k)}"
    assert one["ProtectSystem"] == "strict"
    assert "@system-service" in u["SystemCallFilter"]


def test_unit_file_verifies(tmp_path, deb_file):
    """systemd-analyze verify (a copy whose ExecStart names the built binary, and whose man page
    is found through MANPATH), and the exposure `systemd-analyze security` gives it."""
    if not shutil.which("systemd-analyze"):
        pytest.skip("systemd-analyze is missing (Debian's systemd package)")
    unit = tmp_path / "sfbridge.service"
    unit.write_text(UNIT_SRC.read_text().replace("/usr/bin/sfbridge", str(PKG_BUILD / "sfbridge")))
    (tmp_path / "man/man1").mkdir(parents=True)
    shutil.copy(MAN_PAGES["sfbridge"], tmp_path / "man/man1/sfbridge.1")
    env = {**os.environ, "MANPATH": str(tmp_path / "man")}
    r = sh("systemd-analyze", "verify", unit, check=False, env=env)
    assert r.returncode == 0 and not (r.stdout + r.stderr).strip(), r.stdout + r.stderr
    r = sh("systemd-analyze", "security", "--offline=true", unit, check=False, env=env)
    if r.returncode != 0 and "offline" in r.stderr:
        pytest.skip(f"this systemd-analyze has no --offline: {r.stderr.strip()}")
    m = re.search(r"Overall exposure level for sfbridge.service: ([0-9.]+) (\w+)", r.stdout)
    assert m and float(m.group(1)) <= 2.0, r.stdout[-3000:]


# --- man pages and the example configuration ------------------------------------------------
@pytest.mark.parametrize("page", sorted(MAN_PAGES))
def test_man_page_renders_without_warnings(page):
    path = MAN_PAGES[page]
    env = {**os.environ, "LC_ALL": "C.UTF-8", "MANWIDTH": "80"}
    if shutil.which("man"):
        r = sh("man", "--warnings", "-E", "UTF-8", "-l", path, env=env)
        assert not r.stderr.strip(), r.stderr
        assert r.stdout.count("\n") > 50
    if shutil.which("groff"):
        r = sh("groff", "-man", "-ww", "-z", path, env=env)
        assert not r.stderr.strip(), r.stderr
    if not shutil.which("man") and not shutil.which("groff"):
        pytest.skip("neither man (man-db) nor groff (groff-base) is installed")


def help_texts(binary, commands):
    return [sh(binary, *c, "--help").stdout for c in commands]


def test_sfbridge_man_page_describes_every_command_option_and_setting():
    sfb = sfbridge_bin()
    top = sh(sfb, "--help").stdout
    commands = re.findall(r"^  ([a-z]+)\b", top.split("commands:", 1)[1].split("\n\n", 1)[0], re.M)
    assert "run" in commands and "mapping" in commands
    subs = re.findall(r"^  mapping ([a-z]+)", sh(sfb, "mapping", "--help").stdout, re.M)
    assert "add" in subs and "import" in subs
    texts = [top] + help_texts(sfb, [[c] for c in commands]) + help_texts(sfb, [["mapping", s] for s in subs])
    options = set(re.findall(r"(?<![\w-])--[a-z][a-z-]*[a-z]", "\n".join(texts)))
    man = roff_text(MAN_PAGES["sfbridge"])
    section = man.split(".SH COMMANDS", 1)[1].split(".SH ", 1)[0]
    missing = [c for c in commands if not re.search(rf"^(\.BI? |\.BR |\\fB){c}\b", section, re.M)]
    missing += [f"mapping {s}" for s in subs if f"mapping {s}" not in section]
    missing += sorted(o for o in options if o not in man)
    config = man.split(".SH CONFIGURATION", 1)[1].split(".SH ", 1)[0]
    missing += [s for s in doc_settings() if not re.search(rf"^\.TP\n\.BR? [^\n]*\b{s}\b", config, re.M)]
    assert not missing, f"docs/man/sfbridge.1 does not describe: {missing}"


def test_localforce_man_page_describes_every_command_and_option():
    top = sh(localforce_bin(), "--help").stdout
    commands = re.findall(r"^  ([a-z]+)  ", top.split("commands:", 1)[1].split("\n\n", 1)[0], re.M)
    assert set(commands) >= {"serve", "check", "version"}
    options = set(re.findall(r"(?<![\w-])--[a-z][a-z-]*[a-z]", top))
    man = roff_text(MAN_PAGES["localforce"])
    section = man.split(".SH COMMANDS", 1)[1].split(".SH ", 1)[0]
    missing = [c for c in commands if not re.search(rf"^\.BR? {c}\b", section, re.M)]
    missing += sorted(o for o in options if o not in man)
    assert not missing, f"docs/man/localforce.1 does not describe: {missing}"


def test_example_configuration_lists_every_setting_and_parses(tmp_path):
    text = EXAMPLE_CONF.read_text()
    active = [line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    assert not active, f"the example sets something: {active}"
    listed = re.findall(r"^#([A-Z_]+) =", text, re.M)
    missing = [s for s in doc_settings() if s not in listed]
    assert not missing, f"{EXAMPLE_CONF.name} lacks {missing}"
    # As shipped (all commented): read without complaint; DATABASE_URL is what is missing.
    conf = tmp_path / "sfbridge.conf"
    conf.write_text(text)
    conf.chmod(0o600)
    env = {"PATH": os.environ["PATH"], "LANG": "C.UTF-8"}
    r = sh(sfbridge_bin(), "--config", conf, "run", "--once", check=False, env=env)
    assert r.returncode != 0 and "DATABASE_URL is not set" in r.stderr, r.stderr
    # Every default the example names, uncommented (DATABASE_URL left out), is a value sfbridge takes.
    conf.write_text("\n".join(re.sub(r"^#", "", line) for line in text.splitlines()
                              if re.match(r"^#[A-Z_]+ = \S", line) and not line.startswith("#DATABASE_URL")))
    r = sh(sfbridge_bin(), "--config", conf, "run", "--once", check=False, env=env)
    assert "DATABASE_URL is not set" in r.stderr, r.stderr


# --- Docker ----------------------------------------------------------------------------------------
def dockerfile_stages():
    """[(base image, stage name, [instructions with continuations joined])]."""
    stages = []
    text = re.sub(r"\\\n", " ", (PACKAGING / "Dockerfile").read_text())
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        m = re.match(r"FROM\s+(\S+)(?:\s+AS\s+(\S+))?", line, re.I)
        if m:
            stages.append((m.group(1), m.group(2), []))
        else:
            stages[-1][2].append(line)
    return stages


def apt_installs(instructions):
    pkgs = []
    for ins in instructions:
        for m in re.finditer(r"apt-get install ([^&;]*)", ins):
            pkgs += [w for w in m.group(1).split() if not w.startswith("-")]
    return pkgs


def packages_of(paths):
    """{path: the installed Debian package that owns it} (the /lib and /usr/lib spellings both
    tried: dpkg knows a file by the path its package ships it at)."""
    spellings = {}
    for p in paths:
        for a in {p, os.path.realpath(p)}:
            for b in (a, a[4:] if a.startswith("/usr/") else "/usr" + a):
                spellings.setdefault(b, p)
    r = sh("dpkg", "-S", *sorted(spellings), check=False)
    owners = {}
    for line in r.stdout.splitlines():
        pkg, _, path = line.partition(": ")
        if path in spellings:
            owners[spellings[path]] = pkg.split(":")[0].split(",")[0].strip()
    unowned = sorted(set(paths) - set(owners))
    assert not unowned, f"no installed package owns {unowned}"
    return owners


def installed_packages():
    """{package: (priority, [dependency alternatives])} of the packages installed here (an
    Essential package counts as required)."""
    fmt = "${Package}\t${db:Status-Status}\t${Priority}\t${Essential}\t${Depends}, ${Pre-Depends}\n"
    out = {}
    for line in sh("dpkg-query", "-W", f"-f={fmt}").stdout.splitlines():
        name, status, priority, essential, deps = (line.split("\t") + ["", "", "", ""])[:5]
        if essential == "yes":
            priority = "required"  # in every Debian image, slim ones included
        if status == "installed":
            alts = [[a.strip().split()[0].split(":")[0] for a in d.split("|")]
                    for d in deps.split(",") if d.strip()]
            out[name] = (priority, alts)
    return out


def dependency_closure(roots, pkgs):
    """roots and every installed package they depend on (Depends, Pre-Depends), recursively."""
    seen, todo = set(), list(roots)
    while todo:
        p = todo.pop()
        if p in seen or p not in pkgs:
            continue
        seen.add(p)
        for alt in pkgs[p][1]:
            todo += [a for a in alt if a in pkgs][:1]
    return seen


def test_dockerfile_runtime_stage_has_every_library(deb_file):
    """Docker has no daemon here: the Dockerfile is checked instead of built. Every shared library
    `ldd` lists for the two programs (built in PKG_BUILD by `make deb`) must come from a package
    the runtime stage installs, one those depend on, or a required package of the base image;
    each library linked directly must be named in the stage itself."""
    if not shutil.which("dpkg"):
        pytest.skip("dpkg is missing: cannot map libraries to packages")
    stages = dockerfile_stages()
    (build_image, build_name, build_ins), (run_image, _, run_ins) = stages[0], stages[-1]
    assert (build_image, build_name, run_image) == ("debian:12", "build", "debian:12-slim"), stages
    runtime = apt_installs(run_ins)
    pkgs = installed_packages()
    base = dependency_closure(sorted(p for p, (prio, _) in pkgs.items() if prio == "required"), pkgs)
    closure = dependency_closure(runtime, pkgs) | base
    for prog in ("sfbridge", "localforce"):
        binary = PKG_BUILD / prog
        libs = re.findall(r"=> (/\S+)", sh("ldd", binary).stdout)
        assert libs, f"ldd {binary} lists no library"
        owners = packages_of(libs)
        missing = {lib: pkg for lib, pkg in owners.items() if pkg not in closure}
        assert not missing, f"{prog}: the runtime stage installs nothing that brings {missing}"
        needed = re.findall(r"\(NEEDED\)\s+Shared library: \[(\S+)\]", sh("readelf", "-d", binary).stdout)
        direct = {owners[lib] for lib in libs if os.path.basename(lib) in needed}
        unnamed = direct - set(runtime) - base
        assert not unnamed, f"{prog} links {unnamed} directly; name them in the runtime stage"
    # The build stage has the -dev package of every pkg-config module CMakeLists.txt requires.
    build_pkgs = set(apt_installs(build_ins))
    for mod in re.findall(r"pkg_check_modules\(\w+ REQUIRED IMPORTED_TARGET (\S+)\)",
                          (ROOT / "CMakeLists.txt").read_text()):
        pcdir = sh("pkg-config", "--variable=pcfiledir", mod).stdout.strip()
        dev = packages_of([f"{pcdir}/{mod}.pc"])[f"{pcdir}/{mod}.pc"]
        assert dev in build_pkgs, f"the build stage does not install {dev} (pkg-config {mod})"
    joined = "\n".join(run_ins)
    user = re.findall(r"^USER\s+(\S+)", joined, re.M)
    assert user and user[-1].split(":")[0] not in ("root", "0"), "the image runs as a user of its own"
    assert re.search(r'^ENTRYPOINT \["sfbridge"\]$', joined, re.M)
    assert re.search(r'^CMD \["run"\]$', joined, re.M)
    assert re.search(r"^COPY --from=build \S*/sfbridge \S*/localforce /usr/bin/$", joined, re.M)


def test_compose_example_parses():
    yaml = pytest.importorskip("yaml", reason="python3-yaml is not installed")
    doc = yaml.safe_load((PACKAGING / "docker-compose.example.yml").read_text())
    services = doc["services"]
    assert {"sfbridge", "postgres"} <= set(services)
    sfb = services["sfbridge"]
    build = sfb["build"]
    assert (PACKAGING / build["context"] / build["dockerfile"]).resolve() == (PACKAGING / "Dockerfile").resolve()
    assert "postgres" in sfb["depends_on"]
    assert "@postgres:5432/" in sfb["environment"]["DATABASE_URL"]
    assert sfb.get("command", ["run"]) == ["run"]
