"""The harness itself: Postgres and localforce answer, the REST client, the
comparison and the process helpers work. None of this needs sfbridge."""
import datetime as dt
import stat

import psycopg
import pytest

from lib.compare import assert_pg_equals_sf, diff_pg_sf, normalise
from lib.pgcluster import SERVER_TIMEZONE
from lib.salesforce import SfError
from lib.sfbridge import Sfbridge, SfbridgeError, find_mapping_entry
from lib.wait import wait_for


def test_postgres_answers(pg_cluster, database):
    assert database.scalar("SELECT current_setting('server_version_num')::int") // 10000 == 15
    assert database.scalar("SELECT current_database()") == database.name
    assert database.scalar("SHOW fsync") == "off"
    assert database.scalar("SHOW TimeZone") == SERVER_TIMEZONE
    # the unix socket in the cluster's directory answers too
    with psycopg.connect(host=str(pg_cluster.base), port=pg_cluster.port, user="postgres",
                         dbname=database.name) as c:
        assert c.execute("SELECT 1").fetchone() == (1,)


def test_databases_are_fresh_and_separate(database, new_database):
    database.execute("CREATE TABLE t (x int)")
    other = new_database()
    assert other.name != database.name
    assert not other.table_exists("t", schema="public")
    assert database.table_exists("t", schema="public")


def test_localforce_answers(localforce, sf):
    health = sf.health()
    assert health["status"] == "ok"
    assert health["objects"]["Teacher__c"] == 5
    assert sf.count("Teacher__c") == 5
    assert sf.count("Account") == 3
    assert sf.count("Order") == 2
    assert sf.org_id.startswith("00D") and len(sf.org_id) == 18
    types = set(sf.field_types("Teacher__c").values())
    for t in ("string", "textarea", "email", "phone", "url", "picklist", "multipicklist", "boolean", "int",
              "double", "currency", "percent", "date", "datetime", "time", "reference"):
        assert t in types, f"the e2e org's Teacher__c has no {t} field"


def test_rest_client_crud(sf):
    rid = sf.create("Teacher__c", {"Name": "Harness", "Employee_Number__c": "H-1", "Years__c": 3})
    assert sf.get("Teacher__c", rid)["Years__c"] == 3
    sf.update("Teacher__c", rid, {"Years__c": None, "Subject__c": "Art"})
    rec = sf.get("Teacher__c", rid, ["Years__c", "Subject__c"])
    assert rec["Years__c"] is None and rec["Subject__c"] == "Art"
    sf.delete("Teacher__c", rid)
    assert rid not in sf.ids("Teacher__c")
    gone = sf.query_all(f"SELECT Id, IsDeleted FROM Teacher__c WHERE Id = '{rid}'")
    assert gone == [{"Id": rid, "IsDeleted": True}]

    ids = sf.create_many("Teacher__c", [{"Name": f"Bulk {i}", "Employee_Number__c": f"HB-{i}"}
                                        for i in range(450)])
    assert len(ids) == 450
    sf.update_many("Teacher__c", [{"Id": i, "Years__c": 9} for i in ids[:250]])
    assert sf.count("Teacher__c", "Years__c = 9") == 250
    sf.delete_many(ids[:300])
    assert sf.count("Teacher__c") == 5 + 150
    assert len(sf.query("SELECT Id FROM Teacher__c")) == 155
    with pytest.raises(SfError) as err:
        sf.create("Teacher__c", {"Employee_Number__c": "E-0001"})
    assert err.value.error_code == "DUPLICATE_VALUE"


def test_rest_client_pages_and_admin(sf):
    assert sf.load_records("Teacher__c", [{"Name": f"L{i}", "Employee_Number__c": f"L-{i}"}
                                          for i in range(4500)], batch=2000) == 4500
    recs = sf.query("SELECT Id, Name FROM Teacher__c")   # 3 pages of 2,000
    assert len(recs) == 4505 and len({r["Id"] for r in recs}) == 4505
    sf.add_field("Teacher__c", "Grade__c", "int", default=7)
    assert sf.count("Teacher__c", "Grade__c = 7") == 4505


def test_faults_and_session_expiry(sf):
    # fault rules limited to sfbridge's API version leave the tests' client alone
    sf.set_faults([{"path": "/services/data/v60.0/*", "error_rate": 1.0, "status": 503}])
    assert sf.count("Teacher__c") == 5
    v60 = sf.__class__(sf.base_url, sf.client_id, sf.client_secret, sf.username, sf.password,
                       api_version="60.0")
    with pytest.raises(SfError) as err:
        v60.count("Teacher__c")
    assert err.value.status == 503
    sf.clear_faults()
    assert v60.count("Teacher__c") == 5
    old = sf.token
    sf.expire_sessions()
    assert sf.count("Teacher__c") == 5  # logged in again
    assert sf.token != old


def test_compare_finds_every_kind_of_difference(sf, database):
    """Fill a Heroku Connect style table by hand and check the comparison."""
    database.execute("CREATE SCHEMA salesforce")
    database.execute("""CREATE TABLE salesforce.teacher__c (
        id serial PRIMARY KEY, sfid varchar(18) UNIQUE, systemmodstamp timestamp, isdeleted boolean,
        createddate timestamp, name varchar(80), active__c boolean, years__c integer,
        rating__c double precision, hire_date__c date, last_login__c timestamp, start_time__c time,
        languages__c varchar(4099), school__c varchar(18), _hc_lastop varchar(32), _hc_err text)""")
    cols = ["Id", "SystemModstamp", "IsDeleted", "CreatedDate", "Name", "Active__c", "Years__c", "Rating__c",
            "Hire_Date__c", "Last_Login__c", "Start_Time__c", "Languages__c", "School__c"]
    types = sf.field_types("Teacher__c")
    for rec in sf.query(f"SELECT {', '.join(cols)} FROM Teacher__c"):
        vals = []
        for c in cols:
            v = rec[c]
            if v is not None and types[c] == "datetime":
                v = normalise("datetime", v, "sf")
            elif v is not None and types[c] == "time":
                v = normalise("time", v, "sf")
            vals.append(v)
        database.execute(
            "INSERT INTO salesforce.teacher__c (sfid, systemmodstamp, isdeleted, createddate, name, active__c,"
            " years__c, rating__c, hire_date__c, last_login__c, start_time__c, languages__c, school__c,"
            " _hc_lastop) VALUES (" + ", ".join(["%s"] * len(cols)) + ", 'SYNCED')", vals)
    assert assert_pg_equals_sf(sf, database, "Teacher__c") == 5

    maria = database.scalar("SELECT sfid FROM salesforce.teacher__c WHERE name = 'Maria Gonzalez'")
    database.execute("UPDATE salesforce.teacher__c SET rating__c = 4.12, "
                     "last_login__c = last_login__c + interval '1 millisecond' WHERE sfid = %s", (maria,))
    kwame = database.scalar("SELECT sfid FROM salesforce.teacher__c WHERE name = 'Kwame Mensah'")
    database.execute("DELETE FROM salesforce.teacher__c WHERE sfid = %s", (kwame,))
    database.execute("INSERT INTO salesforce.teacher__c (sfid, name) VALUES ('a01000000000999AAA', 'ghost')")
    diff = diff_pg_sf(sf, database, "Teacher__c")
    text = str(diff)
    assert diff.missing == [kwame]
    assert diff.extra == ["a01000000000999AAA"]
    assert {(f[0], f[1]) for f in diff.fields} == {(maria, "Rating__c"), (maria, "Last_Login__c")}
    assert "Rating__c" in text and "4.12" in text and kwame in text
    with pytest.raises(AssertionError, match="Rating__c"):
        assert_pg_equals_sf(sf, database, "Teacher__c")
    # restricting the fields compared
    database.execute("DELETE FROM salesforce.teacher__c WHERE sfid = 'a01000000000999AAA'")
    d2 = diff_pg_sf(sf, database, "Teacher__c", fields=["Name"])
    assert d2.missing == [kwame] and not d2.fields

    # tombstones: a deleted record may stay when marked isdeleted
    database.execute("INSERT INTO salesforce.teacher__c (sfid, name, isdeleted) SELECT %s, 'Kwame Mensah', false",
                     (kwame,))
    sf.delete("Teacher__c", kwame)
    assert diff_pg_sf(sf, database, "Teacher__c", fields=["Name"]).extra == [kwame]
    t = diff_pg_sf(sf, database, "Teacher__c", fields=["Name", "IsDeleted"], deleted="tombstone")
    assert [(f[0], f[1]) for f in t.fields] == [(kwame, "IsDeleted")]
    database.execute("UPDATE salesforce.teacher__c SET isdeleted = true WHERE sfid = %s", (kwame,))
    assert not diff_pg_sf(sf, database, "Teacher__c", fields=["Name", "IsDeleted"], deleted="tombstone")


def test_normalise():
    assert normalise("datetime", "2024-06-15T12:00:00.000+02:00", "sf") == "2024-06-15 10:00:00.000000"
    assert normalise("datetime", "2024-06-15T12:00:00.123+0000", "sf") == \
        normalise("datetime", dt.datetime(2024, 6, 15, 12, 0, 0, 123000), "pg")
    assert normalise("datetime", "2024-06-15T12:00:00.123Z", "sf") == \
        normalise("datetime", dt.datetime(2024, 6, 15, 14, 0, 0, 123000,
                                          tzinfo=dt.timezone(dt.timedelta(hours=2))), "pg")
    assert normalise("time", "23:59:59.999Z", "sf") == normalise("time", dt.time(23, 59, 59, 999000), "pg")
    assert normalise("date", "2024-02-29", "sf") == normalise("date", dt.date(2024, 2, 29), "pg")
    assert normalise("boolean", False, "sf") is False
    assert normalise("double", 1e-06, "sf") == 1e-06


def test_wait_for():
    calls = []
    assert wait_for(lambda: calls.append(1) or len(calls) >= 3, timeout=5, what="three calls") is True
    with pytest.raises(AssertionError, match="(?s)never true.*last error: ValueError"):
        wait_for(lambda: int("x"), timeout=0.3, what="never true")


def _script(path, body):
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def test_sfbridge_helper_environment(tmp_path, localforce, database, monkeypatch):
    monkeypatch.setenv("SFBRIDGE_SCHEMA", "leaked")
    monkeypatch.setenv("PGHOST", "/nowhere")
    sfb = Sfbridge(tmp_path / "s", database.url, localforce, {"SFBRIDGE_BULK_THRESHOLD": 10},
                   binary="/usr/bin/env")
    env = dict(line.split("=", 1) for line in sfb.run().stdout.splitlines() if "=" in line)
    assert env["DATABASE_URL"] == database.url
    assert env["SF_LOGIN_URL"] == localforce.url
    assert env["SF_CLIENT_ID"] == localforce.client_id
    assert env["SF_CLIENT_SECRET"] == localforce.client_secret
    assert env["SF_USERNAME"] == localforce.username
    assert env["SF_PASSWORD"] == localforce.password
    assert env["SFBRIDGE_BULK_THRESHOLD"] == "10"
    assert "SFBRIDGE_SCHEMA" not in env and "PGHOST" not in env
    env2 = sfb.run(env={"DATABASE_URL": None, "X": "1"}).stdout
    assert "DATABASE_URL=" not in env2 and "X=1" in env2
    assert "SF_CLIENT_ID" not in sfb.run(bare=True).stdout
    with pytest.raises(SfbridgeError, match="exit status: 3"):
        Sfbridge(tmp_path / "f", binary=_script(tmp_path / "fail.sh", "echo oops >&2; exit 3\n")).run()


def test_sfbridge_helper_daemon(tmp_path):
    fake = _script(tmp_path / "daemon.sh",
                   'trap "echo stopping; exit 0" TERM\necho started "$@"\n'
                   'while :; do sleep 0.05; done\n')
    sfb = Sfbridge(tmp_path / "d", binary=fake)
    sfb.start("--log-level", "debug")
    wait_for(lambda: "started --log-level debug run" in sfb.log(), timeout=10, what="the daemon's output")
    assert sfb.running()
    sfb.stop()
    assert not sfb.running()
    sfb.start()
    sfb.kill9()
    assert not sfb.running()
    stubborn = _script(tmp_path / "bad.sh", 'trap "exit 4" TERM\necho ready\nwhile :; do sleep 0.05; done\n')
    bad = Sfbridge(tmp_path / "b", binary=stubborn)
    bad.start()
    wait_for(lambda: "ready" in bad.log(), timeout=5, what="the trap to be set")
    with pytest.raises(SfbridgeError, match="exited 4 on SIGTERM"):
        bad.stop()


def test_find_mapping_entry():
    st = {"connection": {"state": "IDLE"},
          "mappings": [{"object_name": "Account", "state": "DATA_SYNCED"},
                       {"object_name": "Teacher__c", "state": "LOADING", "rows": 3}]}
    assert find_mapping_entry(st, "Teacher__c")["state"] == "LOADING"
    assert find_mapping_entry({"mappings": {"Teacher__c": {"state": "PAUSED"}}}, "teacher__c") == \
        {"state": "PAUSED"}
    assert find_mapping_entry(st, "Order") is None
