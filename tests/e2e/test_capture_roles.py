"""Capture that apps cannot abuse (issue 12 #5, docs/sfbridge.md "Roles and grants").

An app role with only the documented grants (USAGE on the schema, DML on the
mapped table, USAGE on its id sequence) writes a read-write mapping, in a
session whose search_path is the sfbridge schema (as Rails sets it), and its
changes reach Salesforce; it cannot write a read-only mapping's table, cannot
put rows into the trigger log, and a log row forged by a role that does have
rights on the trigger log is refused. Before the fix the capture functions ran
with the app's rights (so every app role needed rights on _trigger_log) and
took hstore from the session's search_path ('function hstore(teacher__c) does
not exist')."""
import uuid

import psycopg
import pytest

from lib.writeback import map_rw, push_until_done

S = "salesforce"


@pytest.fixture
def app_role(database, pg_cluster):
    name = "app_" + uuid.uuid4().hex[:8]
    database.execute(f'CREATE ROLE "{name}" LOGIN')
    yield name
    with pg_cluster.connect(database.name) as c:
        c.execute(f'DROP OWNED BY "{name}"')
    with pg_cluster.connect() as c:
        c.execute(f'DROP ROLE IF EXISTS "{name}"')


def _connect_as(pg_cluster, database, role):
    url = pg_cluster.url(database.name).replace("postgres@", f"{role}@", 1)
    conn = psycopg.connect(url, autocommit=True, application_name="e2e-app")
    conn.execute(f"SET search_path = {S}")
    return conn


def test_app_role_with_documented_grants(sfbridge, database, sf, pg_cluster, app_role):
    sfbridge.init()
    map_rw(sfbridge, "Teacher__c")
    sfbridge.add("Account", "--all-fields")
    sfbridge.once()
    for sql in (f'GRANT USAGE ON SCHEMA {S} TO "{app_role}"',
                f'GRANT SELECT, INSERT, UPDATE, DELETE ON {S}.teacher__c TO "{app_role}"',
                f'GRANT USAGE ON SEQUENCE {S}.teacher__c_id_seq TO "{app_role}"',
                f'GRANT SELECT ON {S}.account TO "{app_role}"'):
        database.execute(sql)
    with _connect_as(pg_cluster, database, app_role) as app:
        # insert, update, delete through unqualified names (search_path = salesforce)
        rid = app.execute("INSERT INTO teacher__c (name, email__c) VALUES ('Role Test', 'role@school.test')"
                          " RETURNING id").fetchone()[0]
        push_until_done(sfbridge, database)
        sfid = database.scalar(f"SELECT sfid FROM {S}.teacher__c WHERE id = %s", (rid,))
        assert sfid, "the app role's insert did not reach Salesforce"
        app.execute("UPDATE teacher__c SET name = 'Role Test 2' WHERE id = %s", (rid,))
        push_until_done(sfbridge, database)
        assert sf.get("Teacher__c", sfid)["Name"] == "Role Test 2"
        # no rights on a read-only mapping's table, nor on the trigger log
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            app.execute("UPDATE account SET name = 'x'")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            app.execute("INSERT INTO _trigger_log (action, table_name, record_id, state) "
                        "VALUES ('DELETE', 'account', 1, 'NEW')")
        app.execute("DELETE FROM teacher__c WHERE id = %s", (rid,))
        push_until_done(sfbridge, database)
        assert sf.count("Teacher__c", f"Id = '{sfid}'") == 0


@pytest.mark.xfail(strict=True, reason="issue 12 #5: forged trigger-log rows (guard and writer check pending)")
def test_forged_log_rows_are_never_sent(sfbridge, database, sf, pg_cluster, app_role):
    """A role that was given rights on the trigger log (as Heroku Connect's docs
    once told) still cannot make sfbridge delete a record of a read-only mapping."""
    sfbridge.init()
    map_rw(sfbridge, "Teacher__c")
    sfbridge.add("Account", "--all-fields")
    sfbridge.once()
    acct = database.query_dicts(f"SELECT id, sfid FROM {S}.account ORDER BY id LIMIT 1")[0]
    for sql in (f'GRANT USAGE ON SCHEMA {S} TO "{app_role}"',
                f'GRANT SELECT, INSERT, UPDATE ON {S}._trigger_log TO "{app_role}"',
                f'GRANT USAGE ON SEQUENCE {S}._trigger_log_id_seq TO "{app_role}"'):
        database.execute(sql)
    with _connect_as(pg_cluster, database, app_role) as app:
        with pytest.raises(psycopg.Error):
            app.execute("INSERT INTO _trigger_log (id, action, table_name, record_id, sfid, state) "
                        "VALUES (nextval('_trigger_log_id_seq'), 'DELETE', 'account', %s, %s, 'NEW')",
                        (acct["id"], acct["sfid"]))
    # even a row that got in (here by the superuser, as if the guard were dropped) is not sent
    database.execute(f"ALTER TABLE {S}._trigger_log DISABLE TRIGGER USER")
    database.execute(f"INSERT INTO {S}._trigger_log (id, action, table_name, record_id, sfid, state) "
                     f"VALUES (nextval('{S}._trigger_log_id_seq'), 'DELETE', 'account', %s, %s, 'NEW')",
                     (acct["id"], acct["sfid"]))
    database.execute(f"ALTER TABLE {S}._trigger_log ENABLE TRIGGER USER")
    push_until_done(sfbridge, database)
    assert sf.count("Account", f"Id = '{acct['sfid']}'") == 1, "a forged log row deleted a read-only record"
