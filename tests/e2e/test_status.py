"""`sfbridge status` tells the truth (issue 15): it reads only, counts the table's rows, says
healthy / degraded / down with reasons and exits 0 / 1 / 2 for health checks, and a finished
foreground command or a clean stop leaves no stale daemon or stream error behind."""
import json

import psycopg

from lib import data
from lib.sfbridge import wait_daemon
from lib.writeback import App, map_rw, push_until_done, row

T = "teacher__c"


def _status(sfbridge, *args):
    r = sfbridge.run("status", *args, check=False)
    return r.returncode, r


def test_status_never_creates_anything(sfbridge, database):
    code, r = _status(sfbridge)
    assert code == 2, r
    assert "schema salesforce is not set up for sfbridge" in r.stderr and "sfbridge init" in r.stderr, r.stderr
    assert not database.schema_exists("salesforce"), "status created the schema"


def test_status_works_for_a_read_only_role(sfbridge, database):
    sfbridge.init()
    sfbridge.add("Account", "--fields", "Name")
    sfbridge.once()
    with database.connect() as c:
        c.execute("DROP ROLE IF EXISTS sfb_reader")
        c.execute("CREATE ROLE sfb_reader LOGIN")
        c.execute("GRANT USAGE ON SCHEMA salesforce TO sfb_reader")
        c.execute("GRANT SELECT ON ALL TABLES IN SCHEMA salesforce TO sfb_reader")
    url = database.url.replace("postgres@", "sfb_reader@", 1)
    assert url != database.url, database.url
    try:
        r = sfbridge.run("status", "--json", check=False, env={"DATABASE_URL": url})
        assert r.returncode == 2, r  # no daemon: down, but read fine
        st = json.loads(r.stdout)
        assert st["mappings"][0]["object_name"] == "Account" and st["mappings"][0]["rows"] == 3, st
    finally:
        with database.connect() as c:
            c.execute("DROP OWNED BY sfb_reader")
            c.execute("DROP ROLE sfb_reader")


def test_rows_are_the_tables_rows(sfbridge, database):
    sfbridge.init()
    map_rw(sfbridge, "Teacher__c")
    sfbridge.once()
    with App(database) as app:
        app.insert(T, name="Not yet in Salesforce")
    m = sfbridge.mapping_status("Teacher__c")
    assert m["rows"] == database.count(T) and m["rows_estimated"] is False, m


def test_health_codes_and_reasons(sfbridge, database, sf):
    sfbridge.init()
    map_rw(sfbridge, "Teacher__c")
    sfbridge.once()
    code, r = _status(sfbridge)
    assert code == 2 and "health:     down (the daemon is not running" in r.stdout, r.stdout
    assert "daemon:     not running" in r.stdout, "a finished `run --once` left its heartbeat"
    sfbridge.start()
    wait_daemon(sfbridge, lambda: _status(sfbridge)[0] == 0, what="status healthy with the daemon up")
    with App(database) as app:
        rid = app.insert(T, name="Bad Email", email__c="not an email")
    wait_daemon(sfbridge, lambda: row(database, T, rid)["_hc_lastop"] == "FAILED", what="the write to fail")
    code, r = _status(sfbridge, "--json")
    st = json.loads(r.stdout)
    assert code == 1 and st["health"]["status"] == "degraded", st["health"]
    assert any("1 failed writes" in x for x in st["health"]["reasons"]), st["health"]
    sfbridge.stop()
    code, r = _status(sfbridge)
    assert code == 2 and "daemon:     not running" in r.stdout, r.stdout


def test_a_finished_load_leaves_no_running_daemon_behind(sfbridge):
    sfbridge.init()
    sfbridge.add("Account", "--fields", "Name")
    sfbridge.run("load")
    assert "daemon:     not running" in _status(sfbridge)[1].stdout


def test_a_clean_stop_leaves_no_stream_error(sfbridge, database):
    sfbridge.init()
    sfbridge.add("Teacher__c", "--fields", "Name", "--accelerated")
    sfbridge.start()
    wait_daemon(sfbridge, lambda: (sfbridge.mapping_status("Teacher__c").get("stream") or {}).get("state")
                == "CONNECTED", what="the stream to connect")
    sfbridge.stop()
    st = sfbridge.mapping_status("Teacher__c")["stream"]
    assert st["error"] is None and st["state"] != "CONNECTING", st
    assert "Callback aborted" not in sfbridge.log() and "curl error" not in sfbridge.log(), sfbridge.log()


def test_foreground_commands_ask_the_running_daemon(sfbridge, database, sf):
    """poll, drift, load and push no longer refuse while the daemon runs: they ask it to do the
    work and wait until it is done (issue 15)."""
    sfbridge.init()
    map_rw(sfbridge, "Teacher__c")
    sfbridge.start()
    wait_daemon(sfbridge, lambda: sfbridge.mapping_status("Teacher__c")["state"] == "DATA_SYNCED",
                what="the initial load")
    r = sfbridge.run("load")
    assert "asked it to load" in r.stdout, r.stdout
    new = sf.create("Teacher__c", {"Name": "Asked For"})
    r = sfbridge.run("poll", "Teacher__c")
    assert "asked it to poll" in r.stdout and "done" in r.stdout, r.stdout
    assert database.scalar(f"SELECT count(*) FROM salesforce.{T} WHERE sfid = %s", (new,)) == 1
    with database.connect() as c:  # a row Salesforce has but Postgres lost, as drift repairs it
        c.execute("SET xmlbinary = 'hex'")
        c.execute(f"DELETE FROM salesforce.{T} WHERE sfid = %s", (new,))
    r = sfbridge.run("drift", "Teacher__c")
    assert "asked it to check for drift" in r.stdout, r.stdout
    assert database.scalar(f"SELECT count(*) FROM salesforce.{T} WHERE sfid = %s", (new,)) == 1
    with App(database) as app:
        rid = app.insert(T, name="Pushed Through The Daemon")
    r = sfbridge.run("push")
    assert "asked it to write the waiting changes" in r.stdout, r.stdout
    assert row(database, T, rid)["_hc_lastop"] == "INSERTED"
    sfbridge.stop()


def test_errors_lists_the_failed_writes(sfbridge, database):
    """`sfbridge errors` (Heroku Connect's connect:write-errors): what Salesforce refused, newest
    first, by mapping, as text or JSON (issue 15)."""
    sfbridge.init()
    map_rw(sfbridge, "Teacher__c")
    sfbridge.add("Account", "--fields", "Name")
    sfbridge.once()
    assert "no failed writes in the last 24 hours" in sfbridge.run("errors").stdout
    with App(database) as app:
        rid = app.insert(T, name="Bad Email", email__c="not an email")
    push_until_done(sfbridge, database)
    text = sfbridge.run("errors").stdout
    assert T in text and "INSERT" in text and "email" in text.lower() and "sfbridge retry" in text, text
    (e,) = json.loads(sfbridge.run("errors", "Teacher__c", "--json").stdout)
    assert (e["record_id"], e["state"], e["values"]["name"]) == (rid, "FAILED", "Bad Email"), e
    assert json.loads(sfbridge.run("errors", "Account", "--json").stdout) == []
    assert json.loads(sfbridge.run("errors", "--hours", "1", "--json").stdout)[0]["id"] == e["id"]
    r = sfbridge.fails("errors", "Nope__c")
    assert "Nope__c is not mapped" in r.stderr


def test_a_reload_shows_as_running_not_with_the_last_loads_numbers(sfbridge):
    sfbridge.init()
    sfbridge.add("Account", "--fields", "Name")
    code, r = _status(sfbridge)
    assert "load 0 rows via rest" in r.stdout and "ETA ?" not in r.stdout, r.stdout
    sfbridge.once()
    sfbridge.run("reload", "Account")
    ld = sfbridge.mapping_status("Account")["load"]
    assert ld["reload"] is True and ld["started_at"] is None and ld["done"] == 0, ld
    code, r = _status(sfbridge)
    assert "reload waiting to start" in r.stdout and "via rest" not in r.stdout, r.stdout
    sfbridge.run("load")
    assert sfbridge.mapping_status("Account")["load"] is None


def test_a_running_reload_shows_its_own_progress(sfbridge, sf):
    """While the daemon reloads a mapping, status (and the API the dashboard reads) shows
    the reload's rows staged of Salesforce's count, its speed and how it goes, not the
    numbers of the load before it; done, the mapping shows no load at all."""
    n = 1_000
    sf.load_records("Teacher__c", data.teachers(n), batch=1_000)
    total = sf.count("Teacher__c")
    sfbridge.set(SFBRIDGE_REST_BATCH=200)
    sfbridge.init()
    sfbridge.add("Teacher__c", "--fields", "Name")
    sfbridge.once()
    sfbridge.start()
    sf.set_faults([{"path": "/services/data/v60.0/query*", "latency_ms": 400}])
    sfbridge.run("reload", "Teacher__c")
    wait_daemon(sfbridge, lambda: 0 < ((sfbridge.mapping_status("Teacher__c")["load"] or {}).get("done")
                                       or 0) < total, what="a reload midway", interval=0.05, max_interval=0.05)
    ld = sfbridge.mapping_status("Teacher__c")["load"]
    assert ld["reload"] is True and ld["total"] == total and ld["via"] == "rest" and ld["started_at"], ld
    code, r = _status(sfbridge)
    assert "reload " in r.stdout and f"/{total} rows via rest" in r.stdout, r.stdout
    assert "readers see the old rows" in r.stdout, r.stdout
    sf.clear_faults()
    wait_daemon(sfbridge, lambda: sfbridge.mapping_status("Teacher__c")["load"] is None,
                what="the reload", timeout=120)
    # the daemon polls on its own: a poll may be running at any moment (POLLING_SF_CHANGES)
    wait_daemon(sfbridge, lambda: sfbridge.mapping_status("Teacher__c")["state"] == "DATA_SYNCED",
                what="the mapping back to DATA_SYNCED")
    assert sfbridge.mapping_status("Teacher__c")["rows"] == total


def test_status_reads_a_catalog_an_older_sfbridge_made(sfbridge, database):
    """During an upgrade the old daemon still runs and its catalog lacks the columns the new
    sfbridge adds when it starts (ADD COLUMN IF NOT EXISTS): the new binary's status reads
    them as unknown instead of failing on the first one missing."""
    sfbridge.init()
    sfbridge.add("Account", "--fields", "Name")
    sfbridge.once()
    added = ["reload_done", "reload_total", "reload_via", "reload_started_at", "sf_rows",
             "sf_rows_at", "polls", "overlap_settled", "replay_id", "stream_state", "stream_channel",
             "stream_events", "stream_fallbacks", "last_event_at", "stream_lag_ms", "stream_error"]
    database.execute("ALTER TABLE salesforce._sfbridge_mapping "
                     + ", ".join(f"DROP COLUMN {c} CASCADE" for c in added))
    r = sfbridge.run("status", "--json", check=False)
    assert r.returncode in (0, 1, 2) and "does not exist" not in r.stderr, r.stderr
    (m,) = json.loads(r.stdout)["mappings"]
    assert (m["object_name"], m["state"], m["sf_rows"], m["polls"]) == ("Account", "DATA_SYNCED", None, None), m
    text = sfbridge.run("status", check=False)
    assert "Account" in text.stdout and "DATA_SYNCED" in text.stdout, text.stderr
    sfbridge.run("reload", "Account")  # and a reload asked of the old catalog shows as waiting
    assert "reload waiting to start" in sfbridge.run("status", check=False).stdout


def test_salesforce_rows_beside_the_tables(sfbridge, database, sf):
    """status shows Salesforce's count of each object (from the last load, reload or drift
    check) beside the table's rows, as Heroku Connect's dashboard does (issue 15)."""
    sfbridge.init()
    sfbridge.add("Account", "--fields", "Name")
    sfbridge.once()
    m = sfbridge.mapping_status("Account")
    assert m["sf_rows"] == sf.count("Account") == m["rows"] and m["sf_rows_at"], m
    sf.create("Account", {"Name": "Counted Later"})
    sfbridge.run("drift", "Account")
    assert sfbridge.mapping_status("Account")["sf_rows"] == sf.count("Account")
    text = sfbridge.run("status", check=False).stdout
    assert "SF ROWS" in text, text
