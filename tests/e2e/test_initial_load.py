"""The initial load (issue 13): a Bulk load fills a shadow table and takes the
table's place in one transaction, so apps see an empty table and then the whole
load, never a part; the table ends laid out exactly as before; what apps wrote
into the table before the load, and the objects they hang on it, stay
(docs/sfbridge.md, "Initial load")."""
import threading

import pytest

from lib import data
from lib.localforce import RESULT_PAGE_ROWS
from lib.compare import assert_pg_equals_sf
from lib.sfbridge import wait_daemon
from lib.writeback import App, map_rw, push_until_done, row

T = "teacher__c"
RESULTS = "/services/data/v60.0/jobs/query/*/results"


def _layout(database, table=T):
    """Everything about the table an app could notice, but its rows."""
    q = database.query
    oid = f"'salesforce.{table}'::regclass"
    return {
        "columns": q("SELECT attname, format_type(atttypid, atttypmod), pg_get_expr(d.adbin, d.adrelid)"
                     " FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum"
                     f" WHERE a.attrelid = {oid} AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum"),
        "indexes": q(f"SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'salesforce'"
                     f" AND tablename = '{table}' ORDER BY 1"),
        "constraints": q(f"SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = {oid}"
                         " ORDER BY 1"),
        "triggers": q(f"SELECT tgname, pg_get_triggerdef(oid) FROM pg_trigger WHERE tgrelid = {oid}"
                      " AND NOT tgisinternal ORDER BY 1"),
        "sequence": q(f"SELECT pg_get_serial_sequence('salesforce.{table}', 'id')"),
        "reader may select": q(f"SELECT has_table_privilege('e2e_reader', {oid}, 'SELECT')"),
    }


def _reader_role(database):
    database.execute("DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'e2e_reader')"
                     " THEN CREATE ROLE e2e_reader; END IF; END $$")


def _shadows(database):
    return database.query("SELECT relname FROM pg_class WHERE relname LIKE '\\_sfbridge\\_load\\_%'")


def _while(look, every, fn):
    """Run fn() while another thread calls look() every `every` seconds."""
    stop = threading.Event()

    def watch():
        while not stop.is_set():
            look()
            stop.wait(every)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        return fn()
    finally:
        stop.set()
        watcher.join()


def _load_while(sfbridge, look, every):
    """Start the daemon and call look() every `every` seconds from another thread
    until the load is done; then stop the daemon."""
    def load():
        sfbridge.start()
        wait_daemon(sfbridge, lambda: sfbridge.mapping_state("Teacher__c") == "DATA_SYNCED", timeout=120,
                    what="the load")

    _while(look, every, load)
    sfbridge.stop()


def test_bulk_load_is_seen_whole_and_the_table_keeps_its_layout(sfbridge, database, sf):
    n = 20_000
    sf.load_records("Teacher__c", data.teachers(n), batch=10_000)
    total = n + 5
    sfbridge.set(SFBRIDGE_BULK_THRESHOLD=10, SFBRIDGE_BULK_PAGE=2000)
    sfbridge.init()
    sfbridge.add("Teacher__c", "--all-fields", "--index", "Email__c")
    _reader_role(database)
    database.execute("GRANT SELECT ON salesforce.teacher__c TO e2e_reader")
    before = _layout(database)
    sf.set_faults([{"path": RESULTS, "latency_ms": 150}])
    seen, partial = set(), []

    def look():  # an app reading while the load runs
        seen.add(database.count(T))
        done = database.scalar("SELECT load_done FROM salesforce._sfbridge_mapping")
        if done and 0 < done < total:
            partial.append(done)

    _load_while(sfbridge, look, every=0.01)
    assert partial, "the watcher must have looked while the load was midway"
    assert seen <= {0, total}, f"apps saw a part of the load: {sorted(seen)}"
    assert assert_pg_equals_sf(sf, database, "Teacher__c") == total
    assert database.count(T, where="_hc_lastop IS DISTINCT FROM 'SYNCED' OR _hc_err IS NOT NULL") == 0
    assert _layout(database) == before
    assert _shadows(database) == []
    assert "move in" not in sfbridge.log()


@pytest.mark.parametrize("version,fetchers,together", [("60.0", 4, 3), ("60.0", 1, 1), ("57.0", 4, 1)])
def test_result_pages_are_fetched_side_by_side(sfbridge, database, sf, version, fetchers, together):
    """The job's resultPages listing (API 58.0 and later) lets a load fetch
    SFBRIDGE_LOAD_FETCHERS pages at once: at a real org's latency several wait on
    Salesforce together. With the setting at 1, or an API version without the
    listing, pages come one after the other. Either way the table ends exact."""
    n = 20_000
    sf.load_records("Teacher__c", data.teachers(n), batch=10_000)
    sfbridge.set(SFBRIDGE_BULK_THRESHOLD=10, SFBRIDGE_BULK_PAGE=2000, SFBRIDGE_LOAD_FETCHERS=fetchers,
                 SF_API_VERSION=version)
    sfbridge.init()
    sfbridge.add("Teacher__c")
    sf.set_faults([{"path": f"/services/data/v{version}/jobs/query/*/results", "latency_ms": 300}])
    most = [0]

    def look():  # how many results pages wait on Salesforce at once
        most[0] = max(most[0], sf.fault_state()["delayed"])

    _load_while(sfbridge, look, every=0.02)
    assert most[0] >= together if together > 1 else most[0] == 1, most
    # every results page counts against the mapping's API budget, whichever client fetched it
    pages = -(-(n + 5) // RESULT_PAGE_ROWS)
    calls = database.scalar("SELECT api_calls FROM salesforce._sfbridge_mapping")
    assert calls >= pages + (2 if fetchers > 1 and version == "60.0" else 0), calls
    assert assert_pg_equals_sf(sf, database, "Teacher__c") == n + 5
    assert _shadows(database) == []


@pytest.mark.parametrize("work,fetchers,together", [("reload", 4, 3), ("reload", 1, 1), ("drift", 4, 3)])
def test_a_reload_or_drift_check_fetches_listed_pages_side_by_side(sfbridge, database, sf, work, fetchers,
                                                                   together):
    """A reload's and a drift check's Bulk job is read as a load's is: where the job lists
    its result pages, SFBRIDGE_LOAD_FETCHERS of them wait on Salesforce at once (one at a
    time with the setting at 1), and the table ends exact (the rows deleted behind
    sfbridge's back come back)."""
    n = 20_000
    sf.load_records("Teacher__c", data.teachers(n), batch=10_000)
    sfbridge.set(SFBRIDGE_BULK_THRESHOLD=10, SFBRIDGE_BULK_PAGE=2000, SFBRIDGE_LOAD_FETCHERS=fetchers)
    sfbridge.init()
    sfbridge.add("Teacher__c")
    sfbridge.run("load")
    database.execute(f"DELETE FROM salesforce.{T} WHERE id % 100 = 0")
    sf.set_faults([{"path": RESULTS, "latency_ms": 300}])
    most = [0]

    def look():
        most[0] = max(most[0], sf.fault_state()["delayed"])

    if work == "reload":
        sfbridge.run("reload", "Teacher__c")
        _while(look, 0.02, lambda: sfbridge.run("load", timeout=300))
    else:
        _while(look, 0.02, lambda: sfbridge.run("drift", "Teacher__c", timeout=300))
    assert most[0] >= together if together > 1 else most[0] == 1, most
    sf.clear_faults()
    assert assert_pg_equals_sf(sf, database, "Teacher__c") == n + 5


def test_app_rows_written_before_the_load_stay(sfbridge, database, sf):
    """An app's row written between `mapping add` and the load was wiped by the
    load's TRUNCATE (a race seen in test_notifications); REST and Bulk."""
    for threshold, obj, table in ((10_000, "Teacher__c", T), (1, "Account", "account")):
        sfbridge.set(SFBRIDGE_BULK_THRESHOLD=threshold)
        sfbridge.init()
        map_rw(sfbridge, obj)
        with App(database) as app:
            rid = app.insert(table, name=f"Early {obj}")
        sfbridge.run("load")
        assert row(database, table, rid)["name"] == f"Early {obj}", f"{obj}: the app's row must stay"
        push_until_done(sfbridge, database)
        sfbridge.run("poll")
        assert row(database, table, rid)["sfid"], f"{obj}: the app's row reaches Salesforce"
        assert_pg_equals_sf(sf, database, obj)
    assert _shadows(database) == []


def test_a_table_with_a_view_gets_the_rows_moved_in(sfbridge, database, sf):
    sfbridge.set(SFBRIDGE_BULK_THRESHOLD=1)
    sfbridge.init()
    sfbridge.add("Teacher__c")
    database.execute("CREATE VIEW public.teacher_names AS SELECT name FROM salesforce.teacher__c")
    sfbridge.run("load")
    assert database.scalar("SELECT count(*) FROM public.teacher_names") == 5
    assert assert_pg_equals_sf(sf, database, "Teacher__c") == 5
    assert database.count(T, where="_hc_lastop IS DISTINCT FROM 'SYNCED'") == 0
    assert _shadows(database) == []


def _kill_a_load_midway(sfbridge, database, sf, **settings):
    """A Bulk load of 20,005 Teacher__c records (pages of 2,000 answered 300 ms late, and
    the settings given) killed with -9 midway; apps saw none of it. Returns the total."""
    n = 20_000
    sf.load_records("Teacher__c", data.teachers(n), batch=10_000)
    total = n + 5
    sfbridge.set(SFBRIDGE_BULK_THRESHOLD=10, SFBRIDGE_BULK_PAGE=2000, **settings)
    sfbridge.init()
    sfbridge.add("Teacher__c")
    sf.set_faults([{"path": RESULTS, "latency_ms": 300}])
    sfbridge.start()
    wait_daemon(sfbridge, lambda: 0 < (database.scalar("SELECT load_done FROM salesforce._sfbridge_mapping")
                                       or 0) < total, what="a load midway", interval=0.02, max_interval=0.02)
    sfbridge.kill9()
    assert database.count(T) == 0, "apps must not see a part of the load"
    return total


@pytest.mark.parametrize("drop,workers,fetchers", [(False, 1, 1), (False, 3, 4), (True, 2, 1), (True, 2, 3)])
def test_a_load_killed_midway_resumes_into_its_shadow(sfbridge, database, sf, drop, workers, fetchers):
    """kill -9 midway: the table stays empty, and the next run resumes (or, when
    the shadow was dropped behind sfbridge's back, starts over) and ends exact, whether
    pages were COPYed one at a time or side by side (they commit in order), and
    fetched one after the other or listed by resultPages and fetched side by side."""
    total = _kill_a_load_midway(sfbridge, database, sf, SFBRIDGE_LOAD_WORKERS=workers,
                                SFBRIDGE_LOAD_FETCHERS=fetchers)
    at = database.scalar("SELECT load_locator FROM salesforce._sfbridge_mapping")
    # where it resumes: a listed page's result URL, or a locator one page names for the next
    assert at.startswith("/services/data/v60.0/jobs/query/") == (fetchers > 1), at
    if drop:
        database.execute(f"DROP TABLE salesforce.{_shadows(database)[0][0]}")
    sf.clear_faults()
    sfbridge.once(timeout=600, check=False)
    if drop:  # the first run gives up the lost position; the next loads it all
        sfbridge.once(timeout=600)
    assert assert_pg_equals_sf(sf, database, "Teacher__c") == total
    assert sfbridge.mapping_state("Teacher__c") == "DATA_SYNCED"
    assert _shadows(database) == []


def test_a_load_whose_pages_hold_more_records_than_its_job_returned_stops(sfbridge, database, sf):
    """Pages that hold more records than the Bulk job returned (a locator that names pages
    again; here the resume position rewound to the first page, "MA" being localforce's
    locator for offset 0) stop the load at the page that overflows, with an error that
    says so, and it starts over: it does not load on for ever, and apps see no part of it
    until the load that starts over ends exact."""
    total = _kill_a_load_midway(sfbridge, database, sf, SFBRIDGE_LOAD_FETCHERS=1)
    database.execute("UPDATE salesforce._sfbridge_mapping SET load_locator = 'MA'")
    sf.clear_faults()
    r = sfbridge.once(timeout=600, check=False)
    assert f"more records than the {total} it returned" in r.stderr, r.stderr[-2000:]
    assert "restarting the load" in r.stderr, r.stderr[-2000:]
    assert database.count(T) == 0, "apps must not see a part of the load"
    sfbridge.once(timeout=600)
    assert assert_pg_equals_sf(sf, database, "Teacher__c") == total
    assert sfbridge.mapping_state("Teacher__c") == "DATA_SYNCED"
    assert _shadows(database) == []


def test_fields_added_while_a_bulk_load_runs_are_backfilled(sfbridge, database, sf):
    """`mapping edit --add-fields` during a Bulk load: the load goes on with the fields it
    started with, its rows are moved in (the table has a column the shadow lacks), and the
    new column is backfilled."""
    n = 20_000
    sf.load_records("Teacher__c", data.teachers(n), batch=10_000)
    total = n + 5
    sfbridge.set(SFBRIDGE_BULK_THRESHOLD=10, SFBRIDGE_BULK_PAGE=2000)
    sfbridge.init()
    sfbridge.add("Teacher__c", "--fields", "Name")
    sf.set_faults([{"path": RESULTS, "latency_ms": 600}])  # the edit lands midway
    sfbridge.start()
    wait_daemon(sfbridge, lambda: 0 < (database.scalar("SELECT load_done FROM salesforce._sfbridge_mapping")
                                       or 0) < total, what="a load midway", interval=0.02, max_interval=0.02)
    sfbridge.run("mapping", "edit", "Teacher__c", "--add-fields", "Email__c")
    sf.clear_faults()
    wait_daemon(sfbridge, lambda: sfbridge.mapping_state("Teacher__c") == "DATA_SYNCED", timeout=180,
                what="the load")
    sfbridge.stop()
    assert assert_pg_equals_sf(sf, database, "Teacher__c") == total
    no_email = len(sf.query("SELECT Id FROM Teacher__c WHERE Email__c = null"))
    assert database.count(T, where="email__c IS NULL") == no_email < 10
    assert "move in" in sfbridge.log()
    assert _shadows(database) == []


@pytest.mark.parametrize("api", ["bulk", "rest"])
def test_a_load_killed_midway_resumes_after_fields_were_added(sfbridge, database, sf, api):
    """kill -9 midway, then `mapping edit --add-fields` before the next run: the pages
    Salesforce still holds lack the new column, so a Bulk load starts over with the
    mapping's fields (it neither fails on the old header nor leaves the column empty), and
    a REST load goes on and backfills the column."""
    n = 20_000 if api == "bulk" else 4_000
    sf.load_records("Teacher__c", data.teachers(n), batch=10_000)
    total = n + 5
    if api == "bulk":
        sfbridge.set(SFBRIDGE_BULK_THRESHOLD=10, SFBRIDGE_BULK_PAGE=2000)
        fault = RESULTS
    else:
        sfbridge.set(SFBRIDGE_BULK_THRESHOLD=1_000_000, SFBRIDGE_REST_BATCH=200)
        fault = "/services/data/v60.0/query*"
    sfbridge.init()
    sfbridge.add("Teacher__c", "--fields", "Name")
    sf.set_faults([{"path": fault, "latency_ms": 300}])
    sfbridge.start()
    wait_daemon(sfbridge, lambda: 0 < (database.scalar("SELECT load_done FROM salesforce._sfbridge_mapping")
                                       or 0) < total, what="a load midway", interval=0.02, max_interval=0.02)
    sfbridge.kill9()
    sfbridge.run("mapping", "edit", "Teacher__c", "--add-fields", "Email__c")
    sf.clear_faults()
    sfbridge.once(timeout=600, check=False)
    if sfbridge.mapping_state("Teacher__c") != "DATA_SYNCED":  # the first run gave the old job up
        sfbridge.once(timeout=600)
    assert sfbridge.mapping_state("Teacher__c") == "DATA_SYNCED"
    assert assert_pg_equals_sf(sf, database, "Teacher__c") == total
    no_email = len(sf.query("SELECT Id FROM Teacher__c WHERE Email__c = null"))
    assert database.count(T, where="email__c IS NULL") == no_email < 10
    assert _shadows(database) == []
