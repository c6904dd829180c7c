"""Write-back from Postgres to Salesforce (docs/sfbridge.md, "Writing back to
Salesforce"; issue 5): capture triggers and the trigger log, the writer
(`sfbridge push`, one pass in the foreground, and the daemon's writer thread),
status columns, validation failures, retry, no echo of pulled changes,
conflicts, parents before children, upsert by the unique identifier.

An "app" here is a plain psycopg session with Postgres' default settings
(xmlbinary = base64), as an application's would be.
"""
import datetime as dt
import json

import psycopg
import pytest

from lib.compare import assert_pg_equals_sf
from lib.sfbridge import wait_daemon
from lib.writeback import (COURSE_OBJECT, IGNORED_STATES, App, add_course_object, api_usage, assert_sf_fields,
                           describe_entries, hc_err, log_entries, map_rw, open_entries, push, push_until_done,
                           record_entries, row, sf_by_key, sf_refusal, wait_writer_idle)

T = "teacher__c"
SFB = "/services/data/v60.0/*"


def _setup(sfbridge, *maps):
    """init, then each (object, args...) mapped read-write, then the initial load."""
    sfbridge.init()
    for obj, *args in maps:
        map_rw(sfbridge, obj, *args)
    sfbridge.once()


@pytest.fixture
def rw(sfbridge, database, sf):
    """Teacher__c mapped read-write and loaded; an app session on the database."""
    _setup(sfbridge, ("Teacher__c",))
    with App(database) as app:
        yield app


def _by_name(sf, obj="Teacher__c"):
    return {r["Name"]: r["Id"] for r in sf.query(f"SELECT Id, Name FROM {obj}")}


def _pg_id(database, sfid, table=T):
    return database.scalar(f"SELECT id FROM salesforce.{table} WHERE sfid = %s", (sfid,))


def _one_entry(database, table, record_id, **expect):
    entries = record_entries(database, table, record_id)
    assert len(entries) == 1, f"expected one trigger-log entry for {table} {record_id}:\n" \
                              + describe_entries(entries)
    e = entries[0]
    for k, v in expect.items():
        assert e[k] == v, f"entry {k}: expected {v!r}, got {e[k]!r}\n{describe_entries(entries)}"
    return e


def _modstamp(sf, obj, rec_id):
    return sf.get(obj, rec_id, ["SystemModstamp"])["SystemModstamp"]


# -- insert, update, delete ------------------------------------------------------------------------
def test_insert_reaches_salesforce_and_sfid_is_written_back(rw, sfbridge, database, sf):
    school = _by_name(sf, "Account")["Lincoln High"]
    values = dict(name="Ada Lovelace", first_name__c="Ada", employee_number__c="W-0001",
                  email__c="ada@school.test", subject__c="Mathematics", languages__c="English;French",
                  active__c=True, years__c=7, rating__c=4.75, salary__c=61234.5, workload__c=42.5,
                  hire_date__c=dt.date(2017, 9, 1), last_login__c=dt.datetime(2024, 5, 6, 7, 8, 9, 123000),
                  start_time__c=dt.time(8, 45), notes__c="first line\nsecond, \"quoted\"", school__c=school,
                  bio__c="Ünïcødé ✓ 漢字 🎓")
    rid = rw.insert(T, **values)

    r = row(database, T, rid)
    assert r["_hc_lastop"] == "PENDING" and r["_hc_err"] is None and r["sfid"] is None
    e = _one_entry(database, T, rid, action="INSERT", state="NEW", table_name=T, archived=False)
    assert e["txid"] is not None and e["created_at"] is not None and e["processed_at"] is None
    assert e["values"]["name"] == "Ada Lovelace" and e["values"]["employee_number__c"] == "W-0001"
    assert {"name", "email__c", "years__c", "school__c"} <= set(e["values"]), "an INSERT logs the whole row"
    assert sfbridge.status_json()["writer"]["pending"] == 1

    push_until_done(sfbridge, database)

    r = row(database, T, rid)
    assert r["sfid"] is not None and len(r["sfid"]) == 18, r
    assert (r["_hc_lastop"], r["_hc_err"]) == ("INSERTED", None)
    assert_sf_fields(sf, "Teacher__c", r["sfid"], {
        "Name": "Ada Lovelace", "First_Name__c": "Ada", "Employee_Number__c": "W-0001",
        "Email__c": "ada@school.test", "Subject__c": "Mathematics", "Languages__c": "English;French",
        "Active__c": True, "Years__c": 7, "Rating__c": 4.75, "Salary__c": 61234.5, "Workload__c": 42.5,
        "Hire_Date__c": dt.date(2017, 9, 1), "Last_Login__c": dt.datetime(2024, 5, 6, 7, 8, 9, 123000),
        "Start_Time__c": dt.time(8, 45), "Notes__c": values["notes__c"], "School__c": school,
        "Bio__c": values["bio__c"]})
    assert sf.count("Teacher__c", "Employee_Number__c = 'W-0001'") == 1
    e = _one_entry(database, T, rid, action="INSERT", state="SUCCESS", sfid=r["sfid"])
    assert e["archived"], "a processed entry moves to _trigger_log_archive"
    assert e["processed_at"] is not None
    assert open_entries(database) == 0
    assert sfbridge.status_json()["writer"]["pending"] == 0

    # the next poll brings the record's system fields; nothing goes back
    n_entries = len(log_entries(database))
    sfbridge.once()
    assert_pg_equals_sf(sf, database, "Teacher__c")
    assert len(log_entries(database)) == n_entries, "a pulled change must not be captured"
    assert database.count(T) == 6


def test_update_logs_only_changed_columns(rw, sfbridge, database, sf):
    maria = _by_name(sf)["Maria Gonzalez"]
    rid = _pg_id(database, maria)
    assert rw.update(T, rid, name="Maria G. Gonzalez", years__c=13, email__c=None, active__c=True) == 1
    r = row(database, T, rid)
    assert r["_hc_lastop"] == "PENDING" and r["_hc_err"] is None
    e = _one_entry(database, T, rid, action="UPDATE", state="NEW", sfid=maria)
    # active__c was already true: not a change
    assert set(e["values"]) == {"name", "years__c", "email__c"}, f"values: {e['values']}"
    assert e["values"]["email__c"] is None and e["values"]["name"] == "Maria G. Gonzalez"
    assert e["old"]["name"] == "Maria Gonzalez" and e["old"]["years__c"] == "12"

    push_until_done(sfbridge, database)

    assert_sf_fields(sf, "Teacher__c", maria, {"Name": "Maria G. Gonzalez", "Years__c": 13, "Email__c": None,
                                               "Subject__c": "Mathematics", "Active__c": True,
                                               "Phone__c": "(510) 555-2000"})
    r = row(database, T, rid)
    assert (r["_hc_lastop"], r["_hc_err"]) == ("UPDATED", None)
    _one_entry(database, T, rid, state="SUCCESS", archived=True)
    sfbridge.once()
    assert_pg_equals_sf(sf, database, "Teacher__c")


def test_typed_values_whatever_the_apps_session_settings(rw, sfbridge, database, sf):
    """An app whose session prints dates day-first and floats rounded still
    gets exactly its values into Salesforce, on insert and on update."""
    rw.execute("SET DateStyle = 'SQL, DMY'; SET extra_float_digits = -3")
    rid = rw.insert(T, name="Settings", employee_number__c="W-DS1", hire_date__c=dt.date(2017, 9, 1),
                    last_login__c=dt.datetime(2024, 5, 6, 7, 8, 9, 123000), start_time__c=dt.time(8, 45),
                    rating__c=1234567.123456, years__c=-3, active__c=False)
    push_until_done(sfbridge, database)
    sfid = row(database, T, rid)["sfid"]
    assert_sf_fields(sf, "Teacher__c", sfid, {"Hire_Date__c": "2017-09-01", "Rating__c": 1234567.123456,
                                              "Years__c": -3, "Active__c": False,
                                              "Last_Login__c": dt.datetime(2024, 5, 6, 7, 8, 9, 123000)})
    rw.update(T, rid, hire_date__c=dt.date(2020, 1, 2), last_login__c=dt.datetime(2025, 12, 31, 23, 59, 58),
              rating__c=7654321.654321, active__c=True)
    push_until_done(sfbridge, database)
    assert_sf_fields(sf, "Teacher__c", sfid, {"Hire_Date__c": "2020-01-02", "Rating__c": 7654321.654321,
                                              "Active__c": True, "Last_Login__c": dt.datetime(2025, 12, 31, 23, 59, 58)})
    assert not log_entries(database, "state = 'FAILED'")


def test_delete_reaches_salesforce(rw, sfbridge, database, sf):
    kwame = _by_name(sf)["Kwame Mensah"]
    rid = _pg_id(database, kwame)
    assert rw.delete(T, rid) == 1
    e = _one_entry(database, T, rid, action="DELETE", state="NEW", sfid=kwame)
    assert e["old"]["name"] == "Kwame Mensah"
    push_until_done(sfbridge, database)
    assert sf.count("Teacher__c", f"Id = '{kwame}'") == 0
    gone = sf.query_all(f"SELECT Id, IsDeleted FROM Teacher__c WHERE Id = '{kwame}'")
    assert gone and gone[0]["IsDeleted"] is True
    _one_entry(database, T, rid, state="SUCCESS", archived=True)
    sfbridge.once()
    assert_pg_equals_sf(sf, database, "Teacher__c")
    assert database.count(T) == 4


def test_changes_to_one_record_fold_into_one_operation(rw, sfbridge, database, sf):
    with rw.transaction():
        rid = rw.insert(T, name="Fold", employee_number__c="W-F1", years__c=1)
    rw.update(T, rid, years__c=2)
    rw.update(T, rid, years__c=3, subject__c="Art")
    rw.update(T, rid, name="Folded")
    before = api_usage(sf)
    push_until_done(sfbridge, database)
    used = api_usage(sf) - before
    r = row(database, T, rid)
    assert r["_hc_lastop"] == "INSERTED" and r["sfid"]
    assert_sf_fields(sf, "Teacher__c", r["sfid"], {"Name": "Folded", "Years__c": 3, "Subject__c": "Art"})
    assert sf.count("Teacher__c", "Employee_Number__c = 'W-F1'") == 1
    entries = record_entries(database, T, rid)
    states = [e["state"] for e in entries]
    assert len(entries) == 4 and set(states) <= {"SUCCESS", "MERGED"} and "SUCCESS" in states, \
        describe_entries(entries)
    assert used <= 3, f"an insert and three updates of one record are one write, not {used} API calls"


def test_insert_then_delete_before_sending_sends_nothing(rw, sfbridge, database, sf):
    rid = rw.insert(T, name="Never Sent", employee_number__c="W-N1")
    rw.delete(T, rid)
    push_until_done(sfbridge, database)
    assert sf.count("Teacher__c", "Employee_Number__c = 'W-N1'") == 0
    assert sf.query_all("SELECT Id FROM Teacher__c WHERE Employee_Number__c = 'W-N1'") == []
    entries = record_entries(database, T, rid)
    assert len(entries) == 2 and all(e["state"] in ("MERGED", *IGNORED_STATES) for e in entries), \
        describe_entries(entries)
    assert open_entries(database) == 0


def test_noop_update_is_ignored(rw, sfbridge, database, sf):
    maria = _by_name(sf)["Maria Gonzalez"]
    rid = _pg_id(database, maria)
    stamp = _modstamp(sf, "Teacher__c", maria)
    assert rw.update(T, rid, name="Maria Gonzalez", years__c=12) == 1  # the values it already has
    e = _one_entry(database, T, rid, action="UPDATE")
    assert e["state"] in IGNORED_STATES, describe_entries([e])
    push_until_done(sfbridge, database)
    assert _modstamp(sf, "Teacher__c", maria) == stamp, "an update that changed nothing was sent"
    e = _one_entry(database, T, rid, action="UPDATE")
    assert e["state"] in IGNORED_STATES
    assert row(database, T, rid)["_hc_lastop"] != "PENDING", "nothing is pending for this row"
    assert open_entries(database) == 0


def test_delete_of_a_row_that_never_reached_salesforce_is_ignored(rw, sfbridge, database, sf):
    # a row without sfid that sfbridge's marker kept from the trigger log
    with database.connect() as c:
        c.execute("SET xmlbinary = 'hex'")
        rid = c.execute("INSERT INTO salesforce.teacher__c (name) VALUES ('Local Only') RETURNING id").fetchone()[0]
    assert record_entries(database, T, rid) == [], "a write with xmlbinary = 'hex' is not captured"
    before = sf.count("Teacher__c")
    rw.delete(T, rid)
    e = _one_entry(database, T, rid, action="DELETE")
    assert e["state"] in IGNORED_STATES and e["sfid"] is None, describe_entries([e])
    push_until_done(sfbridge, database)
    assert sf.count("Teacher__c") == before
    assert _one_entry(database, T, rid)["state"] in IGNORED_STATES


def test_writes_to_a_read_only_mapping_are_readonly_and_not_sent(rw, sfbridge, database, sf):
    sfbridge.run("mapping", "add", "Account", "--all-fields", "--access", "read_only")
    sfbridge.once()
    accounts = _by_name(sf, "Account")
    before = {r["Id"]: r for r in sf.query("SELECT Id, Name, Industry, SystemModstamp FROM Account")}
    new_id = rw.insert("account", name="Read Only School", external_id__c="RO-1")
    upd = _pg_id(database, accounts["Lincoln High"], "account")
    rw.update("account", upd, name="Renamed High")
    dele = _pg_id(database, accounts["Garfield Middle"], "account")
    rw.delete("account", dele)
    entries = log_entries(database, "table_name = 'account'")
    assert [e["action"] for e in entries] == ["INSERT", "UPDATE", "DELETE"], describe_entries(entries)
    assert all(e["state"] == "READONLY" for e in entries), describe_entries(entries)
    push_until_done(sfbridge, database)
    after = {r["Id"]: r for r in sf.query("SELECT Id, Name, Industry, SystemModstamp FROM Account")}
    assert after == before, "a write to a read-only mapping reached Salesforce"
    assert all(e["state"] == "READONLY" for e in log_entries(database, "table_name = 'account'"))
    assert new_id is not None


def test_truncate_of_a_read_write_table_is_refused(rw, sfbridge, database, sf):
    with pytest.raises(psycopg.Error) as exc:
        rw.execute("TRUNCATE salesforce.teacher__c")
    assert "truncate" in str(exc.value).lower(), str(exc.value)
    assert database.count(T) == 5
    assert log_entries(database) == []
    # sfbridge's marker empties only Postgres, on purpose
    with database.connect() as c:
        c.execute("SET xmlbinary = 'hex'")
        c.execute("TRUNCATE salesforce.teacher__c")
    assert database.count(T) == 0
    push_until_done(sfbridge, database)
    assert sf.count("Teacher__c") == 5


def test_inserts_are_sent_in_collections_of_200(rw, sfbridge, database, sf):
    n = 450
    with rw.transaction():
        ids = [rw.insert(T, name=f"Batch {i}", employee_number__c=f"W-B{i:04d}", years__c=i % 40)
               for i in range(n)]
    before = api_usage(sf)
    push_until_done(sfbridge, database)
    used = api_usage(sf) - before
    assert database.count(T, where="name LIKE 'Batch %%' AND sfid IS NOT NULL AND _hc_lastop = 'INSERTED'") == n
    assert sf.count("Teacher__c", "Name LIKE 'Batch %'") == n
    assert used <= 6, f"{n} inserts took {used} API calls (collections of 200: 3 writes)"
    assert len(ids) == n


# -- refusals, retry ------------------------------------------------------------------------------
def test_a_refused_record_fails_alone(sfbridge, database, sf):
    add_course_object(sf)
    _setup(sfbridge, ("Teacher__c",), (COURSE_OBJECT,))
    gone = sf.create("Account", {"Name": "Closed School", "External_Id__c": "GONE-1"})
    sf.delete("Account", gone)
    # (pg column values, the same record as Salesforce fields, the code Salesforce answers)
    bad = {
        "email": (T, {"name": "Bad Email", "email__c": "not an email"},
                  {"Name": "Bad Email", "Email__c": "not an email"}, "INVALID_EMAIL_ADDRESS"),
        "too long": (T, {"name": "Long Bio", "bio__c": "x" * 40000},
                     {"Name": "Long Bio", "Bio__c": "x" * 40000}, "STRING_TOO_LONG"),
        "dangling lookup": (T, {"name": "No School", "school__c": gone},
                            {"Name": "No School", "School__c": gone}, "FIELD_INTEGRITY_EXCEPTION"),
        "duplicate": (T, {"name": "Second Maria", "employee_number__c": "E-0001"},
                      {"Name": "Second Maria", "Employee_Number__c": "E-0001"}, "DUPLICATE_VALUE"),
        "required": (COURSE_OBJECT.lower(), {"name": "No Title", "level__c": "Intro"},
                     {"Name": "No Title", "Level__c": "Intro"}, "REQUIRED_FIELD_MISSING"),
        "picklist": (COURSE_OBJECT.lower(), {"name": "Bad Level", "title__c": "Algebra", "level__c": "Expert"},
                     {"Name": "Bad Level", "Title__c": "Algebra", "Level__c": "Expert"},
                     "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"),
    }
    expected = {}
    for key, (table, _, sf_fields, code) in bad.items():
        got_code, message = sf_refusal(sf, "Teacher__c" if table == T else COURSE_OBJECT, sf_fields)
        assert got_code == code, f"{key}: Salesforce answers {got_code}, the test expected {code}"
        expected[key] = message
    with App(database) as app:
        with app.transaction():
            good = [app.insert(T, name="Good One", employee_number__c="W-G1"),
                    app.insert(COURSE_OBJECT.lower(), name="Good Course", title__c="Geometry", level__c="Advanced")]
            rows = {key: (table, app.insert(table, **cols)) for key, (table, cols, _, _) in bad.items()}
            good.append(app.insert(T, name="Good Two", employee_number__c="W-G2"))
    push_until_done(sfbridge, database)

    for key, (table, rid) in rows.items():
        r = row(database, table, rid)
        code = bad[key][3]
        assert r["_hc_lastop"] == "FAILED" and r["sfid"] is None, f"{key}: {r['_hc_lastop']} {r['sfid']}"
        err = hc_err(r)
        assert "op" in err and isinstance(err.get("errors"), list) and err["errors"], f"{key}: _hc_err {err}"
        first = err["errors"][0]
        assert first.get("statusCode") == code, f"{key}: _hc_err {err}"
        assert first.get("message") == expected[key], f"{key}: _hc_err {err}, Salesforce says {expected[key]!r}"
        assert "fields" in first, f"{key}: _hc_err {err}"
        entries = record_entries(database, table, rid)
        assert [e["state"] for e in entries] == ["FAILED"], f"{key}:\n{describe_entries(entries)}"
        assert expected[key] in (entries[0]["sf_message"] or ""), f"{key}: sf_message {entries[0]['sf_message']!r}"
    assert sf.count("Teacher__c", "Name IN ('Bad Email', 'Long Bio', 'No School', 'Second Maria')") == 0
    assert sf.count(COURSE_OBJECT) == 1

    good_tables = [T, COURSE_OBJECT.lower(), T]
    for table, rid in zip(good_tables, good):
        r = row(database, table, rid)
        assert r["_hc_lastop"] == "INSERTED" and r["sfid"] and r["_hc_err"] is None, r
    assert sf.count("Teacher__c", "Name IN ('Good One', 'Good Two')") == 2

    w = sfbridge.status_json()["writer"]
    assert w["failed"] == len(bad) and w["pending"] == 0, w
    assert w.get("last_error"), f"status --json shows no last_error of the writer: {w}"
    # permanent: another pass sends nothing and changes nothing
    before = api_usage(sf)
    assert push(sfbridge).returncode == 0
    assert api_usage(sf) - before <= 1
    assert sfbridge.status_json()["writer"]["failed"] == len(bad)


def test_a_refused_update_fails_alone(rw, sfbridge, database, sf):
    names = _by_name(sf)
    maria, kwame = _pg_id(database, names["Maria Gonzalez"]), _pg_id(database, names["Kwame Mensah"])
    with rw.transaction():
        rw.update(T, maria, email__c="still not an email", years__c=99)
        rw.update(T, kwame, years__c=5)
    push_until_done(sfbridge, database)
    r = row(database, T, maria)
    assert r["_hc_lastop"] == "FAILED"
    err = hc_err(r)
    assert err["errors"][0]["statusCode"] == "INVALID_EMAIL_ADDRESS", err
    assert_sf_fields(sf, "Teacher__c", names["Maria Gonzalez"], {"Email__c": "maria@school.test", "Years__c": 12})
    assert row(database, T, kwame)["_hc_lastop"] == "UPDATED"
    assert_sf_fields(sf, "Teacher__c", names["Kwame Mensah"], {"Years__c": 5})
    assert [e["state"] for e in record_entries(database, T, maria)] == ["FAILED"]


def test_a_refused_update_stays_visible_until_the_record_changes_in_salesforce(rw, sfbridge, database, sf):
    """FAILED, _hc_err and the app's values stay on the row through pulls that bring the record's
    unchanged Salesforce version (a reload re-applies every record); a real change in Salesforce
    is applied (issue 15)."""
    maria_sf = _by_name(sf)["Maria Gonzalez"]
    maria = _pg_id(database, maria_sf)
    rw.update(T, maria, email__c="still not an email")
    push_until_done(sfbridge, database)
    assert row(database, T, maria)["_hc_lastop"] == "FAILED"
    sfbridge.run("reload", "Teacher__c")
    sfbridge.run("load")
    sfbridge.run("poll")
    r = row(database, T, maria)
    assert (r["_hc_lastop"], r["email__c"]) == ("FAILED", "still not an email"), r
    assert hc_err(r)["errors"][0]["statusCode"] == "INVALID_EMAIL_ADDRESS"
    sf.update("Teacher__c", maria_sf, {"Years__c": 13})
    sfbridge.run("poll")
    r = row(database, T, maria)
    assert (r["_hc_lastop"], r["years__c"], r["email__c"]) == ("SYNCED", 13, "maria@school.test"), r


def test_retry_sends_the_row_as_fixed_since(rw, sfbridge, database, sf):
    """retry sends the row's current values for the failed entry's columns, not the values
    captured when it failed: here the row is fixed without a new capture (Heroku Connect's
    `xmlbinary = hex` session, as a bulk fix by an admin would run) (issue 15)."""
    maria_sf = _by_name(sf)["Maria Gonzalez"]
    maria = _pg_id(database, maria_sf)
    rw.update(T, maria, email__c="still not an email", years__c=99)
    push_until_done(sfbridge, database)
    (failed,) = record_entries(database, T, maria)
    assert failed["state"] == "FAILED"
    with database.connect() as c:
        c.execute("SET xmlbinary = 'hex'")
        c.execute(f"UPDATE salesforce.{T} SET email__c = 'maria.fixed@school.test' WHERE id = %s", (maria,))
    assert len(record_entries(database, T, maria)) == 1, "the fix was not to be captured"
    sfbridge.run("retry", failed["id"])
    push_until_done(sfbridge, database)
    assert_sf_fields(sf, "Teacher__c", maria_sf, {"Email__c": "maria.fixed@school.test", "Years__c": 99})
    r = row(database, T, maria)
    assert (r["_hc_lastop"], r["_hc_err"]) == ("UPDATED", None), r


def _failed_duplicate(rw, sfbridge, database, sf):
    """An insert refused as a duplicate of Kwame's Employee_Number__c; (row id, entry)."""
    rid = rw.insert(T, name="New Kwame", employee_number__c="E-0002", years__c=1)
    push_until_done(sfbridge, database)
    assert row(database, T, rid)["_hc_lastop"] == "FAILED"
    entries = record_entries(database, T, rid)
    assert [e["state"] for e in entries] == ["FAILED"], describe_entries(entries)
    # the user fixes the data in Salesforce: the old record gives up its number
    sf.update("Teacher__c", _by_name(sf)["Kwame Mensah"], {"Employee_Number__c": "E-0002-OLD"})
    return rid, entries[0]


def _assert_retried(database, sf, rid):
    r = row(database, T, rid)
    assert (r["_hc_lastop"], r["_hc_err"]) == ("INSERTED", None) and r["sfid"], r
    assert_sf_fields(sf, "Teacher__c", r["sfid"], {"Name": "New Kwame", "Employee_Number__c": "E-0002",
                                                   "Years__c": 1})
    assert sf.count("Teacher__c", "Name = 'New Kwame'") == 1
    states = [e["state"] for e in record_entries(database, T, rid)]
    assert "FAILED" not in states and "SUCCESS" in states, states


def test_retry_by_id_after_fixing_the_data(rw, sfbridge, database, sf):
    rid, entry = _failed_duplicate(rw, sfbridge, database, sf)
    assert push(sfbridge).returncode == 0
    assert row(database, T, rid)["_hc_lastop"] == "FAILED", "a FAILED entry is not retried by itself"
    sfbridge.run("retry", entry["id"])
    assert sfbridge.status_json()["writer"]["failed"] == 0
    push_until_done(sfbridge, database)
    _assert_retried(database, sf, rid)


def test_retry_all_after_fixing_the_row(rw, sfbridge, database, sf):
    rid = rw.insert(T, name="Typo", email__c="typo@@school", employee_number__c="W-T1")
    other = rw.insert(T, name="Typo Two", email__c="two@@school", employee_number__c="W-T2")
    push_until_done(sfbridge, database)
    assert row(database, T, rid)["_hc_lastop"] == "FAILED" and row(database, T, other)["_hc_lastop"] == "FAILED"
    rw.update(T, rid, email__c="typo@school.test")
    rw.update(T, other, email__c="two@school.test")
    sfbridge.run("retry", "--all")
    push_until_done(sfbridge, database)
    for rec_id, email in ((rid, "typo@school.test"), (other, "two@school.test")):
        r = row(database, T, rec_id)
        assert r["_hc_lastop"] == "INSERTED" and r["sfid"], r
        assert_sf_fields(sf, "Teacher__c", r["sfid"], {"Email__c": email})
    assert sf.count("Teacher__c", "Name IN ('Typo', 'Typo Two')") == 2
    assert sfbridge.status_json()["writer"]["failed"] == 0


def test_heroku_connect_requeue_by_setting_state_new(rw, sfbridge, database, sf):
    rid, entry = _failed_duplicate(rw, sfbridge, database, sf)
    with database.connect() as c:
        n = c.execute("UPDATE salesforce._trigger_log SET state = 'NEW' WHERE id = %s AND state = 'FAILED'",
                      (entry["id"],)).rowcount
    assert n == 1, "a FAILED entry must be in _trigger_log, where Heroku Connect's users requeue it"
    push_until_done(sfbridge, database)
    _assert_retried(database, sf, rid)


# -- transient failures ----------------------------------------------------------------------------
TRANSIENT = {
    "unable to lock row": [{"path": SFB, "lock_rate": 1.0}],
    "503": [{"path": SFB, "error_rate": 1.0, "status": 503}],
    "500": [{"path": SFB, "error_rate": 1.0, "status": 500}],
    "reset after commit": [{"path": "/services/data/v60.0/composite/*", "reset_rate": 1.0}],
    "request limit": [{"api_budget": 0}],
}


@pytest.mark.parametrize("fault", list(TRANSIENT))
def test_transient_failures_are_retried_in_order(fault, rw, sfbridge, database, sf):
    maria = _by_name(sf)["Maria Gonzalez"]
    mid = _pg_id(database, maria)
    new = rw.insert(T, name="Transient", employee_number__c="W-X1", years__c=1)
    rw.update(T, mid, years__c=20)
    sf.set_faults(TRANSIENT[fault], seed=11)
    assert push(sfbridge).returncode == 1, "transient failures left: push exits 1"
    for rec_id in (new, mid):
        r = row(database, T, rec_id)
        assert r["_hc_lastop"] == "PENDING", f"a transient failure is not FAILED: {r['_hc_lastop']} {r['_hc_err']}"
        states = [e["state"] for e in record_entries(database, T, rec_id)]
        assert states == ["NEW"], f"{fault}: entries of {rec_id}: {states}"
    w = sfbridge.status_json()["writer"]
    assert w["pending"] == 2 and w["failed"] == 0, w
    assert w.get("last_error"), f"status --json shows no last_error of the writer: {w}"
    r = push(sfbridge)
    assert r.returncode == 1, "push exits 1 while transient failures remain (also before their retry is due)\n" \
                              + r.stdout
    # later changes wait behind the first ones and keep their order
    rw.update(T, new, years__c=2, name="Transient Two")
    rw.update(T, mid, years__c=21)
    sf.clear_faults()
    push_until_done(sfbridge, database)
    r = row(database, T, new)
    assert r["_hc_lastop"] in ("INSERTED", "UPDATED") and r["sfid"], r
    assert sf.count("Teacher__c", "Employee_Number__c = 'W-X1'") == 1
    assert_sf_fields(sf, "Teacher__c", r["sfid"], {"Name": "Transient Two", "Years__c": 2})
    assert_sf_fields(sf, "Teacher__c", maria, {"Years__c": 21})
    assert row(database, T, mid)["_hc_lastop"] == "UPDATED"
    assert open_entries(database) == 0
    assert not log_entries(database, "state = 'FAILED'")


def test_expired_session_is_renewed(rw, sfbridge, database, sf):
    sfbridge.run("push")  # logs in
    rid = rw.insert(T, name="After Expiry", employee_number__c="W-S1")
    sf.expire_sessions()
    push_until_done(sfbridge, database)
    assert row(database, T, rid)["_hc_lastop"] == "INSERTED"
    assert sf.count("Teacher__c", "Name = 'After Expiry'") == 1


# -- pulls and conflicts ----------------------------------------------------------------------------
def test_a_pulled_change_is_not_echoed(rw, sfbridge, database, sf):
    maria = _by_name(sf)["Maria Gonzalez"]
    sf.update("Teacher__c", maria, {"Name": "Maria (from Salesforce)", "Years__c": 30})
    new = sf.create("Teacher__c", {"Name": "Made In Salesforce", "Employee_Number__c": "W-P1"})
    sf.delete("Teacher__c", _by_name(sf)["Sam O'Neil"])
    sfbridge.run("poll")
    assert_pg_equals_sf(sf, database, "Teacher__c")
    assert log_entries(database) == [], "changes pulled from Salesforce were captured:\n" + \
        describe_entries(log_entries(database))
    assert database.count(T, where="_hc_lastop IS DISTINCT FROM 'SYNCED'") == 0
    stamps = {rid: _modstamp(sf, "Teacher__c", rid) for rid in (maria, new)}
    push_until_done(sfbridge, database)
    assert {rid: _modstamp(sf, "Teacher__c", rid) for rid in stamps} == stamps, "a pulled change went back"


def test_a_pending_change_is_not_overwritten_by_a_pull(rw, sfbridge, database, sf):
    names = _by_name(sf)
    maria, kwame = names["Maria Gonzalez"], names["Kwame Mensah"]
    sf.update("Teacher__c", maria, {"Years__c": 5})          # Salesforce first ...
    sf.update("Teacher__c", kwame, {"Name": "Kwame (pulled)"})
    mid = _pg_id(database, maria)
    rw.update(T, mid, name="Maria (app)")                     # ... then the app: the last writer
    sfbridge.run("poll")
    r = row(database, T, mid)
    assert r["name"] == "Maria (app)" and r["_hc_lastop"] == "PENDING", \
        f"a pull overwrote a change that was not written yet: {r['name']!r} {r['_hc_lastop']}"
    assert [e["state"] for e in record_entries(database, T, mid)] == ["NEW"]
    assert row(database, T, _pg_id(database, kwame))["name"] == "Kwame (pulled)"
    push_until_done(sfbridge, database)
    assert_sf_fields(sf, "Teacher__c", maria, {"Name": "Maria (app)"})
    sfbridge.run("poll")
    assert_pg_equals_sf(sf, database, "Teacher__c")


def _conflicts(database):
    return database.query_dicts("SELECT * FROM salesforce._sfbridge_conflicts ORDER BY id")


@pytest.mark.parametrize("policy,first,winner", [
    ("last_writer_wins", "app", "salesforce"),
    ("last_writer_wins", "salesforce", "postgres"),
    ("salesforce_wins", "salesforce", "salesforce"),
    ("postgres_wins", "app", "postgres"),
])
def test_conflicts_follow_the_policy_and_are_recorded(policy, first, winner, sfbridge, database, sf):
    sfbridge.set(SFBRIDGE_CONFLICT_POLICY=policy)
    _setup(sfbridge, ("Teacher__c",))
    maria = _by_name(sf)["Maria Gonzalez"]
    mid = _pg_id(database, maria)
    with App(database) as app:
        if first == "app":
            app.update(T, mid, name="Maria (app)")
            sf.update("Teacher__c", maria, {"Name": "Maria (salesforce)"})
        else:
            sf.update("Teacher__c", maria, {"Name": "Maria (salesforce)"})
            app.update(T, mid, name="Maria (app)")
    sfbridge.run("poll")
    push_until_done(sfbridge, database)
    sfbridge.run("poll")
    want = "Maria (salesforce)" if winner == "salesforce" else "Maria (app)"
    assert_sf_fields(sf, "Teacher__c", maria, {"Name": want})
    assert row(database, T, mid)["name"] == want
    assert_pg_equals_sf(sf, database, "Teacher__c")
    entries = record_entries(database, T, mid)
    if winner == "salesforce":
        assert [e["state"] for e in entries] == ["IGNORED"], describe_entries(entries)
        assert "conflict" in (entries[0]["sf_message"] or "").lower(), entries[0]["sf_message"]
    else:
        assert [e["state"] for e in entries] == ["SUCCESS"], describe_entries(entries)
    conflicts = _conflicts(database)
    assert len(conflicts) == 1, conflicts
    c = conflicts[0]
    assert (c["table_name"], c["sfid"], c["policy"]) == (T, maria, policy), c
    assert c["winner"].lower().startswith(winner[:5]), c
    both = json.dumps(c["sf_values"]) + json.dumps(c["pg_values"])
    assert "Maria (salesforce)" in json.dumps(c["sf_values"]) and "Maria (app)" in json.dumps(c["pg_values"]), both


# -- parents, children, upsert ----------------------------------------------------------------------
def test_parent_and_children_in_one_transaction(sfbridge, database, sf):
    add_course_object(sf)
    _setup(sfbridge, ("Teacher__c",),
           (COURSE_OBJECT, "--fields", "Title__c,Code__c,Level__c,Teacher__c,Teacher__r.Employee_Number__c"))
    c = COURSE_OBJECT.lower()
    with App(database) as app:
        with app.transaction():
            # a child inserted before its parent in the same transaction
            early = app.insert(c, name="Early Course", title__c="Botany", teacher__r__employee_number__c="W-PA2")
            t1 = app.insert(T, name="Parent One", employee_number__c="W-PA1")
            c1 = app.insert(c, name="Course One", title__c="Algebra", level__c="Intro",
                            teacher__r__employee_number__c="W-PA1")
            c2 = app.insert(c, name="Course Two", title__c="Calculus", teacher__r__employee_number__c="W-PA1")
            t2 = app.insert(T, name="Parent Two", employee_number__c="W-PA2")
        push_until_done(sfbridge, database)
        teachers = {tid: row(database, T, tid)["sfid"] for tid in (t1, t2)}
        assert all(teachers.values()), teachers
        for cid, parent in ((early, t2), (c1, t1), (c2, t1)):
            r = row(database, c, cid)
            assert r["_hc_lastop"] == "INSERTED" and r["sfid"], r
            assert_sf_fields(sf, COURSE_OBJECT, r["sfid"], {"Teacher__c": teachers[parent]})
        assert sf.count(COURSE_OBJECT) == 3 and sf.count("Teacher__c", "Name LIKE 'Parent %'") == 2
        sfbridge.run("poll")
        assert row(database, c, c1)["teacher__c"] == teachers[t1], "the next poll fills the lookup column"

        # children and parent deleted together
        with app.transaction():
            app.delete(T, t1)
            app.delete(c, c1)
            app.delete(c, c2)
        push_until_done(sfbridge, database)
        assert sf.count(COURSE_OBJECT) == 1 and sf.count("Teacher__c", "Name LIKE 'Parent %'") == 1
        assert not log_entries(database, "state = 'FAILED'"), describe_entries(log_entries(database))


def test_upsert_mapping_sends_inserts_by_external_id(sfbridge, database, sf):
    _setup(sfbridge, ("Teacher__c", "--upsert-field", "Employee_Number__c"))
    # created in Salesforce after the load, not pulled yet
    remote = sf.create("Teacher__c", {"Name": "Remote", "Employee_Number__c": "W-U1", "Years__c": 3})
    with App(database) as app:
        rid = app.insert(T, name="Local", employee_number__c="W-U1", years__c=4)
        push_until_done(sfbridge, database)
    r = row(database, T, rid)
    assert r["_hc_lastop"] in ("INSERTED", "UPDATED") and r["_hc_err"] is None, \
        f"an insert on an upsert-keyed mapping must be an upsert by Employee_Number__c: {r}"
    assert r["sfid"] == remote, "the upsert matched the existing record: its Id is written back"
    assert sf.count("Teacher__c", "Employee_Number__c = 'W-U1'") == 1
    assert_sf_fields(sf, "Teacher__c", remote, {"Name": "Local", "Years__c": 4})
    sfbridge.run("poll")
    assert_pg_equals_sf(sf, database, "Teacher__c")
    assert database.count(T, where="employee_number__c = 'W-U1'") == 1


def test_an_upsert_does_not_clear_what_the_insert_left_empty(sfbridge, database, sf):
    """An INSERT cannot tell "empty" from "not given": its nulls are not sent, so an upsert that
    meets an existing record keeps that record's values; a column a later UPDATE emptied is sent
    as null (issue 17)."""
    _setup(sfbridge, ("Teacher__c", "--upsert-field", "Employee_Number__c"))
    remote = sf.create("Teacher__c", {"Name": "Remote Name", "Employee_Number__c": "W-U2", "Years__c": 3,
                                      "Subject__c": "Art", "Email__c": "remote@school.test"})
    with App(database) as app:
        with app.transaction():
            rid = app.insert(T, employee_number__c="W-U2", years__c=5, email__c="local@school.test")
            app.update(T, rid, email__c=None)
        push_until_done(sfbridge, database)
    assert row(database, T, rid)["sfid"] == remote
    assert_sf_fields(sf, "Teacher__c", remote, {"Name": "Remote Name", "Subject__c": "Art", "Years__c": 5,
                                                "Email__c": None})
    sfbridge.run("poll")
    r = row(database, T, rid)
    assert (r["name"], r["subject__c"], r["years__c"]) == ("Remote Name", "Art", 5), r


def test_inserted_and_updated_stay_through_their_own_echo(rw, sfbridge, database, sf):
    """INSERTED / UPDATED say sfbridge's write reached Salesforce; apps wait for them, so the pull
    that brings the write's own version back leaves them; a change made in Salesforce since makes
    the row SYNCED (issue 17)."""
    rid = rw.insert(T, name="Echo Test", employee_number__c="W-E1")
    push_until_done(sfbridge, database)
    assert row(database, T, rid)["_hc_lastop"] == "INSERTED"
    sfbridge.run("poll")
    r = row(database, T, rid)
    assert r["_hc_lastop"] == "INSERTED" and r["systemmodstamp"] is not None, r
    rw.update(T, rid, years__c=9)
    push_until_done(sfbridge, database)
    sfbridge.run("poll")
    assert row(database, T, rid)["_hc_lastop"] == "UPDATED"
    sf.update("Teacher__c", r["sfid"], {"Years__c": 10})
    sfbridge.run("poll")
    r = row(database, T, rid)
    assert (r["_hc_lastop"], r["years__c"]) == ("SYNCED", 10), r
    assert log_entries(database, "state = 'NEW'") == [], "the pulled change was captured"


def test_upsert_mapping_stays_duplicate_free_through_retries(sfbridge, database, sf):
    _setup(sfbridge, ("Teacher__c", "--upsert-field", "Employee_Number__c"))
    n = 300
    # answers cut after Salesforce committed, and errors: every outcome unknown or failed
    sf.set_faults([{"path": "/services/data/v60.0/composite/*", "reset_rate": 0.5},
                   {"path": "/services/data/v60.0/composite/*", "error_rate": 0.2, "status": 503}], seed=5)
    with App(database) as app:
        for k in range(0, n, 50):
            with app.transaction():
                for i in range(k, k + 50):
                    app.insert(T, name=f"Upsert {i}", employee_number__c=f"W-U{i:04d}", years__c=i % 50)
        first = push(sfbridge)
        assert first.returncode in (0, 1)
        push_until_done(sfbridge, database, timeout=180)
    sf.clear_faults()
    assert not log_entries(database, "state = 'FAILED'"), describe_entries(log_entries(database, "state = 'FAILED'"))
    groups = sf_by_key(sf, "Teacher__c", "Name", ["Employee_Number__c", "Years__c"], "Name LIKE 'Upsert %'")
    dups = {k: len(v) for k, v in groups.items() if len(v) != 1}
    assert not dups, f"duplicates in Salesforce: {dups}"
    assert len(groups) == n
    for name, (rec,) in groups.items():
        i = int(name.split()[1])
        assert (rec["Employee_Number__c"], rec["Years__c"]) == (f"W-U{i:04d}", i % 50), rec
    assert database.count(T, where="name LIKE 'Upsert %%' AND sfid IS NOT NULL") == n
    sfbridge.run("poll")
    assert_pg_equals_sf(sf, database, "Teacher__c")


# -- the daemon's writer and the archive -------------------------------------------------------------
def test_daemon_writes_back_on_its_own(sfbridge, database, sf):
    sfbridge.init()
    map_rw(sfbridge, "Teacher__c", "--poll", "1")
    sfbridge.start()
    wait_daemon(sfbridge, lambda: database.count(T) == 5, timeout=60, what="the initial load")
    with App(database) as app:
        rid = app.insert(T, name="Daemon Write", employee_number__c="W-D1")
        sfid = wait_daemon(sfbridge, lambda: row(database, T, rid)["sfid"], timeout=15,
                           what="the writer thread to insert the row and write back its sfid")
        assert row(database, T, rid)["_hc_lastop"] in ("INSERTED", "SYNCED")
        assert sf.count("Teacher__c", "Name = 'Daemon Write'") == 1
        # many updates of one record, fast: Salesforce ends with the last one
        for years in range(1, 41):
            app.update(T, rid, years__c=years)
        wait_daemon(sfbridge, lambda: sf.get("Teacher__c", sfid, ["Years__c"])["Years__c"] == 40, timeout=30,
                    what="Years__c = 40 in Salesforce")
        app.delete(T, rid)
        wait_daemon(sfbridge, lambda: sf.count("Teacher__c", "Name = 'Daemon Write'") == 0, timeout=30,
                    what="the delete to reach Salesforce")
    wait_writer_idle(sfbridge, database)
    w = sfbridge.status_json()["writer"]
    assert w["pending"] == 0 and w["failed"] == 0, w
    wait_daemon(sfbridge, lambda: database.scalar("SELECT count(*) FROM salesforce._trigger_log") == 0,
                timeout=30, what="processed entries to move to the archive")
    assert all(e["archived"] and e["state"] in ("SUCCESS", "MERGED", *IGNORED_STATES)
               for e in log_entries(database)), describe_entries(log_entries(database))
    sfbridge.stop()


def _daemon_rw(sfbridge, database):
    sfbridge.init()
    map_rw(sfbridge, "Teacher__c", "--poll", "1")
    sfbridge.start()
    wait_daemon(sfbridge, lambda: database.count(T) == 5, timeout=60, what="the initial load")


def _entry_state(database, entry_id):
    return database.scalar("SELECT state FROM salesforce._trigger_log WHERE id = %s", (entry_id,))


def test_changes_made_while_the_insert_is_in_flight_follow_it(sfbridge, database, sf):
    """An insert folded with an update goes out; while it is in flight the app
    updates and then deletes the row. The delete must find the record the
    insert created (its entry is MERGED, the update's SUCCESS) and remove it."""
    _daemon_rw(sfbridge, database)
    sf.set_faults([{"path": "/services/data/v60.0/composite/*", "latency_ms": 1500}])
    with App(database) as app:
        with app.transaction():
            rid = app.insert(T, name="In Flight", employee_number__c="W-IF1", years__c=1)
            app.update(T, rid, years__c=2)
        first = max(e["id"] for e in record_entries(database, T, rid))
        wait_daemon(sfbridge, lambda: _entry_state(database, first) == "PENDING", timeout=15,
                    what="the insert to be in flight")
        app.update(T, rid, years__c=3)
        app.delete(T, rid)
    wait_daemon(sfbridge, lambda: open_entries(database) == 0, timeout=30, what="the writer to finish")
    sf.clear_faults()
    assert sf.query_all("SELECT Id, IsDeleted FROM Teacher__c WHERE Employee_Number__c = 'W-IF1'") != [], \
        "the insert reached Salesforce"
    assert sf.count("Teacher__c", "Employee_Number__c = 'W-IF1'") == 0, \
        "the record the app deleted is still in Salesforce:\n" + describe_entries(record_entries(database, T, rid))
    wait_daemon(sfbridge, lambda: database.count(T, where="employee_number__c = 'W-IF1'") == 0, timeout=15,
                what="no row pulled back")
    sfbridge.stop()


def test_a_row_an_app_holds_locked_gets_its_sfid_without_a_deadlock(sfbridge, database, sf):
    """The writer records outcomes without waiting on an app's row lock while
    holding locks of its own: an app transaction that locks the rows in the
    opposite order never gets a deadlock error, and every row gets its sfid."""
    _daemon_rw(sfbridge, database)
    sf.set_faults([{"path": "/services/data/v60.0/composite/*", "latency_ms": 800}])
    with App(database) as app:
        with app.transaction():
            ids = [app.insert(T, name=f"Locked {i}", employee_number__c=f"W-L{i}") for i in range(20)]
        wait_daemon(sfbridge, lambda: open_entries(database) and database.scalar(
            "SELECT count(*) FROM salesforce._trigger_log WHERE state = 'PENDING'") == 20, timeout=15,
            what="the 20 inserts to be in flight")
        # the app locks the rows last to first and holds them past the writer's answer
        with app.transaction():
            for rid in reversed(ids):
                app.update(T, rid, years__c=9)
            # the answer came back: the writer records it, waiting for the app's rows
            # one at a time (and holding nothing the app waits for)
            wait_daemon(sfbridge, lambda: database.scalar(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                " AND query LIKE '%%_hc_lastop%%'") >= 1, timeout=15,
                what="the writer to wait for a row the app holds")
    sf.clear_faults()
    wait_daemon(sfbridge, lambda: database.count(T, where="name LIKE 'Locked %%' AND sfid IS NOT NULL") == 20,
                timeout=30, what="every row to get its sfid")
    wait_writer_idle(sfbridge, database)
    assert sf.count("Teacher__c", "Name LIKE 'Locked %' AND Years__c = 9") == 20
    assert sf.count("Teacher__c", "Name LIKE 'Locked %'") == 20
    sfbridge.stop()


def test_a_large_delete_is_one_collection(rw, sfbridge, database, sf):
    """200 ids in one DELETE collection (a long URL) all reach Salesforce."""
    with rw.transaction():
        ids = [rw.insert(T, name=f"Bulk Delete {i}", employee_number__c=f"W-BD{i}") for i in range(150)]
    push_until_done(sfbridge, database)
    assert sf.count("Teacher__c", "Name LIKE 'Bulk Delete %'") == 150
    with rw.transaction():
        for rid in ids:
            rw.delete(T, rid)
    before = api_usage(sf)
    push_until_done(sfbridge, database)
    assert sf.count("Teacher__c", "Name LIKE 'Bulk Delete %'") == 0
    assert api_usage(sf) - before <= 3, "150 deletes are one collection request"
    assert not log_entries(database, "state = 'FAILED'")


def test_a_trickle_of_writes_gathers_into_one_request(sfbridge, database, sf):
    """SFBRIDGE_WRITE_GATHER_MS: the writer, woken by a change, waits that long
    for more, so single-row writes from an app go in a few collections."""
    sfbridge.set(SFBRIDGE_WRITE_GATHER_MS=1500)
    _daemon_rw(sfbridge, database)
    wait_writer_idle(sfbridge, database)
    before = api_usage(sf)
    with App(database) as app:
        for i in range(30):
            app.insert(T, name=f"Trickle {i}", employee_number__c=f"W-T{i}")
    wait_daemon(sfbridge, lambda: database.count(T, where="name LIKE 'Trickle %' AND sfid IS NOT NULL") == 30,
                timeout=30, what="the 30 rows written back")
    assert sf.count("Teacher__c", "Name LIKE 'Trickle %'") == 30
    used = api_usage(sf) - before
    # polls (one a second) use calls too; the writes took one or two collections, not 30
    assert used <= 12, f"{used} API calls for 30 single-row writes gathered over 1.5 s"
    sfbridge.stop()


@pytest.mark.parametrize("days", [None, 3])
def test_old_archive_entries_are_pruned(days, sfbridge, database, sf):
    if days is not None:
        sfbridge.set(SFBRIDGE_ARCHIVE_DAYS=days)
    keep_days = days or 31
    _setup(sfbridge, ("Teacher__c",))
    with App(database) as app:
        ids = [app.insert(T, name=f"Archive {i}", employee_number__c=f"W-A{i}") for i in range(3)]
        push_until_done(sfbridge, database)
    entries = log_entries(database, "archived")
    assert len(entries) == 3, describe_entries(log_entries(database))
    old, edge, new = (e["id"] for e in entries)
    with database.connect() as c:
        c.execute("UPDATE salesforce._trigger_log_archive SET created_at = now() - make_interval(days => %s), "
                  "processed_at = now() - make_interval(days => %s) WHERE id = %s", (keep_days + 5, keep_days + 5, old))
        c.execute("UPDATE salesforce._trigger_log_archive SET created_at = now() - make_interval(days => %s), "
                  "processed_at = now() - make_interval(days => %s) WHERE id = %s", (keep_days - 1, keep_days - 1, edge))
    push_until_done(sfbridge, database)
    left = {e["id"] for e in log_entries(database)}
    assert old not in left, f"an entry older than {keep_days} days stays in the archive"
    assert {edge, new} <= left, f"entries younger than {keep_days} days were pruned"
    assert len(ids) == 3
