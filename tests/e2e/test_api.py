"""The management API of `sfbridge run --http` (issue 15): every endpoint, health and readiness
under failures, Prometheus metrics that parse and move as work happens, actions, write errors,
authentication beyond loopback and the refusal of forged state-changing calls."""
import json
import re
import urllib.error
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from lib.sfbridge import wait_daemon
from lib.wait import wait_for
from lib.writeback import App, map_rw, row

T = "teacher__c"


class Api:
    def __init__(self, base, token=None):
        self.base, self.token = base, token

    def call(self, method, path, body=None, headers=None, token=True):
        h = dict(headers or {})
        if token and self.token:
            h["Authorization"] = f"Bearer {self.token}"
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            h.setdefault("Content-Type", "application/json")
        req = urllib.request.Request(self.base + path, data=data, method=method, headers=h)
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return r.status, r.headers, r.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.headers, exc.read().decode()

    def get(self, path, **kw):
        status, _, text = self.call("GET", path, **kw)
        return status, (json.loads(text) if text.startswith(("{", "[")) else text)

    def post(self, path, body=None, **kw):
        status, _, text = self.call("POST", path, body=body if body is not None else {}, **kw)
        return status, json.loads(text)


def _start(sfbridge, env=None):
    sfbridge.start(env={"SFBRIDGE_HTTP": "127.0.0.1:0", **(env or {})})
    port = wait_daemon(sfbridge, lambda: _port(sfbridge), what="the API's listening line")
    return f"http://127.0.0.1:{port}"


def _port(sfbridge):
    m = re.search(r"management API on http://127\.0\.0\.1:(\d+)/", sfbridge.log(400))
    return int(m.group(1)) if m else None


@pytest.fixture
def api(sfbridge, database, sf):
    sfbridge.init()
    map_rw(sfbridge, "Teacher__c")
    sfbridge.add("Account", "--fields", "Name")
    a = Api(_start(sfbridge))
    wait_daemon(sfbridge, lambda: a.get("/readyz")[0] == 200 and all(
        m["loaded"] and m["state"] == "DATA_SYNCED" for m in sfbridge.status_json()["mappings"]),
        what="readyz 200 and both mappings loaded")
    yield a
    if sfbridge.running():
        sfbridge.stop()


def _metrics(api):
    status, text = api.get("/metrics")
    assert status == 200
    fams = {f.name: f for f in text_string_to_metric_families(text)}
    return fams


def _sample(fams, name, **labels):
    for fam in fams.values():
        for s in fam.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return s.value
    raise AssertionError(f"no sample {name} {labels} in {sorted(fams)}")


def test_health_readiness_and_connection(api, sfbridge):
    status, body = api.get("/healthz")
    assert status == 200 and body["status"] == "ok" and body["version"], body
    status, body = api.get("/readyz")
    assert (status, body["ready"], body["status"]) == (200, True, "healthy"), body
    status, body = api.get("/api/v3/connections")
    assert status == 200 and body["count"] == 1, body
    conn = body["results"][0]
    assert conn["id"] == "default" and conn["schema_name"] == "salesforce" and conn["org_id"], conn
    status, one = api.get("/api/v3/connections/default")
    assert status == 200 and {m["object_name"] for m in one["mappings"]} == {"Account", "Teacher__c"}
    status, maps = api.get("/api/v3/connections/default/mappings")
    assert status == 200 and maps["count"] == 2
    status, m = api.get("/api/v3/mappings/Teacher__c")
    # the daemon polls on its own, so the mapping may be polling at this moment
    assert status == 200 and m["access"] == "read_write", m
    assert m["state"] in ("DATA_SYNCED", "POLLING_SF_CHANGES"), m
    status, exp = api.get("/api/v3/connections/default/export")
    assert status == 200 and {x["object_name"] for x in exp["mappings"]} == {"Account", "Teacher__c"}
    assert api.get("/api/v3/mappings/Nope__c")[0] == 404
    assert api.get("/api/v3/connections/other")[0] == 404
    assert api.get("/no/such/thing")[0] == 404
    assert api.call("DELETE", "/healthz")[0] == 405


def test_metrics_parse_and_move(api, sfbridge, database, sf):
    fams = _metrics(api)
    assert _sample(fams, "sfbridge_build_info", version=fams["sfbridge_build_info"].samples[0].labels["version"]) == 1
    assert _sample(fams, "sfbridge_health") == 0
    n = database.count(T)
    assert _sample(fams, "sfbridge_mapping_rows", object="Teacher__c") == n
    # the daemon polls on its own: a poll may be running at this moment
    states = [s.labels["state"] for s in fams["sfbridge_mapping_state"].samples
              if s.labels.get("object") == "Teacher__c" and s.value == 1]
    assert len(states) == 1 and states[0] in ("DATA_SYNCED", "POLLING_SF_CHANGES"), states
    assert _sample(fams, "sfbridge_writes_failed") == 0
    calls = _sample(fams, "sfbridge_mapping_api_calls_today", object="Teacher__c")
    polls = _sample(fams, "sfbridge_mapping_polls_total", object="Teacher__c")
    synced = _sample(fams, "sfbridge_mapping_rows_synced_total", object="Teacher__c")
    with App(database) as app:
        rid = app.insert(T, name="Bad Email", email__c="not an email")
    wait_daemon(sfbridge, lambda: row(database, T, rid)["_hc_lastop"] == "FAILED", what="the write to fail")
    sf.create("Teacher__c", {"Name": "From Salesforce"})
    sfbridge.run("poll", "Teacher__c")  # asks nothing of the daemon: the CLI polls in its own process
    fams = wait_for(lambda: (lambda f: f if _sample(f, "sfbridge_writes_failed") == 1 else None)(_metrics(api)),
                    timeout=30, what="sfbridge_writes_failed to reach 1")
    assert _sample(fams, "sfbridge_health") == 1
    assert _sample(fams, "sfbridge_mapping_rows", object="Teacher__c") == n + 2
    assert _sample(fams, "sfbridge_mapping_api_calls_today", object="Teacher__c") > calls
    assert _sample(fams, "sfbridge_mapping_polls_total", object="Teacher__c") > polls
    assert _sample(fams, "sfbridge_mapping_rows_synced_total", object="Teacher__c") > synced


def test_write_errors_and_readiness_when_degraded(api, sfbridge, database):
    with App(database) as app:
        rid = app.insert(T, name="Bad Email", email__c="not an email")
    wait_daemon(sfbridge, lambda: row(database, T, rid)["_hc_lastop"] == "FAILED", what="the write to fail")
    status, errs = api.get("/api/v3/connections/default/errors")
    assert status == 200 and errs["count"] == 1, errs
    e = errs["results"][0]
    assert (e["table_name"], e["record_id"], e["action"]) == (T, rid, "INSERT"), e
    assert "email" in e["message"].lower() and e["values"]["name"] == "Bad Email", e
    assert api.get("/api/v3/mappings/Teacher__c/errors")[1]["count"] == 1
    assert api.get("/api/v3/mappings/Account/errors")[1]["count"] == 0
    status, body = api.get("/readyz")
    assert status == 503 and body["status"] == "degraded", body
    assert any("failed writes" in r for r in body["reasons"]), body


def test_actions_pause_resume_reload(api, sfbridge):
    status, body = api.post("/api/v3/mappings/Account/actions/pause")
    assert status == 202 and body == {"action": "pause", "target": "Account"}, body
    assert sfbridge.mapping_status("Account")["paused"] is True
    assert api.post("/api/v3/mappings/Account/actions/resume")[0] == 202
    assert sfbridge.mapping_status("Account")["paused"] is False
    assert api.post("/api/v3/mappings/Account/actions/reload")[0] == 202
    wait_daemon(sfbridge, lambda: sfbridge.mapping_status("Account")["state"] == "DATA_SYNCED"
                and sfbridge.mapping_status("Account")["loaded"], what="the reload to finish")
    assert api.post("/api/v3/connections/default/actions/pause")[0] == 202
    assert sfbridge.status_json()["connection"]["state"] == "PAUSED"
    assert api.post("/api/v3/connections/default/actions/resume")[0] == 202
    assert api.post("/api/v3/mappings/Nope__c/actions/pause")[0] == 404
    assert api.post("/api/v3/mappings/Account/actions/explode")[0] == 404
    assert api.post("/api/v3/connections/default/actions/reload")[0] == 404


def test_forged_state_changing_calls_are_refused(api, sfbridge):
    # a form post from a page of another site: no JSON, or another Origin
    status, _, _ = api.call("POST", "/api/v3/mappings/Account/actions/pause", body=None,
                            headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 403
    status, _ = api.post("/api/v3/mappings/Account/actions/pause", headers={"Origin": "http://evil.test"})
    assert status == 403
    status, _ = api.post("/api/v3/mappings/Account/actions/pause", headers={"Sec-Fetch-Site": "cross-site"})
    assert status == 403
    assert sfbridge.mapping_status("Account")["paused"] is False
    # the page's own origin is fine
    host = api.base.split("://", 1)[1]
    assert api.post("/api/v3/mappings/Account/actions/pause", headers={"Origin": f"http://{host}"})[0] == 202


def test_a_token_is_required_when_set_and_beyond_loopback(sfbridge, database):
    sfbridge.init()
    sfbridge.add("Account", "--fields", "Name")
    r = sfbridge.fails("run", "--http", "0.0.0.0:0", status=1, timeout=60)
    assert "SFBRIDGE_HTTP_TOKEN" in r.stderr and "beyond loopback" in r.stderr, r.stderr
    base = _start(sfbridge, env={"SFBRIDGE_HTTP_TOKEN": "s3cret-token"})
    anon, auth = Api(base), Api(base, token="s3cret-token")
    assert anon.get("/healthz")[0] == 200, "healthz stays open for liveness probes"
    for path in ("/readyz", "/metrics", "/api/v3/connections"):
        assert anon.get(path)[0] == 401, path
        assert Api(base, token="wrong").get(path)[0] == 401, path
    wait_daemon(sfbridge, lambda: auth.get("/readyz")[0] == 200, what="readyz with the token")
    # with a token, a script's POST needs no JSON body
    status, _, _ = auth.call("POST", "/api/v3/mappings/Account/actions/pause")
    assert status == 202
    assert "s3cret-token" not in sfbridge.log(1000)
    sfbridge.stop()


def test_readiness_follows_postgres_and_salesforce(sfbridge, database, sf, localforce):
    sfbridge.init()
    sfbridge.add("Account", "--fields", "Name", "--poll", "1")
    api = Api(_start(sfbridge, env={"SFBRIDGE_BACKOFF_CAP_MS": "500"}))
    wait_daemon(sfbridge, lambda: api.get("/readyz")[0] == 200, what="readyz 200")
    sf.set_faults([{"path": "/services/data/v60.0/*", "error_rate": 1.0, "status": 503}])
    wait_daemon(sfbridge, lambda: api.get("/readyz")[0] == 503, what="readyz 503 while Salesforce fails",
                timeout=60)
    assert api.get("/healthz")[0] == 200
    sf.clear_faults()
    wait_daemon(sfbridge, lambda: api.get("/readyz")[0] == 200, what="readyz 200 again", timeout=60)
    sfbridge.stop()


def test_export_then_import_through_the_api(api, sfbridge):
    status, exp = api.get("/api/v3/connections/default/export")
    assert status == 200
    sfbridge.run("mapping", "remove", "Account")
    assert "Account" not in {m["object_name"] for m in sfbridge.status_json()["mappings"]}
    status, body = api.post("/api/v3/connections/default/actions/import", body=exp)
    assert status == 202 and body == {"action": "import", "mappings": 2}, body
    assert "Account" in {m["object_name"] for m in sfbridge.status_json()["mappings"]}
    status, body = api.post("/api/v3/connections/default/actions/import", body={"version": 9})
    assert status >= 400 and "version" in body["message"], body
    status, _, text = api.call("POST", "/api/v3/connections/default/actions/import",
                               headers={"Content-Type": "application/json"})
    assert status == 400 and "not valid JSON" in text
