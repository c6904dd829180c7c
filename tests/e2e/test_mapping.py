"""Mappings: checks before changes, Heroku Connect's table layout, export and
import in Heroku Connect's JSON format, edit and remove (docs/sfbridge.md)."""
import json

import pytest

from lib.compare import assert_pg_equals_sf

# The Postgres type of every Teacher__c field (tests/e2e/fixtures/school-org.json),
# as format_type() writes it.
TEACHER_TYPES = {
    "id": "integer",
    "sfid": "character varying(18)",
    "systemmodstamp": "timestamp without time zone",
    "isdeleted": "boolean",
    "createddate": "timestamp without time zone",
    "name": "character varying(80)",
    "createdbyid": "character varying(18)",
    "lastmodifieddate": "timestamp without time zone",
    "lastmodifiedbyid": "character varying(18)",
    "ownerid": "character varying(18)",
    "first_name__c": "character varying(80)",
    "bio__c": "text",                                 # textarea of 32768
    "notes__c": "character varying(1000)",            # textarea of 1000
    "email__c": "character varying(80)",
    "phone__c": "character varying(40)",
    "website__c": "character varying(255)",
    "subject__c": "character varying(255)",
    "languages__c": "character varying(4099)",
    "active__c": "boolean",
    "years__c": "integer",
    "rating__c": "double precision",
    "salary__c": "double precision",
    "workload__c": "double precision",
    "hire_date__c": "date",
    "last_login__c": "timestamp without time zone",
    "start_time__c": "time without time zone",
    "school__c": "character varying(18)",
    "employee_number__c": "character varying(20)",
    "_hc_lastop": "character varying(32)",
    "_hc_err": "text",
}

SYSTEM_COLUMNS = {"id", "sfid", "systemmodstamp", "isdeleted", "createddate", "name", "_hc_lastop", "_hc_err"}


def _mappings(sfbridge):
    return sfbridge.run("mapping", "list").stdout


def _catalog_objects(database):
    if not database.table_exists("_sfbridge_mapping"):
        return []
    return [r[0] for r in database.query("SELECT object_name FROM salesforce._sfbridge_mapping")]


def test_unknown_object_is_refused_by_name(sfbridge, database):
    sfbridge.init()
    r = sfbridge.fails("mapping", "add", "Nope__c", "--all-fields")
    assert "Nope__c" in r.stderr, r.stderr
    assert "Nope__c" not in _mappings(sfbridge)
    assert not database.table_exists("nope__c")
    assert _catalog_objects(database) == []


def test_unknown_field_is_refused_by_name_and_nothing_is_created(sfbridge, database):
    sfbridge.init()
    r = sfbridge.fails("mapping", "add", "Teacher__c", "--fields", "First_Name__c,Bogus_Field__c")
    assert "Bogus_Field__c" in r.stderr, r.stderr
    assert not database.table_exists("teacher__c")
    assert _catalog_objects(database) == []
    r = sfbridge.fails("mapping", "add", "Teacher__c", "--all-fields", "--upsert-field", "No_Such__c")
    assert "No_Such__c" in r.stderr
    r = sfbridge.fails("mapping", "add", "Teacher__c", "--all-fields", "--index", "Missing_Idx__c")
    assert "Missing_Idx__c" in r.stderr
    assert not database.table_exists("teacher__c")
    assert _catalog_objects(database) == []


def test_table_layout_types_and_index_names(sfbridge, database):
    sfbridge.init()
    sfbridge.add("Teacher__c", "--all-fields", "--index", "Subject__c", "--index", "Email__c:unique")
    cols = database.columns("teacher__c")
    wrong = {c: (cols.get(c), t) for c, t in TEACHER_TYPES.items() if cols.get(c) != t}
    assert not wrong, f"columns whose type is not Heroku Connect's, as (got, expected): {wrong}"
    assert set(cols) == set(TEACHER_TYPES), f"unexpected columns: {set(cols) - set(TEACHER_TYPES)}"
    assert "nextval" in (database.column_default("teacher__c", "id") or ""), "id must be serial"
    idx = database.indexes("teacher__c")
    assert any(prim and c == ["id"] for _, prim, c in idx.values()), f"id is not the primary key: {idx}"
    assert idx.get("hcu_idx_teacher__c_sfid") == (True, False, ["sfid"]), idx
    assert idx.get("hc_idx_teacher__c_systemmodstamp") == (False, False, ["systemmodstamp"]), idx
    assert idx.get("hc_idx_teacher__c_subject__c") == (False, False, ["subject__c"]), idx
    assert idx.get("hcu_idx_teacher__c_email__c") == (True, False, ["email__c"]), idx


def test_system_fields_are_always_mapped(sfbridge, database):
    sfbridge.init()
    sfbridge.add("Teacher__c", "--fields", "First_Name__c,Hire_Date__c")
    assert set(database.columns("teacher__c")) == SYSTEM_COLUMNS | {"first_name__c", "hire_date__c"}
    sfbridge.add("Account", "--fields", "Industry")
    assert set(database.columns("account")) == SYSTEM_COLUMNS | {"industry"}


def test_reserved_word_object_gets_a_quoted_table(sfbridge, database, sf):
    sfbridge.init()
    sfbridge.add("Order", "--all-fields")
    assert database.table_exists("order")
    cols = database.columns("order")
    assert cols["description"] == "character varying(2000)" and cols["accountid"] == "character varying(18)"
    assert "hcu_idx_order_sfid" in database.indexes("order")
    sfbridge.once()
    assert database.scalar('SELECT count(*) FROM salesforce."order"') == 2
    assert_pg_equals_sf(sf, database, "Order")


def test_mapping_list_and_show(sfbridge):
    sfbridge.init()
    sfbridge.add("Teacher__c", "--fields", "First_Name__c", "--poll", "30")
    sfbridge.add("Account")
    listing = _mappings(sfbridge)
    assert "Teacher__c" in listing and "Account" in listing
    shown = json.loads(sfbridge.run("mapping", "show", "Teacher__c", "--json").stdout)
    text = json.dumps(shown)
    assert "Teacher__c" in text and "First_Name__c" in text
    assert "First_Name__c" in sfbridge.run("mapping", "show", "Teacher__c").stdout
    sfbridge.fails("mapping", "show", "Nope__c")


def test_adding_the_same_object_twice_is_refused(sfbridge, database):
    sfbridge.init()
    sfbridge.add("Account")
    r = sfbridge.fails("mapping", "add", "Account", "--all-fields")
    assert "Account" in r.stderr
    assert _catalog_objects(database) == ["Account"]


def _export(sfbridge):
    r = sfbridge.run("mapping", "export")
    try:
        return json.loads(r.stdout)
    except ValueError:
        pytest.fail(f"mapping export printed no JSON:\n{r.stdout}\n{r.stderr}")


def _by_object(export, volatile=("applied_at",)):
    """{object_name: mapping}, without the timestamps that differ from one export to the next."""
    out = {}
    for m in export["mappings"]:
        m = json.loads(json.dumps(m))
        for k in volatile:
            m.get("config", {}).pop(k, None)
            m.pop(k, None)
        out[m["object_name"]] = m
    return out


def test_export_is_heroku_connect_json(sfbridge, tmp_path):
    sfbridge.init()
    sfbridge.add("Teacher__c", "--fields", "First_Name__c,Email__c,Subject__c", "--poll", "60",
                 "--upsert-field", "Employee_Number__c", "--index", "Subject__c")
    sfbridge.add("Account", "--all-fields", "--access", "read_write")
    exp = _export(sfbridge)
    assert isinstance(exp.get("version"), int), exp
    assert isinstance(exp.get("connection"), dict), exp
    assert isinstance(exp.get("mappings"), list) and len(exp["mappings"]) == 2
    maps = _by_object(exp)
    t = maps["Teacher__c"]["config"]
    assert t["access"] == "read_only"
    assert t["sf_notify_enabled"] is False
    assert t["sf_polling_seconds"] == 60
    assert isinstance(t["sf_max_daily_api_calls"], int)
    assert isinstance(t["fields"], dict), "fields are an object keyed by field name, as Heroku Connect writes"
    for f in ("Id", "SystemModstamp", "IsDeleted", "CreatedDate", "Name", "First_Name__c", "Email__c",
              "Subject__c"):
        assert f in t["fields"], f"{f} missing from the exported fields: {sorted(t['fields'])}"
    assert isinstance(t["indexes"], dict) and "Subject__c" in t["indexes"], t["indexes"]
    assert t["indexes"]["Subject__c"].get("unique") is False
    assert t.get("upsert_field") == "Employee_Number__c"
    a = maps["Account"]["config"]
    assert a["access"] == "read_write"
    assert a["sf_polling_seconds"] == 600, "the default polling interval is Heroku Connect's 600 s"
    assert "Industry" in a["fields"] and "External_Id__c" in a["fields"]

    out = tmp_path / "export.json"
    sfbridge.run("mapping", "export", "--out", out)
    assert _by_object(json.loads(out.read_text())) == maps


def _layout(db, table):
    return db.columns(table), db.indexes(table)


def test_import_reproduces_the_tables(sfbridge, sfbridge_factory, database, new_database, localforce, sf,
                                      tmp_path):
    sfbridge.init()
    sfbridge.add("Teacher__c", "--fields", "First_Name__c,Hire_Date__c,Rating__c,Last_Login__c,School__c,Employee_Number__c",
                 "--poll", "30", "--index", "Hire_Date__c", "--index", "Employee_Number__c:unique")
    sfbridge.add("Account", "--all-fields")
    out = tmp_path / "export.json"
    sfbridge.run("mapping", "export", "--out", out)

    other_db = new_database()
    other = sfbridge_factory(other_db.url, localforce, name="other")
    other.init()
    other.run("mapping", "import", out)
    for table in ("teacher__c", "account"):
        assert _layout(other_db, table) == _layout(database, table), f"{table} differs after import"
    assert _by_object(_export(other)) == _by_object(_export(sfbridge))
    other.once()
    assert_pg_equals_sf(sf, other_db, "Teacher__c")
    assert_pg_equals_sf(sf, other_db, "Account")


HEROKU_EXPORT = {
    "version": 1,
    "connection": {
        "app_name": "dream-project-prod",
        "organization_id": "00D5e000000AbCdEAK",
        "exported_at": "2024-05-01T10:00:00.000000+00:00",
        "features": {"poll_db_no_merge": True, "poll_external_ids": False, "rest_count_only": False},
        "api_version": "60.0",
        "name": "herokuconnect-dream",
        "logplex_log_enabled": False,
    },
    "mappings": [
        {
            "object_name": "Teacher__c",
            "config": {
                "access": "read_only",
                "sf_notify_enabled": False,
                "sf_polling_seconds": 600,
                "sf_max_daily_api_calls": 30000,
                "fields": {"CreatedDate": {}, "Id": {}, "IsDeleted": {}, "Name": {}, "SystemModstamp": {},
                           "First_Name__c": {}, "Hire_Date__c": {}, "Active__c": {}, "Start_Time__c": {},
                           "Languages__c": {}},
                "indexes": {"Id": {"unique": True}, "SystemModstamp": {"unique": False},
                            "Hire_Date__c": {"unique": False}},
            },
        },
        {
            "object_name": "Account",
            "config": {
                "access": "read_only",
                "sf_notify_enabled": False,
                "sf_polling_seconds": 600,
                "sf_max_daily_api_calls": 30000,
                "fields": {"CreatedDate": {}, "Id": {}, "IsDeleted": {}, "Name": {}, "SystemModstamp": {},
                           "External_Id__c": {}},
                "indexes": {"Id": {"unique": True}, "SystemModstamp": {"unique": False},
                            "External_Id__c": {"unique": True}},
            },
        },
    ],
}


def test_import_of_a_heroku_connect_export(sfbridge, database, sf, tmp_path):
    f = tmp_path / "heroku-connect-export.json"
    f.write_text(json.dumps(HEROKU_EXPORT, indent=2))
    sfbridge.init()
    sfbridge.run("mapping", "import", f)
    assert set(database.columns("teacher__c")) == SYSTEM_COLUMNS | {
        "first_name__c", "hire_date__c", "active__c", "start_time__c", "languages__c"}
    assert database.columns("teacher__c")["start_time__c"] == "time without time zone"
    idx = database.indexes("teacher__c")
    assert "hcu_idx_teacher__c_sfid" in idx and "hc_idx_teacher__c_systemmodstamp" in idx
    assert idx.get("hc_idx_teacher__c_hire_date__c") == (False, False, ["hire_date__c"]), idx
    assert database.indexes("account").get("hcu_idx_account_external_id__c") == \
        (True, False, ["external_id__c"])
    exp = _by_object(_export(sfbridge))
    assert set(exp) == {"Teacher__c", "Account"}
    assert exp["Teacher__c"]["config"]["sf_polling_seconds"] == 600
    assert set(HEROKU_EXPORT["mappings"][0]["config"]["fields"]) <= set(exp["Teacher__c"]["config"]["fields"])
    sfbridge.once()
    assert_pg_equals_sf(sf, database, "Teacher__c")
    assert_pg_equals_sf(sf, database, "Account")


def test_import_with_an_unknown_field_changes_nothing(sfbridge, database, tmp_path):
    bad = json.loads(json.dumps(HEROKU_EXPORT))
    bad["mappings"][1]["config"]["fields"]["Shoe_Size__c"] = {}
    f = tmp_path / "bad.json"
    f.write_text(json.dumps(bad))
    sfbridge.init()
    r = sfbridge.fails("mapping", "import", f)
    assert "Shoe_Size__c" in r.stderr, r.stderr
    assert not database.table_exists("teacher__c") and not database.table_exists("account")
    assert _catalog_objects(database) == []
    f.write_text("{not json")
    sfbridge.fails("mapping", "import", f)


def test_edit_checks_before_changing(sfbridge, database):
    sfbridge.init()
    sfbridge.add("Teacher__c", "--fields", "First_Name__c")
    before = database.columns("teacher__c")
    r = sfbridge.fails("mapping", "edit", "Teacher__c", "--add-fields", "Years__c,Not_There__c")
    assert "Not_There__c" in r.stderr
    assert database.columns("teacher__c") == before
    sfbridge.run("mapping", "edit", "Teacher__c", "--add-fields", "Years__c,Active__c", "--poll", "5")
    cols = database.columns("teacher__c")
    assert cols["years__c"] == "integer" and cols["active__c"] == "boolean"
    assert _by_object(_export(sfbridge))["Teacher__c"]["config"]["sf_polling_seconds"] == 5
    sfbridge.run("mapping", "edit", "Teacher__c", "--index", "Years__c")
    assert "hc_idx_teacher__c_years__c" in database.indexes("teacher__c")


def test_remove_keeps_the_table_unless_asked(sfbridge, database, sf):
    sfbridge.init()
    sfbridge.add("Teacher__c")
    sfbridge.add("Account")
    sfbridge.once()
    sfbridge.run("mapping", "remove", "Teacher__c")
    assert "Teacher__c" not in _mappings(sfbridge)
    assert "Teacher__c" not in _catalog_objects(database)
    assert database.table_exists("teacher__c"), "remove without --drop-table must keep the data"
    assert database.count("teacher__c") == 5
    sfbridge.run("mapping", "remove", "Account", "--drop-table")
    assert not database.table_exists("account")
    assert _catalog_objects(database) == []
    sfbridge.fails("mapping", "remove", "Account")
