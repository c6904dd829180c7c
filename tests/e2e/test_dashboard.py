"""The dashboard (issue 16) in a real headless browser: Debian's chromium driven by
tests/browser/driver.mjs (playwright-core), against `sfbridge run --http` and a localforce
serving the Dream org (examples/dream-org.json: Teacher__c has the External ID Email__c).

Every step asserts what the page shows; waits are on conditions in the page (the driver's
auto-waiting) or on the database, never sleeps. Screenshots of every page are saved under
the test's tmp_path/shots (and copied to build-asan/dashboard-shots/ when build-asan exists)."""
import os
import re
import shutil
import time
import urllib.error
import urllib.request

import pytest

from lib.browser import Browser, BrowserError, missing
from lib.paths import ROOT
from lib.sfbridge import wait_daemon
from lib.wait import wait_for
from lib.writeback import App

DREAM = ROOT / "examples" / "dream-org.json"
WARNING = "Read-write mappings require a unique identifier to be specified"
SHOTS_COPY = ROOT / "build-asan" / "dashboard-shots"
T = "teacher__c"


# -- fixtures ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    why = missing()
    if why:
        pytest.fail(f"the browser tests cannot run: {why} (scripts/deps.sh installs both)")
    b = Browser(tmp_path_factory.mktemp("browser") / "driver.log")
    yield b
    b.close()


@pytest.fixture
def page(browser, request):
    """A fresh browser context (cookies, credentials, viewport) for each test; its console
    errors fail the test."""
    browser.new_context()
    yield browser
    # (an API call answered 4xx/5xx is logged by chromium as "Failed to load resource": the
    # pages show those answers, and some tests provoke them)
    errors = [m for m in browser.console() if m.startswith(("pageerror", "error"))
              and "Failed to load resource" not in m]
    if getattr(request.node, "rep_call", None) is not None and request.node.rep_call.passed:
        assert not errors, f"errors in the browser's console: {errors}"


class Shots:
    def __init__(self, browser, tmp_path, test):
        self.browser, self.dir, self.test = browser, tmp_path / "shots", test
        self.n = 0

    def __call__(self, name):
        self.n += 1
        path = self.dir / f"{self.n:02d}-{name}.png"
        self.browser.screenshot(path)
        if SHOTS_COPY.parent.is_dir():
            SHOTS_COPY.mkdir(exist_ok=True)
            shutil.copy(path, SHOTS_COPY / f"{self.test}-{path.name}")
        return path


@pytest.fixture
def shots(page, tmp_path, request):
    return Shots(page, tmp_path, request.node.name.replace("test_", ""))


def _port(sfb):
    m = re.search(r"management API on http://127\.0\.0\.1:(\d+)/", sfb.log(400))
    return int(m.group(1)) if m else None


def start_api(sfb, env=None):
    """Start the daemon with its API on a free port; the pages' base URL. The pages are the ones
    built into the binary, or with SFBRIDGE_WEB_DIR set for the tests, that directory's
    (while working on them)."""
    web = {"SFBRIDGE_WEB_DIR": os.environ["SFBRIDGE_WEB_DIR"]} if os.environ.get("SFBRIDGE_WEB_DIR") else {}
    sfb.start(env={"SFBRIDGE_HTTP": "127.0.0.1:0", **web, **(env or {})})
    port = wait_daemon(sfb, lambda: _port(sfb), what="the API's listening line")
    return f"http://127.0.0.1:{port}/"


class Site:
    def __init__(self, sfb, db, sf, url):
        self.sfb, self.db, self.sf, self.url = sfb, db, sf, url

    def mapping(self, obj):
        return self.sfb.mapping_status(obj)


@pytest.fixture
def dream(localforce_factory):
    lf = localforce_factory(org=DREAM)
    sf = lf.client()
    sf.login()
    return lf, sf


@pytest.fixture
def empty_site(dream, sfbridge_factory, database):
    """sfbridge with no mapping yet, its API and pages on a free port."""
    lf, sf = dream
    sfb = sfbridge_factory(database.url, lf, name="sfbridge")
    sfb.init()
    site = Site(sfb, database, sf, start_api(sfb))
    yield site
    if sfb.running():
        sfb.stop()


@pytest.fixture
def site(dream, sfbridge_factory, database):
    """sfbridge with Teacher__c (read-write by Email__c) and Account (read only) loaded,
    and one write Salesforce refused (an error, a notification)."""
    lf, sf = dream
    sfb = sfbridge_factory(database.url, lf, name="sfbridge")
    sfb.init()
    sfb.run("mapping", "add", "Teacher__c", "--all-fields", "--access", "read_write", "--upsert-field", "Email__c")
    sfb.add("Account", "--fields", "Name,Type,BillingCity")
    s = Site(sfb, database, sf, start_api(sfb))
    wait_daemon(sfb, lambda: all(m["loaded"] and m["state"] == "DATA_SYNCED" for m in sfb.status_json()["mappings"]),
                timeout=90, what="both mappings loaded")
    with App(database) as app:
        rid = app.execute(f"SELECT id FROM salesforce.{T} ORDER BY id LIMIT 1")[0]["id"]
        app.update(T, rid, subject__c="Astrology")
    wait_daemon(sfb, lambda: database.scalar(f"SELECT _hc_lastop FROM salesforce.{T} WHERE id = %s", (rid,))
                == "FAILED", what="the refused write")
    s.failed_id = rid
    yield s
    if sfb.running():
        sfb.stop()


# -- helpers ----------------------------------------------------------------------------
def row_sel(obj):
    return f'#mappings-table tr[data-object="{obj}"]'


def cell(page, obj, col):
    return page.text(f'{row_sel(obj)} td[data-col="{col}"]')


def wait_cell(page, obj, col, pred, what, timeout=60):
    return wait_for(lambda: pred(cell(page, obj, col)), timeout=timeout, what=f"{obj}'s {col} to show {what}",
                    context=lambda: page.text("#mappings-table"))


def serious(violations):
    return [v for v in violations if v["impact"] in ("serious", "critical")]


def error_rows(page):
    return page.count("#errors-table tbody tr[data-error]")


def fix_quietly(db, table, rid, **cols):
    """Change a row without a new trigger-log entry (an admin's session with xmlbinary =
    hex, which the capture triggers skip), so only a retry sends it."""
    sets = ", ".join(f"{c} = %s" for c in cols)
    with db.connect() as c:
        c.execute("SET xmlbinary = 'hex'")
        c.execute(f"UPDATE salesforce.{table} SET {sets} WHERE id = %s", (*cols.values(), rid))


# -- the journey ---------------------------------------------------------------------------
def test_seed_journey(empty_site, page, shots, dream):
    s, b = empty_site, page
    sf = s.sf
    org_id = sf.org_id

    # Overview: the connection, nothing synced yet
    b.goto(s.url)
    b.wait("#card-conn")
    b.wait("#overview-cards dd", has_text=org_id)
    conn = b.text("#overview-cards")
    assert org_id in conn and "60.0" in conn and "salesforce" in conn, conn
    b.wait('[data-figure="rows_in"]')
    assert b.text('[data-figure="rows_in"]') == "0"
    shots("overview-empty")

    # Mappings: none yet; Add mapping opens the editor
    b.click("nav a", has_text="Mappings")
    b.wait("#mappings-table td", has_text="No mappings yet")
    b.click("#add-mapping")
    b.wait_url("#/mappings/new")

    # the searchable object picker
    b.wait("#object-select option")
    assert b.count("#object-select option") > 5
    b.fill("#object-search", "teach")
    wait_for(lambda: b.texts("#object-select option") == ["Teacher__c — Teacher"], timeout=10,
             what="the picker to show only Teacher__c", context=lambda: b.texts("#object-select option"))
    b.select("#object-select", "Teacher__c")
    b.wait("#fields-table tr[data-field='Email__c']")
    assert b.texts("#unique-id option") == ["none", "Email__c"], "only the External ID fields are offered"
    assert "External ID" in b.text("#fields-table tr[data-field='Email__c']")
    assert "yes" in b.text("#fields-table tr[data-field='Last_Name__c']"), "required is shown"
    assert not b.visible("#unique-warning")

    # Write to Salesforce without a unique identifier: Heroku Connect's warning
    b.check("#write-sf")
    b.wait("#unique-warning")
    assert b.text("#unique-warning") == WARNING
    b.check("#select-all")
    total = b.count("#fields-table tbody tr")
    assert b.text("#field-count") == f"{total} of {total} fields selected"
    b.fill("#poll-seconds", "60")
    b.check("#accelerate")
    shots("editor-warning")
    b.select("#unique-id", "Email__c")
    b.wait("#unique-warning", state="hidden")

    # Save: back on Mappings, the initial load finishes there
    b.click("#save")
    b.wait_url("#/mappings")
    b.wait(row_sel("Teacher__c"), timeout=20)
    assert "Created the mapping of Teacher__c" in b.text("main .notice")
    wait_cell(b, "Teacher__c", "state", lambda t: "DATA SYNCED" in t, "DATA SYNCED", timeout=90)
    n = sf.count("Teacher__c")
    wait_cell(b, "Teacher__c", "rows", lambda t: t == str(n), f"{n} rows")
    wait_cell(b, "Teacher__c", "sf_rows", lambda t: t == str(n), f"{n} Salesforce rows")
    row_text = b.text(row_sel("Teacher__c"))
    assert "read-write" in row_text and cell(b, "Teacher__c", "poll") == "accelerated", row_text
    m = s.mapping("Teacher__c")
    assert (m["access"], m["sf_notify_enabled"]) == ("read_write", True), m
    shots("mappings-loaded")

    # the stream connects; a record changed in Salesforce shows in the Explorer within ~1 s
    wait_daemon(s.sfb, lambda: (s.mapping("Teacher__c").get("stream") or {}).get("state") == "CONNECTED",
                timeout=60, what="the stream to connect")
    b.click(f'{row_sel("Teacher__c")} th a')
    b.wait_url("#/explorer/Teacher__c")
    b.wait("#records-table tbody tr[data-id]")
    wait_for(lambda: b.count("#records-table tbody tr[data-id]") == n, timeout=10, what=f"{n} rows in the Explorer")
    assert b.text("#records-count").startswith(f"{n} rows")
    teacher = sf.query("SELECT Id, Email__c, Last_Name__c FROM Teacher__c ORDER BY Email__c LIMIT 1")[0]
    teacher_last = teacher["Last_Name__c"]
    t0 = time.monotonic()
    sf.update("Teacher__c", teacher["Id"], {"Phone__c": "(555) 010-4242"})
    b.wait(f'#records-table tr[data-sfid="{teacher["Id"]}"]', has_text="(555) 010-4242", timeout=10)
    seen_after = time.monotonic() - t0
    # How fast is measured, not asserted (bench/README.md: about 0.8 s, the stream and then the
    # Explorer's twice-a-second refresh); the test asserts that it shows, by itself.
    print(f"the change showed in the Explorer {seen_after:.2f} s after it was made in Salesforce")
    shots("explorer-table")

    # paging, sorting, searching
    b.select("#page-size", "10")
    wait_for(lambda: b.count("#records-table tbody tr[data-id]") == min(n, 10), timeout=10, what="a page of 10")
    assert b.attr("#prev-page", "disabled") is not None
    b.click("#next-page")
    wait_for(lambda: b.count("#records-table tbody tr[data-id]") == n - 10, timeout=10, what="the second page")
    assert b.text("#page-label") == "Page 2"
    b.click("#prev-page")
    wait_for(lambda: b.count("#records-table tbody tr[data-id]") == 10, timeout=10, what="the first page again")
    b.click('#records-table th button[data-sort="email__c"]')
    b.wait('#records-table th[aria-sort="ascending"] button[data-sort="email__c"]')
    b.click('#records-table th button[data-sort="email__c"]')
    b.wait('#records-table th[aria-sort="descending"] button[data-sort="email__c"]')
    emails = sorted(r["Email__c"] for r in sf.query("SELECT Email__c FROM Teacher__c"))
    wait_for(lambda: b.attr("#records-table tbody tr[data-id]", "data-sfid") and
             emails[-1] in b.text("#records-table tbody tr[data-id]"), timeout=10,
             what="the last email first when sorted descending")
    b.fill("#records-search", teacher["Id"])
    b.click("#apply-filter")
    wait_for(lambda: b.count("#records-table tbody tr[data-id]") == 1, timeout=10, what="the search by sfid")
    assert b.text("#records-count") == "1 matching rows"
    b.select("#filter-field", "last_name__c")
    b.fill("#filter-value", teacher_last)
    b.fill("#records-search", "")
    b.click("#apply-filter")
    wait_for(lambda: b.count("#records-table tbody tr[data-id]") == 1 and
             teacher_last in b.text("#records-table tbody tr[data-id]"), timeout=10, what="the filter last_name__c")
    b.click("#clear-filter")
    wait_for(lambda: b.count("#records-table tbody tr[data-id]") == 10, timeout=10, what="the filter cleared")

    # the record's detail
    b.fill("#records-search", teacher["Id"])
    b.click("#apply-filter")
    wait_for(lambda: b.count("#records-table tbody tr[data-id]") == 1, timeout=10, what="the search by sfid")
    b.click(f'#records-table tr[data-sfid="{teacher["Id"]}"] td:nth-child(3)')
    b.wait_url("#/explorer/Teacher__c/")
    b.wait("#record-values td", has_text="(555) 010-4242")
    assert teacher["Email__c"] in b.text("#record-values")
    assert "No writes from Postgres" in b.text("#record-history")

    # a write Salesforce refuses, twice; both show in the errors list
    rid = s.db.scalar(f"SELECT id FROM salesforce.{T} WHERE sfid = %s", (teacher["Id"],))
    other = s.db.scalar(f"SELECT id FROM salesforce.{T} WHERE sfid <> %s ORDER BY id LIMIT 1", (teacher["Id"],))
    with App(s.db) as app:
        app.update(T, rid, subject__c="Astrology")
        app.update(T, other, subject__c="Alchemy")
    b.click("nav a", has_text="Errors")
    b.wait_url("#/errors")
    b.wait("#errors-table tbody tr[data-error]", timeout=30)
    wait_for(lambda: error_rows(b) == 2, timeout=30, what="two write errors", context=lambda: b.text("#errors-table"))
    failed = s.db.query_dicts("SELECT id, record_id, sf_message FROM salesforce._trigger_log WHERE state = 'FAILED' "
                              "ORDER BY id")
    assert len(failed) == 2, failed
    first = next(e for e in failed if e["record_id"] == rid)
    text = b.text(f'#errors-table tr[data-error="{first["id"]}"]')
    assert "UPDATE" in text and T in text and first["sf_message"].split(": ")[-1] in text, (text, first)
    assert f"Teacher__c {rid}" in text, "the record links to the Explorer"
    shots("errors")

    # its record shows the refused entry in its history
    b.click(f'#errors-table tr[data-error="{first["id"]}"] a')
    b.wait_url(f"#/explorer/Teacher__c/{rid}")
    b.wait("#record-history tr", has_text="FAILED")
    hist = b.text("#record-history")
    assert "UPDATE" in hist and "Astrology" in hist and first["sf_message"].split(": ")[-1] in hist, hist
    shots("record-detail")

    # fix the rows (without a new capture) and retry: one by its button, the other by Retry all
    fix_quietly(s.db, T, rid, subject__c="Art")
    fix_quietly(s.db, T, other, subject__c="Music")
    b.click("nav a", has_text="Errors")
    b.wait(f'#errors-table tr[data-error="{first["id"]}"]')
    b.click(f'#errors-table tr[data-error="{first["id"]}"] button', has_text="Retry")
    b.wait("main .notice-ok", has_text=f"Requeued write {first['id']}")
    wait_daemon(s.sfb, lambda: sf.get("Teacher__c", teacher["Id"], ["Subject__c"])["Subject__c"] == "Art",
                what="the retried write to reach Salesforce")
    wait_for(lambda: error_rows(b) == 1, timeout=15, what="the retried error to leave the list")
    b.click("#retry-all")
    b.wait("main .notice-ok", has_text="Requeued")
    b.wait("#errors-table td", has_text="No write errors", timeout=20)
    other_sfid = s.db.scalar(f"SELECT sfid FROM salesforce.{T} WHERE id = %s", (other,))
    wait_daemon(s.sfb, lambda: sf.get("Teacher__c", other_sfid, ["Subject__c"])["Subject__c"] == "Music",
                what="the write retried by Retry all to reach Salesforce")

    # the charts moved: rows in (the load and the change), rows out (the retries), errors
    b.click("nav a", has_text="Overview")
    b.wait("#charts figure")

    def moved():
        f = {k: int(b.text(f'[data-figure="{k}"]').replace(",", "")) for k in ("rows_in", "rows_out", "errors")}
        return f if f["rows_in"] >= n and f["rows_out"] >= 2 and f["errors"] >= 2 else None
    figures = wait_for(moved, timeout=30, what="the activity charts to count the rows and errors",
                       context=lambda: b.text("#charts"))
    assert b.count('[data-chart="rows_in"] rect.bar') >= 1 and b.count('[data-chart="errors"] rect.bar') >= 1, figures
    shots("overview-activity")
    b.click('button[data-hours="24"]')
    b.wait('button[data-hours="24"][aria-pressed="true"]')
    b.wait(".chart-note", has_text="15 min")
    assert b.count('[data-chart="rows_in"] rect.bar') >= 1
    shots("overview-day")


# -- the editor's other paths --------------------------------------------------------------
def test_editor_edits_and_shows_the_servers_message(site, page, shots):
    s, b = site, page
    b.goto(s.url + "#/mappings/Account/edit")
    b.wait("#fields-table tr[data-field='Name']")
    assert b.checked("#fields-table input[data-field='BillingCity']")
    assert not b.checked("#fields-table input[data-field='Phone']")
    assert b.value("#unique-id") == ""
    assert not b.visible("#unique-warning"), "read only: no warning"
    b.check("#fields-table input[data-field='Phone']")
    b.fill("#poll-seconds", "120")
    b.click("#save")
    b.wait_url("#/mappings")
    b.wait("main .notice", has_text="Saved the mapping of Account")
    wait_daemon(s.sfb, lambda: s.db.scalar(
        "SELECT count(*) FROM information_schema.columns WHERE table_schema = 'salesforce' "
        "AND table_name = 'account' AND column_name = 'phone'") == 1, what="the phone column")
    wait_cell(b, "Account", "poll", lambda t: t == "2 min", "2 min")
    # a mistake: the server's message, verbatim
    b.goto(s.url + "#/mappings/Account/edit")
    b.wait("#poll-seconds")
    b.fill("#poll-seconds", "-5")
    b.click("#save")
    b.wait("#save-error")
    msg = b.text("#save-error")
    assert msg and "poll" in msg.lower(), msg
    shots("editor-error")


def test_mappings_actions_export_import_and_remove(site, page, shots, tmp_path):
    s, b = site, page
    b.goto(s.url + "#/mappings")
    b.wait(row_sel("Account"))
    b.click(f'{row_sel("Account")} button', has_text="Pause")
    wait_cell(b, "Account", "state", lambda t: "PAUSED" in t, "PAUSED", timeout=20)
    b.click(f'{row_sel("Account")} button', has_text="Resume")
    wait_cell(b, "Account", "state", lambda t: "PAUSED" not in t, "not PAUSED", timeout=20)
    polls = s.mapping("Account")["sf_rows_at"]
    b.click(f'{row_sel("Account")} button', has_text="Reload")
    b.wait("main .notice-ok", has_text="Reload Account: done.")
    wait_daemon(s.sfb, lambda: s.mapping("Account")["sf_rows_at"] != polls and s.mapping("Account")["loaded"],
                what="the reload of Account")
    wait_cell(b, "Account", "state", lambda t: "DATA SYNCED" in t, "DATA SYNCED", timeout=30)
    name = b.download("#export", tmp_path / "export.json")
    assert name == "sfbridge-mappings.json"
    exported = (tmp_path / "export.json").read_text()
    assert '"Teacher__c"' in exported and '"Account"' in exported
    # remove, with the confirmation dialog (cancel first)
    b.click(f'{row_sel("Account")} button', has_text="Remove")
    b.wait("dialog.dialog[open]")
    assert "Remove the mapping of Account?" in b.text("dialog.dialog")
    shots("remove-dialog")
    violations = serious(b.axe())
    assert not violations, violations
    b.click("dialog.dialog button", has_text="Cancel")
    b.wait("dialog.dialog", state="hidden")
    assert b.count(row_sel("Account")) == 1
    b.click(f'{row_sel("Account")} button', has_text="Remove")
    b.click("dialog.dialog button.btn-danger")
    b.wait(row_sel("Account"), state="detached", timeout=30)
    # import brings it back
    b.upload("#import-file", tmp_path / "export.json")
    b.wait("main .notice-ok", has_text="Imported export.json")
    b.wait(row_sel("Account"), timeout=30)
    shots("mappings-imported")


def test_notifications_banner_acknowledge(site, page):
    s, b = site, page
    b.goto(s.url + "#/overview")
    b.wait("section.banner li[data-notification]")
    assert "refused" in b.text("section.banner")
    b.click("section.banner li[data-notification] button", has_text="Acknowledge")
    b.wait("section.banner", state="detached", timeout=10)
    assert s.sfb.status_json()["notifications"]["unacknowledged"] == 0
    b.goto(s.url + "#/mappings")
    b.wait(row_sel("Teacher__c"))
    assert b.count("section.banner") == 0, "an acknowledged notification stays away"
    # two more; Acknowledge all
    for subject in ("Numerology", "Palmistry"):
        with App(s.db) as app:
            rid = app.execute(f"SELECT id FROM salesforce.{T} WHERE _hc_lastop <> 'FAILED' "
                              "ORDER BY id LIMIT 1")[0]["id"]
            app.update(T, rid, subject__c=subject)
        wait_daemon(s.sfb, lambda: s.sfb.status_json()["notifications"]["unacknowledged"] >= 1,
                    what="a notification of the refused write")
        b.wait("section.banner li[data-notification]", has_text=subject, timeout=10)
    b.click("section.banner button", has_text="Acknowledge all")
    b.wait("section.banner", state="detached", timeout=10)
    assert s.sfb.status_json()["notifications"]["unacknowledged"] == 0


# -- accessibility, phone, keyboard, auth ------------------------------------------------------
PAGES = [
    ("overview", "#/overview", "#charts figure"),
    ("mappings", "#/mappings", '#mappings-table tr[data-object="Teacher__c"]'),
    ("editor-new", "#/mappings/new", "#object-select option"),
    ("editor-edit", "#/mappings/Teacher__c/edit", "#fields-table tr[data-field='Email__c']"),
    ("explorer-home", "#/explorer", "main .link-list a"),
    ("explorer", "#/explorer/Teacher__c", "#records-table tbody tr[data-id]"),
    ("record", "#/explorer/Teacher__c/{rid}", "#record-history tbody tr"),
    ("errors", "#/errors", "#errors-table tbody tr[data-error]"),
]


def _visit(b, s, hash_, ready):
    b.goto(s.url + hash_.format(rid=s.failed_id))
    b.wait(ready, timeout=20)


def test_every_page_passes_axe(site, page, shots):
    s, b = site, page
    found = {}
    for name, hash_, ready in PAGES:
        _visit(b, s, hash_, ready)
        if name == "editor-new":  # Contact: not mapped, no External ID field
            b.select("#object-select", "Contact")
            b.wait("#fields-table tr[data-field='LastName']")
            b.check("#write-sf")
            b.wait("#unique-warning")
        shots(f"axe-{name}")
        bad = serious(b.axe())
        if bad:
            found[name] = bad
    assert not found, found


def test_phone_viewport(site, page, shots):
    s, b = site, page
    b.new_context(width=390, height=844, mobile=True, scale=2)
    for name, hash_, ready in PAGES:
        _visit(b, s, hash_, ready)
        shots(f"phone-{name}")
        over = b.eval("() => document.documentElement.scrollWidth - window.innerWidth")
        assert over <= 0, f"{name}: the page is {over}px wider than the phone (tables must scroll inside)"
        for link in ("Overview", "Mappings", "Explorer", "Errors"):
            assert b.visible("nav a", has_text=link), f"{name}: nav link {link} not visible"
    # the wide tables scroll inside their box
    _visit(b, s, "#/explorer/Teacher__c", "#records-table tbody tr[data-id]")
    assert b.eval("() => { const w = document.querySelector('.table-wrap'); return w.scrollWidth > w.clientWidth; }")


def test_keyboard_navigation(site, page):
    s, b = site, page
    b.goto(s.url + "#/overview")
    b.wait("#charts figure")
    seen = []
    for _ in range(8):
        b.press("Tab")
        f = b.focused()
        seen.append(f)
        if f and f["in_nav"] and f["text"] == "Mappings":
            break
    assert seen[0] and seen[0]["text"] == "Skip to content", seen
    assert any(f and f["in_nav"] and f["text"] == "Overview" for f in seen), seen
    assert seen[-1]["text"] == "Mappings", seen
    outline = b.eval("() => getComputedStyle(document.activeElement).outlineStyle")
    assert outline != "none", "the focused link shows a focus ring"
    b.press("Enter")
    b.wait_url("#/mappings")
    b.wait(row_sel("Teacher__c"))

    def tab_to(pred, limit=40, what="the control"):
        for _ in range(limit):
            b.press("Tab")
            f = b.focused()
            if f and pred(f):
                return f
        raise AssertionError(f"Tab never reached {what}; last: {b.focused()}")
    tab_to(lambda f: f["id"] == "add-mapping", what="Add mapping")
    b.press("Enter")
    b.wait_url("#/mappings/new")
    b.wait("#object-select option")
    tab_to(lambda f: f["id"] == "object-search", what="the object search")
    for ch in "Contact":
        b.press(ch)
    wait_for(lambda: b.count("#object-select option") == 1, timeout=10, what="the filtered picker")
    b.press("ArrowDown")  # into the list, its first object chosen
    b.wait("#fields-table tr[data-field='LastName']")
    tab_to(lambda f: f["id"] == "write-sf", what="Write to Salesforce")
    b.press("Space")
    b.wait("#unique-warning")
    tab_to(lambda f: f["id"] == "unique-id", what="the unique identifier")
    tab_to(lambda f: f["id"] == "save", limit=80, what="Save")


def test_token_protected_pages(dream, sfbridge_factory, database, browser, shots):
    lf, sf = dream
    token = "dash-token-0123456789"
    sfb = sfbridge_factory(database.url, lf, name="sfbridge")
    sfb.init()
    sfb.add("Account", "--fields", "Name")
    url = start_api(sfb, env={"SFBRIDGE_HTTP_TOKEN": token})
    try:
        with pytest.raises(urllib.error.HTTPError) as exc:
            urllib.request.urlopen(url, timeout=10)
        assert exc.value.code == 401 and "Basic" in exc.value.headers.get("WWW-Authenticate", "")
        b = browser
        b.new_context()
        try:  # chromium refuses the page (headless, it cannot prompt) or shows the 401
            refused = b.goto(url)["status"] == 401
        except BrowserError as e:
            refused = "ERR_INVALID_AUTH_CREDENTIALS" in str(e)
        assert refused, "a page without credentials"
        b.new_context(username="anyone", password=token)
        r = b.goto(url + "#/overview")
        assert r["status"] == 200, r
        b.wait("#overview-cards dd", has_text=sf.org_id, timeout=20)
        b.goto(url + "#/mappings")
        b.wait(row_sel("Account"), timeout=20)
        html = b.eval("() => document.documentElement.outerHTML")
        assert token not in html, "the token shows in the page"
        shots("token-mappings")
        b.new_context(username="anyone", password="wrong")
        try:
            refused = b.goto(url)["status"] == 401
        except BrowserError as e:
            refused = "ERR_INVALID_AUTH_CREDENTIALS" in str(e)
        assert refused, "a page with a wrong token"
    finally:
        sfb.stop()


def test_set_up_connection_from_the_browser(page, shots, dream, sfbridge_factory, database, tmp_path):
    """Heroku Connect's first step, "setup connection": the daemon runs with a password
    Salesforce refuses (NEED_AUTHENTICATION); Overview's Set up connection sends the browser to
    the org's login page, the user logs in, Salesforce sends it back to /oauth/callback, which
    keeps the refresh token (the credentials file, 0600) and has sfbridge read its settings
    again: it logs in with the token and loads the mapping."""
    from lib.pgcluster import free_port

    lf, sf = dream
    creds = tmp_path / "credentials"
    sfb = sfbridge_factory(database.url, lf, name="sfbridge", overrides={"SFBRIDGE_CREDENTIALS": str(creds)})
    sfb.init()
    sfb.run("mapping", "add", "Teacher__c", "--fields", "Name,Email__c", "--access", "read_only")
    port = free_port()  # the same port after the reload the new settings cause
    sfb.start(env={"SF_PASSWORD": "not-the-password", "SFBRIDGE_HTTP": f"127.0.0.1:{port}"})
    base = f"http://127.0.0.1:{port}/"
    wait_daemon(sfb, lambda: sfb.status_json()["connection"]["state"] == "NEED_AUTHENTICATION",
                what="the refused login")
    b = page
    b.goto(base + "#/overview")
    b.wait("#overview-cards", has_text="NEED AUTHENTICATION")
    b.click("#setup summary")
    b.wait("#setup-form")
    shots("setup-connection")
    b.click("#setup-go")
    # Salesforce's login page (localforce's), then back
    b.wait_url("/services/oauth2/authorize")
    b.fill("#username", lf.username)
    b.fill("#password", lf.password)
    b.click("button[type=submit]")
    b.wait_url("/oauth/callback")
    b.wait("h1", has_text="Connected")
    assert "authorized" in b.text("#landing-text")
    shots("setup-connected")
    assert creds.exists() and (creds.stat().st_mode & 0o777) == 0o600
    assert "SF_REFRESH_TOKEN" in creds.read_text()
    wait_daemon(sfb, lambda: sfb.mapping_status("Teacher__c")["loaded"]
                and sfb.status_json()["connection"]["state"] != "NEED_AUTHENTICATION",
                timeout=60, what="the reload, a login with the token and the load")
    assert database.count(T) == sf.count("Teacher__c")
    assert "refresh_token grant" in lf.log(200)
    b.click("#back")
    b.wait("#overview-cards", has_text="HEALTHY", timeout=30)
    shots("setup-overview-after")
    # an answer nobody asked for is refused, and says so
    b.goto(base + "oauth/callback?code=x&state=forged")
    b.wait("h1", has_text="No authorization under way")
    sfb.stop()
