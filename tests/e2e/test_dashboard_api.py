"""The management API's calls the dashboard is built on (issue 16): the org's objects and
fields, mapping create/edit/remove with the CLI's checks and messages, the Explorer's keyset
pages and a record's history, retrying a write error, the activity counts, the dashboard's
files, and Basic authentication for browsers."""
import base64
import json
import urllib.parse

import pytest

from lib.sfbridge import wait_daemon
from lib.wait import wait_for
from lib.writeback import App, map_rw, row
from test_api import Api, _start

T = "teacher__c"
WARN = "Read-write mappings require a unique identifier to be specified"


@pytest.fixture
def api(sfbridge, database, sf):
    sfbridge.init()
    sfbridge.add("Account", "--fields", "Name")
    a = Api(_start(sfbridge))
    wait_daemon(sfbridge, lambda: a.get("/readyz")[0] == 200 and sfbridge.mapping_status("Account")["loaded"],
                what="readyz 200 and Account loaded")
    yield a
    if sfbridge.running():
        sfbridge.stop()


def _send(api, method, path, body):
    status, _, text = api.call(method, path, body=body)
    return status, json.loads(text)


def _loaded(sfbridge, obj):
    m = sfbridge.mapping_status(obj)
    return m and m["loaded"] and m["state"] == "DATA_SYNCED"


def test_objects_and_fields_for_the_editor(api):
    status, objs = api.get("/api/v3/connections/default/objects")
    assert status == 200 and objs["count"] == len(objs["results"]) > 2, objs
    by = {o["name"]: o for o in objs["results"]}
    assert by["Account"]["mapped"] is True and by["Teacher__c"]["mapped"] is False
    assert by["Teacher__c"]["custom"] is True and by["Teacher__c"]["label"]
    status, d = api.get("/api/v3/connections/default/objects/Teacher__c")
    assert status == 200 and d["name"] == "Teacher__c" and d["mapping"] is None, d
    assert d["external_id_fields"] == ["Employee_Number__c"], d["external_id_fields"]
    f = {x["name"]: x for x in d["fields"]}
    assert f["Employee_Number__c"]["external_id"] is True and f["Email__c"]["external_id"] is False and f["Name"]["type"] == "string"
    assert f["Id"]["createable"] is False
    status, acc = api.get("/api/v3/connections/default/objects/Account")
    assert acc["mapped"] is True and acc["mapping"]["access"] == "read_only"
    assert "Name" in acc["mapping"]["fields"] and acc["mapping"]["upsert_field"] is None
    status, body = api.get("/api/v3/connections/default/objects/Nope__c")
    assert status == 404 and "unknown Salesforce object 'Nope__c'" in body["message"], body


def test_create_edit_remove_a_mapping_as_the_editor_does(api, sfbridge, database):
    new = {"object_name": "Teacher__c",
           "config": {"access": "read_write", "fields": ["Name", "Email__c"], "sf_polling_seconds": 30}}
    status, m = _send(api, "POST", "/api/v3/connections/default/mappings", new)
    assert status == 201 and m["object_name"] == "Teacher__c" and m["warnings"] == [WARN], m
    wait_daemon(sfbridge, lambda: _loaded(sfbridge, "Teacher__c"), what="the Teacher__c load")
    assert database.count(T) > 0
    # the CLI's own message for a mapping that exists
    status, body = _send(api, "POST", "/api/v3/connections/default/mappings", new)
    assert status == 409 and "already mapped" in body["message"], body
    # the editor sends the whole list: Subject__c added (backfilled), Email__c kept, the unique identifier set
    edit = {"config": {"fields": ["Name", "Email__c", "Subject__c", "Employee_Number__c"],
                       "upsert_field": "Employee_Number__c", "sf_notify_enabled": False}}
    status, m = _send(api, "PATCH", "/api/v3/mappings/Teacher__c", edit)
    assert status == 200 and m["warnings"] == [] and m["upsert_field"] == "Employee_Number__c", m
    wait_daemon(sfbridge, lambda: database.query(f"SELECT count(*) FROM salesforce.{T} WHERE subject__c IS NOT NULL")[0][0] > 0,
                what="Subject__c backfilled")
    # a field that is not the object's, with mapping edit's message
    status, body = _send(api, "PATCH", "/api/v3/mappings/Teacher__c", {"config": {"fields": ["Name", "Bogus__c"]}})
    assert status == 400 and "Bogus__c" in body["message"], body
    status, body = _send(api, "PATCH", "/api/v3/mappings/Teacher__c", {"config": {"sf_polling_seconds": 0}})
    assert status == 400 and "sf_polling_seconds" in body["message"], body
    status, body = _send(api, "POST", "/api/v3/connections/default/mappings",
                         {"object_name": "Contact", "config": {"access": "read_only", "fields": []}})
    assert status == 400 and body["message"] == "choose at least one field", body
    # removing Employee_Number__c while it is the unique identifier: the CLI's refusal
    status, body = _send(api, "PATCH", "/api/v3/mappings/Teacher__c", {"config": {"fields": ["Name"]}})
    assert status == 400 and "unique identifier" in body["message"], body
    status, body = _send(api, "DELETE", "/api/v3/mappings/Teacher__c?drop_table=1", {})
    assert status == 202, body
    assert api.get("/api/v3/mappings/Teacher__c")[0] == 404
    assert database.query("SELECT to_regclass('salesforce.teacher__c') IS NULL")[0][0]


def test_explorer_pages_by_keyset_and_shows_history(api, sfbridge, database, sf):
    map_rw(sfbridge, "Teacher__c")
    wait_daemon(sfbridge, lambda: _loaded(sfbridge, "Teacher__c"), what="the Teacher__c load")
    n = database.count(T)
    assert n >= 5
    seen, after, pages = [], None, 0
    while True:
        q = "limit=2" + (f"&after={urllib.parse.quote(after)}" if after else "")
        status, page = api.get(f"/api/v3/mappings/Teacher__c/records?{q}")
        assert status == 200, page
        seen += [int(r["id"]) for r in page["results"]]
        pages += 1
        after = page["next"]
        if not after:
            break
    assert seen == sorted(seen) and len(seen) == n == page["estimated_count"] and page["exact"] is True
    assert pages == (n + 1) // 2
    # sorted by name, descending, paged: the same order as ORDER BY name DESC NULLS LAST, id DESC
    want = [r[0] for r in database.query(f"SELECT id FROM salesforce.{T} ORDER BY name DESC NULLS LAST, id DESC")]
    got, after = [], None
    while True:
        q = "limit=3&sort=name&dir=desc" + (f"&after={urllib.parse.quote(after)}" if after else "")
        page = api.get(f"/api/v3/mappings/Teacher__c/records?{q}")[1]
        got += [int(r["id"]) for r in page["results"]]
        after = page["next"]
        if not after:
            break
    assert got == want
    cols = {c["name"] for c in page["columns"]}
    assert {"id", "sfid", "name", "email__c", "_hc_lastop"} <= cols
    # filter and search
    one = database.query_dicts(f"SELECT id, sfid, name FROM salesforce.{T} ORDER BY id LIMIT 1")[0]
    page = api.get(f"/api/v3/mappings/Teacher__c/records?field=sfid&value={one['sfid']}")[1]
    assert [r["id"] for r in page["results"]] == [str(one["id"])]
    page = api.get(f"/api/v3/mappings/Teacher__c/records?q={urllib.parse.quote(one['name'][2:6].upper())}")[1]
    assert str(one["id"]) in [r["id"] for r in page["results"]]
    # cursors edited by hand: a value the sort column's type refuses, an id beyond int
    edited = [urllib.parse.quote(json.dumps(c)) for c in (["not a number", 1], ["1.5", 2**40])]
    for c in edited:
        status, body = api.get(f"/api/v3/mappings/Teacher__c/records?sort=salary__c&after={c}")
        assert status == 400 and "cursor" in body["message"], (c, body)
    for bad in ("sort=nope", "field=x%22;drop", "limit=0", "limit=501", "dir=up", "after=garbage"):
        status, body = api.get(f"/api/v3/mappings/Teacher__c/records?{bad}")
        assert status == 400 and body["message"], (bad, body)
    # a write from an app, then the record's history
    with App(database) as app:
        app.update(T, one["id"], name="Renamed In Postgres")
    wait_daemon(sfbridge, lambda: row(database, T, one["id"])["_hc_lastop"] == "UPDATED", what="the update written")
    status, rec = api.get(f"/api/v3/mappings/Teacher__c/records/{one['sfid']}")
    assert status == 200 and rec["record"]["name"] == "Renamed In Postgres", rec
    h = rec["history"][0]
    assert h["action"] == "UPDATE" and h["state"] == "SUCCESS" and h["values"]["name"] == "Renamed In Postgres", h
    assert api.get(f"/api/v3/mappings/Teacher__c/records/{one['id']}")[1]["record"]["sfid"] == one["sfid"]
    assert api.get("/api/v3/mappings/Teacher__c/records/999999")[0] == 404
    assert api.get("/api/v3/mappings/Teacher__c/records/a0X000000000000AAA")[0] == 404


def test_retry_a_write_error_and_activity_counts(api, sfbridge, database):
    map_rw(sfbridge, "Teacher__c")
    wait_daemon(sfbridge, lambda: _loaded(sfbridge, "Teacher__c"), what="the Teacher__c load")
    with App(database) as app:
        rid = app.insert(T, name="Bad Email", email__c="not an email")
    wait_daemon(sfbridge, lambda: row(database, T, rid)["_hc_lastop"] == "FAILED", what="the write to fail")
    err = api.get("/api/v3/connections/default/errors")[1]["results"][0]
    assert api.post("/api/v3/errors/123456789/actions/retry")[0] == 404
    assert api.post(f"/api/v3/errors/{err['id']}/actions/explode")[0] == 404
    with App(database) as app:
        app.update(T, rid, email__c="fixed@example.org")
    status, body = api.post(f"/api/v3/errors/{err['id']}/actions/retry")
    assert status == 202 and body["requeued"] >= 1, body
    wait_daemon(sfbridge, lambda: row(database, T, rid)["sfid"], what="the retried insert")
    act = wait_for(lambda: (lambda a: a if sum(b["rows_out"] for b in a["buckets"]) >= 1
                            and sum(b["errors"] for b in a["buckets"]) >= 1 else None)(
        api.get("/api/v3/connections/default/activity?hours=1")[1]), timeout=30, what="activity counts")
    assert act["bucket_seconds"] == 60 and len(act["buckets"]) == 60
    assert sum(b["rows_in"] for b in act["buckets"]) >= database.count(T) - 1
    day = api.get("/api/v3/connections/default/activity?hours=24&mapping=Teacher__c")[1]
    assert day["bucket_seconds"] == 900 and len(day["buckets"]) == 96
    assert sum(b["rows_out"] for b in day["buckets"]) >= 1
    assert api.get("/api/v3/connections/default/activity?hours=3")[0] == 400


def test_dashboard_files_and_headers(api):
    status, hdrs, text = api.call("GET", "/")
    assert status == 200 and hdrs["Content-Type"].startswith("text/html") and "<html" in text.lower()
    assert "default-src 'self'" in hdrs["Content-Security-Policy"]
    status, hdrs, _ = api.call("GET", "/ui/app.js")
    assert status == 200 and hdrs["Content-Type"].startswith("text/javascript")
    for bad in ("/ui/..%2Fapi.c", "/ui/.hidden", "/ui/nope.js"):
        assert api.call("GET", bad)[0] == 404, bad


def test_basic_auth_for_browsers(sfbridge, database):
    sfbridge.init()
    sfbridge.add("Account", "--fields", "Name")
    base = _start(sfbridge, env={"SFBRIDGE_HTTP_TOKEN": "s3cret-token"})
    anon = Api(base)
    status, hdrs, _ = anon.call("GET", "/")
    assert status == 401 and hdrs["WWW-Authenticate"].startswith("Basic realm="), hdrs
    basic = {"Authorization": "Basic " + base64.b64encode(b"anyone:s3cret-token").decode()}
    wrong = {"Authorization": "Basic " + base64.b64encode(b"anyone:nope").decode()}
    assert anon.call("GET", "/", headers=basic)[0] == 200
    assert anon.call("GET", "/api/v3/connections", headers=wrong)[0] == 401
    assert anon.call("GET", "/api/v3/connections", headers={"Authorization": "Basic !!!"})[0] == 401
    # a browser sends Basic by itself: a state-changing call still needs JSON
    form = dict(basic, **{"Content-Type": "application/x-www-form-urlencoded"})
    assert anon.call("POST", "/api/v3/mappings/Account/actions/pause", headers=form)[0] == 403
    assert anon.call("POST", "/api/v3/mappings/Account/actions/pause", body={}, headers=basic)[0] == 202
    sfbridge.stop()


def test_the_listener_stays_up_through_a_reload(sfbridge, database):
    """A SIGHUP that keeps SFBRIDGE_HTTP and its token keeps the listener (and its port, even one
    picked with port 0), with the new settings: a dashboard open in a browser goes on working."""
    import re
    import signal

    sfbridge.init()
    sfbridge.add("Account", "--fields", "Name")
    a = Api(_start(sfbridge))
    sfbridge.proc.send_signal(signal.SIGHUP)
    wait_daemon(sfbridge, lambda: "reloading the configuration" in sfbridge.log(200), what="the reload")
    wait_daemon(sfbridge, lambda: a.get("/readyz")[0] == 200, what="ready again on the same port")
    assert len(re.findall(r"management API on", sfbridge.log(400))) == 1
    assert a.get("/api/v3/mappings/Account")[0] == 200
    sfbridge.stop()
