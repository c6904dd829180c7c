"""Sync from Salesforce to Postgres: initial load (REST and Bulk), incremental
polls, deletions and tombstones, backfill of added fields, states, pause,
resume, reload and the daemon (docs/sfbridge.md)."""
import datetime as dt
import re
import threading

from lib import data
from lib.compare import assert_pg_equals_sf, parse_sf_datetime, wait_pg_equals_sf
from lib.sfbridge import wait_daemon
from lib.wait import wait_for


def _by_name(sf, obj="Teacher__c"):
    return {r["Name"]: r["Id"] for r in sf.query(f"SELECT Id, Name FROM {obj}")}


def _pg_ids(database, table="teacher__c"):
    """{sfid: Postgres id}."""
    return dict(database.query(f'SELECT sfid, id FROM salesforce."{table}"'))


def test_initial_load_equals_salesforce(sfbridge, database, sf):
    sfbridge.init()
    sfbridge.add("Teacher__c")
    sfbridge.add("Account")
    sfbridge.add("Order")
    sfbridge.once()
    assert assert_pg_equals_sf(sf, database, "Teacher__c") == 5
    assert assert_pg_equals_sf(sf, database, "Account") == 3
    assert assert_pg_equals_sf(sf, database, "Order") == 2
    for table in ("teacher__c", "account", "order"):
        assert database.count(table, where="_hc_lastop IS DISTINCT FROM 'SYNCED'") == 0, \
            f"rows of {table} written by sfbridge must have _hc_lastop = 'SYNCED'"
        assert database.count(table, where="_hc_err IS NOT NULL") == 0


def test_load_command_runs_pending_loads(sfbridge, database, sf):
    sfbridge.init()
    sfbridge.add("Account")
    sfbridge.run("load")
    assert_pg_equals_sf(sf, database, "Account")


EDGE = {
    "Name": "Edge — “curly” 'single' \\ backslash",
    "First_Name__c": "Ünïcødé 漢字 🎓",
    "Bio__c": "line one\nline two\r\nline three\ttab, \"quoted\"; semi;colon\n" + "long " * 1200,
    "Notes__c": "short note",
    "Email__c": "edge.case+tag@school.test",
    "Phone__c": "+1 (510) 555-0000 ext. 12",
    "Website__c": "https://school.test/path?q=1&r=a%20b#frag",
    "Subject__c": "Science",
    "Languages__c": "French;Mandarin",
    "Active__c": False,
    "Years__c": -2147483647,
    "Rating__c": -98765.432109,
    "Salary__c": 0.01,
    "Workload__c": 33.33,
    "Hire_Date__c": "1970-01-01",
    "Last_Login__c": "2024-07-01T23:30:00.001-05:00",
    "Start_Time__c": "12:34:56.789Z",
    "Employee_Number__c": "EDGE-1",
}

EDGE_EXPECTED = {
    "name": EDGE["Name"],
    "first_name__c": EDGE["First_Name__c"],
    "bio__c": EDGE["Bio__c"],
    "notes__c": "short note",
    "email__c": EDGE["Email__c"],
    "phone__c": EDGE["Phone__c"],
    "website__c": EDGE["Website__c"],
    "subject__c": "Science",
    "languages__c": "French;Mandarin",
    "active__c": False,
    "years__c": -2147483647,
    "rating__c": -98765.432109,
    "salary__c": 0.01,
    "workload__c": 33.33,
    "hire_date__c": dt.date(1970, 1, 1),
    "last_login__c": dt.datetime(2024, 7, 2, 4, 30, 0, 1000),
    "start_time__c": dt.time(12, 34, 56, 789000),
    "employee_number__c": "EDGE-1",
    "isdeleted": False,
}

# Seed records of the org file, as Postgres must hold them.
SEED_EXPECTED = {
    "Maria Gonzalez": {"bio__c": "Teaches algebra.\nLoves chess; \"quotes\" and, commas.",
                       "languages__c": "English;Spanish", "active__c": True, "years__c": 12, "rating__c": 4.125,
                       "salary__c": 72000.5, "workload__c": 87.5, "hire_date__c": dt.date(2012, 8, 20),
                       "last_login__c": dt.datetime(2024, 3, 1, 8, 15, 30, 250000),
                       "start_time__c": dt.time(8, 30)},
    "Kwame Mensah": {"active__c": False, "years__c": 0, "rating__c": -1.5, "salary__c": 0.0,
                     "hire_date__c": dt.date(2024, 2, 29),
                     "last_login__c": dt.datetime(2023, 12, 31, 23, 59, 59, 999000),
                     "start_time__c": dt.time(23, 59, 59, 999000), "languages__c": "English;French;Arabic"},
    "Zoë Müller-Łukasz": {"first_name__c": "Zoë", "bio__c": "Ünïcödé ✓ 漢字 emoji 🎓", "years__c": 2147483647,
                          "rating__c": 123456.789012, "salary__c": 9999999999.99,
                          "last_login__c": dt.datetime(2024, 6, 15, 10, 0, 0), "start_time__c": dt.time(0, 0),
                          "workload__c": None, "languages__c": None},
    "Blank Fields": {"first_name__c": None, "bio__c": None, "email__c": None, "active__c": False,
                     "years__c": None, "rating__c": None, "hire_date__c": None, "last_login__c": None,
                     "start_time__c": None, "school__c": None},
    "Sam O'Neil": {"years__c": -3, "rating__c": 0.000001, "workload__c": 100.0},
}


def test_every_field_type_is_exact(sfbridge, database, sf):
    school = _by_name(sf, "Account")["Lincoln High"]
    edge_id = sf.create("Teacher__c", {**EDGE, "School__c": school})
    sfbridge.init()
    sfbridge.add("Teacher__c")
    sfbridge.once()
    rows = database.rows_by_sfid("teacher__c")
    problems = []

    def check(label, row, expected):
        for col, want in expected.items():
            got = row.get(col, "<no column>")
            if type(got) is not type(want) or got != want:
                problems.append(f"{label}.{col}: expected {want!r} ({type(want).__name__}), "
                                f"got {got!r} ({type(got).__name__})")

    check("edge", rows[edge_id], {**EDGE_EXPECTED, "school__c": school})
    names = _by_name(sf)
    for name, expected in SEED_EXPECTED.items():
        check(name, rows[names[name]], expected)
    assert not problems, "values differ from Salesforce's:\n" + "\n".join(problems)
    rec = sf.get("Teacher__c", edge_id, ["SystemModstamp", "CreatedDate"])
    assert rows[edge_id]["systemmodstamp"] == parse_sf_datetime(rec["SystemModstamp"])
    assert rows[edge_id]["createddate"] == parse_sf_datetime(rec["CreatedDate"])
    assert_pg_equals_sf(sf, database, "Teacher__c")


def test_bulk_initial_load(sfbridge, database, sf):
    sf.load_records("Teacher__c", data.teachers(400))
    sfbridge.set(SFBRIDGE_BULK_THRESHOLD=10)
    sfbridge.init()
    sfbridge.add("Teacher__c")
    sfbridge.add("Account")
    # With the Bulk API down, the 405 records (over the threshold) cannot load, while the
    # 3 Accounts (under it) load through REST. sfbridge deletes finished jobs, so this is
    # how the test sees which path each load took.
    sf.set_faults([{"path": "/services/data/v60.0/jobs/*", "error_rate": 1.0, "status": 503}])
    sfbridge.run("run", "--once", check=False, timeout=120)
    assert_pg_equals_sf(sf, database, "Account")
    assert database.count("teacher__c") == 0, "405 records over a threshold of 10 must load through Bulk API 2.0"
    sf.clear_faults()
    sfbridge.once()
    assert assert_pg_equals_sf(sf, database, "Teacher__c") == 405
    assert sfbridge.mapping_state("Teacher__c") == "DATA_SYNCED"


def test_incremental_create_update_delete(sfbridge, database, sf):
    sfbridge.init()
    sfbridge.add("Teacher__c")
    sfbridge.once()
    ids_before = _pg_ids(database)
    names = _by_name(sf)
    new = sf.create_many("Teacher__c", data.teachers(4, prefix="N"))
    sf.update("Teacher__c", names["Maria Gonzalez"],
              {"Years__c": 13, "Subject__c": None, "Last_Login__c": "2025-01-02T03:04:05.678Z"})
    sf.update("Teacher__c", names["Kwame Mensah"], {"Name": "Kwame A. Mensah", "Active__c": True})
    sf.delete("Teacher__c", names["Blank Fields"])
    sf.delete("Teacher__c", new[0])  # created and deleted between two polls
    sfbridge.run("poll")
    assert_pg_equals_sf(sf, database, "Teacher__c")
    rows = database.rows_by_sfid("teacher__c")
    assert names["Blank Fields"] not in rows and new[0] not in rows
    maria = rows[names["Maria Gonzalez"]]
    assert (maria["years__c"], maria["subject__c"]) == (13, None)
    assert maria["last_login__c"] == dt.datetime(2025, 1, 2, 3, 4, 5, 678000)
    assert rows[names["Kwame Mensah"]]["name"] == "Kwame A. Mensah"
    ids_after = _pg_ids(database)
    for sfid in (names["Maria Gonzalez"], names["Kwame Mensah"]):
        assert ids_after[sfid] == ids_before[sfid], "an update must change the row in place (same id)"
    # a poll with nothing new changes nothing
    sfbridge.run("poll")
    assert _pg_ids(database) == ids_after
    assert_pg_equals_sf(sf, database, "Teacher__c")


def test_poll_of_one_object(sfbridge, database, sf):
    sfbridge.init()
    sfbridge.add("Teacher__c")
    sfbridge.add("Account")
    sfbridge.once()
    sf.create("Teacher__c", {"Name": "Only Teacher", "Employee_Number__c": "P-1"})
    sf.create("Account", {"Name": "Only Account", "External_Id__c": "P-1"})
    sfbridge.run("poll", "Teacher__c")
    assert database.count("teacher__c", where="name = 'Only Teacher'") == 1
    assert database.count("account", where="name = 'Only Account'") == 0
    sfbridge.run("poll", "Account")
    assert_pg_equals_sf(sf, database, "Account")


def test_same_millisecond_changes_across_polls(sfbridge, database, sf):
    """Records written by one transaction share a SystemModstamp; a poll that
    lands between two such batches must not lose the second one."""
    sfbridge.init()
    sfbridge.add("Teacher__c")
    sfbridge.once()
    for round_ in range(3):
        sf.create_many("Teacher__c", data.teachers(30, start=round_ * 30, prefix="S"))
        sfbridge.run("poll")
        sf.update_many("Teacher__c", [{"Id": i, "Years__c": round_}
                                      for i in sf.ids("Teacher__c", "Employee_Number__c LIKE 'S-%'")])
        sfbridge.run("poll")
        assert_pg_equals_sf(sf, database, "Teacher__c")


def test_an_idle_poll_after_a_burst_is_one_call_that_fetches_nothing(sfbridge, database, sf):
    """Issue 13: the overlap before the watermark is read again only until it has settled, so a
    poll with nothing new costs one API call and fetches no records, however many records share
    the seconds before the watermark (before: every poll re-read them all)."""
    overlap_ms = 1000
    sfbridge.set(SFBRIDGE_REST_BATCH=200, SFBRIDGE_POLL_OVERLAP_MS=overlap_ms, SFBRIDGE_LOG_LEVEL="debug")
    sfbridge.init()
    sfbridge.add("Teacher__c", "--fields", "Name")
    sfbridge.once()
    sf.create_many("Teacher__c", data.teachers(450, prefix="B"))
    sfbridge.run("poll")
    assert_pg_equals_sf(sf, database, "Teacher__c")
    newest = parse_sf_datetime(sf.query("SELECT SystemModstamp FROM Teacher__c ORDER BY SystemModstamp DESC"
                                        " LIMIT 1")[0]["SystemModstamp"])
    # a poll that starts once the overlap has passed (Salesforce's clock is known to the second)
    settle = newest + dt.timedelta(milliseconds=overlap_ms + 1300)
    wait_for(lambda: dt.datetime.now(dt.timezone.utc).replace(tzinfo=None) > settle, timeout=30, what="the overlap to pass")
    sfbridge.run("poll")

    def calls():
        return sfbridge.mapping_status("Teacher__c")["api_calls_today"]

    for _ in range(2):
        before = calls()
        r = sfbridge.run("poll")
        pages = re.findall(r"poll page of (\d+) records", r.stderr)
        assert pages == ["0"], r.stderr
        assert calls() - before == 1
    # and a change after that is found, as is one stamped at the very watermark's millisecond
    rec = sf.query("SELECT Id FROM Teacher__c ORDER BY SystemModstamp DESC LIMIT 1")[0]
    sf.update("Teacher__c", rec["Id"], {"Name": "After the burst"})
    sfbridge.run("poll")
    assert database.count("teacher__c", where="name = 'After the burst'") == 1
    assert_pg_equals_sf(sf, database, "Teacher__c")


def test_a_change_committed_late_inside_the_overlap_still_arrives(sfbridge, database, sf):
    """Issue 13: a change Salesforce stamps before the watermark but that becomes visible only
    after the poll that moved the watermark past its stamp (a long transaction; localforce's
    admin load with committed_ms_ago) is found by the next poll, idle polls notwithstanding;
    once the window has settled, polls are one call again."""
    overlap_ms = 6000
    sfbridge.set(SFBRIDGE_POLL_OVERLAP_MS=overlap_ms, SFBRIDGE_LOG_LEVEL="debug")
    sfbridge.init()
    sfbridge.add("Teacher__c", "--fields", "Name")
    sfbridge.once()
    rec = sf.query("SELECT Id FROM Teacher__c ORDER BY SystemModstamp DESC LIMIT 1")[0]
    sf.update("Teacher__c", rec["Id"], {"Name": "Moves the watermark"})
    sfbridge.run("poll")
    assert database.count("teacher__c", where="name = 'Moves the watermark'") == 1
    watermark = parse_sf_datetime(sf.get("Teacher__c", rec["Id"], ["SystemModstamp"])["SystemModstamp"])
    sf.load_records("Teacher__c", data.teachers(1, prefix="L"), committed_ms_ago=4000)
    late = sf.query("SELECT Name, SystemModstamp FROM Teacher__c WHERE Employee_Number__c LIKE 'L-%'")[0]
    stamp = parse_sf_datetime(late["SystemModstamp"])
    assert watermark - dt.timedelta(milliseconds=overlap_ms) < stamp < watermark, \
        f"the late change must be stamped inside the overlap before the watermark: {stamp} vs {watermark}"
    sfbridge.run("poll")
    assert database.count("teacher__c", where="name = %s", params=(late["Name"],)) == 1, \
        "the change committed late must arrive"
    settle = watermark + dt.timedelta(milliseconds=overlap_ms + 1300)
    wait_for(lambda: dt.datetime.now(dt.timezone.utc).replace(tzinfo=None) > settle, timeout=30,
             what="the overlap to pass")
    sfbridge.run("poll")
    before = sfbridge.mapping_status("Teacher__c")["api_calls_today"]
    r = sfbridge.run("poll")
    assert re.findall(r"poll page of (\d+) records", r.stderr) == ["0"], r.stderr
    assert sfbridge.mapping_status("Teacher__c")["api_calls_today"] - before == 1
    assert_pg_equals_sf(sf, database, "Teacher__c")


def test_tombstones_keep_deleted_rows(sfbridge, database, sf):
    sfbridge.init()
    sfbridge.add("Teacher__c", "--all-fields", "--tombstones")
    sfbridge.once()
    names = _by_name(sf)
    gone = [names["Maria Gonzalez"], names["Sam O'Neil"]]
    for i in gone:
        sf.delete("Teacher__c", i)
    sfbridge.run("poll")
    rows = database.rows_by_sfid("teacher__c")
    for i in gone:
        assert i in rows, "a deleted record must stay as a tombstone"
        assert rows[i]["isdeleted"] is True
    assert database.count("teacher__c", where="isdeleted") == 2
    assert_pg_equals_sf(sf, database, "Teacher__c", deleted="tombstone")
    # without tombstones the rows go
    sfbridge.run("mapping", "edit", "Teacher__c", "--no-tombstones")
    sf.delete("Teacher__c", names["Kwame Mensah"])
    sfbridge.run("poll")
    assert names["Kwame Mensah"] not in database.rows_by_sfid("teacher__c")


def test_field_added_in_salesforce_then_mapped_is_backfilled(sfbridge, database, sf):
    sf.load_records("Teacher__c", data.teachers(50))
    sfbridge.init()
    sfbridge.add("Teacher__c")
    sfbridge.once()
    # existing records get the default without a new SystemModstamp: only a backfill can fill the column
    sf.add_field("Teacher__c", "Grade__c", "int", default=7)
    sf.add_field("Teacher__c", "Mentor__c", "string", length=40, default="none yet")
    modstamps = {r["Id"]: r["SystemModstamp"] for r in sf.query("SELECT Id, SystemModstamp FROM Teacher__c")}
    sfbridge.run("mapping", "edit", "Teacher__c", "--add-fields", "Grade__c,Mentor__c")
    cols = database.columns("teacher__c")
    assert cols.get("grade__c") == "integer" and cols.get("mentor__c") == "character varying(40)", \
        "mapping edit --add-fields must alter the table at once"
    sfbridge.once()
    assert database.count("teacher__c", where="grade__c = 7 AND mentor__c = 'none yet'") == 55
    assert_pg_equals_sf(sf, database, "Teacher__c")
    assert modstamps == {r["Id"]: r["SystemModstamp"]
                         for r in sf.query("SELECT Id, SystemModstamp FROM Teacher__c")}
    # and the new columns follow later changes
    sf.update("Teacher__c", _by_name(sf)["Maria Gonzalez"], {"Grade__c": 9})
    sfbridge.run("poll")
    assert_pg_equals_sf(sf, database, "Teacher__c")


def test_status_shows_states(sfbridge, database, sf):
    sfbridge.init()
    sfbridge.add("Teacher__c")
    assert sfbridge.mapping_state("Teacher__c") == "INITIAL"
    sfbridge.once()
    assert sfbridge.mapping_state("Teacher__c") == "DATA_SYNCED"
    text = sfbridge.run("status", check=False).stdout
    assert "Teacher__c" in text and "DATA_SYNCED" in text, text
    assert sfbridge.connection_state() in ("IDLE", "POLLING", "BUSY")

    sfbridge.run("pause", "Teacher__c")
    assert sfbridge.mapping_state("Teacher__c") == "PAUSED"
    rid = sf.create("Teacher__c", {"Name": "While Paused", "Employee_Number__c": "W-1"})
    sfbridge.run("poll")
    assert rid not in _pg_ids(database), "a paused mapping must not sync"
    sfbridge.run("resume", "Teacher__c")
    assert sfbridge.mapping_state("Teacher__c") != "PAUSED"
    sfbridge.run("poll")
    assert rid in _pg_ids(database)
    assert sfbridge.mapping_state("Teacher__c") == "DATA_SYNCED"

    sfbridge.run("pause")
    assert sfbridge.connection_state() == "PAUSED"
    rid2 = sf.create("Teacher__c", {"Name": "Connection Paused", "Employee_Number__c": "W-2"})
    sfbridge.once()
    assert rid2 not in _pg_ids(database), "a paused connection must not sync"
    sfbridge.run("resume")
    assert sfbridge.connection_state() != "PAUSED"
    sfbridge.once()
    assert_pg_equals_sf(sf, database, "Teacher__c")


def test_reload_refills_without_emptying_the_table(sfbridge, database, sf):
    sf.load_records("Teacher__c", data.teachers(3000))
    sfbridge.init()
    sfbridge.add("Teacher__c")
    sfbridge.once()
    total = database.count("teacher__c")
    names = _by_name(sf)
    database.execute("DELETE FROM salesforce.teacher__c WHERE sfid = %s", (names["Maria Gonzalez"],))
    database.execute("UPDATE salesforce.teacher__c SET name = 'damaged', systemmodstamp = '2000-01-01' "
                     "WHERE sfid = %s", (names["Kwame Mensah"],))
    seen = []
    stop = threading.Event()

    def reader():
        with database.connect() as c:
            while not stop.is_set():
                seen.append(c.execute("SELECT count(*) FROM salesforce.teacher__c").fetchone()[0])

    t = threading.Thread(target=reader)
    t.start()
    try:
        sfbridge.run("reload", "Teacher__c")
        sfbridge.run("load")
    finally:
        stop.set()
        t.join()
    assert seen and min(seen) >= total - 1, \
        f"readers saw the table emptied during the reload (smallest count {min(seen)} of {total})"
    assert_pg_equals_sf(sf, database, "Teacher__c")


def test_daemon_follows_changes_and_new_mappings(sfbridge, database, sf):
    sfbridge.init()
    sfbridge.add("Teacher__c", "--all-fields", "--poll", "1")
    sfbridge.start()
    wait_pg_equals_sf(sf, database, "Teacher__c", timeout=60, context=sfbridge.log)
    apps = [r[0] for r in database.query(
        "SELECT application_name FROM pg_stat_activity WHERE datname = %s", (database.name,))]
    assert "sfbridge" in apps, f"sfbridge's sessions must set application_name = 'sfbridge' (saw {apps})"

    names = _by_name(sf)
    sf.create_many("Teacher__c", data.teachers(20, prefix="D"))
    sf.update("Teacher__c", names["Maria Gonzalez"], {"Rating__c": 5.0})
    sf.delete("Teacher__c", names["Sam O'Neil"])
    wait_pg_equals_sf(sf, database, "Teacher__c", timeout=30, context=sfbridge.log)

    # the CLI changes the mapping rows; the running daemon notices (NOTIFY sfbridge_control)
    sfbridge.add("Account", "--all-fields", "--poll", "1")
    wait_pg_equals_sf(sf, database, "Account", timeout=30, context=sfbridge.log)
    wait_daemon(sfbridge, lambda: sfbridge.mapping_state("Account") == "DATA_SYNCED", timeout=30,
                what="Account to reach DATA_SYNCED")
    sfbridge.stop()
