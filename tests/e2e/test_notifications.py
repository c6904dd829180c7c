"""Notifications (issue 15): recorded once per event in _sfbridge_notifications, shown by status,
listed and acknowledged by the CLI and the API, and POSTed to SFBRIDGE_WEBHOOK_URL exactly once
per event while the receiver answers, retried while it does not, never holding up the sync."""
import http.server
import json
import threading
from collections import Counter

import pytest

from lib.sfbridge import wait_daemon
from lib.wait import wait_for
from lib.writeback import App, map_rw, row

T = "teacher__c"
SFB = "/services/data/v60.0/*"


class Receiver:
    """A webhook receiver on a free loopback port; answers `status` (200 unless told)."""

    def __init__(self):
        self.got, self.status = [], 200
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - the http.server API
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                code = outer.status
                if code == 200:
                    outer.got.append((self.headers.get("Content-Type"), json.loads(body)))
                self.send_response(code)
                self.end_headers()

            def log_message(self, *a):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook?secret=s3cr3t"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def kinds(self):
        return Counter(b["kind"] for _, b in self.got)

    def close(self):
        self.server.shutdown()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


def test_each_kind_reaches_the_webhook_once_per_event(sfbridge, database, sf, receiver):
    sfbridge.init()
    map_rw(sfbridge, "Teacher__c")
    sfbridge.add("Account", "--fields", "Name", "--poll", "1")
    sfbridge.start(env={"SFBRIDGE_WEBHOOK_URL": receiver.url, "SFBRIDGE_BACKOFF_CAP_MS": "300"})
    wait_daemon(sfbridge, lambda: all(m["loaded"] for m in sfbridge.status_json()["mappings"]),
                what="the initial loads")
    # a refused write
    with App(database) as app:
        rid = app.insert(T, name="Bad Email", email__c="not an email")
    wait_daemon(sfbridge, lambda: row(database, T, rid)["_hc_lastop"] == "FAILED", what="the refusal")
    # an outage: the connection lost, the polled mapping retrying, then both back
    sf.set_faults([{"path": SFB, "error_rate": 1.0, "status": 503}])
    wait_daemon(sfbridge, lambda: sfbridge.mapping_status("Account")["errors"] >= 4,
                what="several failed polls", timeout=90)
    sf.clear_faults()
    wait_daemon(sfbridge, lambda: {"CONNECTION_RECOVERED", "MAPPING_RECOVERED"} <= set(receiver.kinds()),
                what="the recovery notifications", timeout=90)
    # a stream fallen back, a budget 90% spent (the states as the daemon would set them)
    with database.connect() as c:
        c.execute("UPDATE salesforce._sfbridge_mapping SET stream_state = 'FALLBACK',"
                  " stream_error = 'no events for 10 min' WHERE object_name = 'Teacher__c'")
    sfbridge.run("mapping", "edit", "Account", "--max-daily-api-calls", "1")
    wait_for(lambda: {"STREAM_FALLBACK", "API_BUDGET_LOW", "WRITE_FAILED"} <= set(receiver.kinds()),
             timeout=60, what="every kind at the webhook", context=lambda: f"received: {receiver.kinds()}")
    k = receiver.kinds()
    for kind in ("WRITE_FAILED", "CONNECTION_LOST", "CONNECTION_RECOVERED", "STREAM_FALLBACK",
                 "API_BUDGET_LOW"):
        assert k[kind] == 1, (kind, k)
    assert k["MAPPING_ERROR"] == k["MAPPING_RECOVERED"] >= 1, k
    ctype, body = next(x for x in receiver.got if x[1]["kind"] == "WRITE_FAILED")
    assert ctype == "application/json"
    assert body["source"] == "sfbridge" and body["object"] == "Teacher__c" and body["level"] == "error"
    assert "email" in body["message"].lower() and body["text"].startswith("sfbridge (salesforce): ")
    assert "s3cr3t" not in sfbridge.log(2000), "the webhook URL's secret was logged"
    # status and the CLI show them; acknowledging clears status's line
    st = sfbridge.status_json()["notifications"]
    assert st["unacknowledged"] == len(receiver.got), st
    assert "notices:" in sfbridge.run("status", check=False).stdout
    listed = json.loads(sfbridge.run("notifications", "--json").stdout)
    assert {n["kind"] for n in listed} == set(k), listed
    one = listed[0]["id"]
    assert sfbridge.run("ack", one).stdout.strip() == "1 notification acknowledged"
    sfbridge.fails("ack", one)
    sfbridge.run("ack", "--all")
    assert sfbridge.status_json()["notifications"]["unacknowledged"] == 0
    assert "notices:" not in sfbridge.run("status", check=False).stdout
    assert len(json.loads(sfbridge.run("notifications", "--all", "--json").stdout)) == len(listed)
    sfbridge.stop()


def _refused_write_with_a_refusing_receiver(sfbridge, database, receiver):
    """The daemon with a webhook whose receiver answers 500, and a write Salesforce refuses
    (a notification to deliver); the row's id."""
    receiver.status = 500
    sfbridge.init()
    map_rw(sfbridge, "Teacher__c")
    sfbridge.start(env={"SFBRIDGE_WEBHOOK_URL": receiver.url})
    wait_daemon(sfbridge, lambda: sfbridge.mapping_status("Teacher__c")["loaded"], what="the load")
    with App(database) as app:
        return app.insert(T, name="Bad Email", email__c="not an email")


def test_a_receiver_that_fails_gets_it_again_and_sync_goes_on(sfbridge, database, sf, receiver):
    bad = _refused_write_with_a_refusing_receiver(sfbridge, database, receiver)
    wait_daemon(sfbridge, lambda: row(database, T, bad)["_hc_lastop"] == "FAILED", what="the refusal")
    wait_daemon(sfbridge, lambda: "not taken by 127.0.0.1: HTTP 500" in sfbridge.log(), what="a refused POST")
    with App(database) as app:  # the sync is not held up by the webhook
        good = app.insert(T, name="Good Row", email__c="good@school.test")
    wait_daemon(sfbridge, lambda: row(database, T, good)["_hc_lastop"] == "INSERTED", what="a write")
    receiver.status = 200
    wait_for(lambda: receiver.kinds()["WRITE_FAILED"] == 1, timeout=30, what="the retried delivery")
    sfbridge.stop()


def test_api_lists_and_acknowledges(sfbridge, database):
    import urllib.request
    sfbridge.init()
    map_rw(sfbridge, "Teacher__c")
    sfbridge.start(env={"SFBRIDGE_HTTP": "127.0.0.1:0"})
    import re
    port = wait_daemon(sfbridge, lambda: (lambda m: int(m.group(1)) if m else None)(
        re.search(r"management API on http://127\.0\.0\.1:(\d+)/", sfbridge.log())), what="the API")
    base = f"http://127.0.0.1:{port}"
    with App(database) as app:
        rid = app.insert(T, name="Bad Email", email__c="not an email")
    wait_daemon(sfbridge, lambda: row(database, T, rid)["_hc_lastop"] == "FAILED", what="the refusal")

    def get(path):
        with urllib.request.urlopen(base + path, timeout=10) as r:
            return json.loads(r.read())

    listed = wait_for(lambda: (lambda j: j if j["count"] else None)(
        get("/api/v3/connections/default/notifications")), timeout=30, what="a notification")
    nid = listed["results"][0]["id"]
    req = urllib.request.Request(f"{base}/api/v3/notifications/{nid}/actions/acknowledge", data=b"{}",
                                 method="POST", headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        assert r.status == 202 and json.loads(r.read())["acknowledged"] == 1
    assert get("/api/v3/connections/default/notifications")["count"] == 0
    assert get("/api/v3/connections/default/notifications?all=1")["count"] == 1
    sfbridge.stop()


def test_old_notifications_are_pruned_with_the_archive(sfbridge, database):
    """Notifications older than SFBRIDGE_ARCHIVE_DAYS go, as the trigger log's archive does."""
    sfbridge.set(SFBRIDGE_ARCHIVE_DAYS=3)
    sfbridge.init()
    map_rw(sfbridge, "Teacher__c")
    sfbridge.once()
    with database.connect() as c:
        c.execute("INSERT INTO salesforce._sfbridge_notifications (created_at, kind, level, message)"
                  " VALUES (now() - interval '4 days', 'WRITE_FAILED', 'error', 'old'),"
                  " (now() - interval '2 days', 'WRITE_FAILED', 'error', 'kept')")
    with App(database) as app:
        app.insert(T, name="Wakes The Writer")
    sfbridge.run("push")  # the writer's housekeeping prunes
    left = [m for (m,) in database.query("SELECT message FROM salesforce._sfbridge_notifications")]
    assert "kept" in left and "old" not in left, left


def test_a_notification_reaches_the_webhook_after_a_crash(sfbridge, database, sf, receiver):
    """At least once across a crash: the daemon is killed (-9) while the receiver refuses the
    POST; the notification stays undelivered in the table, and the next daemon delivers it, once
    the receiver takes it."""
    bad = _refused_write_with_a_refusing_receiver(sfbridge, database, receiver)
    wait_daemon(sfbridge, lambda: "not taken by 127.0.0.1: HTTP 500" in sfbridge.log(), what="a refused POST")
    sfbridge.kill9()
    assert row(database, T, bad)["_hc_lastop"] == "FAILED"
    undelivered = database.query("SELECT count(*) FROM salesforce._sfbridge_notifications"
                                 " WHERE kind = 'WRITE_FAILED' AND delivered_at IS NULL")[0][0]
    assert undelivered == 1
    receiver.status = 200
    sfbridge.start(env={"SFBRIDGE_WEBHOOK_URL": receiver.url})
    wait_for(lambda: receiver.kinds()["WRITE_FAILED"] == 1, timeout=60, what="the delivery after the restart")
    wait_for(lambda: database.query("SELECT count(*) FROM salesforce._sfbridge_notifications"
                                    " WHERE delivered_at IS NULL")[0][0] == 0, timeout=30,
             what="the notification marked delivered")
    sfbridge.stop()
