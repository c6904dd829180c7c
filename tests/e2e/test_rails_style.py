"""A Rails-style app against sfbridge: plain SQL through psycopg, shaped as
ActiveRecord sends it (lib/rails.py), while `sfbridge run` does the rest; then
the records are checked in localforce.

This is how Heroku Connect's users work: models on the mapped tables, create /
update / destroy, transactions, insert_all / update_all / delete_all, waiting for
sfid, and reading _hc_lastop / _hc_err to learn what Salesforce said.
"""
import datetime as dt
import json
import re

import pytest

from lib import rails
from lib.compare import wait_pg_equals_sf
from lib.sfbridge import wait_daemon
from lib.writeback import assert_sf_fields, log_entries, map_rw, wait_writer_idle

TEACHER_FIELDS = ("Name,First_Name__c,Employee_Number__c,Email__c,Subject__c,Years__c,Active__c,Hire_Date__c,"
                  "School__c,School__r.External_Id__c")
REL = ("school__r__external_id__c",)


class School(rails.Model):
    table = "account"


class Teacher(rails.Model):
    table = "teacher__c"


@pytest.fixture
def app(sfbridge, database, sf):
    """Account and Teacher__c read-write (Teacher__c names its school by external id),
    the daemon running and loaded, and a Rails-like connection."""
    sfbridge.init()
    map_rw(sfbridge, "Account", "--poll", "1")
    map_rw(sfbridge, "Teacher__c", "--fields", TEACHER_FIELDS, "--poll", "1")
    sfbridge.start()
    wait_daemon(sfbridge, lambda: database.count("teacher__c") == 5 and database.count("account") == 3,
                timeout=60, what="the initial load")
    conn = rails.Connection(database.url)
    School.db = Teacher.db = conn
    yield conn
    conn.close()
    School.db = Teacher.db = None


def _wait_sfid(sfbridge, model, timeout=20):
    """What a Rails app does after create: reload until sfid is set."""
    return wait_daemon(sfbridge, lambda: model.reload()["sfid"], timeout=timeout,
                       what=f"sfid of {model.table} {model.id}")


def _wait_sf(sfbridge, sf, obj, where, n, timeout=20):
    wait_daemon(sfbridge, lambda: sf.count(obj, where) == n, timeout=timeout,
                what=f"{n} {obj} record(s) WHERE {where} in Salesforce")


def _wait_equal(sfbridge, sf, database):
    wait_pg_equals_sf(sf, database, "Account", timeout=60, context=sfbridge.log)
    wait_pg_equals_sf(sf, database, "Teacher__c", timeout=60, context=sfbridge.log, ignore=REL)


def test_create_update_destroy(app, sfbridge, database, sf):
    t = Teacher.create(name="Grace Hopper", first_name__c="Grace", employee_number__c="R-0001",
                       email__c="grace@school.test", subject__c="Mathematics", years__c=3, active__c=True,
                       hire_date__c=dt.date(2021, 9, 1))
    assert isinstance(t.id, int)
    sfid = _wait_sfid(sfbridge, t)
    assert t["_hc_lastop"] in ("INSERTED", "SYNCED") and t["_hc_err"] is None
    assert_sf_fields(sf, "Teacher__c", sfid, {"Name": "Grace Hopper", "First_Name__c": "Grace",
                                              "Employee_Number__c": "R-0001", "Email__c": "grace@school.test",
                                              "Subject__c": "Mathematics", "Years__c": 3, "Active__c": True,
                                              "Hire_Date__c": dt.date(2021, 9, 1)})

    t.update(years__c=4, subject__c="Science")
    last_update = [s for s in app.log if s.startswith("UPDATE")][-1]
    assert sorted(re.findall(r'"(\w+)" = %s,?', last_update.split(" WHERE ")[0])) == ["subject__c", "years__c"], \
        f"the model sends only the changed attributes: {last_update}"
    wait_daemon(sfbridge, lambda: sf.get("Teacher__c", sfid, ["Years__c"])["Years__c"] == 4, timeout=20,
                what="the update in Salesforce")
    assert_sf_fields(sf, "Teacher__c", sfid, {"Subject__c": "Science", "Email__c": "grace@school.test"})

    # an existing record, found the Rails way
    (kwame,) = Teacher.where(name="Kwame Mensah")
    kwame.update(email__c=None, active__c=True)
    wait_daemon(sfbridge, lambda: sf.get("Teacher__c", kwame["sfid"], ["Active__c"])["Active__c"] is True,
                timeout=20, what="Kwame's update in Salesforce")
    assert_sf_fields(sf, "Teacher__c", kwame["sfid"], {"Email__c": None, "Years__c": 0})

    assert t.destroy()
    _wait_sf(sfbridge, sf, "Teacher__c", "Employee_Number__c = 'R-0001'", 0)
    _wait_equal(sfbridge, sf, database)
    wait_writer_idle(sfbridge, database)
    assert not log_entries(database, "state = 'FAILED'")
    sfbridge.stop()


def test_transactions_savepoints_and_rollback(app, sfbridge, database, sf):
    with app.transaction():
        school = School.create(name="Rails Academy", external_id__c="R-SCH", industry="Education")
        first = Teacher.create(name="First Rails Teacher", employee_number__c="R-0101",
                               school__r__external_id__c="R-SCH")
        with rails.swallow_rollback():
            with app.transaction(requires_new=True):
                Teacher.create(name="Phantom", employee_number__c="R-0102")
                raise rails.Rollback
        second = Teacher.create(name="Second Rails Teacher", employee_number__c="R-0103",
                                school__r__external_id__c="R-SCH")
        second.update(years__c=9)
    assert any(s.startswith("SAVEPOINT active_record_") for s in app.log)
    with rails.swallow_rollback():
        with app.transaction():
            Teacher.create(name="Ghost", employee_number__c="R-0104")
            first.update(name="Never Renamed")
            raise rails.Rollback

    school_id = _wait_sfid(sfbridge, school)
    for t in (first, second):
        sfid = _wait_sfid(sfbridge, t)
        assert_sf_fields(sf, "Teacher__c", sfid, {"School__c": school_id})
    assert_sf_fields(sf, "Teacher__c", first["sfid"], {"Name": "First Rails Teacher"})
    assert_sf_fields(sf, "Teacher__c", second["sfid"], {"Name": "Second Rails Teacher", "Years__c": 9})
    assert_sf_fields(sf, "Account", school_id, {"Name": "Rails Academy", "External_Id__c": "R-SCH",
                                                "Industry": "Education"})
    wait_writer_idle(sfbridge, database)
    assert sf.count("Teacher__c", "Name IN ('Phantom', 'Ghost', 'Never Renamed')") == 0
    assert database.count("teacher__c", where="name IN ('Phantom', 'Ghost')") == 0
    names = {e["values"].get("name") for e in log_entries(database) if e["values"]}
    assert not names & {"Phantom", "Ghost", "Never Renamed"}, "rolled-back writes reached the trigger log"
    _wait_equal(sfbridge, sf, database)
    sfbridge.stop()


def test_insert_all_update_all_delete_all(app, sfbridge, database, sf):
    rows = [{"name": f"Bulk Rails {i}", "employee_number__c": f"R-B{i:03d}", "active__c": i % 2 == 0,
             "subject__c": "Art", "years__c": i} for i in range(120)]
    ids = Teacher.insert_all(rows)
    assert len(ids) == 120
    _wait_sf(sfbridge, sf, "Teacher__c", "Name LIKE 'Bulk Rails %'", 120, timeout=30)
    assert Teacher.update_all({"subject__c": "Music"}, active__c=True) >= 60
    _wait_sf(sfbridge, sf, "Teacher__c", "Name LIKE 'Bulk Rails %' AND Subject__c = 'Music'", 60, timeout=30)
    assert Teacher.delete_all(subject__c="Art") == 60
    _wait_sf(sfbridge, sf, "Teacher__c", "Name LIKE 'Bulk Rails %'", 60, timeout=30)
    _wait_equal(sfbridge, sf, database)
    groups = {}
    for rec in sf.query("SELECT Name, Years__c, Subject__c FROM Teacher__c WHERE Name LIKE 'Bulk Rails %'"):
        groups.setdefault(rec["Name"], []).append(rec)
    assert all(len(v) == 1 for v in groups.values()), "duplicates in Salesforce"
    assert {int(n.split()[-1]) for n in groups} == set(range(0, 120, 2))
    sfbridge.stop()


def test_validation_error_is_shown_to_the_app_and_fixed_by_saving_again(app, sfbridge, database, sf):
    t = Teacher.create(name="Bad Mail", email__c="not-an-email", employee_number__c="R-V01")
    ok = Teacher.create(name="Good Mail", email__c="good@school.test", employee_number__c="R-V02")
    wait_daemon(sfbridge, lambda: t.reload()["_hc_lastop"] == "FAILED", timeout=20,
                what="_hc_lastop = FAILED on the bad row")
    err = json.loads(t["_hc_err"])
    assert err["errors"][0]["statusCode"] == "INVALID_EMAIL_ADDRESS", err
    assert err["errors"][0]["message"], err
    assert t["sfid"] is None
    _wait_sfid(sfbridge, ok)
    # Heroku Connect's way: fix the row, save again
    t.update(email__c="fixed@school.test")
    sfid = _wait_sfid(sfbridge, t)
    assert t["_hc_err"] is None and t["_hc_lastop"] in ("INSERTED", "UPDATED", "SYNCED"), t.attrs
    assert_sf_fields(sf, "Teacher__c", sfid, {"Email__c": "fixed@school.test", "Name": "Bad Mail"})
    assert sf.count("Teacher__c", "Name = 'Bad Mail'") == 1
    _wait_equal(sfbridge, sf, database)
    sfbridge.stop()
